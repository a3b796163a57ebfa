//! The engine's limit on how deeply a JSON document may nest. AWS documents none, but every
//! document the engine keeps is copied, written to its store and read back, and each of those
//! steps recurses once per level: a document nested thousands deep would overflow the stack,
//! and one past the JSON reader's limit of 128 levels would make a durable store unreadable.
//! Inputs, outputs, task parameters, Map items and variable values are held to
//! [`MAX_NESTING`] levels, which leaves room for the few levels the store wraps around them.

use serde_json::Value;

use crate::error::{RUNTIME, StatesError};

/// Levels of arrays and objects a document may nest.
pub const MAX_NESTING: usize = 100;

/// Whether `value` nests more than [`MAX_NESTING`] levels of arrays and objects. Walks with an
/// explicit stack, so the check itself cannot overflow.
pub fn too_deep(value: &Value) -> bool {
    let mut pending: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth + 1 > MAX_NESTING {
            return true;
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

/// `States.Runtime` naming `what` when `value` nests too deeply.
pub fn check(value: &Value, what: &str) -> Result<(), StatesError> {
    if too_deep(value) {
        return Err(StatesError::new(
            RUNTIME,
            format!(
                "{what} nests arrays and objects more than {MAX_NESTING} levels deep, more than \
                 this engine keeps"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| Value::Array(vec![inner]))
    }

    #[test]
    fn documents_up_to_the_limit_pass_and_deeper_ones_do_not() {
        assert!(!too_deep(&nested(MAX_NESTING)));
        assert!(too_deep(&nested(MAX_NESTING + 1)));
        assert!(!too_deep(&json!({"a": [1, {"b": 2}], "c": "text"})));
    }

    #[test]
    fn a_very_deep_document_is_checked_without_recursion() {
        let deep = nested(50_000);
        assert!(too_deep(&deep));
        // Dropping it recurses in serde_json; leak it so the test does not depend on that.
        std::mem::forget(deep);
    }

    #[test]
    fn the_error_names_what_was_too_deep() {
        let err = check(&nested(MAX_NESTING + 1), "the output of state 'Grow'").unwrap_err();
        assert_eq!(err.error, "States.Runtime");
        assert_eq!(
            err.cause,
            "the output of state 'Grow' nests arrays and objects more than 100 levels deep, more \
             than this engine keeps"
        );
    }
}
