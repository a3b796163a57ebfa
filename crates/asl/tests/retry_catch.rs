//! Retry (counts, backoff timing, MaxAttempts 0, MaxDelaySeconds) and Catch on Task states.

mod common;

use std::time::Duration;

use serde_json::json;
use wme_asl::ExecutionStatus;

use common::*;

fn task_machine(retry: serde_json::Value, catch: serde_json::Value) -> serde_json::Value {
    // "Recover" must stay reachable, so a catcher that never matches stands in for none.
    let catch = if catch == json!([]) {
        json!([{"ErrorEquals": ["Never.Happens"], "Next": "Recover"}])
    } else {
        catch
    };
    json!({
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": SCRIPT, "Retry": retry, "Catch": catch, "End": true},
            "Recover": {"Type": "Pass", "End": true}
        }
    })
}

#[tokio::test(start_paused = true)]
async fn retries_follow_interval_and_backoff_then_succeed() {
    let engine = engine();
    let script = Script::new(vec![
        fail("Busy", "1"),
        fail("Busy", "2"),
        fail("Busy", "3"),
        Ok(json!("ok")),
    ]);
    engine.register(SCRIPT, script.clone());
    let retry = json!([{"ErrorEquals": ["Busy"], "IntervalSeconds": 2, "BackoffRate": 3.0, "MaxAttempts": 3}]);
    let done = run(&engine, &task_machine(retry, json!([])), json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output, Some(json!("ok")));
    let times = script.call_times();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [
            Duration::from_secs(2),
            Duration::from_secs(6),
            Duration::from_secs(18)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_attempts() {
    let engine = engine();
    let script = Script::new(vec![fail("Busy", "always")]);
    engine.register(SCRIPT, script.clone());
    let retry = json!([{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 2}]);
    let done = run(&engine, &task_machine(retry, json!([])), json!({})).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("Busy"));
    assert_eq!(script.call_count(), 3);
}

#[tokio::test(start_paused = true)]
async fn max_attempts_zero_never_retries() {
    let engine = engine();
    let script = Script::new(vec![fail("Busy", "x")]);
    engine.register(SCRIPT, script.clone());
    let retry =
        json!([{"ErrorEquals": ["Busy"], "MaxAttempts": 0}, {"ErrorEquals": ["States.ALL"]}]);
    let done = run(&engine, &task_machine(retry, json!([])), json!({})).await;
    assert_eq!(done.error.as_deref(), Some("Busy"));
    assert_eq!(
        script.call_count(),
        1,
        "the first matching retrier decides, even with 0 attempts"
    );
}

#[tokio::test(start_paused = true)]
async fn max_delay_seconds_caps_backoff() {
    let engine = engine();
    let script = Script::new(vec![
        fail("E", ""),
        fail("E", ""),
        fail("E", ""),
        Ok(json!(1)),
    ]);
    engine.register(SCRIPT, script.clone());
    let retry = json!([{"ErrorEquals": ["E"], "IntervalSeconds": 5, "BackoffRate": 4, "MaxDelaySeconds": 30}]);
    run(&engine, &task_machine(retry, json!([])), json!({})).await;
    let times = script.call_times();
    let gaps: Vec<u64> = times.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(gaps, [5, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn retry_count_is_visible_in_the_context_object() {
    let engine = engine();
    let script = Script::new(vec![fail("E", ""), Ok(json!(null))]);
    engine.register(SCRIPT, script.clone());
    let machine = json!({"StartAt": "Call", "States": {"Call": {
        "Type": "Task", "Resource": SCRIPT, "Parameters": {"n.$": "$$.State.RetryCount"},
        "Retry": [{"ErrorEquals": ["E"]}], "End": true
    }}});
    run(&engine, &machine, json!({})).await;
    let params: Vec<_> = script
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|(_, c)| c.parameters.clone())
        .collect();
    assert_eq!(params, [json!({"n": 0}), json!({"n": 1})]);
}

#[tokio::test(start_paused = true)]
async fn catch_routes_the_error_output_through_result_path() {
    let engine = engine();
    engine.register(
        SCRIPT,
        Script::new(vec![fail("Device.Offline", "no response")]),
    );
    let catch = json!([
        {"ErrorEquals": ["Other"], "Next": "Recover"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Recover"}
    ]);
    let done = run(
        &engine,
        &task_machine(json!([]), catch),
        json!({"device": "d1"}),
    )
    .await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(
        done.output,
        Some(json!({"device": "d1", "error": {"Error": "Device.Offline", "Cause": "no response"}}))
    );
}

#[tokio::test(start_paused = true)]
async fn catch_applies_after_retries_are_exhausted() {
    let engine = engine();
    let script = Script::new(vec![fail("E", "c")]);
    engine.register(SCRIPT, script.clone());
    let retry = json!([{"ErrorEquals": ["E"], "MaxAttempts": 1}]);
    let catch = json!([{"ErrorEquals": ["E"], "Next": "Recover"}]);
    let done = run(&engine, &task_machine(retry, catch), json!({})).await;
    assert_eq!(done.output, Some(json!({"Error": "E", "Cause": "c"})));
    assert_eq!(script.call_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn states_all_does_not_catch_runtime_errors() {
    let engine = engine();
    engine.register(SCRIPT, Script::new(vec![Ok(json!(1))]));
    let machine = json!({"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": SCRIPT, "Parameters": {"x.$": "$.missing"},
                 "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}], "End": true},
        "Recover": {"Type": "Pass", "End": true}
    }});
    let done = run(&engine, &machine, json!({"present": 1})).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    let cause = done.cause.unwrap();
    assert!(
        cause.starts_with("An error occurred while executing the state 'Call'"),
        "{cause}"
    );
    assert!(cause.contains("\"$.missing\""), "{cause}");
}

#[tokio::test(start_paused = true)]
async fn task_failed_matches_errors_but_not_timeouts() {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let machine = json!({"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": format!("{CALLBACK}.waitForTaskToken"), "TimeoutSeconds": 5,
                 "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Recover"}], "End": true},
        "Recover": {"Type": "Pass", "End": true}
    }});
    let arn = create(&engine, &machine);
    let exec = engine.start_execution(&arn, None, json!({})).await.unwrap();
    calls.recv().await.unwrap();
    let done = engine.wait_for_execution(&exec).await.unwrap();
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
}

#[tokio::test(start_paused = true)]
async fn request_response_timeout_fails_with_states_timeout() {
    struct Slow;
    #[async_trait::async_trait]
    impl wme_asl::TaskHandler for Slow {
        async fn invoke(
            &self,
            _: wme_asl::TaskCall,
        ) -> Result<serde_json::Value, wme_asl::TaskFailure> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(json!(null))
        }
    }
    let engine = engine();
    engine.register(SCRIPT, std::sync::Arc::new(Slow));
    let machine = json!({"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": SCRIPT, "TimeoutSeconds": 7, "End": true}
    }});
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    assert_eq!((done.stop_date.unwrap() - done.start_date).num_seconds(), 7);
}
