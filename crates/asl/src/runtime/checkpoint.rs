//! Checkpoints: where each block of an execution stands, saved at state boundaries so that a
//! durable engine can resume an execution after a restart.
//!
//! A *block* is a sequence of states with its own position: the top level of the state machine
//! (key `""`), a Parallel branch or a Map iteration. An inner block's key extends its parent's
//! with the state's name, the attempt number and the branch or item index, so every block that
//! can be running at one moment has its own key. A block's checkpoint is either the state it is
//! in (with the state's input, entry time, retry progress, open task token and the block's own
//! variables as they were on state entry) or, once the block has ended, its output; the
//! checkpoints of a Parallel's or Map's inner blocks are dropped in the same commit that moves
//! the outer block past that state. A resumed inner block reads the variables of the blocks
//! around it from their own checkpoints.

use std::future::Future;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::error;

use super::history::Payload;
use super::interpreter::Execution;
use super::store::Op;
use crate::variables::Scope;

/// A block's saved progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "camelCase")]
pub(crate) enum Checkpoint {
    State(Position),
    Done { output: Value },
}

/// The state a block is in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Position {
    pub(crate) state: String,
    /// As text: a block keeps its position for as long as the state runs.
    pub(crate) input: Payload,
    pub(crate) entered: DateTime<Utc>,
    #[serde(default)]
    pub(crate) retry: RetryProgress,
    // Boxed, like `child`: most states have neither, and a position lives as long as its state.
    #[serde(default)]
    pub(crate) task: Option<Box<TaskProgress>>,
    /// The execution a `states:startExecution` task started in this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) child: Option<Box<ChildProgress>>,
    /// The block's own variables on state entry (absent when it has none, as in checkpoints
    /// written before variables existed).
    #[serde(default, skip_serializing_if = "Scope::is_empty")]
    pub(crate) variables: Scope,
}

/// Retry counters of the state, and when the pending retry is due.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetryProgress {
    pub(crate) attempts: Vec<u32>,
    pub(crate) retry_count: u32,
    pub(crate) retry_at: Option<DateTime<Utc>>,
}

/// The open token of a `.waitForTaskToken` attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskProgress {
    pub(crate) token: String,
    /// When the attempt started: TimeoutSeconds and HeartbeatSeconds count from here.
    pub(crate) started: DateTime<Utc>,
    /// The handler returned, so the work was handed off and must not be handed off again.
    pub(crate) submitted: bool,
}

/// The execution a `states:startExecution` attempt starts, committed before it starts, so that a
/// resumed attempt finds the same execution instead of starting a second one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ChildProgress {
    pub(crate) execution_arn: String,
    /// When the attempt started: TimeoutSeconds counts from here.
    pub(crate) started: DateTime<Utc>,
    /// `TaskSubmitted` was recorded.
    #[serde(default)]
    pub(crate) submitted: bool,
}

/// The state a block is running, shared by the steps of that state that update its checkpoint.
#[derive(Debug)]
pub(crate) struct Cursor {
    pub(crate) block: String,
    // A std Mutex: updated between awaits, never held across one.
    position: Mutex<Position>,
    /// Set when this state was resumed from a checkpoint rather than entered afresh.
    pub(crate) resumed: bool,
}

