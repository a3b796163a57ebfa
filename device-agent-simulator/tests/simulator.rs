//! End-to-end tests: simulated agents on a real broker download real files from a real HTTP
//! server, driven by a test controller over MQTT.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use chrono::DateTime;
use device_agent_simulator::{
    AgentSpec, Behaviour, MqttVersion, Phase, SimError, Simulator, SimulatorConfig, codes,
};
use support::*;
use tokio::time::Instant;
use wme_usp::pb::msg::{self as pbm, header::MsgType, request::ReqType};
use wme_usp::{
    CommandFailure, OperationOutcome, OperationResult, RecordPayload, TransferComplete, View,
};

fn agent(thing: &str, behaviour: Behaviour) -> AgentSpec {
    AgentSpec::new(thing, behaviour, "1.2.1")
}

fn accepted(msg_id: &str, request: u32) -> View {
    View::OperateResp {
        msg_id: msg_id.to_owned(),
        results: vec![OperationResult {
            executed_command: DOWNLOAD_2.to_owned(),
            outcome: OperationOutcome::Accepted {
                req_obj_path: format!("Device.LocalAgent.Request.{request}."),
            },
        }],
    }
}

/// Takes the next message and checks it is the accepted OperateResp on the reply topic.
async fn expect_accepted(h: &mut Harness, msg_id: &str) {
    let resp = h.controller.next().await;
    assert_eq!(resp.topic, REPLY_TOPIC);
    assert_eq!(resp.record.from_id, "self::sim-0001");
    assert_eq!(resp.record.to_id, CONTROLLER_ID);
    assert_eq!(resp.view(), accepted(msg_id, 1));
}

async fn expect_transfer_complete(h: &mut Harness) -> TransferComplete {
    let r = h.controller.next().await;
    assert_eq!(r.topic, "usp/v1/controller/sim-0001");
    assert_eq!(r.response_topic.as_deref(), Some("usp/v1/agent/sim-0001"));
    let View::TransferComplete(n) = r.view() else {
        panic!("expected TransferComplete!, got {:?}", r.view());
    };
    assert!(n.send_resp);
    assert_eq!(n.msg_id, "sim-0001-request-1-transfer-complete");
    let start = DateTime::parse_from_rfc3339(&n.body.start_time).expect("StartTime is RFC 3339");
    let end =
        DateTime::parse_from_rfc3339(&n.body.complete_time).expect("CompleteTime is RFC 3339");
    assert!(
        start <= end,
        "{} > {}",
        n.body.start_time,
        n.body.complete_time
    );
    n.body
}

fn expected_transfer(
    url: &str,
    fault_code: u32,
    fault_string: &str,
    tc: &TransferComplete,
) -> TransferComplete {
    TransferComplete {
        command: DOWNLOAD_2.to_owned(),
        command_key: "ck-1".to_owned(),
        requestor: CONTROLLER_ID.to_owned(),
        transfer_type: "Download".to_owned(),
        affected: IMAGE_2.to_owned(),
        transfer_url: url.to_owned(),
        start_time: tc.start_time.clone(),
        complete_time: tc.complete_time.clone(),
        fault_code,
        fault_string: fault_string.to_owned(),
    }
}

async fn expect_oper_complete(h: &mut Harness) -> Result<HashMap<String, String>, CommandFailure> {
    let r = h.controller.next().await;
    assert_eq!(r.topic, "usp/v1/controller/sim-0001");
    let View::OperComplete(n) = r.view() else {
        panic!("expected OperationComplete, got {:?}", r.view());
    };
    assert!(n.send_resp);
    assert_eq!(n.body.obj_path, IMAGE_2);
    assert_eq!(n.body.command_name, "Download()");
    assert_eq!(n.body.command_key, "ck-1");
    n.body.result
}

async fn expect_connect_record(h: &mut Harness, version: MqttVersion, subscribed: &str) {
    let r = h.controller.next().await;
    let expected_topic = match version {
        MqttVersion::V5 => "usp/v1/controller/sim-0001".to_string(),
        MqttVersion::V3_1_1 => {
            wme_usp::topic_with_reply_to("usp/v1/controller/sim-0001", "usp/v1/agent/sim-0001")
        }
    };
    assert_eq!(r.topic, expected_topic);
    assert_eq!(
        (r.record.from_id.as_str(), r.record.to_id.as_str()),
        ("self::sim-0001", CONTROLLER_ID)
    );
    assert_eq!(r.record.version, "1.3");
    assert_eq!(
        r.record.payload,
        RecordPayload::MqttConnect {
            version,
            subscribed_topic: subscribed.to_owned()
        }
    );
}

