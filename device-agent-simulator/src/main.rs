//! `device-agent-simulator`: runs a fleet of simulated USP agents against an MQTT broker until
//! Ctrl-C (or SIGTERM), then disconnects them cleanly.
//!
//! Logs go to stderr (`RUST_LOG` filters them). Exit codes: 0 after a clean shutdown, 1 when the
//! broker address cannot be resolved or the config is invalid, 2 for bad command-line usage.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use device_agent_simulator::{
    AgentSpec, Behaviour, DEFAULT_CONTROLLER_ENDPOINT_ID, DEFAULT_ENDPOINT_PREFIX, MqttVersion,
    Simulator, SimulatorConfig, StepDelays, mix, parse_mix,
};
use tracing::{error, info};

/// Simulated USP (TR-369) agents with a firmware image table, one MQTT connection each.
///
/// Delays are measured from the moment an agent accepts a Download(); the defaults reproduce
/// the seed sample: TransferComplete! after 10 s, OperationComplete after 15 s, Boot! after 20 s.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// MQTT broker, as mqtt://HOST:PORT (tcp:// and HOST:PORT are accepted too; no TLS).
    #[arg(long, env = "WME_SIM_BROKER")]
    broker: String,
    /// Number of devices, named sim-0001, sim-0002, ...
    #[arg(long)]
    devices: usize,
    /// Behaviour weights, e.g. ok=16,silent=1. Behaviours: ok, download-404, bad-checksum,
    /// boot-fails, silent, offline.
    #[arg(long, default_value = "ok=1")]
    behaviour_mix: String,
    /// Firmware version every device runs at start.
    #[arg(long, default_value = "1.2.1")]
    firmware: String,
    /// Milliseconds from Download() to TransferComplete!.
    #[arg(long, default_value_t = 10_000)]
    transfer_delay_ms: u64,
    /// Milliseconds from Download() to OperationComplete.
    #[arg(long, default_value_t = 15_000)]
    oper_complete_delay_ms: u64,
    /// Milliseconds from Download() to Boot! (with AutoActivate).
    #[arg(long, default_value_t = 20_000)]
    boot_delay_ms: u64,
    /// MQTT protocol version: 5 or 3.1.1.
    #[arg(long, default_value = "5", value_parser = parse_mqtt_version)]
    mqtt: MqttVersion,
    /// Prefix of each device's USP endpoint id.
    #[arg(long, default_value = DEFAULT_ENDPOINT_PREFIX)]
    endpoint_prefix: String,
    /// USP endpoint id of the controller.
    #[arg(long, default_value = DEFAULT_CONTROLLER_ENDPOINT_ID)]
    controller_endpoint_id: String,
    /// MQTT keep-alive in seconds (5 to 65535).
    #[arg(long, default_value_t = 60)]
    keep_alive_secs: u64,
    /// Start at most this many connections per second (default: all at once).
    #[arg(long)]
    connect_rate: Option<u32>,
    /// Seconds between fleet status lines in the log (0 turns them off).
    #[arg(long, default_value_t = 30)]
    status_interval_secs: u64,
}

