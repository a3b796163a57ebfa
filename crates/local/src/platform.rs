//! The local platform: starts the broker, registry, jobs, token table, firmware server, the
//! controller's MQTT link and the state-machine engine, loads the firmware-upgrade state machine,
//! and runs the rules that connect them (notify-next starts executions, device Records reach the
//! device-message handler, broker sessions drive connectivity).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use wme_asl::{Engine, EngineConfig};
use wme_broker::{Broker, BrokerConfig, ConnectionEvent};
use wme_workflow::create_job::{CreatedJob, FIRMWARE_UPGRADE_TEMPLATE};
use wme_workflow::ports::{JobExecutionUpdate, Jobs};
use wme_workflow::{Controller, JobExecutionStatus};

use crate::artifacts::{Artifacts, make_image, serve};
use crate::functions::{FunctionError, Functions, names};
use crate::integrations::{
    EngineCallbacks, IOT_DESCRIBE_THING, IOT_SEARCH_INDEX, IOT_UPDATE_THING, IotRegistry,
    LAMBDA_INVOKE, LambdaInvoke,
};
use crate::jobs::{JobSummary, LocalJobs, NotifyNext};
use crate::mqtt_link::{Inbound, MqttLink};
use crate::registry::Registry;
use crate::tokens::LocalTokenStore;

/// The firmware-upgrade definition, the same file `template.yaml` deploys.
pub const FIRMWARE_UPGRADE_DEFINITION: &str =
    include_str!("../../../statemachine/firmware_upgrade.asl.json");

/// How to start the platform.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Broker listen address (port 0: any free port).
    pub mqtt_addr: SocketAddr,
    /// Firmware server listen address.
    pub http_addr: SocketAddr,
    /// Multiplies every timer of the engine (1.0 = the definition's real durations).
    pub time_scale: f64,
    /// Region in ARNs.
    pub region: String,
    /// Account in ARNs.
    pub account: String,
    /// Firmware versions to publish images for.
    pub firmware_versions: Vec<String>,
    /// Size of each image.
    pub image_size: usize,
    /// How long token-table entries live.
    pub token_ttl: Duration,
    /// Controller identity.
    pub controller: Controller,
}

impl Default for PlatformConfig {
    fn default() -> Self {
        Self {
            mqtt_addr: ([127, 0, 0, 1], 0).into(),
            http_addr: ([127, 0, 0, 1], 0).into(),
            time_scale: 1.0,
            region: "local".into(),
            account: "000000000000".into(),
            firmware_versions: vec!["1.2.3".into()],
            image_size: 64 * 1024,
            token_ttl: Duration::from_secs(24 * 3600),
            controller: Controller::default(),
        }
    }
}

/// Why the platform did not start.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// The broker failed.
    #[error("mqtt broker: {0}")]
    Broker(#[from] wme_broker::BrokerError),
    /// A listener could not be bound.
    #[error("firmware server cannot listen on {addr}: {error}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The controller could not connect.
    #[error(transparent)]
    Link(#[from] crate::mqtt_link::LinkError),
    /// The state machine was refused.
    #[error("state machine `{name}`: {error}")]
    StateMachine {
        /// Its name.
        name: String,
        /// Why.
        error: String,
    },
}

/// Counts of device messages by what became of them.
#[derive(Debug, Default)]
pub struct MessageStats {
    /// Outcome or drop reason to count; a `Mutex` as updates are rare relative to work done.
    counts: Mutex<BTreeMap<String, u64>>,
}

impl MessageStats {
    fn add(&self, what: &str) {
        *self
            .counts
            .lock()
            .expect("stats lock")
            .entry(what.to_string())
            .or_default() += 1;
    }

    /// A snapshot.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().expect("stats lock").clone()
    }
}

/// The running platform.
pub struct LocalPlatform {
    /// Registry.
    pub registry: Arc<Registry>,
    /// Jobs.
    pub jobs: Arc<LocalJobs>,
    /// Engine.
    pub engine: Arc<Engine>,
    /// Firmware images.
    pub artifacts: Arc<Artifacts>,
    /// Token table.
    pub tokens: Arc<LocalTokenStore>,
    /// Functions.
    pub functions: Arc<Functions>,
    /// What became of device messages.
    pub message_stats: Arc<MessageStats>,
    /// The firmware-upgrade state machine.
    pub state_machine_arn: String,
    broker: Broker,
    http_addr: SocketAddr,
    link: Arc<MqttLink>,
    executions: Arc<Mutex<Executions>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for LocalPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPlatform")
            .field("mqtt", &self.broker.local_addr())
            .finish_non_exhaustive()
    }
}

