//! One agent's MQTT connection, over MQTT 5 or 3.1.1, behind one small interface.
//!
//! rumqttc has a separate client and event loop per protocol version; this module hides the
//! difference, including where a received request's reply-to topic travels: the MQTT 5
//! `ResponseTopic` property or, in 3.1.1, a `/reply-to=<escaped topic>` suffix of the topic name
//! (TR-369).
//!
//! What the agent publishes carries its own topic as `ResponseTopic` over MQTT 5; over 3.1.1 it
//! carries no suffix, because the controller listens on exactly `usp/v1/controller/<thing>`
//! (`+`, one level) and learns the agent's topic from the MQTT connect record instead.
//!
//! Buffers are kept small because one process runs thousands of these.

use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties, SubscribeReasonCode};
use rumqttc::{Outgoing, QoS};
use wme_usp::MqttVersion;

/// Outstanding QoS 1 publishes per connection; an agent sends at most a few at a time.
const INFLIGHT: u16 = 8;
/// Queued requests between the agent and its event loop.
const REQUEST_CAPACITY: usize = 16;
/// Largest MQTT packet accepted or sent; USP Records here are a few hundred bytes.
const MAX_PACKET: usize = 64 * 1024;
/// MQTT 5 content type of USP Records (TR-369).
const USP_CONTENT_TYPE: &str = "application/vnd.bbf.usp.msg";
/// Seconds allowed for TCP connect plus CONNACK.
const CONNECT_TIMEOUT_SECS: u64 = 10;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub client_id: String,
    pub host: String,
    pub port: u16,
    pub keep_alive: Duration,
    pub version: MqttVersion,
    /// The agent's own topic, announced as MQTT 5 `ResponseTopic` on everything it publishes.
    pub agent_topic: String,
}

/// Something the connection reports.
#[derive(Debug)]
pub enum LinkEvent {
    /// CONNACK received: time to subscribe.
    Connected,
    /// SUBACK received; `granted` is false when the broker refused the subscription.
    Subscribed { granted: bool },
    /// A message arrived on the agent's topic.
    Message(Inbound),
    /// Anything else (acks, pings, our own outgoing packets).
    Other,
}

/// A received USP message and where to answer it.
#[derive(Debug)]
pub struct Inbound {
    pub topic: String,
    pub payload: Bytes,
    /// MQTT 5 `ResponseTopic`, or the 3.1.1 `reply-to=` suffix of the topic.
    pub reply_to: Option<String>,
}

