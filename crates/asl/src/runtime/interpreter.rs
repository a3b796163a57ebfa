//! The interpreter: walks a state machine for one execution, state by state, applying input and
//! output processing, Retry and Catch, workflow variables, and recording every step in the
//! execution's history.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{StreamExt, stream};
use serde_json::{Value, json};
use tracing::{Instrument, debug, info, info_span, trace};

use super::checkpoint::{Checkpoint, Cursor, Position, RetryProgress, inner_block, inner_prefix};
use super::clock::format_time;
use super::history::{self, AssignedVariables, AssignedVariablesDetails, EventDetails, Payload};
use super::store::Op;
use super::{
    ExecutionEvent, ExecutionHandle, ExecutionStatus, Inner, MAX_PAYLOAD_BYTES, MachineRecord,
    retry,
};
use crate::assign::{self, Assign};
use crate::choice;
use crate::definition::{
    Amount, ChoiceState, FailState, Io, MapState, ParallelState, PassState, ResultHandling, State,
    States, Transition, WaitFor, WaitState,
};
use crate::error::{
    self, DATA_LIMIT_EXCEEDED, EXCEED_TOLERATED_FAILURE_THRESHOLD, NO_CHOICE_MATCHED, StatesError,
};
use crate::io;
use crate::nesting;
use crate::path::{Path, type_name};
use crate::variables::{Assigned, BlockVariables, Scope, Variables};

/// Where the interpreter goes after a state.
pub(crate) enum Step {
    Next(String, Value),
    End(Value),
}

fn step(transition: &Transition, output: Value) -> Step {
    match transition {
        Transition::Next(next) => Step::Next(next.clone(), output),
        Transition::End => Step::End(output),
    }
}

/// How a state ends: where the block goes, and the variables the state assigns on the way.
pub(crate) struct Exit {
    pub(crate) step: Step,
    pub(crate) assigned: Option<Assigned>,
}

impl Exit {
    fn new(step: Step, assigned: Option<Assigned>) -> Self {
        Self { step, assigned }
    }
}

/// What one attempt of a Task, Parallel or Map state produced: its output and the values of the
/// state's `Assign`, computed from the raw result.
pub(crate) struct Completed {
    pub(crate) output: Value,
    pub(crate) assigned: Option<Assigned>,
}

/// How a block enters its next state.
struct Entry<'a> {
    block: &'a str,
    /// The saved position when the block resumes from a checkpoint.
    resume: Option<Box<Position>>,
    /// Inner blocks of the previous state whose checkpoints go with this transition.
    clear: Option<String>,
    /// The block's variables as the state sees them on entry, saved with its position.
    variables: Scope,
}

fn has_inner_blocks(state: &State) -> bool {
    matches!(state, State::Parallel(_) | State::Map(_))
}

/// How an execution ended.
enum Outcome {
    Succeeded(Value),
    Failed(StatesError),
    TimedOut,
}

/// One running execution.
pub(crate) struct Execution {
    pub(crate) inner: Arc<Inner>,
    pub(crate) handle: Arc<ExecutionHandle>,
    pub(crate) arn: Arc<str>,
    machine: Arc<MachineRecord>,
    start_time: DateTime<Utc>,
    /// Checkpoints read back from the store that no block has taken yet.
    pub(crate) resume: Mutex<HashMap<String, Checkpoint>>,
    /// Resumed after a restart rather than started.
    resumed: bool,
    /// Bytes of every variable the execution's running blocks hold, against the 10 MiB limit.
    variable_bytes: AtomicUsize,
}

impl Execution {
    pub(crate) fn spawn(
        inner: Arc<Inner>,
        handle: Arc<ExecutionHandle>,
        machine: Arc<MachineRecord>,
        resume: Option<HashMap<String, Checkpoint>>,
    ) {
        let (arn, start_time) = {
            let record = handle.lock();
            let d = &record.description;
            (Arc::clone(&handle.arn), d.start_date)
        };
        let span = info_span!("execution", execution = %arn);
        let execution = Arc::new(Execution {
            inner,
            handle: Arc::clone(&handle),
            arn,
            machine,
            start_time,
            resumed: resume.is_some(),
            resume: Mutex::new(resume.unwrap_or_default()),
            variable_bytes: AtomicUsize::new(0),
        });
        let task = tokio::spawn(execution.run().instrument(span));
        *handle.abort.lock().unwrap_or_else(|p| p.into_inner()) = Some(task.abort_handle());
    }

    /// Stops an execution from outside (StopExecution).
    pub(crate) fn abort(inner: &Inner, handle: &ExecutionHandle, error: &str, cause: &str) {
        let details = EventDetails::ExecutionAborted {
            error: error.to_string(),
            cause: cause.to_string(),
        };
        let optional = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let ending = Ending {
            status: ExecutionStatus::Aborted,
            output: None,
            error: optional(error),
            cause: optional(cause),
            details,
        };
        end_now(inner, handle, ending);
    }

