//! Test fixtures: a real broker, a real HTTP file server and a test controller on 127.0.0.1,
//! plus a simulator wired to them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use device_agent_simulator::{
    AgentSpec, AgentStatus, Simulator, SimulatorConfig, StepDelays, build_image,
};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use wme_broker::{Broker, BrokerConfig, ConnectionEvent};
use wme_usp::{FirmwareDownload, Msg, RecordEnvelope, RecordPayload, View};

pub const CONTROLLER_ID: &str = "self::wme-controller";
/// Where the test controller asks for responses (MQTT 5 ResponseTopic).
pub const REPLY_TOPIC: &str = "usp/v1/controller/test-replies";
pub const IMAGE_2: &str = "Device.DeviceInfo.FirmwareImage.2.";
pub const DOWNLOAD_2: &str = "Device.DeviceInfo.FirmwareImage.2.Download()";
/// How long any single expected message may take; generous for a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(15);
pub const BASIC_AUTH: &str = "Basic Znc6czNjcmV0"; // fw:s3cret
pub const DELAYS: StepDelays = StepDelays {
    transfer: Duration::from_millis(40),
    oper_complete: Duration::from_millis(80),
    boot: Duration::from_millis(120),
};

/// A message the controller received.
#[derive(Debug)]
pub struct Received {
    pub topic: String,
    pub response_topic: Option<String>,
    pub record: RecordEnvelope,
}

impl Received {
    pub fn msg(&self) -> &Msg {
        match &self.record.payload {
            RecordPayload::Msg(msg) => msg,
            other => panic!("expected a msg record on {}, got {other:?}", self.topic),
        }
    }

    pub fn view(&self) -> View {
        wme_usp::view(self.msg()).expect("agent sent a valid usp msg")
    }
}

/// A controller on the broker, subscribed to `usp/v1/controller/#`.
pub struct Controller {
    client: AsyncClient,
    inbox: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Controller {
    pub async fn connect(broker: SocketAddr) -> Controller {
        let mut options =
            MqttOptions::new("test-controller", broker.ip().to_string(), broker.port());
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, 64);
        let (tx, inbox) = mpsc::unbounded_channel();
        let (ready_tx, ready) = oneshot::channel();
        let subscriber = client.clone();
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        subscriber
                            .subscribe("usp/v1/controller/#", QoS::AtLeastOnce)
                            .await
                            .unwrap();
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(ready) = ready_tx.take() {
                            let _ = ready.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8(p.topic.to_vec()).unwrap();
                        let record = wme_usp::decode_record(&p.payload)
                            .unwrap_or_else(|e| panic!("agent sent a bad record on {topic}: {e}"));
                        let response_topic = p.properties.and_then(|p| p.response_topic);
                        let _ = tx.send(Received {
                            topic,
                            response_topic,
                            record,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(PATIENCE, ready)
            .await
            .expect("test controller subscribed in time")
            .unwrap();
        Controller {
            client,
            inbox,
            task,
        }
    }

    /// The next message, failing the test after [`PATIENCE`].
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.inbox.recv())
            .await
            .expect("a message from an agent in time")
            .expect("controller inbox open")
    }

    /// Messages received so far and not yet taken.
    pub fn pending(&mut self) -> Vec<Received> {
        let mut all = Vec::new();
        while let Ok(r) = self.inbox.try_recv() {
            all.push(r);
        }
        all
    }

    /// Publishes raw bytes on `topic` with an MQTT 5 ResponseTopic.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>, response_topic: Option<&str>) {
        let properties = PublishProperties {
            response_topic: response_topic.map(str::to_owned),
            ..Default::default()
        };
        self.client
            .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
            .await
            .unwrap();
    }

    /// Sends a Msg in a Record from the controller to `thing`'s agent, asking for responses on
    /// [`REPLY_TOPIC`].
    pub async fn send(&self, thing: &str, msg: &Msg) {
        let record = wme_usp::encode_msg_record(CONTROLLER_ID, &format!("self::{thing}"), msg);
        self.publish(&format!("usp/v1/agent/{thing}"), record, Some(REPLY_TOPIC))
            .await;
    }

