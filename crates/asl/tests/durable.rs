//! The durable engine across restarts in one process: an engine runs on its own tokio runtime,
//! the runtime is dropped mid-execution (every execution task stops where it is), and a new
//! engine opened on the same SQLite file resumes the executions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::runtime::Runtime;
use wme_asl::{
    CallbackError, Engine, EngineConfig, EventDetails, ExecutionStatus, TaskCall, TaskFailure,
    TaskHandler,
};

const COUNT: &str = "arn:aws:states:::test:count";
const HOLD: &str = "arn:aws:states:::test:hold";

/// Counts invocations per state and returns the parameters.
#[derive(Default)]
struct Counter {
    calls: Mutex<HashMap<String, usize>>,
}

impl Counter {
    fn count(&self, state: &str) -> usize {
        self.calls.lock().unwrap().get(state).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl TaskHandler for Counter {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(call.state_name)
            .or_default() += 1;
        Ok(call.parameters)
    }
}

/// A task token handed to the test, with where it came from.
#[derive(Debug)]
struct Held {
    arn: String,
    state: String,
    parameters: Value,
    token: String,
}

/// Hands each task token to the test.
struct Holder {
    tokens: Mutex<mpsc::Sender<Held>>,
    calls: Mutex<usize>,
}

impl Holder {
    fn new() -> (Arc<Self>, mpsc::Receiver<Held>) {
        let (tx, rx) = mpsc::channel();
        let holder = Holder {
            tokens: Mutex::new(tx),
            calls: Mutex::new(0),
        };
        (Arc::new(holder), rx)
    }

    fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

#[async_trait::async_trait]
impl TaskHandler for Holder {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        *self.calls.lock().unwrap() += 1;
        let held = Held {
            token: call
                .task_token
                .expect("a .waitForTaskToken call carries a token"),
            arn: call.execution_arn,
            state: call.state_name,
            parameters: call.parameters,
        };
        let _ = self.tokens.lock().unwrap().send(held);
        Ok(Value::Null)
    }
}

/// A fresh database path; the directory is left behind for inspection when a test fails.
fn temp_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wme-asl-durable-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("engine.db")
}

/// One life of the process: a runtime and an engine on the file, with the handlers registered.
struct Life {
    runtime: Runtime,
    engine: Arc<Engine>,
}

impl Life {
    fn start(path: &Path, counter: &Arc<Counter>, holder: &Arc<Holder>) -> Life {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::open(EngineConfig::default(), path).unwrap();
        engine.register(COUNT, Arc::clone(counter) as Arc<dyn TaskHandler>);
        engine.register(HOLD, Arc::clone(holder) as Arc<dyn TaskHandler>);
        Life { runtime, engine }
    }

    /// Resumes on this life's runtime, as the engine spawns the executions.
    fn resume(&self) -> usize {
        let _runtime = self.runtime.enter();
        self.engine.resume()
    }

    /// Stops every execution where it is, as a crash would (without losing committed writes).
    fn end(self) {
        drop(self.runtime);
        drop(self.engine);
    }
}

fn recv_held(rx: &mpsc::Receiver<Held>, n: usize) -> Vec<Held> {
    (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("a task token")
        })
        .collect()
}

/// Tokens by execution, for tests with one waiting task per execution.
fn recv_tokens(rx: &mpsc::Receiver<Held>, n: usize) -> HashMap<String, String> {
    recv_held(rx, n)
        .into_iter()
        .map(|h| (h.arn, h.token))
        .collect()
}

/// Waits (up to 10 s) until an event is in the history, then until it is committed.
async fn committed(engine: &Engine, arn: &str, pick: impl Fn(&EventDetails) -> bool) {
    committed_n(engine, arn, 1, pick).await;
}

/// Waits (up to 10 s) until `n` events are in the history, then until they are committed.
async fn committed_n(engine: &Engine, arn: &str, n: usize, pick: impl Fn(&EventDetails) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while event_count(engine, arn, &pick) < n {
        assert!(
            Instant::now() < deadline,
            "the event did not happen in {arn}"
        );
        tokio::task::yield_now().await;
    }
    engine.flush().await;
}

