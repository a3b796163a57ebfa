//! The `Assign` field of JSONPath states: compiled once at load, evaluated when a state exits.
//!
//! Each top-level key names a variable; like a payload template, a key ending in `.$` takes its
//! value from a path (`$.x`, `$$.x`, `$var.x`) or an intrinsic function, and nested objects and
//! arrays are templates too. What `$` refers to depends on where the field is (the state's
//! result, its effective input, or a Catcher's error output); every variable reference reads the
//! value the variable had on state entry, so one field's assignments happen all at once.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::StatesError;
use crate::template::{self, Template, TemplateError, child};
use crate::variables::{self, Assigned, Variables};

/// A compiled `Assign` field: each variable with the template of its new value.
#[derive(Debug, Clone, PartialEq)]
pub struct Assign {
    fields: Vec<(String, Template)>,
}

impl Assign {
    /// Compiles an `Assign` value, collecting every problem with its pointer relative to the
    /// field: bad variable names, a name given twice (`x` and `x.$`), bad templates.
    pub fn compile(value: &Value) -> Result<Assign, Vec<TemplateError>> {
        let mut errors = Vec::new();
        let Some(map) = value.as_object() else {
            errors.push(TemplateError {
                pointer: String::new(),
                message: format!("\"Assign\" must be a JSON object, got {value}"),
            });
            return Err(errors);
        };
        let mut seen = HashSet::new();
        let mut fields = Vec::new();
        for (key, v) in map {
            let pointer = child("", key);
            let (name, compiled) = template::compile_field(key, v, &pointer, &mut errors);
            let problem = match variables::check_name(&name) {
                Err(message) => Some(message),
                Ok(()) if !seen.insert(name.clone()) => Some(format!(
                    "variable {name:?} is assigned twice in this \"Assign\" field"
                )),
                Ok(()) => None,
            };
            if let Some(message) = problem {
                errors.push(TemplateError { pointer, message });
            }
            fields.push((name, compiled));
        }
        if errors.is_empty() {
            Ok(Assign { fields })
        } else {
            Err(errors)
        }
    }

    /// The variables this field assigns, in the order written.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(name, _)| name.as_str())
    }

    /// Computes the new values. `input` is what `$` refers to here; `vars` hold the values
    /// from state entry, so a variable assigned here and read here gives its old value.
    pub fn evaluate(
        &self,
        input: &Value,
        context: &Value,
        vars: &Variables,
    ) -> Result<Assigned, StatesError> {
        let mut assigned = Assigned::default();
        for (name, t) in &self.fields {
            let value = t.evaluate_field(name, input, context, vars, "Assign")?;
            assigned.push(name, value)?;
        }
        Ok(assigned)
    }
}

/// Evaluates an optional `Assign` field; `None` when the state has none.
pub fn evaluate(
    assign: Option<&Assign>,
    input: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<Option<Assigned>, StatesError> {
    assign.map(|a| a.evaluate(input, context, vars)).transpose()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use serde_json::json;

    use super::*;
    use crate::error::{INTRINSIC_FAILURE, RUNTIME};
    use crate::variables::BlockVariables;

    fn compile(value: Value) -> Assign {
        Assign::compile(&value).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn problems(value: Value) -> Vec<(String, String)> {
        Assign::compile(&value)
            .unwrap_err()
            .into_iter()
            .map(|e| (e.pointer, e.message))
            .collect()
    }

    #[test]
    fn literals_paths_context_paths_and_intrinsics_are_evaluated() {
        let assign = compile(json!({
            "constant": {"s": "$.not.a.path", "n": [1, {"k": true}]},
            "fromInput.$": "$.a",
            "fromContext.$": "$$.Execution.Id",
            "formatted.$": "States.Format('n={}', $.a)",
            "nested": {"copy.$": "$.a", "list": [{"x.$": "$.a"}]}
        }));
        let assigned = assign
            .evaluate(
                &json!({"a": 5}),
                &json!({"Execution": {"Id": "arn:e"}}),
                Variables::none(),
            )
            .unwrap();
        let history = assigned.to_history();
        assert_eq!(
            history["constant"],
            r#"{"n":[1,{"k":true}],"s":"$.not.a.path"}"#
        );
        assert_eq!(history["fromInput"], "5");
        assert_eq!(history["fromContext"], "\"arn:e\"");
        assert_eq!(history["formatted"], "\"n=5\"");
        assert_eq!(history["nested"], r#"{"copy":5,"list":[{"x":5}]}"#);
    }

    #[test]
    fn every_assignment_reads_the_values_from_state_entry() {
        // The guide's example: starting with $x=3 and $a=6, {"x": $a, "nextX": $x} ends with
        // $x=6 and $nextX=3.
        let total = AtomicUsize::new(0);
        let mut block = BlockVariables::open(Variables::default(), &total);
        let setup = compile(json!({"x": 3, "a": 6}));
        let start = setup.evaluate(&json!({}), &json!({}), block.get()).unwrap();
        block.assign(start).unwrap();

        let assign = compile(json!({"x.$": "$a", "nextX.$": "$x"}));
        let assigned = assign
            .evaluate(&json!({}), &json!({}), block.get())
            .unwrap();
        block.assign(assigned).unwrap();

        assert_eq!(block.get().get("x"), Some(json!(6)));
        assert_eq!(block.get().get("nextX"), Some(json!(3)));
        assert_eq!(block.get().get("a"), Some(json!(6)));
    }

    #[test]
    fn reading_a_variable_without_a_value_fails_naming_it() {
        let assign = compile(json!({"y.$": "$x"}));
        let err = assign
            .evaluate(&json!({}), &json!({}), Variables::none())
            .unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert_eq!(
            err.cause,
            "the variable 'x' read by the path '$x' in the field \"y.$\" in Assign has no value: \
             no state of its scope has assigned it before this state"
        );
    }

    #[test]
    fn a_missing_path_and_a_failing_intrinsic_keep_their_errors() {
        let err = compile(json!({"y.$": "$.nope"}))
            .evaluate(&json!({"a": 1}), &json!({}), Variables::none())
            .unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert_eq!(
            err.cause,
            "the JSONPath \"$.nope\" specified for the field \"y.$\" in Assign could not be found \
             in the input {\"a\":1}"
        );
        let err = compile(json!({"y.$": "States.ArrayLength($.a)"}))
            .evaluate(&json!({"a": 1}), &json!({}), Variables::none())
            .unwrap_err();
        assert_eq!(err.error, INTRINSIC_FAILURE);
    }

    #[test]
    fn bad_names_and_duplicates_are_reported_with_their_pointers() {
        let found = problems(json!({
            "ok": 1,
            "x.y": 2,
            "1st.$": "$.a",
            "states": 3,
            "dup": 4,
            "dup.$": "$.a",
            "bad.$": "not a path"
        }));
        let message = |pointer: &str| {
            let hit = found.iter().find(|(p, _)| p == pointer);
            hit.map(|(_, m)| m.as_str()).unwrap_or_default()
        };
        let mut pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        pointers.sort();
        assert_eq!(pointers, ["/1st.$", "/bad.$", "/dup.$", "/states", "/x.y"]);
        assert_eq!(
            message("/dup.$"),
            "variable \"dup\" is assigned twice in this \"Assign\" field"
        );
        assert!(message("/x.y").contains("a part of a variable cannot be assigned"));
        assert!(message("/states").contains("reserved"));
    }

    #[test]
    fn assign_must_be_an_object() {
        assert_eq!(
            problems(json!(["x"])),
            [(
                String::new(),
                "\"Assign\" must be a JSON object, got [\"x\"]".to_string()
            )]
        );
    }
}