    pub async fn send_download(&self, thing: &str, msg_id: &str, key: &str, dl: &FirmwareDownload) {
        self.send(thing, &wme_usp::operate_download(msg_id, key, dl))
            .await;
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP file server with firmware images.
pub struct FileServer {
    pub addr: SocketAddr,
    pub images: Arc<HashMap<String, Vec<u8>>>,
    task: JoinHandle<()>,
}

impl FileServer {
    /// Serves `/fw/<name>` openly and `/secure/<name>` with basic auth `fw:s3cret`.
    pub async fn start() -> FileServer {
        let mut images = HashMap::new();
        images.insert("1.2.3.bin".to_owned(), build_image("1.2.3", &[0xA5; 4096]));
        images.insert(
            "plain.bin".to_owned(),
            b"#!/bin/sh\necho not firmware\n".to_vec(),
        );
        let images = Arc::new(images);
        let app = Router::new()
            .route("/fw/{name}", get(open_file))
            .route("/secure/{name}", get(secure_file))
            .with_state(images.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FileServer { addr, images, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    pub fn image(&self, name: &str) -> Vec<u8> {
        self.images[name].clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Images = Arc<HashMap<String, Vec<u8>>>;

async fn open_file(
    State(images): State<Images>,
    Path(name): Path<String>,
) -> (StatusCode, Vec<u8>) {
    match images.get(&name) {
        Some(bytes) => (StatusCode::OK, bytes.clone()),
        None => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

async fn secure_file(
    State(images): State<Images>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Vec<u8>) {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(BASIC_AUTH) {
        return (StatusCode::UNAUTHORIZED, Vec::new());
    }
    open_file(State(images), Path(name)).await
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A Download() of `url` into image 2 with size and SHA-256 of `image`.
pub fn download(url: &str, image: &[u8], auto_activate: bool) -> FirmwareDownload {
    FirmwareDownload {
        obj_path: IMAGE_2.to_owned(),
        url: url.to_owned(),
        auto_activate,
        username: None,
        password: None,
        file_size: Some(image.len() as u64),
        checksum_algorithm: Some("SHA-256".to_owned()),
        checksum: Some(sha256_hex(image)),
    }
}

/// Broker, file server and controller, plus a simulator once [`Harness::simulate`] is called.
pub struct Harness {
    pub broker: Broker,
    pub files: FileServer,
    pub controller: Controller,
    pub events: tokio::sync::broadcast::Receiver<ConnectionEvent>,
    pub sim: Option<Simulator>,
}

impl Harness {
    pub async fn start() -> Harness {
        let broker = Broker::start("127.0.0.1:0".parse().unwrap(), BrokerConfig::default())
            .await
            .expect("broker starts");
        let events = broker.events();
        let files = FileServer::start().await;
        let controller = Controller::connect(broker.local_addr()).await;
        Harness {
            broker,
            files,
            controller,
            events,
            sim: None,
        }
    }

    pub fn config(&self, agents: Vec<AgentSpec>) -> SimulatorConfig {
        SimulatorConfig::new(self.broker.local_addr(), agents, DELAYS)
    }

    /// Starts `agents`, waits until the connectable ones are connected, and checks that each
    /// announced itself with an MQTT connect record.
    pub async fn simulate(&mut self, agents: Vec<AgentSpec>) {
        let online: Vec<AgentSpec> = agents
            .iter()
            .filter(|a| a.behaviour != device_agent_simulator::Behaviour::Offline)
            .cloned()
            .collect();
        let sim = Simulator::start(self.config(agents))
            .await
            .expect("simulator starts");
        let connected = sim.wait_connected(PATIENCE).await.expect("agents connect");
        assert_eq!(connected, online.len());
        self.sim = Some(sim);
        for _ in &online {
            let r = self.controller.next().await;
            assert!(
                matches!(r.record.payload, RecordPayload::MqttConnect { .. }),
                "expected a connect record first, got {r:?}"
            );
        }
    }

    pub fn sim(&self) -> &Simulator {
        self.sim.as_ref().expect("simulate() was called")
    }

    pub fn status(&self, thing: &str) -> AgentStatus {
        self.sim().status(thing).expect("agent exists")
    }

    /// Polls the snapshot until `check` holds, failing after [`PATIENCE`].
    pub async fn wait_for_status(
        &self,
        thing: &str,
        check: impl Fn(&AgentStatus) -> bool,
    ) -> AgentStatus {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let status = self.status(thing);
            if check(&status) {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "agent {thing} never reached the expected state; last {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The broker's connection events seen so far for `client_id`, as (kind, reason).
    pub fn connection_events(&mut self, client_id: &str) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            match event {
                ConnectionEvent::Connected { client_id: id, .. } if id == client_id => {
                    seen.push("connected".to_owned())
                }
                ConnectionEvent::Disconnected {
                    client_id: id,
                    reason,
                    ..
                } if id == client_id => seen.push(format!("disconnected: {reason}")),
                _ => {}
            }
        }
        seen
    }

    pub async fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        self.broker.shutdown().await;
    }
}
