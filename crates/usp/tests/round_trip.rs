//! Every builder's Msg survives encode_msg_record -> decode_record -> view with all fields intact.

use std::collections::HashMap;

use wme_usp::pb::msg::{self as pbm, body::MsgBody, header::MsgType, request::ReqType};
use wme_usp::{
    Boot, CommandFailure, FirmwareDownload, MqttVersion, Notification, OperComplete,
    OperationOutcome, OperationResult, RecordPayload, TransferComplete, USP_VERSION, View,
    decode_record, encode_mqtt_connect_record, encode_msg_record, view,
};

const CONTROLLER: &str = "self::wme";
const AGENT: &str = "os::000000-SIM1";

fn through_the_wire(msg: &wme_usp::Msg) -> View {
    let bytes = encode_msg_record(CONTROLLER, AGENT, msg);
    let envelope = decode_record(&bytes).unwrap();
    assert_eq!(envelope.version, USP_VERSION);
    assert_eq!(envelope.from_id, CONTROLLER);
    assert_eq!(envelope.to_id, AGENT);
    let decoded = envelope.into_msg().unwrap();
    assert_eq!(&decoded, msg);
    view(&decoded).unwrap()
}

fn minimal_download() -> FirmwareDownload {
    FirmwareDownload {
        obj_path: "Device.DeviceInfo.FirmwareImage.1.".into(),
        url: "http://127.0.0.1/fw.bin".into(),
        auto_activate: false,
        username: None,
        password: None,
        file_size: None,
        checksum_algorithm: None,
        checksum: None,
    }
}

#[test]
fn a_minimal_download_round_trips_with_only_the_required_args() {
    let dl = minimal_download();

    let View::Operate(req) = through_the_wire(&wme_usp::operate_download("m1", "k1", &dl)) else {
        panic!("expected operate");
    };

    assert_eq!(req.msg_id, "m1");
    assert_eq!(req.command, "Device.DeviceInfo.FirmwareImage.1.Download()");
    assert_eq!(req.command_key, "k1");
    assert!(req.send_resp);
    let expected_args = HashMap::from([
        ("URL".to_string(), "http://127.0.0.1/fw.bin".to_string()),
        ("AutoActivate".to_string(), "false".to_string()),
    ]);
    assert_eq!(req.input_args, expected_args);
    assert_eq!(FirmwareDownload::from_operate(&req).unwrap(), dl);
}

#[test]
fn a_full_download_round_trips_every_optional_arg() {
    let dl = FirmwareDownload {
        auto_activate: true,
        username: Some("u".into()),
        password: Some("p@ss word".into()),
        file_size: Some(u64::MAX),
        checksum_algorithm: Some("SHA-1".into()),
        checksum: Some("da39a3ee5e6b4b0d3255bfef95601890afd80709".into()),
        ..minimal_download()
    };

    let View::Operate(req) = through_the_wire(&wme_usp::operate_download("m2", "k2", &dl)) else {
        panic!("expected operate");
    };

    assert_eq!(req.input_args.len(), 7);
    assert_eq!(req.input_args["FileSize"], u64::MAX.to_string());
    assert_eq!(FirmwareDownload::from_operate(&req).unwrap(), dl);
}

#[test]
fn operate_resp_accepted_round_trips() {
    let msg = wme_usp::operate_resp_accepted("m3", "X.Download()", "Device.LocalAgent.Request.1.");

    let expected = View::OperateResp {
        msg_id: "m3".into(),
        results: vec![OperationResult {
            executed_command: "X.Download()".into(),
            outcome: OperationOutcome::Accepted {
                req_obj_path: "Device.LocalAgent.Request.1.".into(),
            },
        }],
    };
    assert_eq!(through_the_wire(&msg), expected);
}

#[test]
fn operate_resp_failure_round_trips() {
    let msg = wme_usp::operate_resp_failure("m4", "X.Download()", 7022, "no space");

    let expected = View::OperateResp {
        msg_id: "m4".into(),
        results: vec![OperationResult {
            executed_command: "X.Download()".into(),
            outcome: OperationOutcome::Failed(CommandFailure {
                err_code: 7022,
                err_msg: "no space".into(),
            }),
        }],
    };
    assert_eq!(through_the_wire(&msg), expected);
}

#[test]
fn error_round_trips() {
    let msg = wme_usp::error("m5", 7003, "message failed");

    let expected = View::Error {
        msg_id: "m5".into(),
        err_code: 7003,
        err_msg: "message failed".into(),
    };
    assert_eq!(through_the_wire(&msg), expected);
}

#[test]
fn transfer_complete_round_trips_with_a_fault() {
    let ev = TransferComplete {
        command: "Device.DeviceInfo.FirmwareImage.1.Download()".into(),
        command_key: "k".into(),
        requestor: "Device.LocalAgent.Controller.1.".into(),
        transfer_type: "Download".into(),
        affected: "Device.DeviceInfo.FirmwareImage.1.".into(),
        transfer_url: "http://127.0.0.1/fw.bin".into(),
        start_time: "2024-01-01T00:00:00Z".into(),
        complete_time: "2024-01-01T00:01:00Z".into(),
        fault_code: 7405,
        fault_string: "download failed".into(),
    };

    let view = through_the_wire(&wme_usp::notify_transfer_complete("m6", "s6", true, &ev));

    let expected = View::TransferComplete(Notification {
        msg_id: "m6".into(),
        subscription_id: "s6".into(),
        send_resp: true,
        body: ev,
    });
    assert_eq!(view, expected);
}

