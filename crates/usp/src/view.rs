//! Typed views of decoded Msgs: the few shapes the firmware-upgrade workflow acts on, and a
//! kind name for everything else.
//!
//! [`view`] also checks what protobuf alone cannot: that the header's `msg_type` matches the
//! body, that oneofs TR-369 requires are set, and that event parameters have the types TR-181
//! gives them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::error::UspError;
use crate::msg::{
    BOOT_EVENT, BOOT_OBJ, Boot, CommandFailure, OperComplete, TRANSFER_COMPLETE_EVENT,
    TRANSFER_COMPLETE_OBJ, TransferComplete,
};
use crate::pb::msg::body::MsgBody;
use crate::pb::msg::header::MsgType;
use crate::pb::msg::notify::Notification as PbNotification;
use crate::pb::msg::operate_resp::operation_result::OperationResp;
use crate::pb::msg::request::ReqType;
use crate::pb::msg::response::RespType;
use crate::pb::msg::{self as pbm, Msg};
use crate::redact::RedactedArgs;

/// An Operate request.
#[derive(Clone, PartialEq, Eq)]
pub struct OperateRequest {
    pub msg_id: String,
    pub command: String,
    pub command_key: String,
    pub send_resp: bool,
    pub input_args: HashMap<String, String>,
}

impl fmt::Debug for OperateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperateRequest")
            .field("msg_id", &self.msg_id)
            .field("command", &self.command)
            .field("command_key", &self.command_key)
            .field("send_resp", &self.send_resp)
            .field("input_args", &RedactedArgs(self.input_args.iter()))
            .finish()
    }
}

/// A Notify request with its decoded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<T> {
    pub msg_id: String,
    pub subscription_id: String,
    pub send_resp: bool,
    pub body: T,
}

/// What an agent answered for one command of an Operate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationOutcome {
    /// An asynchronous command was started; completion comes as an OperationComplete.
    Accepted {
        req_obj_path: String,
    },
    /// A synchronous command finished with these output arguments.
    Output(HashMap<String, String>),
    Failed(CommandFailure),
}

/// One entry of an OperateResp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationResult {
    pub executed_command: String,
    pub outcome: OperationOutcome,
}

/// A decoded Msg, typed where the workflow needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Operate(OperateRequest),
    OperateResp {
        msg_id: String,
        results: Vec<OperationResult>,
    },
    TransferComplete(Notification<TransferComplete>),
    Boot(Notification<Boot>),
    OperComplete(Notification<OperComplete>),
    /// Any other event, as `(obj_path, event_name)`.
    OtherEvent(Notification<(String, String)>),
    NotifyResp {
        msg_id: String,
        subscription_id: String,
    },
    Error {
        msg_id: String,
        err_code: u32,
        err_msg: String,
    },
    /// Any other message, by its TR-369 field name (`get`, `set_resp`, ...); notifications
    /// other than events and OperationComplete are `notify.value_change` and the like.
    Other {
        msg_id: String,
        kind: String,
    },
}

/// Reads a typed view out of a Msg. Errors name the msg_id and what was wrong.
pub fn view(msg: &Msg) -> Result<View, UspError> {
    let header = msg.header.as_ref().ok_or(UspError::MissingHeader)?;
    let msg_id = header.msg_id.clone();
    let Some(body) = msg.body.as_ref().and_then(|b| b.msg_body.as_ref()) else {
        return Err(UspError::MissingBody { msg_id });
    };
    let (kind, implied_type) = body_kind(&msg_id, body)?;
    check_msg_type(&msg_id, header.msg_type, kind, implied_type)?;

    match body {
        MsgBody::Request(req) => view_request(msg_id, req, kind),
        MsgBody::Response(resp) => view_response(msg_id, resp, kind),
        MsgBody::Error(err) => Ok(View::Error {
            msg_id,
            err_code: err.err_code,
            err_msg: err.err_msg.clone(),
        }),
    }
}

fn shape(msg_id: &str, expected: impl Into<String>) -> UspError {
    UspError::UnexpectedShape {
        msg_id: msg_id.to_owned(),
        expected: expected.into(),
    }
}

