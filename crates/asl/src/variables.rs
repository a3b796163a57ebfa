//! Workflow variables: the names a state may assign, the scopes they live in and the size
//! limits AWS Step Functions puts on them.
//!
//! A *scope* holds the variables assigned by the states of one block (the top level, one
//! Parallel branch, one Map iteration). A block reads its own scope and, read-only, the scopes of
//! the blocks around it; it never writes to them (the definition is refused at load otherwise).
//! Scopes are shared copy-on-write (`Arc`), so passing them to inner blocks, checkpoints and
//! states costs a pointer, and a block without variables allocates nothing. Values are kept as
//! their compact JSON text, like the payloads of checkpoints and history: an execution waiting
//! in a state holds its variables at the cost of their length, and a state reading one parses
//! it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use unicode_ident::{is_xid_continue, is_xid_start};

use crate::error::{DATA_LIMIT_EXCEEDED, StatesError};

/// Longest variable name, in Unicode characters.
pub const MAX_NAME_CHARS: usize = 80;
/// The variable name the States Language reserves; no state may assign it.
pub const RESERVED: &str = "states";
/// Largest value of one variable (bytes of JSON).
pub const MAX_VARIABLE_BYTES: usize = 262_144;
/// Largest combined size of the values one `Assign` field assigns.
pub const MAX_ASSIGN_BYTES: usize = 262_144;
/// Largest combined size of every variable an execution holds at one time.
pub const MAX_EXECUTION_BYTES: usize = 10 * 1024 * 1024;

