//! Nested executions through the built-in `arn:aws:states:::states:startExecution` integration:
//! each integration pattern, the result and error shapes AWS documents, and what happens to a
//! `.sync` child when its parent stops waiting.

mod common;

use std::collections::HashMap;

use serde_json::{Value, json};
use wme_asl::{
    Engine, EventDetails, ExecutionDescription, ExecutionEvent, ExecutionStatus, LoadError,
};

use common::*;

const CHILD: &str = "arn:aws:states:local:000000000000:stateMachine:Child";
const START: &str = "arn:aws:states:::states:startExecution";

/// Echoes its input under `got`.
fn echo_child() -> Value {
    json!({"StartAt": "Echo", "States": {
        "Echo": {"Type": "Pass", "Parameters": {"got.$": "$"}, "End": true}}})
}

/// Waits `seconds` before it succeeds.
fn waiting_child(seconds: u64) -> Value {
    json!({"StartAt": "Sleep", "States": {
        "Sleep": {"Type": "Wait", "Seconds": seconds, "End": true}}})
}

fn machine(engine: &Engine, name: &str, definition: &Value) -> String {
    engine
        .create_state_machine(name, &definition.to_string(), &HashMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A parent whose only state `Start` is a startExecution task; `extra` adds fields to it.
fn parent(suffix: &str, parameters: Value, extra: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": format!("{START}{suffix}"),
        "Parameters": parameters,
        "End": true
    });
    let fields = task.as_object_mut().unwrap();
    fields.extend(extra.as_object().unwrap().clone());
    json!({"StartAt": "Start", "States": {"Start": task}})
}

async fn run_parent(engine: &Engine, definition: &Value, input: Value) -> ExecutionDescription {
    let arn = machine(engine, "Parent", definition);
    let execution = engine
        .start_execution(&arn, Some("p"), input)
        .await
        .unwrap();
    engine.wait_for_execution(&execution).await.unwrap()
}

fn only_child(engine: &Engine) -> ExecutionDescription {
    let children = engine.list_executions(CHILD);
    assert_eq!(children.len(), 1, "{children:?}");
    children.into_iter().next().unwrap()
}

/// The event types of a history from the first `Task...` event of the task on.
fn task_events(engine: &Engine, arn: &str) -> Vec<String> {
    engine
        .history(arn)
        .unwrap()
        .iter()
        .map(|e| e.event_type())
        .filter(|t| t.starts_with("Task") && t != "TaskStateEntered" && t != "TaskStateExited")
        .collect()
}

fn submitted_output(engine: &Engine, arn: &str) -> Value {
    let history = engine.history(arn).unwrap();
    let submitted = history.iter().find_map(|e| match &e.details {
        EventDetails::TaskSubmitted { output, .. } => Some(output.to_value()),
        _ => None,
    });
    submitted.expect("a TaskSubmitted event")
}

/// Waits for the Started notifications of `n` executions of the child machine.
async fn children_started(events: &mut tokio::sync::broadcast::Receiver<ExecutionEvent>, n: usize) {
    let mut seen = 0;
    while seen < n {
        if let ExecutionEvent::Started { arn } = events.recv().await.unwrap()
            && arn.contains(":execution:Child:")
        {
            seen += 1;
        }
    }
}

fn aborted_by(parent: &str) -> String {
    format!(
        "The Task state in AWS Step Functions execution [{parent}] which was managing this \
         resource was aborted"
    )
}

#[tokio::test(start_paused = true)]
async fn request_response_returns_the_start_response_and_leaves_the_child_running() {
    let engine = engine();
    machine(&engine, "Child", &waiting_child(100));
    let parameters = json!({"StateMachineArn": CHILD, "Name": "kid-1", "Input": {"n.$": "$.n"}});
    let done = run_parent(&engine, &parent("", parameters, json!({})), json!({"n": 3})).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let output = done.output.unwrap();
    let child = only_child(&engine);
    assert_eq!(child.status, ExecutionStatus::Running);
    assert_eq!(child.input, json!({"n": 3}));
    assert_eq!(
        child.execution_arn,
        "arn:aws:states:local:000000000000:execution:Child:kid-1"
    );
    assert_eq!(output["ExecutionArn"], json!(child.execution_arn));
    assert_eq!(
        output["StartDate"],
        json!(child.start_date.timestamp_millis())
    );
    let metadata = &output["SdkHttpMetadata"];
    assert_eq!(metadata["HttpStatusCode"], 200);
    assert_eq!(
        metadata["HttpHeaders"]["x-amzn-RequestId"],
        output["SdkResponseMetadata"]["RequestId"]
    );
    assert_eq!(
        task_events(&engine, &done.execution_arn),
        ["TaskScheduled", "TaskStarted", "TaskSucceeded"]
    );
    let child = engine
        .wait_for_execution(&child.execution_arn)
        .await
        .unwrap();
    assert_eq!(child.status, ExecutionStatus::Succeeded);
}

