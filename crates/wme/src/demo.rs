//! `wme demo`: a firmware campaign over a simulated fleet, with progress on stderr and the
//! per-device results and summary on stdout (as JSON with `--json`).

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use device_agent_simulator::{StepDelays, parse_mix};
use indicatif::{ProgressBar, ProgressStyle};
use wme::campaign::{self, CampaignConfig, CampaignReport};
use wme_workflow::JobExecutionStatus;

/// Options of `wme demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of simulated devices.
    #[arg(long, default_value_t = 20)]
    devices: usize,
    /// Firmware version the job installs.
    #[arg(long, default_value = "1.2.3")]
    firmware: String,
    /// Firmware version the devices run at first.
    #[arg(long, default_value = "1.2.1")]
    from_firmware: String,
    /// How many devices get each behaviour, as weights spread over the fleet. Behaviours: ok,
    /// download-404, bad-checksum, boot-fails, silent, offline.
    #[arg(
        long,
        default_value = "ok=14,download-404=1,bad-checksum=1,boot-fails=1,silent=2,offline=1"
    )]
    mix: String,
    /// Multiplies every timer of the state machines (heartbeats, timeouts, retries): the
    /// definition keeps production values (a 900 s heartbeat) and the demo runs them at 1/100.
    #[arg(long, default_value_t = 0.01)]
    time_scale: f64,
    /// Milliseconds from Download() to TransferComplete! on each device.
    #[arg(long, default_value_t = 300)]
    transfer_delay_ms: u64,
    /// Milliseconds from Download() to OperationComplete.
    #[arg(long, default_value_t = 600)]
    oper_complete_delay_ms: u64,
    /// Milliseconds from Download() to Boot! (the device reboots in between).
    #[arg(long, default_value_t = 900)]
    boot_delay_ms: u64,
    /// Every n-th device speaks MQTT 3.1.1 instead of 5 (0: none).
    #[arg(long, default_value_t = 4)]
    mqtt311_every: usize,
    /// Broker port on 127.0.0.1 (0: a free port).
    #[arg(long, default_value_t = 0)]
    mqtt_port: u16,
    /// Firmware server port on 127.0.0.1 (0: a free port).
    #[arg(long, default_value_t = 0)]
    http_port: u16,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Print the summary and per-device results as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl DemoArgs {
    fn config(&self) -> anyhow::Result<CampaignConfig> {
        if !(self.time_scale > 0.0 && self.time_scale <= 1.0) {
            anyhow::bail!("--time-scale must be in (0, 1], got {}", self.time_scale);
        }
        let mix = parse_mix(&self.mix).with_context(|| format!("invalid --mix `{}`", self.mix))?;
        let ms = Duration::from_millis;
        Ok(CampaignConfig {
            devices: self.devices,
            from_version: self.from_firmware.clone(),
            target_version: self.firmware.clone(),
            mix,
            time_scale: self.time_scale,
            delays: StepDelays {
                transfer: ms(self.transfer_delay_ms),
                oper_complete: ms(self.oper_complete_delay_ms),
                boot: ms(self.boot_delay_ms),
            },
            mqtt_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, self.mqtt_port)),
            http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, self.http_port)),
            mqtt311_every: self.mqtt311_every,
            timeout: Duration::from_secs(self.timeout_secs),
        })
    }
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let config = args.config()?;
    let bar = ProgressBar::new(config.devices as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .expect("progress template"),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let report = campaign::run(&config, |summary| {
        let terminal: usize = summary
            .counts
            .iter()
            .filter(|(s, _)| s.is_terminal())
            .map(|(_, n)| n)
            .sum();
        bar.set_position(terminal as u64);
        let counts: Vec<String> = summary
            .counts
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect();
        bar.set_message(counts.join(" · "));
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(if report.unexpected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_table(report: &CampaignReport) {
    println!(
        "{:<10} {:<13} {:<10} {:<10} {:<9} {:<19} {:<20} reason",
        "device", "behaviour", "execution", "job exec", "firmware", "step", "expected"
    );
    for r in &report.results {
        let mark = if r.as_expected { "" } else { "  <- UNEXPECTED" };
        let expected = format!("{} {}", r.expected.status.as_str(), r.expected.step);
        println!(
            "{:<10} {:<13} {:<10} {:<10} {:<9} {:<19} {:<20} {}{mark}",
            r.name,
            r.behaviour,
            r.execution_status,
            r.job_execution_status,
            r.firmware_version.as_deref().unwrap_or("-"),
            r.step.as_deref().unwrap_or("-"),
            expected,
            r.reason.as_deref().unwrap_or(""),
        );
    }
    println!();
    let counts: Vec<String> = JobExecutionStatus::ALL
        .iter()
        .filter_map(|s| report.counts.get(s.as_str()).map(|n| format!("{s} {n}")))
        .collect();
    println!(
        "job {}: {} devices in {:.1} s — {}",
        report.job_id,
        report.devices,
        report.seconds,
        counts.join(", ")
    );
    let dropped: Vec<String> = report
        .device_messages
        .iter()
        .filter(|(what, _)| what.as_str() != "handled")
        .map(|(what, n)| format!("{what} {n}"))
        .collect();
    if !dropped.is_empty() {
        println!("device messages dropped: {}", dropped.join(", "));
    }
    let unfinished: Vec<&str> = report
        .results
        .iter()
        .filter(|r| matches!(r.job_execution_status.as_str(), "QUEUED" | "IN_PROGRESS"))
        .map(|r| r.name.as_str())
        .collect();
    let otherwise: Vec<&str> = report
        .results
        .iter()
        .filter(|r| !r.as_expected && !unfinished.contains(&r.name.as_str()))
        .map(|r| r.name.as_str())
        .collect();
    if unfinished.is_empty() && otherwise.is_empty() {
        println!("every device ended as its behaviour predicts");
    }
    if !unfinished.is_empty() {
        println!(
            "{} devices had not finished: {}",
            unfinished.len(),
            some_names(&unfinished)
        );
    }
    if !otherwise.is_empty() {
        println!(
            "{} devices ended unexpectedly: {}",
            otherwise.len(),
            some_names(&otherwise)
        );
    }
}

/// At most 20 names, then how many more.
fn some_names(names: &[&str]) -> String {
    const SHOWN: usize = 20;
    let mut text = names
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}