impl LocalPlatform {
    /// Starts everything and loads the firmware-upgrade state machine.
    pub async fn start(config: PlatformConfig) -> Result<LocalPlatform, PlatformError> {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let broker = Broker::start(config.mqtt_addr, BrokerConfig::default()).await?;
        let registry = Arc::new(Registry::new());
        let mut tasks = vec![tokio::spawn(track_connectivity(
            broker.events(),
            registry.clone(),
        ))];

        let (artifacts, http_addr, server) =
            start_file_server(&config, shutdown_rx.clone()).await?;
        tasks.push(server);

        let (notify_tx, notify_rx) = mpsc::unbounded_channel();
        let jobs = Arc::new(LocalJobs::new(
            registry.clone(),
            &config.region,
            &config.account,
            notify_tx,
        ));
        jobs.put_job_template(
            FIRMWARE_UPGRADE_TEMPLATE,
            json!({"operation": "FirmwareUpgrade"}),
            "Firmware upgrade",
        );
        let tokens = Arc::new(LocalTokenStore::new(config.token_ttl));
        let (inbound_tx, inbound_rx) = mpsc::unbounded_channel();
        let link =
            Arc::new(MqttLink::connect(broker.local_addr(), "wme-controller", inbound_tx).await?);

        let engine = Engine::new(EngineConfig {
            time_scale: config.time_scale,
            region: config.region.clone(),
            account: config.account.clone(),
        });
        let functions = Arc::new(Functions {
            jobs: jobs.clone(),
            tokens: tokens.clone(),
            callbacks: Arc::new(EngineCallbacks {
                engine: engine.clone(),
            }),
            link: link.clone(),
            artifacts: artifacts.clone(),
            controller: config.controller.clone(),
        });
        engine.register(
            LAMBDA_INVOKE,
            Arc::new(LambdaInvoke {
                functions: functions.clone(),
            }),
        );
        let iot = Arc::new(IotRegistry {
            registry: registry.clone(),
        });
        for resource in [IOT_SEARCH_INDEX, IOT_DESCRIBE_THING, IOT_UPDATE_THING] {
            engine.register(resource, iot.clone());
        }
        let state_machine_arn = engine
            .create_state_machine(
                "firmware_upgrade",
                FIRMWARE_UPGRADE_DEFINITION,
                &substitutions(&config),
            )
            .map_err(|e| PlatformError::StateMachine {
                name: "firmware_upgrade".into(),
                error: e.to_string(),
            })?;

        let message_stats = Arc::new(MessageStats::default());
        let executions = Arc::new(Mutex::new(Executions::default()));
        tasks.push(tokio::spawn(route_device_messages(
            inbound_rx,
            functions.clone(),
            message_stats.clone(),
        )));
        tasks.push(tokio::spawn(close_abandoned_job_executions(
            engine.subscribe(),
            engine.clone(),
            jobs.clone(),
            executions.clone(),
        )));
        tasks.push(tokio::spawn(start_executions(
            notify_rx,
            engine.clone(),
            jobs.clone(),
            state_machine_arn.clone(),
            executions.clone(),
        )));
        tasks.push(tokio::spawn(purge_tokens(tokens.clone(), shutdown_rx)));
        info!(mqtt = %broker.local_addr(), http = %http_addr, state_machine = %state_machine_arn, "local platform started");
        Ok(LocalPlatform {
            registry,
            jobs,
            engine,
            artifacts,
            tokens,
            functions,
            message_stats,
            state_machine_arn,
            broker,
            http_addr,
            link,
            executions,
            shutdown,
            tasks,
        })
    }

