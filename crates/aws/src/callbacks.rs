//! Step Functions task callbacks: SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat, with
//! the service's refusals mapped to [`CallbackError`] by name.

use async_trait::async_trait;
use aws_sdk_sfn::Client;
use aws_sdk_sfn::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use serde_json::Value;
use wme_workflow::ports::{CallbackError, TaskCallbacks};

/// Step Functions as the engine that waits on task tokens.
#[derive(Debug, Clone)]
pub struct SfnCallbacks {
    client: Client,
}

impl SfnCallbacks {
    /// Callbacks through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl TaskCallbacks for SfnCallbacks {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(callback_error)
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError> {
        self.client
            .send_task_failure()
            .task_token(token)
            .error(error)
            .cause(cause)
            .send()
            .await
            .map(|_| ())
            .map_err(callback_error)
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        self.client
            .send_task_heartbeat()
            .task_token(token)
            .send()
            .await
            .map(|_| ())
            .map_err(callback_error)
    }
}

/// Maps a refusal to the port's error by the service's error code, which all three calls share.
fn callback_error<E, R>(error: SdkError<E, R>) -> CallbackError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = format!("{}", DisplayErrorContext(&error));
    match error.code() {
        Some("TaskTimedOut") => CallbackError::TaskTimedOut(text),
        Some("InvalidToken") => CallbackError::InvalidToken(text),
        Some("TaskDoesNotExist") => CallbackError::TaskDoesNotExist(text),
        _ => CallbackError::Unavailable(text),
    }
}
