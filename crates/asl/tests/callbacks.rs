//! `.waitForTaskToken` tasks: callbacks, heartbeats, timeouts and token rules.

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::sleep;
use wme_asl::{CallbackError, ExecutionStatus};

use common::*;

fn callback_machine(extra: Value) -> Value {
    let mut task = json!({
        "Type": "Task",
        "Resource": format!("{CALLBACK}.waitForTaskToken"),
        "Parameters": {"token.$": "$$.Task.Token", "device.$": "$.device"},
        "End": true
    });
    task.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"StartAt": "Wait", "States": {"Wait": task}})
}

#[tokio::test(start_paused = true)]
async fn callback_success_becomes_the_task_output() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let arn = create(&engine, &callback_machine(json!({"ResultPath": "$.reply"})));
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1"}))
        .await
        .unwrap();

    let call = calls.recv().await.unwrap();
    let token = call.task_token.clone().unwrap();
    assert_eq!(call.parameters, json!({"token": token, "device": "d1"}));
    assert_eq!(call.state_name, "Wait");
    assert_eq!(call.execution_arn, exec);
    engine
        .send_task_success(&token, json!({"ok": true}))
        .unwrap();

    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(
        done.output,
        Some(json!({"device": "d1", "reply": {"ok": true}}))
    );
}

#[tokio::test(start_paused = true)]
async fn callback_failure_fails_the_execution_with_that_error() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let arn = create(&engine, &callback_machine(json!({})));
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1"}))
        .await
        .unwrap();
    let token = calls.recv().await.unwrap().task_token.unwrap();
    engine
        .send_task_failure(&token, "Device.Rejected", "busy")
        .unwrap();

    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Device.Rejected"));
    assert_eq!(done.cause.as_deref(), Some("busy"));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_the_task_alive_past_heartbeat_seconds() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let machine = callback_machine(json!({"HeartbeatSeconds": 10, "TimeoutSeconds": 100}));
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1"}))
        .await
        .unwrap();
    let token = calls.recv().await.unwrap().task_token.unwrap();

    for _ in 0..5 {
        sleep(Duration::from_secs(8)).await;
        engine.send_task_heartbeat(&token).unwrap();
    }
    engine.send_task_success(&token, json!("done")).unwrap();

    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output, Some(json!("done")));
}

#[tokio::test(start_paused = true)]
async fn missing_heartbeat_fails_with_heartbeat_timeout_and_late_callbacks_are_refused() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let machine = callback_machine(json!({"HeartbeatSeconds": 10}));
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1"}))
        .await
        .unwrap();
    let token = calls.recv().await.unwrap().task_token.unwrap();

    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.HeartbeatTimeout"));
    let elapsed = done.stop_date.unwrap() - done.start_date;
    assert_eq!(elapsed.num_seconds(), 10);

    let late = engine.send_task_success(&token, json!({})).unwrap_err();
    assert!(matches!(late, CallbackError::TaskTimedOut(_)), "{late:?}");
    let late = engine.send_task_heartbeat(&token).unwrap_err();
    assert!(matches!(late, CallbackError::TaskTimedOut(_)), "{late:?}");
}

#[tokio::test(start_paused = true)]
async fn timeout_seconds_fails_with_states_timeout() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let arn = create(
        &engine,
        &callback_machine(json!({"TimeoutSecondsPath": "$.timeout"})),
    );
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1", "timeout": 30}))
        .await
        .unwrap();
    let token = calls.recv().await.unwrap().task_token.unwrap();
    engine.send_task_heartbeat(&token).unwrap();

    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    assert_eq!(
        (done.stop_date.unwrap() - done.start_date).num_seconds(),
        30
    );
    let late = engine.send_task_failure(&token, "X", "y").unwrap_err();
    assert!(matches!(late, CallbackError::TaskTimedOut(_)));
}

#[tokio::test(start_paused = true)]
async fn a_token_completes_only_once() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let arn = create(&engine, &callback_machine(json!({})));
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1"}))
        .await
        .unwrap();
    let token = calls.recv().await.unwrap().task_token.unwrap();

    engine.send_task_success(&token, json!(1)).unwrap();
    let second = engine.send_task_success(&token, json!(2)).unwrap_err();
    assert!(matches!(second, CallbackError::TaskTimedOut(_)));
    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.output, Some(json!(1)));
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_rejected() {
    let engine = engine();
    let err = engine.send_task_success("garbage", json!({})).unwrap_err();
    assert!(matches!(&err, CallbackError::InvalidToken(m) if m.starts_with("invalid token: ")));
    let err = engine.send_task_heartbeat(&"a".repeat(64)).unwrap_err();
    assert!(matches!(err, CallbackError::TaskDoesNotExist(_)));
}

#[tokio::test(start_paused = true)]
async fn handler_error_on_handoff_fails_the_task() {
    let engine = engine();
    engine.register(
        SCRIPT,
        Script::new(vec![fail("Mqtt.PublishFailed", "broker down")]),
    );
    let machine = json!({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": format!("{SCRIPT}.waitForTaskToken"), "End": true
    }}});
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(done.error.as_deref(), Some("Mqtt.PublishFailed"));
    assert_eq!(done.cause.as_deref(), Some("broker down"));
}

#[tokio::test(start_paused = true)]
async fn each_retry_attempt_gets_a_new_token() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let machine = callback_machine(json!({
        "Retry": [{"ErrorEquals": ["Device.Busy"], "IntervalSeconds": 1}]
    }));
    let arn = create(&engine, &machine);
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1"}))
        .await
        .unwrap();
    let first = calls.recv().await.unwrap().task_token.unwrap();
    engine.send_task_failure(&first, "Device.Busy", "").unwrap();
    let second = calls.recv().await.unwrap().task_token.unwrap();
    assert_ne!(first, second);
    assert!(matches!(
        engine.send_task_success(&first, json!(0)),
        Err(CallbackError::TaskTimedOut(_))
    ));
    engine.send_task_success(&second, json!("ok")).unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.output, Some(json!("ok")));
}

#[tokio::test(start_paused = true)]
async fn stopping_an_execution_makes_its_tokens_late() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let arn = create(&engine, &callback_machine(json!({})));
    let exec = engine
        .start_execution(&arn, None, json!({"device": "d1"}))
        .await
        .unwrap();
    let token = calls.recv().await.unwrap().task_token.unwrap();
    engine
        .stop_execution(&exec, "User.Cancelled", "operator")
        .unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Aborted);
    assert_eq!(done.error.as_deref(), Some("User.Cancelled"));
    let late = engine.send_task_success(&token, json!(1)).unwrap_err();
    assert!(matches!(late, CallbackError::TaskTimedOut(_)), "{late:?}");
}
