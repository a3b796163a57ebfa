//! The function on the state machine's SendDownload payload.

use std::time::Duration;

use serde_json::{Value, json};
use wme_lambda::fakes::{FakeArtifacts, FakeChannel};
use wme_local::tokens::LocalTokenStore;
use wme_workflow::Controller;
use wme_workflow::ports::{AgentAddress, FirmwareImage, TokenStore};
use wme_workflow::send_command::SendCommandPorts;

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn artifacts() -> FakeArtifacts {
    let mut artifacts = FakeArtifacts::default();
    artifacts.images.insert(
        "1.2.3".into(),
        FirmwareImage {
            url: "https://wme-firmware.s3.eu-west-1.amazonaws.com/firmware/1.2.3.bin?X-Amz-Signature=abc".into(),
            size: 4096,
            sha256: "ab".repeat(32),
            credentials: None,
        },
    );
    artifacts
}

fn channel() -> FakeChannel {
    let channel = FakeChannel::default();
    channel.addresses.lock().unwrap().insert(
        "sim-0001".into(),
        AgentAddress {
            endpoint_id: "self::sim-0001".into(),
            topic: "usp/v1/agent/sim-0001".into(),
            mqtt5: true,
        },
    );
    channel
}

#[tokio::test]
async fn download_payload_registers_the_token_and_publishes_the_operate() {
    let (tokens, devices, artifacts) = (
        LocalTokenStore::new(Duration::from_secs(60)),
        channel(),
        artifacts(),
    );
    let ports = SendCommandPorts {
        tokens: &tokens,
        devices: &devices,
        artifacts: &artifacts,
    };

    let out = wme_fn_send_usp_command::handle(
        &ports,
        &Controller::default(),
        fixture("send_download.json"),
    )
    .await
    .unwrap();

    assert_eq!(out["topic"], json!("usp/v1/agent/sim-0001"));
    let published = devices.published.lock().unwrap();
    assert_eq!(
        published[0].response_topic.as_deref(),
        Some("usp/v1/controller/sim-0001")
    );
    let record = wme_usp::decode_record(&published[0].payload).unwrap();
    assert_eq!(record.to_id, "self::sim-0001");
    let waiting = tokens
        .waiting_tokens("sim-0001", "firmware-upgrade-1_2_3-0a1b2c3d")
        .await
        .unwrap();
    assert_eq!(waiting, ["AQCEAAAAKgAAAAMAAAAAAAAAAd0example-task-token"]);
}

#[tokio::test]
async fn a_version_without_an_image_fails_with_its_stable_name() {
    let (tokens, devices, artifacts) = (
        LocalTokenStore::new(Duration::from_secs(60)),
        channel(),
        FakeArtifacts::default(),
    );
    let ports = SendCommandPorts {
        tokens: &tokens,
        devices: &devices,
        artifacts: &artifacts,
    };

    let err = wme_fn_send_usp_command::handle(
        &ports,
        &Controller::default(),
        fixture("send_download.json"),
    )
    .await
    .unwrap_err();

    assert_eq!(err.error_type, "FirmwareImageNotFound");
    assert!(devices.published.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_second_send_for_the_same_job_fails_as_already_sent() {
    let (tokens, devices, artifacts) = (
        LocalTokenStore::new(Duration::from_secs(60)),
        channel(),
        artifacts(),
    );
    let ports = SendCommandPorts {
        tokens: &tokens,
        devices: &devices,
        artifacts: &artifacts,
    };
    let controller = Controller::default();

    wme_fn_send_usp_command::handle(&ports, &controller, fixture("send_download.json"))
        .await
        .unwrap();
    let err = wme_fn_send_usp_command::handle(&ports, &controller, fixture("send_download.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type, "CommandAlreadySent");
}
