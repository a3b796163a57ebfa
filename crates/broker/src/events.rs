//! Connection lifecycle events and the presence table that orders them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use rmqtt::codec::v5::PublishAckReason;
use rmqtt::net::MqttError;
use rmqtt::types::{Id, Reason};
use tokio::sync::{broadcast, watch};

/// A client's connection came up or went down.
///
/// Per client id the events alternate `Connected`, `Disconnected`, `Connected`, ...: when a
/// client reconnects with the same id while its old connection is still open (a session
/// take-over), the old connection's close is not reported, because the client never went
/// offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// The broker accepted the client's CONNECT (sent just before the CONNACK goes out).
    Connected {
        client_id: String,
        /// 4 for MQTT 3.1.1, 5 for MQTT 5 (3 for the legacy MQTT 3.1).
        protocol_level: u8,
        at: SystemTime,
    },
    /// The client's connection closed.
    Disconnected {
        client_id: String,
        /// Why, one of: `client_disconnect` (the client sent DISCONNECT), `connection_lost`
        /// (TCP closed or failed without DISCONNECT), `keepalive_timeout`,
        /// `session_taken_over` (a new connection with the same client id replaced it),
        /// `publish_not_authorized` (an MQTT 3.1.1 client published to a forbidden topic),
        /// `broker_shutdown`, `protocol_error: <detail>`, or the library's own text for
        /// rarer causes.
        reason: String,
        at: SystemTime,
    },
}

/// Which connection currently speaks for each client id; emits the events.
///
/// A std mutex: it is held for a map update and a non-blocking channel send, never across an
/// await, and taking it in the same critical section as the send keeps the event order equal
/// to the table's order of changes.
pub(crate) struct Presence {
    online: Mutex<HashMap<String, Id>>,
    events: broadcast::Sender<ConnectionEvent>,
    /// How many clients are online, so shutdown can wait for zero without polling.
    count: watch::Sender<usize>,
}

