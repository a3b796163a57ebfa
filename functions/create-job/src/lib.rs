//! JobsCreateJob: the operator's entry point. Takes the campaign payload
//! (`{"firmwareVersion", "upgradeTrigger", "targetArn"}`), fills the `FirmwareUpgrade` job
//! template and creates the IoT job; the notify-next rule then starts one execution per device.

use serde_json::Value;
use wme_lambda::failure;
use wme_lambda::lambda_runtime::Diagnostic;
use wme_workflow::ports::Jobs;

/// Creates the job; its id, ARN and document are the function's result.
pub async fn handle(jobs: &dyn Jobs, event: Value) -> Result<Value, Diagnostic> {
    let created = wme_workflow::create_job(jobs, &event).await.map_err(|e| {
        tracing::warn!(error = %e, "job not created");
        failure(&e)
    })?;
    Ok(serde_json::to_value(created).expect("a created job serializes"))
}
