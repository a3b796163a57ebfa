//! The Step Functions quota of 25,000 history events per execution: an execution that would
//! record more fails with `States.Runtime`, and that failure is its 25,000th and last event.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wme_asl::runtime::MAX_HISTORY_EVENTS;
use wme_asl::{
    Engine, EngineConfig, EventDetails, ExecutionStatus, HistoryEvent, TaskCall, TaskFailure,
    TaskHandler,
};

use common::*;

const CAUSE: &str = "The execution reached the maximum number of history events (25000).";

/// A Pass and a Choice that loop for as long as `$.spin` is true.
fn spinning() -> Value {
    json!({"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Next": "Loop"},
        "Loop": {"Type": "Choice",
            "Choices": [{"Variable": "$.spin", "BooleanEquals": true, "Next": "Count"}],
            "Default": "Done"},
        "Done": {"Type": "Succeed"}}})
}

/// Checks the ids and the last event of a history cut at the cap.
fn assert_cut_at_the_cap(history: &[HistoryEvent]) {
    assert_eq!(history.len() as u64, MAX_HISTORY_EVENTS);
    for (i, event) in history.iter().enumerate() {
        assert_eq!(event.id, i as u64 + 1);
        assert_eq!(event.previous_event_id, i as u64);
    }
    let last = &history[history.len() - 1].details;
    let expected = EventDetails::ExecutionFailed {
        error: "States.Runtime".into(),
        cause: CAUSE.into(),
    };
    assert_eq!(last, &expected);
}

#[tokio::test(start_paused = true)]
async fn a_looping_execution_fails_with_its_25000th_event() {
    let engine = engine();
    let done = run(&engine, &spinning(), json!({"spin": true})).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    assert_eq!(done.cause.as_deref(), Some(CAUSE));
    let history = engine.history(&done.execution_arn).unwrap();
    assert_cut_at_the_cap(&history);
    // 1 ExecutionStarted, then 4 events a round: event 24,999 is the Pass state's exit and the
    // Choice state's entry that would have been event 25,000 never happens.
    assert_eq!(history[24_998].event_type(), "PassStateExited");
}

#[tokio::test(start_paused = true)]
async fn an_execution_whose_end_is_its_25000th_event_succeeds() {
    // 1 ExecutionStarted + 4 events for each of 6,249 rounds + Succeed entered and exited +
    // ExecutionSucceeded = 25,000.
    let definition = json!({"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Loop"},
        "Loop": {"Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericEquals": 6249, "Next": "Done"}],
            "Default": "Count"},
        "Done": {"Type": "Succeed"}}});
    let engine = engine();
    let done = run(&engine, &definition, json!({"n": 0})).await;

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.output, Some(json!({"n": 6249})));
    let history = engine.history(&done.execution_arn).unwrap();
    assert_eq!(history.len() as u64, MAX_HISTORY_EVENTS);
    assert_eq!(history[24_999].event_type(), "ExecutionSucceeded");
}

/// Counts its calls and echoes its input.
#[derive(Default)]
struct Calls(AtomicUsize);

#[async_trait::async_trait]
impl TaskHandler for Calls {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(call.parameters)
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_that_would_be_scheduled_past_the_cap_does_not_run() {
    // 7 events a round; event 25,000 would be a TaskScheduled, so the 3,572nd call never
    // happens.
    let definition = json!({"StartAt": "Work", "States": {
        "Work": {"Type": "Task", "Resource": ECHO, "Next": "Loop"},
        "Loop": {"Type": "Choice",
            "Choices": [{"Variable": "$.spin", "BooleanEquals": true, "Next": "Work"}],
            "Default": "Done"},
        "Done": {"Type": "Succeed"}}});
    let engine = engine();
    let calls = Arc::new(Calls::default());
    engine.register(ECHO, Arc::clone(&calls) as Arc<dyn TaskHandler>);
    let done = run(&engine, &definition, json!({"spin": true})).await;

    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    let history = engine.history(&done.execution_arn).unwrap();
    assert_cut_at_the_cap(&history);
    assert_eq!(history[24_998].event_type(), "TaskStateEntered");
    let succeeded = history
        .iter()
        .filter(|e| e.event_type() == "TaskSucceeded")
        .count();
    assert_eq!(succeeded, 3571);
    assert_eq!(calls.0.load(Ordering::SeqCst), succeeded);
}

#[tokio::test(start_paused = true)]
async fn iterations_of_a_map_count_towards_the_same_history() {
    let items: Vec<Value> = (0..10_000).map(|i| json!(i)).collect();
    let definition = json!({"StartAt": "Each", "States": {"Each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "Item", "States": {"Item": {"Type": "Pass", "End": true}}},
        "End": true}}});
    let engine = engine();
    let done = run(&engine, &definition, json!({"items": items})).await;

    assert_eq!(done.cause.as_deref(), Some(CAUSE));
    assert_cut_at_the_cap(&engine.history(&done.execution_arn).unwrap());
}

#[tokio::test]
async fn a_durable_engine_keeps_the_cap_and_reads_the_cut_history_back() {
    let dir = std::env::temp_dir().join(format!("wme-asl-limit-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("engine.db");
    let engine = Engine::open(EngineConfig::default(), &path).unwrap();
    let sm = engine
        .create_state_machine("Spin", &spinning().to_string(), &HashMap::new())
        .unwrap();
    let arn = engine
        .start_execution(&sm, Some("spin"), json!({"spin": true}))
        .await
        .unwrap();
    let done = engine.wait_for_execution(&arn).await.unwrap();
    assert_eq!(done.cause.as_deref(), Some(CAUSE));
    engine.flush().await;
    drop(engine);

    let engine = Engine::open(EngineConfig::default(), &path).unwrap();
    assert_eq!(engine.resume(), 0, "a failed execution does not resume");
    assert_eq!(engine.describe_execution(&arn), Some(done));
    assert_cut_at_the_cap(&engine.history(&arn).unwrap());
    std::fs::remove_dir_all(&dir).ok();
}
