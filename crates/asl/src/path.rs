//! JSONPath as ASL uses it: Reference Paths (one node, readable and writable) and Paths
//! (any JSONPath query, read-only) on the state's data, the context object or a variable.
//!
//! AWS evaluates paths with Jayway JsonPath. A definite path (only names and indexes) selects
//! one node and fails when that node is missing; any other query returns the array of the
//! nodes it matched. Queries are evaluated by `serde_json_path` (RFC 9535); dot-notation names
//! that RFC 9535 does not allow (`$.detail-type`) are rewritten to bracket notation first so that
//! such paths work as they do on AWS. Paths beginning with `$$` address the context object, and
//! paths beginning with `$` and a variable name (`$order.items[0]`) address that variable.

use serde_json::{Map, Value};
use serde_json_path::JsonPath;
use thiserror::Error;

use crate::error::StatesError;
use crate::variables::{self, Variables};

/// A path that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid path {path:?}: {reason}")]
pub struct PathError {
    pub path: String,
    pub reason: String,
}

impl PathError {
    fn new(path: &str, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// One step of a reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Field(String),
    Index(usize),
}

/// A path that names exactly one node (`$`, `$.a.b`, `$['a'][0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferencePath {
    source: String,
    segments: Vec<Segment>,
}

impl ReferencePath {
    /// Parses a reference path; queries (wildcards, filters, slices, `..`) are refused.
    pub fn parse(source: &str) -> Result<Self, PathError> {
        if let Some((name, _)) = source
            .strip_prefix('$')
            .and_then(variables::split_reference)
        {
            return Err(PathError::new(
                source,
                format!(
                    "a reference path cannot address the variable ${name}; variables are \
                     assigned with \"Assign\""
                ),
            ));
        }
        match parse_reference(source)? {
            Some(segments) => Ok(Self {
                source: source.to_string(),
                segments,
            }),
            None => Err(PathError::new(
                source,
                "a reference path may only contain field names and array indexes",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The node this path names, if present.
    pub fn get<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.segments
            .iter()
            .try_fold(value, |node, segment| match segment {
                Segment::Field(name) => node.as_object()?.get(name),
                Segment::Index(i) => node.as_array()?.get(*i),
            })
    }

    /// Stores `value` at this path inside `target`, creating missing objects on the way
    /// (ResultPath semantics). Fails when an existing node on the way has the wrong type.
    pub fn set(&self, target: &mut Value, value: Value) -> Result<(), String> {
        let Some((last, parents)) = self.segments.split_last() else {
            *target = value;
            return Ok(());
        };
        let mut node = target;
        for segment in parents {
            node = step_mut(node, segment)?;
        }
        match (last, node) {
            (Segment::Field(name), Value::Object(map)) => {
                map.insert(name.clone(), value);
                Ok(())
            }
            (Segment::Index(i), Value::Array(items)) if *i < items.len() => {
                items[*i] = value;
                Ok(())
            }
            (segment, node) => Err(mismatch(segment, node)),
        }
    }
}

fn step_mut<'a>(node: &'a mut Value, segment: &Segment) -> Result<&'a mut Value, String> {
    let problem = match (segment, &*node) {
        (Segment::Field(_), Value::Object(_)) => None,
        (Segment::Index(i), Value::Array(items)) if *i < items.len() => None,
        (segment, other) => Some(mismatch(segment, other)),
    };
    if let Some(problem) = problem {
        return Err(problem);
    }
    match (segment, node) {
        (Segment::Field(name), Value::Object(map)) => Ok(map
            .entry(name.clone())
            .or_insert_with(|| Value::Object(Map::new()))),
        (Segment::Index(i), Value::Array(items)) => Ok(&mut items[*i]),
        (segment, other) => Err(mismatch(segment, other)),
    }
}

fn mismatch(segment: &Segment, node: &Value) -> String {
    match segment {
        Segment::Field(name) => format!("cannot set field {name:?} on {}", type_name(node)),
        Segment::Index(i) => format!("cannot set index {i} on {}", type_name(node)),
    }
}

/// The JSON type name of a value, for error messages.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A read-only path: a reference path or a JSONPath query, on the state's data, on the
/// context object (`$$`) or on a variable (`$name`).
#[derive(Debug, Clone)]
pub struct Path {
    source: String,
    root: Root,
    kind: PathKind,
}

/// The document a path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Input,
    Context,
    /// A variable, whose name is the source's `name_len` bytes after the `$` (names have at
    /// most 80 characters, so this keeps every Path, and the states holding them, small).
    Variable {
        name_len: u16,
    },
}

#[derive(Debug, Clone)]
enum PathKind {
    Reference(ReferencePath),
    Query(Box<JsonPath>),
}

