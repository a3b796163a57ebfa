//! The device-message handler, invoked by the IoT rule on `usp/v1/controller/#` with
//! `{"topic": topic(), "payload": encode(*, 'base64')}`: decodes the USP Record and completes the
//! task token waiting for it.
//!
//! A message that cannot be used (malformed, misaddressed, duplicate, late) is logged with its
//! reason and dropped: the invocation succeeds, so Lambda does not retry it. A passing failure of
//! the token table, IoT Data or Step Functions fails the invocation, so the asynchronous invoke
//! retries it; the handler has released the event for that redelivery.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{info, warn};
use wme_lambda::lambda_runtime::Diagnostic;
use wme_lambda::parse_input;
use wme_workflow::device_message::DeviceMessagePorts;
use wme_workflow::ports::{CallbackError, PortError};
use wme_workflow::{Controller, DeviceMessageError, MessageOutcome};

/// What the IoT rule sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEvent {
    /// The MQTT topic the device published on.
    pub topic: String,
    /// The USP Record, base64.
    pub payload: String,
}

/// Handles one Record; the result says what became of it.
pub async fn handle(
    ports: &DeviceMessagePorts<'_>,
    controller: &Controller,
    event: Value,
) -> Result<Value, Diagnostic> {
    let event: RuleEvent = parse_input(event)?;
    let bytes = match BASE64.decode(event.payload.trim()) {
        Ok(bytes) => bytes,
        Err(e) => {
            warn!(topic = %event.topic, error = %e, "device message dropped: payload is not base64");
            return Ok(json!({"dropped": "malformed"}));
        }
    };
    match wme_workflow::handle_device_message(ports, controller, &event.topic, &bytes).await {
        Ok(outcome) => Ok(describe(&outcome)),
        Err(error) => match retry_name(&error) {
            Some(name) => {
                warn!(topic = %event.topic, error = %error, "device message failed, to be retried");
                Err(Diagnostic {
                    error_type: name.into(),
                    error_message: error.to_string(),
                })
            }
            None => {
                info!(topic = %event.topic, reason = error.reason(), error = %error, "device message dropped");
                Ok(json!({"dropped": error.reason()}))
            }
        },
    }
}

/// The error name of a failure worth retrying, or `None` for a message to drop.
pub fn retry_name(error: &DeviceMessageError) -> Option<&'static str> {
    match error {
        DeviceMessageError::TokenStore(PortError::Unavailable(_)) => Some("TokenStoreError"),
        DeviceMessageError::Channel(PortError::Unavailable(_)) => Some("DeviceChannelError"),
        DeviceMessageError::Callback {
            error: CallbackError::Unavailable(_),
            ..
        } => Some("TaskCallbackError"),
        _ => None,
    }
}

fn describe(outcome: &MessageOutcome) -> Value {
    match outcome {
        MessageOutcome::Completed { key, success } => {
            json!({"completed": key.to_string(), "success": success})
        }
        MessageOutcome::Buffered { key } => json!({"buffered": key.to_string()}),
        MessageOutcome::AgentConnected {
            thing_name,
            endpoint_id,
        } => json!({"agentConnected": thing_name, "endpointId": endpoint_id}),
        MessageOutcome::Ignored { thing_name, what } => {
            json!({"ignored": what, "thingName": thing_name})
        }
    }
}
