//! Bad input gives the exact error variant, with the bad value named, and never panics.

use std::collections::BTreeMap;

use prost::Message;
use wme_usp::pb::msg::{self as pbm, body::MsgBody, header::MsgType, request::ReqType};
use wme_usp::pb::record::{self as pbr, record::PayloadSecurity, record::RecordType};
use wme_usp::{FirmwareDownload, OperateRequest, RecordPayload, UspError, decode_record, view};

fn record_bytes(security: PayloadSecurity, kind: Option<RecordType>) -> Vec<u8> {
    pbr::Record {
        version: "1.3".into(),
        to_id: "a".into(),
        from_id: "b".into(),
        payload_security: security.into(),
        record_type: kind,
        ..Default::default()
    }
    .encode_to_vec()
}

fn plain_payload(payload: Vec<u8>) -> Vec<u8> {
    let kind = RecordType::NoSessionContext(pbr::NoSessionContextRecord { payload });
    record_bytes(PayloadSecurity::Plaintext, Some(kind))
}

#[test]
fn bytes_that_are_not_protobuf_are_a_malformed_record() {
    let err = decode_record(&[0xff; 11]).unwrap_err();

    assert!(matches!(err, UspError::MalformedRecord(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("malformed usp record: "),
        "{err}"
    );
}

#[test]
fn pseudo_random_bytes_never_panic_the_decoder() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..2000usize {
        let bytes: Vec<u8> = (0..len % 97)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                (state >> 56) as u8
            })
            .collect();
        if let Ok(envelope) = decode_record(&bytes)
            && let RecordPayload::Msg(msg) = envelope.payload
        {
            let _ = view(&msg);
        }
    }
}

#[test]
fn a_truncated_record_is_malformed() {
    let full = include_bytes!("../fixtures/operate_download.bin");

    let err = decode_record(&full[..full.len() - 10]).unwrap_err();

    assert!(matches!(err, UspError::MalformedRecord(_)), "{err:?}");
}

#[test]
fn a_session_context_record_decodes_as_other_and_has_no_msg() {
    let kind = RecordType::SessionContext(pbr::SessionContextRecord {
        session_id: 1,
        payload: vec![b"x".to_vec()],
        ..Default::default()
    });
    let bytes = record_bytes(PayloadSecurity::Plaintext, Some(kind));

    let envelope = decode_record(&bytes).unwrap();

    assert_eq!(envelope.payload, RecordPayload::Other("session_context"));
    let err = envelope.into_msg().unwrap_err();
    assert!(matches!(
        err,
        UspError::UnexpectedRecordType {
            kind: "session_context",
            expected: "no_session_context"
        }
    ));
}

#[test]
fn a_disconnect_record_decodes_as_other() {
    let kind = RecordType::Disconnect(pbr::DisconnectRecord {
        reason: "bye".into(),
        reason_code: 7,
    });

    let envelope = decode_record(&record_bytes(PayloadSecurity::Plaintext, Some(kind))).unwrap();

    assert_eq!(envelope.payload, RecordPayload::Other("disconnect"));
}

#[test]
fn a_payload_that_is_not_a_msg_is_a_malformed_msg() {
    let err = decode_record(&plain_payload(b"not a usp msg".to_vec())).unwrap_err();

    assert!(matches!(err, UspError::MalformedMsg(_)), "{err:?}");
}

#[test]
fn an_empty_payload_is_a_msg_without_header() {
    let err = decode_record(&plain_payload(Vec::new())).unwrap_err();

    assert!(matches!(err, UspError::MissingHeader), "{err:?}");
}

#[test]
fn a_msg_without_body_names_its_msg_id() {
    let msg = pbm::Msg {
        header: Some(pbm::Header {
            msg_id: "lonely".into(),
            msg_type: MsgType::Get.into(),
        }),
        body: None,
    };

    let err = decode_record(&plain_payload(msg.encode_to_vec())).unwrap_err();

    assert!(matches!(err, UspError::MissingBody { ref msg_id } if msg_id == "lonely"));
    assert_eq!(err.to_string(), "usp msg \"lonely\" has no body");
}

