//! Choice rules: parsing (with every problem reported by JSON pointer) and evaluation.
//!
//! Semantics follow AWS Step Functions: a comparison whose operands have the wrong types is
//! false, not an error; a `Variable` (or `...Path` operand) that names nothing fails the state
//! with `States.Runtime`, except under `IsPresent`. Both may read workflow variables
//! (`"Variable": "$count"`); a variable without a value fails the state under every operator.

use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Value};

use crate::error::StatesError;
use crate::path::Path;
use crate::template::child;
use crate::variables::Variables;

/// A boolean expression of a Choice state.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    And(Vec<Condition>),
    Or(Vec<Condition>),
    Not(Box<Condition>),
    Compare {
        variable: Path,
        operator: Operator,
        operand: Operand,
    },
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Literal(Value),
    Path(Path),
}

/// Comparison operators; `...Path` variants are the same operator with an `Operand::Path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    StringEquals,
    StringLessThan,
    StringGreaterThan,
    StringLessThanEquals,
    StringGreaterThanEquals,
    StringMatches,
    NumericEquals,
    NumericLessThan,
    NumericGreaterThan,
    NumericLessThanEquals,
    NumericGreaterThanEquals,
    BooleanEquals,
    TimestampEquals,
    TimestampLessThan,
    TimestampGreaterThan,
    TimestampLessThanEquals,
    TimestampGreaterThanEquals,
    IsNull,
    IsPresent,
    IsNumeric,
    IsString,
    IsBoolean,
    IsTimestamp,
}

/// What kind of literal an operator compares against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Timestamp,
    Pattern,
    TypeTest,
}

const OPERATORS: &[(&str, Operator, Kind)] = &[
    ("StringEquals", Operator::StringEquals, Kind::String),
    ("StringLessThan", Operator::StringLessThan, Kind::String),
    (
        "StringGreaterThan",
        Operator::StringGreaterThan,
        Kind::String,
    ),
    (
        "StringLessThanEquals",
        Operator::StringLessThanEquals,
        Kind::String,
    ),
    (
        "StringGreaterThanEquals",
        Operator::StringGreaterThanEquals,
        Kind::String,
    ),
    ("StringMatches", Operator::StringMatches, Kind::Pattern),
    ("NumericEquals", Operator::NumericEquals, Kind::Number),
    ("NumericLessThan", Operator::NumericLessThan, Kind::Number),
    (
        "NumericGreaterThan",
        Operator::NumericGreaterThan,
        Kind::Number,
    ),
    (
        "NumericLessThanEquals",
        Operator::NumericLessThanEquals,
        Kind::Number,
    ),
    (
        "NumericGreaterThanEquals",
        Operator::NumericGreaterThanEquals,
        Kind::Number,
    ),
    ("BooleanEquals", Operator::BooleanEquals, Kind::Boolean),
    (
        "TimestampEquals",
        Operator::TimestampEquals,
        Kind::Timestamp,
    ),
    (
        "TimestampLessThan",
        Operator::TimestampLessThan,
        Kind::Timestamp,
    ),
    (
        "TimestampGreaterThan",
        Operator::TimestampGreaterThan,
        Kind::Timestamp,
    ),
    (
        "TimestampLessThanEquals",
        Operator::TimestampLessThanEquals,
        Kind::Timestamp,
    ),
    (
        "TimestampGreaterThanEquals",
        Operator::TimestampGreaterThanEquals,
        Kind::Timestamp,
    ),
    ("IsNull", Operator::IsNull, Kind::TypeTest),
    ("IsPresent", Operator::IsPresent, Kind::TypeTest),
    ("IsNumeric", Operator::IsNumeric, Kind::TypeTest),
    ("IsString", Operator::IsString, Kind::TypeTest),
    ("IsBoolean", Operator::IsBoolean, Kind::TypeTest),
    ("IsTimestamp", Operator::IsTimestamp, Kind::TypeTest),
];

/// A problem found while parsing a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub pointer: String,
    pub message: String,
}

