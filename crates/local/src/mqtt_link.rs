//! The controller's MQTT connection to the embedded broker: it receives every agent's Records
//! on `usp/v1/controller/#` (the local counterpart of the IoT rule that routes them to the
//! device-message handler) and publishes Records to agents.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};
use wme_workflow::ports::{AgentAddress, DeviceChannel, Outbound, PortError};

/// The filter the controller subscribes to: every agent's controller topic, with or without the
/// `/reply-to=` suffix MQTT 3.1.1 agents may add.
pub const CONTROLLER_FILTER: &str = "usp/v1/controller/#";

/// A message an agent published.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Topic name.
    pub topic: String,
    /// Payload bytes.
    pub payload: Bytes,
}

/// Why the link could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker did not accept the connection and subscription in time.
    #[error("controller could not connect to the broker at {addr}: {reason}")]
    Connect {
        /// Broker address.
        addr: SocketAddr,
        /// What happened.
        reason: String,
    },
}

/// The controller's connection.
pub struct MqttLink {
    client: AsyncClient,
    /// Agent addresses learned from connect records; read on every publish.
    addresses: RwLock<HashMap<String, AgentAddress>>,
}

impl std::fmt::Debug for MqttLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttLink").finish_non_exhaustive()
    }
}

impl MqttLink {
    /// Connects as `client_id`, subscribes, and forwards what agents publish to `inbound`.
    pub async fn connect(
        broker: SocketAddr,
        client_id: &str,
        inbound: mpsc::UnboundedSender<Inbound>,
    ) -> Result<MqttLink, LinkError> {
        let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(Some(1024 * 1024));
        options.set_outgoing_inflight_upper_limit(1000);
        let (client, eventloop) = AsyncClient::new(options, 4096);
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::spawn(run(client.clone(), eventloop, inbound, Some(ready_tx)));
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                return Err(LinkError::Connect {
                    addr: broker,
                    reason: "no CONNACK and SUBACK within 10 s".into(),
                });
            }
        }
        info!(broker = %broker, client_id = %client_id, "controller connected");
        Ok(MqttLink {
            client,
            addresses: RwLock::new(HashMap::new()),
        })
    }

    /// Disconnects.
    pub async fn disconnect(&self) {
        let _ = self.client.disconnect().await;
    }
}

async fn run(
    client: AsyncClient,
    mut eventloop: EventLoop,
    inbound: mpsc::UnboundedSender<Inbound>,
    mut ready: Option<oneshot::Sender<()>>,
) {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if let Err(e) = client.subscribe(CONTROLLER_FILTER, QoS::AtLeastOnce).await {
                    warn!(error = %e, "controller subscribe failed");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                if inbound
                    .send(Inbound {
                        topic,
                        payload: publish.payload,
                    })
                    .is_err()
                {
                    debug!("inbound receiver gone, controller link stops");
                    return;
                }
            }
            Ok(Event::Incoming(Packet::Disconnect(_))) => {
                warn!("broker disconnected the controller");
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                debug!("controller disconnected");
                return;
            }
            Ok(_) => {}
            Err(rumqttc::v5::ConnectionError::RequestsDone) => return,
            Err(error) => {
                warn!(error = %error, "controller connection error, reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

#[async_trait]
impl DeviceChannel for MqttLink {
    async fn publish(&self, message: Outbound) -> Result<(), PortError> {
        let properties = PublishProperties {
            response_topic: message.response_topic,
            ..Default::default()
        };
        self.client
            .publish_with_properties(
                message.topic,
                QoS::AtLeastOnce,
                false,
                message.payload,
                properties,
            )
            .await
            .map_err(|e| PortError::Unavailable(format!("mqtt publish failed: {e}")))
    }

    async fn agent_address(&self, thing_name: &str) -> Result<Option<AgentAddress>, PortError> {
        Ok(self
            .addresses
            .read()
            .expect("address lock")
            .get(thing_name)
            .cloned())
    }

    async fn remember_agent_address(
        &self,
        thing_name: &str,
        address: AgentAddress,
    ) -> Result<(), PortError> {
        self.addresses
            .write()
            .expect("address lock")
            .insert(thing_name.to_string(), address);
        Ok(())
    }
}