#[test]
fn a_record_without_record_type_is_rejected() {
    let err = decode_record(&record_bytes(PayloadSecurity::Plaintext, None)).unwrap_err();

    assert!(matches!(err, UspError::MissingRecordType), "{err:?}");
}

#[test]
fn a_tls_protected_payload_is_unsupported_and_named() {
    let msg = wme_usp::error("m", 1, "x");
    let kind = RecordType::NoSessionContext(pbr::NoSessionContextRecord {
        payload: msg.encode_to_vec(),
    });

    let err = decode_record(&record_bytes(PayloadSecurity::Tls12, Some(kind))).unwrap_err();

    assert!(matches!(err, UspError::UnsupportedPayloadSecurity(ref s) if s == "TLS12"));
}

#[test]
fn an_unknown_mqtt_version_is_an_invalid_argument() {
    let kind = RecordType::MqttConnect(pbr::MqttConnectRecord {
        version: 7,
        subscribed_topic: "t".into(),
    });

    let err = decode_record(&record_bytes(PayloadSecurity::Plaintext, Some(kind))).unwrap_err();

    assert!(matches!(
        err,
        UspError::InvalidArgument { ref arg, ref value, .. }
            if arg == "mqtt_connect.version" && value == "7"
    ));
}

fn event_msg(obj_path: &str, event_name: &str, params: &[(&str, &str)]) -> wme_usp::Msg {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let notify = pbm::Notify {
        subscription_id: "s".into(),
        send_resp: true,
        notification: Some(pbm::notify::Notification::Event(pbm::notify::Event {
            obj_path: obj_path.into(),
            event_name: event_name.into(),
            params,
        })),
    };
    msg_with("n1", MsgType::Notify, ReqType::Notify(notify))
}