fn event_count(engine: &Engine, arn: &str, pick: impl Fn(&EventDetails) -> bool) -> usize {
    let history = engine.history(arn).unwrap();
    history.iter().filter(|e| pick(&e.details)).count()
}

const COUNT_HOLD_COUNT: &str = r#"{
  "StartAt": "First",
  "States": {
    "First": {"Type": "Task", "Resource": "arn:aws:states:::test:count", "Next": "Hold"},
    "Hold": {
      "Type": "Task",
      "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
      "Parameters": {"token.$": "$$.Task.Token"},
      "TimeoutSeconds": 3600,
      "ResultPath": "$.held",
      "Next": "Second"
    },
    "Second": {"Type": "Task", "Resource": "arn:aws:states:::test:count", "End": true}
  }
}"#;

#[test]
fn completed_tasks_are_not_invoked_again_and_tokens_survive_a_restart() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let arns: Vec<String> = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Durable", COUNT_HOLD_COUNT, &HashMap::new())
            .unwrap();
        let mut arns = Vec::new();
        for i in 0..3 {
            let name = format!("run-{i}");
            arns.push(
                engine
                    .start_execution(&sm, Some(&name), json!({"i": i}))
                    .await
                    .unwrap(),
            );
        }
        arns
    });
    let held = recv_tokens(&tokens, 3);
    life.runtime.block_on(async {
        for arn in &arns {
            committed(&engine, arn, |d| {
                matches!(d, EventDetails::TaskSubmitted { .. })
            })
            .await;
        }
    });
    drop(engine);
    life.end();
    assert_eq!(counter.count("First"), 3);

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 3);
    for arn in &arns {
        let output = json!({"ok": arn});
        engine.send_task_success(&held[arn], output).unwrap();
    }
    life.runtime.block_on(async {
        for (i, arn) in arns.iter().enumerate() {
            let done = engine.wait_for_execution(arn).await.unwrap();
            assert_eq!(done.status, ExecutionStatus::Succeeded);
            assert_eq!(done.output, Some(json!({"i": i, "held": {"ok": arn}})));
        }
    });
    assert_eq!(
        counter.count("First"),
        3,
        "First ran before the restart only"
    );
    assert_eq!(counter.count("Second"), 3);
    assert_eq!(
        holder.calls(),
        3,
        "the work of Hold was handed off once per execution"
    );
    let late = engine.send_task_success(&held[&arns[0]], json!(1));
    assert!(
        matches!(late, Err(CallbackError::TaskTimedOut(_))),
        "{late:?}"
    );
    let scheduled = event_count(&engine, &arns[0], |d| {
        matches!(d, EventDetails::TaskScheduled { .. })
    });
    assert_eq!(scheduled, 3, "one TaskScheduled per task state");
    drop(engine);
    life.end();
}

#[test]
fn a_callback_accepted_while_the_execution_is_paused_is_applied_once_after_a_restart() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let arn = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Paused", COUNT_HOLD_COUNT, &HashMap::new())
            .unwrap();
        engine
            .start_execution(&sm, Some("p"), json!({}))
            .await
            .unwrap()
    });
    let token = recv_held(&tokens, 1).remove(0).token;
    drop(engine);
    life.end();

    // Opened but not resumed: the callback is stored, not applied.
    let life = Life::start(&path, &counter, &holder);
    life.engine
        .send_task_success(&token, json!("from-the-callback"))
        .unwrap();
    life.end();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 1);
    let done = life
        .runtime
        .block_on(engine.wait_for_execution(&arn))
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"held": "from-the-callback"})));
    let again = engine.send_task_success(&token, json!("twice"));
    assert!(
        matches!(again, Err(CallbackError::TaskTimedOut(_))),
        "{again:?}"
    );
    assert_eq!(counter.count("Second"), 1);
    drop(engine);
    life.end();
}

const TWO_WAITS: &str = r#"{
  "StartAt": "Hold",
  "States": {
    "Hold": {
      "Type": "Task",
      "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
      "ResultPath": null,
      "Next": "Sleep"
    },
    "Sleep": {"Type": "Wait", "SecondsPath": "$.seconds", "End": true}
  }
}"#;

