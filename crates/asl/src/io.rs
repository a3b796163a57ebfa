//! Input and output processing, in the order AWS applies it:
//! `InputPath` → `Parameters` → (the state's work) → `ResultSelector` → `ResultPath` →
//! `OutputPath`. Each step is a pure function so the runtime only sequences them. Every path but
//! `ResultPath` may read workflow variables, always with their values from state entry.

use serde_json::{Map, Value};

use crate::definition::{DataPath, ResultPath};
use crate::error::{RESULT_PATH_MATCH_FAILURE, StatesError};
use crate::template::Template;
use crate::variables::Variables;

/// `InputPath` (or `OutputPath`): selects part of `value`; `null` yields `{}`.
pub fn select(
    path: &DataPath,
    value: &Value,
    vars: &Variables,
    field: &str,
) -> Result<Value, StatesError> {
    match path {
        DataPath::Discard => Ok(Value::Object(Map::new())),
        DataPath::Path(p) => p.select(value, &Value::Null, vars).ok_or_else(|| {
            p.unassigned(vars, field).unwrap_or_else(|| {
                StatesError::runtime(format!(
                    "Invalid path '{}' : No results for path in {field}: the input was {value}",
                    p.as_str()
                ))
            })
        }),
    }
}

/// `Parameters`/`ItemSelector`/`ResultSelector`: builds the payload, or passes `value` through
/// when the state has no template.
pub fn apply_template(
    template: Option<&Template>,
    value: Value,
    context: &Value,
    vars: &Variables,
    field: &str,
) -> Result<Value, StatesError> {
    match template {
        Some(t) => t.evaluate(&value, context, vars, field),
        None => Ok(value),
    }
}

/// `ResultPath`: places `result` into the state's raw input.
pub fn place_result(
    path: &ResultPath,
    raw_input: &Value,
    result: Value,
) -> Result<Value, StatesError> {
    match path {
        ResultPath::Discard => Ok(raw_input.clone()),
        ResultPath::Path(p) if p.is_root() => Ok(result),
        ResultPath::Path(p) => {
            let mut output = raw_input.clone();
            p.set(&mut output, result).map_err(|reason| {
                StatesError::new(
                    RESULT_PATH_MATCH_FAILURE,
                    format!(
                        "Unable to apply ResultPath \"{}\" to input {raw_input}: {reason}",
                        p.as_str()
                    ),
                )
            })?;
            Ok(output)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::RUNTIME;
    use crate::path::{Path, ReferencePath};
    fn data(p: &str) -> DataPath {
        DataPath::Path(Path::parse(p).unwrap())
    }

    fn result(p: &str) -> ResultPath {
        ResultPath::Path(ReferencePath::parse(p).unwrap())
    }

    #[test]
    fn input_path_null_gives_empty_object() {
        assert_eq!(
            select(
                &DataPath::Discard,
                &json!({"a": 1}),
                Variables::none(),
                "InputPath"
            )
            .unwrap(),
            json!({})
        );
    }

    #[test]
    fn input_path_selects_a_subtree() {
        let input = json!({"a": {"b": 1}});
        assert_eq!(
            select(&data("$.a"), &input, Variables::none(), "InputPath").unwrap(),
            json!({"b": 1})
        );
    }

    #[test]
    fn missing_input_path_is_a_runtime_error() {
        let err = select(
            &data("$.zz"),
            &json!({"a": 1}),
            Variables::none(),
            "InputPath",
        )
        .unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert_eq!(
            err.cause,
            "Invalid path '$.zz' : No results for path in InputPath: the input was {\"a\":1}"
        );
    }

    #[test]
    fn result_path_examples_from_the_developer_guide() {
        let input = json!({"comment": "This is a test", "details": "Default example", "who": "Step Functions"});
        let task_result = json!("Hello, Step Functions!");
        assert_eq!(
            place_result(&result("$"), &input, task_result.clone()).unwrap(),
            task_result
        );
        assert_eq!(
            place_result(&ResultPath::Discard, &input, task_result.clone()).unwrap(),
            input
        );
        assert_eq!(
            place_result(&result("$.taskresult"), &input, task_result.clone()).unwrap(),
            json!({
                "comment": "This is a test",
                "details": "Default example",
                "who": "Step Functions",
                "taskresult": "Hello, Step Functions!"
            })
        );
        assert_eq!(
            place_result(&result("$.strings.lambdaresult"), &input, task_result).unwrap(),
            json!({
                "comment": "This is a test",
                "details": "Default example",
                "who": "Step Functions",
                "strings": {"lambdaresult": "Hello, Step Functions!"}
            })
        );
    }

    #[test]
    fn result_path_into_a_string_fails_with_result_path_match_failure() {
        let err = place_result(&result("$.a.b"), &json!({"a": "x"}), json!(1)).unwrap_err();
        assert_eq!(err.error, RESULT_PATH_MATCH_FAILURE);
        assert_eq!(
            err.cause,
            "Unable to apply ResultPath \"$.a.b\" to input {\"a\":\"x\"}: cannot set field \"b\" on a string"
        );
    }

    #[test]
    fn result_path_on_non_object_input_fails() {
        let err = place_result(&result("$.x"), &json!("text"), json!(1)).unwrap_err();
        assert_eq!(err.error, RESULT_PATH_MATCH_FAILURE);
    }
}
