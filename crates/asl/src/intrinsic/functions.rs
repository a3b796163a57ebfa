//! The intrinsic functions themselves, each checking its arguments as AWS does and reporting
//! `States.IntrinsicFailure` with a cause that names the function, the argument and the value.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Map, Value, json};
use sha2::Digest;

use super::{ArgValue, Call};
use crate::error::StatesError;
use crate::path::type_name;

/// Largest string States.Base64Encode/Decode and States.Hash accept.
const MAX_STRING_CHARS: usize = 10_000;
/// Largest array States.ArrayRange may produce.
const MAX_RANGE_ITEMS: usize = 1_000;

/// Minimum and maximum argument counts of a function.
pub(super) fn arity(name: &str) -> (usize, usize) {
    match name {
        "States.Format" => (1, usize::MAX),
        "States.Array" => (0, usize::MAX),
        "States.UUID" => (0, 0),
        "States.StringToJson" | "States.JsonToString" | "States.ArrayLength" => (1, 1),
        "States.ArrayUnique" | "States.Base64Encode" | "States.Base64Decode" => (1, 1),
        "States.ArrayRange" | "States.JsonMerge" => (3, 3),
        "States.MathRandom" => (2, 3),
        _ => (2, 2),
    }
}

pub(super) fn apply(call: &Call, args: Vec<ArgValue>) -> Result<Value, StatesError> {
    let f = Fn {
        name: &call.name,
        args,
    };
    match f.name {
        "States.Format" => f.format(),
        "States.StringToJson" => f.string_to_json(),
        "States.JsonToString" => Ok(Value::String(f.arg(0).to_string())),
        "States.Array" => Ok(Value::Array(f.args.into_iter().map(|a| a.value).collect())),
        "States.ArrayPartition" => f.array_partition(),
        "States.ArrayContains" => Ok(Value::Bool(f.array(0)?.contains(f.arg(1)))),
        "States.ArrayRange" => f.array_range(),
        "States.ArrayGetItem" => f.array_get_item(),
        "States.ArrayLength" => Ok(json!(f.array(0)?.len())),
        "States.ArrayUnique" => f.array_unique(),
        "States.Base64Encode" => Ok(Value::String(BASE64.encode(f.bounded_string(0)?))),
        "States.Base64Decode" => f.base64_decode(),
        "States.Hash" => f.hash(),
        "States.JsonMerge" => f.json_merge(),
        "States.MathRandom" => f.math_random(),
        "States.MathAdd" => Ok(json!(f.rounded_int(0)? + f.rounded_int(1)?)),
        "States.StringSplit" => f.string_split(),
        "States.UUID" => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
        other => Err(StatesError::intrinsic(format!("unknown function {other}"))),
    }
}

/// One call being evaluated: the function name and its resolved arguments.
struct Fn<'a> {
    name: &'a str,
    args: Vec<ArgValue>,
}