fn wait_entered_at(engine: &Engine, arn: &str) -> chrono::DateTime<chrono::Utc> {
    let history = engine.history(arn).unwrap();
    let entered = history
        .iter()
        .find(|e| matches!(&e.details, EventDetails::StateEntered { name, .. } if name == "Sleep"));
    entered.expect("the Wait state was entered").timestamp
}

#[test]
fn waits_fire_at_their_original_deadline_or_at_once_if_it_passed_while_down() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let (short, long) = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Waits", TWO_WAITS, &HashMap::new())
            .unwrap();
        let short = engine.start_execution(&sm, Some("short"), json!({"seconds": 1}));
        let short = short.await.unwrap();
        let long = engine.start_execution(&sm, Some("long"), json!({"seconds": 3}));
        (short, long.await.unwrap())
    });
    let held = recv_tokens(&tokens, 2);
    engine
        .send_task_success(&held[&short], json!(null))
        .unwrap();
    engine.send_task_success(&held[&long], json!(null)).unwrap();
    // The Wait checkpoints are queued with their StateEntered events; flushing commits them.
    life.runtime.block_on(async {
        for arn in [&short, &long] {
            let sleeping = |d: &EventDetails| {
                matches!(d, EventDetails::StateEntered { name, .. } if name == "Sleep")
            };
            committed(&engine, arn, sleeping).await;
        }
    });
    drop(engine);
    life.end();

    // The process stays down past the short Wait's deadline.
    std::thread::sleep(Duration::from_millis(1300));

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let resumed_at = chrono::Utc::now();
    assert_eq!(life.resume(), 2);
    life.runtime.block_on(async {
        let done = engine.wait_for_execution(&short).await.unwrap();
        assert_eq!(done.status, ExecutionStatus::Succeeded);
        let late_by = done.stop_date.unwrap() - resumed_at;
        assert!(
            late_by.num_milliseconds() < 300,
            "fired {late_by} after resume"
        );

        let done = engine.wait_for_execution(&long).await.unwrap();
        let waited = done.stop_date.unwrap() - wait_entered_at(&engine, &long);
        let ms = waited.num_milliseconds();
        assert!((3000..3400).contains(&ms), "waited {ms} ms instead of 3000");
    });
    drop(engine);
    life.end();
}

const TIMED_HOLD: &str = r#"{
  "StartAt": "Hold",
  "States": {
    "Hold": {
      "Type": "Task",
      "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
      "TimeoutSeconds": 1,
      "Catch": [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "TimedOut"}],
      "End": true
    },
    "TimedOut": {"Type": "Pass", "End": true}
  }
}"#;

#[test]
fn a_task_timeout_that_passed_while_down_fires_at_once_with_the_same_token() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let arn = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Timed", TIMED_HOLD, &HashMap::new())
            .unwrap();
        let arn = engine
            .start_execution(&sm, Some("t"), json!({}))
            .await
            .unwrap();
        committed(&engine, &arn, |d| {
            matches!(d, EventDetails::TaskSubmitted { .. })
        })
        .await;
        arn
    });
    let token = recv_held(&tokens, 1).remove(0).token;
    drop(engine);
    life.end();

    // Down for longer than the task's TimeoutSeconds.
    std::thread::sleep(Duration::from_millis(1300));

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let resumed_at = chrono::Utc::now();
    assert_eq!(life.resume(), 1);
    let done = life
        .runtime
        .block_on(engine.wait_for_execution(&arn))
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(done.output.unwrap()["error"]["Error"], "States.Timeout");
    // At once: a timeout counted afresh from the restart would take the whole second again.
    let late_by = done.stop_date.unwrap() - resumed_at;
    assert!(
        late_by.num_milliseconds() < 900,
        "timed out {late_by} after resume"
    );
    assert_eq!(holder.calls(), 1, "the token was not handed out again");
    let late = engine.send_task_success(&token, json!(1));
    assert!(
        matches!(late, Err(CallbackError::TaskTimedOut(_))),
        "{late:?}"
    );
    drop(engine);
    life.end();
}

