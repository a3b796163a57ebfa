//! Nested executions: the Step Functions integration with itself. A Task whose resource is
//! `arn:aws:states:::states:startExecution` starts an execution of another state machine of this
//! engine and, by integration pattern, returns at once (request-response), waits for it to end
//! (`.sync`, `.sync:2`) or waits for a callback with the token it passed on (`.waitForTaskToken`).
//!
//! Results and errors take AWS's shapes: the StartExecution response for a start; the
//! DescribeExecution fields for `.sync` (`Input` and `Output` as JSON text, parsed by `.sync:2`);
//! `States.TaskFailed` with the child's description as cause when it does not succeed; and
//! `StepFunctions.<Code>Exception` when the start is refused.
//!
//! The child's ARN is committed in the parent's checkpoint before the child starts, so a resumed
//! parent finds that child (which resumes like any execution) instead of starting another. A
//! `.sync` child still running when its parent stops waiting for it (the parent was stopped,
//! failed elsewhere or timed out) is stopped, as AWS stops it.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tracing::{debug, info};

use super::checkpoint::{ChildProgress, Cursor};
use super::history::{self, EventDetails, Payload};
use super::interpreter::Execution;
use super::task::{Timers, TokenSession, timed_out};
use super::{
    Engine, ExecutionDescription, ExecutionStatus, Inner, StartError, lock, read,
    valid_execution_name,
};
use crate::definition::split_resource;
use crate::definition::{IntegrationPattern, StateMachine, TaskState, ValidationError};
use crate::error::{StatesError, TASK_FAILED};
use crate::template::child;

/// The resource of the integration, without integration-pattern suffix.
pub(crate) const START_EXECUTION: &str = "arn:aws:states:::states:startExecution";

/// The StartExecution parameters the integration passes on; AWS refuses any other at creation.
const PARAMETERS: [&str; 3] = ["Input", "Name", "StateMachineArn"];

/// Whether the engine runs this resource itself, with no handler registered.
pub(crate) fn is_builtin(base_resource: &str) -> bool {
    base_resource == START_EXECUTION
}

/// Adds the checks AWS makes at creation on the `Parameters` of every startExecution task to
/// the outcome of parsing, so that every problem is reported at once.
pub(crate) fn check_parameters(
    definition: &Value,
    parsed: Result<StateMachine, Vec<ValidationError>>,
) -> Result<StateMachine, Vec<ValidationError>> {
    let mut errors = Vec::new();
    check_block(definition, "", &mut errors);
    match parsed {
        Ok(machine) if errors.is_empty() => Ok(machine),
        Ok(_) => Err(errors),
        Err(mut parse_errors) => {
            parse_errors.extend(errors);
            Err(parse_errors)
        }
    }
}

fn check_block(block: &Value, pointer: &str, errors: &mut Vec<ValidationError>) {
    let Some(states) = block.get("States").and_then(Value::as_object) else {
        return;
    };
    let pointer = child(pointer, "States");
    for (name, state) in states {
        check_state(state, &child(&pointer, name), errors);
    }
}

fn check_state(state: &Value, at: &str, errors: &mut Vec<ValidationError>) {
    if let Some(branches) = state.get("Branches").and_then(Value::as_array) {
        let branches_at = child(at, "Branches");
        for (i, branch) in branches.iter().enumerate() {
            check_block(branch, &child(&branches_at, &i.to_string()), errors);
        }
    }
    for field in ["ItemProcessor", "Iterator"] {
        if let Some(processor) = state.get(field) {
            check_block(processor, &child(at, field), errors);
        }
    }
    let is_task = state.get("Type").and_then(Value::as_str) == Some("Task");
    let resource = state.get("Resource").and_then(Value::as_str);
    if is_task && resource.is_some_and(|r| is_builtin(split_resource(r).0)) {
        check_task(state, at, errors);
    }
}