impl Cursor {
    pub(crate) fn new(block: &str, position: Position, resumed: bool) -> Self {
        Self {
            block: block.to_string(),
            position: Mutex::new(position),
            resumed,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Position> {
        self.position.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn entered(&self) -> DateTime<Utc> {
        self.lock().entered
    }

    /// The state's input, read back from the position's copy.
    pub(crate) fn input(&self) -> Value {
        self.lock().input.to_value()
    }

    pub(crate) fn retry(&self) -> RetryProgress {
        self.lock().retry.clone()
    }

    pub(crate) fn set_retry(&self, retry: RetryProgress) {
        let mut position = self.lock();
        position.retry = retry;
        position.task = None;
        position.child = None;
    }

    /// Takes the resumed task progress, so that only the first attempt after a restart uses it.
    pub(crate) fn take_task(&self) -> Option<TaskProgress> {
        if self.resumed {
            self.lock().task.as_deref().cloned()
        } else {
            None
        }
    }

    pub(crate) fn set_task(&self, task: Option<TaskProgress>) {
        self.lock().task = task.map(Box::new);
    }

    /// The resumed attempt's started execution, while no retry has replaced that attempt.
    pub(crate) fn resumed_child(&self) -> Option<ChildProgress> {
        if self.resumed {
            self.lock().child.as_deref().cloned()
        } else {
            None
        }
    }

    pub(crate) fn set_child(&self, child: Option<ChildProgress>) {
        self.lock().child = child.map(Box::new);
    }

    pub(crate) fn mark_child_submitted(&self) {
        if let Some(child) = &mut self.lock().child {
            child.submitted = true;
        }
    }

    pub(crate) fn mark_submitted(&self) {
        if let Some(task) = &mut self.lock().task {
            task.submitted = true;
        }
    }

    fn snapshot(&self) -> Position {
        self.lock().clone()
    }
}

/// Key of the inner block `index` of a Parallel or Map state in attempt `attempt`.
pub(crate) fn inner_block(block: &str, state: &str, attempt: u32, index: usize) -> String {
    format!("{}{attempt}#{index}", inner_prefix(block, state))
}

/// The common prefix of every inner block of a state, across attempts. The state name is
/// JSON-quoted so that no name can run into the separators.
pub(crate) fn inner_prefix(block: &str, state: &str) -> String {
    let quoted = serde_json::to_string(state).unwrap_or_default();
    format!("{block}/{quoted}@")
}

impl Execution {
    /// The saved checkpoint of a block, taken once: a block that runs again later (a loop back
    /// into a Parallel state) starts afresh.
    pub(crate) fn take_checkpoint(&self, block: &str) -> Option<Checkpoint> {
        self.resume
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(block)
    }

    /// Commits the cursor's position; the interpreter goes on only once it is durable.
    pub(crate) fn save(
        &self,
        cursor: &Cursor,
        clear_prefix: Option<String>,
    ) -> impl Future<Output = ()> + Send {
        self.commit_some(self.position_op(cursor, clear_prefix))
    }

    /// The write of the cursor's position, `None` in a memory-only engine.
    pub(crate) fn position_op(&self, cursor: &Cursor, clear_prefix: Option<String>) -> Option<Op> {
        self.checkpoint_op(
            &cursor.block,
            &Checkpoint::State(cursor.snapshot()),
            clear_prefix,
        )
    }

    /// Commits the output of an inner block that has ended.
    pub(crate) fn save_done(
        &self,
        block: &str,
        output: &Value,
        clear: Option<String>,
    ) -> impl Future<Output = ()> + Send {
        let op = self.inner.store.as_ref().and_then(|_| {
            let checkpoint = Checkpoint::Done {
                output: output.clone(),
            };
            self.checkpoint_op(block, &checkpoint, clear)
        });
        self.commit_some(op)
    }

    fn checkpoint_op(
        &self,
        block: &str,
        checkpoint: &Checkpoint,
        clear_prefix: Option<String>,
    ) -> Option<Op> {
        self.inner.store.as_ref()?;
        let checkpoint = serde_json::to_string(checkpoint).unwrap_or_default();
        Some(Op::Checkpoint {
            execution_arn: self.arn.to_string(),
            block: block.to_string(),
            checkpoint,
            clear_prefix,
        })
    }

    /// Commits a write, or everything queued so far for `Op::Sync`. A store failure is logged
    /// and the execution goes on in memory: it would be lost on a restart.
    pub(crate) fn commit(&self, op: Op) -> impl Future<Output = ()> + Send {
        self.commit_some(Some(op))
    }

    /// The wait for a commit lives on the heap, and only in a durable engine: it is larger than
    /// most states' own futures, which would otherwise carry its room all the time.
    fn commit_some(&self, op: Option<Op>) -> impl Future<Output = ()> + Send {
        let write = match (&self.inner.store, op) {
            (Some(store), Some(op)) => Some(Box::pin(async move {
                if let Err(e) = store.commit(op).await {
                    error!(execution = %self.arn, error = %e, "checkpoint not saved");
                }
            })),
            _ => None,
        };
        async move {
            if let Some(write) = write {
                write.await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn inner_block_keys_cannot_collide_through_state_names() {
        let a = inner_block("", "P@0#1", 0, 0);
        let b = inner_block("", "P", 0, 1);
        assert_ne!(a, b);
        assert!(a.starts_with(&inner_prefix("", "P@0#1")));
        assert!(!b.starts_with(&inner_prefix("", "P@0#1")));
        assert_eq!(inner_block("", "P", 2, 3), "/\"P\"@2#3");
    }

    #[test]
    fn checkpoints_round_trip_through_json() {
        let position = Position {
            state: "Wait".into(),
            input: Payload::new(&json!({"n": 1})),
            entered: DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
                .unwrap()
                .to_utc(),
            retry: RetryProgress {
                attempts: vec![1, 0],
                retry_count: 1,
                retry_at: None,
            },
            task: Some(Box::new(TaskProgress {
                token: "t".into(),
                started: DateTime::parse_from_rfc3339("2024-05-01T10:00:01Z")
                    .unwrap()
                    .to_utc(),
                submitted: true,
            })),
            child: Some(Box::new(ChildProgress {
                execution_arn: "arn:aws:states:local:000000000000:execution:Child:c1".into(),
                started: DateTime::parse_from_rfc3339("2024-05-01T10:00:02Z")
                    .unwrap()
                    .to_utc(),
                submitted: false,
            })),
            variables: serde_json::from_value(json!({"count": 2, "order": {"id": "o-1"}})).unwrap(),
        };
        let checkpoint = Checkpoint::State(position);
        let text = serde_json::to_string(&checkpoint).unwrap();
        assert_eq!(
            serde_json::from_str::<Checkpoint>(&text).unwrap(),
            checkpoint
        );
        assert!(
            text.contains(r#""variables":{"count":2,"order":{"id":"o-1"}}"#),
            "{text}"
        );
        let done: Checkpoint = serde_json::from_str(r#"{"at":"done","output":[1]}"#).unwrap();
        let old = r#"{"at":"state","state":"W","input":{},"entered":"2024-05-01T10:00:00Z"}"#;
        let Checkpoint::State(old) = serde_json::from_str(old).unwrap() else {
            panic!("a state checkpoint");
        };
        assert_eq!(
            old.child, None,
            "checkpoints written before nested tasks still load"
        );
        assert_eq!(done, Checkpoint::Done { output: json!([1]) });
    }

    #[test]
    fn a_block_without_variables_writes_no_variables_field() {
        let position = Position {
            state: "P".into(),
            input: Payload::new(&json!({})),
            entered: DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
                .unwrap()
                .to_utc(),
            retry: RetryProgress::default(),
            task: None,
            child: None,
            variables: Scope::default(),
        };
        let text = serde_json::to_string(&Checkpoint::State(position)).unwrap();
        assert!(!text.contains("variables"), "{text}");
        let back: Checkpoint = serde_json::from_str(&text).unwrap();
        assert!(matches!(back, Checkpoint::State(p) if p.variables.is_empty()));
    }
}