/// Parses one rule object at `pointer`. Top-level rules carry `Next` (returned alongside);
/// nested rules must not.
pub fn parse_rule(
    value: &Value,
    pointer: &str,
    top_level: bool,
    errors: &mut Vec<RuleError>,
) -> Option<(Condition, Option<String>)> {
    let mut err = |pointer: String, message: String| errors.push(RuleError { pointer, message });
    let Some(map) = value.as_object() else {
        err(
            pointer.to_string(),
            "a choice rule must be an object".into(),
        );
        return None;
    };
    let next = rule_next(map, pointer, top_level, &mut err);
    if !top_level && map.contains_key("Assign") {
        err(
            child(pointer, "Assign"),
            "\"Assign\" is only allowed in top-level choice rules".into(),
        );
    }
    let condition = parse_condition(map, pointer, errors)?;
    Some((condition, next))
}

fn rule_next(
    map: &Map<String, Value>,
    pointer: &str,
    top_level: bool,
    err: &mut impl FnMut(String, String),
) -> Option<String> {
    match (map.get("Next"), top_level) {
        (Some(Value::String(next)), true) => Some(next.clone()),
        (Some(_), true) => {
            err(child(pointer, "Next"), "\"Next\" must be a string".into());
            None
        }
        (None, true) => {
            err(
                pointer.to_string(),
                "a top-level choice rule needs \"Next\"".into(),
            );
            None
        }
        (Some(_), false) => {
            err(
                child(pointer, "Next"),
                "\"Next\" is only allowed in top-level choice rules".into(),
            );
            None
        }
        (None, false) => None,
    }
}

fn parse_condition(
    map: &Map<String, Value>,
    pointer: &str,
    errors: &mut Vec<RuleError>,
) -> Option<Condition> {
    let mut err = |p: String, m: String| {
        errors.push(RuleError {
            pointer: p,
            message: m,
        })
    };
    let allowed = |k: &str| matches!(k, "Next" | "Comment" | "Variable" | "Assign");
    let keys: Vec<&String> = map.keys().filter(|k| !allowed(k)).collect();
    let (key, operand) = match keys.as_slice() {
        [key] => (key.as_str(), &map[key.as_str()]),
        [] => {
            err(
                pointer.to_string(),
                "a choice rule needs And, Or, Not or a comparison operator".into(),
            );
            return None;
        }
        many => {
            let names: Vec<&str> = many.iter().map(|k| k.as_str()).collect();
            err(
                pointer.to_string(),
                format!(
                    "a choice rule must hold exactly one operator, found {}",
                    names.join(", ")
                ),
            );
            return None;
        }
    };
    match key {
        "And" | "Or" => parse_list(key, operand, map, pointer, errors),
        "Not" => parse_not(operand, map, pointer, errors),
        _ => parse_comparison(key, operand, map, pointer, errors),
    }
}

fn parse_list(
    key: &str,
    operand: &Value,
    map: &Map<String, Value>,
    pointer: &str,
    errors: &mut Vec<RuleError>,
) -> Option<Condition> {
    forbid_variable(map, pointer, key, errors);
    let list_pointer = child(pointer, key);
    let Some(items) = operand.as_array().filter(|items| !items.is_empty()) else {
        errors.push(RuleError {
            pointer: list_pointer,
            message: format!("\"{key}\" must be a non-empty array of choice rules"),
        });
        return None;
    };
    let mut conditions = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if let Some((c, _)) = parse_rule(item, &child(&list_pointer, &i.to_string()), false, errors)
        {
            conditions.push(c);
        }
    }
    if conditions.len() != items.len() {
        return None;
    }
    Some(match key {
        "And" => Condition::And(conditions),
        _ => Condition::Or(conditions),
    })
}

fn parse_not(
    operand: &Value,
    map: &Map<String, Value>,
    pointer: &str,
    errors: &mut Vec<RuleError>,
) -> Option<Condition> {
    forbid_variable(map, pointer, "Not", errors);
    let (inner, _) = parse_rule(operand, &child(pointer, "Not"), false, errors)?;
    Some(Condition::Not(Box::new(inner)))
}

