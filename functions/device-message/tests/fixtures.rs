//! The function on IoT rule events (`{"topic", "payload": base64}`) made from the golden USP
//! Records of `crates/usp/fixtures`, whose agent is `os::012345-SIM0001`.

use std::time::Duration;

use serde_json::{Value, json};
use wme_lambda::fakes::{Completion, FakeChannel, RecordingCallbacks};
use wme_local::tokens::LocalTokenStore;
use wme_workflow::device_message::DeviceMessagePorts;
use wme_workflow::model::{WaitKey, WaitKind};
use wme_workflow::ports::{AgentAddress, TokenStore};
use wme_workflow::{Controller, DeviceMessageError};

const THING: &str = "012345-SIM0001";

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn controller() -> Controller {
    Controller {
        endpoint_id: "self::wme-controller".into(),
        agent_endpoint_prefix: "os::".into(),
    }
}

struct World {
    tokens: LocalTokenStore,
    callbacks: RecordingCallbacks,
    devices: FakeChannel,
}

impl World {
    fn new() -> Self {
        Self {
            tokens: LocalTokenStore::new(Duration::from_secs(3600)),
            callbacks: RecordingCallbacks::default(),
            devices: FakeChannel::default(),
        }
    }

    async fn handle(&self, event: Value) -> Result<Value, wme_lambda::lambda_runtime::Diagnostic> {
        let ports = DeviceMessagePorts {
            tokens: &self.tokens,
            callbacks: &self.callbacks,
            devices: &self.devices,
        };
        wme_fn_device_message::handle(&ports, &controller(), event).await
    }
}

#[tokio::test]
async fn mqtt_connect_record_remembers_the_agent_address() {
    let world = World::new();

    let out = world.handle(fixture("mqtt_connect.json")).await.unwrap();

    assert_eq!(
        out,
        json!({"agentConnected": THING, "endpointId": "os::012345-SIM0001"})
    );
    let addresses = world.devices.addresses.lock().unwrap();
    assert_eq!(
        addresses[THING],
        AgentAddress {
            endpoint_id: "os::012345-SIM0001".into(),
            topic: "usp/agent/os::012345-SIM0001".into(),
            mqtt5: true,
        }
    );
}

#[tokio::test]
async fn transfer_complete_completes_the_waiting_token_and_is_acknowledged() {
    let world = World::new();
    let op = WaitKey::new(THING, "fw-upgrade-1", WaitKind::OperateResp);
    let tc = WaitKey::new(THING, "fw-upgrade-1", WaitKind::TransferComplete);
    world.tokens.register_waiter(&op, "token-op").await.unwrap();
    world.tokens.register_waiter(&tc, "token-tc").await.unwrap();

    let out = world
        .handle(fixture("transfer_complete.json"))
        .await
        .unwrap();

    assert_eq!(out["completed"], json!(tc.to_string()));
    assert_eq!(out["success"], json!(true));
    let calls = world.callbacks.calls.lock().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Completion::Success(t, _) if t == "token-tc")),
        "{calls:?}"
    );
    let published = world.devices.published.lock().unwrap();
    assert_eq!(published.len(), 1, "the NotifyResp the agent asked for");
}

#[tokio::test]
async fn unusable_messages_are_dropped_with_their_reason_not_retried() {
    let world = World::new();

    let garbage = world.handle(fixture("garbage.json")).await.unwrap();
    let wrong_topic = world.handle(fixture("wrong_topic.json")).await.unwrap();
    let unknown = world
        .handle(fixture("transfer_complete.json"))
        .await
        .unwrap();

    assert_eq!(garbage, json!({"dropped": "malformed"}));
    assert_eq!(wrong_topic, json!({"dropped": "wrong_from_id"}));
    assert_eq!(unknown, json!({"dropped": "unknown_command_key"}));
    assert!(world.callbacks.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn event_without_a_payload_fails_as_invalid_input() {
    let err = World::new()
        .handle(json!({"topic": "usp/v1/controller/x"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidInput");
}

#[test]
fn only_passing_failures_are_retried() {
    use wme_workflow::ports::PortError;
    let outage = DeviceMessageError::TokenStore(PortError::Unavailable("throttled".into()));
    let refused = DeviceMessageError::TokenStore(PortError::Invalid("bad".into()));
    assert_eq!(
        wme_fn_device_message::retry_name(&outage),
        Some("TokenStoreError")
    );
    assert_eq!(wme_fn_device_message::retry_name(&refused), None);
}