impl Presence {
    pub(crate) fn new(capacity: usize) -> Self {
        let (events, _) = broadcast::channel(capacity);
        let (count, _) = watch::channel(0);
        Self {
            online: Mutex::new(HashMap::new()),
            events,
            count,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.events.subscribe()
    }

    pub(crate) fn count(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    pub(crate) fn connected_clients(&self) -> Vec<String> {
        let online = self.online.lock().unwrap_or_else(|e| e.into_inner());
        let mut clients: Vec<String> = online.keys().cloned().collect();
        clients.sort();
        clients
    }

    pub(crate) fn connected(&self, id: &Id, protocol_level: u8) {
        let client_id = id.client_id.to_string();
        let mut online = self.online.lock().unwrap_or_else(|e| e.into_inner());
        online.insert(client_id.clone(), id.clone());
        self.count.send_replace(online.len());
        tracing::debug!(client = %client_id, protocol_level, "mqtt client connected");
        // An error only means nobody is listening right now, which is allowed.
        let _ = self.events.send(ConnectionEvent::Connected {
            client_id,
            protocol_level,
            at: SystemTime::now(),
        });
    }

    pub(crate) fn disconnected(&self, id: &Id, reason: &Reason) {
        let client_id = id.client_id.to_string();
        let mut online = self.online.lock().unwrap_or_else(|e| e.into_inner());
        if online.get(&client_id) != Some(id) {
            tracing::debug!(client = %client_id, "replaced mqtt connection closed");
            return;
        }
        online.remove(&client_id);
        self.count.send_replace(online.len());
        let reason = describe(reason);
        tracing::debug!(client = %client_id, reason = %reason, "mqtt client disconnected");
        let _ = self.events.send(ConnectionEvent::Disconnected {
            client_id,
            reason,
            at: SystemTime::now(),
        });
    }
}

/// A short, stable description of why a connection closed.
fn describe(reason: &Reason) -> String {
    match reason {
        Reason::Reasons(all) => all
            .first()
            .map_or_else(|| "connection_lost".to_owned(), describe),
        Reason::ConnectDisconnect(_) => "client_disconnect".to_owned(),
        Reason::ConnectRemoteClose
        | Reason::ConnectReadWriteError
        | Reason::ConnectReadWriteTimeout => "connection_lost".to_owned(),
        Reason::ConnectKeepaliveTimeout => "keepalive_timeout".to_owned(),
        Reason::ConnectKicked(true) => "broker_shutdown".to_owned(),
        Reason::ConnectKicked(false) => "session_taken_over".to_owned(),
        Reason::MqttError(MqttError::PublishAckReason(PublishAckReason::NotAuthorized, _)) => {
            "publish_not_authorized".to_owned()
        }
        Reason::ProtocolError(detail) => format!("protocol_error: {detail}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(client_id: &str, port: u16) -> Id {
        let remote = ([127, 0, 0, 1], port).into();
        Id::new(0, 1883, None, Some(remote), client_id.into(), None)
    }

    fn next(rx: &mut broadcast::Receiver<ConnectionEvent>) -> ConnectionEvent {
        rx.try_recv().expect("an event was sent")
    }

    #[test]
    fn reasons_list_is_described_by_its_first_cause() {
        let reason = Reason::Reasons(vec![
            Reason::ConnectKeepaliveTimeout,
            Reason::ConnectRemoteClose,
        ]);
        assert_eq!(describe(&reason), "keepalive_timeout");
        assert_eq!(describe(&Reason::Reasons(vec![])), "connection_lost");
    }

    #[test]
    fn refused_publish_is_described_as_not_authorized() {
        let refused = MqttError::PublishAckReason(PublishAckReason::NotAuthorized, "no".into());
        assert_eq!(
            describe(&Reason::MqttError(refused)),
            "publish_not_authorized"
        );
    }

    #[test]
    fn shutdown_and_take_over_kicks_are_told_apart() {
        assert_eq!(describe(&Reason::ConnectKicked(true)), "broker_shutdown");
        assert_eq!(
            describe(&Reason::ConnectKicked(false)),
            "session_taken_over"
        );
    }

    #[test]
    fn close_of_a_replaced_connection_is_not_reported() {
        let presence = Presence::new(8);
        let mut rx = presence.subscribe();
        let (old, new) = (id("agent-1", 40000), id("agent-1", 40001));

        presence.connected(&old, 5);
        presence.connected(&new, 5);
        presence.disconnected(&old, &Reason::ConnectKicked(false));

        assert!(matches!(next(&mut rx), ConnectionEvent::Connected { .. }));
        assert!(matches!(next(&mut rx), ConnectionEvent::Connected { .. }));
        assert!(rx.try_recv().is_err());
        assert_eq!(presence.connected_clients(), vec!["agent-1".to_owned()]);
        assert_eq!(*presence.count().borrow(), 1);
    }

    #[test]
    fn close_of_the_current_connection_is_reported_with_its_reason() {
        let presence = Presence::new(8);
        let mut rx = presence.subscribe();
        let conn = id("agent-2", 40002);

        presence.connected(&conn, 4);
        presence.disconnected(&conn, &Reason::ConnectRemoteClose);

        let ConnectionEvent::Connected {
            client_id,
            protocol_level,
            ..
        } = next(&mut rx)
        else {
            panic!("expected Connected first");
        };
        assert_eq!((client_id.as_str(), protocol_level), ("agent-2", 4));
        let ConnectionEvent::Disconnected {
            client_id, reason, ..
        } = next(&mut rx)
        else {
            panic!("expected Disconnected second");
        };
        assert_eq!(
            (client_id.as_str(), reason.as_str()),
            ("agent-2", "connection_lost")
        );
        assert!(presence.connected_clients().is_empty());
        assert_eq!(*presence.count().borrow(), 0);
    }
}
