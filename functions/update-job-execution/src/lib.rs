//! The job-status updater: the state machine's MarkInProgress and MarkJobExecution tasks. On AWS
//! a `TIMED_OUT` outcome is written as `FAILED` with `timedOut` = `true` (see `wme-aws`'s
//! `jobs` module): only the service may set `TIMED_OUT`.

use serde_json::{Value, json};
use wme_lambda::lambda_runtime::Diagnostic;
use wme_lambda::{failure, parse_input};
use wme_workflow::UpdateJobExecutionInput;
use wme_workflow::ports::Jobs;

/// Updates the execution; the status written is the result.
pub async fn handle(jobs: &dyn Jobs, event: Value) -> Result<Value, Diagnostic> {
    let input: UpdateJobExecutionInput = parse_input(event)?;
    let status = wme_workflow::update_job_execution(jobs, &input)
        .await
        .map_err(|e| {
            tracing::warn!(device = %input.thing_name, job_id = %input.job_id, error = %e, "job execution not updated");
            failure(&e)
        })?;
    Ok(json!({"status": status.as_str()}))
}
