//! The device-message handler: decodes a USP Record an agent published, turns it into the outcome
//! of the event a task token waits for, and completes that token at most once.
//!
//! Every Record that cannot be used is answered with a [`DeviceMessageError`] naming why; the
//! caller logs and counts it, and nothing else changes.

use std::collections::HashMap;

use serde_json::{Value, json};
use tracing::debug;
use wme_usp::{
    Boot, CommandFailure, Notification, OperComplete, OperationOutcome, OperationResult,
    RecordPayload, TransferComplete, UspError, View,
};

use crate::model::{Controller, EventOutcome, WaitKey, WaitKind, thing_from_controller_topic};
use crate::ports::{
    AgentAddress, CallbackError, DeviceChannel, EventRecorded, PortError, TaskCallbacks, TokenStore,
};
use crate::send_command::{agent_address, command_key_of_msg_id, outbound};
use crate::wait_event::complete;

/// The Boot! ParameterMap entry that carries the running firmware version.
pub const SOFTWARE_VERSION_PARAM: &str = "Device.DeviceInfo.SoftwareVersion";

/// What a usable message did.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageOutcome {
    /// The waiting task was completed (with success or failure).
    Completed {
        /// The event.
        key: WaitKey,
        /// Whether the task succeeded.
        success: bool,
    },
    /// The event came before its waiter and is kept for it.
    Buffered {
        /// The event.
        key: WaitKey,
    },
    /// An agent announced itself with an MQTT connect record.
    AgentConnected {
        /// The device.
        thing_name: String,
        /// Its endpoint id.
        endpoint_id: String,
    },
    /// A valid message the workflow has no use for (a NotifyResp, another event).
    Ignored {
        /// The device.
        thing_name: String,
        /// What it was.
        what: String,
    },
}

/// Why a message was dropped.
#[derive(Debug, thiserror::Error)]
pub enum DeviceMessageError {
    /// The topic is not a controller topic of one device.
    #[error("message on unexpected topic `{0}`")]
    UnexpectedTopic(String),
    /// The bytes are not a usable USP Record.
    #[error("malformed usp record from `{thing_name}`: {error}")]
    Malformed {
        /// The device.
        thing_name: String,
        /// The decoder's error.
        error: UspError,
    },
    /// The Record is addressed to another endpoint.
    #[error("record from `{thing_name}` is addressed to `{to_id}`, not to this controller")]
    NotForController {
        /// The device.
        thing_name: String,
        /// The Record's to_id.
        to_id: String,
    },
    /// The Record's sender is not the agent of the topic's thing.
    #[error("record on `{thing_name}`'s topic comes from `{from_id}`, expected `{expected}`")]
    EndpointMismatch {
        /// The device.
        thing_name: String,
        /// The Record's from_id.
        from_id: String,
        /// The agent endpoint id of the thing.
        expected: String,
    },
    /// No command with this key was sent to this device.
    #[error("{key}: no such command was sent to this device")]
    UnknownCommand {
        /// The event.
        key: WaitKey,
    },
    /// The event was already received.
    #[error("{key}: duplicate notification")]
    Duplicate {
        /// The event.
        key: WaitKey,
    },
    /// The task waiting for the event had already ended: it timed out, or the workflow stopped
    /// waiting because another step failed.
    #[error("{key}: arrived after its wait ended (timed out, or another step had failed)")]
    Late {
        /// The event.
        key: WaitKey,
    },
    /// A message an agent should not send to a controller.
    #[error("unexpected {what} from `{thing_name}`")]
    Unexpected {
        /// The device.
        thing_name: String,
        /// What it was.
        what: String,
    },
    /// The token store failed.
    #[error("token store failed: {0}")]
    TokenStore(PortError),
    /// The device channel failed (remembering or looking up an agent's address).
    #[error("device channel failed: {0}")]
    Channel(PortError),
    /// Completing the task failed for a reason other than lateness.
    #[error("{key}: completing the task failed: {error}")]
    Callback {
        /// The event.
        key: WaitKey,
        /// The engine's answer.
        error: CallbackError,
    },
}

