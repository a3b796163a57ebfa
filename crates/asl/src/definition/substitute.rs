//! `DefinitionSubstitutions`: `${Name}` placeholders in string values are replaced before the
//! definition is parsed, as AWS does for state machines created with substitutions.

use std::collections::HashMap;

use serde_json::Value;

use super::ValidationError;
use crate::template::child;

/// Replaces every `${Name}` in string values; names without a substitution are reported with
/// the pointer of the string that holds them.
pub fn substitute(
    value: &mut Value,
    substitutions: &HashMap<String, String>,
) -> Result<(), Vec<ValidationError>> {
    let mut errors = Vec::new();
    walk(value, "", substitutions, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn walk(
    value: &mut Value,
    pointer: &str,
    substitutions: &HashMap<String, String>,
    errors: &mut Vec<ValidationError>,
) {
    match value {
        Value::String(s) => {
            if let Some(replaced) = replace(s, pointer, substitutions, errors) {
                *s = replaced;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &child(pointer, &i.to_string()), substitutions, errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                walk(item, &child(pointer, key), substitutions, errors);
            }
        }
        _ => {}
    }
}

fn replace(
    text: &str,
    pointer: &str,
    substitutions: &HashMap<String, String>,
    errors: &mut Vec<ValidationError>,
) -> Option<String> {
    if !text.contains("${") {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}').filter(|&end| is_name(&after[..end])) else {
            out.push_str("${");
            rest = after;
            continue;
        };
        let name = &after[..end];
        match substitutions.get(name) {
            Some(v) => out.push_str(v),
            None => errors.push(ValidationError {
                pointer: pointer.to_string(),
                message: format!(
                    "unresolved substitution ${{{name}}}: no definition substitution named {name:?}"
                ),
            }),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn placeholders_in_strings_are_replaced() {
        let mut value = json!({"a": ["x-${One}-${Two}"], "b": 3, "${One}": "${One}"});
        let subs = HashMap::from([
            ("One".to_string(), "1".to_string()),
            ("Two".to_string(), "2".to_string()),
        ]);
        substitute(&mut value, &subs).unwrap();
        assert_eq!(value, json!({"a": ["x-1-2"], "b": 3, "${One}": "1"}));
    }

    #[test]
    fn unresolved_placeholders_are_each_reported() {
        let mut value = json!({"States": {"A": {"Resource": "${Fn}", "Comment": "${Other} ${}"}}});
        let errors = substitute(&mut value, &HashMap::new()).unwrap_err();
        let found: Vec<_> = errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/States/A/Comment",
                    "unresolved substitution ${Other}: no definition substitution named \"Other\""
                ),
                (
                    "/States/A/Resource",
                    "unresolved substitution ${Fn}: no definition substitution named \"Fn\""
                ),
            ]
        );
    }
}
