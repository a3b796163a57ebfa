//! The event waiter: parks a task token until the device reports the event it waits for, or
//! completes it at once when the event arrived before the waiter did.

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::ErrorName;
use crate::model::{EventOutcome, WaitKey, WaitKind};
use crate::ports::{CallbackError, PortError, TaskCallbacks, TokenStore, WaiterRegistered};

/// The task input (the state machine's `Payload`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwaitEventInput {
    /// The device.
    pub thing_name: String,
    /// The job id (the USP command key).
    pub job_id: String,
    /// `TransferComplete`, `OperationComplete` or `Boot`.
    pub event: String,
    /// The task token to complete.
    pub task_token: String,
}

/// What the waiter did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitEventOutput {
    /// Whether the token now waits (false: the event had arrived and the token was completed).
    pub waiting: bool,
}

/// Why the waiter could not be registered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AwaitEventError {
    /// The input is not what the state machine should send.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A token already waits for this event.
    #[error("a task already waits for `{0}`")]
    AlreadyWaiting(String),
    /// The token store failed.
    #[error("token store failed: {0}")]
    TokenStore(PortError),
    /// Completing the token with the early event failed.
    #[error("completing the task with the early event failed: {0}")]
    Callback(CallbackError),
}

impl ErrorName for AwaitEventError {
    fn error_name(&self) -> &'static str {
        match self {
            AwaitEventError::InvalidInput(_) => "InvalidInput",
            AwaitEventError::AlreadyWaiting(_) => "AlreadyWaiting",
            AwaitEventError::TokenStore(_) => "TokenStoreError",
            AwaitEventError::Callback(_) => "TaskCallbackError",
        }
    }
}

/// Registers the waiter, or completes the token with an event that came first.
pub async fn await_device_event(
    tokens: &dyn TokenStore,
    callbacks: &dyn TaskCallbacks,
    input: &AwaitEventInput,
) -> Result<AwaitEventOutput, AwaitEventError> {
    let kind: WaitKind = input.event.parse().map_err(AwaitEventError::InvalidInput)?;
    if kind == WaitKind::OperateResp {
        return Err(AwaitEventError::InvalidInput(
            "`OperateResp` is awaited by the command sender, not by the event waiter".into(),
        ));
    }
    if input.thing_name.is_empty() || input.job_id.is_empty() || input.task_token.is_empty() {
        return Err(AwaitEventError::InvalidInput(
            "`thingName`, `jobId` and `taskToken` must not be empty".into(),
        ));
    }
    let key = WaitKey::new(&input.thing_name, &input.job_id, kind);
    match tokens.register_waiter(&key, &input.task_token).await {
        Ok(WaiterRegistered::Waiting) => {
            debug!(key = %key, "waiting for device event");
            Ok(AwaitEventOutput { waiting: true })
        }
        Ok(WaiterRegistered::EventAlreadyArrived(outcome)) => {
            debug!(key = %key, "event arrived before its waiter, completing now");
            complete(callbacks, &input.task_token, &outcome)
                .await
                .map_err(|e| {
                    warn!(key = %key, error = %e, "completing early event failed");
                    AwaitEventError::Callback(e)
                })?;
            Ok(AwaitEventOutput { waiting: false })
        }
        Ok(WaiterRegistered::AlreadyWaiting) => {
            Err(AwaitEventError::AlreadyWaiting(key.to_string()))
        }
        Err(e) => Err(AwaitEventError::TokenStore(e)),
    }
}

/// Completes `token` with `outcome`: SendTaskSuccess or SendTaskFailure.
pub async fn complete(
    callbacks: &dyn TaskCallbacks,
    token: &str,
    outcome: &EventOutcome,
) -> Result<(), CallbackError> {
    match outcome {
        EventOutcome::Success { output } => {
            callbacks.send_task_success(token, output.clone()).await
        }
        EventOutcome::Failure { error, cause } => {
            callbacks.send_task_failure(token, error, cause).await
        }
    }
}
