//! The task-token table on DynamoDB.
//!
//! One partition per (device, command): partition key `pk` = `<thing>/<commandKey>`, sort key
//! `sk` = `command` for the marker item written when the OperateResp waiter registers, or the
//! event name (`OperateResp`, `TransferComplete`, `OperationComplete`, `Boot`) for its slot.
//! A slot item holds the waiting `token` and the device's `event`, whichever came first; both are
//! set by conditional UpdateItems, so exactly one side sees the other and completes the token.
//! Every lookup is a GetItem or a key-condition Query on `pk`; no Scan, no filter expression.
//! Every item carries `expiresAt` (epoch seconds), the table's TTL attribute.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use tracing::debug;
use wme_workflow::model::{EventOutcome, WaitKey, WaitKind};
use wme_workflow::ports::{EventRecorded, PortError, TokenStore, WaiterRegistered};

/// The table's partition key attribute (string).
pub const PARTITION_KEY: &str = "pk";
/// The table's sort key attribute (string).
pub const SORT_KEY: &str = "sk";
/// The table's TTL attribute (number, epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// The sort key of a command's marker item.
pub const COMMAND_MARKER: &str = "command";

const TOKEN: &str = "token";
const EVENT: &str = "event";

/// The DynamoDB task-token table.
#[derive(Debug, Clone)]
pub struct DynamoTokenStore {
    client: Client,
    table: String,
    ttl: Duration,
}

impl DynamoTokenStore {
    /// A store on `table` whose items expire `ttl` after they are written.
    pub fn new(client: Client, table: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            ttl,
        }
    }

    /// The DynamoDB client, shared with the device channel's address table.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    fn expires_at(&self) -> AttributeValue {
        AttributeValue::N(epoch_seconds_after(self.ttl).to_string())
    }

    async fn command_exists(&self, key: &WaitKey) -> Result<bool, PortError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(partition(key)))
            .key(SORT_KEY, s(COMMAND_MARKER))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        Ok(out.item().is_some())
    }

    async fn put_command_marker(&self, key: &WaitKey) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(partition(key)))
            .key(SORT_KEY, s(COMMAND_MARKER))
            .update_expression("SET #exp = if_not_exists(#exp, :exp)")
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":exp", self.expires_at())
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", e))?;
        Ok(())
    }

    /// Sets `attribute` on the slot of `key` unless it is already set; returns the slot as it is
    /// now, or `None` when the attribute was already there.
    async fn set_once(
        &self,
        key: &WaitKey,
        attribute: &str,
        value: String,
    ) -> Result<Option<HashMap<String, AttributeValue>>, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(partition(key)))
            .key(SORT_KEY, s(key.kind.as_str()))
            .update_expression("SET #a = :v, #exp = if_not_exists(#exp, :exp)")
            .condition_expression("attribute_not_exists(#a)")
            .expression_attribute_names("#a", attribute)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_values(":v", s(value))
            .expression_attribute_values(":exp", self.expires_at())
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable("UpdateItem", e)),
        }
    }
}

#[async_trait]
impl TokenStore for DynamoTokenStore {
    async fn register_waiter(
        &self,
        key: &WaitKey,
        token: &str,
    ) -> Result<WaiterRegistered, PortError> {
        if key.kind == WaitKind::OperateResp {
            self.put_command_marker(key).await?;
        } else if !self.command_exists(key).await? {
            return Err(PortError::NotFound {
                kind: "command",
                name: format!("{}/{}", key.thing_name, key.command_key),
            });
        }
        let Some(slot) = self.set_once(key, TOKEN, token.to_string()).await? else {
            return Ok(WaiterRegistered::AlreadyWaiting);
        };
        debug!(key = %key, "task token registered");
        Ok(match string_attr(&slot, EVENT) {
            Some(event) => WaiterRegistered::EventAlreadyArrived(decode_event(key, event)?),
            None => WaiterRegistered::Waiting,
        })
    }

    async fn record_event(
        &self,
        key: &WaitKey,
        outcome: &EventOutcome,
    ) -> Result<EventRecorded, PortError> {
        if !self.command_exists(key).await? {
            return Ok(EventRecorded::UnknownCommand);
        }
        let event = serde_json::to_string(outcome).map_err(|e| {
            PortError::Invalid(format!("event of `{key}` is not serializable: {e}"))
        })?;
        let Some(slot) = self.set_once(key, EVENT, event).await? else {
            return Ok(EventRecorded::Duplicate);
        };
        Ok(match string_attr(&slot, TOKEN) {
            Some(token) => EventRecorded::Claimed {
                token: token.to_string(),
            },
            None => EventRecorded::Buffered,
        })
    }

    async fn release_event(&self, key: &WaitKey) -> Result<(), PortError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(partition(key)))
            .key(SORT_KEY, s(key.kind.as_str()))
            .update_expression("REMOVE #e")
            .condition_expression("attribute_exists(#s)")
            .expression_attribute_names("#e", EVENT)
            .expression_attribute_names("#s", SORT_KEY)
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                // Releasing a slot that does not exist leaves nothing to release.
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception())
                {
                    Ok(())
                } else {
                    Err(unavailable("UpdateItem", e))
                }
            })
    }

    async fn waiting_tokens(
        &self,
        thing_name: &str,
        command_key: &str,
    ) -> Result<Vec<String>, PortError> {
        // A command's partition holds at most five small items, far below a Query page (1 MB),
        // so one page is the whole partition.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", PARTITION_KEY)
            .expression_attribute_values(":pk", s(format!("{thing_name}/{command_key}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("Query", e))?;
        Ok(out
            .items()
            .iter()
            .filter(|item| string_attr(item, EVENT).is_none())
            .filter_map(|item| string_attr(item, TOKEN).map(str::to_string))
            .collect())
    }
}

/// The partition key of a (device, command): thing names and job ids never contain `/`.
pub fn partition(key: &WaitKey) -> String {
    format!("{}/{}", key.thing_name, key.command_key)
}

fn decode_event(key: &WaitKey, text: &str) -> Result<EventOutcome, PortError> {
    serde_json::from_str(text)
        .map_err(|e| PortError::Invalid(format!("stored event of `{key}` is not valid: {e}")))
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn string_attr<'a>(
    item: &'a HashMap<String, AttributeValue>,
    name: &str,
) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn epoch_seconds_after(ttl: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now + ttl).as_secs()
}

pub(crate) fn unavailable<E>(call: &str, error: E) -> PortError
where
    E: std::error::Error,
{
    PortError::Unavailable(format!(
        "dynamodb {call} failed: {}",
        DisplayErrorContext(&error)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_partition_names_device_and_command() {
        let key = WaitKey::new("sim-0001", "job-1", WaitKind::Boot);
        assert_eq!(partition(&key), "sim-0001/job-1");
    }

    #[test]
    fn expiry_lies_ttl_seconds_ahead() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let at = epoch_seconds_after(Duration::from_secs(3600));
        assert!((now + 3599..=now + 3601).contains(&at), "{at} vs {now}");
    }
}
