//! One firmware campaign on the local platform: start the platform and a simulated fleet, create
//! the dynamic group and the job exactly as an operator does, wait for every device's terminal
//! status, and report each device's outcome beside what its injected behaviour predicts.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use device_agent_simulator::{
    AgentSpec, Behaviour, MqttVersion, Simulator, SimulatorConfig, StepDelays, mix,
};
use serde::Serialize;
use serde_json::json;
use wme_local::jobs::{JobExecution, JobSummary};
use wme_local::{LocalPlatform, PlatformConfig};
use wme_workflow::JobExecutionStatus;

/// The dynamic group the seed's instructions create.
pub const GROUP: &str = "devices_on_factory_firmware_version";

/// What to run.
#[derive(Debug, Clone)]
pub struct CampaignConfig {
    /// Devices in the fleet.
    pub devices: usize,
    /// The version the fleet runs at first.
    pub from_version: String,
    /// The version the job installs.
    pub target_version: String,
    /// How many devices get each behaviour (weights, spread over the fleet).
    pub mix: Vec<(Behaviour, usize)>,
    /// Engine time scale.
    pub time_scale: f64,
    /// Device step delays.
    pub delays: StepDelays,
    /// Broker address.
    pub mqtt_addr: SocketAddr,
    /// Firmware server address.
    pub http_addr: SocketAddr,
    /// Every n-th device speaks MQTT 3.1.1 (0: none).
    pub mqtt311_every: usize,
    /// Give up waiting after this long.
    pub timeout: Duration,
}

/// The outcome a behaviour predicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    /// Job execution status.
    pub status: JobExecutionStatus,
    /// The step named in statusDetails.
    pub step: &'static str,
    /// The thing's firmwareVersion attribute afterwards.
    pub firmware_version: String,
}

/// What a behaviour should lead to. A device already on the target version succeeds without
/// being contacted, whatever its behaviour.
pub fn predict(behaviour: Behaviour, from: &str, target: &str) -> Prediction {
    if from == target {
        let status = JobExecutionStatus::Succeeded;
        return Prediction {
            status,
            step: "CheckDevice",
            firmware_version: target.to_string(),
        };
    }
    let (status, step, firmware) = match behaviour {
        Behaviour::Ok => (JobExecutionStatus::Succeeded, "Done", target),
        Behaviour::Download404 | Behaviour::BadChecksum => {
            (JobExecutionStatus::Failed, "AwaitNotifications", from)
        }
        Behaviour::BootFails => (JobExecutionStatus::Failed, "VerifyBoot", from),
        Behaviour::Silent => (JobExecutionStatus::TimedOut, "AwaitNotifications", from),
        Behaviour::Offline => (JobExecutionStatus::Failed, "CheckDevice", from),
    };
    Prediction {
        status,
        step,
        firmware_version: firmware.to_string(),
    }
}

/// One device's result.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceResult {
    /// Thing name.
    pub name: String,
    /// Injected behaviour.
    pub behaviour: String,
    /// The state-machine execution's status.
    pub execution_status: String,
    /// The job execution's status.
    pub job_execution_status: String,
    /// The thing's firmwareVersion attribute.
    pub firmware_version: Option<String>,
    /// The version the simulated device runs.
    pub device_firmware_version: String,
    /// statusDetails.step.
    pub step: Option<String>,
    /// statusDetails.reason: why it failed, or what it runs now.
    pub reason: Option<String>,
    /// What the behaviour predicts.
    pub expected: Prediction,
    /// Whether the result matches the prediction.
    pub as_expected: bool,
}

/// The campaign's report.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignReport {
    /// The job.
    pub job_id: String,
    /// Fleet size.
    pub devices: usize,
    /// Job executions by final status.
    pub counts: BTreeMap<String, usize>,
    /// Devices whose outcome differs from the prediction.
    pub unexpected: Vec<String>,
    /// From job creation to the last terminal status.
    pub seconds: f64,
    /// Device messages the platform handled or dropped, by reason.
    pub device_messages: BTreeMap<String, u64>,
    /// Per device.
    pub results: Vec<DeviceResult>,
}