const MAP_AND_PARALLEL: &str = r#"{
  "StartAt": "Each",
  "States": {
    "Each": {
      "Type": "Map",
      "ItemsPath": "$.items",
      "ItemProcessor": {
        "StartAt": "Item",
        "States": {
          "Item": {"Type": "Task", "Resource": "arn:aws:states:::test:count", "Next": "HoldItem"},
          "HoldItem": {
            "Type": "Task",
            "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
            "Parameters": {"n.$": "$.n"},
            "ResultPath": "$.held",
            "End": true
          }
        }
      },
      "Next": "Both"
    },
    "Both": {
      "Type": "Parallel",
      "Branches": [
        {"StartAt": "Left", "States": {
          "Left": {"Type": "Task", "Resource": "arn:aws:states:::test:count", "Next": "HoldLeft"},
          "HoldLeft": {
            "Type": "Task",
            "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
            "End": true
          }}},
        {"StartAt": "Right", "States": {
          "Right": {"Type": "Task", "Resource": "arn:aws:states:::test:count", "Next": "HoldRight"},
          "HoldRight": {
            "Type": "Task",
            "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
            "End": true
          }}}
      ],
      "End": true
    }
  }
}"#;

#[test]
fn map_iterations_and_parallel_branches_resume_where_they_were() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let arn = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Nested", MAP_AND_PARALLEL, &HashMap::new())
            .unwrap();
        let input = json!({"items": [{"n": 0}, {"n": 1}, {"n": 2}]});
        engine
            .start_execution(&sm, Some("nested"), input)
            .await
            .unwrap()
    });
    let mut items: HashMap<u64, String> = recv_held(&tokens, 3)
        .into_iter()
        .map(|h| (h.parameters["n"].as_u64().unwrap(), h.token))
        .collect();
    let submitted = |d: &EventDetails| matches!(d, EventDetails::TaskSubmitted { .. });
    life.runtime
        .block_on(committed_n(&engine, &arn, 3, submitted));
    // Two iterations are completed before the restart, one is still waiting.
    engine.send_task_success(&items[&0], json!("a")).unwrap();
    engine.send_task_success(&items[&1], json!("b")).unwrap();
    drop(engine);
    life.end();
    assert_eq!(counter.count("Item"), 3);

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 1);
    let last = items.remove(&2).unwrap();
    engine.send_task_success(&last, json!("c")).unwrap();
    let branches: HashMap<String, String> = recv_held(&tokens, 2)
        .into_iter()
        .map(|h| (h.state, h.token))
        .collect();
    life.runtime
        .block_on(committed_n(&engine, &arn, 5, submitted));
    drop(engine);
    life.end();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 1);
    engine
        .send_task_success(&branches["HoldLeft"], json!("l"))
        .unwrap();
    engine
        .send_task_success(&branches["HoldRight"], json!("r"))
        .unwrap();
    let done = life
        .runtime
        .block_on(engine.wait_for_execution(&arn))
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let held: Vec<Value> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(n, h)| json!({"n": n, "held": h}))
        .collect();
    assert_eq!(done.output, Some(json!(["l", "r"])));
    let history = engine.history(&arn).unwrap();
    let map_output = history.iter().find_map(|e| match &e.details {
        EventDetails::StateExited { name, output, .. } if name == "Each" => Some(output.clone()),
        _ => None,
    });
    assert_eq!(map_output.map(|p| p.to_value()), Some(Value::Array(held)));
    assert_eq!(
        counter.count("Item"),
        3,
        "no Map iteration ran its task twice"
    );
    assert_eq!(counter.count("Left"), 1);
    assert_eq!(counter.count("Right"), 1);
    assert_eq!(holder.calls(), 5, "every hand-off happened once");
    drop(engine);
    life.end();
}