    /// Fails the execution because its history is full, as AWS does: the failure is its last
    /// event and nothing of it runs afterwards. Returns the error to unwind with.
    pub(crate) fn history_full(&self) -> StatesError {
        let error = history::limit_error();
        let ending = self.conclude(Outcome::Failed(error.clone()));
        end_now(&self.inner, &self.handle, ending);
        error
    }

    async fn run(self: Arc<Self>) {
        let (input, payload) = {
            let record = self.handle.lock();
            (record.input(), record.input_payload().clone())
        };
        if self.resumed {
            info!(state_machine = %self.machine.arn, "execution resumed");
        } else {
            info!(state_machine = %self.machine.arn, "execution started");
            let role_arn = self.role_arn();
            self.event(EventDetails::ExecutionStarted {
                input: payload,
                role_arn,
            });
            let _ = self.inner.events.send(ExecutionEvent::Started {
                arn: self.arn.to_string(),
            });
        }
        let definition = Arc::clone(&self.machine.definition);
        let body = self.run_block(&definition.states, String::new(), input, None);
        let outcome = match definition.timeout_seconds {
            Some(t) => {
                // Counted from the start, so a resumed execution keeps its original deadline.
                let deadline = self.inner.clock.deadline(self.start_time, t as f64);
                let limited =
                    Box::pin(tokio::time::timeout(self.inner.clock.until(deadline), body));
                match limited.await {
                    Ok(result) => result.into(),
                    Err(_) => Outcome::TimedOut,
                }
            }
            None => body.await.into(),
        };
        let ending = self.conclude(outcome);
        let status = ending.status;
        if let Some(arn) = finish(&self.inner, &self.handle, ending) {
            self.commit(Op::Sync).await;
            notify(&self.inner, &self.handle, &arn, status);
        }
    }

    fn conclude(&self, outcome: Outcome) -> Ending {
        let (status, output, error, cause, details) = match outcome {
            Outcome::Succeeded(output) => {
                let details = EventDetails::ExecutionSucceeded {
                    output: Payload::new(&output),
                };
                (
                    ExecutionStatus::Succeeded,
                    Some(output),
                    None,
                    None,
                    details,
                )
            }
            Outcome::Failed(e) => {
                let details = EventDetails::ExecutionFailed {
                    error: e.error.clone(),
                    cause: e.cause.clone(),
                };
                let optional = |s: String| (!s.is_empty()).then_some(s);
                (
                    ExecutionStatus::Failed,
                    None,
                    optional(e.error),
                    optional(e.cause),
                    details,
                )
            }
            Outcome::TimedOut => {
                let cause = "The execution ran longer than its TimeoutSeconds".to_string();
                let details = EventDetails::ExecutionTimedOut {
                    error: error::TIMEOUT.into(),
                    cause: cause.clone(),
                };
                (
                    ExecutionStatus::TimedOut,
                    None,
                    Some(error::TIMEOUT.to_string()),
                    Some(cause),
                    details,
                )
            }
        };
        Ending {
            status,
            output,
            error,
            cause,
            details,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Records an event; `false` if the history is full, in which case the execution has ended.
    pub(crate) fn event(&self, details: EventDetails) -> bool {
        let recorded = self
            .handle
            .record(self.inner.store.as_ref(), self.now(), details);
        if !recorded {
            self.history_full();
        }
        recorded
    }

    fn role_arn(&self) -> Arc<str> {
        Arc::clone(&self.inner.role_arn)
    }

    /// The context object (`$$`) as a state sees it; `null` for a state that never reads it
    /// (see [`StateMachine::context_states`](crate::definition::StateMachine)).
    pub(crate) fn context(&self, state: &str, entered: DateTime<Utc>, retry_count: u32) -> Value {
        if !self.machine.definition.context_states.contains(state) {
            return Value::Null;
        }
        let (input, execution_name) = {
            let record = self.handle.lock();
            (record.input(), record.description.name.clone())
        };
        json!({
            "Execution": {
                "Id": &*self.arn,
                "Input": input,
                "Name": execution_name,
                "RoleArn": &*self.role_arn(),
                "StartTime": format_time(self.start_time),
                "RedriveCount": 0
            },
            "State": {
                "EnteredTime": format_time(entered),
                "Name": state,
                "RetryCount": retry_count
            },
            "StateMachine": {"Id": self.machine.arn, "Name": self.machine.name}
        })
    }

    /// Runs a block from its checkpoint if one was saved, else from `StartAt` with `input`.
    /// `outer` holds the variables of the blocks around it, which it reads but never assigns.
    pub(crate) fn run_block<'a>(
        &'a self,
        block: &'a States,
        key: String,
        input: Value,
        outer: Option<Arc<Variables>>,
    ) -> BoxFuture<'a, Result<Value, StatesError>> {
        Box::pin(async move {
            let (mut name, mut input, own, mut resume) = match self.take_checkpoint(&key) {
                Some(Checkpoint::Done { output }) => return Ok(output),
                Some(Checkpoint::State(p)) => {
                    let own = p.variables.clone();
                    (p.state.clone(), p.input.to_value(), own, Some(Box::new(p)))
                }
                None => (block.start_at.clone(), input, Scope::default(), None),
            };
            let mut vars = BlockVariables::open(Variables::new(own, outer), &self.variable_bytes);
            let mut clear = None;
            loop {
                let Some(state) = block.states.get(&name) else {
                    return Err(StatesError::runtime(format!(
                        "state {name:?} does not exist"
                    )));
                };
                let entry = Entry {
                    block: &key,
                    resume: resume.take(),
                    clear: clear.take(),
                    variables: vars.get().own().clone(),
                };
                let step = self
                    .run_state(&name, state, input, entry, &mut vars)
                    .await?;
                let inner_blocks = has_inner_blocks(state).then(|| inner_prefix(&key, &name));
                match step {
                    Step::Next(next, output) => {
                        debug!(from = %name, to = %next, "transition");
                        name = next;
                        input = output;
                        clear = inner_blocks;
                    }
                    Step::End(output) => {
                        if !key.is_empty() {
                            self.save_done(&key, &output, inner_blocks).await;
                        }
                        return Ok(output);
                    }
                }
            }
        })
    }

