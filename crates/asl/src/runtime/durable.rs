//! The durable engine: [`Engine::open`] reads a SQLite store back (state machines, executions,
//! histories, checkpoints, task tokens) and [`Engine::resume`] restarts the executions that were
//! running, from their last committed checkpoints.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tracing::{error, info};

use super::checkpoint::Checkpoint;
use super::clock::format_time;
use super::interpreter::Execution;
use super::store::{Loaded, Op, Store, StoreError};
use super::tokens::{Callback, Inbox};
use super::{
    CallbackError, Engine, ExecutionDescription, ExecutionHandle, ExecutionRecord, HistoryEvent,
    Inner, MachineRecord, lock, write,
};
use crate::definition;

/// What a durable engine read back and has not handed to a resumed execution yet.
#[derive(Debug, Default)]
pub(crate) struct Restored {
    pending: Vec<Pending>,
    /// Callback receivers of the open tokens, taken by the resumed tasks.
    receivers: HashMap<String, Inbox>,
    /// Last heartbeat of each open token that had one.
    heartbeats: HashMap<String, DateTime<Utc>>,
}

/// A running execution waiting for [`Engine::resume`].
#[derive(Debug)]
struct Pending {
    handle: Arc<ExecutionHandle>,
    machine: Arc<MachineRecord>,
    checkpoints: HashMap<String, Checkpoint>,
}

impl Engine {
    /// Opens (or creates) a durable engine on the SQLite file at `path`. State machines,
    /// executions and their histories are read back; running executions stay paused until
    /// [`Engine::resume`], so that the process can register its task handlers first (handlers
    /// are code and are not stored). Callbacks for the tokens of paused tasks are accepted and
    /// applied when their executions resume.
    pub fn open(
        config: super::EngineConfig,
        path: impl AsRef<Path>,
    ) -> Result<Arc<Engine>, StoreError> {
        let (store, loaded) = Store::open(path.as_ref())?;
        let shown = store.path().to_string();
        let inner = Arc::new(Inner::new(config, Some(store)));
        restore(&inner, loaded, &shown)?;
        Ok(Arc::new(Engine { inner }))
    }

    /// Reads a durable engine's file without writing to it or resuming anything: for looking
    /// at executions (list, describe, history), also while another process runs them. The
    /// engine it returns keeps what it read in memory; it runs nothing it read.
    pub fn open_read_only(
        config: super::EngineConfig,
        path: impl AsRef<Path>,
    ) -> Result<Arc<Engine>, StoreError> {
        let loaded = Store::read_only(path.as_ref())?;
        let shown = path.as_ref().display().to_string();
        let inner = Arc::new(Inner::new(config, None));
        restore(&inner, loaded, &shown)?;
        lock(&inner.restored).pending.clear();
        Ok(Arc::new(Engine { inner }))
    }

    /// Restarts every execution that was running when the store was last written, each from
    /// its last committed checkpoint; returns how many. Call it once the task handlers are
    /// registered. Does nothing for a memory-only engine or when called again.
    pub fn resume(&self) -> usize {
        let pending = std::mem::take(&mut lock(&self.inner.restored).pending);
        // An execution stopped while it waited for `resume` stays stopped.
        let pending: Vec<Pending> = pending
            .into_iter()
            .filter(|p| !p.handle.lock().description.status.is_terminal())
            .collect();
        let count = pending.len();
        for p in pending {
            Execution::spawn(
                Arc::clone(&self.inner),
                p.handle,
                p.machine,
                Some(p.checkpoints),
            );
        }
        if count > 0 {
            info!(executions = count, "executions resumed");
        }
        count
    }

    /// Waits until every write queued so far (history events included) is committed. The
    /// engine never needs it for its guarantees; it lets a caller know that what it has seen
    /// in a history is on disk.
    pub async fn flush(&self) {
        self.sync().await;
    }