const VARIABLES: &str = r#"{
  "StartAt": "Remember",
  "States": {
    "Remember": {
      "Type": "Pass",
      "Assign": {"greeting": "hello", "items": [{"n": 0}, {"n": 1}, {"n": 2}]},
      "Next": "Ask"
    },
    "Ask": {
      "Type": "Task",
      "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
      "Parameters": {"greeting.$": "$greeting"},
      "Assign": {"answer.$": "$"},
      "ResultPath": null,
      "Next": "Each"
    },
    "Each": {
      "Type": "Map",
      "ItemsPath": "$items",
      "ItemProcessor": {
        "StartAt": "Mine",
        "States": {
          "Mine": {"Type": "Pass", "Assign": {"mine.$": "$.n"}, "Next": "Item"},
          "Item": {
            "Type": "Task",
            "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
            "Parameters": {"n.$": "$mine"},
            "Assign": {"reply.$": "$"},
            "Next": "Report"
          },
          "Report": {
            "Type": "Pass",
            "Parameters": {
              "mine.$": "$mine", "reply.$": "$reply", "greeting.$": "$greeting", "answer.$": "$answer"
            },
            "End": true
          }
        }
      },
      "Assign": {"replies.$": "$[*].reply"},
      "ResultPath": "$.each",
      "Next": "Both"
    },
    "Both": {
      "Type": "Parallel",
      "Branches": [{"StartAt": "Side", "States": {
        "Side": {"Type": "Pass", "Assign": {"side": "left"}, "Next": "HoldSide"},
        "HoldSide": {
          "Type": "Task",
          "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
          "Parameters": {"side.$": "$side"},
          "ResultPath": null,
          "Next": "SideReport"
        },
        "SideReport": {
          "Type": "Pass",
          "Parameters": {"side.$": "$side", "replies.$": "$replies"},
          "End": true
        }
      }}],
      "ResultPath": "$.both",
      "Next": "Final"
    },
    "Final": {
      "Type": "Pass",
      "Parameters": {
        "greeting.$": "$greeting", "answer.$": "$answer", "replies.$": "$replies",
        "each.$": "$.each", "both.$": "$.both"
      },
      "End": true
    }
  }
}"#;

#[test]
fn variables_of_every_block_survive_restarts() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();
    let submitted = |d: &EventDetails| matches!(d, EventDetails::TaskSubmitted { .. });

    // Life 1: the top level has assigned `greeting` and waits in "Ask".
    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let arn = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Variables", VARIABLES, &HashMap::new())
            .unwrap();
        engine
            .start_execution(&sm, Some("vars"), json!({}))
            .await
            .unwrap()
    });
    let ask = recv_held(&tokens, 1).remove(0);
    assert_eq!(ask.parameters, json!({"greeting": "hello"}));
    life.runtime
        .block_on(committed_n(&engine, &arn, 1, submitted));
    drop(engine);
    life.end();

    // Life 2: "Ask" completes from the restored scope; each iteration assigns `mine` and waits.
    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 1);
    engine
        .send_task_success(&ask.token, json!("forty-two"))
        .unwrap();
    let items: HashMap<u64, String> = recv_held(&tokens, 3)
        .into_iter()
        .map(|h| (h.parameters["n"].as_u64().unwrap(), h.token))
        .collect();
    life.runtime
        .block_on(committed_n(&engine, &arn, 4, submitted));
    engine.send_task_success(&items[&0], json!("r0")).unwrap();
    engine.send_task_success(&items[&1], json!("r1")).unwrap();
    drop(engine);
    life.end();

    // Life 3: the last iteration resumes with its own `mine`; the branch assigns `side`.
    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 1);
    engine.send_task_success(&items[&2], json!("r2")).unwrap();
    let side = recv_held(&tokens, 1).remove(0);
    assert_eq!(side.parameters, json!({"side": "left"}));
    life.runtime
        .block_on(committed_n(&engine, &arn, 5, submitted));
    drop(engine);
    life.end();

    // Life 4: the branch finishes reading its own and the outer scope.
    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 1);
    engine.send_task_success(&side.token, json!(null)).unwrap();
    let done = life
        .runtime
        .block_on(engine.wait_for_execution(&arn))
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    let replies = json!(["r0", "r1", "r2"]);
    let each: Vec<Value> = (0..3)
        .map(|n| json!({"mine": n, "reply": format!("r{n}"), "greeting": "hello", "answer": "forty-two"}))
        .collect();
    assert_eq!(
        done.output,
        Some(json!({
            "greeting": "hello",
            "answer": "forty-two",
            "replies": replies,
            "each": each,
            "both": [{"side": "left", "replies": replies}]
        }))
    );
    assert_eq!(holder.calls(), 5, "no hand-off was repeated");
    drop(engine);
    life.end();
}

