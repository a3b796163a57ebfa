//! Intrinsic functions (`States.Format`, `States.Array`, ...): parsing, load-time checks and
//! evaluation. A bad argument at run time fails the state with `States.IntrinsicFailure`; a path
//! argument that names nothing fails it with `States.Runtime`, as a missing path does elsewhere.

mod functions;
mod parser;

use serde_json::Value;

pub use parser::{Arg, Call, IntrinsicSyntaxError, MAX_NESTING, parse};

use crate::error::StatesError;
use crate::variables::Variables;

/// Names of every intrinsic function AWS documents for JSONPath states.
pub const FUNCTION_NAMES: &[&str] = &[
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.ArrayPartition",
    "States.ArrayContains",
    "States.ArrayRange",
    "States.ArrayGetItem",
    "States.ArrayLength",
    "States.ArrayUnique",
    "States.Base64Encode",
    "States.Base64Decode",
    "States.Hash",
    "States.JsonMerge",
    "States.MathRandom",
    "States.MathAdd",
    "States.StringSplit",
    "States.UUID",
];

/// Parses an intrinsic expression and checks that every function it calls exists and gets a
/// plausible number of arguments.
pub fn compile(source: &str) -> Result<Call, IntrinsicSyntaxError> {
    let call = parse(source)?;
    check_call(source, &call)?;
    Ok(call)
}

fn check_call(source: &str, call: &Call) -> Result<(), IntrinsicSyntaxError> {
    let fail = |reason: String| IntrinsicSyntaxError {
        source_text: source.to_string(),
        reason,
        position: 0,
    };
    if !FUNCTION_NAMES.contains(&call.name.as_str()) {
        return Err(fail(format!("unknown function {}", call.name)));
    }
    let (min, max) = functions::arity(&call.name);
    let n = call.args.len();
    if n < min || n > max {
        let expected = match (min, max) {
            (a, b) if a == b => format!("{a}"),
            (a, usize::MAX) => format!("at least {a}"),
            (a, b) => format!("{a} to {b}"),
        };
        return Err(fail(format!(
            "{} takes {expected} argument(s), got {n}",
            call.name
        )));
    }
    call.args.iter().try_for_each(|arg| match arg {
        Arg::Call(inner) => check_call(source, inner),
        _ => Ok(()),
    })
}

/// Evaluates a call against the state's data (`$`), the context object (`$$`) and the
/// variables (`$name`).
pub fn evaluate(
    call: &Call,
    input: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<Value, StatesError> {
    let args = call
        .args
        .iter()
        .map(|arg| resolve(arg, input, context, vars))
        .collect::<Result<Vec<_>, _>>()?;
    functions::apply(call, args)
}

/// An argument's value; string literals also keep their escaped form for `States.Format`.
pub(crate) struct ArgValue {
    pub value: Value,
    pub raw: Option<String>,
}

fn resolve(
    arg: &Arg,
    input: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<ArgValue, StatesError> {
    let value = match arg {
        Arg::Str { value, raw } => {
            return Ok(ArgValue {
                value: Value::String(value.clone()),
                raw: Some(raw.clone()),
            });
        }
        Arg::Literal(v) => v.clone(),
        Arg::Path(path) => path
            .select(input, context, vars)
            .ok_or_else(|| missing_argument(path, vars))?,
        Arg::Call(inner) => evaluate(inner, input, context, vars)?,
    };
    Ok(ArgValue { value, raw: None })
}

#[cold]
fn missing_argument(path: &crate::path::Path, vars: &Variables) -> StatesError {
    const PLACE: &str = "an intrinsic function argument";
    path.unassigned(vars, PLACE).unwrap_or_else(|| {
        StatesError::runtime(format!(
            "the JSONPath {:?} given as {PLACE} could not be found in the input",
            path.as_str()
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::{INTRINSIC_FAILURE, RUNTIME};

    fn eval(source: &str, input: Value) -> Result<Value, StatesError> {
        let call = compile(source).unwrap();
        evaluate(
            &call,
            &input,
            &json!({"Execution": {"Name": "run-1"}}),
            Variables::none(),
        )
    }

    #[test]
    fn unknown_function_is_refused_at_compile_time() {
        let err = compile("States.Frobnicate(1)").unwrap_err();
        assert_eq!(err.reason, "unknown function States.Frobnicate");
    }

    #[test]
    fn wrong_argument_count_is_refused_at_compile_time() {
        let err = compile("States.ArrayLength($.a, $.b)").unwrap_err();
        assert_eq!(err.reason, "States.ArrayLength takes 1 argument(s), got 2");
        let err = compile("States.Array(States.Hash($.a))").unwrap_err();
        assert_eq!(err.reason, "States.Hash takes 2 argument(s), got 1");
    }

    #[test]
    fn nested_calls_and_context_paths_evaluate() {
        let value = eval(
            "States.Format('{}-{}', $$.Execution.Name, States.ArrayLength($.items))",
            json!({"items": [1, 2, 3]}),
        )
        .unwrap();
        assert_eq!(value, json!("run-1-3"));
    }

    #[test]
    fn missing_path_argument_is_a_runtime_error() {
        let err = eval("States.Array($.missing)", json!({})).unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert!(err.cause.contains("$.missing"), "{}", err.cause);
    }

    #[test]
    fn bad_argument_type_is_an_intrinsic_failure() {
        let err = eval("States.ArrayLength($.a)", json!({"a": "text"})).unwrap_err();
        assert_eq!(err.error, INTRINSIC_FAILURE);
        assert_eq!(
            err.cause,
            "States.ArrayLength: argument 1 must be an array, got a string"
        );
    }
}