/// Checks a variable name: a Unicode identifier (UAX #31) of at most 80 characters that is not
/// the reserved `states`. The message names the name and what is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("a variable name cannot be empty".to_string());
    };
    if !is_xid_start(first) {
        return Err(format!(
            "variable name {name:?} must begin with a Unicode letter (ID_Start), not {first:?}"
        ));
    }
    if let Some(bad) = name.chars().find(|c| !is_xid_continue(*c)) {
        return Err(format!(
            "variable name {name:?} contains {bad:?}; names hold only Unicode letters, digits and \
             connectors (ID_Continue), and a part of a variable cannot be assigned"
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "variable name {name:?} is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    if name == RESERVED {
        return Err(format!(
            "\"{RESERVED}\" is a reserved variable name and cannot be assigned or referenced"
        ));
    }
    Ok(())
}

/// Splits the text after a path's leading `$` into a variable name and the rest of the path,
/// when it starts with a variable reference (`x.y[0]` → `("x", ".y[0]")`).
pub fn split_reference(rest: &str) -> Option<(&str, &str)> {
    let first = rest.chars().next()?;
    if !is_xid_start(first) {
        return None;
    }
    let end = rest
        .char_indices()
        .find(|(_, c)| !is_xid_continue(*c))
        .map_or(rest.len(), |(i, _)| i);
    Some(rest.split_at(end))
}

/// One stored variable: its compact JSON text, whose length is its size.
#[derive(Debug, Clone)]
struct Stored(Box<RawValue>);

impl Stored {
    fn bytes(&self) -> usize {
        self.0.get().len()
    }

    fn value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

/// Texts are compact JSON written by serde_json, so equal values have equal texts.
impl PartialEq for Stored {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

/// The variables of one scope. `None` until something is assigned, so that blocks without
/// variables allocate nothing; one pointer otherwise, since every checkpoint and running state
/// holds one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    values: Option<Arc<Values>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Values {
    map: BTreeMap<String, Stored>,
    /// Bytes of JSON of every value in `map`.
    bytes: usize,
}

impl Scope {
    pub fn is_empty(&self) -> bool {
        self.values.as_ref().is_none_or(|v| v.map.is_empty())
    }

    /// The value of a variable of this scope, parsed from its text.
    pub fn get(&self, name: &str) -> Option<Value> {
        Some(self.values.as_ref()?.map.get(name)?.value())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.values
            .as_ref()
            .is_some_and(|v| v.map.contains_key(name))
    }

    /// Bytes of JSON of every value in this scope.
    pub fn bytes(&self) -> usize {
        self.values.as_ref().map_or(0, |v| v.bytes)
    }

    fn bytes_after(&self, assigned: &Assigned) -> usize {
        let replaced: usize = assigned
            .values
            .iter()
            .filter_map(|a| self.values.as_ref()?.map.get(&a.name).map(Stored::bytes))
            .sum();
        self.bytes() - replaced + assigned.bytes()
    }

    /// Stores the new values, copying the map only if a checkpoint or an inner block still
    /// shares it.
    fn store(&mut self, assigned: Assigned) {
        let bytes = self.bytes_after(&assigned);
        let values = Arc::make_mut(self.values.get_or_insert_with(Arc::default));
        values.bytes = bytes;
        for a in assigned.values {
            let text = RawValue::from_string(a.json).expect("serde_json writes valid JSON");
            values.map.insert(a.name, Stored(text));
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let values = self.values.as_deref().into_iter().flat_map(|v| &v.map);
        serializer.collect_map(values.map(|(name, stored)| (name, &stored.0)))
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let values = BTreeMap::<String, Value>::deserialize(deserializer)?;
        let mut scope = Scope::default();
        let mut assigned = Assigned::default();
        for (name, value) in values {
            let json = value.to_string();
            assigned.values.push(AssignedValue { name, value, json });
        }
        if !assigned.values.is_empty() {
            scope.store(assigned);
        }
        Ok(scope)
    }
}

/// What one block can read: its own scope and the frozen scopes of the blocks around it.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    own: Scope,
    outer: Option<Arc<Variables>>,
}

static NONE: Variables = Variables {
    own: Scope { values: None },
    outer: None,
};

impl Variables {
    /// No variables at all, for evaluating paths outside any execution.
    pub fn none() -> &'static Variables {
        &NONE
    }

    pub fn new(own: Scope, outer: Option<Arc<Variables>>) -> Self {
        Self { own, outer }
    }

    /// The value of a variable in this scope or an enclosing one.
    pub fn get(&self, name: &str) -> Option<Value> {
        self.own
            .get(name)
            .or_else(|| self.outer.as_deref()?.get(name))
    }

    /// Whether a variable has a value in this scope or an enclosing one.
    pub fn contains(&self, name: &str) -> bool {
        self.own.contains(name) || self.outer.as_deref().is_some_and(|o| o.contains(name))
    }

    pub fn own(&self) -> &Scope {
        &self.own
    }

    /// What an inner block (Parallel branch, Map iteration) sees of this one; `None` when
    /// there is nothing to see, so that inner blocks of a variable-free execution cost nothing.
    pub fn enclosing(&self) -> Option<Arc<Variables>> {
        if self.own.is_empty() {
            return self.outer.clone();
        }
        Some(Arc::new(self.clone()))
    }
}

/// One value computed by an `Assign` field, with its JSON (its size, and its form in history).
#[derive(Debug, Clone, PartialEq)]
struct AssignedValue {
    name: String,
    value: Value,
    json: String,
}

/// The new values one `Assign` field computed. They take effect only when the state exits:
/// every expression of the state reads the values as they were on state entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assigned {
    values: Vec<AssignedValue>,
}

impl Assigned {
    /// Adds a value, enforcing the per-variable and per-`Assign` size limits.
    pub fn push(&mut self, name: &str, value: Value) -> Result<(), StatesError> {
        crate::nesting::check(&value, &format!("the value assigned to variable '{name}'"))?;
        let json = value.to_string();
        if json.len() > MAX_VARIABLE_BYTES {
            return Err(StatesError::new(
                DATA_LIMIT_EXCEEDED,
                format!(
                    "the value assigned to variable '{name}' has {} bytes, more than the \
                     {MAX_VARIABLE_BYTES} allowed for one variable",
                    json.len()
                ),
            ));
        }
        let total = self.bytes() + json.len();
        if total > MAX_ASSIGN_BYTES {
            return Err(StatesError::new(
                DATA_LIMIT_EXCEEDED,
                format!(
                    "the values of one Assign field have {total} bytes (at variable '{name}'), \
                     more than the {MAX_ASSIGN_BYTES} allowed"
                ),
            ));
        }
        self.values.push(AssignedValue {
            name: name.to_string(),
            value,
            json,
        });
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Bytes of JSON of the new values.
    pub fn bytes(&self) -> usize {
        self.values.iter().map(|a| a.json.len()).sum()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|a| a.name.as_str())
    }