/// The TR-369 field name of the body and the msg_type it requires.
fn body_kind(msg_id: &str, body: &MsgBody) -> Result<(&'static str, MsgType), UspError> {
    match body {
        MsgBody::Request(req) => match &req.req_type {
            Some(r) => Ok(request_kind(r)),
            None => Err(shape(msg_id, "a request with a req_type set")),
        },
        MsgBody::Response(resp) => match &resp.resp_type {
            Some(r) => Ok(response_kind(r)),
            None => Err(shape(msg_id, "a response with a resp_type set")),
        },
        MsgBody::Error(_) => Ok(("error", MsgType::Error)),
    }
}

fn request_kind(req: &ReqType) -> (&'static str, MsgType) {
    match req {
        ReqType::Get(_) => ("get", MsgType::Get),
        ReqType::GetSupportedDm(_) => ("get_supported_dm", MsgType::GetSupportedDm),
        ReqType::GetInstances(_) => ("get_instances", MsgType::GetInstances),
        ReqType::Set(_) => ("set", MsgType::Set),
        ReqType::Add(_) => ("add", MsgType::Add),
        ReqType::Delete(_) => ("delete", MsgType::Delete),
        ReqType::Operate(_) => ("operate", MsgType::Operate),
        ReqType::Notify(_) => ("notify", MsgType::Notify),
        ReqType::GetSupportedProtocol(_) => ("get_supported_protocol", MsgType::GetSupportedProto),
        ReqType::Register(_) => ("register", MsgType::Register),
        ReqType::Deregister(_) => ("deregister", MsgType::Deregister),
    }
}

fn response_kind(resp: &RespType) -> (&'static str, MsgType) {
    match resp {
        RespType::GetResp(_) => ("get_resp", MsgType::GetResp),
        RespType::GetSupportedDmResp(_) => ("get_supported_dm_resp", MsgType::GetSupportedDmResp),
        RespType::GetInstancesResp(_) => ("get_instances_resp", MsgType::GetInstancesResp),
        RespType::SetResp(_) => ("set_resp", MsgType::SetResp),
        RespType::AddResp(_) => ("add_resp", MsgType::AddResp),
        RespType::DeleteResp(_) => ("delete_resp", MsgType::DeleteResp),
        RespType::OperateResp(_) => ("operate_resp", MsgType::OperateResp),
        RespType::NotifyResp(_) => ("notify_resp", MsgType::NotifyResp),
        RespType::GetSupportedProtocolResp(_) => (
            "get_supported_protocol_resp",
            MsgType::GetSupportedProtoResp,
        ),
        RespType::RegisterResp(_) => ("register_resp", MsgType::RegisterResp),
        RespType::DeregisterResp(_) => ("deregister_resp", MsgType::DeregisterResp),
    }
}

fn check_msg_type(msg_id: &str, raw: i32, kind: &str, implied: MsgType) -> Result<(), UspError> {
    if raw == implied as i32 {
        return Ok(());
    }
    let got = MsgType::try_from(raw)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("unknown({raw})"));
    Err(shape(
        msg_id,
        format!(
            "msg_type {} for a {kind} body, got {got}",
            implied.as_str_name()
        ),
    ))
}

fn view_request(msg_id: String, req: &pbm::Request, kind: &str) -> Result<View, UspError> {
    match &req.req_type {
        Some(ReqType::Operate(op)) => Ok(View::Operate(OperateRequest {
            msg_id,
            command: op.command.clone(),
            command_key: op.command_key.clone(),
            send_resp: op.send_resp,
            input_args: to_hash_map(&op.input_args),
        })),
        Some(ReqType::Notify(notify)) => view_notify(msg_id, notify),
        _ => Ok(View::Other {
            msg_id,
            kind: kind.to_owned(),
        }),
    }
}

fn view_response(msg_id: String, resp: &pbm::Response, kind: &str) -> Result<View, UspError> {
    match &resp.resp_type {
        Some(RespType::OperateResp(op)) => {
            let results = op
                .operation_results
                .iter()
                .map(|r| operation_result(&msg_id, r))
                .collect::<Result<_, _>>()?;
            Ok(View::OperateResp { msg_id, results })
        }
        Some(RespType::NotifyResp(n)) => Ok(View::NotifyResp {
            msg_id,
            subscription_id: n.subscription_id.clone(),
        }),
        _ => Ok(View::Other {
            msg_id,
            kind: kind.to_owned(),
        }),
    }
}