    /// Whether this engine writes to a store ([`Engine::open`]) or keeps everything in memory.
    pub fn is_durable(&self) -> bool {
        self.inner.store.is_some()
    }

    /// Stores a definition as written, with its substitutions, and returns its id.
    pub(crate) fn persist_definition(
        &self,
        arn: &str,
        name: &str,
        definition_json: &str,
        substitutions: &HashMap<String, String>,
    ) -> i64 {
        let Some(store) = &self.inner.store else {
            return 0;
        };
        let id = self
            .inner
            .next_definition_id
            .fetch_add(1, Ordering::Relaxed);
        let op = Op::Definition {
            id,
            machine_arn: arn.to_string(),
            name: name.to_string(),
            definition: definition_json.to_string(),
            substitutions: serde_json::to_string(substitutions).unwrap_or_default(),
        };
        if let Err(e) = store.commit_blocking(op) {
            error!(state_machine = %arn, error = %e, "state machine not saved");
        }
        id
    }

    pub(crate) fn persist_execution(&self, handle: &ExecutionHandle, machine: &MachineRecord) {
        let Some(store) = &self.inner.store else {
            return;
        };
        let d = handle.lock().describe();
        store.queue(Op::Execution {
            arn: d.execution_arn.clone(),
            definition_id: machine.definition_id,
            status: d.status.as_str().to_string(),
            description: serde_json::to_string(&d).unwrap_or_default(),
        });
    }

    /// Waits until everything queued so far is committed.
    pub(crate) async fn sync(&self) {
        if let Some(store) = &self.inner.store
            && let Err(e) = store.commit(Op::Sync).await
        {
            error!(error = %e, "execution store commit failed");
        }
    }

    /// Hands a callback to its task. A durable engine commits a success or failure before
    /// returning, so an acknowledged callback survives a restart and is applied exactly once.
    pub(crate) fn deliver(&self, token: &str, callback: Callback) -> Result<(), CallbackError> {
        let stored = self.inner.store.is_some().then(|| callback.clone());
        self.inner.tokens.deliver(token, callback)?;
        let (Some(store), Some(callback)) = (&self.inner.store, stored) else {
            return Ok(());
        };
        match callback {
            Callback::Heartbeat => store.queue(Op::Heartbeat {
                token: token.to_string(),
                at: format_time(self.inner.clock.now()),
            }),
            done => {
                let op = Op::CallbackResult {
                    token: token.to_string(),
                    result: serde_json::to_string(&done).unwrap_or_default(),
                };
                if let Err(e) = store.commit_blocking(op) {
                    error!(token = %token, error = %e, "task callback not saved");
                }
            }
        }
        Ok(())
    }
}

impl Inner {
    /// The callback receiver and last heartbeat of a restored token, once.
    pub(crate) fn take_restored_token(
        &self,
        token: &str,
    ) -> Option<(Inbox, Option<DateTime<Utc>>)> {
        let mut restored = lock(&self.restored);
        let receiver = restored.receivers.remove(token)?;
        Some((receiver, restored.heartbeats.remove(token)))
    }
}

