//! The device-message handler (`wme_workflow::handle_device_message`) over the local token table,
//! fed with USP Records built by `wme_usp` as an agent would publish them, with fake engine
//! callbacks and a fake MQTT side that record what the handler did.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use wme_local::tokens::LocalTokenStore;
use wme_usp::{
    Boot, CommandFailure, FirmwareDownload, MqttVersion, Msg, OperComplete, TransferComplete,
    UspError, View,
};
use wme_workflow::device_message::DeviceMessagePorts;
use wme_workflow::ports::{
    AgentAddress, ArtifactStore, CallbackError, DeviceChannel, FirmwareImage, Outbound, PortError,
    TaskCallbacks,
};
use wme_workflow::send_command::SendCommandPorts;
use wme_workflow::{
    AwaitEventInput, AwaitEventOutput, Controller, DeviceMessageError, MessageOutcome,
    SendCommandInput, WaitKey, WaitKind, await_device_event, handle_device_message,
    send_usp_command,
};

const THING: &str = "sim-0001";
const AGENT: &str = "self::sim-0001";
const CONTROLLER: &str = "self::wme-controller";
const JOB: &str = "job-1";
const TOPIC: &str = "usp/v1/controller/sim-0001";
const DOWNLOAD: &str = "Device.DeviceInfo.FirmwareImage.2.Download()";
const SHA256: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/// A callback the handler sent to the engine.
#[derive(Debug, Clone, PartialEq)]
enum Callback {
    Success(String, Value),
    Failure(String, String, Value),
    Heartbeat(String),
}

/// Records callbacks; answers TaskTimedOut for completions once told the tasks are gone.
#[derive(Default)]
struct FakeCallbacks {
    calls: Mutex<Vec<Callback>>,
    tasks_timed_out: AtomicBool,
    /// The next completion fails as if the engine could not be reached.
    unavailable_once: AtomicBool,
}

impl FakeCallbacks {
    fn calls(&self) -> Vec<Callback> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls so far, forgetting them.
    fn take(&self) -> Vec<Callback> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn complete(&self, call: Callback) -> Result<(), CallbackError> {
        self.calls.lock().unwrap().push(call);
        if self.unavailable_once.swap(false, Ordering::SeqCst) {
            return Err(CallbackError::Unavailable("engine unreachable".into()));
        }
        match self.tasks_timed_out.load(Ordering::SeqCst) {
            true => Err(CallbackError::TaskTimedOut("task timed out".into())),
            false => Ok(()),
        }
    }
}

#[async_trait]
impl TaskCallbacks for FakeCallbacks {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        self.complete(Callback::Success(token.into(), output))
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        let cause: Value = serde_json::from_str(cause).expect("the cause is JSON text");
        self.complete(Callback::Failure(token.into(), error.into(), cause))
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        self.calls
            .lock()
            .unwrap()
            .push(Callback::Heartbeat(token.into()));
        Ok(())
    }
}

/// Records publishes and remembers agent addresses.
#[derive(Default)]
struct FakeDevices {
    published: Mutex<Vec<Outbound>>,
    addresses: Mutex<HashMap<String, AgentAddress>>,
}

impl FakeDevices {
    fn published(&self) -> Vec<Outbound> {
        self.published.lock().unwrap().clone()
    }
}

#[async_trait]
impl DeviceChannel for FakeDevices {
    async fn publish(&self, message: Outbound) -> Result<(), PortError> {
        self.published.lock().unwrap().push(message);
        Ok(())
    }

    async fn agent_address(&self, thing_name: &str) -> Result<Option<AgentAddress>, PortError> {
        Ok(self.addresses.lock().unwrap().get(thing_name).cloned())
    }

    async fn remember_agent_address(
        &self,
        thing_name: &str,
        address: AgentAddress,
    ) -> Result<(), PortError> {
        self.addresses
            .lock()
            .unwrap()
            .insert(thing_name.into(), address);
        Ok(())
    }
}

