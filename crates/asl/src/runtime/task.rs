//! Task states: one attempt runs InputPath → Parameters → handler → ResultSelector → ResultPath
//! → OutputPath; the handler is awaited directly (RequestResponse, Sync) or the task waits for a
//! callback with its token (WaitForTaskToken), under TimeoutSeconds and HeartbeatSeconds.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, trace};

use super::history::EventDetails;
use super::interpreter::{Execution, Step, finish_result, seconds_at};
use super::tokens::{Callback, TokenGuard};
use super::{TaskCall, TaskFailure};
use crate::definition::{IntegrationPattern, Seconds, TaskState};
use crate::error::{HEARTBEAT_TIMEOUT, StatesError, TIMEOUT};
use crate::io;

/// Timer settings of one attempt, unscaled seconds.
struct Timers {
    timeout: Option<u64>,
    heartbeat: Option<u64>,
}

impl Execution {
    pub(crate) async fn task(
        &self,
        name: &str,
        task: &TaskState,
        input: Value,
        entered: DateTime<Utc>,
    ) -> Result<Step, StatesError> {
        let attempt = |retry_count| self.task_attempt(name, task, &input, entered, retry_count);
        self.with_handling(name, &task.handling, &input, &task.transition, attempt)
            .await
    }

    async fn task_attempt(
        &self,
        name: &str,
        task: &TaskState,
        input: &Value,
        entered: DateTime<Utc>,
        retry_count: u32,
    ) -> Result<Value, StatesError> {
        let effective = io::select(&task.io.input_path, input, "InputPath")?;
        let timers = Timers {
            timeout: resolve_seconds(&task.timeout, &effective, "TimeoutSecondsPath")?,
            heartbeat: resolve_seconds(&task.heartbeat, &effective, "HeartbeatSecondsPath")?,
        };
        let token = (task.pattern == IntegrationPattern::WaitForTaskToken)
            .then(|| self.inner.tokens.issue(&self.arn));
        let mut context = self.context(name, entered, retry_count);
        if let Some((guard, _)) = &token {
            context["Task"] = json!({"Token": guard.token()});
        }
        let parameters =
            io::apply_template(task.parameters.as_ref(), effective, &context, "Parameters")?;
        self.event(EventDetails::TaskScheduled {
            resource: task.resource.clone(),
            parameters: parameters.clone(),
            timeout_seconds: timers.timeout,
            heartbeat_seconds: timers.heartbeat,
        });
        let result = self.invoke(name, task, parameters, token, &timers).await;
        match &result {
            Ok(output) => self.event(EventDetails::TaskSucceeded {
                resource: task.resource.clone(),
                output: output.clone(),
            }),
            Err(e) if e.error == TIMEOUT || e.error == HEARTBEAT_TIMEOUT => {
                self.event(EventDetails::TaskTimedOut {
                    resource: task.resource.clone(),
                    error: e.error.clone(),
                    cause: e.cause.clone(),
                })
            }
            Err(e) => self.event(EventDetails::TaskFailed {
                resource: task.resource.clone(),
                error: e.error.clone(),
                cause: e.cause.clone(),
            }),
        }
        finish_result(&task.handling, &task.io, input, result?, &context)
    }

