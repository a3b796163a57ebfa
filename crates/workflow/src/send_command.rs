//! The USP command sender: registers the task token that waits for the device's OperateResp and
//! publishes the `Download()` Operate to the device.

use serde::{Deserialize, Serialize};
use tracing::{debug, info};
use wme_usp::FirmwareDownload;

use crate::ErrorName;
use crate::model::{Controller, WaitKey, WaitKind, agent_topic, controller_topic};
use crate::ports::{
    AgentAddress, ArtifactStore, DeviceChannel, Outbound, PortError, TokenStore, WaiterRegistered,
};

/// The firmware image slot the Download() targets by default: the second (inactive) bank.
pub const DEFAULT_IMAGE_PATH: &str = "Device.DeviceInfo.FirmwareImage.2.";

/// The task input (the state machine's `Payload`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendCommandInput {
    /// The device.
    pub thing_name: String,
    /// The job id, sent as the USP command key.
    pub job_id: String,
    /// The version to install.
    pub firmware_version: String,
    /// The task token that the OperateResp completes.
    pub task_token: String,
    /// The image slot to download into (defaults to [`DEFAULT_IMAGE_PATH`]).
    #[serde(default)]
    pub image_path: Option<String>,
}

/// What was sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SendCommandOutput {
    /// The USP msg_id of the Operate.
    pub msg_id: String,
    /// The topic it was published on.
    pub topic: String,
}

/// Why the command could not be sent.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SendCommandError {
    /// The input is not what the state machine should send.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// No image of this version is stored.
    #[error("firmware image for version `{0}` not found")]
    FirmwareImageNotFound(String),
    /// A command for this job was already sent to this device.
    #[error("a Download() for job `{job_id}` was already sent to `{thing_name}`")]
    AlreadySent {
        /// The device.
        thing_name: String,
        /// The job.
        job_id: String,
    },
    /// The token store failed.
    #[error("token store failed: {0}")]
    TokenStore(PortError),
    /// Publishing failed.
    #[error("publishing to `{thing_name}` failed: {error}")]
    Publish {
        /// The device.
        thing_name: String,
        /// The broker's error.
        error: PortError,
    },
    /// The artifact store failed.
    #[error("artifact store failed: {0}")]
    Artifacts(PortError),
}

impl ErrorName for SendCommandError {
    fn error_name(&self) -> &'static str {
        match self {
            SendCommandError::InvalidInput(_) => "InvalidInput",
            SendCommandError::FirmwareImageNotFound(_) => "FirmwareImageNotFound",
            SendCommandError::AlreadySent { .. } => "CommandAlreadySent",
            SendCommandError::TokenStore(_) => "TokenStoreError",
            SendCommandError::Publish { .. } => "DeviceChannelError",
            SendCommandError::Artifacts(_) => "ArtifactStoreError",
        }
    }
}

/// The msg_id of the Download() Operate for `command_key`; the OperateResp echoes it.
pub fn operate_msg_id(command_key: &str) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("download/{command_key}/{}", &nonce[..8])
}

/// The command key an OperateResp or Error belongs to, recovered from its msg_id.
pub fn command_key_of_msg_id(msg_id: &str) -> Option<&str> {
    let rest = msg_id.strip_prefix("download/")?;
    let (key, _nonce) = rest.rsplit_once('/')?;
    (!key.is_empty()).then_some(key)
}

/// The ports the sender needs.
pub struct SendCommandPorts<'a> {
    /// Task-token table.
    pub tokens: &'a dyn TokenStore,
    /// The MQTT side.
    pub devices: &'a dyn DeviceChannel,
    /// Firmware images.
    pub artifacts: &'a dyn ArtifactStore,
}

