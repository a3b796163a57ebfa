//! Builders for the USP Msgs of the firmware-upgrade workflow, and the typed values they carry.
//!
//! Argument and parameter names follow TR-181 (`Device.DeviceInfo.FirmwareImage.{i}.Download()`,
//! `Device.LocalAgent.TransferComplete!`, `Device.Boot!`) and message shapes follow TR-369.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::args::{bool_text, optional, parse_bool, parse_u32, parse_u64, required};
use crate::error::UspError;
use crate::pb::msg::body::MsgBody;
use crate::pb::msg::header::MsgType;
use crate::pb::msg::notify::{self, Notification};
use crate::pb::msg::operate_resp::{self, operation_result};
use crate::pb::msg::request::ReqType;
use crate::pb::msg::response::RespType;
use crate::pb::msg::{self as pbm, Msg};
use crate::view::OperateRequest;

/// Name suffix of the TR-181 firmware download command.
pub const DOWNLOAD_COMMAND: &str = "Download()";
/// Object and name of the TR-181 `TransferComplete!` event.
pub const TRANSFER_COMPLETE_OBJ: &str = "Device.LocalAgent.";
pub const TRANSFER_COMPLETE_EVENT: &str = "TransferComplete!";
/// Object and name of the TR-181 `Boot!` event.
pub const BOOT_OBJ: &str = "Device.";
pub const BOOT_EVENT: &str = "Boot!";

/// Arguments of `Device.DeviceInfo.FirmwareImage.{i}.Download()`.
#[derive(Clone, PartialEq, Eq)]
pub struct FirmwareDownload {
    /// The firmware image object, with its trailing dot: `Device.DeviceInfo.FirmwareImage.2.`.
    pub obj_path: String,
    pub url: String,
    pub auto_activate: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub file_size: Option<u64>,
    pub checksum_algorithm: Option<String>,
    pub checksum: Option<String>,
}

impl fmt::Debug for FirmwareDownload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirmwareDownload")
            .field("obj_path", &self.obj_path)
            .field("url", &self.url)
            .field("auto_activate", &self.auto_activate)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("file_size", &self.file_size)
            .field("checksum_algorithm", &self.checksum_algorithm)
            .field("checksum", &self.checksum)
            .finish()
    }
}

impl FirmwareDownload {
    /// The full command path: `obj_path` followed by `Download()`.
    pub fn command(&self) -> String {
        format!("{}{DOWNLOAD_COMMAND}", self.obj_path)
    }

    /// The TR-181 input arguments, leaving out the optional ones that are `None`.
    pub fn input_args(&self) -> BTreeMap<String, String> {
        let mut args = BTreeMap::new();
        args.insert("URL".to_owned(), self.url.clone());
        args.insert("AutoActivate".to_owned(), bool_text(self.auto_activate));
        let optional = [
            ("Username", self.username.clone()),
            ("Password", self.password.clone()),
            ("FileSize", self.file_size.map(|n| n.to_string())),
            ("CheckSumAlgorithm", self.checksum_algorithm.clone()),
            ("CheckSum", self.checksum.clone()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                args.insert(name.to_owned(), value);
            }
        }
        args
    }

    /// Reads a Download() request back. `URL` and `AutoActivate` are required; errors name
    /// the argument that is missing or malformed.
    pub fn from_operate(req: &OperateRequest) -> Result<Self, UspError> {
        let Some(obj_path) = req.command.strip_suffix(DOWNLOAD_COMMAND) else {
            return Err(UspError::UnexpectedShape {
                msg_id: req.msg_id.clone(),
                expected: format!("a {DOWNLOAD_COMMAND} command, got {:?}", req.command),
            });
        };
        let args: BTreeMap<String, String> = req
            .input_args
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let file_size = args
            .get("FileSize")
            .map(|v| parse_u64("FileSize", v))
            .transpose()?;
        Ok(FirmwareDownload {
            obj_path: obj_path.to_owned(),
            url: required(&args, "URL")?.to_owned(),
            auto_activate: parse_bool("AutoActivate", required(&args, "AutoActivate")?)?,
            username: optional(&args, "Username"),
            password: optional(&args, "Password"),
            file_size,
            checksum_algorithm: optional(&args, "CheckSumAlgorithm"),
            checksum: optional(&args, "CheckSum"),
        })
    }
}

