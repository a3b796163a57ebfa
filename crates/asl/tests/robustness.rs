//! Inputs that once crashed or wedged the engine: documents nested too deeply, timers too long
//! to represent, two processes on one store, and reading a file that is not a store.

mod common;

use std::collections::HashMap;

use serde_json::{Value, json};
use wme_asl::{Engine, EngineConfig, ExecutionStatus, StartError, StoreError};

fn nested(levels: usize) -> Value {
    (0..levels).fold(json!(1), |inner, _| Value::Array(vec![inner]))
}

async fn run(engine: &Engine, definition: Value, input: Value) -> wme_asl::ExecutionDescription {
    let sm = engine
        .create_state_machine("M", &definition.to_string(), &HashMap::new())
        .unwrap();
    let arn = engine.start_execution(&sm, None, input).await.unwrap();
    engine.wait_for_execution(&arn).await.unwrap()
}

#[tokio::test]
async fn a_loop_that_nests_its_data_deeper_each_round_fails_cleanly_instead_of_overflowing() {
    let engine = common::engine();
    let grow = json!({"StartAt": "Grow", "States": {
        "Grow": {"Type": "Pass", "Parameters": {"a.$": "$"}, "Next": "Grow"}
    }});

    let done = run(&engine, grow, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::Failed);
    assert_eq!(done.error.as_deref(), Some("States.Runtime"));
    let cause = done.cause.unwrap();
    assert!(
        cause.ends_with(
            "the output of state 'Grow' nests arrays and objects more than 100 levels deep, \
             more than this engine keeps"
        ),
        "{cause}"
    );
}

#[tokio::test]
async fn an_input_nested_too_deeply_is_refused_at_start() {
    let engine = common::engine();
    let sm = engine
        .create_state_machine(
            "P",
            r#"{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}}"#,
            &HashMap::new(),
        )
        .unwrap();

    let ok = engine.start_execution(&sm, None, nested(100)).await;
    let refused = engine.start_execution(&sm, None, nested(101)).await;

    assert!(ok.is_ok());
    assert_eq!(
        refused,
        Err(StartError::InvalidInput(
            "input nests arrays and objects more than 100 levels deep, more than this engine keeps"
                .into()
        ))
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_too_long_to_represent_waits_until_the_execution_times_out() {
    let engine = common::engine();
    let wait = json!({"TimeoutSeconds": 10, "StartAt": "W", "States": {
        "W": {"Type": "Wait", "SecondsPath": "$.s", "End": true}
    }});

    let done = run(&engine, wait, json!({"s": u64::MAX})).await;

    assert_eq!(done.status, ExecutionStatus::TimedOut);
}

#[tokio::test(start_paused = true)]
async fn a_backoff_grown_to_infinity_waits_instead_of_panicking() {
    let engine = common::engine();
    let retry = json!({"TimeoutSeconds": 60, "StartAt": "P", "States": {
        "P": {"Type": "Parallel", "End": true,
              "Branches": [{"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E"}}}],
              "Retry": [{"ErrorEquals": ["E"], "IntervalSeconds": 1, "BackoffRate": 1e300,
                         "MaxAttempts": 5}]}
    }});

    let done = run(&engine, retry, json!({})).await;

    assert_eq!(done.status, ExecutionStatus::TimedOut);
}

fn temp_store() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wme-asl-robust-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.db")
}

#[test]
fn a_second_engine_on_a_store_in_use_is_refused() {
    let path = temp_store();
    let first = Engine::open(EngineConfig::default(), &path).unwrap();

    let second = Engine::open(EngineConfig::default(), &path);

    assert!(
        matches!(&second, Err(StoreError::InUse { path: p }) if *p == path.display().to_string()),
        "{second:?}"
    );
    let reader = Engine::open_read_only(EngineConfig::default(), &path);
    assert!(reader.is_ok(), "a reader is not kept out: {reader:?}");
    drop(first);
    assert!(Engine::open(EngineConfig::default(), &path).is_ok());
}

#[test]
fn reading_a_database_that_is_not_a_store_says_so_and_changes_nothing() {
    let path = temp_store();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE foo (x INTEGER)").unwrap();
    drop(conn);

    let result = Engine::open_read_only(EngineConfig::default(), &path);

    let err = result.err().expect("not a store");
    assert_eq!(
        err.to_string(),
        format!(
            "{} is not an execution store: it has no definitions table",
            path.display()
        )
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "no table was added");
}
