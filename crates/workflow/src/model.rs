//! Shared vocabulary of the workflow: topics, wait keys, job-execution statuses and target ARNs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Topic prefix an agent subscribes under: the agent's own topic is `usp/v1/agent/<thing>`.
pub const AGENT_TOPIC_PREFIX: &str = "usp/v1/agent/";
/// Topic prefix the controller receives on: agent `<thing>` publishes to `usp/v1/controller/<thing>`.
pub const CONTROLLER_TOPIC_PREFIX: &str = "usp/v1/controller/";

/// The topic an agent subscribes to (MQTT 5; MQTT 3.1.1 agents subscribe to `<topic>/#`).
pub fn agent_topic(thing_name: &str) -> String {
    format!("{AGENT_TOPIC_PREFIX}{thing_name}")
}

/// The controller topic dedicated to one agent, so a per-device policy can allow exactly it.
pub fn controller_topic(thing_name: &str) -> String {
    format!("{CONTROLLER_TOPIC_PREFIX}{thing_name}")
}

/// The thing a controller topic belongs to, or `None` when the topic is not one. A 3.1.1
/// `/reply-to=` suffix is allowed and ignored.
pub fn thing_from_controller_topic(topic: &str) -> Option<&str> {
    let (base, _reply_to) = wme_usp::split_reply_to(topic);
    let thing = base.strip_prefix(CONTROLLER_TOPIC_PREFIX)?;
    (!thing.is_empty() && !thing.contains('/')).then_some(thing)
}

/// Who the controller is on the USP side.
#[derive(Debug, Clone)]
pub struct Controller {
    /// The controller's USP endpoint id; Records addressed elsewhere are ignored.
    pub endpoint_id: String,
    /// The prefix that makes an agent's endpoint id from its thing name (`self::` by default).
    pub agent_endpoint_prefix: String,
}

impl Default for Controller {
    fn default() -> Self {
        Self {
            endpoint_id: "self::wme-controller".into(),
            agent_endpoint_prefix: "self::".into(),
        }
    }
}

impl Controller {
    /// The USP endpoint id of the agent running on `thing_name`.
    pub fn agent_endpoint_id(&self, thing_name: &str) -> String {
        format!("{}{thing_name}", self.agent_endpoint_prefix)
    }
}

/// What a task token waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum WaitKind {
    /// The OperateResp (or a top-level Error) answering the Download() Operate.
    OperateResp,
    /// The `TransferComplete!` event.
    TransferComplete,
    /// The OperationComplete notification of `Download()`.
    OperationComplete,
    /// The `Boot!` event after the device activated the image.
    Boot,
}

impl WaitKind {
    /// The name used in task inputs and token-store keys.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::OperateResp => "OperateResp",
            WaitKind::TransferComplete => "TransferComplete",
            WaitKind::OperationComplete => "OperationComplete",
            WaitKind::Boot => "Boot",
        }
    }
}

impl fmt::Display for WaitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WaitKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "OperateResp" => Ok(WaitKind::OperateResp),
            "TransferComplete" => Ok(WaitKind::TransferComplete),
            "OperationComplete" => Ok(WaitKind::OperationComplete),
            "Boot" => Ok(WaitKind::Boot),
            other => Err(format!(
                "unknown event `{other}`, expected OperateResp, TransferComplete, OperationComplete or Boot"
            )),
        }
    }
}

/// The key under which a task token waits: one device, one command (the job id), one event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaitKey {
    /// The thing the device is registered as.
    pub thing_name: String,
    /// The USP command key, which is the job id.
    pub command_key: String,
    /// The event awaited.
    pub kind: WaitKind,
}

impl WaitKey {
    /// Builds a key.
    pub fn new(thing_name: &str, command_key: &str, kind: WaitKind) -> Self {
        Self {
            thing_name: thing_name.into(),
            command_key: command_key.into(),
            kind,
        }
    }
}

impl fmt::Display for WaitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.thing_name, self.command_key, self.kind)
    }
}

/// How the device answered an awaited event: the value a task succeeds with, or its failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum EventOutcome {
    /// The task succeeds with this output.
    Success {
        /// The task output.
        output: Value,
    },
    /// The task fails with this error name and cause.
    Failure {
        /// Stable error name, matched by the state machine's Catch.
        error: String,
        /// JSON text with the device's reason.
        cause: String,
    },
}

/// A job execution's status, as AWS IoT Jobs names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobExecutionStatus {
    /// Waiting for the device.
    Queued,
    /// The workflow is running.
    InProgress,
    /// Upgraded.
    Succeeded,
    /// The upgrade failed.
    Failed,
    /// The device did not answer in time.
    TimedOut,
    /// The device rejected the job.
    Rejected,
    /// Removed from the job.
    Removed,
    /// The job was canceled.
    Canceled,
}