    /// Name → value as JSON text, as a state-exited event's `assignedVariables` shows them.
    pub fn to_history(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|a| (a.name.clone(), a.json.clone()))
            .collect()
    }
}

/// The variables of a running block, counted in its execution's total while the block runs
/// (dropping it, when the block ends or is cancelled, takes them out of the total).
#[derive(Debug)]
pub struct BlockVariables<'a> {
    variables: Variables,
    /// The execution's total, shared by every block of the execution.
    total: &'a AtomicUsize,
}

impl<'a> BlockVariables<'a> {
    pub fn open(variables: Variables, total: &'a AtomicUsize) -> Self {
        let bytes = variables.own.bytes();
        if bytes > 0 {
            total.fetch_add(bytes, Ordering::Relaxed);
        }
        Self { variables, total }
    }

    pub fn get(&self) -> &Variables {
        &self.variables
    }

    /// Applies the values a state assigned, unless the execution would then hold more than
    /// [`MAX_EXECUTION_BYTES`] of variables.
    pub fn assign(&mut self, assigned: Assigned) -> Result<(), StatesError> {
        let before = self.variables.own.bytes();
        let after = self.variables.own.bytes_after(&assigned);
        if after > before {
            let grown = after - before;
            let total = self.total.fetch_add(grown, Ordering::Relaxed) + grown;
            if total > MAX_EXECUTION_BYTES {
                self.total.fetch_sub(grown, Ordering::Relaxed);
                let names: Vec<&str> = assigned.names().collect();
                return Err(StatesError::new(
                    DATA_LIMIT_EXCEEDED,
                    format!(
                        "assigning {} would bring the variables of this execution to {total} \
                         bytes, more than the {MAX_EXECUTION_BYTES} allowed",
                        names.join(", ")
                    ),
                ));
            }
        } else {
            self.total.fetch_sub(before - after, Ordering::Relaxed);
        }
        self.variables.own.store(assigned);
        Ok(())
    }
}

