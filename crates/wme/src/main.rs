//! `wme`: the local platform on one machine.
//!
//! Exit codes: 0 success; 1 the command ran but its outcome was not the expected one (a demo
//! device ended differently than its behaviour predicts, a definition has problems, an execution
//! failed, an execution is not in the store); 2 bad arguments or a start-up failure (unreadable
//! file, input that is not JSON, a missing or unreadable execution store).

mod demo;
mod executions;
mod states;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// IoT Workflow Management and Execution, locally.
///
/// Exit codes: 0 success; 1 the outcome was not the expected one (a demo device ended otherwise
/// than its behaviour predicts, a definition has problems, an execution failed); 2 bad arguments
/// or a start-up failure.
#[derive(Debug, Parser)]
#[command(name = "wme", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upgrade a fleet of simulated USP devices with the firmware-upgrade state machine.
    Demo(demo::DemoArgs),
    /// Validate or run an Amazon States Language definition with the local engine.
    States(states::StatesArgs),
    /// Read back the executions and histories `wme states run --db` stored in a SQLite file.
    Executions(executions::ExecutionsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        // The simulator reports the failures the demo injects at WARN, and the broker library
        // warns about every reboot's session take-over: both are expected here.
        EnvFilter::new("warn,device_agent_simulator=error,rmqtt=error")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::States(args) => states::run(args).await,
            Command::Executions(args) => executions::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: many library errors already include their
/// source's text, which `{:#}` would repeat.
fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