    async fn invoke(
        &self,
        name: &str,
        task: &TaskState,
        parameters: Value,
        token: Option<(TokenGuard, mpsc::UnboundedReceiver<Callback>)>,
        timers: &Timers,
    ) -> Result<Value, StatesError> {
        let handler = self.inner.handler(&task.base_resource).ok_or_else(|| {
            StatesError::runtime(format!(
                "no handler is registered for resource {:?}",
                task.base_resource
            ))
        })?;
        let call = TaskCall {
            resource: task.resource.clone(),
            pattern: task.pattern,
            parameters,
            task_token: token.as_ref().map(|(guard, _)| guard.token().to_string()),
            execution_arn: self.arn.clone(),
            state_name: name.to_string(),
        };
        trace!(state = %name, parameters = %call.parameters, "invoking task handler");
        self.event(EventDetails::TaskStarted {
            resource: task.resource.clone(),
        });
        let timeout = timers.timeout.map(|t| self.inner.clock.scaled(t as f64));
        match token {
            None => {
                let invocation = handler.invoke(call);
                let result = match timeout {
                    Some(limit) => tokio::time::timeout(limit, invocation)
                        .await
                        .map_err(|_| timed_out(timers))?,
                    None => invocation.await,
                };
                result.map_err(failure)
            }
            Some((guard, callbacks)) => {
                let heartbeat = timers.heartbeat.map(|h| self.inner.clock.scaled(h as f64));
                let handoff = tokio::spawn(async move { handler.invoke(call).await });
                self.await_callback(task, guard, callbacks, handoff, timeout, heartbeat, timers)
                    .await
            }
        }
    }

    /// Waits for the callback of a `.waitForTaskToken` task, watching the handler's handoff,
    /// the task timeout and the heartbeat timer.
    #[allow(clippy::too_many_arguments)]
    async fn await_callback(
        &self,
        task: &TaskState,
        guard: TokenGuard,
        mut callbacks: mpsc::UnboundedReceiver<Callback>,
        handoff: tokio::task::JoinHandle<Result<Value, TaskFailure>>,
        timeout: Option<Duration>,
        heartbeat: Option<Duration>,
        timers: &Timers,
    ) -> Result<Value, StatesError> {
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut heartbeat_deadline = heartbeat.map(|d| Instant::now() + d);
        let mut handoff = Some(handoff);
        loop {
            tokio::select! {
                joined = async { handoff.as_mut().expect("guarded by the select condition").await }, if handoff.is_some() => {
                    handoff = None;
                    match joined {
                        Ok(Ok(output)) => self.event(EventDetails::TaskSubmitted { resource: task.resource.clone(), output }),
                        Ok(Err(f)) => return Err(failure(f)),
                        Err(e) => return Err(StatesError::new(crate::error::TASK_FAILED, format!("the task handler stopped unexpectedly: {e}"))),
                    }
                }
                callback = callbacks.recv() => match callback {
                    Some(Callback::Heartbeat) => {
                        debug!(token = %guard.token(), "task heartbeat");
                        heartbeat_deadline = heartbeat.map(|d| Instant::now() + d);
                    }
                    Some(done) => return completed(done),
                    None => return Err(StatesError::runtime("the task token channel closed unexpectedly")),
                },
                _ = sleep_until(deadline) => return expire(&guard, &mut callbacks, timed_out(timers)),
                _ = sleep_until(heartbeat_deadline) => return expire(&guard, &mut callbacks, heartbeat_timed_out(timers)),
            }
        }
    }
}

/// Closes the token on a timer expiry; a completion that won the race still counts.
fn expire(
    guard: &TokenGuard,
    callbacks: &mut mpsc::UnboundedReceiver<Callback>,
    error: StatesError,
) -> Result<Value, StatesError> {
    if guard.close() {
        return Err(error);
    }
    loop {
        match callbacks.try_recv() {
            Ok(Callback::Heartbeat) => continue,
            Ok(done) => return completed(done),
            Err(_) => return Err(error),
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn failure(f: TaskFailure) -> StatesError {
    StatesError::new(f.error, f.cause)
}

fn timed_out(timers: &Timers) -> StatesError {
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
    field: &str,
) -> Result<Option<u64>, StatesError> {
    match seconds {
        None => Ok(None),
        Some(Seconds::Fixed(n)) => Ok(Some(*n)),
        Some(Seconds::Path(path)) => match seconds_at(path, input, field)? {
            0 => Err(StatesError::runtime(format!(
                "{field} {:?} must be a positive integer, got 0",
                path.as_str()
            ))),
            n => Ok(Some(n)),
        },
    }
}