impl Fn<'_> {
    fn fail(&self, message: impl std::fmt::Display) -> StatesError {
        StatesError::intrinsic(format!("{}: {message}", self.name))
    }

    fn arg(&self, i: usize) -> &Value {
        &self.args[i].value
    }

    fn wrong_type(&self, i: usize, expected: &str) -> StatesError {
        self.fail(format!(
            "argument {} must be {expected}, got {}",
            i + 1,
            type_name(self.arg(i))
        ))
    }

    fn string(&self, i: usize) -> Result<&str, StatesError> {
        self.arg(i)
            .as_str()
            .ok_or_else(|| self.wrong_type(i, "a string"))
    }

    fn bounded_string(&self, i: usize) -> Result<&str, StatesError> {
        let s = self.string(i)?;
        let chars = s.chars().count();
        if chars > MAX_STRING_CHARS {
            return Err(self.fail(format!(
                "argument {} has {chars} characters, more than the {MAX_STRING_CHARS} allowed",
                i + 1
            )));
        }
        Ok(s)
    }

    fn array(&self, i: usize) -> Result<&Vec<Value>, StatesError> {
        self.arg(i)
            .as_array()
            .ok_or_else(|| self.wrong_type(i, "an array"))
    }

    fn object(&self, i: usize) -> Result<&Map<String, Value>, StatesError> {
        self.arg(i)
            .as_object()
            .ok_or_else(|| self.wrong_type(i, "an object"))
    }

    /// An integer argument; numbers with a fractional part are refused.
    fn int(&self, i: usize) -> Result<i64, StatesError> {
        let n = self
            .arg(i)
            .as_f64()
            .ok_or_else(|| self.wrong_type(i, "an integer"))?;
        if n.fract() != 0.0 || n.abs() > i64::MAX as f64 {
            return Err(self.fail(format!("argument {} must be an integer, got {n}", i + 1)));
        }
        Ok(n as i64)
    }

    /// An integer argument where AWS rounds non-integers to the nearest integer.
    fn rounded_int(&self, i: usize) -> Result<i64, StatesError> {
        let n = self
            .arg(i)
            .as_f64()
            .ok_or_else(|| self.wrong_type(i, "a number"))?;
        let rounded = n.round();
        if rounded < i32::MIN as f64 || rounded > i32::MAX as f64 {
            return Err(self.fail(format!(
                "argument {} must be between {} and {}, got {n}",
                i + 1,
                i32::MIN,
                i32::MAX
            )));
        }
        Ok(rounded as i64)
    }

    fn format(&self) -> Result<Value, StatesError> {
        let template = match &self.args[0].raw {
            Some(raw) => raw.clone(),
            None => self.string(0)?.to_string(),
        };
        let values = (1..self.args.len())
            .map(|i| self.format_value(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = String::new();
        let mut next = values.iter();
        let mut chars = template.chars().peekable();
        let mut placeholders = 0;
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                '{' if chars.peek() == Some(&'}') => {
                    chars.next();
                    placeholders += 1;
                    out.push_str(next.next().map(String::as_str).unwrap_or_default());
                }
                '{' | '}' => {
                    return Err(self.fail(format!(
                        "unescaped '{c}' in template {template:?}; write \\\\{c} for a literal"
                    )));
                }
                c => out.push(c),
            }
        }
        if placeholders != values.len() {
            return Err(self.fail(format!(
                "template {template:?} has {placeholders} placeholder(s) but {} argument(s) \
                 were given",
                values.len()
            )));
        }
        Ok(Value::String(out))
    }

    fn format_value(&self, i: usize) -> Result<String, StatesError> {
        match self.arg(i) {
            Value::String(s) => Ok(s.clone()),
            Value::Array(_) | Value::Object(_) => {
                Err(self.wrong_type(i, "a string, number, boolean or null"))
            }
            other => Ok(other.to_string()),
        }
    }

    fn string_to_json(&self) -> Result<Value, StatesError> {
        let text = self.string(0)?;
        serde_json::from_str(text).map_err(|e| self.fail(format!("{text:?} is not JSON: {e}")))
    }

    fn array_partition(&self) -> Result<Value, StatesError> {
        let items = self.array(0)?;
        let size = self.int(1)?;
        if size <= 0 {
            return Err(self.fail(format!("chunk size must be a positive integer, got {size}")));
        }
        let chunks = items
            .chunks(size as usize)
            .map(|chunk| Value::Array(chunk.to_vec()))
            .collect();
        Ok(Value::Array(chunks))
    }

    fn array_range(&self) -> Result<Value, StatesError> {
        let (start, end, step) = (self.int(0)?, self.int(1)?, self.int(2)?);
        if step == 0 {
            return Err(self.fail("step must not be 0"));
        }
        let count = if (step > 0 && start <= end) || (step < 0 && start >= end) {
            ((end - start) / step + 1) as usize
        } else {
            0
        };
        if count > MAX_RANGE_ITEMS {
            return Err(self.fail(format!(
                "the range would have {count} items, more than the {MAX_RANGE_ITEMS} allowed"
            )));
        }
        let items = (0..count as i64).map(|k| json!(start + k * step)).collect();
        Ok(Value::Array(items))
    }

    fn array_get_item(&self) -> Result<Value, StatesError> {
        let items = self.array(0)?;
        let index = self.int(1)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| items.get(i))
            .cloned()
            .ok_or_else(|| {
                self.fail(format!(
                    "index {index} is out of bounds for an array of length {}",
                    items.len()
                ))
            })
    }

    fn array_unique(&self) -> Result<Value, StatesError> {
        let mut unique: Vec<Value> = Vec::new();
        for item in self.array(0)? {
            if !unique.contains(item) {
                unique.push(item.clone());
            }
        }
        Ok(Value::Array(unique))
    }

    fn base64_decode(&self) -> Result<Value, StatesError> {
        let text = self.bounded_string(0)?;
        let bytes = BASE64
            .decode(text)
            .map_err(|e| self.fail(format!("{text:?} is not valid base64: {e}")))?;
        String::from_utf8(bytes)
            .map(Value::String)
            .map_err(|_| self.fail(format!("{text:?} does not decode to UTF-8 text")))
    }

    fn hash(&self) -> Result<Value, StatesError> {
        let data = self.bounded_string(0)?.as_bytes();
        let algorithm = self.string(1)?;
        let digest = match algorithm {
            "MD5" => md5::Md5::digest(data).to_vec(),
            "SHA-1" => sha1::Sha1::digest(data).to_vec(),
            "SHA-256" => sha2::Sha256::digest(data).to_vec(),
            "SHA-384" => sha2::Sha384::digest(data).to_vec(),
            "SHA-512" => sha2::Sha512::digest(data).to_vec(),
            other => {
                return Err(self.fail(format!(
                    "unsupported algorithm {other:?}; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
                )));
            }
        };
        Ok(Value::String(hex::encode(digest)))
    }

    fn json_merge(&self) -> Result<Value, StatesError> {
        let mut merged = self.object(0)?.clone();
        let other = self.object(1)?;
        match self.arg(2) {
            Value::Bool(false) => {}
            Value::Bool(true) => return Err(self.fail("deep merge (true) is not supported")),
            _ => return Err(self.wrong_type(2, "the boolean false")),
        }
        merged.extend(other.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(Value::Object(merged))
    }

    fn math_random(&self) -> Result<Value, StatesError> {
        let (start, end) = (self.rounded_int(0)?, self.rounded_int(1)?);
        if start >= end {
            return Err(self.fail(format!("start ({start}) must be less than end ({end})")));
        }
        let value = if self.args.len() == 3 {
            let seed = self.rounded_int(2)?;
            StdRng::seed_from_u64(seed as u64).random_range(start..end)
        } else {
            rand::rng().random_range(start..end)
        };
        Ok(json!(value))
    }

    fn string_split(&self) -> Result<Value, StatesError> {
        let text = self.string(0)?;
        let delimiters: Vec<char> = self.string(1)?.chars().collect();
        let parts = text
            .split(|c| delimiters.contains(&c))
            .filter(|part| !part.is_empty())
            .map(|part| Value::String(part.to_string()))
            .collect();
        Ok(Value::Array(parts))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{compile, evaluate};
    use crate::error::INTRINSIC_FAILURE;

    use super::*;

    fn eval(source: &str, input: Value) -> Result<Value, StatesError> {
        evaluate(
            &compile(source).unwrap(),
            &input,
            &Value::Null,
            crate::variables::Variables::none(),
        )
    }

    fn ok(source: &str, input: Value) -> Value {
        eval(source, input).unwrap()
    }

    fn failure_cause(source: &str, input: Value) -> String {
        let err = eval(source, input).unwrap_err();
        assert_eq!(err.error, INTRINSIC_FAILURE);
        err.cause
    }

    #[test]
    fn format_fills_placeholders_in_order() {
        let v = ok(
            "States.Format('Hello, my name is {}.', $.name)",
            json!({"name": "Arnav"}),
        );
        assert_eq!(v, json!("Hello, my name is Arnav."));
        let v = ok("States.Format('{} {} {}', 1, true, null)", json!({}));
        assert_eq!(v, json!("1 true null"));
    }

    #[test]
    fn format_honours_escaped_braces_and_quotes() {
        let v = ok("States.Format('\\{{}\\} it\\'s', 'x')", json!({}));
        assert_eq!(v, json!("{x} it's"));
    }

    #[test]
    fn format_with_wrong_placeholder_count_fails() {
        let cause = failure_cause("States.Format('{} {}', 'a')", json!({}));
        assert_eq!(
            cause,
            "States.Format: template \"{} {}\" has 2 placeholder(s) but 1 argument(s) were given"
        );
    }

    #[test]
    fn format_refuses_objects() {
        let cause = failure_cause("States.Format('{}', $.o)", json!({"o": {}}));
        assert_eq!(
            cause,
            "States.Format: argument 2 must be a string, number, boolean or null, got an object"
        );
    }

    #[test]
    fn string_to_json_and_back() {
        let v = ok(
            "States.StringToJson($.someString)",
            json!({"someString": "{\"number\": 20}"}),
        );
        assert_eq!(v, json!({"number": 20}));
        let v = ok(
            "States.JsonToString($.someJson)",
            json!({"someJson": {"name": "Foo", "year": 2021}}),
        );
        assert_eq!(v, json!("{\"name\":\"Foo\",\"year\":2021}"));
        let cause = failure_cause("States.StringToJson('{x')", json!({}));
        assert!(
            cause.starts_with("States.StringToJson: \"{x\" is not JSON"),
            "{cause}"
        );
    }

    #[test]
    fn array_functions_follow_the_developer_guide_examples() {
        assert_eq!(
            ok("States.Array('Foo', 2020, $.Id)", json!({"Id": 123456})),
            json!(["Foo", 2020, 123456])
        );
        assert_eq!(
            ok(
                "States.ArrayPartition($.inputArray, 4)",
                json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
            ),
            json!([[1, 2, 3, 4], [5, 6, 7, 8], [9]])
        );
        assert_eq!(
            ok(
                "States.ArrayContains($.inputArray, $.lookingFor)",
                json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5})
            ),
            json!(true)
        );
        assert_eq!(
            ok("States.ArrayRange(1, 9, 2)", json!({})),
            json!([1, 3, 5, 7, 9])
        );
        assert_eq!(
            ok(
                "States.ArrayGetItem($.inputArray, $.index)",
                json!({"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5})
            ),
            json!(6)
        );
        assert_eq!(
            ok(
                "States.ArrayLength($.a)",
                json!({"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
            ),
            json!(9)
        );
        assert_eq!(
            ok(
                "States.ArrayUnique($.a)",
                json!({"a": [1, 2, 3, 3, 3, 3, 3, 3, 4]})
            ),
            json!([1, 2, 3, 4])
        );
    }

    #[test]
    fn array_range_counts_down_with_negative_step() {
        assert_eq!(
            ok("States.ArrayRange(5, 1, -2)", json!({})),
            json!([5, 3, 1])
        );
        assert_eq!(ok("States.ArrayRange(1, 5, -1)", json!({})), json!([]));
    }

    #[test]
    fn array_range_is_limited_to_one_thousand_items() {
        assert_eq!(
            ok("States.ArrayRange(1, 1000, 1)", json!({}))
                .as_array()
                .unwrap()
                .len(),
            1000
        );
        let cause = failure_cause("States.ArrayRange(0, 1000, 1)", json!({}));
        assert_eq!(
            cause,
            "States.ArrayRange: the range would have 1001 items, more than the 1000 allowed"
        );
    }

    #[test]
    fn array_get_item_out_of_bounds_fails() {
        let cause = failure_cause("States.ArrayGetItem($.a, 3)", json!({"a": [1]}));
        assert_eq!(
            cause,
            "States.ArrayGetItem: index 3 is out of bounds for an array of length 1"
        );
    }

    #[test]
    fn array_partition_refuses_zero_chunk() {
        let cause = failure_cause("States.ArrayPartition($.a, 0)", json!({"a": [1]}));
        assert_eq!(
            cause,
            "States.ArrayPartition: chunk size must be a positive integer, got 0"
        );
    }

    #[test]
    fn base64_round_trip_matches_the_guide() {
        assert_eq!(
            ok(
                "States.Base64Encode($.input)",
                json!({"input": "Data to encode"})
            ),
            json!("RGF0YSB0byBlbmNvZGU=")
        );
        assert_eq!(
            ok(
                "States.Base64Decode($.base64)",
                json!({"base64": "RGF0YSB0byBlbmNvZGU="})
            ),
            json!("Data to encode")
        );
        let cause = failure_cause("States.Base64Decode('%%%')", json!({}));
        assert!(cause.starts_with("States.Base64Decode: \"%%%\" is not valid base64"));
    }

    #[test]
    fn hash_supports_every_documented_algorithm() {
        let input = json!({"Data": "input data"});
        assert_eq!(
            ok("States.Hash($.Data, 'SHA-1')", input.clone()),
            json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
        );
        assert_eq!(
            ok("States.Hash('abc', 'MD5')", json!({})),
            json!("900150983cd24fb0d6963f7d28e17f72")
        );
        assert_eq!(
            ok("States.Hash('abc', 'SHA-256')", json!({})),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let sha384 = ok("States.Hash('abc', 'SHA-384')", json!({}));
        assert_eq!(sha384.as_str().unwrap().len(), 96);
        let sha512 = ok("States.Hash('abc', 'SHA-512')", json!({}));
        assert!(sha512.as_str().unwrap().starts_with("ddaf35a193617aba"));
        let cause = failure_cause("States.Hash('abc', 'SHA256')", json!({}));
        assert_eq!(
            cause,
            "States.Hash: unsupported algorithm \"SHA256\"; use MD5, SHA-1, SHA-256, SHA-384 or SHA-512"
        );
    }

    #[test]
    fn json_merge_is_shallow_and_refuses_deep() {
        let input = json!({
            "json1": {"a": {"a1": 1, "a2": 2}, "b": 2},
            "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}
        });
        assert_eq!(
            ok("States.JsonMerge($.json1, $.json2, false)", input.clone()),
            json!({"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3})
        );
        let cause = failure_cause("States.JsonMerge($.json1, $.json2, true)", input);
        assert_eq!(
            cause,
            "States.JsonMerge: deep merge (true) is not supported"
        );
    }

    #[test]
    fn math_random_stays_in_range_and_seed_is_deterministic() {
        for _ in 0..50 {
            let n = ok("States.MathRandom(1, 4)", json!({})).as_i64().unwrap();
            assert!((1..4).contains(&n), "{n}");
        }
        let a = ok("States.MathRandom(1, 1000, 7)", json!({}));
        let b = ok("States.MathRandom(1, 1000, 7)", json!({}));
        assert_eq!(a, b);
        let cause = failure_cause("States.MathRandom(5, 5)", json!({}));
        assert_eq!(
            cause,
            "States.MathRandom: start (5) must be less than end (5)"
        );
    }

    #[test]
    fn math_add_adds_and_rounds_like_aws() {
        assert_eq!(
            ok(
                "States.MathAdd($.value1, $.step)",
                json!({"value1": 111, "step": -1})
            ),
            json!(110)
        );
        assert_eq!(ok("States.MathAdd(1.6, 1)", json!({})), json!(3));
        let cause = failure_cause("States.MathAdd('1', 1)", json!({}));
        assert_eq!(
            cause,
            "States.MathAdd: argument 1 must be a number, got a string"
        );
    }

    #[test]
    fn string_split_splits_on_any_delimiter_character() {
        assert_eq!(
            ok(
                "States.StringSplit($.inputString, $.splitter)",
                json!({"inputString": "1,2,3,4,5", "splitter": ","})
            ),
            json!(["1", "2", "3", "4", "5"])
        );
        assert_eq!(
            ok(
                "States.StringSplit($.inputString, $.splitter)",
                json!({"inputString": "This.is+a,test=string", "splitter": ".+,="})
            ),
            json!(["This", "is", "a", "test", "string"])
        );
    }

    #[test]
    fn uuid_is_a_v4_uuid() {
        let v = ok("States.UUID()", json!({}));
        let parsed = uuid::Uuid::parse_str(v.as_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }
}