fn check_task(state: &Value, at: &str, errors: &mut Vec<ValidationError>) {
    let error = |pointer: String, message: String| ValidationError { pointer, message };
    let parameters = match state.get("Parameters") {
        None => {
            let message = format!(
                "{START_EXECUTION} needs Parameters with the field \"StateMachineArn\" to know \
                 which state machine to start"
            );
            errors.push(error(at.to_string(), message));
            return;
        }
        Some(Value::Object(parameters)) => parameters,
        // Not an object: the parser reports it.
        Some(_) => return,
    };
    let at = child(at, "Parameters");
    for key in parameters.keys() {
        let field = key.strip_suffix(".$").unwrap_or(key);
        if !PARAMETERS.contains(&field) {
            let message = format!(
                "the field {field:?} is not supported by {START_EXECUTION}; use \
                 StateMachineArn, Input or Name"
            );
            errors.push(error(child(&at, key), message));
        }
    }
    let has_arn = ["StateMachineArn", "StateMachineArn.$"]
        .iter()
        .any(|k| parameters.contains_key(*k));
    if !has_arn {
        let message = "the field \"StateMachineArn\" is required but was missing".to_string();
        errors.push(error(at, message));
    }
}

/// The StartExecution call of one attempt, read from its effective Parameters.
#[derive(Debug, Clone, PartialEq)]
struct Request {
    machine_arn: String,
    name: Option<String>,
    input: Value,
}

impl Request {
    fn parse(parameters: &Value) -> Result<Request, StatesError> {
        let machine_arn = match parameters.get("StateMachineArn") {
            Some(Value::String(arn)) => arn.clone(),
            Some(other) => return Err(refused("InvalidArn", format!("Invalid Arn: '{other}'"))),
            None => return Err(refused("InvalidArn", "Invalid Arn: 'null'".to_string())),
        };
        let name = match parameters.get("Name") {
            None | Some(Value::Null) => None,
            Some(Value::String(name)) => Some(name.clone()),
            Some(other) => return Err(start_refused(StartError::InvalidName(other.to_string()))),
        };
        let input = match parameters.get("Input") {
            // AWS passes `{}` when no input is given, as StartExecution requires.
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) => serde_json::from_str(text).map_err(|e| {
                start_refused(StartError::InvalidInput(format!(
                    "{text:?} is not JSON: {e}"
                )))
            })?,
            Some(other) => other.clone(),
        };
        Ok(Request {
            machine_arn,
            name,
            input,
        })
    }
}

/// A refused StartExecution call, named and worded as the AWS SDK reports it to a Task.
fn refused(code: &str, message: String) -> StatesError {
    let request_id = uuid::Uuid::new_v4();
    StatesError::new(
        format!("StepFunctions.{code}Exception"),
        format!(
            "{message} (Service: AWSStepFunctions; Status Code: 400; Error Code: {code}; \
             Request ID: {request_id}; Proxy: null)"
        ),
    )
}

fn start_refused(error: StartError) -> StatesError {
    match error {
        StartError::StateMachineDoesNotExist(arn) => refused(
            "StateMachineDoesNotExist",
            format!("State Machine Does Not Exist: '{arn}'"),
        ),
        StartError::ExecutionAlreadyExists(arn) => refused(
            "ExecutionAlreadyExists",
            format!("Execution Already Exists: '{arn}'"),
        ),
        StartError::InvalidName(name) => refused("InvalidName", format!("Invalid Name: '{name}'")),
        StartError::InvalidInput(reason) => refused(
            "InvalidExecutionInput",
            format!("Invalid State Machine Execution Input: '{reason}'"),
        ),
    }
}