#[test]
fn finished_executions_and_their_history_are_read_back() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, _tokens) = Holder::new();
    let definition = r#"{"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:states:::test:count", "End": true}}}"#;

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let (sm, arn, before) = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Done", definition, &HashMap::new())
            .unwrap();
        let arn = engine
            .start_execution(&sm, Some("d"), json!({"x": 1}))
            .await
            .unwrap();
        let done = engine.wait_for_execution(&arn).await.unwrap();
        (sm, arn, done)
    });
    let history = engine.history(&arn).unwrap();
    drop(engine);
    life.end();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    assert_eq!(life.resume(), 0);
    assert_eq!(engine.describe_execution(&arn), Some(before));
    assert_eq!(engine.history(&arn), Some(history));
    assert_eq!(engine.list_executions(&sm).len(), 1);
    let second = life
        .runtime
        .block_on(engine.start_execution(&sm, Some("e"), json!({})))
        .unwrap();
    let done = life
        .runtime
        .block_on(engine.wait_for_execution(&second))
        .unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded);
    assert_eq!(counter.count("A"), 2);
    drop(engine);
    life.end();
}

#[test]
fn an_execution_stopped_before_resume_stays_stopped() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let arn = life.runtime.block_on(async {
        let sm = engine
            .create_state_machine("Stopped", COUNT_HOLD_COUNT, &HashMap::new())
            .unwrap();
        engine
            .start_execution(&sm, Some("s"), json!({}))
            .await
            .unwrap()
    });
    let token = recv_held(&tokens, 1).remove(0).token;
    drop(engine);
    life.end();

    let life = Life::start(&path, &counter, &holder);
    life.engine
        .stop_execution(&arn, "Operator", "stopped while down")
        .unwrap();
    assert_eq!(life.resume(), 0);
    let late = life.engine.send_task_success(&token, json!(1));
    assert!(
        matches!(late, Err(CallbackError::TaskTimedOut(_))),
        "{late:?}"
    );
    life.end();

    let life = Life::start(&path, &counter, &holder);
    assert_eq!(life.resume(), 0);
    let stopped = life.engine.describe_execution(&arn).unwrap();
    assert_eq!(stopped.status, ExecutionStatus::Aborted);
    assert_eq!(stopped.error.as_deref(), Some("Operator"));
    assert_eq!(counter.count("Second"), 0);
    life.end();
}

const CHILD: &str = r#"{
  "StartAt": "Hold",
  "States": {
    "Hold": {
      "Type": "Task",
      "Resource": "arn:aws:states:::test:hold.waitForTaskToken",
      "Parameters": {"n.$": "$.n"},
      "End": true
    }
  }
}"#;

/// A `.sync:2` parent of [`CHILD`], then a counted task.
fn sync_parent(timeout: &str) -> String {
    format!(
        r#"{{
  "StartAt": "Nest",
  "States": {{
    "Nest": {{
      "Type": "Task",
      "Resource": "arn:aws:states:::states:startExecution.sync:2",
      "Parameters": {{
        "StateMachineArn": "arn:aws:states:local:000000000000:stateMachine:Child",
        "Input": {{"n.$": "$.n"}}
      }},
      {timeout}
      "ResultSelector": {{"child.$": "$.Output"}},
      "Catch": [{{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "After"}}],
      "Next": "After"
    }},
    "After": {{"Type": "Task", "Resource": "arn:aws:states:::test:count", "End": true}}
  }}
}}"#
    )
}