fn forbid_variable(
    map: &Map<String, Value>,
    pointer: &str,
    key: &str,
    errors: &mut Vec<RuleError>,
) {
    if map.contains_key("Variable") {
        errors.push(RuleError {
            pointer: child(pointer, "Variable"),
            message: format!("\"Variable\" is not allowed beside \"{key}\""),
        });
    }
}

fn parse_comparison(
    key: &str,
    operand: &Value,
    map: &Map<String, Value>,
    pointer: &str,
    errors: &mut Vec<RuleError>,
) -> Option<Condition> {
    let mut err = |p: String, m: String| {
        errors.push(RuleError {
            pointer: p,
            message: m,
        })
    };
    let op_pointer = child(pointer, key);
    let Some((operator, kind, is_path)) = lookup_operator(key) else {
        err(op_pointer, format!("unknown choice rule field {key:?}"));
        return None;
    };
    let variable = match map.get("Variable") {
        Some(Value::String(s)) => Path::parse(s)
            .map_err(|e| err(child(pointer, "Variable"), e.to_string()))
            .ok(),
        Some(_) => {
            err(
                child(pointer, "Variable"),
                "\"Variable\" must be a path string".into(),
            );
            None
        }
        None => {
            err(
                pointer.to_string(),
                format!("\"{key}\" needs a \"Variable\""),
            );
            None
        }
    };
    let operand = parse_operand(key, operand, kind, is_path)
        .map_err(|m| err(op_pointer, m))
        .ok();
    Some(Condition::Compare {
        variable: variable?,
        operator,
        operand: operand?,
    })
}

fn lookup_operator(key: &str) -> Option<(Operator, Kind, bool)> {
    let find = |name: &str| OPERATORS.iter().find(|(n, _, _)| *n == name);
    if let Some((_, op, kind)) = find(key) {
        return Some((*op, *kind, false));
    }
    let base = key.strip_suffix("Path")?;
    match find(base) {
        Some((_, op, kind)) if !matches!(kind, Kind::TypeTest | Kind::Pattern) => {
            Some((*op, *kind, true))
        }
        _ => None,
    }
}

fn parse_operand(key: &str, value: &Value, kind: Kind, is_path: bool) -> Result<Operand, String> {
    if is_path {
        let s = value
            .as_str()
            .ok_or(format!("\"{key}\" must be a path string"))?;
        return Path::parse(s).map(Operand::Path).map_err(|e| e.to_string());
    }
    let ok = match kind {
        Kind::String | Kind::Pattern => value.is_string(),
        Kind::Number => value.is_number(),
        Kind::Boolean | Kind::TypeTest => value.is_boolean(),
        Kind::Timestamp => value.as_str().is_some_and(|s| parse_timestamp(s).is_some()),
    };
    if !ok {
        let expected = match kind {
            Kind::String | Kind::Pattern => "a string",
            Kind::Number => "a number",
            Kind::Boolean | Kind::TypeTest => "a boolean",
            Kind::Timestamp => "an RFC 3339 timestamp such as 2016-08-18T17:33:00Z",
        };
        return Err(format!("\"{key}\" must be {expected}, got {value}"));
    }
    Ok(Operand::Literal(value.clone()))
}

/// Parses an ASL timestamp: RFC 3339 with an uppercase `T` and, when there is no offset, an
/// uppercase `Z`.
pub fn parse_timestamp(s: &str) -> Option<DateTime<FixedOffset>> {
    if s.as_bytes().get(10) != Some(&b'T') || s.ends_with('z') {
        return None;
    }
    DateTime::parse_from_rfc3339(s).ok()
}

