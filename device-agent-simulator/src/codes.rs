//! The TR-369 error codes the simulated agent answers with.
//!
//! Transfer fault codes (TR-069 9xxx, used in `TransferComplete!`) live with
//! [`crate::firmware::TransferFault`].

/// The Msg type is not one this agent handles (USP `Error`).
pub const MESSAGE_NOT_SUPPORTED: u32 = 7001;
/// The agent refuses the request as things stand (a download is already running).
pub const REQUEST_DENIED: u32 = 7002;
/// The command names an object instance the agent does not have.
pub const OBJECT_DOES_NOT_EXIST: u32 = 7016;
/// An accepted command failed (`OperationComplete` `cmd_failure`).
pub const COMMAND_FAILURE: u32 = 7022;
/// The command path is not a command the agent supports.
pub const INVALID_PATH: u32 = 7026;
/// The command's input arguments are missing or malformed.
pub const INVALID_COMMAND_ARGUMENTS: u32 = 7027;