impl DeviceMessageError {
    /// A short stable name for counting drops by reason.
    pub fn reason(&self) -> &'static str {
        match self {
            DeviceMessageError::UnexpectedTopic(_) => "unexpected_topic",
            DeviceMessageError::Malformed { .. } => "malformed",
            DeviceMessageError::NotForController { .. } => "wrong_to_id",
            DeviceMessageError::EndpointMismatch { .. } => "wrong_from_id",
            DeviceMessageError::UnknownCommand { .. } => "unknown_command_key",
            DeviceMessageError::Duplicate { .. } => "duplicate",
            DeviceMessageError::Late { .. } => "after_wait_ended",
            DeviceMessageError::Unexpected { .. } => "unexpected_message",
            DeviceMessageError::TokenStore(_) => "token_store",
            DeviceMessageError::Channel(_) => "device_channel",
            DeviceMessageError::Callback { .. } => "callback",
        }
    }
}

/// The ports the handler needs.
pub struct DeviceMessagePorts<'a> {
    /// Task-token table.
    pub tokens: &'a dyn TokenStore,
    /// The engine's callbacks.
    pub callbacks: &'a dyn TaskCallbacks,
    /// The MQTT side (for NotifyResp and agent addresses).
    pub devices: &'a dyn DeviceChannel,
}

/// Handles one message published on a controller topic.
pub async fn handle_device_message(
    ports: &DeviceMessagePorts<'_>,
    controller: &Controller,
    topic: &str,
    payload: &[u8],
) -> Result<MessageOutcome, DeviceMessageError> {
    let thing_name = thing_from_controller_topic(topic)
        .ok_or_else(|| DeviceMessageError::UnexpectedTopic(topic.to_string()))?;
    let thing = thing_name.to_string();
    let record =
        wme_usp::decode_record(payload).map_err(|error| DeviceMessageError::Malformed {
            thing_name: thing.clone(),
            error,
        })?;
    if record.to_id != controller.endpoint_id {
        return Err(DeviceMessageError::NotForController {
            thing_name: thing,
            to_id: record.to_id,
        });
    }
    let msg = match record.payload {
        RecordPayload::MqttConnect {
            version,
            subscribed_topic,
        } => {
            let address = AgentAddress {
                endpoint_id: record.from_id.clone(),
                topic: subscribed_topic,
                mqtt5: matches!(version, wme_usp::MqttVersion::V5),
            };
            ports
                .devices
                .remember_agent_address(&thing, address)
                .await
                .map_err(DeviceMessageError::Channel)?;
            return Ok(MessageOutcome::AgentConnected {
                thing_name: thing,
                endpoint_id: record.from_id,
            });
        }
        RecordPayload::Other(kind) => {
            return Err(DeviceMessageError::Unexpected {
                thing_name: thing,
                what: format!("{kind} record"),
            });
        }
        RecordPayload::Msg(msg) => msg,
    };
    let address = agent_address(ports.devices, controller, &thing)
        .await
        .map_err(|e| match e {
            crate::SendCommandError::Publish { error, .. } => DeviceMessageError::Channel(error),
            other => DeviceMessageError::Channel(PortError::Unavailable(other.to_string())),
        })?;
    if record.from_id != address.endpoint_id {
        return Err(DeviceMessageError::EndpointMismatch {
            thing_name: thing,
            from_id: record.from_id,
            expected: address.endpoint_id,
        });
    }
    let view = wme_usp::view(&msg).map_err(|error| DeviceMessageError::Malformed {
        thing_name: thing.clone(),
        error,
    })?;
    acknowledge_notify(ports, controller, &thing, &address, &view).await;
    let Some((key, outcome)) = interpret(&thing, view)? else {
        return Ok(MessageOutcome::Ignored {
            thing_name: thing,
            what: "message".into(),
        });
    };
    deliver(ports, key, outcome).await
}