async fn expect_boot(h: &mut Harness) -> wme_usp::Boot {
    let r = h.controller.next().await;
    assert_eq!(r.topic, "usp/v1/controller/sim-0001");
    let View::Boot(n) = r.view() else {
        panic!("expected Boot!, got {:?}", r.view());
    };
    assert!(n.send_resp);
    n.body
}

#[tokio::test]
async fn an_ok_agent_downloads_reports_reboots_and_runs_the_new_version() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;
    let url = h.files.url("fw/1.2.3.bin");
    let image = h.files.image("1.2.3.bin");

    let sent_at = Instant::now();
    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &download(&url, &image, true))
        .await;

    expect_accepted(&mut h, "msg-1").await;
    let tc = expect_transfer_complete(&mut h).await;
    assert!(sent_at.elapsed() >= DELAYS.transfer);
    assert_eq!(tc, expected_transfer(&url, 0, "", &tc));
    let resp = wme_usp::notify_resp(
        "sim-0001-request-1-transfer-complete",
        "wme-sim-transfer-complete",
    );
    h.controller.send("sim-0001", &resp).await;

    assert_eq!(expect_oper_complete(&mut h).await, Ok(HashMap::new()));
    assert!(sent_at.elapsed() >= DELAYS.oper_complete);

    expect_connect_record(&mut h, MqttVersion::V5, "usp/v1/agent/sim-0001").await;
    let boot = expect_boot(&mut h).await;
    assert!(sent_at.elapsed() >= DELAYS.boot);
    assert_eq!(boot.command_key, "ck-1");
    assert_eq!(boot.cause, "RemoteReboot");
    assert!(boot.firmware_updated);
    assert_eq!(
        boot.parameter_map,
        r#"{"Device.DeviceInfo.SoftwareVersion":"1.2.3"}"#
    );

    let status = h
        .wait_for_status("sim-0001", |s| s.phase == Phase::Idle)
        .await;
    assert_eq!(status.firmware_version, "1.2.3");
    assert!(status.connected);
    assert_eq!(
        h.connection_events("sim-0001"),
        vec!["connected", "disconnected: client_disconnect", "connected"]
    );
    assert!(
        h.controller.pending().is_empty(),
        "the NotifyResp got no answer"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_download_404_agent_reports_the_real_http_404_as_fault_9016() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Download404)])
        .await;
    let url = h.files.url("fw/1.2.3.bin");
    let image = h.files.image("1.2.3.bin");

    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &download(&url, &image, true))
        .await;

    expect_accepted(&mut h, "msg-1").await;
    let missing = format!("{url}.missing");
    let fault = format!("http 404 not found for {missing}");
    let tc = expect_transfer_complete(&mut h).await;
    assert_eq!(tc, expected_transfer(&missing, 9016, &fault, &tc));
    assert_eq!(
        expect_oper_complete(&mut h).await,
        Err(CommandFailure {
            err_code: codes::COMMAND_FAILURE,
            err_msg: fault
        })
    );
    let status = h
        .wait_for_status("sim-0001", |s| s.phase == Phase::Idle)
        .await;
    assert_eq!(status.firmware_version, "1.2.1");
    assert!(status.connected, "no reboot after a failed download");
    h.stop().await;
}

#[tokio::test]
async fn a_bad_checksum_agent_reports_fault_9018_with_both_checksums() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::BadChecksum)])
        .await;
    let url = h.files.url("fw/1.2.3.bin");
    let image = h.files.image("1.2.3.bin");
    let mut corrupted = image.clone();
    corrupted[0] ^= 1;

    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &download(&url, &image, true))
        .await;

    expect_accepted(&mut h, "msg-1").await;
    let fault = format!(
        "checksum mismatch: expected {}, got {}",
        sha256_hex(&image),
        sha256_hex(&corrupted)
    );
    let tc = expect_transfer_complete(&mut h).await;
    assert_eq!(tc, expected_transfer(&url, 9018, &fault, &tc));
    assert_eq!(
        expect_oper_complete(&mut h).await,
        Err(CommandFailure {
            err_code: 7022,
            err_msg: fault
        })
    );
    let status = h
        .wait_for_status("sim-0001", |s| s.phase == Phase::Idle)
        .await;
    assert_eq!(status.firmware_version, "1.2.1");
    h.stop().await;
}

