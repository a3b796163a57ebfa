//! The engine: registered task handlers, state machines and executions, and the Step
//! Functions-like API over them (start, callbacks, describe, history, notifications).
//!
//! Each execution runs as one tokio task driving the interpreter. Everything an execution does
//! is recorded as [`HistoryEvent`]s on its [`ExecutionRecord`]; the record plus the events are
//! the explicit execution state a durable store would persist.

mod checkpoint;
mod clock;
mod durable;
mod history;
mod interpreter;
mod nested;
mod retry;
mod store;
mod task;
mod tokens;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::{Notify, broadcast};
use tracing::info;

pub use history::{
    AssignedVariables, AssignedVariablesDetails, EventDetails, HistoryEvent, MAX_HISTORY_EVENTS,
    Payload,
};
pub use store::StoreError;

use crate::definition::{self, IntegrationPattern, LoadError, StateMachine};
use clock::Clock;
use durable::Restored;
use interpreter::Execution;
use store::{Op, Store};
use tokens::{Callback, TokenRegistry};

/// Histories up to this many events grow by one event at a time.
const SMALL_HISTORY: usize = 16;

/// Largest payload (bytes of JSON) Step Functions accepts as task output or input.
pub const MAX_PAYLOAD_BYTES: usize = 262_144;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Multiplies every timer duration (Wait, Retry intervals, TimeoutSeconds,
    /// HeartbeatSeconds, execution TimeoutSeconds). 1.0 is real time.
    pub time_scale: f64,
    /// Region used in ARNs, `"local"` by default.
    pub region: String,
    /// Account used in ARNs, `"000000000000"` by default.
    pub account: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            region: "local".to_string(),
            account: "000000000000".to_string(),
        }
    }
}

/// Runs a Task state's resource.
#[async_trait::async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// For `RequestResponse` and `Sync`, `Ok` is the task result. For `WaitForTaskToken`, `Ok`
    /// means the work was handed off and the task now waits for a callback with the token.
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure>;
}

/// One invocation of a task handler.
#[derive(Debug, Clone)]
pub struct TaskCall {
    /// The resource as written in the definition, with any integration-pattern suffix.
    pub resource: String,
    pub pattern: IntegrationPattern,
    /// The effective input: the state input after InputPath and Parameters.
    pub parameters: Value,
    pub task_token: Option<String>,
    pub execution_arn: String,
    pub state_name: String,
}

/// A failed task: `error` is the name Retry/Catch match.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{error}: {cause}")]
pub struct TaskFailure {
    pub error: String,
    pub cause: String,
}

impl TaskFailure {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Aborted,
}

impl ExecutionStatus {
    pub fn is_terminal(self) -> bool {
        self != ExecutionStatus::Running
    }

    /// The AWS spelling: `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
            ExecutionStatus::Aborted => "ABORTED",
        }
    }
}

impl std::fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `DescribeExecution` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDescription {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    pub status: ExecutionStatus,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub start_date: DateTime<Utc>,
    pub stop_date: Option<DateTime<Utc>>,
}

