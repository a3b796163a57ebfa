//! The device channel on AWS: USP Records go out through IoT Data `Publish` (a Lambda holds no
//! MQTT connection), and each agent's address, learned from its MQTT connect record, is kept in
//! the token table under partition `<thing>` (no `/`, so it never meets a command partition).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_iotdataplane::error::DisplayErrorContext;
use aws_sdk_iotdataplane::primitives::Blob;
use tracing::debug;
use wme_workflow::ports::{AgentAddress, DeviceChannel, Outbound, PortError};

use crate::tokens::{
    PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE, epoch_seconds_after, s, string_attr, unavailable,
};

/// The sort key of an agent's address item.
pub const AGENT_ADDRESS: &str = "agent";

/// How long an address is kept after the agent last announced it.
pub const ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// IoT Data for publishing, DynamoDB for agent addresses.
#[derive(Debug, Clone)]
pub struct IotDataChannel {
    iot_data: aws_sdk_iotdataplane::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    table: String,
}

impl IotDataChannel {
    /// A channel publishing through `iot_data` (bound to the account's `iot:Data-ATS` endpoint)
    /// and keeping addresses in `table`.
    pub fn new(
        iot_data: aws_sdk_iotdataplane::Client,
        dynamodb: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
    ) -> Self {
        Self {
            iot_data,
            dynamodb,
            table: table.into(),
        }
    }
}

#[async_trait]
impl DeviceChannel for IotDataChannel {
    async fn publish(&self, message: Outbound) -> Result<(), PortError> {
        debug!(topic = %message.topic, bytes = message.payload.len(), "publishing usp record");
        self.iot_data
            .publish()
            .topic(&message.topic)
            .qos(1)
            .set_response_topic(message.response_topic)
            .payload(Blob::new(message.payload))
            .send()
            .await
            .map_err(|e| {
                PortError::Unavailable(format!(
                    "iot data Publish to `{}` failed: {}",
                    message.topic,
                    DisplayErrorContext(&e)
                ))
            })?;
        Ok(())
    }

    async fn agent_address(&self, thing_name: &str) -> Result<Option<AgentAddress>, PortError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(thing_name))
            .key(SORT_KEY, s(AGENT_ADDRESS))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let (Some(endpoint_id), Some(topic)) =
            (string_attr(item, "endpointId"), string_attr(item, "topic"))
        else {
            return Err(PortError::Invalid(format!(
                "stored address of `{thing_name}` lacks endpointId or topic"
            )));
        };
        let mqtt5 = item
            .get("mqtt5")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(true);
        Ok(Some(AgentAddress {
            endpoint_id: endpoint_id.into(),
            topic: topic.into(),
            mqtt5,
        }))
    }

    async fn remember_agent_address(
        &self,
        thing_name: &str,
        address: AgentAddress,
    ) -> Result<(), PortError> {
        self.dynamodb
            .put_item()
            .table_name(&self.table)
            .item(PARTITION_KEY, s(thing_name))
            .item(SORT_KEY, s(AGENT_ADDRESS))
            .item("endpointId", s(address.endpoint_id))
            .item("topic", s(address.topic))
            .item("mqtt5", AttributeValue::Bool(address.mqtt5))
            .item(
                TTL_ATTRIBUTE,
                AttributeValue::N(epoch_seconds_after(ADDRESS_TTL).to_string()),
            )
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }
}