    /// Enters a state (or resumes it), commits the checkpoint, runs it, and applies the
    /// variables it assigns.
    async fn run_state(
        &self,
        name: &str,
        state: &State,
        input: Value,
        entry: Entry<'_>,
        vars: &mut BlockVariables<'_>,
    ) -> Result<Step, StatesError> {
        let state_type = state.type_name();
        let (cursor, entered_id) = match entry.resume {
            Some(position) => {
                debug!(state = %name, state_type = %state_type, "state resumed");
                (
                    Cursor::new(entry.block, *position, true),
                    self.entered_event_id(name),
                )
            }
            None => {
                debug!(state = %name, state_type = %state_type, "state entered");
                let entered_id = self.handle.lock().history.len() + 1;
                let cursor = Box::pin(self.enter(name, state, &input, entry)).await?;
                (cursor, entered_id)
            }
        };
        let entered = cursor.entered();
        let read = vars.get();
        let result = match state {
            // Each waiting kind of state runs in its own allocation, sized for that kind: an
            // execution parked in a Task does not carry the larger Map or Parallel future.
            State::Task(t) => {
                // The cursor keeps the input as text; a waiting task holds no parsed copy.
                drop(input);
                Box::pin(self.task(name, t, &cursor, read)).await
            }
            State::Pass(p) => self.pass(name, p, &input, entered, read),
            State::Choice(c) => self.choice(name, c, &input, entered, read),
            State::Wait(w) => Box::pin(self.wait(name, w, &input, entered, read)).await,
            State::Succeed(s) => {
                io_only(&s.io, &input, read).map(|o| Exit::new(Step::End(o), None))
            }
            State::Fail(f) => Err(self.fail(f, &input, name, entered, read)),
            State::Parallel(p) => Box::pin(self.parallel(name, p, input, &cursor, read)).await,
            State::Map(m) => Box::pin(self.map(name, m, input, &cursor, read)).await,
        };
        let exit = result.map_err(|e| annotate(e, name, entered_id))?;
        let output = match &exit.step {
            Step::Next(_, output) | Step::End(output) => output,
        };
        check_size(output, name)?;
        let mut shown = None;
        if let Some(a) = exit.assigned.filter(|a| !a.is_empty()) {
            debug!(state = %name, variables = a.len(), bytes = a.bytes(), "variables assigned");
            let assigned = AssignedVariables {
                assigned_variables: a.to_history(),
                assigned_variables_details: AssignedVariablesDetails { truncated: false },
            };
            trace!(state = %name, values = ?assigned.assigned_variables, "variables assigned");
            vars.assign(a).map_err(|e| annotate(e, name, entered_id))?;
            shown = Some(Box::new(assigned));
        }
        self.event(EventDetails::StateExited {
            state_type: state_type.to_string(),
            name: name.to_string(),
            output: Payload::new(output),
            assigned: shown,
        });
        Ok(exit.step)
    }

