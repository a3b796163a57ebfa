//! Execution history, shaped after `GetExecutionHistory`: numbered, timestamped events with the
//! inputs, outputs and errors of each step. Events are plain serde data so that a durable store
//! can append them as they happen and replay them later.
//!
//! A history holds at most [`MAX_HISTORY_EVENTS`] events, the Step Functions Standard quota: an
//! execution that would record more fails with `States.Runtime`, and that failure is its last
//! event.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON document in an event, kept as its compact text. An execution's history holds a copy
/// of every state's input and output; as text a small document costs its length, where a parsed
/// object costs a tree node of over 600 bytes. Clones share the text (a state's entered event
/// and its checkpoint hold the same input). It serializes as the JSON it holds.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct Payload(Arc<RawValue>);

/// Read as a JSON value, then kept as text: events and checkpoints are tagged enums, which serde
/// reads through a buffer that cannot hand out raw text.
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(|value| Payload::new(&value))
    }
}

impl Payload {
    pub fn new(value: &Value) -> Payload {
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_string());
        Payload(
            RawValue::from_string(text)
                .expect("serde_json writes valid JSON")
                .into(),
        )
    }

    /// The compact JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

impl From<&Value> for Payload {
    fn from(value: &Value) -> Self {
        Payload::new(value)
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

/// Equal when the documents are, whatever their spelling.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get() || self.to_value() == other.to_value()
    }
}

impl PartialEq<Value> for Payload {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

use crate::error::StatesError;

/// Most events one execution's history holds ("Maximum execution history size" in the Step
/// Functions quotas). The last one is always the execution's end.
pub const MAX_HISTORY_EVENTS: u64 = 25_000;

/// The failure of an execution whose history is full, worded as AWS reports it.
pub(crate) fn limit_error() -> StatesError {
    StatesError::runtime(format!(
        "The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."
    ))
}

/// One event of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEvent {
    /// 1-based, in the order events happened.
    pub id: u64,
    /// The event before this one (0 for the first).
    pub previous_event_id: u64,
    pub timestamp: DateTime<Utc>,
    #[serde(flatten)]
    pub details: EventDetails,
}

impl HistoryEvent {
    /// The AWS event type name, e.g. `TaskStateEntered` or `ExecutionSucceeded`.
    pub fn event_type(&self) -> String {
        self.details.event_type()
    }
}

/// What happened. State events carry the state type so that the AWS type name
/// (`PassStateEntered`, `ChoiceStateExited`, ...) can be derived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum EventDetails {
    ExecutionStarted {
        input: Payload,
        role_arn: Arc<str>,
    },
    ExecutionSucceeded {
        output: Payload,
    },
    ExecutionFailed {
        error: String,
        cause: String,
    },
    ExecutionTimedOut {
        error: String,
        cause: String,
    },
    ExecutionAborted {
        error: String,
        cause: String,
    },
    StateEntered {
        state_type: String,
        name: String,
        input: Payload,
    },
    StateExited {
        state_type: String,
        name: String,
        output: Payload,
        /// What the state assigned, if anything: boxed (and one field, flattened into the two
        /// AWS shows) so that an event costs no more than before for the states that assign
        /// nothing, the most of them.
        #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
        assigned: Option<Box<AssignedVariables>>,
    },
    TaskScheduled {
        resource: Arc<str>,
        parameters: Payload,
        timeout_seconds: Option<u64>,
        heartbeat_seconds: Option<u64>,
    },
    TaskStarted {
        resource: Arc<str>,
    },
    TaskSubmitted {
        resource: Arc<str>,
        output: Payload,
    },
    TaskSucceeded {
        resource: Arc<str>,
        output: Payload,
    },
    TaskFailed {
        resource: Arc<str>,
        error: String,
        cause: String,
    },
    TaskTimedOut {
        resource: Arc<str>,
        error: String,
        cause: String,
    },
    ParallelStateStarted {
        name: String,
    },
    ParallelStateSucceeded {
        name: String,
    },
    ParallelStateFailed {
        name: String,
        error: String,
        cause: String,
    },
    MapStateStarted {
        name: String,
        length: usize,
    },
    MapIterationStarted {
        name: String,
        index: usize,
    },
    MapIterationSucceeded {
        name: String,
        index: usize,
    },
    MapIterationFailed {
        name: String,
        index: usize,
        error: String,
        cause: String,
    },
    MapStateSucceeded {
        name: String,
    },
    MapStateFailed {
        name: String,
        error: String,
        cause: String,
    },
    WaitStateStarted {
        name: String,
        seconds: f64,
    },
    StateRetried {
        name: String,
        error: String,
        retry_count: u32,
        delay_seconds: f64,
    },
    StateCaught {
        name: String,
        error: String,
        next: String,
    },
}

