//! The local task-token table. Each (device, command) has one slot per awaited event; a slot
//! pairs the waiting token with the device's event, whichever arrives first, and hands the token
//! out once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use wme_workflow::model::{EventOutcome, WaitKey, WaitKind};
use wme_workflow::ports::{EventRecorded, PortError, TokenStore, WaiterRegistered};

#[derive(Debug, Clone, Default)]
struct Slot {
    token: Option<String>,
    event: Option<EventOutcome>,
}

impl Slot {
    fn waiting(&self) -> bool {
        self.token.is_some() && self.event.is_none()
    }
}

#[derive(Debug)]
struct Command {
    created: Instant,
    slots: [Slot; 4],
}

fn index(kind: WaitKind) -> usize {
    match kind {
        WaitKind::OperateResp => 0,
        WaitKind::TransferComplete => 1,
        WaitKind::OperationComplete => 2,
        WaitKind::Boot => 3,
    }
}

/// The token table, in memory. Entries live for `ttl` after the command was sent (like the
/// DynamoDB table's TTL) and are then purged by [`LocalTokenStore::purge_expired`].
#[derive(Debug)]
pub struct LocalTokenStore {
    ttl: Duration,
    /// One lock: every operation is a few map lookups and never awaits while holding it.
    commands: Mutex<HashMap<(String, String), Command>>,
}

impl LocalTokenStore {
    /// A table whose entries expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            commands: Mutex::new(HashMap::new()),
        }
    }

    /// Drops commands older than the TTL; returns how many.
    pub fn purge_expired(&self) -> usize {
        let mut commands = self.commands.lock().expect("token lock");
        let before = commands.len();
        let ttl = self.ttl;
        commands.retain(|_, command| command.created.elapsed() < ttl);
        before - commands.len()
    }

    /// Commands held.
    pub fn len(&self) -> usize {
        self.commands.lock().expect("token lock").len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn command_id(key: &WaitKey) -> (String, String) {
    (key.thing_name.clone(), key.command_key.clone())
}

#[async_trait]
impl TokenStore for LocalTokenStore {
    async fn register_waiter(
        &self,
        key: &WaitKey,
        token: &str,
    ) -> Result<WaiterRegistered, PortError> {
        let mut commands = self.commands.lock().expect("token lock");
        let command = if key.kind == WaitKind::OperateResp {
            commands.entry(command_id(key)).or_insert_with(|| Command {
                created: Instant::now(),
                slots: Default::default(),
            })
        } else {
            commands
                .get_mut(&command_id(key))
                .ok_or_else(|| PortError::NotFound {
                    kind: "command",
                    name: format!("{}/{}", key.thing_name, key.command_key),
                })?
        };
        let slot = &mut command.slots[index(key.kind)];
        if slot.token.is_some() {
            return Ok(WaiterRegistered::AlreadyWaiting);
        }
        slot.token = Some(token.to_string());
        Ok(match &slot.event {
            Some(event) => WaiterRegistered::EventAlreadyArrived(event.clone()),
            None => WaiterRegistered::Waiting,
        })
    }

    async fn record_event(
        &self,
        key: &WaitKey,
        outcome: &EventOutcome,
    ) -> Result<EventRecorded, PortError> {
        let mut commands = self.commands.lock().expect("token lock");
        let Some(command) = commands.get_mut(&command_id(key)) else {
            return Ok(EventRecorded::UnknownCommand);
        };
        let slot = &mut command.slots[index(key.kind)];
        if slot.event.is_some() {
            return Ok(EventRecorded::Duplicate);
        }
        slot.event = Some(outcome.clone());
        Ok(match &slot.token {
            Some(token) => EventRecorded::Claimed {
                token: token.clone(),
            },
            None => EventRecorded::Buffered,
        })
    }

    async fn release_event(&self, key: &WaitKey) -> Result<(), PortError> {
        let mut commands = self.commands.lock().expect("token lock");
        if let Some(command) = commands.get_mut(&command_id(key)) {
            command.slots[index(key.kind)].event = None;
        }
        Ok(())
    }

    async fn waiting_tokens(
        &self,
        thing_name: &str,
        command_key: &str,
    ) -> Result<Vec<String>, PortError> {
        let commands = self.commands.lock().expect("token lock");
        let Some(command) = commands.get(&(thing_name.to_string(), command_key.to_string())) else {
            return Ok(Vec::new());
        };
        Ok(command
            .slots
            .iter()
            .filter(|s| s.waiting())
            .filter_map(|s| s.token.clone())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok() -> EventOutcome {
        EventOutcome::Success {
            output: json!({"faultCode": 0}),
        }
    }

    #[tokio::test]
    async fn event_before_waiter_is_handed_to_the_waiter_once() {
        let store = LocalTokenStore::new(Duration::from_secs(60));
        let op = WaitKey::new("d", "job", WaitKind::OperateResp);
        let tc = WaitKey::new("d", "job", WaitKind::TransferComplete);
        assert_eq!(
            store.register_waiter(&op, "t0").await.unwrap(),
            WaiterRegistered::Waiting
        );
        assert_eq!(
            store.record_event(&tc, &ok()).await.unwrap(),
            EventRecorded::Buffered
        );
        assert_eq!(
            store.register_waiter(&tc, "t1").await.unwrap(),
            WaiterRegistered::EventAlreadyArrived(ok())
        );
        assert_eq!(
            store.record_event(&tc, &ok()).await.unwrap(),
            EventRecorded::Duplicate
        );
        assert_eq!(
            store.register_waiter(&tc, "t2").await.unwrap(),
            WaiterRegistered::AlreadyWaiting
        );
    }

    #[tokio::test]
    async fn waiter_before_event_is_claimed_once_and_duplicates_are_refused() {
        let store = LocalTokenStore::new(Duration::from_secs(60));
        let op = WaitKey::new("d", "job", WaitKind::OperateResp);
        store.register_waiter(&op, "t0").await.unwrap();
        assert_eq!(store.waiting_tokens("d", "job").await.unwrap(), ["t0"]);
        assert_eq!(
            store.record_event(&op, &ok()).await.unwrap(),
            EventRecorded::Claimed { token: "t0".into() }
        );
        assert_eq!(
            store.record_event(&op, &ok()).await.unwrap(),
            EventRecorded::Duplicate
        );
        assert!(store.waiting_tokens("d", "job").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn event_for_a_command_never_sent_is_unknown() {
        let store = LocalTokenStore::new(Duration::from_secs(60));
        let boot = WaitKey::new("d", "other-job", WaitKind::Boot);
        assert_eq!(
            store.record_event(&boot, &ok()).await.unwrap(),
            EventRecorded::UnknownCommand
        );
    }

    #[tokio::test]
    async fn expired_commands_are_purged() {
        let store = LocalTokenStore::new(Duration::ZERO);
        store
            .register_waiter(&WaitKey::new("d", "j", WaitKind::OperateResp), "t")
            .await
            .unwrap();
        assert_eq!(store.purge_expired(), 1);
        assert!(store.is_empty());
    }
}
