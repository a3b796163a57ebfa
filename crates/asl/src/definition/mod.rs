//! The definition model: a parsed and validated state machine, independent of how it runs.
//!
//! [`load`] turns ASL JSON into a [`StateMachine`]; every problem found is reported at once as a
//! [`ValidationError`] carrying the JSON pointer of the offending field.

mod parse;
mod substitute;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset};
use serde_json::Value;
use thiserror::Error;

pub use parse::parse_definition;
pub use substitute::substitute;

use crate::assign::Assign;
use crate::choice::Condition;
use crate::path::{Path, ReferencePath};
use crate::template::Template;

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// JSON pointer (RFC 6901) of the offending field, `""` for the whole document.
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for ValidationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

/// Why a definition could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    #[error("definition is not valid JSON: {0}")]
    Json(String),
    #[error("invalid state machine name {0:?}: use 1 to 80 letters, digits, '-' or '_'")]
    InvalidName(String),
    #[error("invalid state machine definition ({} problem(s)):\n{}", .0.len(), display_all(.0))]
    Invalid(Vec<ValidationError>),
}

fn display_all(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A whole state machine.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub comment: Option<String>,
    /// Execution timeout (`TimeoutSeconds` at the top level).
    pub timeout_seconds: Option<u64>,
    pub states: States,
    /// States whose fields mention the context object (`$$`). Only they get it built, which
    /// spares every other state the cost of assembling it.
    pub context_states: HashSet<String>,
}

/// A set of states with its entry point: the top level, a Parallel branch or a Map processor.
#[derive(Debug, Clone)]
pub struct States {
    pub start_at: String,
    pub states: HashMap<String, State>,
}

/// One state of a [`States`] block.
#[derive(Debug, Clone)]
pub enum State {
    Task(TaskState),
    Pass(PassState),
    Choice(ChoiceState),
    Wait(WaitState),
    Succeed(SucceedState),
    Fail(FailState),
    Parallel(ParallelState),
    Map(MapState),
}

impl State {
    pub fn type_name(&self) -> &'static str {
        match self {
            State::Task(_) => "Task",
            State::Pass(_) => "Pass",
            State::Choice(_) => "Choice",
            State::Wait(_) => "Wait",
            State::Succeed(_) => "Succeed",
            State::Fail(_) => "Fail",
            State::Parallel(_) => "Parallel",
            State::Map(_) => "Map",
        }
    }
}

/// Where a state goes when it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    Next(String),
    End,
}

/// `InputPath` / `OutputPath`: a path, or `null` to pass `{}`.
#[derive(Debug, Clone, PartialEq)]
pub enum DataPath {
    Discard,
    Path(Path),
}

impl Default for DataPath {
    fn default() -> Self {
        DataPath::Path(Path::parse("$").expect("'$' is a valid path"))
    }
}

/// `ResultPath`: where the result goes in the state's input, or `null` to drop the result.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultPath {
    Discard,
    Path(ReferencePath),
}

impl Default for ResultPath {
    fn default() -> Self {
        ResultPath::Path(ReferencePath::parse("$").expect("'$' is a valid reference path"))
    }
}

/// `InputPath` and `OutputPath`, shared by every state type that has them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Io {
    pub input_path: DataPath,
    pub output_path: DataPath,
}

/// A number of seconds given literally or by a reference path into the state's input.
#[derive(Debug, Clone, PartialEq)]
pub enum Seconds {
    Fixed(u64),
    Path(Path),
}

/// How a Task waits for its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum IntegrationPattern {
    RequestResponse,
    WaitForTaskToken,
    Sync,
}

/// Splits an integration-pattern suffix off a resource ARN.
pub fn split_resource(resource: &str) -> (&str, IntegrationPattern) {
    if let Some(base) = resource.strip_suffix(".waitForTaskToken") {
        return (base, IntegrationPattern::WaitForTaskToken);
    }
    for suffix in [".sync:2", ".sync"] {
        if let Some(base) = resource.strip_suffix(suffix) {
            return (base, IntegrationPattern::Sync);
        }
    }
    (resource, IntegrationPattern::RequestResponse)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    None,
    Full,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Retrier {
    pub error_equals: Vec<String>,
    pub interval_seconds: u64,
    pub max_attempts: u32,
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    pub jitter: Jitter,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    pub result_path: ResultPath,
    /// Evaluated, with `$` the error output, instead of the state's own `Assign`.
    pub assign: Option<Assign>,
}

/// Fields shared by the states that produce a result and handle errors.
#[derive(Debug, Clone, Default)]
pub struct ResultHandling {
    pub result_selector: Option<Template>,
    pub result_path: ResultPath,
    pub retry: Vec<Retrier>,
    pub catch: Vec<Catcher>,
    /// The state's `Assign`, evaluated with `$` the raw result, beside `ResultSelector`.
    pub assign: Option<Assign>,
}

#[derive(Debug, Clone)]
pub struct TaskState {
    /// Shared with the task's history events.
    pub resource: std::sync::Arc<str>,
    pub base_resource: String,
    pub pattern: IntegrationPattern,
    pub io: Io,
    pub parameters: Option<Template>,
    pub handling: ResultHandling,
    pub timeout: Option<Seconds>,
    pub heartbeat: Option<Seconds>,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub struct PassState {
    pub io: Io,
    pub parameters: Option<Template>,
    pub result: Option<Value>,
    pub result_path: ResultPath,
    /// Evaluated with `$` the result (`Result`, or the input after InputPath and Parameters).
    pub assign: Option<Assign>,
    pub transition: Transition,
}

/// A top-level Choice rule: its condition, where it leads, and what it assigns when chosen.
#[derive(Debug, Clone)]
pub struct ChoiceRule {
    pub condition: Condition,
    pub next: String,
    pub assign: Option<Assign>,
}

#[derive(Debug, Clone)]
pub struct ChoiceState {
    pub io: Io,
    pub choices: Vec<ChoiceRule>,
    pub default: Option<String>,
    /// Evaluated only when no rule matched and the state goes to `Default`.
    pub assign: Option<Assign>,
}

#[derive(Debug, Clone)]
pub enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
    Timestamp(DateTime<FixedOffset>),
    TimestampPath(Path),
}

#[derive(Debug, Clone)]
pub struct WaitState {
    pub io: Io,
    pub wait: WaitFor,
    /// Evaluated with `$` the effective input (after InputPath).
    pub assign: Option<Assign>,
    pub transition: Transition,
}

#[derive(Debug, Clone)]
pub struct SucceedState {
    pub io: Io,
}

/// `Error`/`Cause` given literally, or through `ErrorPath`/`CausePath` (path or intrinsic).
#[derive(Debug, Clone)]
pub struct FailState {
    pub error: Option<Template>,
    pub cause: Option<Template>,
}

#[derive(Debug, Clone)]
pub struct ParallelState {
    pub io: Io,
    pub parameters: Option<Template>,
    pub branches: Vec<States>,
    pub handling: ResultHandling,
    pub transition: Transition,
}

/// A count or percentage given literally or by a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Amount {
    Fixed(f64),
    Path(Path),
}

#[derive(Debug, Clone)]
pub struct MapState {
    pub io: Io,
    pub items_path: Path,
    pub item_selector: Option<Template>,
    pub processor: States,
    pub max_concurrency: Option<Amount>,
    pub tolerated_failure_count: Option<Amount>,
    pub tolerated_failure_percentage: Option<Amount>,
    pub handling: ResultHandling,
    pub transition: Transition,
}