impl PartialEq for Path {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Path {
    pub fn parse(source: &str) -> Result<Self, PathError> {
        let (root, data_path) = split_root(source)?;
        let kind = match parse_reference(&data_path)? {
            Some(segments) => PathKind::Reference(ReferencePath {
                source: data_path,
                segments,
            }),
            None => PathKind::Query(Box::new(parse_query(source, &data_path)?)),
        };
        Ok(Self {
            source: source.to_string(),
            root,
            kind,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn is_context(&self) -> bool {
        self.root == Root::Context
    }

    /// The variable this path reads, for `$name...` paths.
    pub fn variable(&self) -> Option<&str> {
        match self.root {
            Root::Variable { name_len } => self.source.get(1..1 + usize::from(name_len)),
            _ => None,
        }
    }

    /// The reference path, when this path is definite and addresses the state's data.
    pub fn as_reference(&self) -> Option<&ReferencePath> {
        match &self.kind {
            PathKind::Reference(r) if self.root == Root::Input => Some(r),
            _ => None,
        }
    }

    /// Selects from the path's root. `None` means a definite path named a node that does not
    /// exist, or the variable has no value; a query always yields an array (maybe empty).
    pub fn select(&self, input: &Value, context: &Value, vars: &Variables) -> Option<Value> {
        match self.root {
            Root::Input => self.select_in(input),
            Root::Context => self.select_in(context),
            Root::Variable { .. } => {
                let value = vars.get(self.variable()?)?;
                match &self.kind {
                    PathKind::Reference(r) if r.is_root() => Some(value),
                    _ => self.select_in(&value),
                }
            }
        }
    }

    fn select_in(&self, root: &Value) -> Option<Value> {
        match &self.kind {
            PathKind::Reference(r) => r.get(root).cloned(),
            PathKind::Query(q) => Some(Value::Array(
                q.query(root).all().into_iter().cloned().collect(),
            )),
        }
    }

    /// The error for a path that selected nothing because it reads a variable without a value
    /// (`States.Runtime`); `None` when that is not why. `field` names where the path is
    /// written, for the cause. Callers ask only once a selection failed, so that a successful
    /// one costs nothing extra.
    pub fn unassigned(&self, vars: &Variables, field: &str) -> Option<StatesError> {
        let name = self.variable()?;
        (!vars.contains(name)).then(|| {
            StatesError::runtime(format!(
                "the variable '{name}' read by the path '{}' in {field} has no value: no state \
                 of its scope has assigned it before this state",
                self.source
            ))
        })
    }
}

/// Splits a path into its root and a `$`-rooted path on that root (`$x.a` → `x`, `$.a`).
fn split_root(source: &str) -> Result<(Root, String), PathError> {
    let Some(rest) = source.strip_prefix('$') else {
        return Err(PathError::new(source, "a path must begin with '$'"));
    };
    if rest.starts_with('$') {
        return Ok((Root::Context, rest.to_string()));
    }
    let Some((name, tail)) = variables::split_reference(rest) else {
        return Ok((Root::Input, source.to_string()));
    };
    variables::check_name(name).map_err(|reason| PathError::new(source, reason))?;
    let name_len = u16::try_from(name.len()).expect("a checked name has at most 80 characters");
    Ok((Root::Variable { name_len }, format!("${tail}")))
}

/// Brackets and parentheses a path may nest: the JSONPath parser recurses once per level.
const MAX_PATH_NESTING: usize = 64;

fn parse_query(source: &str, data_path: &str) -> Result<JsonPath, PathError> {
    if bracket_depth(data_path) > MAX_PATH_NESTING {
        return Err(PathError::new(
            source,
            format!("brackets and parentheses nest more than {MAX_PATH_NESTING} levels deep"),
        ));
    }
    let normalized = normalize_dot_names(data_path);
    JsonPath::parse(&normalized).map_err(|e| PathError::new(source, e.to_string()))
}

/// The deepest nesting of `[`/`(` outside quoted strings.
fn bracket_depth(path: &str) -> usize {
    let (mut depth, mut deepest, mut quote, mut escaped) = (0usize, 0usize, None, false);
    for c in path.chars() {
        match (quote, c) {
            (Some(_), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), c) if c == q && !escaped => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[' | '(') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (None, ']' | ')') => depth = depth.saturating_sub(1),
            _ => {}
        }
        escaped = false;
    }
    deepest
}

/// Parses a definite path into segments. `Ok(None)`: well-formed start but not definite.
fn parse_reference(source: &str) -> Result<Option<Vec<Segment>>, PathError> {
    let Some(rest) = source.strip_prefix('$') else {
        return Err(PathError::new(source, "a path must begin with '$'"));
    };
    let chars: Vec<char> = rest.chars().collect();
    let mut segments = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let step = match chars[i] {
            '.' => dot_segment(&chars, i + 1),
            '[' => bracket_segment(&chars, i + 1),
            _ => None,
        };
        match step {
            Some((segment, next)) => {
                segments.push(segment);
                i = next;
            }
            None => return Ok(None),
        }
    }
    Ok(Some(segments))
}

fn dot_segment(chars: &[char], start: usize) -> Option<(Segment, usize)> {
    let end = (start..chars.len())
        .find(|&j| chars[j] == '.' || chars[j] == '[')
        .unwrap_or(chars.len());
    let name: String = chars[start..end].iter().collect();
    let query_chars = |c: char| "*@,:?()]'\"".contains(c) || c.is_whitespace();
    if name.is_empty() || name.chars().any(query_chars) {
        return None;
    }
    Some((Segment::Field(name), end))
}

fn bracket_segment(chars: &[char], start: usize) -> Option<(Segment, usize)> {
    let quote = *chars.get(start)?;
    if quote == '\'' || quote == '"' {
        let (name, after) = quoted(chars, start + 1, quote)?;
        return (chars.get(after) == Some(&']')).then_some((Segment::Field(name), after + 1));
    }
    let end = (start..chars.len()).find(|&j| chars[j] == ']')?;
    let digits: String = chars[start..end].iter().collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((Segment::Index(digits.parse().ok()?), end + 1))
}

fn quoted(chars: &[char], start: usize, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut i = start;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                out.push(*chars.get(i + 1)?);
                i += 2;
            }
            c if c == quote => return Some((out, i + 1)),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

/// Rewrites `.name` segments that RFC 9535 shorthand cannot express into `['name']`,
/// leaving bracketed parts (filters, quoted names) untouched.
fn normalize_dot_names(path: &str) -> String {
    let chars: Vec<char> = path.chars().collect();
    let mut out = String::with_capacity(path.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '[' => {
                let end = bracket_end(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
            }
            '.' => {
                out.push('.');
                i += 1;
                if chars.get(i) == Some(&'.') {
                    out.push('.');
                    i += 1;
                }
                let end = (i..chars.len())
                    .find(|&j| chars[j] == '.' || chars[j] == '[')
                    .unwrap_or(chars.len());
                let name: String = chars[i..end].iter().collect();
                push_name(&mut out, &name);
                i = end;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn push_name(out: &mut String, name: &str) {
    if name == "*" || name.is_empty() || is_shorthand(name) {
        out.push_str(name);
        return;
    }
    if out.ends_with("..") {
        out.push_str(&format!("['{}']", escape_single(name)));
    } else {
        out.pop();
        out.push_str(&format!("['{}']", escape_single(name)));
    }
}

fn is_shorthand(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || !c.is_ascii());
    first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || !c.is_ascii())
}

fn escape_single(name: &str) -> String {
    name.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Index just past the bracket group starting at `start`, honouring quotes and nesting.
fn bracket_end(chars: &[char], start: usize) -> usize {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            Some(_) if c == '\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '[' => depth += 1,
            None if c == ']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            None => {}
        }
        i += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reference_paths_parse_dots_brackets_and_indexes() {
        let path = ReferencePath::parse("$.a['b c'][2].d-e").unwrap();
        assert_eq!(
            path.segments(),
            &[
                Segment::Field("a".into()),
                Segment::Field("b c".into()),
                Segment::Index(2),
                Segment::Field("d-e".into()),
            ]
        );
    }

    #[test]
    fn reference_path_refuses_wildcards_and_filters() {
        for source in ["$.a[*]", "$..a", "$.a[?(@.x)]", "$.a[0:2]", "$.*"] {
            assert!(ReferencePath::parse(source).is_err(), "{source}");
        }
    }

    #[test]
    fn path_must_begin_with_dollar() {
        let err = Path::parse("a.b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path \"a.b\": a path must begin with '$'"
        );
    }

    #[test]
    fn definite_path_selects_one_node_or_none() {
        let input = json!({"a": {"b": [10, 20]}});
        let path = Path::parse("$.a.b[1]").unwrap();
        assert_eq!(
            path.select(&input, &Value::Null, Variables::none()),
            Some(json!(20))
        );
        let missing = Path::parse("$.a.c").unwrap();
        assert_eq!(
            missing.select(&input, &Value::Null, Variables::none()),
            None
        );
    }

    #[test]
    fn query_path_returns_all_matches_as_array() {
        let input = json!({"items": [{"id": 1}, {"id": 2}, {"x": 3}]});
        let path = Path::parse("$.items[*].id").unwrap();
        assert_eq!(
            path.select(&input, &Value::Null, Variables::none()),
            Some(json!([1, 2]))
        );
        let filter = Path::parse("$.items[?(@.id > 1)]").unwrap();
        assert_eq!(
            filter.select(&input, &Value::Null, Variables::none()),
            Some(json!([{"id": 2}]))
        );
    }

    #[test]
    fn query_with_dashed_names_works_like_jayway() {
        let input = json!({"detail-type": [{"a-b": 1}, {"a-b": 2}]});
        let path = Path::parse("$.detail-type[*].a-b").unwrap();
        assert_eq!(
            path.select(&input, &Value::Null, Variables::none()),
            Some(json!([1, 2]))
        );
    }

    #[test]
    fn context_paths_read_the_context_object() {
        let path = Path::parse("$$.Execution.Id").unwrap();
        assert!(path.is_context());
        let context = json!({"Execution": {"Id": "arn:x"}});
        assert_eq!(
            path.select(&json!({}), &context, Variables::none()),
            Some(json!("arn:x"))
        );
    }

    #[test]
    fn set_creates_missing_objects() {
        let mut target = json!({"a": 1});
        ReferencePath::parse("$.b.c")
            .unwrap()
            .set(&mut target, json!(2))
            .unwrap();
        assert_eq!(target, json!({"a": 1, "b": {"c": 2}}));
    }

    #[test]
    fn set_fails_through_a_non_object() {
        let mut target = json!({"a": "text"});
        let err = ReferencePath::parse("$.a.b")
            .unwrap()
            .set(&mut target, json!(2))
            .unwrap_err();
        assert_eq!(err, "cannot set field \"b\" on a string");
    }

    #[test]
    fn set_at_root_replaces_everything() {
        let mut target = json!({"a": 1});
        ReferencePath::parse("$")
            .unwrap()
            .set(&mut target, json!("x"))
            .unwrap();
        assert_eq!(target, json!("x"));
    }

    fn vars(pairs: &[(&str, Value)]) -> Variables {
        let mut assigned = crate::variables::Assigned::default();
        for (name, value) in pairs {
            assigned.push(name, value.clone()).unwrap();
        }
        let total = std::sync::atomic::AtomicUsize::new(0);
        let mut block = crate::variables::BlockVariables::open(Variables::default(), &total);
        block.assign(assigned).unwrap();
        block.get().clone()
    }

    #[test]
    fn variable_paths_read_the_variable_and_paths_into_it() {
        let vars = vars(&[("order", json!({"items": [{"id": 7}, {"id": 8}], "n": 2}))]);
        let select = |p: &str| {
            Path::parse(p)
                .unwrap()
                .select(&json!({}), &json!({}), &vars)
        };
        assert_eq!(select("$order.n"), Some(json!(2)));
        assert_eq!(select("$order['items'][1].id"), Some(json!(8)));
        assert_eq!(select("$order.items[*].id"), Some(json!([7, 8])));
        assert_eq!(select("$order.missing"), None);
        assert_eq!(Path::parse("$order").unwrap().variable(), Some("order"));
        assert!(Path::parse("$order.n").unwrap().as_reference().is_none());
    }

    #[test]
    fn a_variable_without_a_value_is_a_runtime_error_naming_it() {
        let path = Path::parse("$missing.a").unwrap();
        assert_eq!(path.select(&json!({}), &json!({}), Variables::none()), None);
        let err = path.unassigned(Variables::none(), "InputPath").unwrap();
        assert_eq!(err.error, crate::error::RUNTIME);
        assert_eq!(
            err.cause,
            "the variable 'missing' read by the path '$missing.a' in InputPath has no value: no \
             state of its scope has assigned it before this state"
        );
        let input_path = Path::parse("$.missing").unwrap();
        assert_eq!(input_path.unassigned(Variables::none(), "InputPath"), None);
    }

    #[test]
    fn variable_references_must_be_valid_names() {
        let err = Path::parse("$states.input").unwrap_err();
        assert!(err.reason.contains("reserved"), "{err}");
        assert!(Path::parse(&format!("${}", "a".repeat(81))).is_err());
        assert!(Path::parse("$x-y").is_err());
    }

    #[test]
    fn reference_paths_cannot_address_variables() {
        let err = ReferencePath::parse("$x.y").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid path \"$x.y\": a reference path cannot address the variable $x; variables \
             are assigned with \"Assign\""
        );
    }

    #[test]
    fn malformed_query_is_an_error_naming_the_path() {
        let err = Path::parse("$.a[?(@.x ==)]").unwrap_err();
        assert_eq!(err.path, "$.a[?(@.x ==)]");
    }

    #[test]
    fn a_path_nested_too_deeply_is_refused_before_it_is_parsed() {
        let deep = format!("$[?{}@.a{}]", "(".repeat(5_000), ")".repeat(5_000));
        let err = Path::parse(&deep).unwrap_err();
        assert!(
            err.to_string()
                .contains("brackets and parentheses nest more than 64 levels deep"),
            "{err}"
        );
        assert!(Path::parse("$[?(@.name == '((((')]").is_ok());
    }
}
