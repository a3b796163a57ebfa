//! Helpers for the conformance suite: run one Pass state, and task handlers that compute a
//! result from their input or never answer, so documented examples run end to end.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wme_asl::{Engine, TaskCall, TaskFailure, TaskHandler};

use crate::common;

/// Runs a one-state machine `{"Type": "Pass", "Parameters": parameters}` on `input` and returns
/// the execution's output, or `Err((error, cause))` when the execution failed.
pub async fn pass_parameters(parameters: Value, input: Value) -> Result<Value, (String, String)> {
    let machine = json!({"StartAt": "P", "States": {"P": {
        "Type": "Pass", "Parameters": parameters, "End": true
    }}});
    outcome(common::run(&common::engine(), &machine, input).await)
}

/// Runs a one-state Pass machine with the given extra fields (InputPath, OutputPath, ...).
pub async fn pass_state(fields: Value, input: Value) -> Result<Value, (String, String)> {
    let mut state = json!({"Type": "Pass", "End": true});
    for (key, value) in fields.as_object().expect("fields must be an object") {
        state[key] = value.clone();
    }
    let machine = json!({"StartAt": "P", "States": {"P": state}});
    outcome(common::run(&common::engine(), &machine, input).await)
}

pub fn outcome(done: wme_asl::ExecutionDescription) -> Result<Value, (String, String)> {
    match done.status {
        wme_asl::ExecutionStatus::Succeeded => Ok(done.output.unwrap_or(Value::Null)),
        _ => Err((
            done.error.unwrap_or_default(),
            done.cause.unwrap_or_default(),
        )),
    }
}

type Compute = dyn Fn(&Value) -> Result<Value, TaskFailure> + Send + Sync;

/// A task handler that computes its result from its parameters, and records every call.
pub struct Func {
    compute: Box<Compute>,
    pub calls: Mutex<Vec<(tokio::time::Instant, Value)>>,
}

impl Func {
    pub fn new(
        compute: impl Fn(&Value) -> Result<Value, TaskFailure> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            compute: Box::new(compute),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn inputs(&self) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Seconds between successive calls.
    pub fn gaps(&self) -> Vec<Duration> {
        let calls = self.calls.lock().unwrap();
        calls.windows(2).map(|w| w[1].0 - w[0].0).collect()
    }
}

#[async_trait::async_trait]
impl TaskHandler for Func {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let now = tokio::time::Instant::now();
        self.calls
            .lock()
            .unwrap()
            .push((now, call.parameters.clone()));
        (self.compute)(&call.parameters)
    }
}

/// A task that runs for `seconds` before answering `null`, like the guide's `sleep10` Lambda.
pub struct Sleep {
    pub seconds: u64,
    pub calls: Mutex<Vec<tokio::time::Instant>>,
}

impl Sleep {
    pub fn new(seconds: u64) -> Arc<Self> {
        Arc::new(Self {
            seconds,
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn call_offsets(&self, start: tokio::time::Instant) -> Vec<Duration> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|t| *t - start)
            .collect()
    }
}

#[async_trait::async_trait]
impl TaskHandler for Sleep {
    async fn invoke(&self, _call: TaskCall) -> Result<Value, TaskFailure> {
        self.calls.lock().unwrap().push(tokio::time::Instant::now());
        tokio::time::sleep(Duration::from_secs(self.seconds)).await;
        Ok(Value::Null)
    }
}

/// Registers `handler` under `resource` and returns the engine, for one-liners.
pub fn engine_with(resource: &str, handler: Arc<dyn TaskHandler>) -> Arc<Engine> {
    let engine = common::engine();
    engine.register(resource, handler);
    engine
}