    /// Records `StateEntered` and queues the block's new position with it. States that act on
    /// the world or on time (Task, Wait, Parallel, Map) start only once that is committed; the
    /// pure ones (Pass, Choice, Succeed, Fail) go on at once, since running one of them again
    /// after a crash changes nothing.
    async fn enter(
        &self,
        name: &str,
        state: &State,
        input: &Value,
        entry: Entry<'_>,
    ) -> Result<Cursor, StatesError> {
        let now = self.now();
        let payload = Payload::new(input);
        let position = Position {
            state: name.to_string(),
            input: payload.clone(),
            entered: now,
            retry: RetryProgress::default(),
            task: None,
            child: None,
            variables: entry.variables,
        };
        let cursor = Cursor::new(entry.block, position, false);
        let op = self.position_op(&cursor, entry.clear);
        let details = EventDetails::StateEntered {
            state_type: state.type_name().to_string(),
            name: name.to_string(),
            input: payload,
        };
        if !self
            .handle
            .record_with(self.inner.store.as_ref(), now, details, op)
        {
            return Err(self.history_full());
        }
        let pure = matches!(
            state,
            State::Pass(_) | State::Choice(_) | State::Succeed(_) | State::Fail(_)
        );
        if !pure {
            self.commit(Op::Sync).await;
        }
        Ok(cursor)
    }

    /// The id of the latest `StateEntered` event of a resumed state, as error causes quote it.
    fn entered_event_id(&self, name: &str) -> usize {
        let record = self.handle.lock();
        record
            .history
            .iter()
            .rev()
            .find(|e| matches!(&e.details, EventDetails::StateEntered { name: n, .. } if n == name))
            .map_or(record.history.len(), |e| e.id as usize)
    }

    fn pass(
        &self,
        name: &str,
        pass: &PassState,
        input: &Value,
        entered: DateTime<Utc>,
        vars: &Variables,
    ) -> Result<Exit, StatesError> {
        let effective = io::select(&pass.io.input_path, input, vars, "InputPath")?;
        let context = self.context(name, entered, 0);
        let effective = io::apply_template(
            pass.parameters.as_ref(),
            effective,
            &context,
            vars,
            "Parameters",
        )?;
        let result = pass.result.clone().unwrap_or(effective);
        let assigned = assign::evaluate(pass.assign.as_ref(), &result, &context, vars)?;
        let placed = io::place_result(&pass.result_path, input, result)?;
        let output = io::select(&pass.io.output_path, &placed, vars, "OutputPath")?;
        Ok(Exit::new(step(&pass.transition, output), assigned))
    }

    /// Takes the first matching rule, with its `Assign`; the state's own `Assign` only goes
    /// with `Default`.
    fn choice(
        &self,
        name: &str,
        state: &ChoiceState,
        input: &Value,
        entered: DateTime<Utc>,
        vars: &Variables,
    ) -> Result<Exit, StatesError> {
        let effective = io::select(&state.io.input_path, input, vars, "InputPath")?;
        let context = self.context(name, entered, 0);
        let mut chosen = None;
        for rule in &state.choices {
            if choice::evaluate(&rule.condition, &effective, &context, vars)? {
                chosen = Some((&rule.next, rule.assign.as_ref()));
                break;
            }
        }
        let default = state.default.as_ref().map(|d| (d, state.assign.as_ref()));
        let Some((next, assign)) = chosen.or(default) else {
            return Err(StatesError::new(
                NO_CHOICE_MATCHED,
                format!(
                    "no choice rule matched the input {effective} and the state has no Default"
                ),
            ));
        };
        let assigned = assign::evaluate(assign, &effective, &context, vars)?;
        let output = io::select(&state.io.output_path, &effective, vars, "OutputPath")?;
        Ok(Exit::new(Step::Next(next.clone(), output), assigned))
    }

    /// Waits until a deadline counted from when the state was entered, so that a resumed Wait
    /// fires at its original time (at once if that has passed).
    async fn wait(
        &self,
        name: &str,
        state: &WaitState,
        input: &Value,
        entered: DateTime<Utc>,
        vars: &Variables,
    ) -> Result<Exit, StatesError> {
        let effective = io::select(&state.io.input_path, input, vars, "InputPath")?;
        let seconds = match &state.wait {
            WaitFor::Seconds(n) => *n as f64,
            WaitFor::SecondsPath(path) => seconds_at(path, &effective, vars, "SecondsPath")? as f64,
            WaitFor::Timestamp(t) => seconds_between(entered, t.to_utc()),
            WaitFor::TimestampPath(path) => {
                let when = timestamp_at(path, &effective, vars)?;
                seconds_between(entered, when)
            }
        };
        let deadline = self.inner.clock.deadline(entered, seconds);
        tokio::time::sleep(self.inner.clock.until(deadline)).await;
        let assigned =
            self.assign_with_context(state.assign.as_ref(), &effective, name, entered, 0, vars)?;
        let output = io::select(&state.io.output_path, &effective, vars, "OutputPath")?;
        Ok(Exit::new(step(&state.transition, output), assigned))
    }

    /// Evaluates an `Assign` field, building the context object only when there is one.
    fn assign_with_context(
        &self,
        assign: Option<&Assign>,
        value: &Value,
        name: &str,
        entered: DateTime<Utc>,
        retry_count: u32,
        vars: &Variables,
    ) -> Result<Option<Assigned>, StatesError> {
        let Some(assign) = assign else {
            return Ok(None);
        };
        let context = self.context(name, entered, retry_count);
        assign.evaluate(value, &context, vars).map(Some)
    }

