//! Measures state transitions per second of a durable engine (and, for comparison, of the
//! memory-only engine) with many executions running at once.
//!
//! ```sh
//! cargo run --release -p wme-asl --example durable_throughput -- [executions] [states] [db]
//! ```
//!
//! Each execution walks a chain of `states` states (Task and Pass alternating, every Task
//! calling an in-process echo handler); a transition is one state entered. Every transition is
//! committed to SQLite before the next state runs (group commit across executions).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use wme_asl::{Engine, EngineConfig, TaskCall, TaskFailure, TaskHandler};

const ECHO: &str = "arn:aws:states:::bench:echo";

struct Echo;

#[async_trait::async_trait]
impl TaskHandler for Echo {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        Ok(call.parameters)
    }
}

fn chain(states: usize) -> String {
    let mut map = serde_json::Map::new();
    for i in 0..states {
        let mut state = if i % 2 == 0 {
            json!({"Type": "Task", "Resource": ECHO, "ResultPath": "$.last"})
        } else {
            json!({"Type": "Pass", "Result": i, "ResultPath": "$.pass"})
        };
        if i + 1 == states {
            state["End"] = json!(true);
        } else {
            state["Next"] = json!(format!("S{}", i + 1));
        }
        map.insert(format!("S{i}"), state);
    }
    json!({"StartAt": "S0", "States": map}).to_string()
}

async fn run(engine: Arc<Engine>, executions: usize, states: usize) -> f64 {
    engine.register(ECHO, Arc::new(Echo));
    let sm = engine
        .create_state_machine("Bench", &chain(states), &HashMap::new())
        .expect("the benchmark definition is valid");
    let started = Instant::now();
    // Started concurrently, as independent clients would: each start waits for its commit.
    let starts = (0..executions).map(|i| {
        let input = json!({"i": i, "payload": "x".repeat(64)});
        engine.start_execution(&sm, None, input)
    });
    let arns = futures::future::join_all(starts).await;
    for arn in arns {
        engine.wait_for_execution(&arn.expect("started")).await;
    }
    (executions * states) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let executions = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let states = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let temp = std::env::temp_dir().join(format!("wme-asl-bench-{}", uuid::Uuid::new_v4()));
    let db = match args.get(3) {
        Some(db) => db.clone(),
        None => {
            std::fs::create_dir_all(&temp).expect("temp dir");
            temp.join("bench.db").display().to_string()
        }
    };
    let memory = run(Engine::new(EngineConfig::default()), executions, states).await;
    eprintln!("memory:  {memory:>9.0} transitions/s ({executions} executions x {states} states)");
    let engine = Engine::open(EngineConfig::default(), &db).expect("store opens");
    let durable = run(engine, executions, states).await;
    eprintln!("durable: {durable:>9.0} transitions/s (SQLite WAL, group commit) in {db}");
    let _ = std::fs::remove_dir_all(&temp);
}
