//! Conformance: error handling examples from the developer guide ("Error handling in Step
//! Functions") and the ASL specification ("Errors"): Retry timing and defaults, the complex
//! retry scenario, Catch with ResultPath, timeouts, and predefined error names.

mod common;
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use wme_asl::ExecutionStatus;

use common::*;
use conformance::{Func, Sleep, engine_with};

const FAIL_FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:FailFunction";
const SLEEP10: &str = "arn:aws:lambda:us-east-1:123456789012:function:sleep10";
const TASK_X: &str = "arn:aws:states:us-east-1:123456789012:task:X";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The guide's `FailFunction`: always fails with `HandledError`.
fn fail_function() -> Arc<Func> {
    Func::new(|_| Err(wme_asl::TaskFailure::new("HandledError", "error")))
}

fn hello_world(resource: &str, fields: Value) -> Value {
    let mut state = json!({"Type": "Task", "Resource": resource, "End": true});
    for (key, value) in fields.as_object().unwrap() {
        state[key] = value.clone();
    }
    json!({"StartAt": "HelloWorld", "States": {
        "HelloWorld": state,
        "fallback": {"Type": "Pass", "Result": "Hello, AWS Step Functions!", "End": true}
    }})
}

async fn handling_a_failure_using_retry(error_equals: &str) {
    let function = fail_function();
    let engine = engine_with(FAIL_FUNCTION, function.clone());
    let retry = json!({"Retry": [{"ErrorEquals": [error_equals], "IntervalSeconds": 1,
        "MaxAttempts": 2, "BackoffRate": 2.0}],
        "Catch": [{"ErrorEquals": ["Unrelated"], "Next": "fallback"}]});
    let done = run(&engine, &hello_world(FAIL_FUNCTION, retry), json!({})).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("HandledError"));
    assert_eq!(function.gaps(), [secs(1.0), secs(2.0)]);
}

#[tokio::test(start_paused = true)]
async fn handling_a_failure_using_retry_on_its_error_name() {
    handling_a_failure_using_retry("HandledError").await;
}

#[tokio::test(start_paused = true)]
async fn handling_a_failure_using_retry_on_states_task_failed() {
    handling_a_failure_using_retry("States.TaskFailed").await;
}

async fn handling_a_failure_using_catch(error_equals: &str) {
    let engine = engine_with(FAIL_FUNCTION, fail_function());
    let catch = json!({"Catch": [{"ErrorEquals": [error_equals], "Next": "fallback"}]});
    let done = run(&engine, &hello_world(FAIL_FUNCTION, catch), json!({})).await;
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output, Some(json!("Hello, AWS Step Functions!")));
}

#[tokio::test(start_paused = true)]
async fn handling_a_failure_using_catch_on_its_error_name() {
    handling_a_failure_using_catch("HandledError").await;
}

#[tokio::test(start_paused = true)]
async fn handling_a_failure_using_catch_on_states_task_failed() {
    handling_a_failure_using_catch("States.TaskFailed").await;
}