/// One firmware image, 1.2.3, behind basic auth.
struct FakeArtifacts;

#[async_trait]
impl ArtifactStore for FakeArtifacts {
    async fn firmware_image(&self, version: &str) -> Result<FirmwareImage, PortError> {
        if version != "1.2.3" {
            return Err(PortError::NotFound {
                kind: "firmware image",
                name: version.into(),
            });
        }
        Ok(FirmwareImage {
            url: "http://127.0.0.1:8080/firmware/1.2.3.bin".into(),
            size: 65_536,
            sha256: SHA256.into(),
            credentials: Some(("device".into(), "s3cret".into())),
        })
    }
}

/// The handler's world: the real local token table and the fakes.
struct World {
    tokens: LocalTokenStore,
    callbacks: FakeCallbacks,
    devices: FakeDevices,
    controller: Controller,
}

impl World {
    fn new() -> Self {
        Self {
            tokens: LocalTokenStore::new(Duration::from_secs(3600)),
            callbacks: FakeCallbacks::default(),
            devices: FakeDevices::default(),
            controller: Controller::default(),
        }
    }

    /// Sends the Download() Operate and lets the agent accept it, as every later step of the
    /// workflow finds it; the callback log starts empty afterwards.
    async fn download_accepted(&self) {
        let msg_id = self.send_download("tok-op").await;
        let resp =
            wme_usp::operate_resp_accepted(&msg_id, DOWNLOAD, "Device.LocalAgent.Request.1.");
        let outcome = self.agent_sends(&resp).await.unwrap();
        assert_eq!(outcome, completed(WaitKind::OperateResp, true));
        assert_eq!(self.callbacks.take().len(), 1);
    }

    /// Sends the Download() Operate for JOB, registering `token` for its OperateResp; returns
    /// the Operate's msg_id.
    async fn send_download(&self, token: &str) -> String {
        let ports = SendCommandPorts {
            tokens: &self.tokens,
            devices: &self.devices,
            artifacts: &FakeArtifacts,
        };
        let input = SendCommandInput {
            thing_name: THING.into(),
            job_id: JOB.into(),
            firmware_version: "1.2.3".into(),
            task_token: token.into(),
            image_path: None,
        };
        let sent = send_usp_command(&ports, &self.controller, &input)
            .await
            .unwrap();
        sent.msg_id
    }

    async fn await_event(&self, kind: WaitKind, token: &str) -> AwaitEventOutput {
        let input = AwaitEventInput {
            thing_name: THING.into(),
            job_id: JOB.into(),
            event: kind.as_str().into(),
            task_token: token.into(),
        };
        await_device_event(&self.tokens, &self.callbacks, &input)
            .await
            .unwrap()
    }

    async fn deliver(
        &self,
        topic: &str,
        payload: &[u8],
    ) -> Result<MessageOutcome, DeviceMessageError> {
        let ports = DeviceMessagePorts {
            tokens: &self.tokens,
            callbacks: &self.callbacks,
            devices: &self.devices,
        };
        handle_device_message(&ports, &self.controller, topic, payload).await
    }

    /// Delivers `msg` as the agent's Record on its controller topic.
    async fn agent_sends(&self, msg: &Msg) -> Result<MessageOutcome, DeviceMessageError> {
        self.deliver(TOPIC, &wme_usp::encode_msg_record(AGENT, CONTROLLER, msg))
            .await
    }
}

fn key(kind: WaitKind) -> WaitKey {
    WaitKey::new(THING, JOB, kind)
}

fn completed(kind: WaitKind, success: bool) -> MessageOutcome {
    MessageOutcome::Completed {
        key: key(kind),
        success,
    }
}

