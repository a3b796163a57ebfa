//! Test clients: rumqttc MQTT 5 and MQTT 3.1.1 clients whose incoming packets arrive on a
//! channel, raw-packet helpers, and waits that end in a timeout instead of sleeping.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::v5;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use wme_broker::{Broker, BrokerConfig, ConnectionEvent};

/// Long enough for a loaded two-core machine; only reached when a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn start(config: BrokerConfig) -> Broker {
    let bind = SocketAddr::from(([127, 0, 0, 1], 0));
    Broker::start(bind, config).await.expect("broker starts")
}

pub async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The next connection event, skipping none.
pub async fn next_event(events: &mut broadcast::Receiver<ConnectionEvent>) -> ConnectionEvent {
    within("a connection event", events.recv())
        .await
        .expect("event channel open")
}

pub fn options5(broker: &Broker, client_id: &str) -> v5::MqttOptions {
    let addr = broker.local_addr();
    v5::MqttOptions::new(client_id, addr.ip().to_string(), addr.port())
}

pub fn options3(broker: &Broker, client_id: &str) -> rumqttc::MqttOptions {
    let addr = broker.local_addr();
    rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port())
}

/// An MQTT 5 client; `incoming` carries every received packet and, last, the error that ended
/// the connection.
pub struct Client5 {
    pub client: v5::AsyncClient,
    pub incoming: mpsc::UnboundedReceiver<Result<v5::Incoming, v5::ConnectionError>>,
}

impl Client5 {
    pub fn spawn(options: v5::MqttOptions) -> Self {
        let (client, mut eventloop) = v5::AsyncClient::new(options, 16);
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    // A client closes its connection after DISCONNECT; rumqttc leaves that to us.
                    Ok(v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(v5::Event::Incoming(packet)) => {
                        if tx.send(Ok(packet)).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        Self { client, incoming }
    }

    /// Connects and waits for a successful CONNACK.
    pub async fn connect(options: v5::MqttOptions) -> Self {
        let mut client = Self::spawn(options);
        client
            .next("CONNACK", |p| {
                matches!(p, v5::Incoming::ConnAck(_)).then_some(())
            })
            .await;
        client
    }

    /// Waits for the first packet `pick` accepts, skipping the others.
    pub async fn next<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&v5::Incoming) -> Option<T>,
    ) -> T {
        within(what, async {
            loop {
                match self.incoming.recv().await {
                    Some(Ok(packet)) => {
                        if let Some(found) = pick(&packet) {
                            return found;
                        }
                    }
                    Some(Err(e)) => panic!("connection ended while waiting for {what}: {e}"),
                    None => panic!("client task ended while waiting for {what}"),
                }
            }
        })
        .await
    }

    /// Waits for the error that ends the connection, skipping packets.
    pub async fn ended(&mut self) -> v5::ConnectionError {
        within("the connection to end", async {
            loop {
                match self.incoming.recv().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return e,
                    None => panic!("client task ended without an error"),
                }
            }
        })
        .await
    }

    /// Sends DISCONNECT and waits until the client has closed its connection.
    pub async fn disconnect(mut self) {
        self.client.disconnect().await.expect("disconnect queued");
        within("the client to close", async {
            while self.incoming.recv().await.is_some() {}
        })
        .await;
    }

    pub async fn subscribe(&mut self, filter: &str) -> v5::mqttbytes::v5::SubscribeReasonCode {
        self.client
            .subscribe(filter, v5::mqttbytes::QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        self.next("SUBACK", |p| match p {
            v5::Incoming::SubAck(ack) => Some(ack.return_codes[0]),
            _ => None,
        })
        .await
    }

    pub async fn next_publish(&mut self) -> v5::mqttbytes::v5::Publish {
        self.next("PUBLISH", |p| match p {
            v5::Incoming::Publish(publish) => Some(publish.clone()),
            _ => None,
        })
        .await
    }
}

/// An MQTT 3.1.1 client; `incoming` as for [`Client5`].
pub struct Client3 {
    pub client: rumqttc::AsyncClient,
    pub incoming: mpsc::UnboundedReceiver<Result<rumqttc::Incoming, rumqttc::ConnectionError>>,
}