    /// The broker's address.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.broker.local_addr()
    }

    /// The firmware server's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Invokes JobsCreateJob with `payload`, as an operator does.
    pub async fn create_job(&self, payload: Value) -> Result<CreatedJob, FunctionError> {
        let created = self.functions.invoke(names::CREATE_JOB, payload).await?;
        serde_json::from_value(created.clone()).map_err(|e| FunctionError {
            error_type: "InvalidOutput".into(),
            message: format!("create-job returned {created}: {e}"),
        })
    }

    /// The execution started for `thing_name` in `job_id`.
    pub fn execution_arn(&self, job_id: &str, thing_name: &str) -> Option<String> {
        let executions = self.executions.lock().expect("executions lock");
        executions
            .by_device
            .get(&(job_id.to_string(), thing_name.to_string()))
            .cloned()
    }

    /// Waits until every execution of the job is terminal, or `timeout` passes.
    pub async fn wait_for_job(&self, job_id: &str, timeout: Duration) -> Option<JobSummary> {
        let mut changes = self.jobs.watch_changes();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let summary = self.jobs.describe_job(job_id)?;
            if summary.status == crate::jobs::JobStatus::Completed {
                return Some(summary);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return Some(summary);
            }
        }
    }

    /// Stops everything.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.link.disconnect().await;
        for task in &self.tasks {
            task.abort();
        }
        self.broker.shutdown().await;
        info!("local platform stopped");
    }
}

/// The values of the definition's `${...}` placeholders, as `template.yaml`'s
/// DefinitionSubstitutions gives them on AWS.
pub fn substitutions(config: &PlatformConfig) -> HashMap<String, String> {
    let arn = |name: &str| {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            config.region, config.account
        )
    };
    HashMap::from([
        (
            "SendUspCommandFunctionArn".to_string(),
            arn(names::SEND_USP_COMMAND),
        ),
        (
            "AwaitDeviceEventFunctionArn".to_string(),
            arn(names::AWAIT_DEVICE_EVENT),
        ),
        (
            "UpdateJobExecutionFunctionArn".to_string(),
            arn(names::UPDATE_JOB_EXECUTION),
        ),
    ])
}

async fn start_file_server(
    config: &PlatformConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(Arc<Artifacts>, SocketAddr, JoinHandle<()>), PlatformError> {
    let listener =
        TcpListener::bind(config.http_addr)
            .await
            .map_err(|error| PlatformError::Bind {
                addr: config.http_addr,
                error,
            })?;
    let addr = listener.local_addr().map_err(|error| PlatformError::Bind {
        addr: config.http_addr,
        error,
    })?;
    let artifacts = Arc::new(Artifacts::new(addr));
    for version in &config.firmware_versions {
        artifacts.put_image(version, make_image(version, config.image_size));
    }
    let served = artifacts.clone();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        };
        if let Err(error) = serve(listener, served, stop).await {
            warn!(error = %error, "firmware server stopped");
        }
    });
    Ok((artifacts, addr, task))
}

