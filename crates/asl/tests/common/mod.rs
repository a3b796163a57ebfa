//! Shared helpers for the engine tests: an engine factory and scripted task handlers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wme_asl::{Engine, EngineConfig, ExecutionDescription, TaskCall, TaskFailure, TaskHandler};

pub const ECHO: &str = "arn:aws:states:::test:echo";
pub const SCRIPT: &str = "arn:aws:states:::test:script";
pub const CALLBACK: &str = "arn:aws:states:::test:callback";

pub fn engine() -> Arc<Engine> {
    engine_with_scale(1.0)
}

pub fn engine_with_scale(time_scale: f64) -> Arc<Engine> {
    Engine::new(EngineConfig {
        time_scale,
        ..EngineConfig::default()
    })
}

/// Returns the parameters it was called with.
pub struct Echo;

#[async_trait::async_trait]
impl TaskHandler for Echo {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        Ok(call.parameters)
    }
}

/// Replies with scripted results in order (the last one repeats) and records when and with
/// what it was called.
pub struct Script {
    replies: Mutex<Vec<Result<Value, TaskFailure>>>,
    pub calls: Mutex<Vec<(Instant, TaskCall)>>,
}

impl Script {
    pub fn new(replies: Vec<Result<Value, TaskFailure>>) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(replies),
            calls: Mutex::new(Vec::new()),
        })
    }

    pub fn call_times(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl TaskHandler for Script {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        self.calls.lock().unwrap().push((Instant::now(), call));
        let mut replies = self.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.remove(0)
        } else {
            replies[0].clone()
        }
    }
}

/// Hands every call (with its task token) to the test and reports the handoff as done.
pub struct Callback {
    pub calls: mpsc::UnboundedSender<TaskCall>,
}

#[async_trait::async_trait]
impl TaskHandler for Callback {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        let _ = self.calls.send(call);
        Ok(Value::Null)
    }
}

pub fn callback_handler(engine: &Engine) -> mpsc::UnboundedReceiver<TaskCall> {
    let (tx, rx) = mpsc::unbounded_channel();
    engine.register(CALLBACK, Arc::new(Callback { calls: tx }));
    rx
}

pub fn fail(error: &str, cause: &str) -> Result<Value, TaskFailure> {
    Err(TaskFailure::new(error, cause))
}

/// Creates a machine from a definition value and runs it to completion.
pub async fn run(engine: &Engine, definition: &Value, input: Value) -> ExecutionDescription {
    let arn = create(engine, definition);
    let execution = engine.start_execution(&arn, None, input).await.unwrap();
    engine.wait_for_execution(&execution).await.unwrap()
}

pub fn create(engine: &Engine, definition: &Value) -> String {
    engine
        .create_state_machine("test", &definition.to_string(), &HashMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
}