impl JobExecutionStatus {
    /// The AWS name (`IN_PROGRESS`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobExecutionStatus::Queued => "QUEUED",
            JobExecutionStatus::InProgress => "IN_PROGRESS",
            JobExecutionStatus::Succeeded => "SUCCEEDED",
            JobExecutionStatus::Failed => "FAILED",
            JobExecutionStatus::TimedOut => "TIMED_OUT",
            JobExecutionStatus::Rejected => "REJECTED",
            JobExecutionStatus::Removed => "REMOVED",
            JobExecutionStatus::Canceled => "CANCELED",
        }
    }

    /// Whether no further update may follow.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            JobExecutionStatus::Queued | JobExecutionStatus::InProgress
        )
    }

    /// All statuses, in display order.
    pub const ALL: [JobExecutionStatus; 8] = [
        JobExecutionStatus::Queued,
        JobExecutionStatus::InProgress,
        JobExecutionStatus::Succeeded,
        JobExecutionStatus::Failed,
        JobExecutionStatus::TimedOut,
        JobExecutionStatus::Rejected,
        JobExecutionStatus::Removed,
        JobExecutionStatus::Canceled,
    ];
}

impl fmt::Display for JobExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobExecutionStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobExecutionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown job execution status `{s}`, expected one of QUEUED, IN_PROGRESS, \
                 SUCCEEDED, FAILED, TIMED_OUT, REJECTED, REMOVED, CANCELED"
                )
            })
    }
}

/// A job target: a thing or a thing group, named by its ARN.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetArn {
    /// `arn:aws:iot:<region>:<account>:thing/<name>`.
    Thing {
        /// The full ARN as given.
        arn: String,
        /// The thing name.
        name: String,
    },
    /// `arn:aws:iot:<region>:<account>:thinggroup/<name>`.
    ThingGroup {
        /// The full ARN as given.
        arn: String,
        /// The group name.
        name: String,
    },
}

impl TargetArn {
    /// The ARN text.
    pub fn arn(&self) -> &str {
        match self {
            TargetArn::Thing { arn, .. } | TargetArn::ThingGroup { arn, .. } => arn,
        }
    }

    /// The thing or group name.
    pub fn name(&self) -> &str {
        match self {
            TargetArn::Thing { name, .. } | TargetArn::ThingGroup { name, .. } => name,
        }
    }
}

impl FromStr for TargetArn {
    type Err = String;

    fn from_str(arn: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(format!(
                "malformed targetArn `{arn}`: expected arn:aws:iot:<region>:<account>:thinggroup/<name>"
            ));
        };
        if prefix != "arn" || !partition.starts_with("aws") || service != "iot" {
            return Err(format!(
                "targetArn `{arn}` is not an AWS IoT ARN (arn:aws:iot:...)"
            ));
        }
        if region.is_empty() || account.is_empty() {
            return Err(format!("targetArn `{arn}` has an empty region or account"));
        }
        let (kind, name) = resource
            .split_once('/')
            .ok_or_else(|| format!("targetArn `{arn}` names no thing or thinggroup"))?;
        if name.is_empty() || name.len() > 128 || !name.chars().all(valid_name_char) {
            return Err(format!("targetArn `{arn}` has an invalid name `{name}`"));
        }
        let (arn, name) = (arn.to_string(), name.to_string());
        match kind {
            "thing" => Ok(TargetArn::Thing { arn, name }),
            "thinggroup" => Ok(TargetArn::ThingGroup { arn, name }),
            other => Err(format!(
                "targetArn `{arn}` targets a `{other}`, expected `thing` or `thinggroup`"
            )),
        }
    }
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thing_group_arn_parses_into_its_name() {
        let arn: TargetArn =
            "arn:aws:iot:local:000000000000:thinggroup/devices_on_factory_firmware_version"
                .parse()
                .unwrap();
        assert_eq!(arn.name(), "devices_on_factory_firmware_version");
        assert!(matches!(arn, TargetArn::ThingGroup { .. }));
    }

    #[test]
    fn arn_of_another_service_is_refused_with_the_arn_named() {
        let err = "arn:aws:s3:local:000000000000:thinggroup/x"
            .parse::<TargetArn>()
            .unwrap_err();
        assert_eq!(
            err,
            "targetArn `arn:aws:s3:local:000000000000:thinggroup/x` is not an AWS IoT ARN (arn:aws:iot:...)"
        );
    }

    #[test]
    fn arn_of_another_resource_type_is_refused() {
        let err = "arn:aws:iot:r:1:job/x".parse::<TargetArn>().unwrap_err();
        assert!(err.contains("targets a `job`"), "{err}");
    }

    #[test]
    fn controller_topic_round_trips_to_its_thing() {
        assert_eq!(
            thing_from_controller_topic(&controller_topic("sim-0001")),
            Some("sim-0001")
        );
        assert_eq!(thing_from_controller_topic("usp/v1/controller/a/b"), None);
        assert_eq!(thing_from_controller_topic("usp/v1/controller/"), None);
        assert_eq!(thing_from_controller_topic("other/sim-0001"), None);
        assert_eq!(
            thing_from_controller_topic(
                "usp/v1/controller/sim-0001/reply-to=usp%2Fv1%2Fagent%2Fsim-0001"
            ),
            Some("sim-0001")
        );
    }
}