impl Execution {
    fn engine(&self) -> Engine {
        Engine {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Runs one attempt of a startExecution task; `parameters` are its effective Parameters.
    pub(crate) async fn start_execution_task(
        &self,
        task: &TaskState,
        parameters: Value,
        token: Option<&mut TokenSession>,
        timers: &Timers,
        cursor: &Cursor,
    ) -> Result<Value, StatesError> {
        let resumed = token.as_ref().is_some_and(|t| t.resumed) || cursor.resumed_child().is_some();
        let started = EventDetails::TaskStarted {
            resource: task.resource.clone(),
        };
        // A full history has ended the execution: no child may start any more.
        if !resumed && !self.event(started) {
            return Err(history::limit_error());
        }
        let request = Request::parse(&parameters)?;
        match (task.pattern, token) {
            (IntegrationPattern::WaitForTaskToken, Some(session)) => {
                self.start_for_callback(task, &request, session, timers, cursor)
                    .await
            }
            (IntegrationPattern::Sync, _) => {
                self.start_and_wait(task, &request, timers, cursor).await
            }
            _ => Ok(start_response(&self.start_child(&request, cursor).await?.0)),
        }
    }

    /// `.waitForTaskToken`: starting the child is the hand-off; the callback ends the task.
    async fn start_for_callback(
        &self,
        task: &TaskState,
        request: &Request,
        session: &mut TokenSession,
        timers: &Timers,
        cursor: &Cursor,
    ) -> Result<Value, StatesError> {
        if !session.submitted {
            let (started, _) = self.start_child(request, cursor).await?;
            self.submitted(task, start_response(&started), cursor);
        }
        self.await_callback(task, session, None, timers, cursor)
            .await
    }

    /// `.sync` and `.sync:2`: waits for the child to end, under the task's TimeoutSeconds.
    async fn start_and_wait(
        &self,
        task: &TaskState,
        request: &Request,
        timers: &Timers,
        cursor: &Cursor,
    ) -> Result<Value, StatesError> {
        let (started, progress) = self.start_child(request, cursor).await?;
        if !progress.submitted {
            self.child_submitted(task, start_response(&started), cursor)?;
        }
        let child = started.execution_arn;
        let _guard = ChildGuard {
            inner: Arc::clone(&self.inner),
            child: child.clone(),
            parent: self.arn.to_string(),
        };
        let done = self.wait_child(&child, &progress, timers).await?;
        debug!(child = %child, status = %done.status, "nested execution ended");
        sync_result(&done, task.resource.ends_with(":2"))
    }

    async fn wait_child(
        &self,
        child: &str,
        progress: &ChildProgress,
        timers: &Timers,
    ) -> Result<ExecutionDescription, StatesError> {
        let engine = self.engine();
        let ended = engine.wait_for_execution(child);
        let done = match timers.timeout {
            Some(seconds) => {
                // Counted from the attempt's start, so a resumed parent keeps its deadline.
                let deadline = self.inner.clock.deadline(progress.started, seconds as f64);
                tokio::time::timeout(self.inner.clock.until(deadline), ended)
                    .await
                    .map_err(|_| timed_out(timers))?
            }
            None => ended.await,
        };
        done.ok_or_else(|| StatesError::runtime(format!("the started execution {child} is gone")))
    }

    /// Records `TaskSubmitted` with the checkpoint that says so.
    fn child_submitted(
        &self,
        task: &TaskState,
        output: Value,
        cursor: &Cursor,
    ) -> Result<(), StatesError> {
        cursor.mark_child_submitted();
        let details = EventDetails::TaskSubmitted {
            resource: task.resource.clone(),
            output: Payload::new(&output),
        };
        let op = self.position_op(cursor, None);
        if self
            .handle
            .record_with(self.inner.store.as_ref(), self.now(), details, op)
        {
            Ok(())
        } else {
            Err(self.history_full())
        }
    }

    /// Starts this attempt's child, or finds the one a resumed attempt started before the
    /// restart; returns its description and the checkpointed progress.
    async fn start_child(
        &self,
        request: &Request,
        cursor: &Cursor,
    ) -> Result<(ExecutionDescription, ChildProgress), StatesError> {
        let engine = self.engine();
        let progress = match cursor.resumed_child() {
            Some(progress) => match engine.describe_execution(&progress.execution_arn) {
                Some(found) => return Ok((found, progress)),
                // The restart came between the checkpoint and the start.
                None => progress,
            },
            None => self.name_child(request, cursor).await?,
        };
        let name = progress
            .execution_arn
            .rsplit(':')
            .next()
            .unwrap_or_default();
        let input = request.input.clone();
        let arn = engine
            .start_execution(&request.machine_arn, Some(name), input)
            .await
            .map_err(start_refused)?;
        info!(execution = %self.arn, child = %arn, "nested execution started");
        let started = engine
            .describe_execution(&arn)
            .ok_or_else(|| StatesError::runtime(format!("the started execution {arn} is gone")))?;
        Ok((started, progress))
    }

    /// Chooses the child's ARN and commits it before the child exists. A name already taken is
    /// refused first, as StartExecution refuses it, unless that execution is running with the
    /// same input (StartExecution then returns it).
    async fn name_child(
        &self,
        request: &Request,
        cursor: &Cursor,
    ) -> Result<ChildProgress, StatesError> {
        let machine = self.child_machine(&request.machine_arn)?;
        let name = match &request.name {
            Some(name) if !valid_execution_name(name) => {
                return Err(start_refused(StartError::InvalidName(name.clone())));
            }
            Some(name) => name.clone(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let arn = self.inner.execution_arn(&machine, &name);
        if let Some(existing) = self.engine().describe_execution(&arn) {
            let same =
                existing.status == ExecutionStatus::Running && existing.input == request.input;
            if !same {
                return Err(start_refused(StartError::ExecutionAlreadyExists(arn)));
            }
        }
        let progress = ChildProgress {
            execution_arn: arn,
            started: self.now(),
            submitted: false,
        };
        cursor.set_child(Some(progress.clone()));
        self.save(cursor, None).await;
        Ok(progress)
    }

    /// The name of the state machine to start.
    fn child_machine(&self, arn: &str) -> Result<String, StatesError> {
        if let Some(machine) = read(&self.inner.machines).get(arn) {
            return Ok(machine.name.clone());
        }
        let well_formed = arn.starts_with("arn:aws:states:") && arn.contains(":stateMachine:");
        if well_formed {
            Err(start_refused(StartError::StateMachineDoesNotExist(
                arn.to_string(),
            )))
        } else {
            Err(refused("InvalidArn", format!("Invalid Arn: '{arn}'")))
        }
    }
}

/// Stops a `.sync` child that still runs when the parent stops waiting for it. Nothing is
/// stopped while the runtime shuts down (the process is stopping, not the parent): both
/// executions then resume after a restart.
struct ChildGuard {
    inner: Arc<Inner>,
    child: String,
    parent: String,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let running = lock(&self.inner.executions)
            .get(self.child.as_str())
            .is_some_and(|h| h.lock().description.status == ExecutionStatus::Running);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !running {
            return;
        }
        let engine = Engine {
            inner: Arc::clone(&self.inner),
        };
        let (child, parent) = (self.child.clone(), self.parent.clone());
        // A task spawned into a runtime that is shutting down is dropped unpolled.
        runtime.spawn(async move {
            info!(execution = %child, parent = %parent, "stopping a nested execution its parent left");
            let cause = format!(
                "The Task state in AWS Step Functions execution [{parent}] which was managing \
                 this resource was aborted"
            );
            let _ = engine.stop_execution(&child, "", &cause);
        });
    }
}

/// The StartExecution response as the integration returns it: the API's two fields with the
/// SDK's HTTP metadata (header values are this engine's own).
fn start_response(started: &ExecutionDescription) -> Value {
    let request_id = uuid::Uuid::new_v4().to_string();
    let start_date = started.start_date.timestamp_millis();
    let body = json!({
        "executionArn": started.execution_arn,
        "startDate": start_date as f64 / 1000.0,
    });
    let headers = [
        ("Content-Length", body.to_string().len().to_string()),
        ("Content-Type", "application/x-amz-json-1.0".to_string()),
        (
            "Date",
            started
                .start_date
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string(),
        ),
        ("connection", "keep-alive".to_string()),
        ("x-amzn-RequestId", request_id.clone()),
    ];
    let all: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!([v])))
        .collect();
    let single: Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "ExecutionArn": started.execution_arn,
        "SdkHttpMetadata": {"AllHttpHeaders": all, "HttpHeaders": single, "HttpStatusCode": 200},
        "SdkResponseMetadata": {"RequestId": request_id},
        "StartDate": start_date,
    })
}

