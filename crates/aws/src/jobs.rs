//! IoT Jobs: job templates and jobs through the IoT control plane, job-execution updates through
//! the IoT Jobs data plane.
//!
//! AWS lets only the service set `TIMED_OUT` (it does so when an execution's in-progress timer
//! runs out); UpdateJobExecution refuses it. A workflow timeout is therefore written as `FAILED`
//! with the status detail `timedOut` = `true`, which [`aws_status`] makes explicit.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_iot::error::DisplayErrorContext;
use aws_sdk_iot::types::TargetSelection as AwsTargetSelection;
use aws_sdk_iotjobsdataplane::types::JobExecutionStatus as AwsStatus;
use tracing::info;
use wme_workflow::JobExecutionStatus;
use wme_workflow::ports::{
    JobCreated, JobExecutionUpdate, JobTemplate, Jobs, NewJob, PortError, TargetSelection,
};

/// The status detail that marks a `FAILED` execution as a workflow timeout.
pub const TIMED_OUT_DETAIL: &str = "timedOut";

/// AWS IoT Jobs.
#[derive(Debug, Clone)]
pub struct IotJobs {
    iot: aws_sdk_iot::Client,
    jobs_data: aws_sdk_iotjobsdataplane::Client,
}

impl IotJobs {
    /// Jobs over the control-plane client and a data-plane client bound to the account's
    /// `iot:Jobs` endpoint.
    pub fn new(iot: aws_sdk_iot::Client, jobs_data: aws_sdk_iotjobsdataplane::Client) -> Self {
        Self { iot, jobs_data }
    }
}

#[async_trait]
impl Jobs for IotJobs {
    async fn job_template(&self, template_id: &str) -> Result<JobTemplate, PortError> {
        let out = self
            .iot
            .describe_job_template()
            .job_template_id(template_id)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_resource_not_found_exception() => PortError::NotFound {
                    kind: "job template",
                    name: template_id.into(),
                },
                _ => service("DescribeJobTemplate", e),
            })?;
        let text = out.document().unwrap_or("{}");
        let document = serde_json::from_str(text).map_err(|e| {
            PortError::Invalid(format!(
                "job template `{template_id}` document is not json: {e}"
            ))
        })?;
        Ok(JobTemplate {
            id: template_id.into(),
            arn: out.job_template_arn().unwrap_or_default().into(),
            document,
            description: out.description().unwrap_or_default().into(),
        })
    }

    async fn create_job(&self, job: NewJob) -> Result<JobCreated, PortError> {
        let targets: Vec<String> = job.targets.iter().map(|t| t.arn().to_string()).collect();
        // The handler already filled the template's document; CreateJob is given the document
        // alone, since it documents jobTemplateArn together with documentParameters, not with a
        // document.
        let out = self
            .iot
            .create_job()
            .job_id(&job.job_id)
            .set_targets(Some(targets))
            .document(job.document.to_string())
            .description(&job.description)
            .target_selection(aws_selection(job.target_selection))
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_resource_not_found_exception() => PortError::NotFound {
                    kind: "job target",
                    name: job
                        .targets
                        .iter()
                        .map(|t| t.arn())
                        .collect::<Vec<_>>()
                        .join(", "),
                },
                Some(se) if se.is_invalid_request_exception() => {
                    PortError::Invalid(format!("{}", DisplayErrorContext(&e)))
                }
                Some(se) if se.is_resource_already_exists_exception() => {
                    PortError::Conflict(format!("job `{}` already exists", job.job_id))
                }
                _ => service("CreateJob", e),
            })?;
        info!(job_id = %job.job_id, "iot job created");
        Ok(JobCreated {
            job_id: out.job_id().unwrap_or(&job.job_id).into(),
            job_arn: out.job_arn().unwrap_or_default().into(),
        })
    }

    async fn update_job_execution(&self, update: JobExecutionUpdate) -> Result<(), PortError> {
        let (status, details) = aws_status(update.status, update.status_details.clone());
        self.jobs_data
            .update_job_execution()
            .thing_name(&update.thing_name)
            .job_id(&update.job_id)
            .status(status)
            .set_status_details(Some(details))
            .send()
            .await
            .map_err(|e| {
                let name = format!("{}/{}", update.job_id, update.thing_name);
                match e.as_service_error() {
                    Some(se) if se.is_resource_not_found_exception() => PortError::NotFound {
                        kind: "job execution",
                        name,
                    },
                    Some(se) if se.is_invalid_state_transition_exception() => {
                        PortError::Conflict(format!("job execution `{name}` is already terminal"))
                    }
                    Some(se) if se.is_invalid_request_exception() => {
                        PortError::Invalid(format!("{}", DisplayErrorContext(&e)))
                    }
                    _ => PortError::Unavailable(format!(
                        "iot jobs UpdateJobExecution failed: {}",
                        DisplayErrorContext(&e)
                    )),
                }
            })?;
        Ok(())
    }
}

/// The status UpdateJobExecution is sent, and its details: `TIMED_OUT` becomes `FAILED` with
/// `timedOut` = `true`, because only the service may set `TIMED_OUT`.
pub fn aws_status(
    status: JobExecutionStatus,
    details: impl IntoIterator<Item = (String, String)>,
) -> (AwsStatus, HashMap<String, String>) {
    let mut details: HashMap<String, String> = details.into_iter().collect();
    let status = match status {
        JobExecutionStatus::TimedOut => {
            details.insert(TIMED_OUT_DETAIL.into(), "true".into());
            AwsStatus::Failed
        }
        other => AwsStatus::from(other.as_str()),
    };
    (status, details)
}

fn aws_selection(selection: TargetSelection) -> AwsTargetSelection {
    match selection {
        TargetSelection::Snapshot => AwsTargetSelection::Snapshot,
        TargetSelection::Continuous => AwsTargetSelection::Continuous,
    }
}

fn service<E: std::error::Error>(call: &str, error: E) -> PortError {
    PortError::Unavailable(format!(
        "iot {call} failed: {}",
        DisplayErrorContext(&error)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_out_is_sent_as_failed_with_a_timed_out_detail() {
        let details = [("reason".to_string(), "no Boot! in 900 s".to_string())];
        let (status, details) = aws_status(JobExecutionStatus::TimedOut, details);
        assert_eq!(status, AwsStatus::Failed);
        assert_eq!(details["timedOut"], "true");
        assert_eq!(details["reason"], "no Boot! in 900 s");
    }

    #[test]
    fn other_statuses_keep_their_aws_name_and_details() {
        for status in JobExecutionStatus::ALL {
            if status == JobExecutionStatus::TimedOut {
                continue;
            }
            let (aws, details) = aws_status(status, []);
            assert_eq!(aws.as_str(), status.as_str());
            assert!(details.is_empty());
        }
    }
}