#[tokio::test]
async fn a_boot_fails_agent_boots_back_into_the_old_version_and_says_so() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::BootFails)])
        .await;
    let url = h.files.url("fw/1.2.3.bin");
    let image = h.files.image("1.2.3.bin");

    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &download(&url, &image, true))
        .await;

    expect_accepted(&mut h, "msg-1").await;
    let tc = expect_transfer_complete(&mut h).await;
    assert_eq!(tc.fault_code, 0);
    assert_eq!(expect_oper_complete(&mut h).await, Ok(HashMap::new()));
    expect_connect_record(&mut h, MqttVersion::V5, "usp/v1/agent/sim-0001").await;
    let boot = expect_boot(&mut h).await;
    assert!(!boot.firmware_updated);
    assert_eq!(boot.cause, "RemoteReboot");
    assert_eq!(boot.command_key, "ck-1");
    assert_eq!(
        boot.parameter_map,
        r#"{"Device.DeviceInfo.SoftwareVersion":"1.2.1"}"#
    );
    assert!(boot.parameters().is_ok(), "ParameterMap is a JSON object");
    let status = h
        .wait_for_status("sim-0001", |s| s.phase == Phase::Idle)
        .await;
    assert_eq!(status.firmware_version, "1.2.1");
    h.stop().await;
}

#[tokio::test]
async fn a_silent_agent_accepts_the_download_then_never_reports() {
    let mut h = Harness::start().await;
    h.simulate(vec![
        agent("sim-0001", Behaviour::Silent),
        agent("sim-0002", Behaviour::Ok),
    ])
    .await;
    let url = h.files.url("fw/1.2.3.bin");
    let image = h.files.image("1.2.3.bin");

    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &download(&url, &image, true))
        .await;
    expect_accepted(&mut h, "msg-1").await;
    // The ok agent is the clock: once it has booted, the silent one has had every delay.
    h.controller
        .send_download("sim-0002", "msg-2", "ck-2", &download(&url, &image, true))
        .await;
    let mut from_silent = Vec::new();
    loop {
        let r = h.controller.next().await;
        let is_msg = matches!(r.record.payload, RecordPayload::Msg(_));
        let booted = is_msg && matches!(r.view(), View::Boot(_));
        if r.record.from_id == "self::sim-0001" {
            from_silent.push(r);
        } else if booted {
            break;
        }
    }
    assert!(from_silent.is_empty(), "silent agent sent {from_silent:?}");
    let status = h.status("sim-0001");
    assert_eq!(
        (status.phase, status.firmware_version.as_str()),
        (Phase::Downloading, "1.2.1")
    );
    h.stop().await;
}

#[tokio::test]
async fn an_offline_agent_never_connects() {
    let mut h = Harness::start().await;
    h.simulate(vec![
        agent("sim-0001", Behaviour::Ok),
        agent("sim-0002", Behaviour::Offline),
    ])
    .await;

    let offline = h.status("sim-0002");
    assert!(!offline.connected);
    assert_eq!(offline.phase, Phase::Offline);
    assert!(h.status("sim-0001").connected);
    assert_eq!(
        h.broker.connected_clients(),
        vec!["sim-0001", "test-controller"]
    );
    assert_eq!(h.sim().connected(), 1);
    h.stop().await;
}

fn get_request(msg_id: &str) -> wme_usp::Msg {
    pbm::Msg {
        header: Some(pbm::Header {
            msg_id: msg_id.to_owned(),
            msg_type: MsgType::Get.into(),
        }),
        body: Some(pbm::Body {
            msg_body: Some(pbm::body::MsgBody::Request(pbm::Request {
                req_type: Some(ReqType::Get(pbm::Get {
                    param_paths: vec!["Device.DeviceInfo.".to_owned()],
                    max_depth: 0,
                })),
            })),
        }),
    }
}

fn not_supported(msg_id: &str) -> View {
    View::Error {
        msg_id: msg_id.to_owned(),
        err_code: codes::MESSAGE_NOT_SUPPORTED,
        err_msg: "message get is not supported; this agent handles operate and notify_resp"
            .to_owned(),
    }
}

#[tokio::test]
async fn an_unsupported_message_is_answered_with_error_7001() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;

    h.controller.send("sim-0001", &get_request("get-1")).await;

    let r = h.controller.next().await;
    assert_eq!(r.topic, REPLY_TOPIC);
    assert_eq!(r.view(), not_supported("get-1"));
    h.stop().await;
}