fn transfer_complete(command_key: &str, fault_code: u32, fault_string: &str) -> TransferComplete {
    TransferComplete {
        command: DOWNLOAD.into(),
        command_key: command_key.into(),
        requestor: CONTROLLER.into(),
        transfer_type: "Download".into(),
        affected: "Device.DeviceInfo.FirmwareImage.2.".into(),
        transfer_url: "http://127.0.0.1:8080/firmware/1.2.3.bin".into(),
        start_time: "2025-01-01T00:00:00Z".into(),
        complete_time: "2025-01-01T00:00:30Z".into(),
        fault_code,
        fault_string: fault_string.into(),
    }
}

fn transfer_ok() -> Msg {
    wme_usp::notify_transfer_complete("n-1", "sub-tc", false, &transfer_complete(JOB, 0, ""))
}

fn transfer_ok_output() -> Value {
    json!({
        "transferUrl": "http://127.0.0.1:8080/firmware/1.2.3.bin",
        "affected": "Device.DeviceInfo.FirmwareImage.2.",
        "startTime": "2025-01-01T00:00:00Z",
        "completeTime": "2025-01-01T00:00:30Z"
    })
}

fn boot_event(command_key: &str, parameter_map: &str) -> Boot {
    Boot {
        command_key: command_key.into(),
        cause: "LocalReboot".into(),
        firmware_updated: true,
        parameter_map: parameter_map.into(),
    }
}

/// The Records the controller published, decoded: topic, ResponseTopic, to_id and view.
fn decode_published(message: &Outbound) -> (String, Option<String>, String, View) {
    let record = wme_usp::decode_record(&message.payload).expect("the controller sends a Record");
    assert_eq!(record.from_id, CONTROLLER);
    let to_id = record.to_id.clone();
    let msg = record.into_msg().expect("a Msg record");
    let view = wme_usp::view(&msg).expect("a well-formed Msg");
    (
        message.topic.clone(),
        message.response_topic.clone(),
        to_id,
        view,
    )
}

#[tokio::test]
async fn accepted_operate_resp_completes_the_send_download_token() {
    let world = World::new();
    let msg_id = world.send_download("tok-op").await;

    let published = world.devices.published();
    assert_eq!(published.len(), 1);
    let (topic, response_topic, to_id, view) = decode_published(&published[0]);
    assert_eq!(topic, "usp/v1/agent/sim-0001");
    assert_eq!(response_topic.as_deref(), Some(TOPIC));
    assert_eq!(to_id, AGENT);
    let View::Operate(operate) = view else {
        panic!("expected an Operate, got {view:?}")
    };
    assert_eq!(operate.msg_id, msg_id);
    assert_eq!(operate.command_key, JOB);
    assert!(operate.send_resp);
    let download = FirmwareDownload::from_operate(&operate).unwrap();
    let expected = FirmwareDownload {
        obj_path: "Device.DeviceInfo.FirmwareImage.2.".into(),
        url: "http://127.0.0.1:8080/firmware/1.2.3.bin".into(),
        auto_activate: true,
        username: Some("device".into()),
        password: Some("s3cret".into()),
        file_size: Some(65_536),
        checksum_algorithm: Some("SHA-256".into()),
        checksum: Some(SHA256.into()),
    };
    assert_eq!(download, expected);

    let resp = wme_usp::operate_resp_accepted(&msg_id, DOWNLOAD, "Device.LocalAgent.Request.1.");
    let outcome = world.agent_sends(&resp).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::OperateResp, true));
    let output = json!({"executedCommand": DOWNLOAD, "reqObjPath": "Device.LocalAgent.Request.1."});
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Success("tok-op".into(), output)]
    );
}

#[tokio::test]
async fn refused_operate_fails_the_token_with_usp_operate_failed() {
    let world = World::new();
    let msg_id = world.send_download("tok-op").await;

    let resp = wme_usp::operate_resp_failure(&msg_id, DOWNLOAD, 7004, "busy");
    let outcome = world.agent_sends(&resp).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::OperateResp, false));
    let cause = json!({"executedCommand": DOWNLOAD, "errCode": 7004, "errMsg": "busy"});
    let failure = Callback::Failure("tok-op".into(), "Usp.OperateFailed".into(), cause);
    assert_eq!(world.callbacks.calls(), [failure]);
}

