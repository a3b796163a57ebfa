//! The function on the state machine's AwaitBoot payload.

use std::time::Duration;

use serde_json::{Value, json};
use wme_lambda::fakes::{Completion, RecordingCallbacks};
use wme_local::tokens::LocalTokenStore;
use wme_workflow::model::{EventOutcome, WaitKey, WaitKind};
use wme_workflow::ports::TokenStore;

const JOB: &str = "firmware-upgrade-1_2_3-0a1b2c3d";

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn store_with_command() -> LocalTokenStore {
    let tokens = LocalTokenStore::new(Duration::from_secs(60));
    let op = WaitKey::new("sim-0001", JOB, WaitKind::OperateResp);
    tokens.register_waiter(&op, "token-op").await.unwrap();
    tokens
}

#[tokio::test]
async fn boot_payload_parks_the_token() {
    let (tokens, callbacks) = (store_with_command().await, RecordingCallbacks::default());

    let out = wme_fn_await_device_event::handle(&tokens, &callbacks, fixture("await_boot.json"))
        .await
        .unwrap();

    assert_eq!(out, json!({"waiting": true}));
    assert!(callbacks.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn boot_that_came_first_completes_the_token_at_once() {
    let (tokens, callbacks) = (store_with_command().await, RecordingCallbacks::default());
    let boot = WaitKey::new("sim-0001", JOB, WaitKind::Boot);
    let outcome = EventOutcome::Success {
        output: json!({"version": "1.2.3"}),
    };
    tokens.record_event(&boot, &outcome).await.unwrap();

    let out = wme_fn_await_device_event::handle(&tokens, &callbacks, fixture("await_boot.json"))
        .await
        .unwrap();

    assert_eq!(out, json!({"waiting": false}));
    assert_eq!(
        callbacks.calls.lock().unwrap()[0],
        Completion::Success(
            "AQCEAAAAKgAAAAMAAAAAAAAAAd0example-boot-token".into(),
            json!({"version": "1.2.3"})
        )
    );
}

#[tokio::test]
async fn operate_resp_is_not_awaited_here() {
    let mut event = fixture("await_boot.json");
    event["event"] = json!("OperateResp");
    let err = wme_fn_await_device_event::handle(
        &store_with_command().await,
        &RecordingCallbacks::default(),
        event,
    )
    .await
    .unwrap_err();
    assert_eq!(err.error_type, "InvalidInput");
}
