//! USP Records: the envelope that carries a Msg (or an MTP connect notice) between endpoints.
//!
//! Only the parts this project needs are unwrapped: `no_session_context` Records with PLAINTEXT
//! payloads, and `mqtt_connect` Records. Every other Record kind decodes to
//! [`RecordPayload::Other`] naming the kind, so callers can log and drop it.

use prost::Message;

use crate::error::UspError;
use crate::pb;
use crate::pb::record::mqtt_connect_record::MqttVersion as PbMqttVersion;
use crate::pb::record::record::{PayloadSecurity, RecordType};

/// The USP protocol version this crate writes into every Record.
pub const USP_VERSION: &str = "1.3";

/// A decoded Record: who sent it to whom, and what it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEnvelope {
    pub version: String,
    pub to_id: String,
    pub from_id: String,
    pub payload: RecordPayload,
}

/// What a Record carries.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordPayload {
    /// A Msg from a `no_session_context` Record.
    Msg(pb::msg::Msg),
    /// An `mqtt_connect` Record, sent by an agent when it connects to a broker.
    MqttConnect {
        version: MqttVersion,
        subscribed_topic: String,
    },
    /// Any other Record kind, by its field name: `session_context`, `websocket_connect`,
    /// `stomp_connect`, `disconnect` or `uds_connect`.
    Other(&'static str),
}

/// The MQTT protocol version announced in an `mqtt_connect` Record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MqttVersion {
    V3_1_1,
    V5,
}

impl From<MqttVersion> for PbMqttVersion {
    fn from(v: MqttVersion) -> Self {
        match v {
            MqttVersion::V3_1_1 => PbMqttVersion::V311,
            MqttVersion::V5 => PbMqttVersion::V5,
        }
    }
}

impl RecordEnvelope {
    /// The carried Msg, or an error naming the Record kind when it carries none.
    pub fn into_msg(self) -> Result<pb::msg::Msg, UspError> {
        match self.payload {
            RecordPayload::Msg(msg) => Ok(msg),
            RecordPayload::MqttConnect { .. } => Err(unexpected_kind("mqtt_connect")),
            RecordPayload::Other(kind) => Err(unexpected_kind(kind)),
        }
    }
}

fn unexpected_kind(kind: &'static str) -> UspError {
    UspError::UnexpectedRecordType {
        kind,
        expected: "no_session_context",
    }
}

/// Wraps `msg` in a `no_session_context` Record with a PLAINTEXT payload.
pub fn encode_msg_record(from_id: &str, to_id: &str, msg: &pb::msg::Msg) -> Vec<u8> {
    let payload = msg.encode_to_vec();
    let kind = RecordType::NoSessionContext(pb::record::NoSessionContextRecord { payload });
    record(from_id, to_id, kind).encode_to_vec()
}

/// Builds the `mqtt_connect` Record an agent publishes after connecting to its broker.
pub fn encode_mqtt_connect_record(
    from_id: &str,
    to_id: &str,
    version: MqttVersion,
    subscribed_topic: &str,
) -> Vec<u8> {
    let connect = pb::record::MqttConnectRecord {
        version: PbMqttVersion::from(version).into(),
        subscribed_topic: subscribed_topic.to_owned(),
    };
    record(from_id, to_id, RecordType::MqttConnect(connect)).encode_to_vec()
}

fn record(from_id: &str, to_id: &str, kind: RecordType) -> pb::record::Record {
    pb::record::Record {
        version: USP_VERSION.to_owned(),
        to_id: to_id.to_owned(),
        from_id: from_id.to_owned(),
        payload_security: PayloadSecurity::Plaintext.into(),
        record_type: Some(kind),
        ..Default::default()
    }
}

/// Decodes a Record and, for `no_session_context`, the Msg inside it.
///
/// A carried Msg must have a header and a body; anything deeper is checked by [`view()`](crate::view()).
pub fn decode_record(bytes: &[u8]) -> Result<RecordEnvelope, UspError> {
    let record = pb::record::Record::decode(bytes).map_err(UspError::MalformedRecord)?;
    let payload = match record.record_type {
        None => return Err(UspError::MissingRecordType),
        Some(RecordType::NoSessionContext(inner)) => {
            check_plaintext(record.payload_security)?;
            RecordPayload::Msg(decode_msg(&inner.payload)?)
        }
        Some(RecordType::MqttConnect(connect)) => mqtt_connect_payload(&connect)?,
        Some(other) => RecordPayload::Other(kind_name(&other)),
    };
    Ok(RecordEnvelope {
        version: record.version,
        to_id: record.to_id,
        from_id: record.from_id,
        payload,
    })
}

/// Decodes a bare Msg (the payload of a `no_session_context` Record) and checks that it has a
/// header and a body.
pub fn decode_msg(bytes: &[u8]) -> Result<pb::msg::Msg, UspError> {
    let msg = pb::msg::Msg::decode(bytes).map_err(UspError::MalformedMsg)?;
    let header = msg.header.as_ref().ok_or(UspError::MissingHeader)?;
    if msg
        .body
        .as_ref()
        .and_then(|b| b.msg_body.as_ref())
        .is_none()
    {
        return Err(UspError::MissingBody {
            msg_id: header.msg_id.clone(),
        });
    }
    Ok(msg)
}

fn check_plaintext(security: i32) -> Result<(), UspError> {
    match PayloadSecurity::try_from(security) {
        Ok(PayloadSecurity::Plaintext) => Ok(()),
        Ok(other) => Err(UspError::UnsupportedPayloadSecurity(
            other.as_str_name().to_owned(),
        )),
        Err(_) => Err(UspError::UnsupportedPayloadSecurity(format!(
            "unknown({security})"
        ))),
    }
}

fn mqtt_connect_payload(
    connect: &pb::record::MqttConnectRecord,
) -> Result<RecordPayload, UspError> {
    let version = match PbMqttVersion::try_from(connect.version) {
        Ok(PbMqttVersion::V311) => MqttVersion::V3_1_1,
        Ok(PbMqttVersion::V5) => MqttVersion::V5,
        Err(_) => {
            return Err(UspError::InvalidArgument {
                arg: "mqtt_connect.version".to_owned(),
                value: connect.version.to_string(),
                expected: "0 (V3_1_1) or 1 (V5)",
            });
        }
    };
    Ok(RecordPayload::MqttConnect {
        version,
        subscribed_topic: connect.subscribed_topic.clone(),
    })
}

fn kind_name(kind: &RecordType) -> &'static str {
    match kind {
        RecordType::NoSessionContext(_) => "no_session_context",
        RecordType::SessionContext(_) => "session_context",
        RecordType::WebsocketConnect(_) => "websocket_connect",
        RecordType::MqttConnect(_) => "mqtt_connect",
        RecordType::StompConnect(_) => "stomp_connect",
        RecordType::Disconnect(_) => "disconnect",
        RecordType::UdsConnect(_) => "uds_connect",
    }
}