/// The variables a state assigned, as its state-exited event shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedVariables {
    /// Name → value as JSON text (`assignedVariables`).
    pub assigned_variables: BTreeMap<String, String>,
    pub assigned_variables_details: AssignedVariablesDetails,
}

/// `assignedVariablesDetails` of a state-exited event. AWS truncates only in CloudWatch Logs,
/// never in the execution history, so this engine always reports `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedVariablesDetails {
    pub truncated: bool,
}

impl EventDetails {
    /// Whether this event ends the execution (the only kind a full history still takes).
    pub fn ends_execution(&self) -> bool {
        matches!(
            self,
            EventDetails::ExecutionSucceeded { .. }
                | EventDetails::ExecutionFailed { .. }
                | EventDetails::ExecutionTimedOut { .. }
                | EventDetails::ExecutionAborted { .. }
        )
    }

    pub fn event_type(&self) -> String {
        match self {
            EventDetails::StateEntered { state_type, .. } => format!("{state_type}StateEntered"),
            EventDetails::StateExited { state_type, .. } => format!("{state_type}StateExited"),
            other => {
                let json = serde_json::to_value(other).unwrap_or_default();
                let kind = json.get("kind").and_then(Value::as_str).unwrap_or_default();
                let mut chars = kind.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn event_type_names_follow_aws() {
        let entered = EventDetails::StateEntered {
            state_type: "Task".into(),
            name: "A".into(),
            input: Payload::new(&json!({})),
        };
        assert_eq!(entered.event_type(), "TaskStateEntered");
        let ok = EventDetails::ExecutionSucceeded {
            output: Payload::new(&json!(1)),
        };
        assert_eq!(ok.event_type(), "ExecutionSucceeded");
        let map = EventDetails::MapIterationStarted {
            name: "M".into(),
            index: 0,
        };
        assert_eq!(map.event_type(), "MapIterationStarted");
    }

    #[test]
    fn state_exited_events_carry_assigned_variables_only_when_there_are_some() {
        let exited = |assigned| HistoryEvent {
            id: 3,
            previous_event_id: 2,
            timestamp: DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                .unwrap()
                .to_utc(),
            details: EventDetails::StateExited {
                state_type: "Pass".into(),
                name: "P".into(),
                output: Payload::new(&json!({})),
                assigned,
            },
        };
        let plain = exited(None);
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("assigned_variables").is_none(), "{json}");
        assert_eq!(serde_json::from_value::<HistoryEvent>(json).unwrap(), plain);

        let assigning = exited(Some(Box::new(AssignedVariables {
            assigned_variables: BTreeMap::from([("x".to_string(), "42".to_string())]),
            assigned_variables_details: AssignedVariablesDetails { truncated: false },
        })));
        let json = serde_json::to_value(&assigning).unwrap();
        assert_eq!(json["kind"], "stateExited");
        assert_eq!(json["assigned_variables"], json!({"x": "42"}));
        assert_eq!(
            json["assigned_variables_details"],
            json!({"truncated": false})
        );
        assert_eq!(
            serde_json::from_value::<HistoryEvent>(json).unwrap(),
            assigning
        );
    }

    #[test]
    fn only_execution_outcomes_end_an_execution() {
        let failed = EventDetails::ExecutionFailed {
            error: "E".into(),
            cause: "c".into(),
        };
        assert!(failed.ends_execution());
        let exited = EventDetails::StateExited {
            state_type: "Pass".into(),
            name: "P".into(),
            output: Payload::new(&json!(null)),
            assigned: None,
        };
        assert!(!exited.ends_execution());
        let limit = limit_error();
        assert_eq!(limit.error, "States.Runtime");
        assert_eq!(
            limit.cause,
            "The execution reached the maximum number of history events (25000)."
        );
    }

    #[test]
    fn assigned_variables_cost_an_event_one_pointer() {
        // Every event is as large as the largest variant (a failed map iteration's); a
        // state-exited event, with its variables behind one pointer, stays smaller.
        use std::mem::size_of;
        assert_eq!(
            size_of::<Option<Box<AssignedVariables>>>(),
            size_of::<usize>()
        );
        let state_exited = size_of::<(String, String, Payload, Option<Box<AssignedVariables>>)>();
        let map_iteration_failed = size_of::<(String, usize, String, String)>();
        assert!(state_exited <= map_iteration_failed);
    }

    #[test]
    fn events_round_trip_through_json() {
        let event = HistoryEvent {
            id: 2,
            previous_event_id: 1,
            timestamp: DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
                .unwrap()
                .to_utc(),
            details: EventDetails::TaskFailed {
                resource: "r".into(),
                error: "E".into(),
                cause: "c".into(),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["kind"], "taskFailed");
        assert_eq!(json["previousEventId"], 1);
        let back: HistoryEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }
}