/// Sends the Download() Operate; the task completes when the OperateResp arrives.
pub async fn send_usp_command(
    ports: &SendCommandPorts<'_>,
    controller: &Controller,
    input: &SendCommandInput,
) -> Result<SendCommandOutput, SendCommandError> {
    check_input(input)?;
    let image = ports
        .artifacts
        .firmware_image(&input.firmware_version)
        .await
        .map_err(|e| match e {
            PortError::NotFound { .. } => {
                SendCommandError::FirmwareImageNotFound(input.firmware_version.clone())
            }
            other => SendCommandError::Artifacts(other),
        })?;
    let address = agent_address(ports.devices, controller, &input.thing_name).await?;

    let key = WaitKey::new(&input.thing_name, &input.job_id, WaitKind::OperateResp);
    match ports.tokens.register_waiter(&key, &input.task_token).await {
        Ok(WaiterRegistered::Waiting) => {}
        Ok(_) => {
            return Err(SendCommandError::AlreadySent {
                thing_name: input.thing_name.clone(),
                job_id: input.job_id.clone(),
            });
        }
        Err(e) => return Err(SendCommandError::TokenStore(e)),
    }

    let msg_id = operate_msg_id(&input.job_id);
    let download = FirmwareDownload {
        obj_path: input
            .image_path
            .clone()
            .unwrap_or_else(|| DEFAULT_IMAGE_PATH.into()),
        url: image.url.clone(),
        auto_activate: true,
        username: image.credentials.as_ref().map(|(user, _)| user.clone()),
        password: image
            .credentials
            .as_ref()
            .map(|(_, password)| password.clone()),
        file_size: Some(image.size),
        checksum_algorithm: Some("SHA-256".into()),
        checksum: Some(image.sha256.clone()),
    };
    let msg = wme_usp::operate_download(&msg_id, &input.job_id, &download);
    let payload = wme_usp::encode_msg_record(&controller.endpoint_id, &address.endpoint_id, &msg);
    let message = outbound(&input.thing_name, &address, payload);
    let topic = message.topic.clone();
    ports
        .devices
        .publish(message)
        .await
        .map_err(|error| SendCommandError::Publish {
            thing_name: input.thing_name.clone(),
            error,
        })?;
    info!(device = %input.thing_name, job_id = %input.job_id, msg_id = %msg_id, "download operate sent");
    Ok(SendCommandOutput { msg_id, topic })
}

/// The message that carries `payload` to the agent at `address`, with the reply-to the TR-369
/// MQTT binding asks for: the ResponseTopic property on MQTT 5, a topic suffix on 3.1.1.
pub fn outbound(thing_name: &str, address: &AgentAddress, payload: Vec<u8>) -> Outbound {
    let reply_to = controller_topic(thing_name);
    if address.mqtt5 {
        Outbound {
            topic: address.topic.clone(),
            response_topic: Some(reply_to),
            payload,
        }
    } else {
        let base = address.topic.trim_end_matches("/#");
        let topic = wme_usp::mqtt::topic_with_reply_to(base, &reply_to);
        Outbound {
            topic,
            response_topic: None,
            payload,
        }
    }
}

/// How to reach the agent: what its connect record said, or the project's topic convention.
pub async fn agent_address(
    devices: &dyn DeviceChannel,
    controller: &Controller,
    thing_name: &str,
) -> Result<AgentAddress, SendCommandError> {
    let known =
        devices
            .agent_address(thing_name)
            .await
            .map_err(|error| SendCommandError::Publish {
                thing_name: thing_name.to_string(),
                error,
            })?;
    Ok(known.unwrap_or_else(|| {
        debug!(device = %thing_name, "no connect record seen, using the default agent address");
        AgentAddress {
            endpoint_id: controller.agent_endpoint_id(thing_name),
            topic: agent_topic(thing_name),
            mqtt5: true,
        }
    }))
}

fn check_input(input: &SendCommandInput) -> Result<(), SendCommandError> {
    let empty = [
        ("thingName", &input.thing_name),
        ("jobId", &input.job_id),
        ("firmwareVersion", &input.firmware_version),
        ("taskToken", &input.task_token),
    ]
    .into_iter()
    .find(|(_, value)| value.is_empty());
    match empty {
        Some((field, _)) => Err(SendCommandError::InvalidInput(format!(
            "`{field}` is empty"
        ))),
        None if input.job_id.contains('/') => Err(SendCommandError::InvalidInput(format!(
            "`jobId` `{}` contains '/'",
            input.job_id
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_id_carries_the_command_key() {
        let id = operate_msg_id("firmware-upgrade-1_2_3-abcd1234");
        assert_eq!(
            command_key_of_msg_id(&id),
            Some("firmware-upgrade-1_2_3-abcd1234")
        );
        assert_eq!(command_key_of_msg_id("someone-else"), None);
        assert_eq!(command_key_of_msg_id("download//x"), None);
    }

    #[test]
    fn mqtt311_agents_get_the_reply_to_suffix() {
        let address = AgentAddress {
            endpoint_id: "self::a".into(),
            topic: "usp/v1/agent/a/#".into(),
            mqtt5: false,
        };
        let message = outbound("a", &address, vec![1]);
        assert_eq!(
            message.topic,
            "usp/v1/agent/a/reply-to=usp%2Fv1%2Fcontroller%2Fa"
        );
        assert_eq!(message.response_topic, None);
    }

    #[test]
    fn mqtt5_agents_get_the_response_topic_property() {
        let address = AgentAddress {
            endpoint_id: "self::a".into(),
            topic: "usp/v1/agent/a".into(),
            mqtt5: true,
        };
        let message = outbound("a", &address, vec![1]);
        assert_eq!(message.topic, "usp/v1/agent/a");
        assert_eq!(
            message.response_topic.as_deref(),
            Some("usp/v1/controller/a")
        );
    }
}