/// Runs the campaign. `on_progress` sees the job's summary whenever it changes.
pub async fn run(
    config: &CampaignConfig,
    mut on_progress: impl FnMut(&JobSummary),
) -> anyhow::Result<CampaignReport> {
    if config.devices == 0 {
        bail!("--devices must be at least 1, got {}", config.devices);
    }
    let versions = [
        ("--firmware", &config.target_version),
        ("--from-firmware", &config.from_version),
    ];
    for (option, version) in versions {
        if let Err(reason) = wme_workflow::create_job::check_version(version) {
            bail!("invalid {option}: {reason}");
        }
    }
    let platform = LocalPlatform::start(PlatformConfig {
        mqtt_addr: config.mqtt_addr,
        http_addr: config.http_addr,
        time_scale: config.time_scale,
        firmware_versions: vec![config.target_version.clone()],
        ..PlatformConfig::default()
    })
    .await
    .context("starting the local platform")?;

    let behaviours = mix(config.devices, &config.mix);
    let agents = fleet(config, &behaviours);
    for agent in &agents {
        let attributes =
            BTreeMap::from([("firmwareVersion".to_string(), config.from_version.clone())]);
        platform
            .registry
            .create_thing(&agent.thing_name, attributes)?;
    }
    let simulator = Simulator::start(SimulatorConfig::new(
        platform.mqtt_addr(),
        agents.clone(),
        config.delays,
    ))
    .await
    .context("starting the device simulator")?;
    simulator
        .wait_connected(Duration::from_secs(60))
        .await
        .context("connecting the devices")?;
    let online = behaviours
        .iter()
        .filter(|b| **b != Behaviour::Offline)
        .count();
    wait_registry_connected(&platform, online).await?;

    platform.registry.create_dynamic_group(
        GROUP,
        &format!("attributes.firmwareVersion: {}", config.from_version),
    )?;
    let started = Instant::now();
    let payload = json!({
        "firmwareVersion": config.target_version,
        "upgradeTrigger": "manual",
        "targetArn": format!("arn:aws:iot:local:000000000000:thinggroup/{GROUP}"),
    });
    let job = platform
        .create_job(payload)
        .await
        .context("creating the job")?;
    let summary = watch_job(&platform, &job.job_id, config.timeout, &mut on_progress).await?;
    let seconds = started.elapsed().as_secs_f64();

    let device_versions: HashMap<String, String> = simulator
        .snapshot()
        .into_iter()
        .map(|status| (status.thing_name, status.firmware_version))
        .collect();
    let executions: HashMap<String, JobExecution> = platform
        .jobs
        .list_job_executions(&job.job_id)
        .into_iter()
        .map(|e| (e.thing_name.clone(), e))
        .collect();
    let results = collect_results(
        &platform,
        config,
        &job.job_id,
        &agents,
        &executions,
        &device_versions,
    )
    .await;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for execution in executions.values() {
        *counts.entry(execution.status.to_string()).or_default() += 1;
    }
    let _ = summary;
    let report = CampaignReport {
        job_id: job.job_id,
        devices: config.devices,
        counts,
        unexpected: results
            .iter()
            .filter(|r| !r.as_expected)
            .map(|r| r.name.clone())
            .collect(),
        seconds,
        device_messages: platform.message_stats.snapshot(),
        results,
    };
    simulator.shutdown().await;
    platform.shutdown().await;
    Ok(report)
}

fn fleet(config: &CampaignConfig, behaviours: &[Behaviour]) -> Vec<AgentSpec> {
    let mut agents = AgentSpec::fleet(behaviours, &config.from_version, MqttVersion::V5);
    if config.mqtt311_every > 0 {
        for agent in agents
            .iter_mut()
            .skip(config.mqtt311_every - 1)
            .step_by(config.mqtt311_every)
        {
            agent.mqtt_version = MqttVersion::V3_1_1;
        }
    }
    agents
}

/// Waits until the registry shows every online device connected (the broker's session events
/// may trail the devices' CONNACKs by a moment).
async fn wait_registry_connected(platform: &LocalPlatform, online: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let connected = platform
            .registry
            .search("connectivity.connected:true", usize::MAX)?
            .len();
        if connected >= online {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {connected} of {online} devices show as connected in the registry after 30 s"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn watch_job(
    platform: &LocalPlatform,
    job_id: &str,
    timeout: Duration,
    on_progress: &mut impl FnMut(&JobSummary),
) -> anyhow::Result<JobSummary> {
    let mut changes = platform.jobs.watch_changes();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let summary = platform
            .jobs
            .describe_job(job_id)
            .context("the job disappeared")?;
        on_progress(&summary);
        if summary.status == wme_local::jobs::JobStatus::Completed {
            return Ok(summary);
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            tracing::warn!(
                job_id = %job_id,
                timeout_secs = timeout.as_secs(),
                "job not complete in time; reporting it as it stands"
            );
            return Ok(summary);
        }
    }
}

/// The execution's status. One whose job execution is terminal ends moments after recording the
/// outcome, so it gets until `deadline` to finish; others are reported as they stand.
async fn execution_status(
    platform: &LocalPlatform,
    arn: &str,
    outcome_recorded: bool,
    deadline: tokio::time::Instant,
) -> String {
    let finished = async {
        if outcome_recorded {
            tokio::time::timeout_at(deadline, platform.engine.wait_for_execution(arn)).await
        } else {
            Ok(platform.engine.describe_execution(arn))
        }
    };
    let description = match finished.await {
        Ok(description) => description,
        Err(_still_running) => platform.engine.describe_execution(arn),
    };
    description
        .map(|d| d.status.as_str().to_string())
        .unwrap_or_else(|| "UNKNOWN".into())
}

async fn collect_results(
    platform: &LocalPlatform,
    config: &CampaignConfig,
    job_id: &str,
    agents: &[AgentSpec],
    executions: &HashMap<String, JobExecution>,
    device_versions: &HashMap<String, String>,
) -> Vec<DeviceResult> {
    let mut results = Vec::with_capacity(agents.len());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    for agent in agents {
        let name = &agent.thing_name;
        let execution = executions.get(name);
        let recorded = execution.is_some_and(|e| e.status.is_terminal());
        let execution_status = match platform.execution_arn(job_id, name) {
            Some(arn) => execution_status(platform, &arn, recorded, deadline).await,
            None => "NOT_STARTED".into(),
        };
        let firmware_version = platform
            .registry
            .describe_thing(name)
            .ok()
            .and_then(|t| t.attributes.get("firmwareVersion").cloned());
        let expected = predict(
            agent.behaviour,
            &config.from_version,
            &config.target_version,
        );
        let status = execution.as_ref().map(|e| e.status);
        let detail = |key: &str| {
            execution
                .as_ref()
                .and_then(|e| e.status_details.get(key).cloned())
        };
        let step = detail("step");
        let as_expected = status == Some(expected.status)
            && step.as_deref() == Some(expected.step)
            && firmware_version.as_deref() == Some(expected.firmware_version.as_str());
        results.push(DeviceResult {
            name: name.clone(),
            behaviour: agent.behaviour.name().to_string(),
            execution_status,
            job_execution_status: status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "NONE".into()),
            firmware_version,
            device_firmware_version: device_versions.get(name).cloned().unwrap_or_default(),
            step,
            reason: detail("reason"),
            expected,
            as_expected,
        });
    }
    results
}