/// Why the connection dropped or could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("mqtt 5 connection: {0}")]
    V5(#[from] v5::ConnectionError),
    #[error("mqtt 3.1.1 connection: {0}")]
    V311(#[from] rumqttc::ConnectionError),
}

/// Why a publish or subscribe could not be queued (the request itself is dropped, so the
/// error stays small).
#[derive(Debug, thiserror::Error)]
#[error("mqtt client: {0}")]
pub struct SendError(String);

impl From<v5::ClientError> for SendError {
    fn from(e: v5::ClientError) -> Self {
        SendError(e.to_string())
    }
}

impl From<rumqttc::ClientError> for SendError {
    fn from(e: rumqttc::ClientError) -> Self {
        SendError(e.to_string())
    }
}

/// The event loop of one connection; must be polled for anything to move.
pub enum Link {
    V5(Box<v5::EventLoop>),
    V311(Box<rumqttc::EventLoop>),
}

/// A cheap, cloneable handle for publishing on a [`Link`].
#[derive(Clone)]
pub enum Publisher {
    V5 {
        client: v5::AsyncClient,
        agent_topic: String,
    },
    V311 {
        client: rumqttc::AsyncClient,
        agent_topic: String,
    },
}

/// Creates a connection; nothing goes on the wire until [`Link::poll`] is called.
pub fn open(options: &LinkOptions) -> (Link, Publisher) {
    let agent_topic = options.agent_topic.clone();
    match options.version {
        MqttVersion::V5 => {
            let (client, events) = v5::AsyncClient::new(v5_options(options), REQUEST_CAPACITY);
            let publisher = Publisher::V5 {
                client,
                agent_topic,
            };
            (Link::V5(Box::new(events)), publisher)
        }
        MqttVersion::V3_1_1 => {
            let (client, mut events) =
                rumqttc::AsyncClient::new(v311_options(options), REQUEST_CAPACITY);
            events
                .network_options
                .set_connection_timeout(CONNECT_TIMEOUT_SECS);
            let publisher = Publisher::V311 {
                client,
                agent_topic,
            };
            (Link::V311(Box::new(events)), publisher)
        }
    }
}

fn v5_options(o: &LinkOptions) -> v5::MqttOptions {
    let mut options = v5::MqttOptions::new(&o.client_id, &o.host, o.port);
    options
        .set_keep_alive(o.keep_alive)
        .set_clean_start(true)
        .set_connection_timeout(CONNECT_TIMEOUT_SECS)
        .set_max_packet_size(Some(MAX_PACKET as u32))
        .set_outgoing_inflight_upper_limit(INFLIGHT);
    options
}

fn v311_options(o: &LinkOptions) -> rumqttc::MqttOptions {
    let mut options = rumqttc::MqttOptions::new(&o.client_id, &o.host, o.port);
    options
        .set_keep_alive(o.keep_alive)
        .set_clean_session(true)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_inflight(INFLIGHT);
    options
}

impl Link {
    /// Drives the connection (connecting or reconnecting when needed) until something happens.
    pub async fn poll(&mut self) -> Result<LinkEvent, LinkError> {
        match self {
            Link::V5(events) => Ok(v5_event(events.poll().await?)),
            Link::V311(events) => Ok(v311_event(events.poll().await?)),
        }
    }

    /// Polls until every QoS 1 publish queued so far has been acknowledged by the broker, or
    /// `grace` passes. "Queued so far" is judged by a quiet spell: nothing in flight and no
    /// event for [`QUIET`], which the event loop needs only to pick up a queued request.
    pub async fn flush(&mut self, grace: std::time::Duration) {
        const QUIET: std::time::Duration = std::time::Duration::from_millis(20);
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            let polled = match self {
                Link::V5(events) => tokio::time::timeout(QUIET, events.poll())
                    .await
                    .map(|r| r.is_ok()),
                Link::V311(events) => tokio::time::timeout(QUIET, events.poll())
                    .await
                    .map(|r| r.is_ok()),
            };
            match polled {
                Ok(true) => continue,
                Ok(false) => return,
                Err(_quiet) if self.inflight() == 0 => return,
                Err(_quiet) => continue,
            }
        }
    }

    fn inflight(&self) -> u16 {
        match self {
            Link::V5(events) => events.state.inflight(),
            Link::V311(events) => events.state.inflight(),
        }
    }

    /// Polls until our DISCONNECT has been written or the connection fails.
    pub async fn drain_until_disconnected(&mut self) {
        loop {
            let sent = match self {
                Link::V5(events) => match events.poll().await {
                    Ok(v5::Event::Outgoing(Outgoing::Disconnect)) => true,
                    Ok(_) => false,
                    Err(_) => true,
                },
                Link::V311(events) => match events.poll().await {
                    Ok(rumqttc::Event::Outgoing(Outgoing::Disconnect)) => true,
                    Ok(_) => false,
                    Err(_) => true,
                },
            };
            if sent {
                return;
            }
        }
    }
}

fn v5_event(event: v5::Event) -> LinkEvent {
    let v5::Event::Incoming(packet) = event else {
        return LinkEvent::Other;
    };
    match packet {
        Packet5::ConnAck(_) => LinkEvent::Connected,
        Packet5::SubAck(ack) => LinkEvent::Subscribed {
            granted: ack
                .return_codes
                .iter()
                .all(|code| matches!(code, SubscribeReasonCode::Success(_))),
        },
        Packet5::Publish(publish) => LinkEvent::Message(Inbound {
            topic: String::from_utf8_lossy(&publish.topic).into_owned(),
            reply_to: publish.properties.and_then(|p| p.response_topic),
            payload: publish.payload,
        }),
        _ => LinkEvent::Other,
    }
}

