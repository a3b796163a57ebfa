//! Engine throughput and memory benchmark (a plain `harness = false` binary that prints its
//! figures): state transitions per second on one core, many concurrent executions, and the
//! memory each execution parked on a `.waitForTaskToken` task costs.
//!
//! Run with `cargo bench -p wme-asl --bench transitions`. Everything runs on a tokio
//! current-thread runtime, so the figures are for one core.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Notify;
use wme_asl::{Engine, EngineConfig, ExecutionStatus, TaskCall, TaskFailure, TaskHandler};

// dhat's allocator counts the heap in use while a profiler runs (the memory phase only), so
// parked executions are measured as live heap at that moment rather than as resident memory,
// which keeps whatever the start-up burst once used.
#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

/// Bytes and blocks of heap in use.
fn live_heap() -> (isize, isize) {
    let stats = dhat::HeapStats::get();
    (stats.curr_bytes as isize, stats.curr_blocks as isize)
}

/// Pass → Choice, `limit` times round, counting with States.MathAdd.
fn loop_machine() -> Value {
    json!({"StartAt": "Init", "States": {
        "Init": {"Type": "Pass", "Parameters": {"count": 0, "limit.$": "$.limit"}, "Next": "Count"},
        "Count": {"Type": "Pass",
                  "Parameters": {"count.$": "States.MathAdd($.count, 1)", "limit.$": "$.limit"},
                  "Next": "Check"},
        "Check": {"Type": "Choice",
                  "Choices": [{"Variable": "$.count", "NumericLessThanPath": "$.limit", "Next": "Count"}],
                  "Default": "Done"},
        "Done": {"Type": "Succeed"}
    }})
}

/// A short chain: Pass → Choice → Pass → Succeed.
fn short_machine() -> Value {
    json!({"StartAt": "Add", "States": {
        "Add": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Check"},
        "Check": {"Type": "Choice",
                  "Choices": [{"Variable": "$.n", "NumericGreaterThan": 0, "Next": "Positive"}],
                  "Default": "Done"},
        "Positive": {"Type": "Pass", "Result": "positive", "ResultPath": "$.sign", "Next": "Done"},
        "Done": {"Type": "Succeed"}
    }})
}

const PARK: &str = "arn:aws:states:::bench:park";

/// Takes the task token and never answers, so the task waits.
struct Park {
    parked: AtomicUsize,
    target: usize,
    all_parked: Notify,
}

#[async_trait::async_trait]
impl TaskHandler for Park {
    async fn invoke(&self, _call: TaskCall) -> Result<Value, TaskFailure> {
        if self.parked.fetch_add(1, Ordering::SeqCst) + 1 == self.target {
            self.all_parked.notify_one();
        }
        Ok(Value::Null)
    }
}

fn park_machine() -> Value {
    json!({"StartAt": "Wait", "States": {"Wait": {
        "Type": "Task", "Resource": format!("{PARK}.waitForTaskToken"),
        "Parameters": {"device.$": "$.device", "token.$": "$$.Task.Token"}, "End": true
    }}})
}

fn create(engine: &Engine, name: &str, definition: &Value) -> String {
    engine
        .create_state_machine(name, &definition.to_string(), &HashMap::new())
        .expect("benchmark machine is valid")
}

/// States entered by one execution, read from its history.
fn transitions_of(engine: &Engine, execution: &str) -> usize {
    engine
        .history(execution)
        .expect("execution exists")
        .iter()
        .filter(|e| e.event_type().ends_with("StateEntered"))
        .count()
}

async fn run_to_end(engine: &Engine, machine: &str, input: Value) -> String {
    let execution = engine.start_execution(machine, None, input).await.unwrap();
    let done = engine.wait_for_execution(&execution).await.unwrap();
    assert_eq!(done.status, ExecutionStatus::Succeeded, "{done:?}");
    execution
}

async fn sequential_loop(limit: u64, runs: usize) {
    let engine = Engine::new(EngineConfig::default());
    let machine = create(&engine, "Loop", &loop_machine());
    let warm = run_to_end(&engine, &machine, json!({"limit": limit})).await;
    let per_run = transitions_of(&engine, &warm);

    let (wall, cpu) = timed(async {
        for _ in 0..runs {
            run_to_end(&engine, &machine, json!({"limit": limit})).await;
        }
    })
    .await;
    let total = per_run * runs;
    println!(
        "loop Pass→Choice x{limit}: {runs} executions x {per_run} transitions = {total}: wall {:.3} s → {:.0} transitions/s; CPU {:.3} s → {:.0} transitions per CPU-second",
        wall.as_secs_f64(),
        rate(total, wall),
        cpu.as_secs_f64(),
        rate(total, cpu)
    );
}

