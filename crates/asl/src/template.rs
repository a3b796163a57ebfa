//! Payload templates: the JSON of `Parameters`, `ResultSelector`, `ItemSelector` and the values
//! of `Assign`, where a key ending in `.$` takes its value from a path, a context path, a
//! variable or an intrinsic function.

use serde_json::{Map, Value};

use crate::error::StatesError;
use crate::intrinsic::{self, Call};
use crate::path::Path;
use crate::variables::Variables;

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A value with nothing to substitute.
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    /// `"key.$": "$.path"`, `"key.$": "$$.Context.path"` or `"key.$": "$variable.path"`.
    Path(Path),
    /// `"key.$": "States.Function(...)"`.
    Intrinsic(Call),
}

/// A problem in a template, with the JSON pointer of the offending field relative to the
/// template's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub pointer: String,
    pub message: String,
}

/// Compiles a template, collecting every problem.
pub fn compile(value: &Value) -> Result<Template, Vec<TemplateError>> {
    let mut errors = Vec::new();
    let template = compile_at(value, "", &mut errors);
    if errors.is_empty() {
        Ok(template)
    } else {
        Err(errors)
    }
}

fn compile_at(value: &Value, pointer: &str, errors: &mut Vec<TemplateError>) -> Template {
    match value {
        Value::Object(map) => {
            let fields = map
                .iter()
                .map(|(key, v)| compile_field(key, v, &child(pointer, key), errors))
                .collect();
            Template::Object(fields)
        }
        Value::Array(items) => Template::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| compile_at(v, &child(pointer, &i.to_string()), errors))
                .collect(),
        ),
        other => Template::Literal(other.clone()),
    }
}

/// Compiles one field of an object template: `key.$` fields become their expression (under
/// the key without `.$`), others their compiled value. `pointer` is the field's own pointer.
pub(crate) fn compile_field(
    key: &str,
    value: &Value,
    pointer: &str,
    errors: &mut Vec<TemplateError>,
) -> (String, Template) {
    let Some(name) = key.strip_suffix(".$") else {
        return (key.to_string(), compile_at(value, pointer, errors));
    };
    let template = match value.as_str() {
        Some(expr) => compile_expression(expr).unwrap_or_else(|message| {
            errors.push(TemplateError {
                pointer: pointer.to_string(),
                message,
            });
            Template::Literal(Value::Null)
        }),
        None => {
            errors.push(TemplateError {
                pointer: pointer.to_string(),
                message: format!(
                    "the value of {key:?} must be a string holding a path or an intrinsic function"
                ),
            });
            Template::Literal(Value::Null)
        }
    };
    (name.to_string(), template)
}

/// A `.$` value: a path, a context path or an intrinsic call.
pub fn compile_expression(expr: &str) -> Result<Template, String> {
    if expr.starts_with('$') {
        Path::parse(expr)
            .map(Template::Path)
            .map_err(|e| e.to_string())
    } else if expr.starts_with("States.") {
        intrinsic::compile(expr)
            .map(Template::Intrinsic)
            .map_err(|e| e.to_string())
    } else {
        Err(format!(
            "{expr:?} is neither a path (starting with '$') nor an intrinsic function"
        ))
    }
}

/// Appends one escaped reference token to a JSON pointer (RFC 6901).
pub fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", token.replace('~', "~0").replace('/', "~1"))
}

impl Template {
    /// Builds the payload from the state's data, the context object and the variables.
    /// `field` names the template (`Parameters`, `ResultSelector`, ...) in error causes.
    pub fn evaluate(
        &self,
        input: &Value,
        context: &Value,
        vars: &Variables,
        field: &str,
    ) -> Result<Value, StatesError> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut map = Map::new();
                for (key, t) in fields {
                    let value = t.evaluate_field(key, input, context, vars, field)?;
                    map.insert(key.clone(), value);
                }
                Ok(Value::Object(map))
            }
            Template::Array(items) => items
                .iter()
                .map(|t| t.evaluate(input, context, vars, field))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Path(_) | Template::Intrinsic(_) => {
                self.evaluate_field("", input, context, vars, field)
            }
        }
    }

    /// Evaluates the value of the field `key` (named without `.$`) of an object template.
    pub(crate) fn evaluate_field(
        &self,
        key: &str,
        input: &Value,
        context: &Value,
        vars: &Variables,
        field: &str,
    ) -> Result<Value, StatesError> {
        match self {
            Template::Path(path) => path
                .select(input, context, vars)
                .ok_or_else(|| path_not_found(path, key, input, context, vars, field)),
            Template::Intrinsic(call) => intrinsic::evaluate(call, input, context, vars),
            other => other.evaluate(input, context, vars, field),
        }
    }
}