impl Drop for BlockVariables<'_> {
    fn drop(&mut self) {
        let bytes = self.variables.own.bytes();
        if bytes > 0 {
            self.total.fetch_sub(bytes, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn assigned(pairs: &[(&str, Value)]) -> Assigned {
        let mut a = Assigned::default();
        for (name, value) in pairs {
            a.push(name, value.clone()).unwrap();
        }
        a
    }

    #[test]
    fn names_follow_unicode_identifier_rules() {
        for good in ["x", "productName", "größe", "名前", "a_1", "x\u{0301}"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        assert_eq!(
            check_name("1x").unwrap_err(),
            "variable name \"1x\" must begin with a Unicode letter (ID_Start), not '1'"
        );
        assert!(check_name("_x").is_err(), "'_' is not ID_Start");
        assert!(check_name("x.y").unwrap_err().contains("contains '.'"));
        assert!(check_name("x-y").is_err());
        assert!(check_name(&"a".repeat(80)).is_ok());
        assert_eq!(
            check_name(&"a".repeat(81)).unwrap_err(),
            format!(
                "variable name {:?} is longer than 80 characters",
                "a".repeat(81)
            )
        );
        assert_eq!(
            check_name("states").unwrap_err(),
            "\"states\" is a reserved variable name and cannot be assigned or referenced"
        );
    }

    #[test]
    fn references_split_at_the_first_non_identifier_character() {
        assert_eq!(
            split_reference("order.numItems"),
            Some(("order", ".numItems"))
        );
        assert_eq!(split_reference("x[0]"), Some(("x", "[0]")));
        assert_eq!(split_reference("x"), Some(("x", "")));
        assert_eq!(split_reference(".x"), None);
        assert_eq!(split_reference("[0]"), None);
        assert_eq!(split_reference(""), None);
    }

    #[test]
    fn inner_blocks_read_outer_scopes_and_keep_their_own() {
        let total = AtomicUsize::new(0);
        let mut top = BlockVariables::open(Variables::default(), &total);
        top.assign(assigned(&[("outer", json!("hello"))])).unwrap();
        let enclosing = top.get().enclosing();
        let mut inner = BlockVariables::open(Variables::new(Scope::default(), enclosing), &total);
        inner.assign(assigned(&[("inner", json!(1))])).unwrap();

        assert_eq!(inner.get().get("outer"), Some(json!("hello")));
        assert_eq!(inner.get().get("inner"), Some(json!(1)));
        assert!(inner.get().contains("outer") && !top.get().contains("inner"));
        assert_eq!(top.get().get("inner"), None);
        assert_eq!(total.load(Ordering::Relaxed), "\"hello\"".len() + 1);
        drop(inner);
        assert_eq!(total.load(Ordering::Relaxed), "\"hello\"".len());
    }

    #[test]
    fn a_scope_without_variables_allocates_nothing_and_has_no_enclosing_view() {
        let vars = Variables::default();
        assert!(vars.own().values.is_none());
        assert!(vars.enclosing().is_none());
        assert_eq!(std::mem::size_of::<Scope>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn replacing_a_variable_updates_the_execution_total() {
        let total = AtomicUsize::new(0);
        let mut block = BlockVariables::open(Variables::default(), &total);
        block.assign(assigned(&[("x", json!("abcdef"))])).unwrap();
        block.assign(assigned(&[("x", json!(1))])).unwrap();
        assert_eq!(block.get().own().bytes(), 1);
        assert_eq!(total.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn one_variable_may_not_exceed_256_kib() {
        let big = json!("x".repeat(MAX_VARIABLE_BYTES - 1));
        let err = Assigned::default().push("big", big).unwrap_err();
        assert_eq!(err.error, DATA_LIMIT_EXCEEDED);
        assert_eq!(
            err.cause,
            "the value assigned to variable 'big' has 262145 bytes, more than the 262144 allowed \
             for one variable"
        );
        let fits = json!("x".repeat(MAX_VARIABLE_BYTES - 2));
        assert!(Assigned::default().push("fits", fits).is_ok());
    }

    #[test]
    fn one_assign_may_not_exceed_256_kib_in_all() {
        let half = json!("x".repeat(MAX_ASSIGN_BYTES / 2));
        let mut a = Assigned::default();
        a.push("x", half.clone()).unwrap();
        let err = a.push("y", half).unwrap_err();
        assert_eq!(err.error, DATA_LIMIT_EXCEEDED);
        assert_eq!(
            err.cause,
            "the values of one Assign field have 262148 bytes (at variable 'y'), more than the \
             262144 allowed"
        );
    }

    #[test]
    fn an_execution_may_not_hold_more_than_10_mib_of_variables() {
        let total = AtomicUsize::new(MAX_EXECUTION_BYTES - 5);
        let mut block = BlockVariables::open(Variables::default(), &total);
        block.assign(assigned(&[("a", json!("abc"))])).unwrap();
        let err = block.assign(assigned(&[("b", json!("ab"))])).unwrap_err();
        assert_eq!(err.error, DATA_LIMIT_EXCEEDED);
        assert_eq!(
            err.cause,
            "assigning b would bring the variables of this execution to 10485764 bytes, more \
             than the 10485760 allowed"
        );
        assert_eq!(total.load(Ordering::Relaxed), MAX_EXECUTION_BYTES);
        assert_eq!(block.get().get("b"), None);
    }

    #[test]
    fn scopes_round_trip_through_json_with_their_sizes() {
        let total = AtomicUsize::new(0);
        let mut block = BlockVariables::open(Variables::default(), &total);
        block
            .assign(assigned(&[("a", json!({"k": [1, 2]})), ("b", json!(null))]))
            .unwrap();
        let text = serde_json::to_string(block.get().own()).unwrap();
        assert_eq!(text, r#"{"a":{"k":[1,2]},"b":null}"#);
        let back: Scope = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, block.get().own());
        assert_eq!(back.bytes(), block.get().own().bytes());
    }

    #[test]
    fn history_shows_each_value_as_json_text() {
        let a = assigned(&[
            ("s", json!("text")),
            ("n", json!(4.3)),
            ("o", json!({"a": 1})),
        ]);
        let history = a.to_history();
        assert_eq!(history["s"], "\"text\"");
        assert_eq!(history["n"], "4.3");
        assert_eq!(history["o"], "{\"a\":1}");
    }
}
