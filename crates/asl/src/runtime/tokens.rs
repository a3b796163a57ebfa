//! Task tokens for `.waitForTaskToken` tasks: issued per attempt, completed at most once.
//!
//! A token stays known after its task ends (completed, failed, timed out, or its execution
//! stopped) so that a late callback is told `TaskTimedOut`, as AWS does, rather than that the
//! token does not exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Notify;

use super::CallbackError;

/// What a callback delivers to the waiting task; success and failure are also what a durable
/// engine stores for the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum Callback {
    Success(Value),
    Failure { error: String, cause: String },
    Heartbeat,
}

/// The callbacks a waiting task has not taken yet. A task needs only the completing callback
/// and whether heartbeats came, so this holds one completion and a count rather than a queue:
/// a waiting task is the engine's most numerous object, and a channel would cost it about
/// 2 KiB.
#[derive(Debug, Default)]
struct Pending {
    heartbeats: u32,
    // Boxed: it is empty for nearly all of a task's wait.
    done: Option<Box<Callback>>,
    receiver_gone: bool,
}

#[derive(Debug, Default)]
struct Shared {
    // A std Mutex: every access is a field update that never awaits.
    pending: Mutex<Pending>,
    // Notify keeps a permit when nobody waits, so a callback between a check and the wait is
    // not missed.
    ready: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The receiving side of one token's callbacks, owned by the task waiting for them.
#[derive(Debug)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
}

impl Inbox {
    /// The next callback: the completion if one came, else a heartbeat, else waits.
    pub(crate) async fn recv(&mut self) -> Callback {
        loop {
            if let Some(callback) = self.try_recv() {
                return callback;
            }
            self.shared.ready.notified().await;
        }
    }

    pub(crate) fn try_recv(&mut self) -> Option<Callback> {
        let mut pending = self.shared.lock();
        if let Some(done) = pending.done.take() {
            return Some(*done);
        }
        if pending.heartbeats > 0 {
            pending.heartbeats -= 1;
            return Some(Callback::Heartbeat);
        }
        None
    }

    pub(crate) fn is_empty(&self) -> bool {
        let pending = self.shared.lock();
        pending.done.is_none() && pending.heartbeats == 0
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.shared.lock().receiver_gone = true;
    }
}

/// The sending side, kept in the registry while the task waits.
#[derive(Debug)]
struct Outbox {
    shared: Arc<Shared>,
}

impl Outbox {
    /// Hands a callback to the task; `false` if the task no longer waits.
    fn send(&self, callback: Callback) -> bool {
        {
            let mut pending = self.shared.lock();
            if pending.receiver_gone {
                return false;
            }
            match callback {
                Callback::Heartbeat => pending.heartbeats = pending.heartbeats.saturating_add(1),
                done => pending.done = Some(Box::new(done)),
            }
        }
        self.shared.ready.notify_one();
        true
    }
}

fn inbox() -> (Outbox, Inbox) {
    let shared = Arc::new(Shared::default());
    let outbox = Outbox {
        shared: Arc::clone(&shared),
    };
    (outbox, Inbox { shared })
}

#[derive(Debug)]
enum Entry {
    /// The sender to the waiting task and the execution it belongs to.
    Waiting(Outbox, Arc<str>),
    Closed,
}

/// All tokens the engine ever issued.
#[derive(Debug, Default)]
pub(crate) struct TokenRegistry {
    // A std Mutex: every operation is a short map update that never awaits.
    // Keys share their text with the tokens' guards.
    entries: Mutex<HashMap<Arc<str>, Entry>>,
}

/// Closes its token when dropped, so a task that ends for any reason (including being
/// cancelled with its execution) stops accepting callbacks.
#[derive(Debug)]
pub(crate) struct TokenGuard {
    registry: Arc<TokenRegistry>,
    token: Arc<str>,
}

impl TokenGuard {
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Closes the token; `false` if a completing callback got there first.
    pub(crate) fn close(&self) -> bool {
        self.registry.close(&self.token)
    }
}

impl Drop for TokenGuard {
    fn drop(&mut self) {
        self.registry.close(&self.token);
    }
}

