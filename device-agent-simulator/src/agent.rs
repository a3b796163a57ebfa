//! One simulated USP agent: a single tokio task that owns its MQTT connection, answers the
//! controller's Records, and drives its firmware download job and activation reboot.
//!
//! The task selects over the MQTT event loop, the running job (a future polled in place, not a
//! task of its own), a reconnect back-off timer and the shutdown signal.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, info, trace, warn};
use wme_usp::{Msg, OperateRequest, RecordPayload, View};

use crate::behaviour::Behaviour;
use crate::codes;
use crate::config::StepDelays;
use crate::job::{self, JobContext, JobEnd, Reboot};
use crate::state::{AgentCell, Phase};
use crate::transport::{self, Inbound, Link, LinkEvent, LinkOptions, Publisher};

/// The first wait before reconnecting after a failed connection; doubles up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a DISCONNECT may take to go out before the connection is simply dropped.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);
/// Object path prefix of the requests an agent tracks.
const REQUEST_TABLE: &str = "Device.LocalAgent.Request.";

type JobFuture = Pin<Box<dyn Future<Output = JobEnd> + Send>>;

/// What is shared by every agent of a simulator.
pub struct Common {
    pub host: String,
    pub port: u16,
    pub keep_alive: Duration,
    pub delays: StepDelays,
    pub controller_endpoint_id: String,
    pub http: reqwest::Client,
}

/// One agent's identity and the state it keeps across connections.
pub struct Agent {
    pub cell: Arc<AgentCell>,
    pub common: Arc<Common>,
    pub endpoint_id: String,
    pub mqtt_version: wme_usp::MqttVersion,
    pub agent_topic: String,
    pub controller_topic: String,
    /// Wait this long before the first connect (connect rate limiting).
    pub start_delay: Duration,
    /// Instance number of the next `Device.LocalAgent.Request.{i}`.
    pub next_request: u64,
    /// The `Boot!` (and its msg_id) to send once reconnected after an activation reboot.
    pub pending_boot: Option<(String, wme_usp::Boot)>,
}

/// Why a connection ended.
enum SessionEnd {
    Shutdown,
    Reboot(Reboot),
}

