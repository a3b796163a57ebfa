//! The firmware-upgrade workflow's handler logic, written once for AWS and for the local platform.
//!
//! Each handler is a plain async function over [`ports`]: small traits for the job service, the
//! task-token store, the task callbacks of the state-machine engine, the device channel and the
//! firmware artifact store. Nothing here performs I/O itself; AWS adapters (Lambda functions) and
//! the local platform implement the ports.

pub mod create_job;
pub mod device_message;
pub mod job_status;
pub mod model;
pub mod ports;
pub mod send_command;
pub mod wait_event;

pub use create_job::{CreateJobError, CreateJobRequest, CreatedJob, create_job};
pub use device_message::{DeviceMessageError, MessageOutcome, handle_device_message};
pub use job_status::{JobStatusError, UpdateJobExecutionInput, update_job_execution};
pub use model::{
    Controller, EventOutcome, JobExecutionStatus, TargetArn, WaitKey, WaitKind, agent_topic,
    controller_topic, thing_from_controller_topic,
};
pub use send_command::{SendCommandError, SendCommandInput, SendCommandOutput, send_usp_command};
pub use wait_event::{AwaitEventError, AwaitEventInput, AwaitEventOutput, await_device_event};

/// A stable error name that a state machine's `Retry` and `Catch` can match, identical on AWS
/// (the Lambda error type) and in the local engine.
pub trait ErrorName {
    /// The error's stable name, such as `FirmwareImageNotFound`.
    fn error_name(&self) -> &'static str;
}
