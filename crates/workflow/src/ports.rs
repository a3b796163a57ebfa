//! The small traits through which the workflow talks to the world.
//!
//! The local platform implements them in memory and over its embedded broker; the AWS adapters
//! implement them with IoT Jobs, DynamoDB, Step Functions, IoT Data and S3.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use crate::model::{EventOutcome, JobExecutionStatus, TargetArn, WaitKey};

/// A failure of the service behind a port, with the service's own words.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PortError {
    /// The named resource does not exist.
    #[error("{kind} `{name}` not found")]
    NotFound {
        /// What was looked for (`thing group`, `job template`, ...).
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The request was refused as invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request conflicts with the resource's state (a terminal job execution, say).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The service failed or could not be reached; a retry may succeed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
}

/// A job template: the document every job created from it starts with.
#[derive(Debug, Clone, PartialEq)]
pub struct JobTemplate {
    /// Template id (`FirmwareUpgrade`).
    pub id: String,
    /// Template ARN.
    pub arn: String,
    /// The job document.
    pub document: Value,
    /// Description copied to jobs.
    pub description: String,
}

/// How a job's targets are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TargetSelection {
    /// Targets are resolved once, when the job is created.
    #[default]
    Snapshot,
    /// Things that join a target group later also get an execution.
    Continuous,
}

/// A job to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The job id.
    pub job_id: String,
    /// Targets (things or thing groups).
    pub targets: Vec<TargetArn>,
    /// The job document.
    pub document: Value,
    /// Description.
    pub description: String,
    /// Snapshot or continuous.
    pub target_selection: TargetSelection,
    /// The template the job was made from.
    pub template_arn: String,
}

/// A job as created.
#[derive(Debug, Clone, PartialEq)]
pub struct JobCreated {
    /// The job id.
    pub job_id: String,
    /// The job ARN.
    pub job_arn: String,
}

/// An update of one device's job execution.
#[derive(Debug, Clone, PartialEq)]
pub struct JobExecutionUpdate {
    /// The device.
    pub thing_name: String,
    /// The job.
    pub job_id: String,
    /// The new status.
    pub status: JobExecutionStatus,
    /// Details, as AWS IoT Jobs takes them: string to string.
    pub status_details: BTreeMap<String, String>,
}

/// The job service: AWS IoT Jobs or the local one.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// The job template with this id.
    async fn job_template(&self, template_id: &str) -> Result<JobTemplate, PortError>;
    /// Creates a job; unknown targets are `PortError::NotFound`.
    async fn create_job(&self, job: NewJob) -> Result<JobCreated, PortError>;
    /// Updates one job execution.
    async fn update_job_execution(&self, update: JobExecutionUpdate) -> Result<(), PortError>;
}

/// Why a task callback was refused, as Step Functions names it.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum CallbackError {
    /// The task already timed out or finished: the callback came too late.
    #[error("task timed out: {0}")]
    TaskTimedOut(String),
    /// The token is not one the engine issued.
    #[error("invalid token: {0}")]
    InvalidToken(String),
    /// No task with this token exists (any more).
    #[error("task does not exist: {0}")]
    TaskDoesNotExist(String),
    /// The engine could not be reached.
    #[error("callback failed: {0}")]
    Unavailable(String),
}

/// Completes the tasks waiting in the state-machine engine.
#[async_trait]
pub trait TaskCallbacks: Send + Sync {
    /// SendTaskSuccess.
    async fn send_task_success(&self, token: &str, output: Value) -> Result<(), CallbackError>;
    /// SendTaskFailure.
    async fn send_task_failure(
        &self,
        token: &str,
        error: &str,
        cause: &str,
    ) -> Result<(), CallbackError>;
    /// SendTaskHeartbeat.
    async fn send_task_heartbeat(&self, token: &str) -> Result<(), CallbackError>;
}

/// What registering a waiting task token found.
#[derive(Debug, Clone, PartialEq)]
pub enum WaiterRegistered {
    /// The token now waits for its event.
    Waiting,
    /// The event had already arrived; the caller completes the token with it now.
    EventAlreadyArrived(EventOutcome),
    /// A token already waits (or waited) under this key: the task was started twice.
    AlreadyWaiting,
}

/// What recording a device's event found.
#[derive(Debug, Clone, PartialEq)]
pub enum EventRecorded {
    /// A token was waiting; it is now claimed by the caller, who completes it.
    Claimed {
        /// The claimed token.
        token: String,
    },
    /// No token waits yet, but the command is known: the event is kept for the waiter.
    Buffered,
    /// This event was already recorded for this key: a duplicate, dropped.
    Duplicate,
    /// No command with this key was ever sent to this device.
    UnknownCommand,
}

/// The task-token table: pairs each awaited event with the task token waiting for it, whichever
/// arrives first, and hands each token out to be completed at most once.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Registers `token` as waiting for `key`.
    async fn register_waiter(
        &self,
        key: &WaitKey,
        token: &str,
    ) -> Result<WaiterRegistered, PortError>;
    /// Records that the device reported `key` with `outcome`.
    async fn record_event(
        &self,
        key: &WaitKey,
        outcome: &EventOutcome,
    ) -> Result<EventRecorded, PortError>;
    /// Forgets the event recorded for `key`, so that a redelivery of the same message can complete
    /// the token after a completion failed for a passing reason.
    async fn release_event(&self, key: &WaitKey) -> Result<(), PortError>;
    /// Tokens still waiting for events of this device and command (for heartbeats).
    async fn waiting_tokens(
        &self,
        thing_name: &str,
        command_key: &str,
    ) -> Result<Vec<String>, PortError>;
}

/// How to reach one agent over MQTT, learned from its MQTT connect record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAddress {
    /// The agent's USP endpoint id.
    pub endpoint_id: String,
    /// The topic it subscribed to.
    pub topic: String,
    /// Whether it speaks MQTT 5 (else 3.1.1, which needs the reply-to topic suffix).
    pub mqtt5: bool,
}

/// A message to publish to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outbound {
    /// The topic name to publish on.
    pub topic: String,
    /// MQTT 5 ResponseTopic property, if any.
    pub response_topic: Option<String>,
    /// The USP Record bytes.
    pub payload: Vec<u8>,
}

/// Sends USP Records to devices and remembers how to address them.
#[async_trait]
pub trait DeviceChannel: Send + Sync {
    /// Publishes one message (QoS 1).
    async fn publish(&self, message: Outbound) -> Result<(), PortError>;
    /// The address an agent announced, if it did.
    async fn agent_address(&self, thing_name: &str) -> Result<Option<AgentAddress>, PortError>;
    /// Remembers the address an agent announced in its MQTT connect record.
    async fn remember_agent_address(
        &self,
        thing_name: &str,
        address: AgentAddress,
    ) -> Result<(), PortError>;
}

/// A firmware image a device can download.
#[derive(Clone, PartialEq, Eq)]
pub struct FirmwareImage {
    /// A URL the device can GET (time-limited on AWS).
    pub url: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the image, lowercase hex.
    pub sha256: String,
    /// Basic-auth credentials for the download, if the server needs them.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for FirmwareImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirmwareImage")
            .field("url", &self.url)
            .field("size", &self.size)
            .field("sha256", &self.sha256)
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .finish()
    }
}

/// Where firmware images live (S3 or the local file server).
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    /// The image of `version`.
    async fn firmware_image(&self, version: &str) -> Result<FirmwareImage, PortError>;
}