#[tokio::test]
async fn a_record_for_another_endpoint_is_ignored() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;
    let dl = download(
        &h.files.url("fw/1.2.3.bin"),
        &h.files.image("1.2.3.bin"),
        true,
    );
    let foreign = wme_usp::encode_msg_record(
        CONTROLLER_ID,
        "self::sim-9999",
        &wme_usp::operate_download("msg-x", "ck-x", &dl),
    );

    h.controller
        .publish("usp/v1/agent/sim-0001", foreign, Some(REPLY_TOPIC))
        .await;
    h.controller.send("sim-0001", &get_request("get-1")).await;

    // Messages from one publisher arrive in order, so the answer to the Get comes first only
    // if the foreign Operate was dropped.
    assert_eq!(h.controller.next().await.view(), not_supported("get-1"));
    assert_eq!(h.status("sim-0001").phase, Phase::Idle);
    h.stop().await;
}

#[tokio::test]
async fn garbage_bytes_do_not_stop_the_agent() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;

    let garbage = vec![0xFF, 0x00, 0x13, 0x37, 0xDE, 0xAD, 0xBE, 0xEF];
    h.controller
        .publish("usp/v1/agent/sim-0001", garbage, Some(REPLY_TOPIC))
        .await;
    h.controller
        .publish("usp/v1/agent/sim-0001", Vec::new(), Some(REPLY_TOPIC))
        .await;
    h.controller.send("sim-0001", &get_request("get-1")).await;

    assert_eq!(h.controller.next().await.view(), not_supported("get-1"));
    assert!(h.status("sim-0001").connected);
    h.stop().await;
}

#[tokio::test]
async fn an_unknown_command_gets_an_operate_failure_with_7026() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;
    let reboot = pbm::Msg {
        header: Some(pbm::Header {
            msg_id: "op-1".into(),
            msg_type: MsgType::Operate.into(),
        }),
        body: Some(pbm::Body {
            msg_body: Some(pbm::body::MsgBody::Request(pbm::Request {
                req_type: Some(ReqType::Operate(pbm::Operate {
                    command: "Device.Reboot()".into(),
                    command_key: "ck".into(),
                    send_resp: true,
                    input_args: Default::default(),
                })),
            })),
        }),
    };

    h.controller.send("sim-0001", &reboot).await;

    let r = h.controller.next().await;
    let View::OperateResp { msg_id, results } = r.view() else {
        panic!("expected an OperateResp, got {:?}", r.view());
    };
    assert_eq!(msg_id, "op-1");
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].executed_command, "Device.Reboot()");
    let OperationOutcome::Failed(failure) = &results[0].outcome else {
        panic!("expected a failure, got {:?}", results[0].outcome);
    };
    assert_eq!(failure.err_code, codes::INVALID_PATH);
    assert!(
        failure
            .err_msg
            .starts_with("unsupported command \"Device.Reboot()\""),
        "{}",
        failure.err_msg
    );
    h.stop().await;
}

#[tokio::test]
async fn a_second_download_while_one_runs_is_denied() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;
    let dl = download(
        &h.files.url("fw/1.2.3.bin"),
        &h.files.image("1.2.3.bin"),
        false,
    );

    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &dl)
        .await;
    h.controller
        .send_download("sim-0001", "msg-2", "ck-2", &dl)
        .await;

    expect_accepted(&mut h, "msg-1").await;
    let r = h.controller.next().await;
    let View::OperateResp { msg_id, results } = r.view() else {
        panic!("expected an OperateResp, got {:?}", r.view());
    };
    assert_eq!(msg_id, "msg-2");
    assert_eq!(
        results[0].outcome,
        OperationOutcome::Failed(CommandFailure {
            err_code: codes::REQUEST_DENIED,
            err_msg: "a firmware download is already in progress".into()
        })
    );
    // Without AutoActivate the image is stored but the agent keeps running the old one.
    assert_eq!(expect_transfer_complete(&mut h).await.fault_code, 0);
    assert_eq!(expect_oper_complete(&mut h).await, Ok(HashMap::new()));
    let status = h
        .wait_for_status("sim-0001", |s| s.phase == Phase::Idle)
        .await;
    assert_eq!(status.firmware_version, "1.2.1");
    h.stop().await;
}

