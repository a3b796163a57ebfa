//! `wme executions`: read the executions a durable engine stored (`wme states run --db`) back
//! from its SQLite file: list them, describe one, print its history.
//!
//! The file is opened without resuming anything: an execution that was running when its
//! process stopped is shown as `RUNNING` and stays where it was.

use std::cmp::Reverse;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};
use wme_asl::{Engine, EngineConfig, EventDetails, ExecutionDescription, HistoryEvent};

/// Options of `wme executions`.
#[derive(Debug, Args)]
pub struct ExecutionsArgs {
    #[command(subcommand)]
    command: ExecutionsCommand,
}

#[derive(Debug, Subcommand)]
enum ExecutionsCommand {
    /// Every execution in the store, newest first: name, status, state machine, start and stop
    /// times.
    List(ListArgs),
    /// One execution's description, with its input, output, error and cause.
    Describe(OneArgs),
    /// One execution's history events, in order.
    History(OneArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    /// The SQLite file written by `wme states run --db`.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// Print a JSON array of execution descriptions instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct OneArgs {
    /// The SQLite file written by `wme states run --db`.
    #[arg(long, value_name = "PATH")]
    db: PathBuf,
    /// The execution's ARN or name.
    execution: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ExecutionsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        ExecutionsCommand::List(args) => list(&args),
        ExecutionsCommand::Describe(args) => describe(&args),
        ExecutionsCommand::History(args) => history(&args),
    }
}

fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let engine = open_existing(&args.db)?;
    let executions = all_executions(&engine);
    if args.json {
        println!("{}", serde_json::to_string(&executions)?);
    } else {
        for execution in &executions {
            println!("{}", list_line(execution));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(args: &OneArgs) -> anyhow::Result<ExitCode> {
    let engine = open_existing(&args.db)?;
    let Some(execution) = find(&engine, &args.db, &args.execution) else {
        return Ok(ExitCode::from(1));
    };
    if args.json {
        println!("{}", serde_json::to_string(&execution)?);
    } else {
        print!("{}", describe_text(&execution));
    }
    Ok(ExitCode::SUCCESS)
}

fn history(args: &OneArgs) -> anyhow::Result<ExitCode> {
    let engine = open_existing(&args.db)?;
    let Some(execution) = find(&engine, &args.db, &args.execution) else {
        return Ok(ExitCode::from(1));
    };
    let events = engine
        .history(&execution.execution_arn)
        .context("the execution's history disappeared from the engine")?;
    if args.json {
        let events: Vec<Value> = events.iter().map(aws_event).collect();
        println!("{}", Value::Array(events));
    } else {
        for event in &events {
            println!(
                "{} {} {}",
                event.id,
                time(event.timestamp),
                event.event_type()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the store read-only: nothing is created, written or resumed, also while a run uses it.
fn open_existing(path: &Path) -> anyhow::Result<Arc<Engine>> {
    if !path.exists() {
        bail!(
            "execution store {} does not exist (`wme states run --db PATH` writes one)",
            path.display()
        );
    }
    if !path.is_file() {
        bail!("execution store {} is not a file", path.display());
    }
    // The store's own error names the file and what is wrong with it.
    Ok(Engine::open_read_only(EngineConfig::default(), path)?)
}

/// Every execution of every state machine in the store, newest first.
fn all_executions(engine: &Engine) -> Vec<ExecutionDescription> {
    let mut executions: Vec<_> = engine
        .list_state_machines()
        .iter()
        .flat_map(|arn| engine.list_executions(arn))
        .collect();
    executions.sort_by_key(|e| Reverse(e.start_date));
    executions
}

/// The execution with this ARN, or the only one with this name; otherwise says why on stderr.
fn find(engine: &Engine, db: &Path, key: &str) -> Option<ExecutionDescription> {
    if let Some(execution) = engine.describe_execution(key) {
        return Some(execution);
    }
    let mut named: Vec<_> = all_executions(engine)
        .into_iter()
        .filter(|e| e.name == key)
        .collect();
    match named.len() {
        1 => named.pop(),
        0 => {
            eprintln!("error: no execution `{key}` in {}", db.display());
            None
        }
        _ => {
            let arns: Vec<_> = named.iter().map(|e| e.execution_arn.as_str()).collect();
            eprintln!(
                "error: {} executions are named `{key}` in {}; give one of their ARNs: {}",
                named.len(),
                db.display(),
                arns.join(", ")
            );
            None
        }
    }
}

/// `name STATUS machine start stop`, `-` for an execution still running.
fn list_line(execution: &ExecutionDescription) -> String {
    let stop = execution.stop_date.map_or_else(|| "-".to_string(), time);
    format!(
        "{} {} {} {} {stop}",
        execution.name,
        execution.status,
        machine_name(&execution.state_machine_arn),
        time(execution.start_date),
    )
}

fn describe_text(execution: &ExecutionDescription) -> String {
    let mut text = format!(
        "execution: {}\nname: {}\nstatus: {}\nstate machine: {}\nstart: {}\n",
        execution.execution_arn,
        execution.name,
        execution.status,
        execution.state_machine_arn,
        time(execution.start_date),
    );
    if let Some(stop) = execution.stop_date {
        text.push_str(&format!("stop: {}\n", time(stop)));
    }
    text.push_str(&format!("input: {}\n", execution.input));
    if let Some(output) = &execution.output {
        text.push_str(&format!("output: {output}\n"));
    }
    if let Some(error) = &execution.error {
        text.push_str(&format!("error: {error}\n"));
    }
    if let Some(cause) = &execution.cause {
        text.push_str(&format!("cause: {cause}\n"));
    }
    text
}

/// The name at the end of a state machine ARN (the whole text if it is not one).
fn machine_name(arn: &str) -> &str {
    arn.rsplit_once(":stateMachine:")
        .map_or(arn, |(_, name)| name)
}

/// A timestamp as the engine serializes it: RFC 3339 in UTC, e.g. `2026-01-02T03:04:05.678Z`
/// (taking any serializable value spares `wme` a direct dependency on the time library).
fn time(timestamp: impl serde::Serialize) -> String {
    match serde_json::to_value(timestamp) {
        Ok(Value::String(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_string(),
    }
}

/// An event as `GetExecutionHistory` lists it: `id`, `previousEventId`, `timestamp`, `type` and
/// a `<type>EventDetails` object whose `input`, `output` and `parameters` are JSON text.
fn aws_event(event: &HistoryEvent) -> Value {
    let event_type = event.event_type();
    let mut aws = json!({
        "timestamp": time(event.timestamp),
        "type": event_type,
        "id": event.id,
        "previousEventId": event.previous_event_id,
    });
    let details = aws_details(&event.details);
    if !details.is_empty() {
        aws[details_key(&event.details, &event_type)] = Value::Object(details);
    }
    aws
}

/// `stateEnteredEventDetails` for every `*StateEntered` (likewise exited), otherwise the type
/// with a lowercase initial.
fn details_key(details: &EventDetails, event_type: &str) -> String {
    let kind = match details {
        EventDetails::StateEntered { .. } => "stateEntered".to_string(),
        EventDetails::StateExited { .. } => "stateExited".to_string(),
        _ => lower_initial(event_type),
    };
    format!("{kind}EventDetails")
}

fn aws_details(details: &EventDetails) -> Map<String, Value> {
    let Ok(Value::Object(fields)) = serde_json::to_value(details) else {
        return Map::new();
    };
    fields
        .into_iter()
        .filter(|(key, _)| key != "kind" && key != "state_type")
        .map(|(key, value)| {
            let value = match key.as_str() {
                "input" | "output" | "parameters" => Value::String(value.to_string()),
                _ => value,
            };
            (aws_field(&key), value)
        })
        .collect()
}

/// The AWS spelling of a field: camelCase, `timeoutInSeconds`, `heartbeatInSeconds`.
fn aws_field(key: &str) -> String {
    match key {
        "timeout_seconds" => "timeoutInSeconds".to_string(),
        "heartbeat_seconds" => "heartbeatInSeconds".to_string(),
        _ => {
            let mut parts = key.split('_');
            let first = parts.next().unwrap_or_default().to_string();
            parts.fold(first, |mut name, part| {
                name.push_str(&upper_initial(part));
                name
            })
        }
    }
}

fn lower_initial(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_ascii_lowercase().to_string() + chars.as_str()
    })
}

fn upper_initial(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_ascii_uppercase().to_string() + chars.as_str()
    })
}