async fn concurrent_short(executions: usize, rounds: usize) {
    let mut best = (Duration::MAX, Duration::MAX);
    let mut per_execution = 0;
    for _ in 0..rounds {
        let engine = Engine::new(EngineConfig::default());
        let machine = create(&engine, "Short", &short_machine());
        let mut arns = Vec::with_capacity(executions);
        let took = timed(async {
            for i in 0..executions {
                let arn = engine
                    .start_execution(&machine, None, json!({"n": i}))
                    .await
                    .unwrap();
                arns.push(arn);
            }
            for arn in &arns {
                let done = engine.wait_for_execution(arn).await.unwrap();
                assert_eq!(done.status, ExecutionStatus::Succeeded);
            }
        })
        .await;
        best = (best.0.min(took.0), best.1.min(took.1));
        per_execution = transitions_of(&engine, &arns[0]);
    }
    let total = per_execution * executions;
    let (wall, cpu) = best;
    println!(
        "{executions} concurrent executions x {per_execution} transitions = {total}, best of {rounds} rounds: wall {:.3} s → {:.0} transitions/s, {:.0} executions/s; CPU {:.3} s → {:.0} transitions per CPU-second",
        wall.as_secs_f64(),
        rate(total, wall),
        rate(executions, wall),
        cpu.as_secs_f64(),
        rate(total, cpu)
    );
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (nanoseconds). The machine
/// may be shared, so rates are given per wall second and per CPU second of the benchmark thread;
/// on a current-thread runtime all engine work runs on this thread.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("linux /proc");
    let nanos = stat.split_whitespace().next().and_then(|n| n.parse().ok());
    Duration::from_nanos(nanos.expect("schedstat starts with run time in ns"))
}

/// Measures wall and CPU time of `f`.
async fn timed<F: std::future::Future<Output = ()>>(f: F) -> (Duration, Duration) {
    let (wall, cpu) = (Instant::now(), thread_cpu());
    f.await;
    (wall.elapsed(), thread_cpu() - cpu)
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// Starts `count` executions that park on `.waitForTaskToken`, `wave` at a time (each wave
/// parked before the next starts), and returns the engine with them all waiting.
async fn park_all(count: usize, wave: usize) -> (Arc<Engine>, Arc<Park>) {
    let engine = Engine::new(EngineConfig::default());
    let park = Arc::new(Park {
        parked: AtomicUsize::new(0),
        target: count,
        all_parked: Notify::new(),
    });
    engine.register(PARK, park.clone());
    let machine = create(&engine, "Park", &park_machine());
    for i in 0..count {
        engine
            .start_execution(&machine, None, park_input(i))
            .await
            .unwrap();
        if (i + 1) % wave == 0 || i + 1 == count {
            while park.parked.load(Ordering::SeqCst) < i + 1 {
                tokio::task::yield_now().await;
            }
        }
    }
    // Let every execution take its handler's answer, so each is parked on its callback.
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    (engine, park)
}

fn park_input(i: usize) -> Value {
    json!({"device": format!("device-{i:05}")})
}

/// Live heap per waiting execution, counted by dhat's allocator: what the engine holds for it,
/// without the allocator's own per-block overhead.
async fn parked_heap(count: usize) {
    let _profiler = dhat::Profiler::builder().testing().build();
    let (bytes_before, blocks_before) = live_heap();
    let started = Instant::now();
    let (engine, _park) = park_all(count, count).await;
    let elapsed = started.elapsed();
    let (bytes_after, blocks_after) = live_heap();
    let heap = (bytes_after - bytes_before) as f64 / count as f64;
    let blocks = (blocks_after - blocks_before) as f64 / count as f64;
    println!(
        "{count} executions parked on .waitForTaskToken in {:.3} s: live heap {heap:.0} bytes ({:.2} KiB) in {blocks:.1} blocks per waiting execution (its input is {} bytes of JSON; its parameters with the token {} bytes)",
        elapsed.as_secs_f64(),
        heap / 1024.0,
        park_input(0).to_string().len(),
        json!({"device": "device-00000", "token": "0".repeat(64)})
            .to_string()
            .len(),
    );
    drop(engine);
}

/// Resident memory per waiting execution, started in waves of 1,000 so that the start-up burst
/// does not count: everything the process holds for them, allocator overhead included.
async fn parked_rss(count: usize) {
    let before = vm_rss_kib();
    let (_engine, _park) = park_all(count, 1_000).await;
    let after = vm_rss_kib();
    let per = (after.saturating_sub(before) * 1024) as f64 / count as f64;
    println!(
        "{count} executions parked on .waitForTaskToken, started 1,000 at a time: VmRSS {before} KiB → {after} KiB, {per:.0} bytes ({:.2} KiB) per waiting execution",
        per / 1024.0
    );
}

/// Phases to run: the non-flag arguments (`memory`, `loop`, `concurrent`), or all of them.
/// `cargo bench` passes `--bench`, which is ignored.
fn phases() -> Vec<String> {
    let chosen: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if chosen.is_empty() {
        vec![
            "memory".into(),
            "loop".into(),
            "concurrent".into(),
            "rss".into(),
        ]
    } else {
        chosen
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        // Memory first, while the allocator holds the least freed memory from other phases.
        for phase in phases() {
            match phase.as_str() {
                "memory" => parked_heap(10_000).await,
                "rss" => parked_rss(10_000).await,
                "loop" => sequential_loop(1_000, 50).await,
                "concurrent" => concurrent_short(1_000, 5).await,
                other => eprintln!("unknown phase {other:?}: use memory, rss, loop or concurrent"),
            }
        }
    });
}
