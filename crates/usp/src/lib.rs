//! USP (Broadband Forum TR-369, USP 1.3) for WME: the protobuf Record and Msg types, encoding
//! and decoding of Records, builders and typed views for the messages of the firmware-upgrade
//! workflow, and the MQTT binding's topic helpers.
//!
//! The protobuf types are generated from `proto/` into [`pb`]; everything else is written by
//! hand beside it. The crate does no I/O.

mod args;
mod error;
pub mod mqtt;
pub mod msg;
pub mod pb;
pub mod record;
mod redact;
pub mod view;

pub use error::UspError;
pub use mqtt::{split_reply_to, topic_with_reply_to};
pub use msg::{
    Boot, CommandFailure, FirmwareDownload, OperComplete, TransferComplete, error, notify_boot,
    notify_oper_complete, notify_resp, notify_transfer_complete, operate_download,
    operate_resp_accepted, operate_resp_failure,
};
pub use pb::msg::Msg;
pub use record::{
    MqttVersion, RecordEnvelope, RecordPayload, USP_VERSION, decode_msg, decode_record,
    encode_mqtt_connect_record, encode_msg_record,
};
pub use view::{Notification, OperateRequest, OperationOutcome, OperationResult, View, view};
