//! Task states: one attempt runs InputPath → Parameters → handler → ResultSelector (and Assign)
//! → ResultPath → OutputPath; the handler is awaited directly (RequestResponse, Sync) or the task
//! waits for a callback with its token (WaitForTaskToken), under TimeoutSeconds and
//! HeartbeatSeconds.
//!
//! A durable engine commits a `.waitForTaskToken` attempt's token and start time before the
//! handler sees the token, so after a restart the task waits for the same token, with its
//! timeouts counted from the original start, and hands the work off again only if the handler
//! had not returned before the restart.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::{debug, trace};

use super::checkpoint::{Cursor, TaskProgress};
use super::history::{self, EventDetails, Payload};
use super::interpreter::{Completed, Execution, Exit, Handled, finish_result, seconds_at};
use super::nested;
use super::store::Op;
use super::tokens::{Callback, Inbox, TokenGuard};
use super::{TaskCall, TaskFailure, TaskHandler};
use crate::definition::{IntegrationPattern, Seconds, TaskState};
use crate::error::{HEARTBEAT_TIMEOUT, StatesError, TIMEOUT};
use crate::io;
use crate::variables::Variables;

/// What an attempt needs once it is prepared.
struct Prepared {
    parameters: Value,
    timers: Timers,
    token: Option<TokenSession>,
}

/// Timer settings of one attempt, unscaled seconds.
pub(crate) struct Timers {
    pub(crate) timeout: Option<u64>,
    heartbeat: Option<u64>,
}

/// The token of one `.waitForTaskToken` attempt and what is known about it.
pub(crate) struct TokenSession {
    guard: TokenGuard,
    callbacks: Inbox,
    started: DateTime<Utc>,
    /// The last heartbeat, or the start.
    last_beat: DateTime<Utc>,
    /// Restored from a checkpoint rather than issued by this attempt.
    pub(crate) resumed: bool,
    pub(crate) submitted: bool,
}

impl Execution {
    pub(crate) async fn task(
        &self,
        name: &str,
        task: &TaskState,
        cursor: &Cursor,
        vars: &Variables,
    ) -> Result<Exit, StatesError> {
        let attempt = |retry_count| self.task_attempt(name, task, cursor, vars, retry_count);
        let on = Handled {
            name,
            handling: &task.handling,
            transition: &task.transition,
            cursor,
            vars,
        };
        self.with_handling(&on, attempt).await
    }

    async fn task_attempt(
        &self,
        name: &str,
        task: &TaskState,
        cursor: &Cursor,
        vars: &Variables,
        retry_count: u32,
    ) -> Result<Completed, StatesError> {
        let Prepared {
            parameters,
            timers,
            mut token,
        } = Box::pin(self.prepare(name, task, cursor, vars, retry_count)).await?;
        let result = if nested::is_builtin(&task.base_resource) {
            let nested =
                self.start_execution_task(task, parameters, token.as_mut(), &timers, cursor);
            Box::pin(nested).await
        } else {
            // Inline rather than in a function of its own: each async frame repeats its
            // arguments, and this one stays alive for the whole wait.
            let handler = self.handler(task)?;
            let call = self.call(name, task, parameters, token.as_ref())?;
            match &mut token {
                None => Box::pin(self.request(handler, call, &timers)).await,
                Some(session) => {
                    let handoff = (!session.submitted)
                        .then(|| tokio::spawn(async move { handler.invoke(call).await }));
                    self.await_callback(task, session, handoff, &timers, cursor)
                        .await
                }
            }
        };
        self.record_result(task, &result);
        let context = self.task_context(name, cursor, retry_count, token.as_ref());
        let input = cursor.input();
        finish_result(&task.handling, &task.io, &input, result?, &context, vars)
    }

    /// InputPath, the timers, the token and Parameters of one attempt, and its `TaskScheduled`.
    async fn prepare(
        &self,
        name: &str,
        task: &TaskState,
        cursor: &Cursor,
        vars: &Variables,
        retry_count: u32,
    ) -> Result<Prepared, StatesError> {
        let effective = io::select(&task.io.input_path, &cursor.input(), vars, "InputPath")?;
        let timers = Timers {
            timeout: resolve_seconds(&task.timeout, &effective, vars, "TimeoutSecondsPath")?,
            heartbeat: resolve_seconds(&task.heartbeat, &effective, vars, "HeartbeatSecondsPath")?,
        };
        let token = match task.pattern {
            IntegrationPattern::WaitForTaskToken => Some(self.open_token(cursor).await),
            _ => None,
        };
        let context = self.task_context(name, cursor, retry_count, token.as_ref());
        let parameters = io::apply_template(
            task.parameters.as_ref(),
            effective,
            &context,
            vars,
            "Parameters",
        )?;
        crate::nesting::check(&parameters, &format!("the parameters of task '{name}'"))?;
        // A resumed attempt that already handed its work off was scheduled before the restart.
        let resumed = token.as_ref().is_some_and(|t| t.resumed) || cursor.resumed_child().is_some();
        if !resumed {
            self.event(EventDetails::TaskScheduled {
                resource: task.resource.clone(),
                parameters: Payload::new(&parameters),
                timeout_seconds: timers.timeout,
                heartbeat_seconds: timers.heartbeat,
            });
        }
        Ok(Prepared {
            parameters,
            timers,
            token,
        })
    }