#[tokio::test]
async fn top_level_error_fails_the_token_with_usp_error() {
    let world = World::new();
    let msg_id = world.send_download("tok-op").await;

    let outcome = world
        .agent_sends(&wme_usp::error(&msg_id, 7000, "message failed"))
        .await
        .unwrap();

    assert_eq!(outcome, completed(WaitKind::OperateResp, false));
    let cause = json!({"errCode": 7000, "errMsg": "message failed"});
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Failure(
            "tok-op".into(),
            "Usp.Error".into(),
            cause
        )]
    );
}

#[tokio::test]
async fn transfer_complete_with_a_fault_fails_the_token_with_usp_transfer_failed() {
    let world = World::new();
    world.download_accepted().await;
    assert_eq!(
        world
            .await_event(WaitKind::TransferComplete, "tok-tc")
            .await,
        AwaitEventOutput { waiting: true }
    );

    let event = transfer_complete(JOB, 7106, "unsupported image format");
    let notify = wme_usp::notify_transfer_complete("n-1", "sub-tc", false, &event);
    let outcome = world.agent_sends(&notify).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::TransferComplete, false));
    let cause = json!({"faultCode": 7106, "faultString": "unsupported image format"});
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Failure(
            "tok-tc".into(),
            "Usp.TransferFailed".into(),
            cause
        )]
    );
}

#[tokio::test]
async fn successful_transfer_complete_succeeds_the_waiting_token() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;

    let outcome = world.agent_sends(&transfer_ok()).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::TransferComplete, true));
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Success("tok-tc".into(), transfer_ok_output())]
    );
}

#[tokio::test]
async fn failed_operation_complete_fails_the_token_with_usp_operation_failed() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::OperationComplete, "tok-oc")
        .await;

    let event = OperComplete {
        obj_path: "Device.DeviceInfo.FirmwareImage.2.".into(),
        command_name: "Download()".into(),
        command_key: JOB.into(),
        result: Err(CommandFailure {
            err_code: 7002,
            err_msg: "image corrupt".into(),
        }),
    };
    let notify = wme_usp::notify_oper_complete("n-2", "sub-oc", false, &event);
    let outcome = world.agent_sends(&notify).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::OperationComplete, false));
    let cause = json!({"errCode": 7002, "errMsg": "image corrupt"});
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Failure(
            "tok-oc".into(),
            "Usp.OperationFailed".into(),
            cause
        )]
    );
}

#[tokio::test]
async fn boot_reports_the_software_version_from_its_parameter_map() {
    let world = World::new();
    world.download_accepted().await;
    world.await_event(WaitKind::Boot, "tok-boot").await;

    let params = json!({"Device.DeviceInfo.SoftwareVersion": "1.2.3"}).to_string();
    let notify = wme_usp::notify_boot("n-3", "sub-boot", false, &boot_event(JOB, &params));
    let outcome = world.agent_sends(&notify).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::Boot, true));
    let output =
        json!({"firmwareUpdated": true, "firmwareVersion": "1.2.3", "cause": "LocalReboot"});
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Success("tok-boot".into(), output)]
    );
}

#[tokio::test]
async fn boot_without_a_command_key_is_ignored() {
    let world = World::new();
    world.download_accepted().await;
    world.await_event(WaitKind::Boot, "tok-boot").await;

    let notify = wme_usp::notify_boot("n-3", "sub-boot", false, &boot_event("", "{}"));
    let outcome = world.agent_sends(&notify).await.unwrap();

    let ignored = MessageOutcome::Ignored {
        thing_name: THING.into(),
        what: "message".into(),
    };
    assert_eq!(outcome, ignored);
    assert!(world.callbacks.calls().is_empty());
}

