//! The error type of this crate.

/// Everything that can go wrong while decoding a USP Record or Msg, or while reading a typed
/// view out of a Msg.
#[derive(Debug, thiserror::Error)]
pub enum UspError {
    /// The bytes are not a protobuf `usp_record.Record`.
    #[error("malformed usp record: {0}")]
    MalformedRecord(#[source] prost::DecodeError),

    /// The payload of a no_session_context Record is not a protobuf `usp.Msg`.
    #[error("malformed usp msg in record payload: {0}")]
    MalformedMsg(#[source] prost::DecodeError),

    /// The Record sets none of the `record_type` oneof fields.
    #[error("usp record has no record_type (expected no_session_context, mqtt_connect, ...)")]
    MissingRecordType,

    /// The Record's payload is protected by something other than PLAINTEXT.
    #[error("unsupported payload security {0}; only PLAINTEXT is supported")]
    UnsupportedPayloadSecurity(String),

    /// The Record is of a kind this crate does not unwrap into a Msg.
    #[error("unexpected record type {kind}; expected {expected}")]
    UnexpectedRecordType {
        kind: &'static str,
        expected: &'static str,
    },

    /// The Msg has no header.
    #[error("usp msg has no header")]
    MissingHeader,

    /// The Msg has no body, or a body with none of request/response/error.
    #[error("usp msg {msg_id:?} has no body")]
    MissingBody { msg_id: String },

    /// The Msg is well formed protobuf but not shaped as the caller or TR-369 expects.
    #[error("usp msg {msg_id:?} has an unexpected shape: expected {expected}")]
    UnexpectedShape { msg_id: String, expected: String },

    /// A required command argument or event parameter is absent.
    #[error("missing argument {arg}")]
    MissingArgument { arg: String },

    /// A command argument or event parameter has a value of the wrong type.
    #[error("invalid value {value:?} for argument {arg}: expected {expected}")]
    InvalidArgument {
        arg: String,
        value: String,
        expected: &'static str,
    },

    /// The `ParameterMap` of a `Boot!` event is not a JSON object.
    #[error("invalid Boot! ParameterMap {json:?}: {reason}")]
    InvalidParameterMap { json: String, reason: String },
}