/// Sends the NotifyResp an agent asked for; a failure is logged, the event is still used.
async fn acknowledge_notify(
    ports: &DeviceMessagePorts<'_>,
    controller: &Controller,
    thing: &str,
    address: &AgentAddress,
    view: &View,
) {
    let (msg_id, subscription_id) = match view {
        View::TransferComplete(n) if n.send_resp => (&n.msg_id, &n.subscription_id),
        View::Boot(n) if n.send_resp => (&n.msg_id, &n.subscription_id),
        View::OperComplete(n) if n.send_resp => (&n.msg_id, &n.subscription_id),
        View::OtherEvent(n) if n.send_resp => (&n.msg_id, &n.subscription_id),
        _ => return,
    };
    let resp = wme_usp::notify_resp(msg_id, subscription_id);
    let payload = wme_usp::encode_msg_record(&controller.endpoint_id, &address.endpoint_id, &resp);
    if let Err(error) = ports
        .devices
        .publish(outbound(thing, address, payload))
        .await
    {
        debug!(device = %thing, msg_id = %msg_id, error = %error, "notify response not sent");
    }
}

/// Which wait a message answers, and how; `None` for messages the workflow does not use.
fn interpret(
    thing: &str,
    view: View,
) -> Result<Option<(WaitKey, EventOutcome)>, DeviceMessageError> {
    let unexpected = |what: &str| DeviceMessageError::Unexpected {
        thing_name: thing.to_string(),
        what: what.to_string(),
    };
    let answer = match view {
        View::OperateResp { msg_id, results } => {
            let key = operate_key(thing, &msg_id)?;
            (key, operate_resp_outcome(&results))
        }
        View::Error {
            msg_id,
            err_code,
            err_msg,
        } => {
            let key = operate_key(thing, &msg_id)?;
            let cause = json!({"errCode": err_code, "errMsg": err_msg});
            (key, failure("Usp.Error", cause))
        }
        View::TransferComplete(n) => transfer_complete(thing, n),
        View::OperComplete(n) if n.body.command_name.ends_with("Download()") => {
            oper_complete(thing, n)
        }
        View::Boot(n) if !n.body.command_key.is_empty() => boot(thing, n),
        View::OperComplete(_) | View::Boot(_) | View::OtherEvent(_) | View::NotifyResp { .. } => {
            return Ok(None);
        }
        View::Operate(_) => return Err(unexpected("Operate request")),
        View::Other { kind, .. } => return Err(unexpected(&kind)),
    };
    Ok(Some(answer))
}

fn operate_key(thing: &str, msg_id: &str) -> Result<WaitKey, DeviceMessageError> {
    match command_key_of_msg_id(msg_id) {
        Some(command_key) => Ok(WaitKey::new(thing, command_key, WaitKind::OperateResp)),
        None => Err(DeviceMessageError::UnknownCommand {
            key: WaitKey::new(thing, msg_id, WaitKind::OperateResp),
        }),
    }
}

fn operate_resp_outcome(results: &[OperationResult]) -> EventOutcome {
    let Some(result) = results.first() else {
        return failure(
            "Usp.InvalidOperateResp",
            json!({"reason": "OperateResp has no result"}),
        );
    };
    match &result.outcome {
        OperationOutcome::Accepted { req_obj_path } => success(json!({
            "executedCommand": result.executed_command,
            "reqObjPath": req_obj_path,
        })),
        OperationOutcome::Output(args) => success(json!({
            "executedCommand": result.executed_command,
            "outputArgs": args_json(args),
        })),
        OperationOutcome::Failed(CommandFailure { err_code, err_msg }) => failure(
            "Usp.OperateFailed",
            json!({"executedCommand": result.executed_command, "errCode": err_code, "errMsg": err_msg}),
        ),
    }
}

fn transfer_complete(thing: &str, n: Notification<TransferComplete>) -> (WaitKey, EventOutcome) {
    let event = n.body;
    let key = WaitKey::new(thing, &event.command_key, WaitKind::TransferComplete);
    let outcome = if event.fault_code == 0 {
        success(json!({
            "transferUrl": event.transfer_url,
            "affected": event.affected,
            "startTime": event.start_time,
            "completeTime": event.complete_time,
        }))
    } else {
        failure(
            "Usp.TransferFailed",
            json!({"faultCode": event.fault_code, "faultString": event.fault_string}),
        )
    };
    (key, outcome)
}