fn operation_result(
    msg_id: &str,
    result: &pbm::operate_resp::OperationResult,
) -> Result<OperationResult, UspError> {
    let outcome = match &result.operation_resp {
        Some(OperationResp::ReqObjPath(path)) => OperationOutcome::Accepted {
            req_obj_path: path.clone(),
        },
        Some(OperationResp::ReqOutputArgs(out)) => {
            OperationOutcome::Output(to_hash_map(&out.output_args))
        }
        Some(OperationResp::CmdFailure(f)) => OperationOutcome::Failed(CommandFailure {
            err_code: f.err_code,
            err_msg: f.err_msg.clone(),
        }),
        None => {
            return Err(shape(
                msg_id,
                format!(
                    "operation result for {:?} with req_obj_path, req_output_args or cmd_failure",
                    result.executed_command
                ),
            ));
        }
    };
    Ok(OperationResult {
        executed_command: result.executed_command.clone(),
        outcome,
    })
}

fn notification<T>(msg_id: &str, notify: &pbm::Notify, body: T) -> Notification<T> {
    Notification {
        msg_id: msg_id.to_owned(),
        subscription_id: notify.subscription_id.clone(),
        send_resp: notify.send_resp,
        body,
    }
}

fn view_notify(msg_id: String, notify: &pbm::Notify) -> Result<View, UspError> {
    match &notify.notification {
        Some(PbNotification::Event(ev)) => view_event(&msg_id, notify, ev),
        Some(PbNotification::OperComplete(oc)) => {
            let body = oper_complete(&msg_id, oc)?;
            Ok(View::OperComplete(notification(&msg_id, notify, body)))
        }
        Some(other) => Ok(View::Other {
            kind: format!("notify.{}", notification_kind(other)),
            msg_id,
        }),
        None => Err(shape(&msg_id, "a notify with a notification set")),
    }
}

fn view_event(
    msg_id: &str,
    notify: &pbm::Notify,
    ev: &pbm::notify::Event,
) -> Result<View, UspError> {
    match (ev.obj_path.as_str(), ev.event_name.as_str()) {
        (TRANSFER_COMPLETE_OBJ, TRANSFER_COMPLETE_EVENT) => {
            let body = TransferComplete::from_params(&ev.params)?;
            Ok(View::TransferComplete(notification(msg_id, notify, body)))
        }
        (BOOT_OBJ, BOOT_EVENT) => {
            let body = Boot::from_params(&ev.params)?;
            Ok(View::Boot(notification(msg_id, notify, body)))
        }
        (obj_path, event_name) => {
            let body = (obj_path.to_owned(), event_name.to_owned());
            Ok(View::OtherEvent(notification(msg_id, notify, body)))
        }
    }
}

fn oper_complete(
    msg_id: &str,
    oc: &pbm::notify::OperationComplete,
) -> Result<OperComplete, UspError> {
    use crate::pb::msg::notify::operation_complete::OperationResp as Resp;

    let result = match &oc.operation_resp {
        Some(Resp::ReqOutputArgs(out)) => Ok(to_hash_map(&out.output_args)),
        Some(Resp::CmdFailure(f)) => Err(CommandFailure {
            err_code: f.err_code,
            err_msg: f.err_msg.clone(),
        }),
        None => {
            return Err(shape(
                msg_id,
                "an oper_complete with req_output_args or cmd_failure",
            ));
        }
    };
    Ok(OperComplete {
        obj_path: oc.obj_path.clone(),
        command_name: oc.command_name.clone(),
        command_key: oc.command_key.clone(),
        result,
    })
}

fn notification_kind(n: &PbNotification) -> &'static str {
    match n {
        PbNotification::Event(_) => "event",
        PbNotification::ValueChange(_) => "value_change",
        PbNotification::ObjCreation(_) => "obj_creation",
        PbNotification::ObjDeletion(_) => "obj_deletion",
        PbNotification::OperComplete(_) => "oper_complete",
        PbNotification::OnBoardReq(_) => "on_board_req",
    }
}

fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}
