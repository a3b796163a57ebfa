//! The local counterparts of the Lambda functions: the workflow's handlers bound to the local
//! ports, invoked by name with a JSON payload and answering with a JSON result or an error type,
//! exactly as the state machine sees Lambda functions on AWS.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use wme_workflow::device_message::DeviceMessagePorts;
use wme_workflow::ports::TaskCallbacks;
use wme_workflow::send_command::SendCommandPorts;
use wme_workflow::{
    Controller, DeviceMessageError, ErrorName, MessageOutcome, await_device_event, create_job,
    handle_device_message, send_usp_command, update_job_execution,
};

use crate::artifacts::Artifacts;
use crate::jobs::LocalJobs;
use crate::mqtt_link::MqttLink;
use crate::tokens::LocalTokenStore;

/// Function names, as `template.yaml` names the functions.
pub mod names {
    /// Creates a campaign's job.
    pub const CREATE_JOB: &str = "JobsCreateJob";
    /// Sends the Download() Operate.
    pub const SEND_USP_COMMAND: &str = "SendUspCommand";
    /// Parks a token until the device reports an event.
    pub const AWAIT_DEVICE_EVENT: &str = "AwaitDeviceEvent";
    /// Records a job execution's status.
    pub const UPDATE_JOB_EXECUTION: &str = "UpdateJobExecution";
    /// Handles a device's USP Record (invoked by the rule).
    pub const HANDLE_DEVICE_MESSAGE: &str = "HandleDeviceMessage";
    /// All functions.
    pub const ALL: [&str; 5] = [
        CREATE_JOB,
        SEND_USP_COMMAND,
        AWAIT_DEVICE_EVENT,
        UPDATE_JOB_EXECUTION,
        HANDLE_DEVICE_MESSAGE,
    ];
}

/// A function's failure, as Lambda reports it: an error type and a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct FunctionError {
    /// The stable error name (`errorType`).
    pub error_type: String,
    /// The message (`errorMessage`).
    pub message: String,
}

impl FunctionError {
    fn from_error(error: &(impl ErrorName + std::fmt::Display)) -> Self {
        Self {
            error_type: error.error_name().into(),
            message: error.to_string(),
        }
    }

    fn invalid_input(message: String) -> Self {
        Self {
            error_type: "InvalidInput".into(),
            message,
        }
    }
}

/// The functions and the ports they run on.
pub struct Functions {
    /// Jobs service.
    pub jobs: Arc<LocalJobs>,
    /// Token table.
    pub tokens: Arc<LocalTokenStore>,
    /// The engine's callbacks.
    pub callbacks: Arc<dyn TaskCallbacks>,
    /// MQTT link.
    pub link: Arc<MqttLink>,
    /// Firmware images.
    pub artifacts: Arc<Artifacts>,
    /// Controller identity.
    pub controller: Controller,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("controller", &self.controller)
            .finish_non_exhaustive()
    }
}

impl Functions {
    /// Invokes function `name` with `payload`.
    pub async fn invoke(&self, name: &str, payload: Value) -> Result<Value, FunctionError> {
        match name {
            names::CREATE_JOB => {
                let created = create_job(self.jobs.as_ref(), &payload)
                    .await
                    .map_err(|e| FunctionError::from_error(&e))?;
                Ok(json!(created))
            }
            names::SEND_USP_COMMAND => {
                let input = parse(payload)?;
                let ports = SendCommandPorts {
                    tokens: self.tokens.as_ref(),
                    devices: self.link.as_ref(),
                    artifacts: self.artifacts.as_ref(),
                };
                let sent = send_usp_command(&ports, &self.controller, &input)
                    .await
                    .map_err(|e| FunctionError::from_error(&e))?;
                Ok(json!(sent))
            }
            names::AWAIT_DEVICE_EVENT => {
                let input = parse(payload)?;
                let out = await_device_event(self.tokens.as_ref(), self.callbacks.as_ref(), &input)
                    .await
                    .map_err(|e| FunctionError::from_error(&e))?;
                Ok(json!(out))
            }
            names::UPDATE_JOB_EXECUTION => {
                let input = parse(payload)?;
                let status = update_job_execution(self.jobs.as_ref(), &input)
                    .await
                    .map_err(|e| FunctionError::from_error(&e))?;
                Ok(json!({"status": status}))
            }
            other => Err(FunctionError {
                error_type: "Lambda.ResourceNotFoundException".into(),
                message: format!(
                    "function `{other}` not found; known: {}",
                    names::ALL.join(", ")
                ),
            }),
        }
    }

    /// The device-message handler, as the rule invokes it with a Record's raw bytes.
    pub async fn handle_device_message(
        &self,
        topic: &str,
        payload: &[u8],
    ) -> Result<MessageOutcome, DeviceMessageError> {
        let ports = DeviceMessagePorts {
            tokens: self.tokens.as_ref(),
            callbacks: self.callbacks.as_ref(),
            devices: self.link.as_ref(),
        };
        handle_device_message(&ports, &self.controller, topic, payload).await
    }
}

fn parse<T: DeserializeOwned>(payload: Value) -> Result<T, FunctionError> {
    serde_json::from_value(payload).map_err(|e| FunctionError::invalid_input(e.to_string()))
}
