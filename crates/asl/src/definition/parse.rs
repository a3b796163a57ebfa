//! ASL JSON to [`StateMachine`], collecting every problem with its JSON pointer: field types,
//! fields that do not belong to a state type, transitions to unknown states, unreachable states,
//! malformed paths, templates, intrinsic functions, choice rules and `Assign` fields (variable
//! names, and inner scopes assigning a variable of an outer scope).

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use super::*;
use crate::assign::Assign;
use crate::choice::{self, parse_timestamp};
use crate::error::ALL;
use crate::template::{self, child};

/// Parses and validates a definition. `resource_known` says whether a Task resource (without
/// its integration-pattern suffix) has a handler.
pub fn parse_definition(
    value: &Value,
    resource_known: &dyn Fn(&str) -> bool,
) -> Result<StateMachine, Vec<ValidationError>> {
    let mut ctx = Ctx {
        errors: Vec::new(),
        names: HashSet::new(),
        context_states: HashSet::new(),
        resource_known,
        scopes: vec![VariableScope::default()],
        scope: 0,
    };
    let machine = ctx.machine(value);
    ctx.check_scopes();
    match machine {
        Some(m) if ctx.errors.is_empty() => Ok(m),
        _ => Err(ctx.errors),
    }
}

const TOP_FIELDS: &[&str] = &[
    "StartAt",
    "States",
    "Comment",
    "Version",
    "TimeoutSeconds",
    "QueryLanguage",
];
const BLOCK_FIELDS: &[&str] = &[
    "StartAt",
    "States",
    "Comment",
    "QueryLanguage",
    "ProcessorConfig",
];
const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
const TASK: &[&str] = &[
    "Resource",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "TimeoutSeconds",
    "TimeoutSecondsPath",
    "HeartbeatSeconds",
    "HeartbeatSecondsPath",
    "Retry",
    "Catch",
    "Next",
    "End",
    "Credentials",
    "Assign",
];
const PASS: &[&str] = &[
    "Result",
    "ResultPath",
    "Parameters",
    "InputPath",
    "OutputPath",
    "Next",
    "End",
    "Assign",
];
const CHOICE: &[&str] = &["Choices", "Default", "InputPath", "OutputPath", "Assign"];
const WAIT: &[&str] = &[
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
    "InputPath",
    "OutputPath",
    "Next",
    "End",
    "Assign",
];
const SUCCEED: &[&str] = &["InputPath", "OutputPath"];
const FAIL: &[&str] = &["Error", "ErrorPath", "Cause", "CausePath"];
const PARALLEL: &[&str] = &[
    "Branches",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "Retry",
    "Catch",
    "Next",
    "End",
    "Assign",
];
const MAP: &[&str] = &[
    "ItemProcessor",
    "Iterator",
    "ItemsPath",
    "ItemSelector",
    "Parameters",
    "MaxConcurrency",
    "MaxConcurrencyPath",
    "ToleratedFailureCount",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentage",
    "ToleratedFailurePercentagePath",
    "ResultSelector",
    "ResultPath",
    "InputPath",
    "OutputPath",
    "Retry",
    "Catch",
    "Next",
    "End",
    "Assign",
];
const JSONATA_FIELDS: &[&str] = &["Arguments", "Output", "Items"];
const DISTRIBUTED_FIELDS: &[&str] = &["ItemReader", "ItemBatcher", "ResultWriter", "Label"];

/// Whether a string anywhere in `value` mentions the context object. A nested Parallel or Map
/// counts for its outer state too; that only builds the context where it is not read.
fn mentions_context(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("$$"),
        Value::Array(items) => items.iter().any(mentions_context),
        Value::Object(map) => map.values().any(mentions_context),
        _ => false,
    }
}

/// A transition found while parsing, checked once the whole block is known.
struct Edge {
    from: String,
    to: String,
    pointer: String,
}

struct Ctx<'a> {
    errors: Vec<ValidationError>,
    /// State names seen anywhere: AWS requires them to be unique across the whole machine.
    names: HashSet<String>,
    /// States that mention `$$` anywhere in their fields.
    context_states: HashSet<String>,
    resource_known: &'a dyn Fn(&str) -> bool,
    /// Variable scopes: the top level, then one per Parallel branch and Map processor.
    scopes: Vec<VariableScope>,
    /// The scope of the states being read.
    scope: usize,
}