fn v311_event(event: rumqttc::Event) -> LinkEvent {
    let rumqttc::Event::Incoming(packet) = event else {
        return LinkEvent::Other;
    };
    match packet {
        rumqttc::Packet::ConnAck(_) => LinkEvent::Connected,
        rumqttc::Packet::SubAck(ack) => LinkEvent::Subscribed {
            granted: ack
                .return_codes
                .iter()
                .all(|code| matches!(code, rumqttc::SubscribeReasonCode::Success(_))),
        },
        rumqttc::Packet::Publish(publish) => {
            let (_, reply_to) = wme_usp::mqtt::split_reply_to(&publish.topic);
            LinkEvent::Message(Inbound {
                reply_to,
                topic: publish.topic,
                payload: publish.payload,
            })
        }
        _ => LinkEvent::Other,
    }
}

impl Publisher {
    /// The topic filter this agent subscribes to: its topic, plus `/#` in 3.1.1 so that
    /// reply-to suffixes match.
    pub fn subscription(&self) -> String {
        match self {
            Publisher::V5 { agent_topic, .. } => agent_topic.clone(),
            Publisher::V311 { agent_topic, .. } => format!("{agent_topic}/#"),
        }
    }

    /// Queues the subscription to the agent's topic without waiting.
    pub fn try_subscribe(&self) -> Result<(), SendError> {
        let filter = self.subscription();
        match self {
            Publisher::V5 { client, .. } => client.try_subscribe(filter, QoS5::AtLeastOnce)?,
            Publisher::V311 { client, .. } => client.try_subscribe(filter, QoS::AtLeastOnce)?,
        }
        Ok(())
    }

    /// Publishes a USP Record at QoS 1, waiting for room in the request queue. MQTT 3.1.1 has no
    /// ResponseTopic property, so the agent's topic goes in a `/reply-to=` suffix (TR-369).
    pub async fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), SendError> {
        match self {
            Publisher::V5 {
                client,
                agent_topic,
            } => {
                let props = usp_properties(agent_topic);
                client
                    .publish_with_properties(topic, QoS5::AtLeastOnce, false, payload, props)
                    .await?
            }
            Publisher::V311 {
                client,
                agent_topic,
            } => {
                let topic = wme_usp::mqtt::topic_with_reply_to(topic, agent_topic);
                client
                    .publish(topic, QoS::AtLeastOnce, false, payload)
                    .await?
            }
        }
        Ok(())
    }

    /// Publishes a USP Record at QoS 1 without waiting; fails when the request queue is full.
    ///
    /// Used from the code that polls the event loop, where waiting for queue room would wait
    /// for itself.
    pub fn try_publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), SendError> {
        match self {
            Publisher::V5 {
                client,
                agent_topic,
            } => {
                let props = usp_properties(agent_topic);
                client.try_publish_with_properties(
                    topic,
                    QoS5::AtLeastOnce,
                    false,
                    payload,
                    props,
                )?
            }
            Publisher::V311 {
                client,
                agent_topic,
            } => {
                let topic = wme_usp::mqtt::topic_with_reply_to(topic, agent_topic);
                client.try_publish(topic, QoS::AtLeastOnce, false, payload)?
            }
        }
        Ok(())
    }

    /// Queues a DISCONNECT without waiting.
    pub fn try_disconnect(&self) -> Result<(), SendError> {
        match self {
            Publisher::V5 { client, .. } => client.try_disconnect()?,
            Publisher::V311 { client, .. } => client.try_disconnect()?,
        }
        Ok(())
    }
}

fn usp_properties(agent_topic: &str) -> PublishProperties {
    PublishProperties {
        response_topic: Some(agent_topic.to_owned()),
        content_type: Some(USP_CONTENT_TYPE.to_owned()),
        ..PublishProperties::default()
    }
}