    /// The context object with `Task.Token` for a `.waitForTaskToken` attempt. Built when
    /// needed rather than kept, so a waiting task holds none.
    fn task_context(
        &self,
        name: &str,
        cursor: &Cursor,
        retry_count: u32,
        token: Option<&TokenSession>,
    ) -> Value {
        let mut context = self.context(name, cursor.entered(), retry_count);
        if let (Value::Object(fields), Some(session)) = (&mut context, token) {
            fields.insert(
                "Task".to_string(),
                json!({ "Token": session.guard.token() }),
            );
        }
        context
    }

    fn record_result(&self, task: &TaskState, result: &Result<Value, StatesError>) {
        let details = match result {
            Ok(output) => EventDetails::TaskSucceeded {
                resource: task.resource.clone(),
                output: Payload::new(output),
            },
            Err(e) if e.error == TIMEOUT || e.error == HEARTBEAT_TIMEOUT => {
                EventDetails::TaskTimedOut {
                    resource: task.resource.clone(),
                    error: e.error.clone(),
                    cause: e.cause.clone(),
                }
            }
            Err(e) => EventDetails::TaskFailed {
                resource: task.resource.clone(),
                error: e.error.clone(),
                cause: e.cause.clone(),
            },
        };
        self.event(details);
    }

    /// The token of this attempt: the one restored from the checkpoint when the task resumes,
    /// else a new one, committed before anyone can see it.
    async fn open_token(&self, cursor: &Cursor) -> TokenSession {
        if let Some(progress) = cursor.take_task()
            && let Some((callbacks, beat)) = self.inner.take_restored_token(&progress.token)
        {
            return TokenSession {
                guard: self.inner.tokens.guard(&progress.token),
                started: progress.started,
                last_beat: beat.map_or(progress.started, |b| b.max(progress.started)),
                resumed: true,
                // A callback that arrived already needs no new hand-off.
                submitted: progress.submitted || !callbacks.is_empty(),
                callbacks,
            };
        }
        let (guard, callbacks) = self.inner.tokens.issue(&self.arn);
        let started = self.now();
        if let Some(store) = &self.inner.store {
            store.queue(Op::Token {
                token: guard.token().to_string(),
                execution_arn: self.arn.to_string(),
            });
            cursor.set_task(Some(TaskProgress {
                token: guard.token().to_string(),
                started,
                submitted: false,
            }));
            self.save(cursor, None).await;
        }
        TokenSession {
            guard,
            callbacks,
            started,
            last_beat: started,
            resumed: false,
            submitted: false,
        }
    }

    fn handler(&self, task: &TaskState) -> Result<Arc<dyn TaskHandler>, StatesError> {
        self.inner.handler(&task.base_resource).ok_or_else(|| {
            StatesError::runtime(format!(
                "no handler is registered for resource {:?}",
                task.base_resource
            ))
        })
    }

    /// The handler's call, recording `TaskStarted` unless a resumed task already started.
    fn call(
        &self,
        name: &str,
        task: &TaskState,
        parameters: Value,
        token: Option<&TokenSession>,
    ) -> Result<TaskCall, StatesError> {
        let call = TaskCall {
            resource: task.resource.to_string(),
            pattern: task.pattern,
            parameters,
            task_token: token.map(|t| t.guard.token().to_string()),
            execution_arn: self.arn.to_string(),
            state_name: name.to_string(),
        };
        trace!(state = %name, parameters = %call.parameters, "invoking task handler");
        let started = EventDetails::TaskStarted {
            resource: task.resource.clone(),
        };
        // A full history has ended the execution: its task must not run any more.
        if !token.is_some_and(|t| t.resumed) && !self.event(started) {
            return Err(history::limit_error());
        }
        Ok(call)
    }

    /// A request-response or `.sync` call: the handler's answer is the result.
    async fn request(
        &self,
        handler: Arc<dyn TaskHandler>,
        call: TaskCall,
        timers: &Timers,
    ) -> Result<Value, StatesError> {
        let timeout = timers.timeout.map(|t| self.inner.clock.scaled(t as f64));
        let invocation = handler.invoke(call);
        let result = match timeout {
            Some(limit) => tokio::time::timeout(limit, invocation)
                .await
                .map_err(|_| timed_out(timers))?,
            None => invocation.await,
        };
        result.map_err(failure)
    }

