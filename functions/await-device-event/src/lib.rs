//! The event waiter: the three waits of AwaitNotifications (`.waitForTaskToken`). Parks the task
//! token in the token table, or completes it at once when the device's event came first.

use serde_json::Value;
use wme_lambda::lambda_runtime::Diagnostic;
use wme_lambda::{failure, parse_input};
use wme_workflow::AwaitEventInput;
use wme_workflow::ports::{TaskCallbacks, TokenStore};

/// Registers the waiter; `{"waiting": bool}` is the result.
pub async fn handle(
    tokens: &dyn TokenStore,
    callbacks: &dyn TaskCallbacks,
    event: Value,
) -> Result<Value, Diagnostic> {
    let input: AwaitEventInput = parse_input(event)?;
    let out = wme_workflow::await_device_event(tokens, callbacks, &input)
        .await
        .map_err(|e| {
            tracing::warn!(device = %input.thing_name, job_id = %input.job_id, event = %input.event, error = %e, "waiter not registered");
            failure(&e)
        })?;
    Ok(serde_json::to_value(out).expect("a waiter result serializes"))
}