#[test]
fn boot_round_trips_and_keeps_its_parameter_map_text() {
    let ev = Boot {
        command_key: String::new(),
        cause: "RemoteReboot".into(),
        firmware_updated: false,
        parameter_map: r#"{"Device.DeviceInfo.SoftwareVersion": "1.0.0", "X": 3}"#.into(),
    };

    let view = through_the_wire(&wme_usp::notify_boot("m7", "s7", false, &ev));

    let View::Boot(n) = view else {
        panic!("expected boot");
    };
    assert_eq!(
        (n.msg_id.as_str(), n.subscription_id.as_str()),
        ("m7", "s7")
    );
    assert!(!n.send_resp);
    assert_eq!(n.body, ev);
    let params = n.body.parameters().unwrap();
    assert_eq!(params["Device.DeviceInfo.SoftwareVersion"], "1.0.0");
    assert_eq!(params["X"], 3);
}

#[test]
fn oper_complete_round_trips_both_outcomes() {
    let outcomes = [
        Ok(HashMap::from([("A".to_string(), "1".to_string())])),
        Ok(HashMap::new()),
        Err(CommandFailure {
            err_code: 7002,
            err_msg: "bad".into(),
        }),
    ];
    for result in outcomes {
        let ev = OperComplete {
            obj_path: "Device.DeviceInfo.FirmwareImage.1.".into(),
            command_name: "Download()".into(),
            command_key: "k".into(),
            result,
        };

        let view = through_the_wire(&wme_usp::notify_oper_complete("m8", "s8", true, &ev));

        let expected = View::OperComplete(Notification {
            msg_id: "m8".into(),
            subscription_id: "s8".into(),
            send_resp: true,
            body: ev,
        });
        assert_eq!(view, expected);
    }
}

#[test]
fn notify_resp_round_trips() {
    let view = through_the_wire(&wme_usp::notify_resp("m9", "s9"));

    let expected = View::NotifyResp {
        msg_id: "m9".into(),
        subscription_id: "s9".into(),
    };
    assert_eq!(view, expected);
}

#[test]
fn mqtt_connect_round_trips_both_versions() {
    for version in [MqttVersion::V3_1_1, MqttVersion::V5] {
        let bytes = encode_mqtt_connect_record(AGENT, CONTROLLER, version, "usp/agent/a");

        let envelope = decode_record(&bytes).unwrap();

        assert_eq!(
            (envelope.from_id.as_str(), envelope.to_id.as_str()),
            (AGENT, CONTROLLER)
        );
        let expected = RecordPayload::MqttConnect {
            version,
            subscribed_topic: "usp/agent/a".into(),
        };
        assert_eq!(envelope.payload, expected);
    }
}

fn request_msg(msg_id: &str, msg_type: MsgType, req: ReqType) -> wme_usp::Msg {
    pbm::Msg {
        header: Some(pbm::Header {
            msg_id: msg_id.into(),
            msg_type: msg_type.into(),
        }),
        body: Some(pbm::Body {
            msg_body: Some(MsgBody::Request(pbm::Request {
                req_type: Some(req),
            })),
        }),
    }
}

#[test]
fn a_get_request_is_viewed_as_other_by_its_field_name() {
    let get = pbm::Get {
        param_paths: vec!["Device.DeviceInfo.".into()],
        max_depth: 0,
    };
    let msg = request_msg("g1", MsgType::Get, ReqType::Get(get));

    let expected = View::Other {
        msg_id: "g1".into(),
        kind: "get".into(),
    };
    assert_eq!(through_the_wire(&msg), expected);
}

#[test]
fn a_value_change_is_viewed_as_other_notify_kind() {
    let notify = pbm::Notify {
        subscription_id: "s".into(),
        send_resp: false,
        notification: Some(pbm::notify::Notification::ValueChange(
            pbm::notify::ValueChange {
                param_path: "Device.X".into(),
                param_value: "1".into(),
            },
        )),
    };
    let msg = request_msg("v1", MsgType::Notify, ReqType::Notify(notify));

    let expected = View::Other {
        msg_id: "v1".into(),
        kind: "notify.value_change".into(),
    };
    assert_eq!(through_the_wire(&msg), expected);
}

#[test]
fn an_unknown_event_is_viewed_with_its_path_and_name() {
    let notify = pbm::Notify {
        subscription_id: "s".into(),
        send_resp: true,
        notification: Some(pbm::notify::Notification::Event(pbm::notify::Event {
            obj_path: "Device.WiFi.".into(),
            event_name: "Scan!".into(),
            params: Default::default(),
        })),
    };
    let msg = request_msg("e1", MsgType::Notify, ReqType::Notify(notify));

    let expected = View::OtherEvent(Notification {
        msg_id: "e1".into(),
        subscription_id: "s".into(),
        send_resp: true,
        body: ("Device.WiFi.".into(), "Scan!".into()),
    });
    assert_eq!(through_the_wire(&msg), expected);
}

#[test]
fn debug_output_never_shows_the_download_password() {
    let dl = FirmwareDownload {
        password: Some("hunter2".into()),
        ..minimal_download()
    };
    let msg = wme_usp::operate_download("m", "k", &dl);
    let View::Operate(req) = view(&msg).unwrap() else {
        panic!("expected operate");
    };

    for text in [format!("{dl:?}"), format!("{msg:?}"), format!("{req:?}")] {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