/// Runs the agent until shutdown.
pub async fn run(mut agent: Agent, mut shutdown: watch::Receiver<bool>) {
    if agent.cell.behaviour == Behaviour::Offline {
        info!("agent is offline by behaviour and never connects");
        stopped(&mut shutdown).await;
        return;
    }
    tokio::select! {
        _ = stopped(&mut shutdown) => return,
        _ = tokio::time::sleep(agent.start_delay) => {}
    }
    loop {
        match agent.session(&mut shutdown).await {
            SessionEnd::Shutdown => return,
            SessionEnd::Reboot(reboot) => {
                if !agent.reboot(reboot, &mut shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Resolves once shutdown is signalled (or the simulator is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Polls the job if there is one; never resolves otherwise.
async fn next_job_end(job: &mut Option<JobFuture>) -> JobEnd {
    match job {
        Some(job) => job.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at` if set; never resolves otherwise.
async fn retry_timer(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Agent {
    fn link_options(&self) -> LinkOptions {
        LinkOptions {
            client_id: self.cell.thing_name.clone(),
            host: self.common.host.clone(),
            port: self.common.port,
            keep_alive: self.common.keep_alive,
            version: self.mqtt_version,
            agent_topic: self.agent_topic.clone(),
        }
    }

    /// One MQTT connection (with automatic reconnects) until shutdown or an activation reboot.
    async fn session(&mut self, shutdown: &mut watch::Receiver<bool>) -> SessionEnd {
        let (mut link, publisher) = transport::open(&self.link_options());
        let mut job: Option<JobFuture> = None;
        let mut retry_at: Option<Instant> = None;
        let mut backoff = FIRST_BACKOFF;
        loop {
            // Cancelling `link.poll()` when another branch wins is what rumqttc's event loop is
            // built for between packets; a packet half-written under socket back-pressure is
            // the only thing at risk, and USP Records here are small.
            tokio::select! {
                _ = stopped(shutdown) => {
                    self.disconnect(&mut link, &publisher).await;
                    return SessionEnd::Shutdown;
                }
                end = next_job_end(&mut job) => {
                    job = None;
                    if let JobEnd::Reboot(reboot) = end {
                        // The OperationComplete just queued must reach the broker before the
                        // reboot drops the connection, as a real agent's would.
                        link.flush(DISCONNECT_GRACE).await;
                        self.disconnect(&mut link, &publisher).await;
                        return SessionEnd::Reboot(reboot);
                    }
                }
                _ = retry_timer(retry_at) => retry_at = None,
                event = link.poll(), if retry_at.is_none() => match event {
                    Ok(LinkEvent::Subscribed { granted: true }) => {
                        backoff = FIRST_BACKOFF;
                        self.on_subscribed(&publisher);
                    }
                    Ok(event) => self.on_event(event, &publisher, &mut job),
                    Err(e) => {
                        self.cell.set_connected(false);
                        // Only the first failure in a row is a warning: a broker outage would
                        // otherwise log one line per agent every few seconds.
                        if backoff == FIRST_BACKOFF {
                            warn!(error = %e, retry_in = ?backoff, "mqtt connection failed");
                        } else {
                            debug!(error = %e, retry_in = ?backoff, "mqtt connection failed again");
                        }
                        retry_at = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                },
            }
        }
    }

    async fn disconnect(&self, link: &mut Link, publisher: &Publisher) {
        self.cell.set_connected(false);
        if publisher.try_disconnect().is_ok() {
            let _ = timeout(DISCONNECT_GRACE, link.drain_until_disconnected()).await;
        }
        debug!("disconnected from broker");
    }

    /// The activation reboot: offline until `back_at`, then boot the right image.
    /// Returns false when shut down meanwhile.
    async fn reboot(&mut self, reboot: Reboot, shutdown: &mut watch::Receiver<bool>) -> bool {
        self.cell.set_phase(Phase::Rebooting);
        let offline_for = reboot.back_at.saturating_duration_since(Instant::now());
        info!(offline_for = ?offline_for, "rebooting to activate firmware");
        tokio::select! {
            _ = stopped(shutdown) => return false,
            _ = sleep_until(reboot.back_at) => {}
        }
        let boot = job::activate(&self.cell, &reboot);
        info!(
            firmware_updated = boot.firmware_updated,
            version = %self.cell.status().firmware_version,
            "booted"
        );
        self.pending_boot = Some((reboot.boot_msg_id, boot));
        self.cell.set_phase(Phase::Idle);
        true
    }

    fn on_event(&mut self, event: LinkEvent, publisher: &Publisher, job: &mut Option<JobFuture>) {
        match event {
            LinkEvent::Connected => {
                debug!("connected to broker, subscribing");
                if let Err(e) = publisher.try_subscribe() {
                    warn!(error = %e, "cannot queue subscription");
                }
            }
            LinkEvent::Subscribed { .. } => {
                warn!(topic = %publisher.subscription(), "broker refused the subscription");
            }
            LinkEvent::Message(inbound) => self.on_message(inbound, publisher, job),
            LinkEvent::Other => {}
        }
    }

    /// Subscribed: the agent is reachable. Announce it with a connect record, then send the
    /// `Boot!` owed from a reboot.
    fn on_subscribed(&mut self, publisher: &Publisher) {
        self.cell.set_connected(true);
        info!(topic = %self.agent_topic, "agent connected");
        let record = wme_usp::encode_mqtt_connect_record(
            &self.endpoint_id,
            &self.common.controller_endpoint_id,
            self.mqtt_version,
            &publisher.subscription(),
        );
        self.send(
            publisher,
            &self.controller_topic,
            record,
            "mqtt connect record",
        );
        if let Some((msg_id, boot)) = self.pending_boot.take() {
            let msg = wme_usp::notify_boot(&msg_id, job::BOOT_SUBSCRIPTION, true, &boot);
            let to = self.common.controller_endpoint_id.clone();
            self.send_msg(publisher, &self.controller_topic, &to, &msg, "Boot!");
        }
    }

    fn send(&self, publisher: &Publisher, topic: &str, record: Vec<u8>, what: &'static str) {
        match publisher.try_publish(topic, record) {
            Ok(()) => debug!(topic, what, "sent"),
            Err(e) => warn!(topic, what, error = %e, "cannot send"),
        }
    }

    fn send_msg(
        &self,
        publisher: &Publisher,
        topic: &str,
        to_id: &str,
        msg: &Msg,
        what: &'static str,
    ) {
        let record = wme_usp::encode_msg_record(&self.endpoint_id, to_id, msg);
        self.send(publisher, topic, record, what);
    }

    fn on_message(&mut self, inbound: Inbound, publisher: &Publisher, job: &mut Option<JobFuture>) {
        trace!(topic = %inbound.topic, bytes = inbound.payload.len(), "message received");
        let record = match wme_usp::decode_record(&inbound.payload) {
            Ok(record) => record,
            Err(e) => {
                warn!(topic = %inbound.topic, error = %e, "dropping malformed usp record");
                return;
            }
        };
        if record.to_id != self.endpoint_id {
            debug!(to_id = %record.to_id, from_id = %record.from_id, "ignoring record for another endpoint");
            return;
        }
        let RecordPayload::Msg(msg) = record.payload else {
            debug!(from_id = %record.from_id, "ignoring record without a msg");
            return;
        };
        let view = match wme_usp::view(&msg) {
            Ok(view) => view,
            Err(e) => {
                warn!(from_id = %record.from_id, error = %e, "dropping malformed usp msg");
                return;
            }
        };
        let reply = Reply {
            topic: inbound
                .reply_to
                .unwrap_or_else(|| self.controller_topic.clone()),
            to_id: record.from_id,
        };
        self.on_view(view, reply, publisher, job);
    }

    fn on_view(
        &mut self,
        view: View,
        reply: Reply,
        publisher: &Publisher,
        job: &mut Option<JobFuture>,
    ) {
        match view {
            View::Operate(req) => self.on_operate(req, reply, publisher, job),
            View::NotifyResp { msg_id, .. } => debug!(msg_id = %msg_id, "notify acknowledged"),
            View::Error {
                msg_id,
                err_code,
                err_msg,
            } => {
                warn!(msg_id = %msg_id, err_code, err_msg = %err_msg, "controller answered with an error");
            }
            View::OperateResp { msg_id, .. } => {
                debug!(msg_id = %msg_id, "ignoring unexpected operate_resp")
            }
            View::Other { msg_id, kind } if kind.ends_with("_resp") => {
                debug!(msg_id = %msg_id, kind = %kind, "ignoring unexpected response");
            }
            other => {
                let (msg_id, kind) = request_kind(&other);
                let message = format!(
                    "message {kind} is not supported; this agent handles operate and notify_resp"
                );
                debug!(msg_id = %msg_id, kind = %kind, "answering unsupported message with an error");
                let msg = wme_usp::error(&msg_id, codes::MESSAGE_NOT_SUPPORTED, &message);
                self.send_msg(publisher, &reply.topic, &reply.to_id, &msg, "error");
            }
        }
    }

    fn on_operate(
        &mut self,
        req: OperateRequest,
        reply: Reply,
        publisher: &Publisher,
        job: &mut Option<JobFuture>,
    ) {
        info!(msg_id = %req.msg_id, command = %req.command, command_key = %req.command_key, "operate received");
        let plan = {
            let state = self.cell.lock();
            job::plan_download(&req, &state.firmware)
        };
        let busy = job.is_some() && self.cell.behaviour != Behaviour::Silent;
        let answer = match (plan, busy) {
            (Err(rejection), _) => Err(rejection),
            (Ok(_), true) => Err(job::Rejection {
                code: codes::REQUEST_DENIED,
                message: "a firmware download is already in progress".to_owned(),
            }),
            (Ok(plan), false) => Ok(plan),
        };
        match answer {
            Err(rejection) => {
                warn!(msg_id = %req.msg_id, err_code = rejection.code, err_msg = %rejection.message, "operate refused");
                let msg = wme_usp::operate_resp_failure(
                    &req.msg_id,
                    &req.command,
                    rejection.code,
                    &rejection.message,
                );
                self.respond(&req, &reply, publisher, &msg);
            }
            Ok(plan) => {
                let req_obj_path = format!("{REQUEST_TABLE}{}.", self.next_request);
                let msg = wme_usp::operate_resp_accepted(&req.msg_id, &req.command, &req_obj_path);
                self.respond(&req, &reply, publisher, &msg);
                self.start_job(plan, reply.to_id, publisher, job);
            }
        }
    }

    fn respond(&self, req: &OperateRequest, reply: &Reply, publisher: &Publisher, msg: &Msg) {
        if req.send_resp {
            self.send_msg(publisher, &reply.topic, &reply.to_id, msg, "operate_resp");
        }
    }

    fn start_job(
        &mut self,
        plan: job::DownloadPlan,
        requestor: String,
        publisher: &Publisher,
        job: &mut Option<JobFuture>,
    ) {
        let request = self.next_request;
        self.next_request += 1;
        if self.cell.behaviour == Behaviour::Silent {
            debug!("silent agent accepted the download and will never report");
            self.cell
                .lock()
                .firmware
                .set_status(plan.instance, crate::firmware::ImageStatus::Downloading);
            self.cell.set_phase(Phase::Downloading);
            return;
        }
        let ctx = JobContext {
            cell: self.cell.clone(),
            publisher: publisher.clone(),
            http: self.common.http.clone(),
            delays: self.common.delays,
            endpoint_id: self.endpoint_id.clone(),
            controller_endpoint_id: self.common.controller_endpoint_id.clone(),
            controller_topic: self.controller_topic.clone(),
            requestor,
            msg_prefix: format!("{}-request-{request}", self.cell.thing_name),
        };
        *job = Some(Box::pin(job::run(ctx, plan, Instant::now())));
    }
}

/// Where and to whom a response goes.
struct Reply {
    topic: String,
    to_id: String,
}

/// The msg_id and kind name of a request the agent does not handle.
fn request_kind(view: &View) -> (String, String) {
    match view {
        View::TransferComplete(n) => (n.msg_id.clone(), "notify".to_owned()),
        View::Boot(n) => (n.msg_id.clone(), "notify".to_owned()),
        View::OperComplete(n) => (n.msg_id.clone(), "notify".to_owned()),
        View::OtherEvent(n) => (n.msg_id.clone(), "notify".to_owned()),
        View::Other { msg_id, kind } => (msg_id.clone(), kind.clone()),
        View::Operate(r) => (r.msg_id.clone(), "operate".to_owned()),
        View::OperateResp { msg_id, .. } => (msg_id.clone(), "operate_resp".to_owned()),
        View::NotifyResp { msg_id, .. } => (msg_id.clone(), "notify_resp".to_owned()),
        View::Error { msg_id, .. } => (msg_id.clone(), "error".to_owned()),
    }
}