/// The variables the states of one scope assign, with where, for the check that no inner scope
/// assigns a variable of an enclosing one.
#[derive(Default)]
struct VariableScope {
    parent: Option<usize>,
    assigned: Vec<(String, String)>,
}

/// An object being read, with its pointer.
#[derive(Clone, Copy)]
struct Obj<'v> {
    map: &'v Map<String, Value>,
    pointer: &'v str,
}

impl<'v> Obj<'v> {
    fn get(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key)
    }

    fn at(&self, key: &str) -> String {
        child(self.pointer, key)
    }
}

impl Ctx<'_> {
    fn err(&mut self, pointer: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ValidationError {
            pointer: pointer.into(),
            message: message.into(),
        });
    }

    fn object<'v>(&mut self, value: &'v Value, pointer: &'v str, what: &str) -> Option<Obj<'v>> {
        match value.as_object() {
            Some(map) => Some(Obj { map, pointer }),
            None => {
                self.err(pointer, format!("{what} must be a JSON object"));
                None
            }
        }
    }

    fn machine(&mut self, value: &Value) -> Option<StateMachine> {
        let obj = self.object(value, "", "the definition")?;
        self.check_fields(obj, TOP_FIELDS, "the top level of a state machine");
        self.query_language(obj);
        let comment = self.opt_str(obj, "Comment").map(str::to_string);
        let timeout_seconds = self.opt_uint(obj, "TimeoutSeconds", 1);
        let states = self.block(obj)?;
        Some(StateMachine {
            comment,
            timeout_seconds,
            states,
            context_states: std::mem::take(&mut self.context_states),
        })
    }

    fn query_language(&mut self, obj: Obj) {
        match obj.get("QueryLanguage") {
            None => {}
            Some(Value::String(s)) if s == "JSONPath" => {}
            Some(Value::String(s)) if s == "JSONata" => self.err(
                obj.at("QueryLanguage"),
                "QueryLanguage JSONata is not supported; use JSONPath",
            ),
            Some(other) => self.err(
                obj.at("QueryLanguage"),
                format!("QueryLanguage must be \"JSONPath\" or \"JSONata\", got {other}"),
            ),
        }
    }

    fn check_fields(&mut self, obj: Obj, allowed: &[&str], what: &str) {
        for key in obj.map.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let message = if JSONATA_FIELDS.contains(&key.as_str()) {
                format!(
                    "field {key:?} belongs to the JSONata query language, which is not supported"
                )
            } else if DISTRIBUTED_FIELDS.contains(&key.as_str()) {
                format!("field {key:?} belongs to a distributed Map, which is not supported")
            } else {
                format!("field {key:?} is not valid in {what}")
            };
            self.err(obj.at(key), message);
        }
    }

    fn block(&mut self, obj: Obj) -> Option<States> {
        let start_at = self.required_str(obj, "StartAt").map(str::to_string);
        let states_ptr = obj.at("States");
        let Some(states_value) = obj.get("States") else {
            self.err(obj.pointer, "\"States\" is required");
            return None;
        };
        let states_obj = self.object(states_value, &states_ptr, "\"States\"")?;
        if states_obj.map.is_empty() {
            self.err(
                states_ptr.clone(),
                "\"States\" must hold at least one state",
            );
        }
        let mut edges = Vec::new();
        let mut states = HashMap::new();
        for (name, value) in states_obj.map {
            let pointer = child(&states_ptr, name);
            self.state_name(name, &pointer);
            if mentions_context(value) {
                self.context_states.insert(name.clone());
            }
            if let Some(state) = self.state(name, value, &pointer, &mut edges) {
                states.insert(name.clone(), state);
            }
        }
        let start_at = start_at?;
        self.check_graph(obj, &start_at, states_obj.map, &edges);
        Some(States { start_at, states })
    }

    fn state_name(&mut self, name: &str, pointer: &str) {
        if name.chars().count() > 80 || name.is_empty() {
            self.err(
                pointer,
                format!("state name {name:?} must have 1 to 80 characters"),
            );
        }
        if !self.names.insert(name.to_string()) {
            self.err(pointer, format!("state name {name:?} is used more than once; state names must be unique in the whole state machine"));
        }
    }

    fn check_graph(
        &mut self,
        obj: Obj,
        start_at: &str,
        states: &Map<String, Value>,
        edges: &[Edge],
    ) {
        if !states.contains_key(start_at) {
            self.err(
                obj.at("StartAt"),
                format!("StartAt names {start_at:?}, which is not a state in this block"),
            );
            return;
        }
        for edge in edges.iter().filter(|e| !states.contains_key(&e.to)) {
            self.err(
                edge.pointer.clone(),
                format!("{:?} is not a state in this block", edge.to),
            );
        }
        let mut seen = HashSet::from([start_at.to_string()]);
        let mut queue = VecDeque::from([start_at.to_string()]);
        while let Some(from) = queue.pop_front() {
            for edge in edges.iter().filter(|e| e.from == from) {
                if states.contains_key(&edge.to) && seen.insert(edge.to.clone()) {
                    queue.push_back(edge.to.clone());
                }
            }
        }
        for name in states.keys().filter(|n| !seen.contains(*n)) {
            let pointer = child(&obj.at("States"), name);
            self.err(
                pointer,
                format!("state {name:?} is not reachable from StartAt {start_at:?}"),
            );
        }
    }

    fn state(
        &mut self,
        name: &str,
        value: &Value,
        pointer: &str,
        edges: &mut Vec<Edge>,
    ) -> Option<State> {
        let obj = self.object(value, pointer, "a state")?;
        self.query_language(obj);
        let kind = self.required_str(obj, "Type")?;
        let mut edge = |to: &str, at: String| {
            edges.push(Edge {
                from: name.to_string(),
                to: to.to_string(),
                pointer: at,
            });
        };
        let (allowed, what): (&[&str], &str) = match kind {
            "Task" => (TASK, "a Task state"),
            "Pass" => (PASS, "a Pass state"),
            "Choice" => (CHOICE, "a Choice state"),
            "Wait" => (WAIT, "a Wait state"),
            "Succeed" => (SUCCEED, "a Succeed state"),
            "Fail" => (FAIL, "a Fail state"),
            "Parallel" => (PARALLEL, "a Parallel state"),
            "Map" => (MAP, "a Map state"),
            other => {
                self.err(obj.at("Type"), format!("unknown state type {other:?}; expected Task, Pass, Choice, Wait, Succeed, Fail, Parallel or Map"));
                return None;
            }
        };
        let all: Vec<&str> = COMMON.iter().chain(allowed).copied().collect();
        self.check_fields(obj, &all, what);
        match kind {
            "Task" => self.task(obj, &mut edge).map(State::Task),
            "Pass" => self.pass(obj, &mut edge).map(State::Pass),
            "Choice" => self.choice(obj, &mut edge).map(State::Choice),
            "Wait" => self.wait(obj, &mut edge).map(State::Wait),
            "Succeed" => Some(State::Succeed(SucceedState { io: self.io(obj) })),
            "Fail" => self.fail(obj).map(State::Fail),
            "Parallel" => self.parallel(obj, &mut edge).map(State::Parallel),
            _ => self.map_state(obj, &mut edge).map(State::Map),
        }
    }

    // ---- state types ----

    fn task(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Option<TaskState> {
        let resource = self.required_str(obj, "Resource").map(str::to_string);
        let io = self.io(obj);
        let parameters = self.template(obj, "Parameters");
        let handling = self.handling(obj, edge);
        let timeout = self.seconds(obj, "TimeoutSeconds");
        let heartbeat = self.seconds(obj, "HeartbeatSeconds");
        if let (Some(Seconds::Fixed(t)), Some(Seconds::Fixed(h))) = (&timeout, &heartbeat)
            && h >= t
        {
            self.err(
                obj.at("HeartbeatSeconds"),
                format!("HeartbeatSeconds ({h}) must be smaller than TimeoutSeconds ({t})"),
            );
        }
        let transition = self.transition(obj, edge);
        let resource = resource?;
        let (base, pattern) = split_resource(&resource);
        if !(self.resource_known)(base) {
            let state = obj
                .pointer
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .replace("~1", "/")
                .replace("~0", "~");
            self.err(obj.at("Resource"), format!("state {state:?} uses resource {resource:?}, but no handler is registered for {base:?}"));
        }
        Some(TaskState {
            base_resource: base.to_string(),
            resource: resource.as_str().into(),
            pattern,
            io,
            parameters,
            handling,
            timeout,
            heartbeat,
            transition: transition?,
        })
    }

    fn pass(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Option<PassState> {
        Some(PassState {
            io: self.io(obj),
            parameters: self.template(obj, "Parameters"),
            result: obj.get("Result").cloned(),
            result_path: self.result_path(obj, "ResultPath"),
            assign: self.assign(obj),
            transition: self.transition(obj, edge)?,
        })
    }

    fn choice(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Option<ChoiceState> {
        let io = self.io(obj);
        let default = self.opt_str(obj, "Default").map(str::to_string);
        if let Some(d) = &default {
            edge(d, obj.at("Default"));
        }
        let pointer = obj.at("Choices");
        let Some(rules) = obj
            .get("Choices")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty())
        else {
            self.err(
                pointer,
                "\"Choices\" must be a non-empty array of choice rules",
            );
            return None;
        };
        let assign = self.assign(obj);
        let mut choices = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let rule_ptr = child(&pointer, &i.to_string());
            choices.extend(self.choice_rule(rule, &rule_ptr, edge));
        }
        (choices.len() == rules.len()).then_some(ChoiceState {
            io,
            choices,
            default,
            assign,
        })
    }

    fn choice_rule(
        &mut self,
        rule: &Value,
        pointer: &str,
        edge: &mut impl FnMut(&str, String),
    ) -> Option<ChoiceRule> {
        let mut errors = Vec::new();
        let parsed = choice::parse_rule(rule, pointer, true, &mut errors);
        for e in errors {
            self.err(e.pointer, e.message);
        }
        let assign = match rule.as_object() {
            Some(map) => self.assign(Obj { map, pointer }),
            None => None,
        };
        let (condition, next) = parsed?;
        let next = next?;
        edge(&next, child(pointer, "Next"));
        Some(ChoiceRule {
            condition,
            next,
            assign,
        })
    }

    fn wait(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Option<WaitState> {
        let io = self.io(obj);
        let present: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
            .into_iter()
            .filter(|k| obj.get(k).is_some())
            .collect();
        let wait = match present.as_slice() {
            [one] => self.wait_for(obj, one),
            [] => {
                self.err(
                    obj.pointer,
                    "a Wait state needs one of Seconds, SecondsPath, Timestamp or TimestampPath",
                );
                None
            }
            many => {
                self.err(obj.pointer, format!("a Wait state takes only one of Seconds, SecondsPath, Timestamp, TimestampPath; found {}", many.join(", ")));
                None
            }
        };
        let assign = self.assign(obj);
        let transition = self.transition(obj, edge);
        Some(WaitState {
            io,
            wait: wait?,
            assign,
            transition: transition?,
        })
    }

    fn wait_for(&mut self, obj: Obj, key: &str) -> Option<WaitFor> {
        match key {
            "Seconds" => self.opt_uint(obj, key, 0).map(WaitFor::Seconds),
            "Timestamp" => {
                let s = self.required_str(obj, key)?;
                match parse_timestamp(s) {
                    Some(t) => Some(WaitFor::Timestamp(t)),
                    None => {
                        self.err(
                            obj.at(key),
                            format!(
                                "{s:?} is not an RFC 3339 timestamp such as 2016-03-14T01:59:00Z"
                            ),
                        );
                        None
                    }
                }
            }
            "SecondsPath" => self.path(obj, key).map(WaitFor::SecondsPath),
            _ => self.path(obj, key).map(WaitFor::TimestampPath),
        }
    }

    fn fail(&mut self, obj: Obj) -> Option<FailState> {
        let error = self.literal_or_dynamic(obj, "Error", "ErrorPath");
        let cause = self.literal_or_dynamic(obj, "Cause", "CausePath");
        Some(FailState { error, cause })
    }

    fn literal_or_dynamic(&mut self, obj: Obj, key: &str, path_key: &str) -> Option<Template> {
        match (obj.get(key), obj.get(path_key)) {
            (Some(_), Some(_)) => {
                self.err(
                    obj.pointer,
                    format!("use either {key:?} or {path_key:?}, not both"),
                );
                None
            }
            (Some(_), None) => self
                .opt_str(obj, key)
                .map(|s| Template::Literal(Value::String(s.to_string()))),
            (None, Some(_)) => {
                let expr = self.required_str(obj, path_key)?;
                match template::compile_expression(expr) {
                    Ok(t) => Some(t),
                    Err(message) => {
                        self.err(obj.at(path_key), message);
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }

    fn parallel(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Option<ParallelState> {
        let io = self.io(obj);
        let parameters = self.template(obj, "Parameters");
        let handling = self.handling(obj, edge);
        let transition = self.transition(obj, edge);
        let pointer = obj.at("Branches");
        let Some(list) = obj
            .get("Branches")
            .and_then(Value::as_array)
            .filter(|b| !b.is_empty())
        else {
            self.err(pointer, "\"Branches\" must be a non-empty array");
            return None;
        };
        let mut branches = Vec::new();
        for (i, branch) in list.iter().enumerate() {
            let branch_ptr = child(&pointer, &i.to_string());
            let Some(branch_obj) = self.object(branch, &branch_ptr, "a branch") else {
                continue;
            };
            self.check_fields(branch_obj, BLOCK_FIELDS, "a branch");
            self.query_language(branch_obj);
            branches.extend(self.nested(|ctx| ctx.block(branch_obj)));
        }
        (branches.len() == list.len()).then_some(())?;
        Some(ParallelState {
            io,
            parameters,
            branches,
            handling,
            transition: transition?,
        })
    }

    fn map_state(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Option<MapState> {
        let io = self.io(obj);
        let items_path = match obj.get("ItemsPath") {
            Some(_) => self.path(obj, "ItemsPath"),
            None => Path::parse("$").ok(),
        };
        let item_selector = match (obj.get("ItemSelector"), obj.get("Parameters")) {
            (Some(_), Some(_)) => {
                self.err(
                    obj.pointer,
                    "use either \"ItemSelector\" or \"Parameters\", not both",
                );
                None
            }
            (Some(_), None) => self.template(obj, "ItemSelector"),
            _ => self.template(obj, "Parameters"),
        };
        let max_concurrency = self.amount(obj, "MaxConcurrency", false);
        let tolerated_failure_count = self.amount(obj, "ToleratedFailureCount", false);
        let tolerated_failure_percentage = self.amount(obj, "ToleratedFailurePercentage", true);
        let handling = self.handling(obj, edge);
        let transition = self.transition(obj, edge);
        let processor = self.processor(obj);
        Some(MapState {
            io,
            items_path: items_path?,
            item_selector,
            processor: processor?,
            max_concurrency,
            tolerated_failure_count,
            tolerated_failure_percentage,
            handling,
            transition: transition?,
        })
    }

    fn processor(&mut self, obj: Obj) -> Option<States> {
        let key = match (obj.get("ItemProcessor"), obj.get("Iterator")) {
            (Some(_), Some(_)) => {
                self.err(
                    obj.pointer,
                    "use either \"ItemProcessor\" or \"Iterator\", not both",
                );
                return None;
            }
            (Some(_), None) => "ItemProcessor",
            (None, Some(_)) => "Iterator",
            (None, None) => {
                self.err(obj.pointer, "a Map state needs \"ItemProcessor\"");
                return None;
            }
        };
        let pointer = obj.at(key);
        let processor = self.object(&obj.map[key], &pointer, &format!("\"{key}\""))?;
        self.check_fields(processor, BLOCK_FIELDS, &format!("\"{key}\""));
        self.query_language(processor);
        self.processor_config(processor);
        self.nested(|ctx| ctx.block(processor))
    }

    fn processor_config(&mut self, processor: Obj) {
        let Some(config) = processor.get("ProcessorConfig") else {
            return;
        };
        let pointer = processor.at("ProcessorConfig");
        let Some(config) = self.object(config, &pointer, "\"ProcessorConfig\"") else {
            return;
        };
        self.check_fields(config, &["Mode", "ExecutionType"], "\"ProcessorConfig\"");
        match config.get("Mode").and_then(Value::as_str) {
            None | Some("INLINE") => {}
            Some("DISTRIBUTED") => self.err(config.at("Mode"), "distributed Map (Mode DISTRIBUTED) is not supported by this engine; use Mode INLINE"),
            Some(other) => self.err(config.at("Mode"), format!("Mode must be INLINE or DISTRIBUTED, got {other:?}")),
        }
    }

    // ---- shared pieces ----

    fn io(&mut self, obj: Obj) -> Io {
        Io {
            input_path: self.data_path(obj, "InputPath"),
            output_path: self.data_path(obj, "OutputPath"),
        }
    }

    fn handling(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> ResultHandling {
        ResultHandling {
            result_selector: self.template(obj, "ResultSelector"),
            result_path: self.result_path(obj, "ResultPath"),
            retry: self.retriers(obj),
            catch: self.catchers(obj, edge),
            assign: self.assign(obj),
        }
    }

    fn transition(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Option<Transition> {
        let end = match obj.get("End") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.err(obj.at("End"), "\"End\" must be a boolean");
                return None;
            }
        };
        match (self.opt_str(obj, "Next"), end) {
            (Some(_), true) => {
                self.err(
                    obj.pointer,
                    "a state cannot have both \"Next\" and \"End\": true",
                );
                None
            }
            (Some(next), false) => {
                let next = next.to_string();
                edge(&next, obj.at("Next"));
                Some(Transition::Next(next))
            }
            (None, true) => Some(Transition::End),
            (None, false) => {
                if obj.get("Next").is_none() {
                    self.err(obj.pointer, "a state needs \"Next\" or \"End\": true");
                }
                None
            }
        }
    }

    fn data_path(&mut self, obj: Obj, key: &str) -> DataPath {
        match obj.get(key) {
            None => DataPath::default(),
            Some(Value::Null) => DataPath::Discard,
            Some(_) => self.path(obj, key).map(DataPath::Path).unwrap_or_default(),
        }
    }

    fn result_path(&mut self, obj: Obj, key: &str) -> ResultPath {
        match obj.get(key) {
            None => ResultPath::default(),
            Some(Value::Null) => ResultPath::Discard,
            Some(Value::String(s)) => match ReferencePath::parse(s) {
                Ok(p) => ResultPath::Path(p),
                Err(e) => {
                    self.err(obj.at(key), e.to_string());
                    ResultPath::default()
                }
            },
            Some(_) => {
                self.err(
                    obj.at(key),
                    format!("{key:?} must be a reference path or null"),
                );
                ResultPath::default()
            }
        }
    }

    fn path(&mut self, obj: Obj, key: &str) -> Option<Path> {
        let source = self.required_str(obj, key)?;
        match Path::parse(source) {
            Ok(p) if p.is_context() && key != "ItemsPath" => {
                self.err(
                    obj.at(key),
                    format!("{key:?} must address the state's data, not the context object"),
                );
                let _ = p;
                None
            }
            Ok(p) => Some(p),
            Err(e) => {
                self.err(obj.at(key), e.to_string());
                None
            }
        }
    }

    fn template(&mut self, obj: Obj, key: &str) -> Option<Template> {
        let value = obj.get(key)?;
        match template::compile(value) {
            Ok(t) => Some(t),
            Err(errors) => {
                for e in errors {
                    self.err(format!("{}{}", obj.at(key), e.pointer), e.message);
                }
                None
            }
        }
    }

    fn seconds(&mut self, obj: Obj, key: &str) -> Option<Seconds> {
        let path_key = format!("{key}Path");
        match (obj.get(key), obj.get(&path_key)) {
            (Some(_), Some(_)) => {
                self.err(
                    obj.pointer,
                    format!("use either {key:?} or {path_key:?}, not both"),
                );
                None
            }
            (Some(_), None) => self.opt_uint(obj, key, 1).map(Seconds::Fixed),
            (None, Some(_)) => self.path(obj, &path_key).map(Seconds::Path),
            (None, None) => None,
        }
    }

    fn amount(&mut self, obj: Obj, key: &str, percentage: bool) -> Option<Amount> {
        let path_key = format!("{key}Path");
        match (obj.get(key), obj.get(&path_key)) {
            (Some(_), Some(_)) => {
                self.err(
                    obj.pointer,
                    format!("use either {key:?} or {path_key:?}, not both"),
                );
                None
            }
            (Some(v), None) => {
                let ok = match v.as_f64() {
                    Some(n) if percentage => (0.0..=100.0).contains(&n),
                    Some(n) => n >= 0.0 && n.fract() == 0.0,
                    None => false,
                };
                if !ok {
                    let expected = if percentage {
                        "a number from 0 to 100"
                    } else {
                        "a non-negative integer"
                    };
                    self.err(obj.at(key), format!("{key:?} must be {expected}, got {v}"));
                    return None;
                }
                v.as_f64().map(Amount::Fixed)
            }
            (None, Some(_)) => self.path(obj, &path_key).map(Amount::Path),
            (None, None) => None,
        }
    }

    fn retriers(&mut self, obj: Obj) -> Vec<Retrier> {
        let Some(list) = self.opt_array(obj, "Retry") else {
            return Vec::new();
        };
        let pointer = obj.at("Retry");
        let mut retriers = Vec::new();
        for (i, value) in list.iter().enumerate() {
            let ptr = child(&pointer, &i.to_string());
            let Some(r) = self.object(value, &ptr, "a retrier") else {
                continue;
            };
            self.check_fields(
                r,
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ],
                "a retrier",
            );
            let error_equals = self.error_equals(r, i + 1 == list.len());
            let jitter = match r.get("JitterStrategy").map(|v| v.as_str()) {
                None | Some(Some("NONE")) => Jitter::None,
                Some(Some("FULL")) => Jitter::Full,
                Some(_) => {
                    self.err(
                        r.at("JitterStrategy"),
                        "\"JitterStrategy\" must be \"FULL\" or \"NONE\"",
                    );
                    Jitter::None
                }
            };
            let backoff_rate = match r.get("BackoffRate") {
                None => 2.0,
                Some(v) => match v.as_f64() {
                    Some(b) if b >= 1.0 => b,
                    _ => {
                        self.err(
                            r.at("BackoffRate"),
                            format!("\"BackoffRate\" must be a number of at least 1.0, got {v}"),
                        );
                        2.0
                    }
                },
            };
            retriers.push(Retrier {
                error_equals,
                interval_seconds: if r.get("IntervalSeconds").is_some() {
                    self.opt_uint(r, "IntervalSeconds", 1).unwrap_or(1)
                } else {
                    1
                },
                max_attempts: if r.get("MaxAttempts").is_some() {
                    self.opt_uint(r, "MaxAttempts", 0).unwrap_or(3) as u32
                } else {
                    3
                },
                backoff_rate,
                max_delay_seconds: self.opt_uint(r, "MaxDelaySeconds", 1),
                jitter,
            });
        }
        retriers
    }

    fn catchers(&mut self, obj: Obj, edge: &mut impl FnMut(&str, String)) -> Vec<Catcher> {
        let Some(list) = self.opt_array(obj, "Catch") else {
            return Vec::new();
        };
        let pointer = obj.at("Catch");
        let mut catchers = Vec::new();
        for (i, value) in list.iter().enumerate() {
            let ptr = child(&pointer, &i.to_string());
            let Some(c) = self.object(value, &ptr, "a catcher") else {
                continue;
            };
            self.check_fields(
                c,
                &["ErrorEquals", "Next", "ResultPath", "Comment", "Assign"],
                "a catcher",
            );
            let error_equals = self.error_equals(c, i + 1 == list.len());
            let result_path = self.result_path(c, "ResultPath");
            let assign = self.assign(c);
            let Some(next) = self.required_str(c, "Next").map(str::to_string) else {
                continue;
            };
            edge(&next, c.at("Next"));
            catchers.push(Catcher {
                error_equals,
                next,
                result_path,
                assign,
            });
        }
        catchers
    }

    fn error_equals(&mut self, obj: Obj, is_last: bool) -> Vec<String> {
        let pointer = obj.at("ErrorEquals");
        let names: Option<Vec<String>> = obj
            .get("ErrorEquals")
            .and_then(Value::as_array)
            .filter(|list| !list.is_empty())
            .and_then(|list| {
                list.iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect()
            });
        let Some(names) = names else {
            self.err(
                pointer,
                "\"ErrorEquals\" must be a non-empty array of error names",
            );
            return Vec::new();
        };
        if names.iter().any(|n| n == ALL) {
            if names.len() > 1 {
                self.err(
                    pointer.clone(),
                    "\"States.ALL\" must appear alone in \"ErrorEquals\"",
                );
            }
            if !is_last {
                self.err(
                    pointer,
                    "a retrier or catcher with \"States.ALL\" must be the last one",
                );
            }
        }
        names
    }

    // ---- variables ----

    /// Compiles an `Assign` field and records what it assigns in the current scope.
    fn assign(&mut self, obj: Obj) -> Option<Assign> {
        let value = obj.get("Assign")?;
        let pointer = obj.at("Assign");
        let assign = match Assign::compile(value) {
            Ok(assign) => assign,
            Err(errors) => {
                for e in errors {
                    self.err(format!("{pointer}{}", e.pointer), e.message);
                }
                return None;
            }
        };
        let keys = value.as_object().into_iter().flat_map(|m| m.keys());
        for key in keys {
            let name = key.strip_suffix(".$").unwrap_or(key).to_string();
            let at = child(&pointer, key);
            self.scopes[self.scope].assigned.push((name, at));
        }
        Some(assign)
    }

    /// Reads an inner block (a Parallel branch or a Map processor) in a scope of its own.
    fn nested<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> T {
        let outer = self.scope;
        self.scopes.push(VariableScope {
            parent: Some(outer),
            assigned: Vec::new(),
        });
        self.scope = self.scopes.len() - 1;
        let result = read(self);
        self.scope = outer;
        result
    }

    /// A variable exists in every scope where some state assigns it, so an inner scope may
    /// not assign a variable that an enclosing scope assigns (wherever that assignment is).
    fn check_scopes(&mut self) {
        let mut problems = Vec::new();
        for scope in &self.scopes {
            for (name, at) in &scope.assigned {
                if let Some(outer_at) = self.assigned_outside(scope.parent, name) {
                    problems.push((at.clone(), format!(
                        "variable {name:?} is assigned in an enclosing scope (at {outer_at}); a \
                         Parallel branch or Map iteration may read it but not assign it"
                    )));
                }
            }
        }
        for (at, message) in problems {
            self.err(at, message);
        }
    }

    fn assigned_outside(&self, mut scope: Option<usize>, name: &str) -> Option<&str> {
        while let Some(i) = scope {
            let hit = self.scopes[i].assigned.iter().find(|(n, _)| n == name);
            if let Some((_, at)) = hit {
                return Some(at);
            }
            scope = self.scopes[i].parent;
        }
        None
    }

    // ---- typed field access ----

    fn opt_str<'v>(&mut self, obj: Obj<'v>, key: &str) -> Option<&'v str> {
        match obj.get(key)? {
            Value::String(s) => Some(s),
            other => {
                self.err(
                    obj.at(key),
                    format!("{key:?} must be a string, got {other}"),
                );
                None
            }
        }
    }

    fn required_str<'v>(&mut self, obj: Obj<'v>, key: &str) -> Option<&'v str> {
        if obj.get(key).is_none() {
            self.err(obj.pointer, format!("{key:?} is required"));
            return None;
        }
        self.opt_str(obj, key)
    }

    fn opt_uint(&mut self, obj: Obj, key: &str, min: u64) -> Option<u64> {
        let value = obj.get(key)?;
        match value.as_u64() {
            Some(n) if n >= min && n <= 99_999_999 => Some(n),
            _ => {
                self.err(
                    obj.at(key),
                    format!("{key:?} must be an integer from {min} to 99999999, got {value}"),
                );
                None
            }
        }
    }

    fn opt_array<'v>(&mut self, obj: Obj<'v>, key: &str) -> Option<&'v Vec<Value>> {
        match obj.get(key)? {
            Value::Array(items) => Some(items),
            other => {
                self.err(
                    obj.at(key),
                    format!("{key:?} must be an array, got {other}"),
                );
                None
            }
        }
    }
}
