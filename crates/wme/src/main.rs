//! `wme`: the local platform on one machine.
//!
//! Exit codes: 0 success; 1 the command ran but its outcome was not the expected one (a demo
//! device ended differently than its behaviour predicts); 2 bad arguments or a start-up failure.

mod demo;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// IoT Workflow Management and Execution, locally.
#[derive(Debug, Parser)]
#[command(name = "wme", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upgrade a fleet of simulated USP devices with the firmware-upgrade state machine.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        // The simulator reports the failures the demo injects at WARN; they are expected here.
        EnvFilter::new("warn,device_agent_simulator=error")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
