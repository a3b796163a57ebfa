//! The job-status updater: records a device's outcome on its job execution.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use tracing::info;

use crate::ErrorName;
use crate::model::JobExecutionStatus;
use crate::ports::{JobExecutionUpdate, Jobs, PortError};

/// AWS IoT Jobs limits each statusDetails value to this many characters.
pub const MAX_DETAIL_CHARS: usize = 1024;

/// The task input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateJobExecutionInput {
    /// The device.
    pub thing_name: String,
    /// The job.
    pub job_id: String,
    /// The new status name (`SUCCEEDED`, ...).
    pub status: String,
    /// Details; non-string values are written as JSON text.
    #[serde(default)]
    pub status_details: BTreeMap<String, Value>,
}

/// Why the update failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JobStatusError {
    /// The input is not valid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The job or its execution for this device does not exist.
    #[error("job execution not found: {0}")]
    NotFound(String),
    /// The execution is already terminal.
    #[error("job execution already finished: {0}")]
    Conflict(String),
    /// The job service failed.
    #[error("job service failed: {0}")]
    Service(PortError),
}

impl ErrorName for JobStatusError {
    fn error_name(&self) -> &'static str {
        match self {
            JobStatusError::InvalidInput(_) => "InvalidInput",
            JobStatusError::NotFound(_) => "JobExecutionNotFound",
            JobStatusError::Conflict(_) => "JobExecutionConflict",
            JobStatusError::Service(_) => "JobServiceError",
        }
    }
}

/// Updates the job execution.
pub async fn update_job_execution(
    jobs: &dyn Jobs,
    input: &UpdateJobExecutionInput,
) -> Result<JobExecutionStatus, JobStatusError> {
    let status: JobExecutionStatus = input.status.parse().map_err(JobStatusError::InvalidInput)?;
    if status == JobExecutionStatus::Queued {
        return Err(JobStatusError::InvalidInput(
            "a job execution cannot be set back to QUEUED".into(),
        ));
    }
    let status_details = input
        .status_details
        .iter()
        .map(|(key, value)| (key.clone(), detail_text(value)))
        .collect();
    let update = JobExecutionUpdate {
        thing_name: input.thing_name.clone(),
        job_id: input.job_id.clone(),
        status,
        status_details,
    };
    jobs.update_job_execution(update)
        .await
        .map_err(|e| match e {
            PortError::NotFound { .. } => {
                JobStatusError::NotFound(format!("{}/{}", input.job_id, input.thing_name))
            }
            PortError::Conflict(reason) => JobStatusError::Conflict(reason),
            PortError::Invalid(reason) => JobStatusError::InvalidInput(reason),
            other => JobStatusError::Service(other),
        })?;
    info!(device = %input.thing_name, job_id = %input.job_id, status = %status, "job execution updated");
    Ok(status)
}

fn detail_text(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX_DETAIL_CHARS {
        text
    } else {
        let mut cut: String = text.chars().take(MAX_DETAIL_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_details_are_cut_to_the_aws_limit() {
        let text = detail_text(&Value::String("x".repeat(5000)));
        assert_eq!(text.chars().count(), MAX_DETAIL_CHARS);
        assert_eq!(detail_text(&serde_json::json!(42)), "42");
    }
}