/// A `.sync` task's result: the child's description if it succeeded, else `States.TaskFailed`
/// with that description (input as JSON text, whatever the pattern) as the cause.
fn sync_result(child: &ExecutionDescription, parsed: bool) -> Result<Value, StatesError> {
    if child.status == ExecutionStatus::Succeeded {
        return Ok(describe(child, parsed));
    }
    Err(StatesError::new(
        TASK_FAILED,
        describe(child, false).to_string(),
    ))
}

/// An ended execution as DescribeExecution shows it to a `.sync` task: field names in
/// PascalCase and in alphabetical order, dates in epoch milliseconds. A timed-out execution
/// shows no Error or Cause.
fn describe(d: &ExecutionDescription, parsed: bool) -> Value {
    let data = |v: &Value| {
        if parsed {
            v.clone()
        } else {
            Value::String(v.to_string())
        }
    };
    let mut out = Map::new();
    if d.status != ExecutionStatus::TimedOut {
        if let Some(cause) = &d.cause {
            out.insert("Cause".into(), json!(cause));
        }
        if let Some(error) = &d.error {
            out.insert("Error".into(), json!(error));
        }
    }
    out.insert("ExecutionArn".into(), json!(d.execution_arn));
    out.insert("Input".into(), data(&d.input));
    out.insert("InputDetails".into(), json!({"Included": true}));
    out.insert("Name".into(), json!(d.name));
    if let Some(output) = &d.output {
        out.insert("Output".into(), data(output));
        out.insert("OutputDetails".into(), json!({"Included": true}));
    }
    out.insert("RedriveCount".into(), json!(0));
    if d.status == ExecutionStatus::Succeeded {
        out.insert("RedriveStatus".into(), json!("NOT_REDRIVABLE"));
        let reason = "Execution is SUCCEEDED and cannot be redriven";
        out.insert("RedriveStatusReason".into(), json!(reason));
    } else {
        out.insert("RedriveStatus".into(), json!("REDRIVABLE"));
    }
    out.insert("StartDate".into(), json!(d.start_date.timestamp_millis()));
    out.insert("StateMachineArn".into(), json!(d.state_machine_arn));
    out.insert("Status".into(), json!(d.status.as_str()));
    if let Some(stop) = d.stop_date {
        out.insert("StopDate".into(), json!(stop.timestamp_millis()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn ended(
        status: ExecutionStatus,
        error: Option<&str>,
        cause: Option<&str>,
    ) -> ExecutionDescription {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        ExecutionDescription {
            execution_arn: "arn:aws:states:local:000000000000:execution:Child:run-1".into(),
            state_machine_arn: "arn:aws:states:local:000000000000:stateMachine:Child".into(),
            name: "run-1".into(),
            status,
            input: json!({"k": 1}),
            output: (status == ExecutionStatus::Succeeded).then(|| json!({"ok": true})),
            error: error.map(str::to_string),
            cause: cause.map(str::to_string),
            start_date: at("2026-09-29T10:00:00.025Z"),
            stop_date: Some(at("2026-09-29T10:00:00.071Z")),
        }
    }

    #[test]
    fn a_failed_child_is_the_cause_of_states_task_failed_in_aws_field_order() {
        let child = ended(ExecutionStatus::Failed, Some("Boom"), Some("custom cause"));
        let error = sync_result(&child, true).unwrap_err();
        assert_eq!(error.error, "States.TaskFailed");
        let expected = concat!(
            r#"{"Cause":"custom cause","Error":"Boom","#,
            r#""ExecutionArn":"arn:aws:states:local:000000000000:execution:Child:run-1","#,
            r#""Input":"{\"k\":1}","InputDetails":{"Included":true},"Name":"run-1","#,
            r#""RedriveCount":0,"RedriveStatus":"REDRIVABLE","StartDate":1790676000025,"#,
            r#""StateMachineArn":"arn:aws:states:local:000000000000:stateMachine:Child","#,
            r#""Status":"FAILED","StopDate":1790676000071}"#
        );
        assert_eq!(error.cause, expected);
    }

    #[test]
    fn a_timed_out_child_shows_neither_error_nor_cause() {
        let child = ended(
            ExecutionStatus::TimedOut,
            Some("States.Timeout"),
            Some("late"),
        );
        let cause: Value =
            serde_json::from_str(&sync_result(&child, false).unwrap_err().cause).unwrap();
        assert_eq!(cause["Status"], "TIMED_OUT");
        assert!(
            cause.get("Error").is_none() && cause.get("Cause").is_none(),
            "{cause}"
        );
    }

    #[test]
    fn sync_gives_input_and_output_as_text_and_sync2_as_json() {
        let child = ended(ExecutionStatus::Succeeded, None, None);
        let text = sync_result(&child, false).unwrap();
        assert_eq!(text["Output"], json!(r#"{"ok":true}"#));
        assert_eq!(text["Input"], json!(r#"{"k":1}"#));
        assert_eq!(text["RedriveStatus"], "NOT_REDRIVABLE");
        let parsed = sync_result(&child, true).unwrap();
        assert_eq!(parsed["Output"], json!({"ok": true}));
        assert_eq!(parsed["Input"], json!({"k": 1}));
        assert_eq!(parsed["OutputDetails"], json!({"Included": true}));
    }

    #[test]
    fn input_may_be_json_text_an_object_or_absent() {
        let arn = "arn:aws:states:local:000000000000:stateMachine:Child";
        let text = Request::parse(&json!({"StateMachineArn": arn, "Input": "{\"a\":1}"})).unwrap();
        assert_eq!(text.input, json!({"a": 1}));
        let object = Request::parse(&json!({"StateMachineArn": arn, "Input": [1]})).unwrap();
        assert_eq!(object.input, json!([1]));
        let absent = Request::parse(&json!({"StateMachineArn": arn})).unwrap();
        assert_eq!(absent.input, json!({}));
        let bad = Request::parse(&json!({"StateMachineArn": arn, "Input": "nope"})).unwrap_err();
        assert_eq!(bad.error, "StepFunctions.InvalidExecutionInputException");
        assert!(bad.cause.contains("\"nope\" is not JSON"), "{}", bad.cause);
        let no_arn = Request::parse(&json!({"StateMachineArn": 7})).unwrap_err();
        assert_eq!(no_arn.error, "StepFunctions.InvalidArnException");
        assert!(
            no_arn
                .cause
                .starts_with("Invalid Arn: '7' (Service: AWSStepFunctions;")
        );
    }

    #[test]
    fn parameters_are_checked_at_creation_wherever_the_task_is() {
        let definition = json!({"StartAt": "P", "States": {"P": {
            "Type": "Parallel", "End": true,
            "Branches": [{"StartAt": "S", "States": {"S": {
                "Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync",
                "Parameters": {"Input": {}, "Bogus.$": "$"}, "End": true}}}]}}});
        let errors = check_parameters(&definition, Err(Vec::new())).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "/States/P/Branches/0/States/S/Parameters/Bogus.$: the field \"Bogus\" is not \
                 supported by arn:aws:states:::states:startExecution; use StateMachineArn, Input \
                 or Name",
                "/States/P/Branches/0/States/S/Parameters: the field \"StateMachineArn\" is \
                 required but was missing",
            ]
        );
    }

    #[test]
    fn start_refusals_carry_aws_error_names() {
        let arn = "arn:aws:states:local:000000000000:stateMachine:Nope".to_string();
        let error = start_refused(StartError::StateMachineDoesNotExist(arn));
        assert_eq!(
            error.error,
            "StepFunctions.StateMachineDoesNotExistException"
        );
        assert!(error.cause.starts_with(
            "State Machine Does Not Exist: 'arn:aws:states:local:000000000000:stateMachine:Nope' \
             (Service: AWSStepFunctions; Status Code: 400; Error Code: StateMachineDoesNotExist;"
        ));
    }
}