#[tokio::test]
async fn event_before_its_waiter_is_buffered_and_completes_the_waiter_at_once() {
    let world = World::new();
    world.download_accepted().await;

    let outcome = world.agent_sends(&transfer_ok()).await.unwrap();
    assert_eq!(
        outcome,
        MessageOutcome::Buffered {
            key: key(WaitKind::TransferComplete)
        }
    );
    assert!(world.callbacks.calls().is_empty());

    let registered = world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;

    assert_eq!(registered, AwaitEventOutput { waiting: false });
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Success("tok-tc".into(), transfer_ok_output())]
    );
}

#[tokio::test]
async fn duplicate_event_is_refused_and_completes_nothing_twice() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;
    world.agent_sends(&transfer_ok()).await.unwrap();

    let error = world.agent_sends(&transfer_ok()).await.unwrap_err();

    assert!(
        matches!(&error, DeviceMessageError::Duplicate { key: k } if *k == key(WaitKind::TransferComplete)),
        "{error:?}"
    );
    assert_eq!(error.reason(), "duplicate");
    assert_eq!(
        error.to_string(),
        "sim-0001/job-1/TransferComplete: duplicate notification"
    );
    assert_eq!(world.callbacks.calls().len(), 1);
}

#[tokio::test]
async fn event_for_an_unknown_command_key_is_refused() {
    let world = World::new();
    world.download_accepted().await;

    let notify =
        wme_usp::notify_transfer_complete("n-1", "s", false, &transfer_complete("job-9", 0, ""));
    let error = world.agent_sends(&notify).await.unwrap_err();

    let expected = WaitKey::new(THING, "job-9", WaitKind::TransferComplete);
    assert!(
        matches!(&error, DeviceMessageError::UnknownCommand { key } if *key == expected),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "sim-0001/job-9/TransferComplete: no such command was sent to this device"
    );
    assert!(world.callbacks.calls().is_empty());
}

#[tokio::test]
async fn operate_resp_to_a_msg_id_the_controller_never_used_is_an_unknown_command() {
    let world = World::new();
    world.download_accepted().await;

    let resp =
        wme_usp::operate_resp_accepted("someone-else-1", DOWNLOAD, "Device.LocalAgent.Request.1.");
    let error = world.agent_sends(&resp).await.unwrap_err();

    let expected = WaitKey::new(THING, "someone-else-1", WaitKind::OperateResp);
    assert!(
        matches!(&error, DeviceMessageError::UnknownCommand { key } if *key == expected),
        "{error:?}"
    );
    assert!(world.callbacks.calls().is_empty());
}

#[tokio::test]
async fn event_after_its_wait_timed_out_is_late() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;
    world
        .callbacks
        .tasks_timed_out
        .store(true, Ordering::SeqCst);

    let error = world.agent_sends(&transfer_ok()).await.unwrap_err();

    assert!(
        matches!(&error, DeviceMessageError::Late { key: k } if *k == key(WaitKind::TransferComplete)),
        "{error:?}"
    );
    assert_eq!(error.reason(), "after_wait_ended");
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Success("tok-tc".into(), transfer_ok_output())]
    );
}

#[tokio::test]
async fn malformed_bytes_are_refused_as_malformed() {
    let world = World::new();

    let error = world
        .deliver(TOPIC, b"\xff\xff\xff not a record")
        .await
        .unwrap_err();

    match &error {
        DeviceMessageError::Malformed {
            thing_name,
            error: UspError::MalformedRecord(_),
        } => {
            assert_eq!(thing_name, THING)
        }
        other => panic!("expected Malformed(MalformedRecord), got {other:?}"),
    }
    assert_eq!(error.reason(), "malformed");
    assert!(world.callbacks.calls().is_empty());
}