/// A fresh, unguessable token: 244 random bits from two v4 UUIDs.
fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn is_well_formed(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl TokenRegistry {
    pub(crate) fn issue(self: &Arc<Self>, execution_arn: &Arc<str>) -> (TokenGuard, Inbox) {
        let (tx, rx) = inbox();
        let token: Arc<str> = new_token().into();
        self.lock().insert(
            Arc::clone(&token),
            Entry::Waiting(tx, Arc::clone(execution_arn)),
        );
        let guard = TokenGuard {
            registry: Arc::clone(self),
            token,
        };
        (guard, rx)
    }

    /// Registers a token read back from a durable store whose task still waits; callbacks
    /// queue on the returned receiver until the resumed task takes it.
    pub(crate) fn restore(&self, token: &str, execution_arn: &str) -> Inbox {
        let (tx, rx) = inbox();
        self.lock()
            .insert(token.into(), Entry::Waiting(tx, execution_arn.into()));
        rx
    }

    /// Registers a token read back from a durable store whose task has ended, so that a late
    /// callback is still told that the task timed out.
    pub(crate) fn restore_closed(&self, token: &str) {
        self.lock().insert(token.into(), Entry::Closed);
    }

    /// A guard for a restored token.
    pub(crate) fn guard(self: &Arc<Self>, token: &str) -> TokenGuard {
        TokenGuard {
            registry: Arc::clone(self),
            token: self
                .lock()
                .get_key_value(token)
                .map_or_else(|| token.into(), |(key, _)| Arc::clone(key)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn close(&self, token: &str) -> bool {
        let mut entries = self.lock();
        match entries.get_mut(token) {
            Some(entry @ Entry::Waiting(..)) => {
                *entry = Entry::Closed;
                true
            }
            _ => false,
        }
    }

    /// Closes every open token of an execution (it was stopped).
    pub(crate) fn close_execution(&self, execution_arn: &str) {
        for entry in self.lock().values_mut() {
            if matches!(entry, Entry::Waiting(_, arn) if &**arn == execution_arn) {
                *entry = Entry::Closed;
            }
        }
    }

    /// Delivers a callback. Success and failure close the token; a heartbeat keeps it open.
    pub(crate) fn deliver(&self, token: &str, callback: Callback) -> Result<(), CallbackError> {
        if !is_well_formed(token) {
            return Err(CallbackError::InvalidToken(format!(
                "invalid token: {token:?} is not a task token issued by this engine"
            )));
        }
        let mut entries = self.lock();
        let entry = entries.get_mut(token).ok_or_else(|| {
            CallbackError::TaskDoesNotExist(format!(
                "task does not exist: no task is waiting for token {token}"
            ))
        })?;
        let Entry::Waiting(tx, _) = entry else {
            return Err(CallbackError::TaskTimedOut(format!(
                "task timed out: the task for token {token} has already finished or timed out"
            )));
        };
        let completes = !matches!(callback, Callback::Heartbeat);
        if !tx.send(callback) {
            *entry = Entry::Closed;
            return Err(CallbackError::TaskTimedOut(format!(
                "task timed out: the task for token {token} is no longer running"
            )));
        }
        if completes {
            *entry = Entry::Closed;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_are_unique_and_well_formed() {
        let registry = Arc::new(TokenRegistry::default());
        let (a, _rx_a) = registry.issue(&"arn:x".into());
        let (b, _rx_b) = registry.issue(&"arn:x".into());
        assert_ne!(a.token(), b.token());
        assert!(is_well_formed(a.token()));
    }

    #[test]
    fn success_is_delivered_once_then_refused() {
        let registry = Arc::new(TokenRegistry::default());
        let (guard, mut rx) = registry.issue(&"arn:x".into());
        registry
            .deliver(guard.token(), Callback::Success(json!(1)))
            .unwrap();
        assert!(matches!(rx.try_recv(), Some(Callback::Success(v)) if v == json!(1)));
        let again = registry.deliver(guard.token(), Callback::Success(json!(2)));
        assert!(matches!(again, Err(CallbackError::TaskTimedOut(_))));
    }

    #[test]
    fn heartbeats_do_not_close_the_token() {
        let registry = Arc::new(TokenRegistry::default());
        let (guard, _rx) = registry.issue(&"arn:x".into());
        registry
            .deliver(guard.token(), Callback::Heartbeat)
            .unwrap();
        registry
            .deliver(guard.token(), Callback::Heartbeat)
            .unwrap();
        registry
            .deliver(
                guard.token(),
                Callback::Failure {
                    error: "E".into(),
                    cause: "c".into(),
                },
            )
            .unwrap();
    }

    #[test]
    fn dropped_guard_makes_callbacks_late() {
        let registry = Arc::new(TokenRegistry::default());
        let (guard, _rx) = registry.issue(&"arn:x".into());
        let token = guard.token().to_string();
        drop(guard);
        let err = registry.deliver(&token, Callback::Heartbeat).unwrap_err();
        assert!(matches!(err, CallbackError::TaskTimedOut(_)));
    }

    #[test]
    fn unknown_and_malformed_tokens_are_told_apart() {
        let registry = TokenRegistry::default();
        let err = registry.deliver("nope", Callback::Heartbeat).unwrap_err();
        assert_eq!(
            err,
            CallbackError::InvalidToken(
                "invalid token: \"nope\" is not a task token issued by this engine".into()
            )
        );
        let unknown = "0".repeat(64);
        let err = registry.deliver(&unknown, Callback::Heartbeat).unwrap_err();
        assert!(matches!(err, CallbackError::TaskDoesNotExist(_)));
    }

    #[test]
    fn closing_an_execution_closes_only_its_tokens() {
        let registry = Arc::new(TokenRegistry::default());
        let (a, _rx_a) = registry.issue(&"arn:a".into());
        let (b, _rx_b) = registry.issue(&"arn:b".into());
        registry.close_execution("arn:a");
        assert!(matches!(
            registry.deliver(a.token(), Callback::Heartbeat),
            Err(CallbackError::TaskTimedOut(_))
        ));
        registry.deliver(b.token(), Callback::Heartbeat).unwrap();
    }

    #[test]
    fn restored_tokens_accept_callbacks_before_their_task_resumes() {
        let registry = Arc::new(TokenRegistry::default());
        let token = "ab".repeat(32);
        let mut rx = registry.restore(&token, "arn:x");
        registry
            .deliver(&token, Callback::Success(json!("done")))
            .unwrap();
        assert_eq!(rx.try_recv().unwrap(), Callback::Success(json!("done")));
        assert!(rx.try_recv().is_none());
        let closed = "cd".repeat(32);
        registry.restore_closed(&closed);
        assert!(matches!(
            registry.deliver(&closed, Callback::Heartbeat),
            Err(CallbackError::TaskTimedOut(_))
        ));
    }

    #[test]
    fn close_reports_whether_the_task_still_waited() {
        let registry = Arc::new(TokenRegistry::default());
        let (guard, _rx) = registry.issue(&"arn:x".into());
        registry
            .deliver(guard.token(), Callback::Success(json!(null)))
            .unwrap();
        assert!(!guard.close());
        let (guard2, _rx2) = registry.issue(&"arn:x".into());
        assert!(guard2.close());
    }
}