    fn fail(
        &self,
        state: &FailState,
        input: &Value,
        name: &str,
        entered: DateTime<Utc>,
        vars: &Variables,
    ) -> StatesError {
        let context = self.context(name, entered, 0);
        let text = |template: &Option<crate::template::Template>,
                    field: &str|
         -> Result<String, StatesError> {
            let Some(t) = template else {
                return Ok(String::new());
            };
            match t.evaluate(input, &context, vars, field)? {
                Value::String(s) => Ok(s),
                other => Err(StatesError::runtime(format!(
                    "{field} must resolve to a string, got {other}"
                ))),
            }
        };
        let error = text(&state.error, "ErrorPath");
        let cause = text(&state.cause, "CausePath");
        match (error, cause) {
            (Ok(error), Ok(cause)) => StatesError { error, cause },
            (Err(e), _) | (_, Err(e)) => e,
        }
    }

    async fn parallel(
        &self,
        name: &str,
        state: &ParallelState,
        input: Value,
        cursor: &Cursor,
        vars: &Variables,
    ) -> Result<Exit, StatesError> {
        let attempt =
            |retry_count| self.parallel_attempt(name, state, &input, cursor, vars, retry_count);
        let on = Handled {
            name,
            handling: &state.handling,
            transition: &state.transition,
            cursor,
            vars,
        };
        self.with_handling(&on, attempt).await
    }

    async fn parallel_attempt(
        &self,
        name: &str,
        state: &ParallelState,
        input: &Value,
        cursor: &Cursor,
        vars: &Variables,
        retry_count: u32,
    ) -> Result<Completed, StatesError> {
        let entered = cursor.entered();
        let effective = io::select(&state.io.input_path, input, vars, "InputPath")?;
        let context = self.context(name, entered, retry_count);
        let effective = io::apply_template(
            state.parameters.as_ref(),
            effective,
            &context,
            vars,
            "Parameters",
        )?;
        self.event(EventDetails::ParallelStateStarted {
            name: name.to_string(),
        });
        let outer = vars.enclosing();
        let branches = state.branches.iter().enumerate().map(|(i, b)| {
            let key = inner_block(&cursor.block, name, retry_count, i);
            self.run_block(b, key, effective.clone(), outer.clone())
        });
        match futures::future::try_join_all(branches).await {
            Ok(results) => {
                self.event(EventDetails::ParallelStateSucceeded {
                    name: name.to_string(),
                });
                let result = Value::Array(results);
                finish_result(&state.handling, &state.io, input, result, &context, vars)
            }
            Err(e) => {
                self.event(EventDetails::ParallelStateFailed {
                    name: name.to_string(),
                    error: e.error.clone(),
                    cause: e.cause.clone(),
                });
                Err(e)
            }
        }
    }

    async fn map(
        &self,
        name: &str,
        state: &MapState,
        input: Value,
        cursor: &Cursor,
        vars: &Variables,
    ) -> Result<Exit, StatesError> {
        let attempt =
            |retry_count| self.map_attempt(name, state, &input, cursor, vars, retry_count);
        let on = Handled {
            name,
            handling: &state.handling,
            transition: &state.transition,
            cursor,
            vars,
        };
        self.with_handling(&on, attempt).await
    }

    async fn map_attempt(
        &self,
        name: &str,
        state: &MapState,
        input: &Value,
        cursor: &Cursor,
        vars: &Variables,
        retry_count: u32,
    ) -> Result<Completed, StatesError> {
        let entered = cursor.entered();
        let effective = io::select(&state.io.input_path, input, vars, "InputPath")?;
        let context = self.context(name, entered, retry_count);
        let items = map_items_of(&state.items_path, &effective, &context, vars)?;
        let limits = MapLimits::resolve(state, &effective, vars, items.len())?;
        self.event(EventDetails::MapStateStarted {
            name: name.to_string(),
            length: items.len(),
        });
        let run = MapRun {
            name,
            state,
            effective: &effective,
            context: &context,
            vars,
            outer: vars.enclosing(),
            block: &cursor.block,
            retry_count,
        };
        match self.map_items(&run, items, &limits).await {
            Ok(results) => {
                self.event(EventDetails::MapStateSucceeded {
                    name: name.to_string(),
                });
                let result = Value::Array(results);
                finish_result(&state.handling, &state.io, input, result, &context, vars)
            }
            Err(e) => {
                self.event(EventDetails::MapStateFailed {
                    name: name.to_string(),
                    error: e.error.clone(),
                    cause: e.cause.clone(),
                });
                Err(e)
            }
        }
    }