#[tokio::test(start_paused = true)]
async fn handling_a_timeout_using_retry() {
    let sleep = Sleep::new(10);
    let engine = engine_with(SLEEP10, sleep.clone());
    let fields = json!({"TimeoutSeconds": 2,
        "Retry": [{"ErrorEquals": ["States.Timeout"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2.0}],
        "Catch": [{"ErrorEquals": ["Unrelated"], "Next": "fallback"}]});
    let start = Instant::now();
    let done = run(&engine, &hello_world(SLEEP10, fields), json!({})).await;
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    // Each attempt times out after 2 s; the retries wait 1 s and then 2 s.
    assert_eq!(sleep.call_offsets(start), [secs(0.0), secs(3.0), secs(7.0)]);
    assert_eq!(start.elapsed(), secs(9.0));
}

#[tokio::test(start_paused = true)]
async fn handling_a_timeout_using_catch() {
    let engine = engine_with(SLEEP10, Sleep::new(10));
    let fields = json!({"TimeoutSeconds": 2,
        "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "fallback"}]});
    let start = Instant::now();
    let done = run(&engine, &hello_world(SLEEP10, fields), json!({})).await;
    assert_eq!(done.output, Some(json!("Hello, AWS Step Functions!")));
    assert_eq!(start.elapsed(), secs(2.0));
}

#[tokio::test(start_paused = true)]
async fn retry_example_waits_3_then_4_5_then_6_75_then_10_125_seconds() {
    let sleep = Sleep::new(3600);
    let engine = engine_with(SLEEP10, sleep.clone());
    let fields = json!({"TimeoutSeconds": 1, "Retry": [{"ErrorEquals": ["States.Timeout"],
        "IntervalSeconds": 3, "MaxAttempts": 4, "BackoffRate": 1.5}],
        "Catch": [{"ErrorEquals": ["Unrelated"], "Next": "fallback"}]});
    let start = Instant::now();
    run(&engine, &hello_world(SLEEP10, fields), json!({})).await;
    let offsets = sleep.call_offsets(start);
    let gaps: Vec<Duration> = offsets.windows(2).map(|w| w[1] - w[0]).collect();
    // Each gap is the 1 s timeout plus the retry interval.
    assert_eq!(gaps, [secs(4.0), secs(5.5), secs(7.75), secs(11.125)]);
}

#[tokio::test(start_paused = true)]
async fn retry_everything_except_states_timeout_uses_the_default_retrier_fields() {
    let retry = json!({"Retry": [
        {"ErrorEquals": ["States.Timeout"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"]}
    ], "Catch": [{"ErrorEquals": ["Unrelated"], "Next": "fallback"}]});

    let function = fail_function();
    let engine = engine_with(FAIL_FUNCTION, function.clone());
    let done = run(
        &engine,
        &hello_world(FAIL_FUNCTION, retry.clone()),
        json!({}),
    )
    .await;
    assert_eq!(done.error.as_deref(), Some("HandledError"));
    // Defaults: IntervalSeconds 1, BackoffRate 2.0, MaxAttempts 3.
    assert_eq!(function.gaps(), [secs(1.0), secs(2.0), secs(4.0)]);

    let sleep = Sleep::new(3600);
    let engine = engine_with(SLEEP10, sleep.clone());
    let mut fields = retry;
    fields["TimeoutSeconds"] = json!(5);
    let done = run(&engine, &hello_world(SLEEP10, fields), json!({})).await;
    assert_eq!(done.error.as_deref(), Some("States.Timeout"));
    assert_eq!(sleep.calls.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn complex_retry_scenario_counts_attempts_per_retrier_across_errors() {
    // ASL specification: the task fails with ErrorA, ErrorB, ErrorC, ErrorB. The first two use
    // up the first retrier (waits 1 and 2 s), the third waits 5 s, the fourth goes to Z.
    let script = Script::new(vec![
        fail("ErrorA", "a"),
        fail("ErrorB", "b"),
        fail("ErrorC", "c"),
        fail("ErrorB", "b again"),
        Ok(json!("never")),
    ]);
    let engine = engine_with(TASK_X, script.clone());
    let machine = json!({"StartAt": "X", "States": {
        "X": {
            "Type": "Task", "Resource": TASK_X, "Next": "Y",
            "Retry": [
                {"ErrorEquals": ["ErrorA", "ErrorB"], "IntervalSeconds": 1, "BackoffRate": 2.0, "MaxAttempts": 2},
                {"ErrorEquals": ["ErrorC"], "IntervalSeconds": 5}
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Z"}]
        },
        "Y": {"Type": "Succeed"},
        "Z": {"Type": "Pass", "End": true}
    }});
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(
        done.output,
        Some(json!({"Error": "ErrorB", "Cause": "b again"}))
    );
    let gaps: Vec<u64> = script
        .call_times()
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    assert_eq!(gaps, [1, 2, 5]);
}

fn catch_example_machine() -> Value {
    json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SCRIPT, "End": true, "Catch": [
            {"ErrorEquals": ["java.lang.Exception"], "ResultPath": "$.error-info", "Next": "RecoveryState"},
            {"ErrorEquals": ["States.ALL"], "Next": "EndState"}
        ]},
        "RecoveryState": {"Type": "Pass", "Parameters": {"recovered.$": "$"}, "End": true},
        "EndState": {"Type": "Pass", "Parameters": {"ended.$": "$"}, "End": true}
    }})
}

#[tokio::test]
async fn catch_example_adds_error_info_to_the_input_for_recovery_state() {
    let engine = engine_with(
        SCRIPT,
        Script::new(vec![fail("java.lang.Exception", "boom")]),
    );
    let done = run(&engine, &catch_example_machine(), json!({"order": 1})).await;
    assert_eq!(
        done.output,
        Some(
            json!({"recovered": {"order": 1, "error-info": {"Error": "java.lang.Exception", "Cause": "boom"}}})
        )
    );
}

#[tokio::test]
async fn catch_example_sends_only_the_error_output_to_end_state() {
    let engine = engine_with(SCRIPT, Script::new(vec![fail("Other.Error", "bad")]));
    let done = run(&engine, &catch_example_machine(), json!({"order": 1})).await;
    assert_eq!(
        done.output,
        Some(json!({"ended": {"Error": "Other.Error", "Cause": "bad"}}))
    );
}

#[tokio::test]
async fn states_data_limit_exceeded_is_raised_for_outputs_over_256_kib_and_not_caught() {
    let big = "x".repeat(300 * 1024);
    let engine = engine_with(SCRIPT, Script::new(vec![Ok(json!(big))]));
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": SCRIPT, "End": true,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}]},
        "Recover": {"Type": "Pass", "End": true}
    }});
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.DataLimitExceeded"));
}

/// Runs a callback task that never heartbeats (HeartbeatSeconds 1) with one catcher for
/// `name`, and returns the execution's output (`"recovered"` when the catcher matched).
async fn missed_heartbeat_caught_by(name: &str) -> Option<Value> {
    let engine = engine();
    let mut calls = callback_handler(&engine);
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": format!("{CALLBACK}.waitForTaskToken"),
              "HeartbeatSeconds": 1, "TimeoutSeconds": 100, "End": true,
              "Catch": [{"ErrorEquals": [name], "ResultPath": null, "Next": "Recover"}]},
        "Recover": {"Type": "Pass", "Result": "recovered", "End": true}
    }});
    let arn = create(&engine, &machine);
    let exec = engine.start_execution(&arn, None, json!({})).await.unwrap();
    calls.recv().await.unwrap();
    engine.wait_for_execution(&exec).await.unwrap().output
}