fn parse_mqtt_version(text: &str) -> Result<MqttVersion, String> {
    match text {
        "5" | "5.0" => Ok(MqttVersion::V5),
        "3.1.1" | "3" | "4" => Ok(MqttVersion::V3_1_1),
        other => Err(format!("unknown mqtt version {other:?}; use 5 or 3.1.1")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!(error = format!("{e:#}"), "device-agent-simulator failed");
            ExitCode::from(1)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = config(&args).await?;
    config.validate()?;
    let status_every = Duration::from_secs(args.status_interval_secs);
    let sim = Simulator::start(config).await?;
    wait_for_signal(&sim, status_every).await;
    sim.shutdown().await;
    Ok(())
}

/// Turns the arguments into a validated-shape config (the simulator validates the rest).
async fn config(args: &Args) -> anyhow::Result<SimulatorConfig> {
    if args.devices == 0 {
        bail!("--devices must be at least 1");
    }
    let delays = delays(args)?;
    let weights = parse_mix(&args.behaviour_mix)?;
    let behaviours = mix(args.devices, &weights);
    let agents = AgentSpec::fleet(&behaviours, &args.firmware, args.mqtt);
    let broker = resolve_broker(&args.broker).await?;
    let mut config = SimulatorConfig::new(broker, agents, delays);
    config.endpoint_prefix = args.endpoint_prefix.clone();
    config.controller_endpoint_id = args.controller_endpoint_id.clone();
    config.keep_alive = Duration::from_secs(args.keep_alive_secs);
    config.connect_rate = args.connect_rate;
    Ok(config)
}

fn delays(args: &Args) -> anyhow::Result<StepDelays> {
    let (t, o, b) = (
        args.transfer_delay_ms,
        args.oper_complete_delay_ms,
        args.boot_delay_ms,
    );
    if !(t <= o && o <= b) {
        bail!(
            "delays must not decrease: --transfer-delay-ms {t} <= --oper-complete-delay-ms {o} \
             <= --boot-delay-ms {b}"
        );
    }
    Ok(StepDelays {
        transfer: Duration::from_millis(t),
        oper_complete: Duration::from_millis(o),
        boot: Duration::from_millis(b),
    })
}

/// Resolves `mqtt://HOST:PORT` (or `tcp://HOST:PORT`, or `HOST:PORT`) to a socket address.
async fn resolve_broker(url: &str) -> anyhow::Result<SocketAddr> {
    let authority = match url.split_once("://") {
        Some(("mqtt" | "tcp", rest)) => rest,
        Some((scheme, _)) => {
            bail!("broker url {url:?}: scheme {scheme:?} is not supported; use mqtt://HOST:PORT")
        }
        None => url,
    };
    let authority = authority.trim_end_matches('/');
    let mut addrs = tokio::net::lookup_host(authority)
        .await
        .with_context(|| format!("cannot resolve broker {url:?}; expected mqtt://HOST:PORT"))?;
    addrs
        .next()
        .with_context(|| format!("broker {url:?} resolves to no address"))
}

async fn wait_for_signal(sim: &Simulator, status_every: Duration) {
    let mut ticker = (!status_every.is_zero()).then(|| tokio::time::interval(status_every));
    loop {
        tokio::select! {
            _ = shutdown_signal() => return,
            _ = tick(&mut ticker) => log_status(sim),
        }
    }
}

async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn log_status(sim: &Simulator) {
    let snapshot = sim.snapshot();
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    let mut versions: BTreeMap<String, usize> = BTreeMap::new();
    for agent in &snapshot {
        *phases.entry(format!("{:?}", agent.phase)).or_default() += 1;
        *versions.entry(agent.firmware_version.clone()).or_default() += 1;
    }
    let offline = snapshot
        .iter()
        .filter(|a| a.behaviour == Behaviour::Offline)
        .count();
    info!(
        agents = snapshot.len(),
        connected = sim.connected(),
        offline_by_behaviour = offline,
        phases = ?phases,
        versions = ?versions,
        "fleet status"
    );
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            info!("signal received");
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    info!("signal received");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec![
            "device-agent-simulator",
            "--broker",
            "mqtt://127.0.0.1:1883",
            "--devices",
            "3",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn defaults_are_the_seed_sample_timings() {
        let delays = delays(&args(&[])).unwrap();
        assert_eq!(delays.transfer, Duration::from_secs(10));
        assert_eq!(delays.oper_complete, Duration::from_secs(15));
        assert_eq!(delays.boot, Duration::from_secs(20));
    }

    #[test]
    fn decreasing_delays_are_rejected() {
        let err = delays(&args(&[
            "--transfer-delay-ms",
            "20",
            "--oper-complete-delay-ms",
            "10",
        ]))
        .unwrap_err();
        assert!(
            err.to_string().starts_with("delays must not decrease"),
            "{err}"
        );
    }

    #[test]
    fn mqtt_versions_parse() {
        assert_eq!(args(&["--mqtt", "3.1.1"]).mqtt, MqttVersion::V3_1_1);
        assert_eq!(args(&[]).mqtt, MqttVersion::V5);
        assert!(
            Args::try_parse_from(["x", "--broker", "b", "--devices", "1", "--mqtt", "6"]).is_err()
        );
    }

    #[tokio::test]
    async fn a_config_is_built_from_arguments() {
        let config = config(&args(&[
            "--behaviour-mix",
            "ok=2,silent=1",
            "--firmware",
            "9.9",
        ]))
        .await
        .unwrap();
        assert_eq!(config.broker, "127.0.0.1:1883".parse().unwrap());
        let behaviours: Vec<_> = config.agents.iter().map(|a| a.behaviour).collect();
        assert_eq!(
            behaviours,
            vec![Behaviour::Ok, Behaviour::Silent, Behaviour::Ok]
        );
        assert_eq!(config.agents[2].thing_name, "sim-0003");
        assert_eq!(config.agents[0].firmware_version, "9.9");
    }

    #[tokio::test]
    async fn a_tls_broker_url_is_refused_with_a_hint() {
        let err = resolve_broker("mqtts://127.0.0.1:8883").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "broker url \"mqtts://127.0.0.1:8883\": scheme \"mqtts\" is not supported; use mqtt://HOST:PORT"
        );
    }

    #[tokio::test]
    async fn a_bad_behaviour_mix_names_the_entry() {
        let err = config(&args(&["--behaviour-mix", "ok=1,flaky=2"]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("\"flaky=2\""), "{err}");
    }
}