impl Client3 {
    pub fn spawn(options: rumqttc::MqttOptions) -> Self {
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 16);
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(rumqttc::Event::Incoming(packet)) => {
                        if tx.send(Ok(packet)).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        break;
                    }
                }
            }
        });
        Self { client, incoming }
    }

    pub async fn connect(options: rumqttc::MqttOptions) -> Self {
        let mut client = Self::spawn(options);
        client
            .next("CONNACK", |p| {
                matches!(p, rumqttc::Incoming::ConnAck(_)).then_some(())
            })
            .await;
        client
    }

    pub async fn next<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&rumqttc::Incoming) -> Option<T>,
    ) -> T {
        within(what, async {
            loop {
                match self.incoming.recv().await {
                    Some(Ok(packet)) => {
                        if let Some(found) = pick(&packet) {
                            return found;
                        }
                    }
                    Some(Err(e)) => panic!("connection ended while waiting for {what}: {e}"),
                    None => panic!("client task ended while waiting for {what}"),
                }
            }
        })
        .await
    }

    pub async fn ended(&mut self) -> rumqttc::ConnectionError {
        within("the connection to end", async {
            loop {
                match self.incoming.recv().await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return e,
                    None => panic!("client task ended without an error"),
                }
            }
        })
        .await
    }

    pub async fn subscribe(&mut self, filter: &str) -> rumqttc::SubscribeReasonCode {
        self.client
            .subscribe(filter, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe queued");
        self.next("SUBACK", |p| match p {
            rumqttc::Incoming::SubAck(ack) => Some(ack.return_codes[0]),
            _ => None,
        })
        .await
    }

    pub async fn next_publish(&mut self) -> rumqttc::Publish {
        self.next("PUBLISH", |p| match p {
            rumqttc::Incoming::Publish(publish) => Some(publish.clone()),
            _ => None,
        })
        .await
    }
}

/// A CONNECT packet built by hand, for what rumqttc will not send (MQTT 5 keep-alive 0).
pub fn raw_connect(protocol_level: u8, client_id: &str, keep_alive: u16) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', protocol_level, 0b0000_0010];
    body.extend_from_slice(&keep_alive.to_be_bytes());
    if protocol_level == 5 {
        body.push(0); // no CONNECT properties
    }
    let id_len = u16::try_from(client_id.len()).expect("short client id");
    body.extend_from_slice(&id_len.to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    let remaining = u8::try_from(body.len()).expect("fits a one-byte remaining length");
    let mut packet = vec![0x10, remaining];
    packet.extend_from_slice(&body);
    packet
}

/// Opens a TCP connection, sends `connect` and returns the stream and the CONNACK's
/// reason/return code.
pub async fn raw_session(broker: &Broker, connect: &[u8]) -> (TcpStream, u8) {
    let mut stream = TcpStream::connect(broker.local_addr())
        .await
        .expect("tcp connects");
    stream.write_all(connect).await.expect("connect sent");
    let header = read_packet_header(&mut stream).await;
    assert_eq!(header.0, 0x20, "expected a CONNACK packet type");
    let mut body = vec![0; header.1];
    within("the CONNACK body", stream.read_exact(&mut body))
        .await
        .expect("connack body read");
    (stream, body[1])
}

/// Reads a fixed header: the packet type byte and the remaining length.
pub async fn read_packet_header(stream: &mut TcpStream) -> (u8, usize) {
    let kind = within("a packet", stream.read_u8())
        .await
        .expect("packet type read");
    let mut length = 0usize;
    for shift in (0..28).step_by(7) {
        let byte = stream.read_u8().await.expect("remaining length read");
        length |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            break;
        }
    }
    (kind, length)
}

/// Asserts the next event is `Connected` for `client_id`; returns its protocol level.
pub async fn expect_connected(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    client_id: &str,
) -> u8 {
    match next_event(events).await {
        ConnectionEvent::Connected {
            client_id: id,
            protocol_level,
            ..
        } if id == client_id => protocol_level,
        other => panic!("expected {client_id} to connect, got {other:?}"),
    }
}

/// Asserts the next event is `Disconnected` for `client_id`; returns its reason.
pub async fn expect_disconnected(
    events: &mut broadcast::Receiver<ConnectionEvent>,
    client_id: &str,
) -> String {
    match next_event(events).await {
        ConnectionEvent::Disconnected {
            client_id: id,
            reason,
            ..
        } if id == client_id => reason,
        other => panic!("expected {client_id} to disconnect, got {other:?}"),
    }
}
