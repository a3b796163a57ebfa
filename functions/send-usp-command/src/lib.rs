//! The USP command sender: the state machine's SendDownload task (`.waitForTaskToken`). Presigns
//! the firmware URL, registers the task token that the OperateResp completes, and publishes the
//! `Download()` Operate through IoT Data Publish (a Lambda keeps no MQTT connection).

use serde_json::Value;
use wme_lambda::lambda_runtime::Diagnostic;
use wme_lambda::{failure, parse_input};
use wme_workflow::send_command::SendCommandPorts;
use wme_workflow::{Controller, SendCommandInput};

/// Sends the command; the Operate's msg id and topic are the result (Step Functions waits for
/// the token, not for this result).
pub async fn handle(
    ports: &SendCommandPorts<'_>,
    controller: &Controller,
    event: Value,
) -> Result<Value, Diagnostic> {
    let input: SendCommandInput = parse_input(event)?;
    let sent = wme_workflow::send_usp_command(ports, controller, &input)
        .await
        .map_err(|e| {
            tracing::warn!(device = %input.thing_name, job_id = %input.job_id, error = %e, "download not sent");
            failure(&e)
        })?;
    Ok(serde_json::to_value(sent).expect("a send result serializes"))
}