fn restore(inner: &Arc<Inner>, loaded: Loaded, path: &str) -> Result<(), StoreError> {
    let corrupt = |what: &'static str, key: &str, reason: String| StoreError::Corrupt {
        path: path.to_string(),
        what,
        key: key.to_string(),
        reason,
    };
    let by_id = restore_machines(inner, &loaded, &corrupt)?;
    let mut open_tokens = HashSet::new();
    let mut checkpoints = loaded.checkpoints;
    let mut events = loaded.events;
    for row in &loaded.executions {
        let description: ExecutionDescription = serde_json::from_str(&row.description)
            .map_err(|e| corrupt("execution", &row.arn, e.to_string()))?;
        let history = events
            .remove(&row.arn)
            .unwrap_or_default()
            .iter()
            .map(|e| serde_json::from_str::<HistoryEvent>(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| corrupt("history event", &row.arn, e.to_string()))?;
        let status = description.status;
        let handle = Arc::new(ExecutionHandle::new(ExecutionRecord::new(
            description,
            history,
        )));
        lock(&inner.executions).insert(Arc::clone(&handle.arn), Arc::clone(&handle));
        if status.is_terminal() {
            continue;
        }
        let machine = by_id.get(&row.definition_id).cloned().ok_or_else(|| {
            corrupt(
                "execution",
                &row.arn,
                format!("its definition {} is missing", row.definition_id),
            )
        })?;
        let mut blocks = HashMap::new();
        for (block, text) in checkpoints.remove(&row.arn).unwrap_or_default() {
            let checkpoint: Checkpoint = serde_json::from_str(&text)
                .map_err(|e| corrupt("checkpoint", &row.arn, e.to_string()))?;
            if let Checkpoint::State(p) = &checkpoint
                && let Some(task) = &p.task
            {
                open_tokens.insert(task.token.clone());
            }
            blocks.insert(block, checkpoint);
        }
        lock(&inner.restored).pending.push(Pending {
            handle,
            machine,
            checkpoints: blocks,
        });
    }
    restore_tokens(inner, loaded.tokens, &open_tokens, &corrupt)
}

type Corrupt<'a> = dyn Fn(&'static str, &str, String) -> StoreError + 'a;

fn restore_machines(
    inner: &Inner,
    loaded: &Loaded,
    corrupt: &Corrupt<'_>,
) -> Result<HashMap<i64, Arc<MachineRecord>>, StoreError> {
    let mut by_id = HashMap::new();
    for row in &loaded.definitions {
        let substitutions: HashMap<String, String> = serde_json::from_str(&row.substitutions)
            .map_err(|e| corrupt("state machine", &row.machine_arn, e.to_string()))?;
        let mut value: Value = serde_json::from_str(&row.definition)
            .map_err(|e| corrupt("state machine", &row.machine_arn, e.to_string()))?;
        let invalid = |errors: Vec<definition::ValidationError>| {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            corrupt("state machine", &row.machine_arn, text.join("; "))
        };
        definition::substitute(&mut value, &substitutions).map_err(invalid)?;
        // Resources were checked when the machine was created; handlers come later.
        let machine = definition::parse_definition(&value, &|_| true).map_err(invalid)?;
        let record = Arc::new(MachineRecord {
            arn: row.machine_arn.clone(),
            name: row.name.clone(),
            definition: Arc::new(machine),
            definition_id: row.id,
        });
        // Rows come in id order, so the newest definition of a name wins.
        write(&inner.machines).insert(row.machine_arn.clone(), Arc::clone(&record));
        by_id.insert(row.id, record);
        inner
            .next_definition_id
            .fetch_max(row.id + 1, Ordering::Relaxed);
    }
    Ok(by_id)
}

fn restore_tokens(
    inner: &Inner,
    tokens: Vec<super::store::TokenRow>,
    open: &HashSet<String>,
    corrupt: &Corrupt<'_>,
) -> Result<(), StoreError> {
    let mut restored = lock(&inner.restored);
    for row in tokens {
        if !open.contains(&row.token) {
            inner.tokens.restore_closed(&row.token);
            continue;
        }
        let receiver = inner.tokens.restore(&row.token, &row.execution_arn);
        if let Some(result) = &row.result {
            let callback: Callback = serde_json::from_str(result)
                .map_err(|e| corrupt("task callback", &row.token, e.to_string()))?;
            // Applied when the task resumes; the token is closed again, as before the restart.
            let _ = inner.tokens.deliver(&row.token, callback);
        }
        if let Some(at) = row.heartbeat.as_deref() {
            let at = DateTime::parse_from_rfc3339(at)
                .map_err(|e| corrupt("task heartbeat", &row.token, e.to_string()))?;
            restored.heartbeats.insert(row.token.clone(), at.to_utc());
        }
        restored.receivers.insert(row.token, receiver);
    }
    Ok(())
}