#[tokio::test]
async fn record_for_another_controller_is_refused() {
    let world = World::new();
    world.download_accepted().await;

    let payload = wme_usp::encode_msg_record(AGENT, "self::other-controller", &transfer_ok());
    let error = world.deliver(TOPIC, &payload).await.unwrap_err();

    match &error {
        DeviceMessageError::NotForController { thing_name, to_id } => {
            assert_eq!(
                (thing_name.as_str(), to_id.as_str()),
                (THING, "self::other-controller")
            )
        }
        other => panic!("expected NotForController, got {other:?}"),
    }
    assert!(world.callbacks.calls().is_empty());
}

#[tokio::test]
async fn record_from_another_agent_on_this_things_topic_is_refused() {
    let world = World::new();
    world.download_accepted().await;

    let payload = wme_usp::encode_msg_record("self::sim-0002", CONTROLLER, &transfer_ok());
    let error = world.deliver(TOPIC, &payload).await.unwrap_err();

    match &error {
        DeviceMessageError::EndpointMismatch {
            thing_name,
            from_id,
            expected,
        } => {
            assert_eq!(thing_name, THING);
            assert_eq!(from_id, "self::sim-0002");
            assert_eq!(expected, AGENT);
        }
        other => panic!("expected EndpointMismatch, got {other:?}"),
    }
    assert_eq!(error.reason(), "wrong_from_id");
    assert!(world.callbacks.calls().is_empty());
}

#[tokio::test]
async fn record_on_a_topic_that_is_not_a_controller_topic_is_refused() {
    let world = World::new();
    let payload = wme_usp::encode_msg_record(AGENT, CONTROLLER, &transfer_ok());

    for topic in [
        "usp/v1/agent/sim-0001",
        "usp/v1/controller/sim-0001/extra",
        "usp/v1/controller/",
    ] {
        let error = world.deliver(topic, &payload).await.unwrap_err();
        assert!(
            matches!(&error, DeviceMessageError::UnexpectedTopic(t) if t == topic),
            "{topic}: {error:?}"
        );
    }
    assert!(world.callbacks.calls().is_empty());
}

#[tokio::test]
async fn notify_asking_for_a_response_gets_a_notify_resp() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;

    let event = transfer_complete(JOB, 0, "");
    let notify = wme_usp::notify_transfer_complete("n-42", "sub-tc", true, &event);
    let outcome = world.agent_sends(&notify).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::TransferComplete, true));
    let published = world.devices.published();
    assert_eq!(published.len(), 2, "the Operate and the NotifyResp");
    let (topic, response_topic, to_id, view) = decode_published(&published[1]);
    assert_eq!(topic, "usp/v1/agent/sim-0001");
    assert_eq!(response_topic.as_deref(), Some(TOPIC));
    assert_eq!(to_id, AGENT);
    assert_eq!(
        view,
        View::NotifyResp {
            msg_id: "n-42".into(),
            subscription_id: "sub-tc".into()
        }
    );
}

#[tokio::test]
async fn notify_without_send_resp_gets_no_response() {
    let world = World::new();
    world.download_accepted().await;

    world.agent_sends(&transfer_ok()).await.unwrap();

    assert_eq!(world.devices.published().len(), 1, "only the Operate");
}

#[tokio::test]
async fn an_event_heartbeats_the_other_tasks_waiting_on_the_same_command() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;
    world
        .await_event(WaitKind::OperationComplete, "tok-oc")
        .await;
    world.await_event(WaitKind::Boot, "tok-boot").await;

    world.agent_sends(&transfer_ok()).await.unwrap();

    assert_eq!(
        world.callbacks.calls(),
        [
            Callback::Success("tok-tc".into(), transfer_ok_output()),
            Callback::Heartbeat("tok-oc".into()),
            Callback::Heartbeat("tok-boot".into()),
        ]
    );
}

