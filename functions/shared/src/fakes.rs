//! In-memory ports for the functions' tests (feature `test-fakes`): a job service, a device
//! channel and an artifact store that record what they are asked, and callbacks that record each
//! completion.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;
use wme_workflow::ports::{
    AgentAddress, ArtifactStore, CallbackError, DeviceChannel, FirmwareImage, JobCreated,
    JobExecutionUpdate, JobTemplate, Jobs, NewJob, Outbound, PortError, TaskCallbacks,
};

/// A completion the callbacks received.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// SendTaskSuccess.
    Success(String, Value),
    /// SendTaskFailure.
    Failure(String, String),
    /// SendTaskHeartbeat.
    Heartbeat(String),
}

/// Callbacks that record every call.
#[derive(Debug, Default)]
pub struct RecordingCallbacks {
    /// The calls, in order.
    pub calls: Mutex<Vec<Completion>>,
}

#[async_trait]
impl TaskCallbacks for RecordingCallbacks {
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        self.calls
            .lock()
            .unwrap()
            .push(Completion::Success(token.into(), output));
        Ok(())
    }

    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        _: &str,
    ) -> Result<(), CallbackError> {
        self.calls
            .lock()
            .unwrap()
            .push(Completion::Failure(token.into(), error.into()));
        Ok(())
    }

    async fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError> {
        self.calls
            .lock()
            .unwrap()
            .push(Completion::Heartbeat(token.into()));
        Ok(())
    }
}

/// A channel that records publishes and keeps addresses in a map.
#[derive(Debug, Default)]
pub struct FakeChannel {
    /// Published messages.
    pub published: Mutex<Vec<Outbound>>,
    /// Known addresses.
    pub addresses: Mutex<HashMap<String, AgentAddress>>,
}

#[async_trait]
impl DeviceChannel for FakeChannel {
    async fn publish(&self, message: Outbound) -> Result<(), PortError> {
        self.published.lock().unwrap().push(message);
        Ok(())
    }

    async fn agent_address(&self, thing_name: &str) -> Result<Option<AgentAddress>, PortError> {
        Ok(self.addresses.lock().unwrap().get(thing_name).cloned())
    }

    async fn remember_agent_address(&self, thing: &str, a: AgentAddress) -> Result<(), PortError> {
        self.addresses.lock().unwrap().insert(thing.into(), a);
        Ok(())
    }
}

/// Images by version.
#[derive(Debug, Default)]
pub struct FakeArtifacts {
    /// The images.
    pub images: HashMap<String, FirmwareImage>,
}

#[async_trait]
impl ArtifactStore for FakeArtifacts {
    async fn firmware_image(&self, version: &str) -> Result<FirmwareImage, PortError> {
        self.images
            .get(version)
            .cloned()
            .ok_or_else(|| PortError::NotFound {
                kind: "firmware image",
                name: version.into(),
            })
    }
}

/// A job service with templates, recording created jobs and updates; updates fail with
/// `update_error` when set.
#[derive(Debug, Default)]
pub struct FakeJobs {
    /// Templates by id.
    pub templates: HashMap<String, JobTemplate>,
    /// Jobs created.
    pub created: Mutex<Vec<NewJob>>,
    /// Updates received.
    pub updates: Mutex<Vec<JobExecutionUpdate>>,
    /// The error every update fails with, if any.
    pub update_error: Option<PortError>,
}

#[async_trait]
impl Jobs for FakeJobs {
    async fn job_template(&self, id: &str) -> Result<JobTemplate, PortError> {
        self.templates
            .get(id)
            .cloned()
            .ok_or_else(|| PortError::NotFound {
                kind: "job template",
                name: id.into(),
            })
    }

    async fn create_job(&self, job: NewJob) -> Result<JobCreated, PortError> {
        let created = JobCreated {
            job_arn: format!("arn:aws:iot:eu-west-1:123456789012:job/{}", job.job_id),
            job_id: job.job_id.clone(),
        };
        self.created.lock().unwrap().push(job);
        Ok(created)
    }

    async fn update_job_execution(&self, update: JobExecutionUpdate) -> Result<(), PortError> {
        self.updates.lock().unwrap().push(update);
        self.update_error.clone().map_or(Ok(()), Err)
    }
}