/// Starts a `.sync` parent and returns once its child holds a token and both are committed.
fn start_nested(life: &Life, tokens: &mpsc::Receiver<Held>, parent: &str) -> (String, Held) {
    let engine = Arc::clone(&life.engine);
    let arn = life.runtime.block_on(async {
        engine
            .create_state_machine("Child", CHILD, &HashMap::new())
            .unwrap();
        let sm = engine
            .create_state_machine("Parent", parent, &HashMap::new())
            .unwrap();
        engine
            .start_execution(&sm, Some("p"), json!({"n": 7}))
            .await
            .unwrap()
    });
    let held = recv_held(tokens, 1).remove(0);
    let submitted = |d: &EventDetails| matches!(d, EventDetails::TaskSubmitted { .. });
    life.runtime.block_on(async {
        committed(&engine, &held.arn, submitted).await;
        committed(&engine, &arn, submitted).await;
    });
    (arn, held)
}

const CHILD_MACHINE: &str = "arn:aws:states:local:000000000000:stateMachine:Child";

#[test]
fn a_parent_waiting_on_a_sync_child_waits_for_the_same_child_after_a_restart() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let (parent, held) = start_nested(&life, &tokens, &sync_parent(""));
    life.end();

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let child = engine.describe_execution(&held.arn).unwrap();
    assert_eq!(
        child.status,
        ExecutionStatus::Running,
        "a restart stops no child"
    );
    assert_eq!(life.resume(), 2, "the parent and its child resume");
    engine
        .send_task_success(&held.token, json!({"ok": 7}))
        .unwrap();
    let done = life
        .runtime
        .block_on(engine.wait_for_execution(&parent))
        .unwrap();

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.output, Some(json!({"child": {"ok": 7}})));
    let children = engine.list_executions(CHILD_MACHINE);
    assert_eq!(children.len(), 1, "no second child: {children:?}");
    assert_eq!(children[0].execution_arn, held.arn);
    assert_eq!(children[0].status, ExecutionStatus::Succeeded);
    assert_eq!(holder.calls(), 1, "the child handed its token out once");
    assert_eq!(counter.count("After"), 1);
    let nested = |d: &EventDetails| match d {
        EventDetails::TaskScheduled { resource, .. }
        | EventDetails::TaskSubmitted { resource, .. } => {
            resource.contains(":states:startExecution")
        }
        _ => false,
    };
    assert_eq!(
        event_count(&engine, &parent, nested),
        2,
        "one TaskScheduled, one TaskSubmitted"
    );
    drop(engine);
    life.end();
}

#[test]
fn a_sync_task_timeout_counts_from_before_a_restart_and_stops_the_child() {
    let path = temp_db();
    let counter = Arc::new(Counter::default());
    let (holder, tokens) = Holder::new();

    let life = Life::start(&path, &counter, &holder);
    let (parent, held) = start_nested(&life, &tokens, &sync_parent(r#""TimeoutSeconds": 1,"#));
    life.end();

    // Down for longer than the task's TimeoutSeconds.
    std::thread::sleep(Duration::from_millis(1300));

    let life = Life::start(&path, &counter, &holder);
    let engine = Arc::clone(&life.engine);
    let resumed_at = chrono::Utc::now();
    assert_eq!(life.resume(), 2);
    let (done, child) = life.runtime.block_on(async {
        let done = engine.wait_for_execution(&parent).await.unwrap();
        (done, engine.wait_for_execution(&held.arn).await.unwrap())
    });

    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    assert_eq!(done.output.unwrap()["error"]["Error"], "States.Timeout");
    // At once: a timeout counted afresh from the restart would take the whole second again.
    let late_by = done.stop_date.unwrap() - resumed_at;
    assert!(
        late_by.num_milliseconds() < 900,
        "timed out {late_by} after resume"
    );
    assert_eq!(child.status, ExecutionStatus::Aborted);
    let cause = format!(
        "The Task state in AWS Step Functions execution [{parent}] which was managing this \
         resource was aborted"
    );
    assert_eq!(child.cause, Some(cause));
    let late = engine.send_task_success(&held.token, json!(1));
    assert!(
        matches!(late, Err(CallbackError::TaskTimedOut(_))),
        "{late:?}"
    );
    drop(engine);
    life.end();
}

#[test]
fn a_file_that_is_not_a_store_is_refused_naming_it() {
    let path = temp_db();
    std::fs::write(
        &path,
        "not a database, only text long enough to fill a header",
    )
    .unwrap();
    let err = Engine::open(EngineConfig::default(), &path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
}
