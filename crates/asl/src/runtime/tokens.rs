//! Task tokens for `.waitForTaskToken` tasks: issued per attempt, completed at most once.
//!
//! A token stays known after its task ends (completed, failed, timed out, or its execution
//! stopped) so that a late callback is told `TaskTimedOut`, as AWS does, rather than that the
//! token does not exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

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

#[derive(Debug)]
enum Entry {
    /// The sender to the waiting task and the execution it belongs to.
    Waiting(mpsc::UnboundedSender<Callback>, String),
    Closed,
}

/// All tokens the engine ever issued.
#[derive(Debug, Default)]
pub(crate) struct TokenRegistry {
    // A std Mutex: every operation is a short map update that never awaits.
    entries: Mutex<HashMap<String, Entry>>,
}

/// Closes its token when dropped, so a task that ends for any reason (including being
/// cancelled with its execution) stops accepting callbacks.
#[derive(Debug)]
pub(crate) struct TokenGuard {
    registry: Arc<TokenRegistry>,
    token: String,
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
    pub(crate) fn issue(
        self: &Arc<Self>,
        execution_arn: &str,
    ) -> (TokenGuard, mpsc::UnboundedReceiver<Callback>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let token = new_token();
        self.lock()
            .insert(token.clone(), Entry::Waiting(tx, execution_arn.to_string()));
        let guard = TokenGuard {
            registry: Arc::clone(self),
            token,
        };
        (guard, rx)
    }

    /// Registers a token read back from a durable store whose task still waits; callbacks
    /// queue on the returned receiver until the resumed task takes it.
    pub(crate) fn restore(
        &self,
        token: &str,
        execution_arn: &str,
    ) -> mpsc::UnboundedReceiver<Callback> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(
            token.to_string(),
            Entry::Waiting(tx, execution_arn.to_string()),
        );
        rx
    }

    /// Registers a token read back from a durable store whose task has ended, so that a late
    /// callback is still told that the task timed out.
    pub(crate) fn restore_closed(&self, token: &str) {
        self.lock().insert(token.to_string(), Entry::Closed);
    }

    /// A guard for a restored token.
    pub(crate) fn guard(self: &Arc<Self>, token: &str) -> TokenGuard {
        TokenGuard {
            registry: Arc::clone(self),
            token: token.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
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
            if matches!(entry, Entry::Waiting(_, arn) if arn == execution_arn) {
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
        if tx.send(callback).is_err() {
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
        let (a, _rx_a) = registry.issue("arn:x");
        let (b, _rx_b) = registry.issue("arn:x");
        assert_ne!(a.token(), b.token());
        assert!(is_well_formed(a.token()));
    }

    #[test]
    fn success_is_delivered_once_then_refused() {
        let registry = Arc::new(TokenRegistry::default());
        let (guard, mut rx) = registry.issue("arn:x");
        registry
            .deliver(guard.token(), Callback::Success(json!(1)))
            .unwrap();
        assert!(matches!(rx.try_recv(), Ok(Callback::Success(v)) if v == json!(1)));
        let again = registry.deliver(guard.token(), Callback::Success(json!(2)));
        assert!(matches!(again, Err(CallbackError::TaskTimedOut(_))));
    }

    #[test]
    fn heartbeats_do_not_close_the_token() {
        let registry = Arc::new(TokenRegistry::default());
        let (guard, _rx) = registry.issue("arn:x");
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
        let (guard, _rx) = registry.issue("arn:x");
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
        let (a, _rx_a) = registry.issue("arn:a");
        let (b, _rx_b) = registry.issue("arn:b");
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
        let (guard, _rx) = registry.issue("arn:x");
        registry
            .deliver(guard.token(), Callback::Success(json!(null)))
            .unwrap();
        assert!(!guard.close());
        let (guard2, _rx2) = registry.issue("arn:x");
        assert!(guard2.close());
    }
}