fn msg_with(msg_id: &str, msg_type: MsgType, req: ReqType) -> wme_usp::Msg {
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

const GOOD_BOOT: [(&str, &str); 4] = [
    ("CommandKey", ""),
    ("Cause", "LocalReboot"),
    ("FirmwareUpdated", "true"),
    ("ParameterMap", "{}"),
];

fn boot_with(name: &str, value: &str) -> wme_usp::Msg {
    let params: Vec<(&str, &str)> = GOOD_BOOT
        .iter()
        .map(|&(k, v)| if k == name { (k, value) } else { (k, v) })
        .collect();
    event_msg("Device.", "Boot!", &params)
}

#[test]
fn a_boot_with_a_non_json_parameter_map_names_the_json() {
    let bytes = wme_usp::encode_msg_record("a", "c", &boot_with("ParameterMap", "{not json"));
    let msg = decode_record(&bytes).unwrap().into_msg().unwrap();

    let err = view(&msg).unwrap_err();

    assert!(matches!(err, UspError::InvalidParameterMap { ref json, .. } if json == "{not json"));
    assert!(
        err.to_string()
            .starts_with("invalid Boot! ParameterMap \"{not json\": "),
        "{err}"
    );
}

#[test]
fn a_boot_whose_parameter_map_is_a_json_array_is_rejected() {
    let err = view(&boot_with("ParameterMap", "[1]")).unwrap_err();

    assert_eq!(
        err.to_string(),
        "invalid Boot! ParameterMap \"[1]\": not a JSON object"
    );
}

#[test]
fn a_boot_with_a_non_boolean_firmware_updated_names_param_and_value() {
    let err = view(&boot_with("FirmwareUpdated", "maybe")).unwrap_err();

    assert!(matches!(
        err,
        UspError::InvalidArgument { ref arg, ref value, .. }
            if arg == "FirmwareUpdated" && value == "maybe"
    ));
}

const GOOD_TRANSFER: [(&str, &str); 10] = [
    ("Command", "X.Download()"),
    ("CommandKey", "k"),
    ("Requestor", "r"),
    ("TransferType", "Download"),
    ("Affected", "X."),
    ("TransferURL", "http://127.0.0.1/x"),
    ("StartTime", "t0"),
    ("CompleteTime", "t1"),
    ("FaultCode", "0"),
    ("FaultString", ""),
];

#[test]
fn a_transfer_complete_with_a_non_numeric_fault_code_names_param_and_value() {
    let mut params = GOOD_TRANSFER.to_vec();
    params[8] = ("FaultCode", "abc");

    let err = view(&event_msg(
        "Device.LocalAgent.",
        "TransferComplete!",
        &params,
    ))
    .unwrap_err();

    assert_eq!(
        err.to_string(),
        "invalid value \"abc\" for argument FaultCode: expected an unsigned 32-bit integer"
    );
}

#[test]
fn a_transfer_complete_without_fault_string_names_the_missing_param() {
    let params = &GOOD_TRANSFER[..9];

    let err = view(&event_msg(
        "Device.LocalAgent.",
        "TransferComplete!",
        params,
    ))
    .unwrap_err();

    assert!(matches!(err, UspError::MissingArgument { ref arg } if arg == "FaultString"));
}

#[test]
fn a_msg_type_that_disagrees_with_the_body_is_an_unexpected_shape() {
    let get = pbm::Get::default();
    let msg = msg_with("x1", MsgType::Set, ReqType::Get(get));

    let err = view(&msg).unwrap_err();

    assert_eq!(
        err.to_string(),
        "usp msg \"x1\" has an unexpected shape: expected msg_type GET for a get body, got SET"
    );
}

#[test]
fn an_operation_result_without_outcome_is_an_unexpected_shape() {
    let mut msg = wme_usp::operate_resp_accepted("r1", "X.Download()", "p");
    let Some(MsgBody::Response(resp)) = msg.body.as_mut().and_then(|b| b.msg_body.as_mut()) else {
        panic!("builder made a response");
    };
    let Some(pbm::response::RespType::OperateResp(op)) = resp.resp_type.as_mut() else {
        panic!("builder made an operate_resp");
    };
    op.operation_results[0].operation_resp = None;

    let err = view(&msg).unwrap_err();

    assert!(matches!(err, UspError::UnexpectedShape { ref msg_id, .. } if msg_id == "r1"));
    assert!(err.to_string().contains("\"X.Download()\""), "{err}");
}

#[test]
fn an_oper_complete_without_outcome_is_an_unexpected_shape() {
    let notify = pbm::Notify {
        subscription_id: "s".into(),
        send_resp: false,
        notification: Some(pbm::notify::Notification::OperComplete(
            pbm::notify::OperationComplete::default(),
        )),
    };

    let err = view(&msg_with("oc", MsgType::Notify, ReqType::Notify(notify))).unwrap_err();

    assert!(matches!(err, UspError::UnexpectedShape { ref msg_id, .. } if msg_id == "oc"));
}

fn download_request(command: &str, args: &[(&str, &str)]) -> OperateRequest {
    OperateRequest {
        msg_id: "op".into(),
        command: command.into(),
        command_key: "k".into(),
        send_resp: true,
        input_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn from_operate_rejects_a_command_that_is_not_download() {
    let req = download_request("Device.Reboot()", &[]);

    let err = FirmwareDownload::from_operate(&req).unwrap_err();

    assert!(matches!(err, UspError::UnexpectedShape { ref msg_id, .. } if msg_id == "op"));
    assert!(err.to_string().contains("\"Device.Reboot()\""), "{err}");
}

#[test]
fn from_operate_names_a_missing_url() {
    let req = download_request("X.Download()", &[("AutoActivate", "true")]);

    let err = FirmwareDownload::from_operate(&req).unwrap_err();

    assert_eq!(err.to_string(), "missing argument URL");
}

#[test]
fn from_operate_names_a_bad_file_size() {
    let args = [("URL", "u"), ("AutoActivate", "1"), ("FileSize", "12MB")];
    let req = download_request("X.Download()", &args);

    let err = FirmwareDownload::from_operate(&req).unwrap_err();

    assert!(matches!(
        err,
        UspError::InvalidArgument { ref arg, ref value, .. } if arg == "FileSize" && value == "12MB"
    ));
}