    async fn map_items(
        &self,
        run: &MapRun<'_>,
        items: Vec<Value>,
        limits: &MapLimits,
    ) -> Result<Vec<Value>, StatesError> {
        let total = items.len();
        let iterations = items
            .into_iter()
            .enumerate()
            .map(
                |(index, item)| async move { (index, self.map_iteration(run, index, item).await) },
            );
        let mut running = stream::iter(iterations).buffer_unordered(limits.concurrency.max(1));
        let mut results = vec![Value::Null; total];
        let mut failures = 0usize;
        while let Some((index, result)) = running.next().await {
            match result {
                Ok(output) => results[index] = output,
                Err(e) if !limits.tolerates_failures() => return Err(e),
                Err(e) => {
                    failures += 1;
                    if limits.exceeded(failures, total) {
                        return Err(StatesError::new(
                            EXCEED_TOLERATED_FAILURE_THRESHOLD,
                            format!(
                                "{failures} of {total} iterations failed, more than tolerated; last error {}: {}",
                                e.error, e.cause
                            ),
                        ));
                    }
                    results[index] = e.to_output();
                }
            }
        }
        Ok(results)
    }

    async fn map_iteration(
        &self,
        run: &MapRun<'_>,
        index: usize,
        item: Value,
    ) -> Result<Value, StatesError> {
        let (name, state) = (run.name, run.state);
        let item_input = match &state.item_selector {
            Some(selector) => {
                let mut item_context = run.context.clone();
                item_context["Map"] = json!({"Item": {"Index": index, "Value": item}});
                selector.evaluate(run.effective, &item_context, run.vars, "ItemSelector")?
            }
            None => item,
        };
        nesting::check(
            &item_input,
            &format!("the input of iteration {index} of Map '{name}'"),
        )?;
        self.event(EventDetails::MapIterationStarted {
            name: name.to_string(),
            index,
        });
        let key = inner_block(run.block, name, run.retry_count, index);
        let outer = run.outer.clone();
        let result = self
            .run_block(&state.processor, key, item_input, outer)
            .await;
        match &result {
            Ok(_) => self.event(EventDetails::MapIterationSucceeded {
                name: name.to_string(),
                index,
            }),
            Err(e) => self.event(EventDetails::MapIterationFailed {
                name: name.to_string(),
                index,
                error: e.error.clone(),
                cause: e.cause.clone(),
            }),
        };
        result
    }

    /// Runs `attempt` under the state's Retry and Catch rules. Retry counters and the time
    /// the next retry is due are checkpointed, so a resumed state keeps them.
    pub(crate) async fn with_handling<F, Fut>(
        &self,
        on: &Handled<'_>,
        mut attempt: F,
    ) -> Result<Exit, StatesError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Completed, StatesError>>,
    {
        let (name, handling, cursor) = (on.name, on.handling, on.cursor);
        let progress = cursor.retry();
        let mut attempts = progress.attempts;
        attempts.resize(handling.retry.len(), 0);
        let mut retry_count = progress.retry_count;
        if let Some(due) = progress.retry_at {
            Box::pin(tokio::time::sleep(self.inner.clock.until(due))).await;
        }
        loop {
            let error = match attempt(retry_count).await {
                Ok(done) => return Ok(Exit::new(step(on.transition, done.output), done.assigned)),
                Err(e) if e.is_terminal() => return Err(e),
                Err(e) => e,
            };
            let retrier = handling
                .retry
                .iter()
                .position(|r| error::error_equals_matches(&r.error_equals, &error));
            if let Some(i) = retrier.filter(|&i| attempts[i] < handling.retry[i].max_attempts) {
                let delay = retry::delay_seconds(&handling.retry[i], attempts[i], &mut rand::rng());
                attempts[i] += 1;
                retry_count += 1;
                debug!(state = %name, error = %error.error, retry_count, delay, "retrying state");
                self.event(EventDetails::StateRetried {
                    name: name.to_string(),
                    error: error.error.clone(),
                    retry_count,
                    delay_seconds: delay,
                });
                let due = self.inner.clock.deadline(self.now(), delay);
                cursor.set_retry(RetryProgress {
                    attempts: attempts.clone(),
                    retry_count,
                    retry_at: Some(due),
                });
                self.save(cursor, None).await;
                Box::pin(tokio::time::sleep(self.inner.clock.until(due))).await;
                continue;
            }
            return self.catch(on, error, retry_count);
        }
    }

    /// Hands an error that no retrier resolved to the first matching Catcher, whose `Assign`
    /// (with `$` the error output) replaces the state's own.
    fn catch(
        &self,
        on: &Handled<'_>,
        error: StatesError,
        retry_count: u32,
    ) -> Result<Exit, StatesError> {
        let Some(catcher) = on
            .handling
            .catch
            .iter()
            .find(|c| error::error_equals_matches(&c.error_equals, &error))
        else {
            return Err(error);
        };
        debug!(state = %on.name, error = %error.error, next = %catcher.next, "error caught");
        self.event(EventDetails::StateCaught {
            name: on.name.to_string(),
            error: error.error.clone(),
            next: catcher.next.clone(),
        });
        let error_output = error.to_output();
        let assigned = self.assign_with_context(
            catcher.assign.as_ref(),
            &error_output,
            on.name,
            on.cursor.entered(),
            retry_count,
            on.vars,
        )?;
        let output = io::place_result(&catcher.result_path, &on.cursor.input(), error_output)?;
        Ok(Exit::new(
            Step::Next(catcher.next.clone(), output),
            assigned,
        ))
    }
}