/// Evaluates a condition against a state's effective input, the context object and the
/// variables.
pub fn evaluate(
    condition: &Condition,
    input: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<bool, StatesError> {
    match condition {
        Condition::And(list) => {
            for c in list {
                if !evaluate(c, input, context, vars)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Condition::Or(list) => {
            for c in list {
                if evaluate(c, input, context, vars)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Condition::Not(inner) => Ok(!evaluate(inner, input, context, vars)?),
        Condition::Compare {
            variable,
            operator,
            operand,
        } => compare(variable, *operator, operand, input, context, vars),
    }
}

fn compare(
    variable: &Path,
    operator: Operator,
    operand: &Operand,
    input: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<bool, StatesError> {
    let value = variable.select(input, context, vars);
    if value.is_none()
        && let Some(unassigned) = variable.unassigned(vars, "a choice rule")
    {
        return Err(unassigned);
    }
    if operator == Operator::IsPresent {
        return Ok(value.is_some() == (operand_literal(operand) == &Value::Bool(true)));
    }
    let value = value.ok_or_else(|| invalid_path(variable))?;
    let expected = match operand {
        Operand::Literal(v) => v.clone(),
        Operand::Path(p) => p.select(input, context, vars).ok_or_else(|| {
            p.unassigned(vars, "a choice rule")
                .unwrap_or_else(|| invalid_path(p))
        })?,
    };
    Ok(apply(operator, &value, &expected))
}

fn operand_literal(operand: &Operand) -> &Value {
    match operand {
        Operand::Literal(v) => v,
        Operand::Path(_) => &Value::Null,
    }
}

fn invalid_path(path: &Path) -> StatesError {
    StatesError::runtime(format!(
        "Invalid path '{}': The choice state's condition path references an invalid value.",
        path.as_str()
    ))
}

fn apply(operator: Operator, value: &Value, expected: &Value) -> bool {
    use Operator::*;
    let test = |actual: bool| expected.as_bool() == Some(actual);
    match operator {
        StringEquals
        | StringLessThan
        | StringGreaterThan
        | StringLessThanEquals
        | StringGreaterThanEquals => ordered(
            operator,
            strings(value, expected).map(|(a, b)| utf16_cmp(a, b)),
        ),
        StringMatches => strings(value, expected).is_some_and(|(a, p)| matches_pattern(a, p)),
        NumericEquals
        | NumericLessThan
        | NumericGreaterThan
        | NumericLessThanEquals
        | NumericGreaterThanEquals => ordered(operator, number_cmp(value, expected)),
        BooleanEquals => value.is_boolean() && value == expected,
        TimestampEquals
        | TimestampLessThan
        | TimestampGreaterThan
        | TimestampLessThanEquals
        | TimestampGreaterThanEquals => ordered(operator, timestamp_cmp(value, expected)),
        IsNull => test(value.is_null()),
        IsPresent => test(true),
        IsNumeric => test(value.is_number()),
        IsString => test(value.is_string()),
        IsBoolean => test(value.is_boolean()),
        IsTimestamp => test(value.as_str().is_some_and(|s| parse_timestamp(s).is_some())),
    }
}

fn ordered(operator: Operator, ordering: Option<Ordering>) -> bool {
    use Operator::*;
    let Some(o) = ordering else { return false };
    match operator {
        StringEquals | NumericEquals | TimestampEquals => o == Ordering::Equal,
        StringLessThan | NumericLessThan | TimestampLessThan => o == Ordering::Less,
        StringGreaterThan | NumericGreaterThan | TimestampGreaterThan => o == Ordering::Greater,
        StringLessThanEquals | NumericLessThanEquals | TimestampLessThanEquals => {
            o != Ordering::Greater
        }
        _ => o != Ordering::Less,
    }
}

fn strings<'a>(a: &'a Value, b: &'a Value) -> Option<(&'a str, &'a str)> {
    Some((a.as_str()?, b.as_str()?))
}

/// Java compares strings by UTF-16 code unit; so does AWS.
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn number_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    let (a, b) = (a.as_number()?, b.as_number()?);
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn timestamp_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    let a = parse_timestamp(a.as_str()?)?;
    let b = parse_timestamp(b.as_str()?)?;
    Some(a.cmp(&b))
}

/// `*` matches any run of characters; `\*` is a literal star and `\\` a literal backslash.
pub fn matches_pattern(text: &str, pattern: &str) -> bool {
    let tokens = pattern_tokens(pattern);
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(None) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(Some(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(Option::is_none)
}

/// Pattern as a list of literal characters (`Some`) and wildcards (`None`).
fn pattern_tokens(pattern: &str) -> Vec<Option<char>> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(Some(chars.next().unwrap_or('\\'))),
            '*' => tokens.push(None),
            c => tokens.push(Some(c)),
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::RUNTIME;

    fn rule(value: Value) -> Condition {
        let mut errors = Vec::new();
        let parsed = parse_rule(&value, "/r", false, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        parsed.unwrap().0
    }

    fn check(value: Value, input: Value) -> bool {
        evaluate(&rule(value), &input, &json!({}), Variables::none()).unwrap()
    }

    #[test]
    fn string_comparisons() {
        let input = json!({"s": "b"});
        assert!(check(
            json!({"Variable": "$.s", "StringEquals": "b"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "StringLessThan": "c"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "StringGreaterThan": "a"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "StringLessThanEquals": "b"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "StringGreaterThanEquals": "b"}),
            input.clone()
        ));
        assert!(!check(
            json!({"Variable": "$.s", "StringGreaterThan": "b"}),
            input
        ));
    }

    #[test]
    fn numeric_comparisons_mix_integers_and_floats() {
        let input = json!({"n": 10, "f": 10.0, "limit": 20});
        assert!(check(
            json!({"Variable": "$.n", "NumericEquals": 10.0}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.f", "NumericEquals": 10}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.n", "NumericLessThanPath": "$.limit"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.n", "NumericGreaterThanEquals": 10}),
            input.clone()
        ));
        assert!(!check(
            json!({"Variable": "$.n", "NumericGreaterThan": 10}),
            input
        ));
    }

    #[test]
    fn comparison_with_wrong_type_is_false_not_an_error() {
        assert!(!check(
            json!({"Variable": "$.n", "StringEquals": "10"}),
            json!({"n": 10})
        ));
        assert!(!check(
            json!({"Variable": "$.s", "NumericEquals": 10}),
            json!({"s": "10"})
        ));
    }

    #[test]
    fn boolean_and_timestamp_comparisons() {
        let input =
            json!({"b": true, "t": "2016-08-18T17:33:00Z", "u": "2016-08-18T18:33:00+01:00"});
        assert!(check(
            json!({"Variable": "$.b", "BooleanEquals": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.t", "TimestampEqualsPath": "$.u"}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.t", "TimestampLessThan": "2016-08-19T00:00:00Z"}),
            input
        ));
    }

    #[test]
    fn type_tests() {
        let input = json!({"n": null, "x": 1.5, "s": "a", "b": false, "t": "2020-01-01T00:00:00Z"});
        assert!(check(
            json!({"Variable": "$.n", "IsNull": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.x", "IsNumeric": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "IsString": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.b", "IsBoolean": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.t", "IsTimestamp": true}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.s", "IsTimestamp": false}),
            input.clone()
        ));
        assert!(check(
            json!({"Variable": "$.zz", "IsPresent": false}),
            input.clone()
        ));
        assert!(check(json!({"Variable": "$.n", "IsPresent": true}), input));
    }

    #[test]
    fn lowercase_t_is_not_an_asl_timestamp() {
        assert!(parse_timestamp("2020-01-01t00:00:00Z").is_none());
        assert!(parse_timestamp("2020-01-01T00:00:00z").is_none());
        assert!(parse_timestamp("2020-01-01T00:00:00.123+02:00").is_some());
    }

    #[test]
    fn string_matches_with_wildcards_and_escapes() {
        assert!(matches_pattern("log-2020.txt", "log-*.txt"));
        assert!(matches_pattern("abc", "*"));
        assert!(matches_pattern("a*c", "a\\*c"));
        assert!(!matches_pattern("abc", "a\\*c"));
        assert!(matches_pattern("a\\b", "a\\\\b"));
        assert!(matches_pattern("aXbYc", "a*b*c"));
        assert!(!matches_pattern("aXbY", "a*b*c"));
        assert!(matches_pattern("", "*"));
    }

    #[test]
    fn and_or_not_combine() {
        let r = json!({"And": [
            {"Variable": "$.a", "NumericGreaterThan": 1},
            {"Not": {"Variable": "$.b", "StringEquals": "x"}},
            {"Or": [{"Variable": "$.c", "BooleanEquals": true}, {"Variable": "$.a", "NumericEquals": 99}]}
        ]});
        assert!(check(r.clone(), json!({"a": 2, "b": "y", "c": true})));
        assert!(!check(r, json!({"a": 2, "b": "x", "c": true})));
    }

    #[test]
    fn missing_variable_is_a_runtime_error() {
        let err = evaluate(
            &rule(json!({"Variable": "$.missing", "StringEquals": "x"})),
            &json!({}),
            &json!({}),
            Variables::none(),
        )
        .unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert_eq!(
            err.cause,
            "Invalid path '$.missing': The choice state's condition path references an invalid value."
        );
    }

    #[test]
    fn variables_are_compared_as_the_variable_and_as_the_operand() {
        let mut assigned = crate::variables::Assigned::default();
        assigned.push("count", json!(3)).unwrap();
        assigned.push("limit", json!({"max": 5})).unwrap();
        let total = std::sync::atomic::AtomicUsize::new(0);
        let mut block = crate::variables::BlockVariables::open(Variables::default(), &total);
        block.assign(assigned).unwrap();
        let vars = block.get();
        let check = |value: Value| evaluate(&rule(value), &json!({"n": 5}), &json!({}), vars);
        assert_eq!(
            check(json!({"Variable": "$count", "NumericLessThanPath": "$limit.max"})),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.n", "NumericEqualsPath": "$limit.max"})),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$limit.min", "IsPresent": true})),
            Ok(false)
        );
        let err = check(json!({"Variable": "$.n", "NumericEqualsPath": "$nothing"})).unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert!(
            err.cause.starts_with("the variable 'nothing'"),
            "{}",
            err.cause
        );
    }

    #[test]
    fn assign_is_allowed_on_top_level_rules_only() {
        let mut errors = Vec::new();
        let value = json!({"Variable": "$.a", "IsNull": true, "Assign": {"x": 1}, "Next": "N"});
        assert!(parse_rule(&value, "/r", true, &mut errors).is_some());
        assert!(errors.is_empty(), "{errors:?}");
        let nested = json!({
            "Not": {"Variable": "$.a", "IsNull": true, "Assign": {"x": 1}},
            "Next": "N"
        });
        parse_rule(&nested, "/r", true, &mut errors);
        assert_eq!(
            errors,
            [RuleError {
                pointer: "/r/Not/Assign".into(),
                message: "\"Assign\" is only allowed in top-level choice rules".into()
            }]
        );
    }

    #[test]
    fn rule_shape_problems_are_all_reported() {
        let mut errors = Vec::new();
        let value = json!({"And": [
            {"Variable": "$.a", "NumericEquals": "1"},
            {"Variable": "$.a", "StringEquals": "x", "StringMatches": "y"},
            {"StringEquals": "x"},
            {"Variable": "$.a", "Bogus": 1, "Next": "X"}
        ]});
        assert!(parse_rule(&value, "/States/C/Choices/0", true, &mut errors).is_none());
        let found: Vec<(&str, &str)> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/States/C/Choices/0",
                    "a top-level choice rule needs \"Next\""
                ),
                (
                    "/States/C/Choices/0/And/0/NumericEquals",
                    "\"NumericEquals\" must be a number, got \"1\""
                ),
                (
                    "/States/C/Choices/0/And/1",
                    "a choice rule must hold exactly one operator, found StringEquals, StringMatches"
                ),
                (
                    "/States/C/Choices/0/And/2",
                    "\"StringEquals\" needs a \"Variable\""
                ),
                (
                    "/States/C/Choices/0/And/3/Next",
                    "\"Next\" is only allowed in top-level choice rules"
                ),
                (
                    "/States/C/Choices/0/And/3/Bogus",
                    "unknown choice rule field \"Bogus\""
                ),
            ]
        );
    }
}
