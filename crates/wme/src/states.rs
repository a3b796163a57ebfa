//! `wme states`: check and run Amazon States Language definitions with the local engine, without
//! the rest of the platform.
//!
//! `validate` reports every problem the engine finds at load, each with the JSON pointer of the
//! offending field; `run` executes a definition that needs no Task resource and prints its output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use wme_asl::definition::{self, State, StateMachine, States};
use wme_asl::{Engine, EngineConfig, ExecutionDescription, ExecutionStatus, ValidationError};

/// Error name recorded when `states run` stops an execution that outlived `--timeout-secs`.
const RUN_TIMEOUT_ERROR: &str = "Wme.RunTimeout";
/// Name of the state machine `states run` creates in its private engine.
const MACHINE_NAME: &str = "wme-states-run";

/// Options of `wme states`.
#[derive(Debug, Args)]
pub struct StatesArgs {
    #[command(subcommand)]
    command: StatesCommand,
}

#[derive(Debug, Subcommand)]
enum StatesCommand {
    /// Check a definition as the engine does at load, reporting every problem with its JSON
    /// pointer. Task resources are taken as known. Exit 0 valid, 1 invalid, 2 unreadable.
    Validate(ValidateArgs),
    /// Run a definition that uses no Task (Pass, Choice, Wait, Parallel, Map, Succeed, Fail) and
    /// print the execution's output; on failure print {"error","cause"} and exit 1.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct ValidateArgs {
    /// The ASL definition (JSON).
    file: PathBuf,
    /// Value of a `${Name}` placeholder, as Name=Value (repeatable). Placeholders without a
    /// value are reported as problems.
    #[arg(long = "substitute", value_name = "NAME=VALUE", value_parser = parse_substitution)]
    substitutions: Vec<(String, String)>,
    /// Print {"valid": bool, "problems": [{"pointer", "message"}]} instead of lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The ASL definition (JSON).
    file: PathBuf,
    /// Execution input as JSON text (default `{}`).
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    input: Option<String>,
    /// Read the execution input from this JSON file.
    #[arg(long, value_name = "FILE")]
    input_file: Option<PathBuf>,
    /// Value of a `${Name}` placeholder, as Name=Value (repeatable).
    #[arg(long = "substitute", value_name = "NAME=VALUE", value_parser = parse_substitution)]
    substitutions: Vec<(String, String)>,
    /// Multiplies every timer (Wait, TimeoutSeconds): 0.01 runs a 100-second Wait in one second.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Stop the execution (error `Wme.RunTimeout`, exit 1) if it has not finished by then.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,
    /// Run on a durable engine stored in this SQLite file (created if missing), so that the
    /// execution and its history can be read back with `wme executions`.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
}

pub async fn run(args: StatesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StatesCommand::Validate(args) => validate(&args),
        StatesCommand::Run(args) => run_definition(&args).await,
    }
}

fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let definition = read_json(&args.file)?;
    let substitutions = args.substitutions.iter().cloned().collect();
    let problems = check(&definition, &substitutions).err().unwrap_or_default();
    let file = args.file.display();
    if args.json {
        println!("{}", problems_json(&problems));
    } else if problems.is_empty() {
        println!("{file}: valid");
    } else {
        for problem in &problems {
            println!("{}", problem_line(&file.to_string(), problem));
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn run_definition(args: &RunArgs) -> anyhow::Result<ExitCode> {
    if !(args.time_scale.is_finite() && args.time_scale > 0.0) {
        bail!(
            "--time-scale must be a positive number, got {}",
            args.time_scale
        );
    }
    let input = read_input(args)?;
    let definition = read_json(&args.file)?;
    let substitutions: HashMap<String, String> = args.substitutions.iter().cloned().collect();
    let file = args.file.display().to_string();
    let machine = check(&definition, &substitutions).map_err(|problems| {
        let lines: Vec<_> = problems.iter().map(|p| problem_line(&file, p)).collect();
        anyhow::anyhow!("{file} is not a valid definition:\n{}", lines.join("\n"))
    })?;
    refuse_tasks(&file, &machine)?;

    let description = execute(args, &definition, &substitutions, input).await?;
    let (text, code) = outcome(&description);
    println!("{text}");
    Ok(code)
}

/// Every problem the engine reports at load, with all Task resources taken as known.
///
/// Unlike the engine, which stops at unresolved placeholders, the definition is still parsed so
/// that the other problems show too; problems at (or under) a field whose placeholder could not
/// be resolved are left out, since they only repeat that one.
fn check(
    definition: &Value,
    substitutions: &HashMap<String, String>,
) -> Result<StateMachine, Vec<ValidationError>> {
    let mut value = definition.clone();
    let unresolved = definition::substitute(&mut value, substitutions)
        .err()
        .unwrap_or_default();
    let parsed = wme_asl::validate_definition(&value, &|_| true);
    let mut problems = unresolved.clone();
    match parsed {
        Ok(machine) if unresolved.is_empty() => return Ok(machine),
        Ok(_) => {}
        Err(found) => problems.extend(found.into_iter().filter(|p| !covered(p, &unresolved))),
    }
    problems.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    Err(problems)
}

fn covered(problem: &ValidationError, unresolved: &[ValidationError]) -> bool {
    unresolved.iter().any(|u| {
        problem.pointer == u.pointer || problem.pointer.starts_with(&format!("{}/", u.pointer))
    })
}

/// Refuses a definition with Task states: `states run` has no handler for any resource.
fn refuse_tasks(file: &str, machine: &StateMachine) -> anyhow::Result<()> {
    let mut tasks = Vec::new();
    collect_tasks(&machine.states, &mut tasks);
    tasks.sort();
    if tasks.is_empty() {
        return Ok(());
    }
    let list: Vec<_> = tasks
        .iter()
        .map(|(state, resource)| format!("  state {state:?} uses resource {resource:?}"))
        .collect();
    bail!(
        "{file} has Task states, which `wme states run` cannot run (it has no task handlers; \
         only Pass, Choice, Wait, Parallel, Map, Succeed and Fail run):\n{}",
        list.join("\n")
    )
}

/// (state name, resource) of every Task, including those inside Parallel branches and Maps.
fn collect_tasks(states: &States, out: &mut Vec<(String, String)>) {
    for (name, state) in &states.states {
        match state {
            State::Task(task) => out.push((name.clone(), task.resource.to_string())),
            State::Parallel(parallel) => {
                for branch in &parallel.branches {
                    collect_tasks(branch, out);
                }
            }
            State::Map(map) => collect_tasks(&map.processor, out),
            _ => {}
        }
    }
}

/// Runs the definition in a private engine (durable with `--db`) until it finishes or
/// `--timeout-secs` passes.
async fn execute(
    args: &RunArgs,
    definition: &Value,
    substitutions: &HashMap<String, String>,
    input: Value,
) -> anyhow::Result<ExecutionDescription> {
    let config = EngineConfig {
        time_scale: args.time_scale,
        ..EngineConfig::default()
    };
    let (engine, resumed) = match &args.db {
        Some(path) => open_durable(config, path)?,
        None => (Engine::new(config), 0),
    };
    let started = tokio::time::Instant::now();
    let description = run_on(&engine, args, definition, substitutions, input).await?;
    if resumed > 0 {
        let left = Duration::from_secs(args.timeout_secs).saturating_sub(started.elapsed());
        finish_resumed(&engine, resumed, left).await;
    }
    // Everything the executions recorded is on disk before the process exits.
    engine.flush().await;
    Ok(description)
}

/// Waits, within `limit`, for the executions an earlier run left running and this one resumed,
/// so that they are not abandoned again; says on stderr what it waits for and what is left.
async fn finish_resumed(engine: &Engine, resumed: usize, limit: Duration) {
    eprintln!("wme: waiting for {resumed} execution(s) an earlier run left running in --db");
    let running: Vec<String> = engine
        .list_state_machines()
        .iter()
        .flat_map(|machine| engine.list_executions(machine))
        .filter(|d| d.status == ExecutionStatus::Running)
        .map(|d| d.execution_arn)
        .collect();
    let all = async {
        for arn in &running {
            engine.wait_for_execution(arn).await;
        }
    };
    if tokio::time::timeout(limit, all).await.is_err() {
        let still = running
            .iter()
            .filter(|arn| {
                engine
                    .describe_execution(arn)
                    .is_some_and(|d| d.status == ExecutionStatus::Running)
            })
            .count();
        eprintln!(
            "wme: {still} of them had not finished within --timeout-secs; they resume with the \
             next run on this file"
        );
    }
}

/// A durable engine on `path` and how many executions it resumed: those a killed earlier run
/// left running. `states run` registers no handlers, and the definitions it accepts need none.
fn open_durable(config: EngineConfig, path: &Path) -> anyhow::Result<(Arc<Engine>, usize)> {
    let engine = Engine::open(config, path)
        .with_context(|| format!("cannot open --db {}", path.display()))?;
    let resumed = engine.resume();
    Ok((engine, resumed))
}

async fn run_on(
    engine: &Engine,
    args: &RunArgs,
    definition: &Value,
    substitutions: &HashMap<String, String>,
    input: Value,
) -> anyhow::Result<ExecutionDescription> {
    let machine = engine
        .create_state_machine(MACHINE_NAME, &definition.to_string(), substitutions)
        .context("the engine refused the definition")?;
    let execution = engine
        .start_execution(&machine, None, input)
        .await
        .context("cannot start the execution")?;
    let limit = Duration::from_secs(args.timeout_secs);
    if let Ok(Some(done)) = tokio::time::timeout(limit, engine.wait_for_execution(&execution)).await
    {
        return Ok(done);
    }
    let cause = format!(
        "the execution did not finish within {} second(s) (--timeout-secs)",
        args.timeout_secs
    );
    engine.stop_execution(&execution, RUN_TIMEOUT_ERROR, &cause)?;
    engine
        .wait_for_execution(&execution)
        .await
        .context("the stopped execution disappeared from the engine")
}

/// What to print and the exit code for a finished execution.
fn outcome(description: &ExecutionDescription) -> (String, ExitCode) {
    if description.status == ExecutionStatus::Succeeded {
        let output = description.output.clone().unwrap_or(Value::Null);
        return (output.to_string(), ExitCode::SUCCESS);
    }
    let failure = json!({"error": description.error, "cause": description.cause});
    (failure.to_string(), ExitCode::from(1))
}

fn read_input(args: &RunArgs) -> anyhow::Result<Value> {
    let (text, origin) = match (&args.input, &args.input_file) {
        (Some(text), _) => (text.clone(), "--input".to_string()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --input-file {}", path.display()))?;
            (text, format!("--input-file {}", path.display()))
        }
        (None, None) => return Ok(json!({})),
    };
    serde_json::from_str(&text).with_context(|| format!("{origin} is not valid JSON"))
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read definition {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("definition {} is not valid JSON", path.display()))
}

/// `FILE#/States/X/Next: message`: the pointer as a URI fragment of the file.
fn problem_line(file: &str, problem: &ValidationError) -> String {
    format!("{file}#{}: {}", problem.pointer, problem.message)
}

fn problems_json(problems: &[ValidationError]) -> Value {
    let list: Vec<_> = problems
        .iter()
        .map(|p| json!({"pointer": p.pointer, "message": p.message}))
        .collect();
    json!({"valid": problems.is_empty(), "problems": list})
}

fn parse_substitution(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(pointer: &str, message: &str) -> ValidationError {
        ValidationError {
            pointer: pointer.to_string(),
            message: message.to_string(),
        }
    }

    #[test]
    fn substitution_splits_at_the_first_equals_sign() {
        assert_eq!(
            parse_substitution("Arn=a=b"),
            Ok(("Arn".to_string(), "a=b".to_string()))
        );
        assert_eq!(
            parse_substitution("=x"),
            Err("expected NAME=VALUE, got \"=x\"".to_string())
        );
        assert_eq!(
            parse_substitution("Arn"),
            Err("expected NAME=VALUE, got \"Arn\"".to_string())
        );
    }

    #[test]
    fn problems_under_an_unresolved_placeholder_are_covered_by_it() {
        let unresolved = [problem("/States/A/Next", "unresolved")];
        assert!(covered(&problem("/States/A/Next", "x"), &unresolved));
        assert!(covered(&problem("/States/A/Next/0", "x"), &unresolved));
        assert!(!covered(&problem("/States/A/NextState", "x"), &unresolved));
        assert!(!covered(&problem("/States/B", "x"), &unresolved));
    }

    #[test]
    fn tasks_inside_parallel_branches_and_maps_are_found() {
        let definition = json!({
            "StartAt": "P",
            "States": {
                "P": {"Type": "Parallel", "Next": "M", "Branches": [
                    {"StartAt": "T1", "States": {"T1": {"Type": "Task", "Resource": "r1", "End": true}}}
                ]},
                "M": {"Type": "Map", "End": true, "ItemProcessor": {
                    "StartAt": "T2", "States": {"T2": {"Type": "Task", "Resource": "r2", "End": true}}
                }}
            }
        });
        let machine = check(&definition, &HashMap::new()).unwrap();
        let mut tasks = Vec::new();
        collect_tasks(&machine.states, &mut tasks);
        tasks.sort();
        assert_eq!(
            tasks,
            [
                ("T1".to_string(), "r1".to_string()),
                ("T2".to_string(), "r2".to_string())
            ]
        );
    }
}