#[tokio::test(start_paused = true)]
async fn a_missed_heartbeat_is_caught_by_states_heartbeat_timeout() {
    assert_eq!(
        missed_heartbeat_caught_by("States.HeartbeatTimeout").await,
        Some(json!("recovered"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_missed_heartbeat_is_caught_by_states_timeout() {
    assert_eq!(
        missed_heartbeat_caught_by("States.Timeout").await,
        Some(json!("recovered"))
    );
}

#[tokio::test]
async fn a_missing_parameters_path_fails_with_states_runtime() {
    // The ASL specification names this failure States.ParameterPathFailure, but AWS (and Step
    // Functions Local) fail the execution with States.Runtime and this cause.
    let out =
        conformance::pass_parameters(json!({"x.$": "$.missing"}), json!({"present": 1})).await;
    let (error, cause) = out.unwrap_err();
    assert_eq!(error, "States.Runtime");
    assert!(
        cause.contains("'$.missing'") || cause.contains("\"$.missing\""),
        "{cause}"
    );
}

#[tokio::test]
async fn states_all_does_not_match_states_runtime_even_from_a_pass_state_path() {
    let engine = engine_with(ECHO, Arc::new(Echo));
    let machine = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": ECHO, "OutputPath": "$.missing", "End": true,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Recover"}]},
        "Recover": {"Type": "Pass", "End": true}
    }});
    let done = run(&engine, &machine, json!({"present": 1})).await;
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
}

#[tokio::test(start_paused = true)]
async fn parallel_states_retry_the_whole_state_when_a_branch_fails() {
    // "Task and Parallel states can have a field named Retry."
    let script = Script::new(vec![fail("Branch.Busy", "try later"), Ok(json!("done"))]);
    let engine = engine_with(SCRIPT, script.clone());
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Parallel", "End": true,
        "Retry": [{"ErrorEquals": ["Branch.Busy"], "IntervalSeconds": 3}],
        "Branches": [
            {"StartAt": "Work", "States": {"Work": {"Type": "Task", "Resource": SCRIPT, "End": true}}},
            {"StartAt": "Other", "States": {"Other": {"Type": "Pass", "Result": "other", "End": true}}}
        ]
    }}});
    let done = run(&engine, &machine, json!({})).await;
    assert_eq!(done.output, Some(json!(["done", "other"])));
    let gaps: Vec<u64> = script
        .call_times()
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs())
        .collect();
    assert_eq!(gaps, [3]);
}

#[tokio::test]
async fn a_failed_map_iteration_is_caught_by_the_map_state() {
    // "If any iteration fails, entire Map state fails"; the Map's Catch handles it.
    let engine = engine_with(SCRIPT, Script::new(vec![fail("Item.Bad", "item 2")]));
    let machine = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "ItemsPath": "$.items", "End": true,
              "Iterator": {"StartAt": "V", "States": {"V": {"Type": "Task", "Resource": SCRIPT, "End": true}}},
              "Catch": [{"ErrorEquals": ["Item.Bad"], "ResultPath": "$.failure", "Next": "Handled"}]},
        "Handled": {"Type": "Pass", "End": true}
    }});
    let done = run(&engine, &machine, json!({"items": [1, 2]})).await;
    assert_eq!(
        done.output,
        Some(json!({"items": [1, 2], "failure": {"Error": "Item.Bad", "Cause": "item 2"}}))
    );
}