/// Broker sessions drive the registry's connectivity, like AWS IoT presence events.
async fn track_connectivity(
    mut events: tokio::sync::broadcast::Receiver<ConnectionEvent>,
    registry: Arc<Registry>,
) {
    loop {
        match events.recv().await {
            Ok(ConnectionEvent::Connected { client_id, .. }) => {
                registry.set_connected(&client_id, true, Utc::now());
            }
            Ok(ConnectionEvent::Disconnected { client_id, .. }) => {
                registry.set_connected(&client_id, false, Utc::now());
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "connectivity events lagged; some connectivity may be stale"
                );
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The rule that sends each device Record to the device-message handler.
async fn route_device_messages(
    mut inbound: mpsc::UnboundedReceiver<Inbound>,
    functions: Arc<Functions>,
    stats: Arc<MessageStats>,
) {
    while let Some(message) = inbound.recv().await {
        let functions = functions.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            match functions
                .handle_device_message(&message.topic, &message.payload)
                .await
            {
                Ok(outcome) => {
                    debug!(topic = %message.topic, outcome = ?outcome, "device message handled");
                    stats.add("handled");
                }
                Err(error) => {
                    debug!(topic = %message.topic, reason = error.reason(), error = %error, "device message dropped");
                    stats.add(error.reason());
                }
            }
        });
    }
}

/// The notify-next rule: one state-machine execution per queued job execution. An execution
/// that cannot be started marks its job execution FAILED, so no device waits forever.
async fn start_executions(
    mut notify_next: mpsc::UnboundedReceiver<NotifyNext>,
    engine: Arc<Engine>,
    jobs: Arc<LocalJobs>,
    state_machine_arn: String,
    executions: Arc<Mutex<Executions>>,
) {
    while let Some(event) = notify_next.recv().await {
        let name = execution_name(&event.job_id, &event.thing_name);
        match engine
            .start_execution(&state_machine_arn, Some(&name), event.event.clone())
            .await
        {
            Ok(arn) => {
                debug!(device = %event.thing_name, execution = %arn, "execution started");
                executions.lock().expect("executions lock").insert(
                    event.job_id,
                    event.thing_name,
                    arn,
                );
            }
            Err(error) => {
                warn!(device = %event.thing_name, job_id = %event.job_id, error = %error, "execution not started");
                let reason = error.to_string();
                mark_failed(
                    &jobs,
                    &event.job_id,
                    &event.thing_name,
                    "StartExecution",
                    &reason,
                )
                .await;
            }
        }
    }
}

/// Which execution runs for which device of which job.
#[derive(Debug, Default)]
struct Executions {
    by_device: HashMap<(String, String), String>,
    by_arn: HashMap<String, (String, String)>,
}

impl Executions {
    fn insert(&mut self, job_id: String, thing_name: String, arn: String) {
        self.by_arn
            .insert(arn.clone(), (job_id.clone(), thing_name.clone()));
        self.by_device.insert((job_id, thing_name), arn);
    }
}

async fn mark_failed(jobs: &LocalJobs, job_id: &str, thing_name: &str, step: &str, reason: &str) {
    let update = JobExecutionUpdate {
        thing_name: thing_name.to_string(),
        job_id: job_id.to_string(),
        status: JobExecutionStatus::Failed,
        status_details: BTreeMap::from([
            ("step".to_string(), step.to_string()),
            ("reason".to_string(), reason.to_string()),
        ]),
    };
    if let Err(error) = jobs.update_job_execution(update).await {
        warn!(device = %thing_name, job_id = %job_id, error = %error, "job execution not marked failed");
    }
}

/// An execution can end without recording its device's outcome: a definition error
/// (`States.Runtime` cannot be caught) or a failing status update. Its job execution would then
/// stay QUEUED or IN_PROGRESS for ever; this marks it FAILED with the execution's error.
async fn close_abandoned_job_executions(
    mut events: tokio::sync::broadcast::Receiver<wme_asl::ExecutionEvent>,
    engine: Arc<Engine>,
    jobs: Arc<LocalJobs>,
    executions: Arc<Mutex<Executions>>,
) {
    loop {
        let arns: Vec<String> = match events.recv().await {
            Ok(wme_asl::ExecutionEvent::Finished { arn, .. }) => vec![arn],
            Ok(_) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                debug!(missed, "execution events lagged, checking every execution");
                executions
                    .lock()
                    .expect("executions lock")
                    .by_arn
                    .keys()
                    .cloned()
                    .collect()
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        for arn in arns {
            close_if_abandoned(&engine, &jobs, &executions, &arn).await;
        }
    }
}

async fn close_if_abandoned(
    engine: &Engine,
    jobs: &LocalJobs,
    executions: &Mutex<Executions>,
    arn: &str,
) {
    let Some((job_id, thing_name)) = executions
        .lock()
        .expect("executions lock")
        .by_arn
        .get(arn)
        .cloned()
    else {
        return;
    };
    let Some(description) = engine.describe_execution(arn) else {
        return;
    };
    if description.status == wme_asl::ExecutionStatus::Running {
        return;
    }
    let open = jobs
        .describe_job_execution(&job_id, &thing_name)
        .is_some_and(|execution| !execution.status.is_terminal());
    if open {
        let reason = format!(
            "execution {} ended {} without recording an outcome: {}: {}",
            description.name,
            description.status.as_str(),
            description.error.as_deref().unwrap_or("-"),
            description.cause.as_deref().unwrap_or("-"),
        );
        warn!(device = %thing_name, job_id = %job_id, reason = %reason, "closing abandoned job execution");
        mark_failed(jobs, &job_id, &thing_name, "Execution", &reason).await;
    }
}

async fn purge_tokens(tokens: Arc<LocalTokenStore>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let purged = tokens.purge_expired();
                if purged > 0 {
                    debug!(purged, "expired token entries purged");
                }
            }
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// A Step Functions execution name for one device of one job (at most 80 characters).
pub fn execution_name(job_id: &str, thing_name: &str) -> String {
    let name = format!("{thing_name}_{job_id}");
    if name.len() <= 80 {
        return name;
    }
    let digest = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes())
        .simple()
        .to_string();
    format!("{}_{}", &name[..71], &digest[..8])
}
