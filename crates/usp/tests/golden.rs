//! Decodes Records written by an independent encoder (Python protobuf, see
//! `fixtures/README.md`) and checks every field, then checks that wme-usp's builders produce the
//! same message.
//!
//! Messages without maps are compared byte for byte. Messages with maps are compared after
//! decoding: protobuf leaves map entry order open (Python sorts keys its own way) and Python
//! writes empty map values that prost leaves out, both valid encodings of the same message.

use std::collections::HashMap;

use wme_usp::{
    Boot, CommandFailure, FirmwareDownload, MqttVersion, Notification, OperComplete,
    OperateRequest, OperationOutcome, OperationResult, RecordEnvelope, RecordPayload,
    TransferComplete, View, decode_record, encode_mqtt_connect_record, encode_msg_record, view,
};

const CONTROLLER: &str = "self::wme-controller";
const AGENT: &str = "os::012345-SIM0001";
const DOWNLOAD: &str = "Device.DeviceInfo.FirmwareImage.2.Download()";
const IMAGE: &str = "Device.DeviceInfo.FirmwareImage.2.";

/// Decodes a golden Record carrying a Msg, checks its envelope, and returns the Msg's view
/// together with the Msg itself.
fn decode_golden(bytes: &[u8], from_id: &str, to_id: &str) -> (View, wme_usp::Msg) {
    let envelope = decode_record(bytes).expect("golden record decodes");
    assert_eq!(envelope.version, "1.3");
    assert_eq!(envelope.from_id, from_id);
    assert_eq!(envelope.to_id, to_id);
    let RecordPayload::Msg(msg) = envelope.payload else {
        panic!("expected a msg payload, got {:?}", envelope.payload);
    };
    (view(&msg).expect("golden msg has a view"), msg)
}