    /// Records that the handler handed the work off, with the checkpoint that says so: a
    /// resumed task does not hand it off again.
    pub(crate) fn submitted(&self, task: &TaskState, output: Value, cursor: &Cursor) {
        cursor.mark_submitted();
        let details = EventDetails::TaskSubmitted {
            resource: task.resource.clone(),
            output: Payload::new(&output),
        };
        let op = self.position_op(cursor, None);
        if !self
            .handle
            .record_with(self.inner.store.as_ref(), self.now(), details, op)
        {
            self.history_full();
        }
    }

    /// The tokio instant `seconds` (scaled) after a wall-clock time.
    fn instant_after(&self, from: DateTime<Utc>, seconds: Option<u64>) -> Option<Instant> {
        let clock = &self.inner.clock;
        seconds.map(|s| clock.instant_of(clock.deadline(from, s as f64)))
    }

    /// Waits for the callback of a `.waitForTaskToken` task, watching the handler's handoff,
    /// the task timeout and the heartbeat timer.
    pub(crate) async fn await_callback(
        &self,
        task: &TaskState,
        session: &mut TokenSession,
        mut handoff: Option<tokio::task::JoinHandle<Result<Value, TaskFailure>>>,
        timers: &Timers,
        cursor: &Cursor,
    ) -> Result<Value, StatesError> {
        let deadline = self.instant_after(session.started, timers.timeout);
        let mut heartbeat_deadline = self.instant_after(session.last_beat, timers.heartbeat);
        let heartbeat: Option<Duration> =
            timers.heartbeat.map(|h| self.inner.clock.scaled(h as f64));
        let TokenSession {
            guard, callbacks, ..
        } = session;
        loop {
            // One timer for whichever deadline comes first, allocated only while one is set.
            let (expiry, beat) = match (deadline, heartbeat_deadline) {
                (Some(d), Some(h)) if h < d => (Some(h), true),
                (Some(d), _) => (Some(d), false),
                (None, h) => (h, true),
            };
            tokio::select! {
                joined = async { handoff.as_mut().expect("guarded by the select condition").await }, if handoff.is_some() => {
                    handoff = None;
                    match joined {
                        Ok(Ok(output)) => self.submitted(task, output, cursor),
                        Ok(Err(f)) => return Err(failure(f)),
                        Err(e) => return Err(StatesError::new(crate::error::TASK_FAILED, format!("the task handler stopped unexpectedly: {e}"))),
                    }
                }
                callback = callbacks.recv() => match callback {
                    Callback::Heartbeat => {
                        debug!(token = %guard.token(), "task heartbeat");
                        heartbeat_deadline = heartbeat.map(|d| self.inner.clock.instant_in(d));
                    }
                    done => return completed(done),
                },
                _ = sleep_until(expiry) => {
                    let error = if beat { heartbeat_timed_out(timers) } else { timed_out(timers) };
                    return expire(guard, callbacks, error);
                }
            }
        }
    }
}

/// Closes the token on a timer expiry; a completion that won the race still counts.
fn expire(
    guard: &TokenGuard,
    callbacks: &mut Inbox,
    error: StatesError,
) -> Result<Value, StatesError> {
    if guard.close() {
        return Err(error);
    }
    loop {
        match callbacks.try_recv() {
            Some(Callback::Heartbeat) => continue,
            Some(done) => return completed(done),
            None => return Err(error),
        }
    }
}

fn completed(callback: Callback) -> Result<Value, StatesError> {
    match callback {
        Callback::Success(output) => Ok(output),
        Callback::Failure { error, cause } => Err(StatesError { error, cause }),
        Callback::Heartbeat => Err(StatesError::runtime("a heartbeat is not a task result")),
    }
}

/// Sleeps until `deadline`, or forever. The timer lives on the heap so that a task waiting
/// without one does not carry its space.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => Box::pin(tokio::time::sleep_until(at)).await,
        None => std::future::pending().await,
    }
}

fn failure(f: TaskFailure) -> StatesError {
    StatesError::new(f.error, f.cause)
}

pub(crate) fn timed_out(timers: &Timers) -> StatesError {
    let seconds = timers.timeout.unwrap_or_default();
    StatesError::new(
        TIMEOUT,
        format!("the task did not complete within its TimeoutSeconds ({seconds} s)"),
    )
}

fn heartbeat_timed_out(timers: &Timers) -> StatesError {
    let seconds = timers.heartbeat.unwrap_or_default();
    StatesError::new(
        HEARTBEAT_TIMEOUT,
        format!("no heartbeat was received within HeartbeatSeconds ({seconds} s)"),
    )
}

fn resolve_seconds(
    seconds: &Option<Seconds>,
    input: &Value,
    vars: &Variables,
    field: &str,
) -> Result<Option<u64>, StatesError> {
    match seconds {
        None => Ok(None),
        Some(Seconds::Fixed(n)) => Ok(Some(*n)),
        Some(Seconds::Path(path)) => match seconds_at(path, input, vars, field)? {
            0 => Err(StatesError::runtime(format!(
                "{field} {:?} must be a positive integer, got 0",
                path.as_str()
            ))),
            n => Ok(Some(n)),
        },
    }
}