#[tokio::test]
async fn mqtt_311_agent_is_addressed_with_the_reply_to_topic_suffix() {
    let world = World::new();
    let connect = wme_usp::encode_mqtt_connect_record(
        AGENT,
        CONTROLLER,
        MqttVersion::V3_1_1,
        "usp/v1/agent/sim-0001/#",
    );

    let outcome = world.deliver(TOPIC, &connect).await.unwrap();
    assert_eq!(
        outcome,
        MessageOutcome::AgentConnected {
            thing_name: THING.into(),
            endpoint_id: AGENT.into()
        }
    );
    world.send_download("tok-op").await;

    let published = world.devices.published();
    assert_eq!(published.len(), 1);
    let (topic, response_topic, to_id, _) = decode_published(&published[0]);
    assert_eq!(
        topic,
        "usp/v1/agent/sim-0001/reply-to=usp%2Fv1%2Fcontroller%2Fsim-0001"
    );
    assert_eq!(response_topic, None);
    assert_eq!(to_id, AGENT);
}

#[tokio::test]
async fn boot_with_a_parameter_map_that_is_not_json_is_malformed() {
    let world = World::new();
    world.download_accepted().await;
    world.await_event(WaitKind::Boot, "tok-boot").await;

    let notify = wme_usp::notify_boot("n-3", "sub-boot", false, &boot_event(JOB, "not json"));
    let error = world.agent_sends(&notify).await.unwrap_err();

    match &error {
        DeviceMessageError::Malformed {
            thing_name,
            error: UspError::InvalidParameterMap { json, .. },
        } => {
            assert_eq!((thing_name.as_str(), json.as_str()), (THING, "not json"))
        }
        other => panic!("expected Malformed(InvalidParameterMap), got {other:?}"),
    }
    assert!(
        world.callbacks.calls().is_empty(),
        "the Boot wait is left to time out"
    );
}

#[tokio::test]
async fn operate_resp_without_results_fails_the_token_as_invalid() {
    let world = World::new();
    let msg_id = world.send_download("tok-op").await;
    let mut resp =
        wme_usp::operate_resp_accepted(&msg_id, DOWNLOAD, "Device.LocalAgent.Request.1.");
    strip_operation_results(&mut resp);

    let outcome = world.agent_sends(&resp).await.unwrap();

    assert_eq!(outcome, completed(WaitKind::OperateResp, false));
    let cause = json!({"reason": "OperateResp has no result"});
    assert_eq!(
        world.callbacks.calls(),
        [Callback::Failure(
            "tok-op".into(),
            "Usp.InvalidOperateResp".into(),
            cause
        )]
    );
}

fn strip_operation_results(msg: &mut Msg) {
    use wme_usp::pb::msg::body::MsgBody;
    use wme_usp::pb::msg::response::RespType;
    let body = msg.body.as_mut().and_then(|b| b.msg_body.as_mut());
    let Some(MsgBody::Response(resp)) = body else {
        panic!("a response")
    };
    let Some(RespType::OperateResp(operate_resp)) = resp.resp_type.as_mut() else {
        panic!("an OperateResp")
    };
    operate_resp.operation_results.clear();
}

#[tokio::test]
async fn failed_callback_is_reported_with_the_engines_answer() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;
    world
        .callbacks
        .unavailable_once
        .store(true, Ordering::SeqCst);

    let error = world.agent_sends(&transfer_ok()).await.unwrap_err();

    match &error {
        DeviceMessageError::Callback {
            key: k,
            error: CallbackError::Unavailable(_),
        } => {
            assert_eq!(*k, key(WaitKind::TransferComplete))
        }
        other => panic!("expected Callback(Unavailable), got {other:?}"),
    }
    assert_eq!(error.reason(), "callback");
}

#[tokio::test]
async fn redelivered_event_completes_the_token_after_a_failed_callback() {
    let world = World::new();
    world.download_accepted().await;
    world
        .await_event(WaitKind::TransferComplete, "tok-tc")
        .await;
    world
        .callbacks
        .unavailable_once
        .store(true, Ordering::SeqCst);
    world.agent_sends(&transfer_ok()).await.unwrap_err();

    let redelivered = world.agent_sends(&transfer_ok()).await;

    assert_eq!(
        redelivered.unwrap(),
        completed(WaitKind::TransferComplete, true)
    );
}