fn oper_complete(thing: &str, n: Notification<OperComplete>) -> (WaitKey, EventOutcome) {
    let event = n.body;
    let key = WaitKey::new(thing, &event.command_key, WaitKind::OperationComplete);
    let outcome = match event.result {
        Ok(args) => success(json!({"objPath": event.obj_path, "outputArgs": args_json(&args)})),
        Err(CommandFailure { err_code, err_msg }) => failure(
            "Usp.OperationFailed",
            json!({"errCode": err_code, "errMsg": err_msg}),
        ),
    };
    (key, outcome)
}

fn boot(thing: &str, n: Notification<Boot>) -> (WaitKey, EventOutcome) {
    let event = n.body;
    let key = WaitKey::new(thing, &event.command_key, WaitKind::Boot);
    let outcome = match event.parameters() {
        Ok(parameters) => success(json!({
            "firmwareUpdated": event.firmware_updated,
            "firmwareVersion": parameters.get(SOFTWARE_VERSION_PARAM).cloned().unwrap_or(Value::Null),
            "cause": event.cause,
        })),
        Err(error) => failure(
            "Usp.MalformedBootEvent",
            json!({"reason": error.to_string()}),
        ),
    };
    (key, outcome)
}

/// Records the outcome and completes the waiting token, if any, then heartbeats the device's
/// other waiting tasks: progress on one event is a sign of life for the others.
async fn deliver(
    ports: &DeviceMessagePorts<'_>,
    key: WaitKey,
    outcome: EventOutcome,
) -> Result<MessageOutcome, DeviceMessageError> {
    let recorded = ports
        .tokens
        .record_event(&key, &outcome)
        .await
        .map_err(DeviceMessageError::TokenStore)?;
    let result = match recorded {
        EventRecorded::UnknownCommand => return Err(DeviceMessageError::UnknownCommand { key }),
        EventRecorded::Duplicate => return Err(DeviceMessageError::Duplicate { key }),
        EventRecorded::Buffered => Ok(MessageOutcome::Buffered { key: key.clone() }),
        EventRecorded::Claimed { token } => {
            match complete(ports.callbacks, &token, &outcome).await {
                Ok(()) => Ok(MessageOutcome::Completed {
                    key: key.clone(),
                    success: matches!(outcome, EventOutcome::Success { .. }),
                }),
                Err(CallbackError::TaskTimedOut(_) | CallbackError::TaskDoesNotExist(_)) => {
                    Err(DeviceMessageError::Late { key: key.clone() })
                }
                Err(error) => {
                    // Not late: the task still waits. Forget the event so a redelivery completes it.
                    if let Err(e) = ports.tokens.release_event(&key).await {
                        debug!(key = %key, error = %e, "event not released after a failed callback");
                    }
                    Err(DeviceMessageError::Callback {
                        key: key.clone(),
                        error,
                    })
                }
            }
        }
    };
    heartbeat_others(ports, &key).await;
    result
}

async fn heartbeat_others(ports: &DeviceMessagePorts<'_>, key: &WaitKey) {
    let Ok(tokens) = ports
        .tokens
        .waiting_tokens(&key.thing_name, &key.command_key)
        .await
    else {
        return;
    };
    for token in tokens {
        if let Err(error) = ports.callbacks.send_task_heartbeat(&token).await {
            debug!(key = %key, error = %error, "heartbeat not delivered");
        }
    }
}

fn success(output: Value) -> EventOutcome {
    EventOutcome::Success { output }
}

fn failure(error: &str, cause: Value) -> EventOutcome {
    EventOutcome::Failure {
        error: error.to_string(),
        cause: cause.to_string(),
    }
}

fn args_json(args: &HashMap<String, String>) -> Value {
    let sorted: std::collections::BTreeMap<_, _> = args.iter().collect();
    json!(sorted)
}
