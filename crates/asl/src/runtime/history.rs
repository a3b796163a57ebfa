//! Execution history, shaped after `GetExecutionHistory`: numbered, timestamped events with the
//! inputs, outputs and errors of each step. Events are plain serde data so that a durable store
//! can append them as they happen and replay them later.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
        input: Value,
        role_arn: String,
    },
    ExecutionSucceeded {
        output: Value,
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
        input: Value,
    },
    StateExited {
        state_type: String,
        name: String,
        output: Value,
        /// The variables the state assigned: name → value as JSON text (`assignedVariables`).
        /// Boxed because most states assign none and every event pays for the largest variant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_variables: Option<Box<BTreeMap<String, String>>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assigned_variables_details: Option<AssignedVariablesDetails>,
    },
    TaskScheduled {
        resource: String,
        parameters: Value,
        timeout_seconds: Option<u64>,
        heartbeat_seconds: Option<u64>,
    },
    TaskStarted {
        resource: String,
    },
    TaskSubmitted {
        resource: String,
        output: Value,
    },
    TaskSucceeded {
        resource: String,
        output: Value,
    },
    TaskFailed {
        resource: String,
        error: String,
        cause: String,
    },
    TaskTimedOut {
        resource: String,
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

/// `assignedVariablesDetails` of a state-exited event. AWS truncates only in CloudWatch Logs,
/// never in the execution history, so this engine always reports `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignedVariablesDetails {
    pub truncated: bool,
}

impl EventDetails {
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
            input: json!({}),
        };
        assert_eq!(entered.event_type(), "TaskStateEntered");
        let ok = EventDetails::ExecutionSucceeded { output: json!(1) };
        assert_eq!(ok.event_type(), "ExecutionSucceeded");
        let map = EventDetails::MapIterationStarted {
            name: "M".into(),
            index: 0,
        };
        assert_eq!(map.event_type(), "MapIterationStarted");
    }

    #[test]
    fn state_exited_events_carry_assigned_variables_only_when_there_are_some() {
        let plain = EventDetails::StateExited {
            state_type: "Pass".into(),
            name: "P".into(),
            output: json!({}),
            assigned_variables: None,
            assigned_variables_details: None,
        };
        let json = serde_json::to_value(&plain).unwrap();
        assert!(json.get("assigned_variables").is_none(), "{json}");
        let assigning = EventDetails::StateExited {
            state_type: "Pass".into(),
            name: "P".into(),
            output: json!({}),
            assigned_variables: Some(Box::new(BTreeMap::from([(
                "x".to_string(),
                "42".to_string(),
            )]))),
            assigned_variables_details: Some(AssignedVariablesDetails { truncated: false }),
        };
        let json = serde_json::to_value(&assigning).unwrap();
        assert_eq!(json["assigned_variables"], json!({"x": "42"}));
        assert_eq!(
            json["assigned_variables_details"],
            json!({"truncated": false})
        );
        let back: EventDetails = serde_json::from_value(json).unwrap();
        assert_eq!(back, assigning);
        let old = json!({"kind": "stateExited", "state_type": "Pass", "name": "P", "output": {}});
        assert_eq!(serde_json::from_value::<EventDetails>(old).unwrap(), plain);
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