fn strings(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn golden_download() -> FirmwareDownload {
    FirmwareDownload {
        obj_path: IMAGE.into(),
        url: "http://127.0.0.1:8080/firmware/v2.bin".into(),
        auto_activate: true,
        username: Some("fwuser".into()),
        password: Some("s3cret".into()),
        file_size: Some(1_048_576),
        checksum_algorithm: Some("SHA-256".into()),
        checksum: Some("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into()),
    }
}

#[test]
fn golden_operate_download_decodes_to_every_argument() {
    let bytes = include_bytes!("../fixtures/operate_download.bin");

    let (view, _) = decode_golden(bytes, CONTROLLER, AGENT);

    let View::Operate(req) = view else {
        panic!("expected operate, got {view:?}");
    };
    let expected = OperateRequest {
        msg_id: "op-1".into(),
        command: DOWNLOAD.into(),
        command_key: "fw-upgrade-1".into(),
        send_resp: true,
        input_args: strings(&[
            ("URL", "http://127.0.0.1:8080/firmware/v2.bin"),
            ("AutoActivate", "true"),
            ("Username", "fwuser"),
            ("Password", "s3cret"),
            ("FileSize", "1048576"),
            ("CheckSumAlgorithm", "SHA-256"),
            (
                "CheckSum",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            ),
        ]),
    };
    assert_eq!(req, expected);
    assert_eq!(
        FirmwareDownload::from_operate(&req).unwrap(),
        golden_download()
    );
}

#[test]
fn operate_download_builder_matches_golden_msg() {
    let bytes = include_bytes!("../fixtures/operate_download.bin");
    let (_, golden) = decode_golden(bytes, CONTROLLER, AGENT);

    let ours = wme_usp::operate_download("op-1", "fw-upgrade-1", &golden_download());

    assert_eq!(ours, golden);
    assert_same_record(&encode_msg_record(CONTROLLER, AGENT, &ours), bytes);
}

/// Two encodings of a Record carrying a Msg with maps decode to the same envelope.
fn assert_same_record(ours: &[u8], golden: &[u8]) {
    assert_eq!(decode_record(ours).unwrap(), decode_record(golden).unwrap());
}

#[test]
fn golden_operate_resp_accepted_decodes_to_the_request_path() {
    let bytes = include_bytes!("../fixtures/operate_resp_accepted.bin");

    let (view, _) = decode_golden(bytes, AGENT, CONTROLLER);

    let expected = View::OperateResp {
        msg_id: "op-1".into(),
        results: vec![OperationResult {
            executed_command: DOWNLOAD.into(),
            outcome: OperationOutcome::Accepted {
                req_obj_path: "Device.LocalAgent.Request.7.".into(),
            },
        }],
    };
    assert_eq!(view, expected);
    let ours = wme_usp::operate_resp_accepted("op-1", DOWNLOAD, "Device.LocalAgent.Request.7.");
    assert_eq!(encode_msg_record(AGENT, CONTROLLER, &ours), bytes);
}

#[test]
fn golden_operate_resp_failure_decodes_to_the_command_failure() {
    let bytes = include_bytes!("../fixtures/operate_resp_failure.bin");

    let (view, _) = decode_golden(bytes, AGENT, CONTROLLER);

    let expected = View::OperateResp {
        msg_id: "op-1".into(),
        results: vec![OperationResult {
            executed_command: DOWNLOAD.into(),
            outcome: OperationOutcome::Failed(CommandFailure {
                err_code: 7004,
                err_msg: "firmware image 2 is active".into(),
            }),
        }],
    };
    assert_eq!(view, expected);
    let ours = wme_usp::operate_resp_failure("op-1", DOWNLOAD, 7004, "firmware image 2 is active");
    assert_eq!(encode_msg_record(AGENT, CONTROLLER, &ours), bytes);
}

fn golden_transfer_complete() -> TransferComplete {
    TransferComplete {
        command: DOWNLOAD.into(),
        command_key: "fw-upgrade-1".into(),
        requestor: "Device.LocalAgent.Controller.1.".into(),
        transfer_type: "Download".into(),
        affected: IMAGE.into(),
        transfer_url: "http://127.0.0.1:8080/firmware/v2.bin".into(),
        start_time: "2024-05-01T10:00:00Z".into(),
        complete_time: "2024-05-01T10:00:42Z".into(),
        fault_code: 0,
        fault_string: String::new(),
    }
}

#[test]
fn golden_transfer_complete_decodes_to_every_parameter() {
    let bytes = include_bytes!("../fixtures/notify_transfer_complete.bin");

    let (view, _) = decode_golden(bytes, AGENT, CONTROLLER);

    let expected = View::TransferComplete(Notification {
        msg_id: "n-tc-1".into(),
        subscription_id: "sub-tc".into(),
        send_resp: true,
        body: golden_transfer_complete(),
    });
    assert_eq!(view, expected);
}

#[test]
fn transfer_complete_builder_matches_golden_msg() {
    let bytes = include_bytes!("../fixtures/notify_transfer_complete.bin");
    let (_, golden) = decode_golden(bytes, AGENT, CONTROLLER);

    let ours =
        wme_usp::notify_transfer_complete("n-tc-1", "sub-tc", true, &golden_transfer_complete());

    assert_eq!(ours, golden);
    assert_same_record(&encode_msg_record(AGENT, CONTROLLER, &ours), bytes);
}

fn golden_boot() -> Boot {
    Boot {
        command_key: "fw-upgrade-1".into(),
        cause: "LocalReboot".into(),
        firmware_updated: true,
        parameter_map: r#"{"Device.DeviceInfo.SoftwareVersion":"2.0.0"}"#.into(),
    }
}

#[test]
fn golden_boot_decodes_to_every_parameter_and_its_parameter_map() {
    let bytes = include_bytes!("../fixtures/notify_boot.bin");

    let (view, _) = decode_golden(bytes, AGENT, CONTROLLER);

    let View::Boot(notification) = view else {
        panic!("expected boot, got {view:?}");
    };
    assert_eq!(notification.msg_id, "n-boot-1");
    assert_eq!(notification.subscription_id, "sub-boot");
    assert!(notification.send_resp);
    assert_eq!(notification.body, golden_boot());
    let params = notification.body.parameters().unwrap();
    assert_eq!(params.len(), 1);
    assert_eq!(params["Device.DeviceInfo.SoftwareVersion"], "2.0.0");
}

#[test]
fn boot_builder_matches_golden_msg() {
    let bytes = include_bytes!("../fixtures/notify_boot.bin");
    let (_, golden) = decode_golden(bytes, AGENT, CONTROLLER);

    let ours = wme_usp::notify_boot("n-boot-1", "sub-boot", true, &golden_boot());

    assert_eq!(ours, golden);
    assert_same_record(&encode_msg_record(AGENT, CONTROLLER, &ours), bytes);
}

fn golden_oper_complete(result: Result<HashMap<String, String>, CommandFailure>) -> OperComplete {
    OperComplete {
        obj_path: IMAGE.into(),
        command_name: "Download()".into(),
        command_key: "fw-upgrade-1".into(),
        result,
    }
}

#[test]
fn golden_oper_complete_success_decodes_to_its_output_args() {
    let bytes = include_bytes!("../fixtures/notify_oper_complete_success.bin");

    let (view, golden) = decode_golden(bytes, AGENT, CONTROLLER);

    let output = strings(&[("Status", "Done"), ("Image", "2")]);
    let body = golden_oper_complete(Ok(output));
    let expected = View::OperComplete(Notification {
        msg_id: "n-oc-1".into(),
        subscription_id: "sub-oc".into(),
        send_resp: false,
        body: body.clone(),
    });
    assert_eq!(view, expected);
    let ours = wme_usp::notify_oper_complete("n-oc-1", "sub-oc", false, &body);
    assert_eq!(ours, golden);
    assert_same_record(&encode_msg_record(AGENT, CONTROLLER, &ours), bytes);
}

#[test]
fn golden_oper_complete_failure_decodes_to_the_command_failure() {
    let bytes = include_bytes!("../fixtures/notify_oper_complete_failure.bin");

    let (view, _) = decode_golden(bytes, AGENT, CONTROLLER);

    let body = golden_oper_complete(Err(CommandFailure {
        err_code: 7002,
        err_msg: "checksum mismatch".into(),
    }));
    let expected = View::OperComplete(Notification {
        msg_id: "n-oc-2".into(),
        subscription_id: "sub-oc".into(),
        send_resp: true,
        body: body.clone(),
    });
    assert_eq!(view, expected);
    let ours = wme_usp::notify_oper_complete("n-oc-2", "sub-oc", true, &body);
    assert_eq!(encode_msg_record(AGENT, CONTROLLER, &ours), bytes);
}

#[test]
fn golden_notify_resp_decodes_and_matches_our_bytes() {
    let bytes = include_bytes!("../fixtures/notify_resp.bin");

    let (view, _) = decode_golden(bytes, CONTROLLER, AGENT);

    let expected = View::NotifyResp {
        msg_id: "n-tc-1".into(),
        subscription_id: "sub-tc".into(),
    };
    assert_eq!(view, expected);
    let ours = wme_usp::notify_resp("n-tc-1", "sub-tc");
    assert_eq!(encode_msg_record(CONTROLLER, AGENT, &ours), bytes);
}

#[test]
fn golden_error_decodes_and_matches_our_bytes() {
    let bytes = include_bytes!("../fixtures/error.bin");

    let (view, _) = decode_golden(bytes, AGENT, CONTROLLER);

    let expected = View::Error {
        msg_id: "op-1".into(),
        err_code: 7000,
        err_msg: "message failed: bad command".into(),
    };
    assert_eq!(view, expected);
    let ours = wme_usp::error("op-1", 7000, "message failed: bad command");
    assert_eq!(encode_msg_record(AGENT, CONTROLLER, &ours), bytes);
}

#[test]
fn golden_mqtt_connect_decodes_and_matches_our_bytes() {
    let bytes = include_bytes!("../fixtures/mqtt_connect.bin");

    let envelope = decode_record(bytes).unwrap();

    let expected = RecordEnvelope {
        version: "1.3".into(),
        to_id: CONTROLLER.into(),
        from_id: AGENT.into(),
        payload: RecordPayload::MqttConnect {
            version: MqttVersion::V5,
            subscribed_topic: "usp/agent/os::012345-SIM0001".into(),
        },
    };
    assert_eq!(envelope, expected);
    let ours = encode_mqtt_connect_record(
        AGENT,
        CONTROLLER,
        MqttVersion::V5,
        "usp/agent/os::012345-SIM0001",
    );
    assert_eq!(ours, bytes);
}