/// A Task, Parallel or Map state as its Retry and Catch rules see it.
pub(crate) struct Handled<'a> {
    pub(crate) name: &'a str,
    pub(crate) handling: &'a ResultHandling,
    pub(crate) transition: &'a Transition,
    pub(crate) cursor: &'a Cursor,
    pub(crate) vars: &'a Variables,
}

impl From<Result<Value, StatesError>> for Outcome {
    fn from(result: Result<Value, StatesError>) -> Self {
        match result {
            Ok(output) => Outcome::Succeeded(output),
            Err(e) => Outcome::Failed(e),
        }
    }
}

/// How an execution ends, as recorded in its description and history.
struct Ending {
    status: ExecutionStatus,
    output: Option<Value>,
    error: Option<String>,
    cause: Option<String>,
    details: EventDetails,
}

/// Ends an execution from outside its own run (a stop, a full history): records and commits the
/// end, tells waiters, closes its tokens and cancels what it still runs.
fn end_now(inner: &Inner, handle: &ExecutionHandle, ending: Ending) {
    let status = ending.status;
    let Some(arn) = finish(inner, handle, ending) else {
        return;
    };
    if let Some(store) = &inner.store
        && let Err(e) = store.commit_blocking(Op::Sync)
    {
        tracing::error!(execution = %arn, error = %e, "execution end not saved");
    }
    // Its tokens close before anyone learns of the end, so a callback sent after that is late.
    inner.tokens.close_execution(&arn);
    notify(inner, handle, &arn, status);
    if let Some(task) = handle
        .abort
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
    {
        task.abort();
    }
}

/// Records the end of an execution unless it already ended, and queues it for the store;
/// returns the execution's ARN if this call ended it.
fn finish(inner: &Inner, handle: &ExecutionHandle, ending: Ending) -> Option<String> {
    let now = inner.clock.now();
    let arn = {
        let mut record = handle.lock();
        if record.description.status.is_terminal() {
            return None;
        }
        let d = &mut record.description;
        d.status = ending.status;
        d.output = ending.output;
        d.error = ending.error;
        d.cause = ending.cause;
        d.stop_date = Some(now);
        d.execution_arn.clone()
    };
    handle.record(inner.store.as_ref(), now, ending.details);
    if let Some(store) = &inner.store {
        let description = serde_json::to_string(&handle.lock().describe()).unwrap_or_default();
        store.queue(Op::Finish {
            arn: arn.clone(),
            status: ending.status.as_str().to_string(),
            description,
        });
    }
    info!(execution = %arn, status = %ending.status, "execution finished");
    Some(arn)
}

/// Tells waiters and subscribers that an execution ended; a durable engine calls it once the
/// end is committed.
fn notify(inner: &Inner, handle: &ExecutionHandle, arn: &str, status: ExecutionStatus) {
    handle.announce_end();
    let _ = inner.events.send(ExecutionEvent::Finished {
        arn: arn.to_string(),
        status,
    });
}

/// `Assign` (from the raw result) beside ResultSelector → ResultPath → OutputPath.
pub(crate) fn finish_result(
    handling: &ResultHandling,
    io_paths: &Io,
    raw_input: &Value,
    result: Value,
    context: &Value,
    vars: &Variables,
) -> Result<Completed, StatesError> {
    let assigned = assign::evaluate(handling.assign.as_ref(), &result, context, vars)?;
    let selected = io::apply_template(
        handling.result_selector.as_ref(),
        result,
        context,
        vars,
        "ResultSelector",
    )?;
    let placed = io::place_result(&handling.result_path, raw_input, selected)?;
    let output = io::select(&io_paths.output_path, &placed, vars, "OutputPath")?;
    Ok(Completed { output, assigned })
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_milliseconds().max(0) as f64) / 1000.0
}

fn io_only(paths: &Io, input: &Value, vars: &Variables) -> Result<Value, StatesError> {
    let effective = io::select(&paths.input_path, input, vars, "InputPath")?;
    io::select(&paths.output_path, &effective, vars, "OutputPath")
}

fn annotate(mut error: StatesError, state: &str, entered_id: usize) -> StatesError {
    const PREFIX: &str = "An error occurred while executing the state";
    if error.error == error::RUNTIME && !error.cause.starts_with(PREFIX) {
        error.cause = format!(
            "{PREFIX} '{state}' (entered at the event id #{entered_id}). {}",
            error.cause
        );
    }
    error
}