/// Lifecycle notifications for progress displays.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutionEvent {
    Started {
        arn: String,
    },
    Finished {
        arn: String,
        status: ExecutionStatus,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StartError {
    #[error("state machine does not exist: {0}")]
    StateMachineDoesNotExist(String),
    #[error("execution already exists: {0} (names must be unique per state machine)")]
    ExecutionAlreadyExists(String),
    #[error(
        "invalid execution name {0:?}: use 1 to 80 characters without whitespace or any of <>{{}}[]?*\"#%\\^|~`$&,;:/"
    )]
    InvalidName(String),
    #[error("invalid execution input: {0}")]
    InvalidInput(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallbackError {
    /// Malformed token: `"invalid token: ..."`.
    #[error("{0}")]
    InvalidToken(String),
    /// Well-formed, but this engine never issued it.
    #[error("{0}")]
    TaskDoesNotExist(String),
    /// The task already finished or timed out: a late or repeated callback.
    #[error("{0}")]
    TaskTimedOut(String),
    #[error("{0}")]
    InvalidOutput(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StopError {
    #[error("execution does not exist: {0}")]
    ExecutionDoesNotExist(String),
}

/// A loaded state machine.
#[derive(Debug)]
pub(crate) struct MachineRecord {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) definition: Arc<StateMachine>,
    /// The stored definition this record was built from (0 in a memory-only engine).
    pub(crate) definition_id: i64,
}

/// The mutable state of one execution: its description and its history so far.
#[derive(Debug)]
pub(crate) struct ExecutionRecord {
    /// Everything but the input, which is `null` here: see `input`.
    pub(crate) description: ExecutionDescription,
    /// The execution's input, kept once and as text for as long as the execution is known.
    input: Payload,
    pub(crate) history: Vec<HistoryEvent>,
}

impl ExecutionRecord {
    pub(crate) fn new(mut description: ExecutionDescription, history: Vec<HistoryEvent>) -> Self {
        let input = Payload::new(&std::mem::take(&mut description.input));
        Self {
            description,
            input,
            history,
        }
    }

    /// The description with its input, as DescribeExecution returns it.
    pub(crate) fn describe(&self) -> ExecutionDescription {
        let mut description = self.description.clone();
        description.input = self.input.to_value();
        description
    }

    pub(crate) fn input(&self) -> Value {
        self.input.to_value()
    }

    pub(crate) fn input_payload(&self) -> &Payload {
        &self.input
    }
}

/// Shared handle on a running or finished execution.
#[derive(Debug)]
pub(crate) struct ExecutionHandle {
    /// The execution's ARN, shared by the engine's index and the running execution.
    pub(crate) arn: Arc<str>,
    // A std Mutex: updates are short and never held across an await.
    pub(crate) record: Mutex<ExecutionRecord>,
    /// Set once the execution's end is announced (for a durable engine: committed).
    finished: AtomicBool,
    // Notify rather than a watch channel: waiters only need to learn that the end came, and
    // a handle lives as long as its execution is known.
    ended: Notify,
    pub(crate) abort: Mutex<Option<tokio::task::AbortHandle>>,
}

impl ExecutionHandle {
    pub(crate) fn new(record: ExecutionRecord) -> Self {
        let finished = AtomicBool::new(record.description.status.is_terminal());
        Self {
            arn: record.description.execution_arn.as_str().into(),
            record: Mutex::new(record),
            finished,
            ended: Notify::new(),
            abort: Mutex::new(None),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ExecutionRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes everyone waiting for the end of the execution.
    pub(crate) fn announce_end(&self) {
        self.finished.store(true, Ordering::Release);
        self.ended.notify_waiters();
    }

    async fn wait_for_end(&self) {
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before the check, so an end announced in between is not missed.
            ended.as_mut().enable();
            if self.finished.load(Ordering::Acquire) {
                return;
            }
            ended.await;
        }
    }

    /// Appends an event to the history, and queues it for the store of a durable engine.
    /// `false` if the history is full ([`MAX_HISTORY_EVENTS`]): the event was not recorded.
    pub(crate) fn record(
        &self,
        store: Option<&Store>,
        timestamp: DateTime<Utc>,
        details: EventDetails,
    ) -> bool {
        self.record_with(store, timestamp, details, None)
    }

    /// Like [`ExecutionHandle::record`], queueing `then` right after the event: whoever sees
    /// the event in the history knows that both writes are queued.
    pub(crate) fn record_with(
        &self,
        store: Option<&Store>,
        timestamp: DateTime<Utc>,
        details: EventDetails,
        then: Option<Op>,
    ) -> bool {
        let mut record = self.lock();
        let id = record.history.len() as u64 + 1;
        // The last slot is kept for the execution's end, so a full history still records it.
        if id >= MAX_HISTORY_EVENTS && !details.ends_execution() {
            return false;
        }
        let event = HistoryEvent {
            id,
            previous_event_id: id - 1,
            timestamp,
            details,
        };
        if let Some(store) = store {
            // Queued under the lock so that the store sees an execution's events in id order.
            store.queue(Op::Event {
                execution_arn: record.description.execution_arn.clone(),
                id,
                event: serde_json::to_string(&event).unwrap_or_default(),
            });
            if let Some(op) = then {
                store.queue(op);
            }
        }
        // Short histories grow one event at a time: most executions stay small, and a
        // waiting one would otherwise keep up to twice the room it uses.
        if record.history.len() < SMALL_HISTORY {
            record.history.reserve_exact(1);
        }
        record.history.push(event);
        true
    }
}

pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    pub(crate) clock: Clock,
    // RwLock: handlers and machines are read on every task/start and written rarely.
    pub(crate) handlers: RwLock<HashMap<String, Arc<dyn TaskHandler>>>,
    pub(crate) machines: RwLock<HashMap<String, Arc<MachineRecord>>>,
    // Keyed by the handle's own ARN text.
    pub(crate) executions: Mutex<HashMap<Arc<str>, Arc<ExecutionHandle>>>,
    pub(crate) tokens: Arc<TokenRegistry>,
    /// The role every execution reports running as, shared by their histories.
    pub(crate) role_arn: Arc<str>,
    pub(crate) events: broadcast::Sender<ExecutionEvent>,
    /// The SQLite store of a durable engine; `None` keeps everything in memory.
    pub(crate) store: Option<Store>,
    pub(crate) next_definition_id: AtomicI64,
    /// What a durable engine read back and has not resumed yet.
    pub(crate) restored: Mutex<Restored>,
}

impl Inner {
    fn new(config: EngineConfig, store: Option<Store>) -> Inner {
        let role_arn = format!("arn:aws:iam::{}:role/wme-local-states", config.account).into();
        let (events, _) = broadcast::channel(1024);
        Inner {
            clock: Clock::new(config.time_scale),
            config,
            handlers: RwLock::default(),
            machines: RwLock::default(),
            executions: Mutex::default(),
            tokens: Arc::default(),
            role_arn,
            events,
            store,
            next_definition_id: AtomicI64::new(1),
            restored: Mutex::default(),
        }
    }

    pub(crate) fn handler(&self, base_resource: &str) -> Option<Arc<dyn TaskHandler>> {
        read(&self.handlers).get(base_resource).cloned()
    }

    /// The ARN of execution `name` of the state machine named `machine`.
    pub(crate) fn execution_arn(&self, machine: &str, name: &str) -> String {
        format!(
            "arn:aws:states:{}:{}:execution:{machine}:{name}",
            self.config.region, self.config.account
        )
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The local Step Functions engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine that keeps everything in memory: nothing survives the process.
    pub fn new(config: EngineConfig) -> Arc<Engine> {
        Arc::new(Engine {
            inner: Arc::new(Inner::new(config, None)),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Registers the handler for a resource ARN without integration-pattern suffix, e.g.
    /// `arn:aws:states:::lambda:invoke`. A later registration for the same resource replaces
    /// the earlier one. `arn:aws:states:::states:startExecution` is built in (it starts
    /// executions of this engine's state machines) and a handler registered for it is not used.
    pub fn register(&self, resource_prefix: &str, handler: Arc<dyn TaskHandler>) {
        write(&self.inner.handlers).insert(resource_prefix.to_string(), handler);
    }

    /// Loads a state machine: substitutes `${Key}` placeholders, parses and validates the
    /// definition, and checks that every Task resource has a handler. Creating a machine with
    /// an existing name replaces its definition for new executions (running ones keep theirs).
    pub fn create_state_machine(
        &self,
        name: &str,
        definition_json: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<String, LoadError> {
        if !valid_name(name) {
            return Err(LoadError::InvalidName(name.to_string()));
        }
        let mut value: Value =
            serde_json::from_str(definition_json).map_err(|e| LoadError::Json(e.to_string()))?;
        definition::substitute(&mut value, substitutions).map_err(LoadError::Invalid)?;
        let known = |resource: &str| self.inner.handler(resource).is_some();
        let machine = validate_definition(&value, &known).map_err(LoadError::Invalid)?;
        let arn = format!(
            "arn:aws:states:{}:{}:stateMachine:{name}",
            self.inner.config.region, self.inner.config.account
        );
        let definition_id = self.persist_definition(&arn, name, definition_json, substitutions);
        let record = MachineRecord {
            arn: arn.clone(),
            name: name.to_string(),
            definition: Arc::new(machine),
            definition_id,
        };
        write(&self.inner.machines).insert(arn.clone(), Arc::new(record));
        info!(state_machine = %arn, "state machine created");
        Ok(arn)
    }

    /// Starts an execution. Like AWS, starting again with the same name and input while the
    /// first is still running returns the same execution.
    pub async fn start_execution(
        &self,
        state_machine_arn: &str,
        name: Option<&str>,
        input: Value,
    ) -> Result<String, StartError> {
        let machine = read(&self.inner.machines)
            .get(state_machine_arn)
            .cloned()
            .ok_or_else(|| StartError::StateMachineDoesNotExist(state_machine_arn.to_string()))?;
        let name = match name {
            Some(n) if valid_execution_name(n) => n.to_string(),
            Some(n) => return Err(StartError::InvalidName(n.to_string())),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let size = input.to_string().len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(StartError::InvalidInput(format!(
                "input has {size} bytes, more than the {MAX_PAYLOAD_BYTES} allowed"
            )));
        }
        if crate::nesting::too_deep(&input) {
            return Err(StartError::InvalidInput(format!(
                "input nests arrays and objects more than {} levels deep, more than this engine keeps",
                crate::nesting::MAX_NESTING
            )));
        }
        let arn = self.inner.execution_arn(&machine.name, &name);
        let handle = {
            let mut executions = lock(&self.inner.executions);
            if let Some(existing) = executions.get(arn.as_str()) {
                let record = existing.lock();
                let same = record.input() == input
                    && record.description.status == ExecutionStatus::Running;
                return if same {
                    Ok(arn)
                } else {
                    Err(StartError::ExecutionAlreadyExists(arn))
                };
            }
            let handle = Arc::new(self.new_handle(&arn, &machine, &name, input));
            executions.insert(Arc::clone(&handle.arn), Arc::clone(&handle));
            handle
        };
        self.persist_execution(&handle, &machine);
        Execution::spawn(Arc::clone(&self.inner), handle, machine, None);
        self.sync().await;
        Ok(arn)
    }

    fn new_handle(
        &self,
        arn: &str,
        machine: &MachineRecord,
        name: &str,
        input: Value,
    ) -> ExecutionHandle {
        let description = ExecutionDescription {
            execution_arn: arn.to_string(),
            state_machine_arn: machine.arn.clone(),
            name: name.to_string(),
            status: ExecutionStatus::Running,
            input,
            output: None,
            error: None,
            cause: None,
            start_date: self.inner.clock.now(),
            stop_date: None,
        };
        ExecutionHandle::new(ExecutionRecord::new(description, Vec::new()))
    }

    pub fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        let size = output.to_string().len();
        if size > MAX_PAYLOAD_BYTES {
            return Err(CallbackError::InvalidOutput(format!(
                "invalid output: {size} bytes, more than the {MAX_PAYLOAD_BYTES} allowed"
            )));
        }
        if crate::nesting::too_deep(&output) {
            return Err(CallbackError::InvalidOutput(format!(
                "invalid output: it nests arrays and objects more than {} levels deep",
                crate::nesting::MAX_NESTING
            )));
        }
        self.deliver(token, Callback::Success(output))
    }

    pub fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        let callback = Callback::Failure {
            error: error.to_string(),
            cause: cause.to_string(),
        };
        self.deliver(token, callback)
    }

    pub fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        self.deliver(token, Callback::Heartbeat)
    }

    /// Stops a running execution (status `ABORTED`); its waiting tasks' tokens become late.
    pub fn stop_execution(
        &self,
        execution_arn: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), StopError> {
        let handle = self
            .execution(execution_arn)
            .ok_or_else(|| StopError::ExecutionDoesNotExist(execution_arn.to_string()))?;
        Execution::abort(&self.inner, &handle, error, cause);
        Ok(())
    }

    fn execution(&self, arn: &str) -> Option<Arc<ExecutionHandle>> {
        lock(&self.inner.executions).get(arn).cloned()
    }

    pub fn describe_execution(&self, execution_arn: &str) -> Option<ExecutionDescription> {
        Some(self.execution(execution_arn)?.lock().describe())
    }

    /// Resolves once the execution has reached a terminal status.
    pub async fn wait_for_execution(&self, execution_arn: &str) -> Option<ExecutionDescription> {
        let handle = self.execution(execution_arn)?;
        handle.wait_for_end().await;
        let description = handle.lock().describe();
        Some(description)
    }

    pub fn history(&self, execution_arn: &str) -> Option<Vec<HistoryEvent>> {
        Some(self.execution(execution_arn)?.lock().history.clone())
    }

    /// Executions of a state machine, newest first.
    pub fn list_executions(&self, state_machine_arn: &str) -> Vec<ExecutionDescription> {
        let mut list: Vec<_> = lock(&self.inner.executions)
            .values()
            .map(|h| h.lock().describe())
            .filter(|d| d.state_machine_arn == state_machine_arn)
            .collect();
        list.sort_by_key(|d| std::cmp::Reverse(d.start_date));
        list
    }

    /// ARNs of every state machine this engine knows (created here or read back from its
    /// store), sorted.
    pub fn list_state_machines(&self) -> Vec<String> {
        let mut arns: Vec<String> = read(&self.inner.machines).keys().cloned().collect();
        arns.sort();
        arns
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ExecutionEvent> {
        self.inner.events.subscribe()
    }
}

/// Every check the engine makes when it loads a definition (after `${...}` substitution):
/// the language, and the parameters of the integrations built into the engine. `resource_known`
/// says whether a Task resource (without its integration-pattern suffix) has a handler; the
/// built-in `states:startExecution` always does.
pub fn validate_definition(
    definition: &Value,
    resource_known: &dyn Fn(&str) -> bool,
) -> Result<StateMachine, Vec<definition::ValidationError>> {
    let known = |resource: &str| nested::is_builtin(resource) || resource_known(resource);
    let parsed = definition::parse_definition(definition, &known);
    nested::check_parameters(definition, parsed)
}

fn valid_name(name: &str) -> bool {
    (1..=80).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn valid_execution_name(name: &str) -> bool {
    const FORBIDDEN: &str = "<>{}[]?*\"#%\\^|~`$&,;:/";
    (1..=80).contains(&name.chars().count())
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || FORBIDDEN.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_follow_aws_rules() {
        assert!(valid_execution_name("upgrade-42_a.b"));
        assert!(!valid_execution_name(""));
        assert!(!valid_execution_name("has space"));
        assert!(!valid_execution_name("a/b"));
        assert!(!valid_execution_name(&"x".repeat(81)));
    }

    #[test]
    fn state_machines_are_listed_by_arn_in_order() {
        let engine = Engine::new(EngineConfig::default());
        let definition = r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#;
        let none = HashMap::new();
        let b = engine.create_state_machine("b", definition, &none).unwrap();
        let a = engine.create_state_machine("a", definition, &none).unwrap();
        engine.create_state_machine("b", definition, &none).unwrap();

        assert_eq!(engine.list_state_machines(), [a, b]);
    }

    #[test]
    fn state_machine_names_are_checked() {
        assert!(valid_name("FirmwareUpgrade-v2"));
        assert!(!valid_name("bad name"));
    }
}