/// Parameters of the TR-181 `Device.LocalAgent.TransferComplete!` event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferComplete {
    pub command: String,
    pub command_key: String,
    pub requestor: String,
    pub transfer_type: String,
    pub affected: String,
    pub transfer_url: String,
    pub start_time: String,
    pub complete_time: String,
    pub fault_code: u32,
    pub fault_string: String,
}

impl TransferComplete {
    /// The event parameters, named as in TR-181.
    pub fn params(&self) -> BTreeMap<String, String> {
        [
            ("Command", self.command.clone()),
            ("CommandKey", self.command_key.clone()),
            ("Requestor", self.requestor.clone()),
            ("TransferType", self.transfer_type.clone()),
            ("Affected", self.affected.clone()),
            ("TransferURL", self.transfer_url.clone()),
            ("StartTime", self.start_time.clone()),
            ("CompleteTime", self.complete_time.clone()),
            ("FaultCode", self.fault_code.to_string()),
            ("FaultString", self.fault_string.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Reads the event back; every parameter is required.
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Self, UspError> {
        let text = |name| required(params, name).map(str::to_owned);
        Ok(TransferComplete {
            command: text("Command")?,
            command_key: text("CommandKey")?,
            requestor: text("Requestor")?,
            transfer_type: text("TransferType")?,
            affected: text("Affected")?,
            transfer_url: text("TransferURL")?,
            start_time: text("StartTime")?,
            complete_time: text("CompleteTime")?,
            fault_code: parse_u32("FaultCode", required(params, "FaultCode")?)?,
            fault_string: text("FaultString")?,
        })
    }
}

/// Parameters of the TR-181 `Device.Boot!` event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Boot {
    pub command_key: String,
    pub cause: String,
    pub firmware_updated: bool,
    /// The `ParameterMap` JSON object exactly as sent; see [`Boot::parameters`].
    pub parameter_map: String,
}

impl Boot {
    /// The `ParameterMap` as a JSON object (parameter path to value).
    pub fn parameters(&self) -> Result<serde_json::Map<String, serde_json::Value>, UspError> {
        let bad = |reason: String| UspError::InvalidParameterMap {
            json: self.parameter_map.clone(),
            reason,
        };
        match serde_json::from_str(&self.parameter_map) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(bad("not a JSON object".to_owned())),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// The event parameters, named as in TR-181.
    pub fn params(&self) -> BTreeMap<String, String> {
        [
            ("CommandKey", self.command_key.clone()),
            ("Cause", self.cause.clone()),
            ("FirmwareUpdated", bool_text(self.firmware_updated)),
            ("ParameterMap", self.parameter_map.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Reads the event back; every parameter is required and `ParameterMap` must be a JSON
    /// object.
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Self, UspError> {
        let boot = Boot {
            command_key: required(params, "CommandKey")?.to_owned(),
            cause: required(params, "Cause")?.to_owned(),
            firmware_updated: parse_bool("FirmwareUpdated", required(params, "FirmwareUpdated")?)?,
            parameter_map: required(params, "ParameterMap")?.to_owned(),
        };
        boot.parameters()?;
        Ok(boot)
    }
}

/// Why a command failed (TR-369 `CommandFailure`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandFailure {
    pub err_code: u32,
    pub err_msg: String,
}

/// An `OperationComplete` notification: the end of an asynchronous command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperComplete {
    /// The object the command ran on, e.g. `Device.DeviceInfo.FirmwareImage.2.`.
    pub obj_path: String,
    /// The command name without the object, e.g. `Download()`.
    pub command_name: String,
    pub command_key: String,
    /// Output arguments on success.
    pub result: Result<HashMap<String, String>, CommandFailure>,
}

fn msg(msg_id: &str, msg_type: MsgType, body: MsgBody) -> Msg {
    Msg {
        header: Some(pbm::Header {
            msg_id: msg_id.to_owned(),
            msg_type: msg_type.into(),
        }),
        body: Some(pbm::Body {
            msg_body: Some(body),
        }),
    }
}

fn request(msg_id: &str, msg_type: MsgType, req: ReqType) -> Msg {
    let body = MsgBody::Request(pbm::Request {
        req_type: Some(req),
    });
    msg(msg_id, msg_type, body)
}

fn response(msg_id: &str, msg_type: MsgType, resp: RespType) -> Msg {
    let body = MsgBody::Response(pbm::Response {
        resp_type: Some(resp),
    });
    msg(msg_id, msg_type, body)
}

/// An Operate request for `{obj_path}Download()` with `send_resp` set.
pub fn operate_download(msg_id: &str, command_key: &str, dl: &FirmwareDownload) -> Msg {
    let operate = pbm::Operate {
        command: dl.command(),
        command_key: command_key.to_owned(),
        send_resp: true,
        input_args: dl.input_args(),
    };
    request(msg_id, MsgType::Operate, ReqType::Operate(operate))
}

fn operate_resp(
    msg_id: &str,
    executed_command: &str,
    result: operation_result::OperationResp,
) -> Msg {
    let resp = pbm::OperateResp {
        operation_results: vec![operate_resp::OperationResult {
            executed_command: executed_command.to_owned(),
            operation_resp: Some(result),
        }],
    };
    response(msg_id, MsgType::OperateResp, RespType::OperateResp(resp))
}

/// The OperateResp of an accepted asynchronous command; `req_obj_path` names the
/// `Device.LocalAgent.Request.{i}.` instance tracking it.
pub fn operate_resp_accepted(msg_id: &str, executed_command: &str, req_obj_path: &str) -> Msg {
    let result = operation_result::OperationResp::ReqObjPath(req_obj_path.to_owned());
    operate_resp(msg_id, executed_command, result)
}

/// The OperateResp of a command that failed at once.
pub fn operate_resp_failure(
    msg_id: &str,
    executed_command: &str,
    err_code: u32,
    err_msg: &str,
) -> Msg {
    let failure = operation_result::CommandFailure {
        err_code,
        err_msg: err_msg.to_owned(),
    };
    operate_resp(
        msg_id,
        executed_command,
        operation_result::OperationResp::CmdFailure(failure),
    )
}

/// A USP Error message answering the request `msg_id`.
pub fn error(msg_id: &str, err_code: u32, err_msg: &str) -> Msg {
    let err = pbm::Error {
        err_code,
        err_msg: err_msg.to_owned(),
        param_errs: Vec::new(),
    };
    msg(msg_id, MsgType::Error, MsgBody::Error(err))
}

fn notify(msg_id: &str, subscription_id: &str, send_resp: bool, notification: Notification) -> Msg {
    let notify = pbm::Notify {
        subscription_id: subscription_id.to_owned(),
        send_resp,
        notification: Some(notification),
    };
    request(msg_id, MsgType::Notify, ReqType::Notify(notify))
}

fn event(obj_path: &str, event_name: &str, params: BTreeMap<String, String>) -> Notification {
    Notification::Event(notify::Event {
        obj_path: obj_path.to_owned(),
        event_name: event_name.to_owned(),
        params,
    })
}

/// A Notify carrying `Device.LocalAgent.TransferComplete!`.
pub fn notify_transfer_complete(
    msg_id: &str,
    subscription_id: &str,
    send_resp: bool,
    ev: &TransferComplete,
) -> Msg {
    let ev = event(TRANSFER_COMPLETE_OBJ, TRANSFER_COMPLETE_EVENT, ev.params());
    notify(msg_id, subscription_id, send_resp, ev)
}

/// A Notify carrying `Device.Boot!`.
pub fn notify_boot(msg_id: &str, subscription_id: &str, send_resp: bool, ev: &Boot) -> Msg {
    let ev = event(BOOT_OBJ, BOOT_EVENT, ev.params());
    notify(msg_id, subscription_id, send_resp, ev)
}

/// A Notify carrying an OperationComplete.
pub fn notify_oper_complete(
    msg_id: &str,
    subscription_id: &str,
    send_resp: bool,
    ev: &OperComplete,
) -> Msg {
    use notify::operation_complete::{CommandFailure as PbFailure, OperationResp, OutputArgs};

    let result = match &ev.result {
        Ok(output) => OperationResp::ReqOutputArgs(OutputArgs {
            output_args: output.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }),
        Err(failure) => OperationResp::CmdFailure(PbFailure {
            err_code: failure.err_code,
            err_msg: failure.err_msg.clone(),
        }),
    };
    let complete = notify::OperationComplete {
        obj_path: ev.obj_path.clone(),
        command_name: ev.command_name.clone(),
        command_key: ev.command_key.clone(),
        operation_resp: Some(result),
    };
    notify(
        msg_id,
        subscription_id,
        send_resp,
        Notification::OperComplete(complete),
    )
}

/// The NotifyResp acknowledging the Notify `msg_id`.
pub fn notify_resp(msg_id: &str, subscription_id: &str) -> Msg {
    let resp = pbm::NotifyResp {
        subscription_id: subscription_id.to_owned(),
    };
    response(msg_id, MsgType::NotifyResp, RespType::NotifyResp(resp))
}