fn check_size(output: &Value, state: &str) -> Result<(), StatesError> {
    nesting::check(output, &format!("the output of state '{state}'"))?;
    let size = output.to_string().len();
    if size > MAX_PAYLOAD_BYTES {
        return Err(StatesError::new(
            DATA_LIMIT_EXCEEDED,
            format!(
                "the output of state '{state}' has {size} bytes, more than the {MAX_PAYLOAD_BYTES} allowed"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn select_required(
    path: &Path,
    input: &Value,
    vars: &Variables,
    field: &str,
) -> Result<Value, StatesError> {
    path.select(input, &Value::Null, vars).ok_or_else(|| {
        path.unassigned(vars, field).unwrap_or_else(|| {
            StatesError::runtime(format!(
                "Invalid path '{}' : No results for path in {field}",
                path.as_str()
            ))
        })
    })
}

/// A non-negative integer number of seconds read from the state's input or a variable.
pub(crate) fn seconds_at(
    path: &Path,
    input: &Value,
    vars: &Variables,
    field: &str,
) -> Result<u64, StatesError> {
    let value = select_required(path, input, vars, field)?;
    value.as_u64().ok_or_else(|| {
        StatesError::runtime(format!(
            "the value {value} at {field} {:?} must be a non-negative integer",
            path.as_str()
        ))
    })
}

fn timestamp_at(
    path: &Path,
    input: &Value,
    vars: &Variables,
) -> Result<DateTime<Utc>, StatesError> {
    let value = select_required(path, input, vars, "TimestampPath")?;
    let when = value.as_str().and_then(choice::parse_timestamp);
    when.map(|t| t.to_utc()).ok_or_else(|| {
        StatesError::runtime(format!(
            "the value {value} at TimestampPath {:?} is not an RFC 3339 timestamp",
            path.as_str()
        ))
    })
}

/// The items of a Map state: its ItemsPath (on the effective input, the context object or a
/// variable) must select an array.
fn map_items_of(
    items_path: &Path,
    effective: &Value,
    context: &Value,
    vars: &Variables,
) -> Result<Vec<Value>, StatesError> {
    match items_path.select(effective, context, vars) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(StatesError::runtime(format!(
            "ItemsPath {:?} must select an array, got {}",
            items_path.as_str(),
            type_name(&other)
        ))),
        None => Err(items_path.unassigned(vars, "ItemsPath").unwrap_or_else(|| {
            StatesError::runtime(format!(
                "Invalid path '{}' : No results for path in ItemsPath",
                items_path.as_str()
            ))
        })),
    }
}

/// One attempt of a Map state, as its iterations see it.
struct MapRun<'a> {
    name: &'a str,
    state: &'a MapState,
    effective: &'a Value,
    context: &'a Value,
    /// The Map state's variables, for ItemSelector.
    vars: &'a Variables,
    /// What each iteration sees of the variables around it.
    outer: Option<Arc<Variables>>,
    /// The block the Map state is in.
    block: &'a str,
    retry_count: u32,
}

/// Concurrency and failure tolerance of one Map run.
struct MapLimits {
    concurrency: usize,
    failure_count: Option<f64>,
    failure_percentage: Option<f64>,
}

impl MapLimits {
    fn resolve(
        state: &MapState,
        input: &Value,
        vars: &Variables,
        items: usize,
    ) -> Result<Self, StatesError> {
        let amount = |a: &Option<Amount>, field: &str| -> Result<Option<f64>, StatesError> {
            match a {
                None => Ok(None),
                Some(Amount::Fixed(n)) => Ok(Some(*n)),
                Some(Amount::Path(p)) => {
                    let value = select_required(p, input, vars, field)?;
                    value
                        .as_f64()
                        .filter(|n| *n >= 0.0)
                        .map(Some)
                        .ok_or_else(|| {
                            StatesError::runtime(format!(
                                "the value {value} at {field} {:?} must be a non-negative number",
                                p.as_str()
                            ))
                        })
                }
            }
        };
        let concurrency = match amount(&state.max_concurrency, "MaxConcurrencyPath")? {
            None | Some(0.0) => items.max(1),
            Some(n) => n as usize,
        };
        Ok(Self {
            concurrency,
            failure_count: amount(&state.tolerated_failure_count, "ToleratedFailureCountPath")?,
            failure_percentage: amount(
                &state.tolerated_failure_percentage,
                "ToleratedFailurePercentagePath",
            )?,
        })
    }

    fn tolerates_failures(&self) -> bool {
        self.failure_count.is_some() || self.failure_percentage.is_some()
    }

    /// AWS fails the Map when either configured threshold is exceeded.
    fn exceeded(&self, failures: usize, total: usize) -> bool {
        let over_count = self.failure_count.is_some_and(|c| failures as f64 > c);
        let over_percentage = self
            .failure_percentage
            .is_some_and(|p| failures as f64 * 100.0 / total as f64 > p);
        over_count || over_percentage
    }
}