/// Why a `.$` path selected nothing: its variable has no value, or the node is missing.
#[cold]
fn path_not_found(
    path: &Path,
    key: &str,
    input: &Value,
    context: &Value,
    vars: &Variables,
    field: &str,
) -> StatesError {
    let place = format!("the field \"{key}.$\" in {field}");
    if let Some(unassigned) = path.unassigned(vars, &place) {
        return unassigned;
    }
    let (what, document) = match path.variable() {
        Some(name) => (
            format!("variable '{name}'"),
            vars.get(name).unwrap_or_default(),
        ),
        None if path.is_context() => ("input".to_string(), context.clone()),
        None => ("input".to_string(), input.clone()),
    };
    StatesError::runtime(format!(
        "the JSONPath {:?} specified for {place} could not be found in the {what} {document}",
        path.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::RUNTIME;

    fn eval(template: Value, input: Value) -> Result<Value, StatesError> {
        compile(&template).unwrap().evaluate(
            &input,
            &json!({"Execution": {"Id": "arn:exec"}}),
            Variables::none(),
            "Parameters",
        )
    }

    #[test]
    fn developer_guide_parameters_example() {
        let template = json!({
            "comment": "Selecting what I care about.",
            "MyDetails": {
                "size.$": "$.product.details.size",
                "exists.$": "$.product.availability",
                "StaticValue": "foo"
            }
        });
        let input = json!({
            "comment": "Example for Parameters.",
            "product": {
                "details": {"color": "blue", "size": "small", "material": "cotton"},
                "availability": "in stock",
                "sku": "2317",
                "cost": "$23"
            }
        });
        assert_eq!(
            eval(template, input).unwrap(),
            json!({
                "comment": "Selecting what I care about.",
                "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"}
            })
        );
    }

    #[test]
    fn context_paths_and_intrinsics_are_substituted() {
        let template = json!({
            "exec.$": "$$.Execution.Id",
            "greeting.$": "States.Format('hi {}', $.name)",
            "list": [{"n.$": "$.name"}]
        });
        assert_eq!(
            eval(template, json!({"name": "bob"})).unwrap(),
            json!({"exec": "arn:exec", "greeting": "hi bob", "list": [{"n": "bob"}]})
        );
    }

    #[test]
    fn missing_path_is_a_runtime_error_naming_the_field() {
        let err = eval(json!({"a.$": "$.nope"}), json!({"x": 1})).unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert_eq!(
            err.cause,
            "the JSONPath \"$.nope\" specified for the field \"a.$\" in Parameters could not be \
             found in the input {\"x\":1}"
        );
    }

    #[test]
    fn all_template_problems_are_reported_with_pointers() {
        let errors = compile(&json!({
            "a.$": 5,
            "nested": {"b.$": "oops"},
            "list": [{"c.$": "States.Nope()"}]
        }))
        .unwrap_err();
        let mut pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        pointers.sort();
        assert_eq!(pointers, ["/a.$", "/list/0/c.$", "/nested/b.$"]);
    }

    /// Variables with the given values, as a block holds them after an `Assign`.
    fn vars(value: Value) -> Variables {
        let mut assigned = crate::variables::Assigned::default();
        for (name, v) in value.as_object().unwrap() {
            assigned.push(name, v.clone()).unwrap();
        }
        let total = std::sync::atomic::AtomicUsize::new(0);
        let mut block = crate::variables::BlockVariables::open(Variables::default(), &total);
        block.assign(assigned).unwrap();
        block.get().clone()
    }

    #[test]
    fn variables_are_substituted_in_paths_and_intrinsic_arguments() {
        let template = compile(&json!({
            "id.$": "$order.id",
            "all.$": "$order",
            "label.$": "States.Format('{} x{}', $order.id, $count)",
            "fromInput.$": "$.x"
        }))
        .unwrap();
        let vars = vars(json!({"order": {"id": "o-7"}, "count": 2}));
        let out = template
            .evaluate(&json!({"x": 1}), &json!({}), &vars, "Parameters")
            .unwrap();
        assert_eq!(
            out,
            json!({"id": "o-7", "all": {"id": "o-7"}, "label": "o-7 x2", "fromInput": 1})
        );
    }

    #[test]
    fn a_variable_without_a_value_in_an_intrinsic_argument_is_named() {
        let template = compile(&json!({"n.$": "States.ArrayLength($list)"})).unwrap();
        let err = template
            .evaluate(&json!({}), &json!({}), Variables::none(), "Parameters")
            .unwrap_err();
        assert_eq!(err.error, RUNTIME);
        assert_eq!(
            err.cause,
            "the variable 'list' read by the path '$list' in an intrinsic function argument has \
             no value: no state of its scope has assigned it before this state"
        );
    }

    #[test]
    fn pointer_tokens_are_escaped() {
        assert_eq!(child("/x", "a/b~c"), "/x/a~1b~0c");
    }
}