#[tokio::test(start_paused = true)]
async fn sync_waits_for_the_child_and_returns_its_output_as_json_text() {
    let engine = engine();
    machine(&engine, "Child", &echo_child());
    let parameters = json!({"StateMachineArn": CHILD, "Input": {"x": 1}});
    let done = run_parent(&engine, &parent(".sync", parameters, json!({})), json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let child = only_child(&engine);
    assert!(uuid::Uuid::parse_str(&child.name).is_ok(), "{}", child.name);
    let expected = json!({
        "ExecutionArn": child.execution_arn,
        "Input": "{\"x\":1}",
        "InputDetails": {"Included": true},
        "Name": child.name,
        "Output": "{\"got\":{\"x\":1}}",
        "OutputDetails": {"Included": true},
        "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE",
        "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
        "StartDate": child.start_date.timestamp_millis(),
        "StateMachineArn": CHILD,
        "Status": "SUCCEEDED",
        "StopDate": child.stop_date.unwrap().timestamp_millis()
    });
    assert_eq!(done.output, Some(expected));
    assert_eq!(
        task_events(&engine, &done.execution_arn),
        [
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded"
        ]
    );
    let submitted = submitted_output(&engine, &done.execution_arn);
    assert_eq!(submitted["ExecutionArn"], json!(child.execution_arn));
}

#[tokio::test(start_paused = true)]
async fn sync2_returns_the_output_as_json_and_accepts_input_as_json_text() {
    let engine = engine();
    machine(&engine, "Child", &echo_child());
    let parameters = json!({"StateMachineArn": CHILD, "Input.$": "States.JsonToString($.payload)"});
    let extra = json!({"ResultSelector": {"got.$": "$.Output.got", "input.$": "$.Input"}});
    let input = json!({"payload": {"x": [1, 2]}});
    let done = run_parent(&engine, &parent(".sync:2", parameters, extra), input).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(
        done.output,
        Some(json!({"got": {"x": [1, 2]}, "input": {"x": [1, 2]}}))
    );
    assert_eq!(only_child(&engine).input, json!({"x": [1, 2]}));
}

#[tokio::test(start_paused = true)]
async fn a_failed_child_fails_the_task_with_states_task_failed_and_its_description() {
    let engine = engine();
    let failing = json!({"StartAt": "Boom", "States": {
        "Boom": {"Type": "Fail", "Error": "Child.Boom", "Cause": "it broke"}}});
    machine(&engine, "Child", &failing);
    let catch = json!({"Catch": [
        {"ErrorEquals": ["Child.Boom"], "Next": "ByName"},
        {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}]});
    let mut definition = parent(".sync:2", json!({"StateMachineArn": CHILD}), catch);
    let states = definition["States"].as_object_mut().unwrap();
    states["Start"].as_object_mut().unwrap().remove("End");
    states["Start"]["Next"] = json!("Caught");
    states.insert(
        "ByName".into(),
        json!({"Type": "Fail", "Error": "WrongCatcher"}),
    );
    states.insert("Caught".into(), json!({"Type": "Pass", "End": true}));
    let done = run_parent(&engine, &definition, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let child = only_child(&engine);
    let expected_cause = format!(
        concat!(
            r#"{{"Cause":"it broke","Error":"Child.Boom","ExecutionArn":"{arn}","Input":"{{}}","#,
            r#""InputDetails":{{"Included":true}},"Name":"{name}","RedriveCount":0,"#,
            r#""RedriveStatus":"REDRIVABLE","StartDate":{start},"StateMachineArn":"{machine}","#,
            r#""Status":"FAILED","StopDate":{stop}}}"#
        ),
        arn = child.execution_arn,
        name = child.name,
        start = child.start_date.timestamp_millis(),
        machine = CHILD,
        stop = child.stop_date.unwrap().timestamp_millis(),
    );
    let error = &done.output.unwrap()["error"];
    assert_eq!(error["Error"], "States.TaskFailed");
    assert_eq!(error["Cause"], json!(expected_cause));
}

#[tokio::test(start_paused = true)]
async fn a_child_that_timed_out_is_reported_without_error_or_cause() {
    let engine = engine();
    let mut slow = waiting_child(100);
    slow["TimeoutSeconds"] = json!(5);
    machine(&engine, "Child", &slow);
    let definition = parent(".sync", json!({"StateMachineArn": CHILD}), json!({}));
    let done = run_parent(&engine, &definition, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.TaskFailed"));
    let cause: Value = serde_json::from_str(done.cause.as_deref().unwrap()).unwrap();
    assert_eq!(cause["Status"], "TIMED_OUT");
    assert!(
        cause.get("Error").is_none() && cause.get("Cause").is_none(),
        "{cause}"
    );
    assert_eq!(only_child(&engine).status, ExecutionStatus::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_state_machine_fails_with_state_machine_does_not_exist() {
    let engine = engine();
    let missing = "arn:aws:states:local:000000000000:stateMachine:Missing";
    let definition = parent(".sync", json!({"StateMachineArn": missing}), json!({}));
    let done = run_parent(&engine, &definition, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(
        done.error.as_deref(),
        Some("StepFunctions.StateMachineDoesNotExistException")
    );
    let cause = done.cause.unwrap();
    let prefix = format!(
        "State Machine Does Not Exist: '{missing}' (Service: AWSStepFunctions; Status Code: 400; \
         Error Code: StateMachineDoesNotExist; Request ID: "
    );
    assert!(
        cause.starts_with(&prefix) && cause.ends_with("; Proxy: null)"),
        "{cause}"
    );
    assert_eq!(
        task_events(&engine, &done.execution_arn),
        ["TaskScheduled", "TaskStarted", "TaskFailed"]
    );
}

#[tokio::test(start_paused = true)]
async fn a_name_already_taken_fails_with_execution_already_exists() {
    let engine = engine();
    machine(&engine, "Child", &echo_child());
    let start = |input: Value, next: Value| {
        let mut task = json!({"Type": "Task", "Resource": START, "Parameters":
            {"StateMachineArn": CHILD, "Name": "once", "Input": input}});
        task.as_object_mut()
            .unwrap()
            .extend(next.as_object().unwrap().clone());
        task
    };
    let definition = json!({"StartAt": "First", "States": {
        "First": start(json!({"a": 1}), json!({"Next": "Second"})),
        "Second": start(json!({"b": 2}), json!({"End": true}))}});
    let done = run_parent(&engine, &definition, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(
        done.error.as_deref(),
        Some("StepFunctions.ExecutionAlreadyExistsException")
    );
    let arn = "arn:aws:states:local:000000000000:execution:Child:once";
    let cause = done.cause.unwrap();
    assert!(
        cause.starts_with(&format!("Execution Already Exists: '{arn}' (Service:")),
        "{cause}"
    );
    assert_eq!(only_child(&engine).input, json!({"a": 1}));
}

#[tokio::test(start_paused = true)]
async fn wait_for_task_token_completes_the_parent_with_the_childs_callback() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let child = json!({"StartAt": "Ask", "States": {"Ask": {
        "Type": "Task", "Resource": CALLBACK,
        "Parameters": {"parentToken.$": "$.token"}, "End": true}}});
    machine(&engine, "Child", &child);
    let parameters = json!({"StateMachineArn": CHILD, "Input": {"token.$": "$$.Task.Token"}});
    let definition = parent(
        ".waitForTaskToken",
        parameters,
        json!({"ResultPath": "$.reply"}),
    );
    let arn = machine(&engine, "Parent", &definition);
    let execution = engine
        .start_execution(&arn, Some("p"), json!({"keep": true}))
        .await
        .unwrap();

    let call = calls.recv().await.unwrap();
    let token = call.parameters["parentToken"].as_str().unwrap().to_string();
    engine
        .send_task_success(&token, json!({"done": true}))
        .unwrap();
    let done = engine.wait_for_execution(&execution).await.unwrap();

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(
        done.output,
        Some(json!({"keep": true, "reply": {"done": true}}))
    );
    let child = only_child(&engine);
    assert_eq!(child.input, json!({"token": token}));
    assert_eq!(
        submitted_output(&engine, &execution)["ExecutionArn"],
        json!(child.execution_arn)
    );
    assert_eq!(
        task_events(&engine, &execution),
        [
            "TaskScheduled",
            "TaskStarted",
            "TaskSubmitted",
            "TaskSucceeded"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_callback_child_that_stays_silent_times_the_parent_out_and_keeps_running() {
    let engine = engine();
    machine(&engine, "Child", &waiting_child(1000));
    let parameters = json!({"StateMachineArn": CHILD, "Input": {"token.$": "$$.Task.Token"}});
    let timers = json!({"HeartbeatSeconds": 10, "TimeoutSeconds": 100});
    let definition = parent(".waitForTaskToken", parameters, timers);
    let done = run_parent(&engine, &definition, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.HeartbeatTimeout"));
    let ran = done.stop_date.unwrap() - done.start_date;
    assert_eq!(ran.num_seconds(), 10);
    tokio::task::yield_now().await;
    assert_eq!(
        only_child(&engine).status,
        ExecutionStatus::Running,
        "only a .sync child is stopped with its parent"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_timeout_stops_the_sync_child_and_fails_with_states_timeout() {
    let engine = engine();
    machine(&engine, "Child", &waiting_child(100));
    let catch = json!({"TimeoutSeconds": 10, "Catch": [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "TimedOut"}]});
    let mut definition = parent(".sync", json!({"StateMachineArn": CHILD}), catch);
    let states = definition["States"].as_object_mut().unwrap();
    states["Start"].as_object_mut().unwrap().remove("End");
    states["Start"]["Next"] = json!("TimedOut");
    states.insert("TimedOut".into(), json!({"Type": "Pass", "End": true}));
    let done = run_parent(&engine, &definition, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap()["error"]["Error"], "States.Timeout");
    assert_eq!(
        (done.stop_date.unwrap() - done.start_date).num_seconds(),
        10
    );
    assert!(task_events(&engine, &done.execution_arn).contains(&"TaskTimedOut".to_string()));
    let child = only_child(&engine).execution_arn;
    let child = engine.wait_for_execution(&child).await.unwrap();
    assert_eq!(child.status, ExecutionStatus::Aborted);
    assert_eq!(child.error, None);
    assert_eq!(child.cause, Some(aborted_by(&done.execution_arn)));
    assert_eq!(
        (child.stop_date.unwrap() - child.start_date).num_seconds(),
        10
    );
}

#[tokio::test(start_paused = true)]
async fn stopping_the_parent_stops_its_sync_child_but_not_a_started_one() {
    let engine = engine();
    machine(&engine, "Child", &waiting_child(100));
    let branch = |suffix: &str, name: &str| {
        json!({"StartAt": name, "States": {name: {"Type": "Task",
            "Resource": format!("{START}{suffix}"),
            "Parameters": {"StateMachineArn": CHILD, "Name": name}, "End": true}}})
    };
    let definition = json!({"StartAt": "Both", "States": {"Both": {"Type": "Parallel",
        "Branches": [branch(".sync", "waited"), branch("", "started")], "End": true}}});
    let mut events = engine.subscribe();
    let arn = machine(&engine, "Parent", &definition);
    let parent = engine
        .start_execution(&arn, Some("p"), json!({}))
        .await
        .unwrap();
    children_started(&mut events, 2).await;

    engine
        .stop_execution(&parent, "Operator.Stop", "no longer needed")
        .unwrap();

    let waited = "arn:aws:states:local:000000000000:execution:Child:waited";
    let waited = engine.wait_for_execution(waited).await.unwrap();
    assert_eq!(waited.status, ExecutionStatus::Aborted);
    assert_eq!(waited.cause, Some(aborted_by(&parent)));
    let started = "arn:aws:states:local:000000000000:execution:Child:started";
    let started = engine.wait_for_execution(started).await.unwrap();
    assert_eq!(started.status, ExecutionStatus::Succeeded);
    let stopped = engine.describe_execution(&parent).unwrap();
    assert_eq!(stopped.status, ExecutionStatus::Aborted);
    assert_eq!(stopped.error.as_deref(), Some("Operator.Stop"));
}

#[tokio::test(start_paused = true)]
async fn the_started_by_field_reaches_the_child_unchanged() {
    let engine = engine();
    machine(&engine, "Child", &echo_child());
    let input = json!({"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"});
    let parameters = json!({"StateMachineArn": CHILD, "Input": input});
    let done = run_parent(
        &engine,
        &parent(".sync:2", parameters, json!({})),
        json!({}),
    )
    .await;

    let output = done.output.unwrap();
    let link = json!({"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": done.execution_arn});
    assert_eq!(output["Input"], link);
    assert_eq!(output["Output"]["got"], link);
}

#[test]
fn start_execution_needs_no_handler_but_its_parameters_are_checked() {
    let engine = engine();
    let load = |parameters: Value| {
        let definition = parent(".sync", parameters, json!({}));
        engine.create_state_machine("Parent", &definition.to_string(), &HashMap::new())
    };
    assert!(load(json!({"StateMachineArn.$": "$.machine"})).is_ok());

    let Err(LoadError::Invalid(errors)) = load(json!({"Input": {}, "Bogus": 1})) else {
        panic!("an unsupported field and a missing StateMachineArn are refused");
    };
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "/States/Start/Parameters/Bogus: the field \"Bogus\" is not supported by \
             arn:aws:states:::states:startExecution; use StateMachineArn, Input or Name",
            "/States/Start/Parameters: the field \"StateMachineArn\" is required but was missing",
        ]
    );
}
