//! Protobuf types generated at build time from `proto/usp-record-1-3.proto` (`record`, package
//! `usp_record`) and `proto/usp-msg-1-3.proto` (`msg`, package `usp`).
//!
//! Nothing here is written by hand; helpers live in the sibling modules.

/// USP Record types (package `usp_record`).
#[allow(clippy::all, clippy::pedantic)]
pub mod record {
    include!(concat!(env!("OUT_DIR"), "/usp_record.rs"));
}

/// USP Msg types (package `usp`).
#[allow(clippy::all, clippy::pedantic)]
pub mod msg {
    include!(concat!(env!("OUT_DIR"), "/usp.rs"));
}