#[tokio::test]
async fn basic_auth_credentials_are_sent_and_a_wrong_password_is_fault_9019() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;
    let url = h.files.url("secure/1.2.3.bin");
    let mut dl = download(&url, &h.files.image("1.2.3.bin"), false);
    dl.username = Some("fw".into());
    dl.password = Some("wrong".into());

    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &dl)
        .await;

    expect_accepted(&mut h, "msg-1").await;
    let tc = expect_transfer_complete(&mut h).await;
    let fault = format!("http 401 unauthorized for {url}: authentication failed");
    assert_eq!(tc, expected_transfer(&url, 9019, &fault, &tc));
    expect_oper_complete(&mut h).await.unwrap_err();
    h.wait_for_status("sim-0001", |s| s.phase == Phase::Idle)
        .await;

    dl.password = Some("s3cret".into());
    h.controller
        .send_download("sim-0001", "msg-2", "ck-1", &dl)
        .await;
    let r = h.controller.next().await;
    assert_eq!(r.view(), accepted("msg-2", 2));
    let r = h.controller.next().await;
    let View::TransferComplete(n) = r.view() else {
        panic!("expected TransferComplete!, got {:?}", r.view());
    };
    assert_eq!((n.body.fault_code, n.body.fault_string.as_str()), (0, ""));
    h.stop().await;
}

#[tokio::test]
async fn a_file_without_the_firmware_header_is_an_invalid_image() {
    let mut h = Harness::start().await;
    h.simulate(vec![agent("sim-0001", Behaviour::Ok)]).await;
    let url = h.files.url("fw/plain.bin");
    let dl = download(&url, &h.files.image("plain.bin"), true);

    h.controller
        .send_download("sim-0001", "msg-1", "ck-1", &dl)
        .await;

    expect_accepted(&mut h, "msg-1").await;
    let tc = expect_transfer_complete(&mut h).await;
    let fault =
        "invalid firmware image: header \"#!/bin/sh\" does not start with \"WME-FIRMWARE \"";
    assert_eq!(tc, expected_transfer(&url, 9018, fault, &tc));
    h.stop().await;
}

#[tokio::test]
async fn an_mqtt_311_agent_answers_on_the_reply_to_topic_with_its_own_reply_to_suffix() {
    let mut h = Harness::start().await;
    let mut spec = agent("sim-0001", Behaviour::Ok);
    spec.mqtt_version = MqttVersion::V3_1_1;
    let sim = Simulator::start(h.config(vec![spec])).await.unwrap();
    sim.wait_connected(PATIENCE).await.unwrap();
    h.sim = Some(sim);
    expect_connect_record(&mut h, MqttVersion::V3_1_1, "usp/v1/agent/sim-0001/#").await;

    let reply_to = "usp/v1/controller/sim-0001";
    let topic = wme_usp::topic_with_reply_to("usp/v1/agent/sim-0001", reply_to);
    let record = wme_usp::encode_msg_record(CONTROLLER_ID, "self::sim-0001", &get_request("get-1"));
    h.controller.publish(&topic, record, None).await;

    let r = h.controller.next().await;
    assert_eq!(
        r.topic,
        wme_usp::topic_with_reply_to(reply_to, "usp/v1/agent/sim-0001")
    );
    assert_eq!(r.response_topic, None);
    assert_eq!(r.view(), not_supported("get-1"));
    assert_eq!(h.connection_events("sim-0001"), vec!["connected"],);
    h.stop().await;
}

#[tokio::test]
async fn shutdown_disconnects_every_agent() {
    let mut h = Harness::start().await;
    h.simulate(vec![
        agent("sim-0001", Behaviour::Ok),
        agent("sim-0002", Behaviour::BootFails),
    ])
    .await;

    let sim = h.sim.take().unwrap();
    sim.shutdown().await;

    let deadline = Instant::now() + PATIENCE;
    while h.broker.connected_clients() != vec!["test-controller"] {
        assert!(
            Instant::now() < deadline,
            "still connected: {:?}",
            h.broker.connected_clients()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let events = h.connection_events("sim-0002");
    assert_eq!(events, vec!["connected", "disconnected: client_disconnect"]);
    h.stop().await;
}

#[tokio::test]
async fn waiting_for_agents_without_a_broker_times_out_with_the_count() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let config = SimulatorConfig::new(closed, vec![agent("sim-0001", Behaviour::Ok)], DELAYS);
    let sim = Simulator::start(config).await.unwrap();

    let err = sim
        .wait_connected(Duration::from_millis(300))
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            SimError::ConnectTimeout {
                connected: 0,
                expected: 1,
                ..
            }
        ),
        "{err}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn an_invalid_config_is_refused_before_anything_starts() {
    let agents = vec![
        agent("sim-0001", Behaviour::Ok),
        agent("sim-0001", Behaviour::Ok),
    ];
    let config = SimulatorConfig::new("127.0.0.1:1".parse().unwrap(), agents, DELAYS);
    let err = Simulator::start(config).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid simulator config: thing name \"sim-0001\" is used by more than one agent"
    );
}
