//! Connection events, session take-over, event lag and shutdown.

use std::time::SystemTime;

use tokio::net::TcpStream;
use tokio::sync::broadcast::error::RecvError;
use wme_broker::{BrokerConfig, ConnectionEvent};

use crate::clients::{
    Client3, Client5, expect_connected, expect_disconnected, next_event, options3, options5,
    raw_connect, raw_session, start, within,
};

#[tokio::test]
async fn connect_and_clean_disconnect_produce_events_with_the_client_id() {
    let broker = start(BrokerConfig::default()).await;
    let mut events = broker.events();
    let before = SystemTime::now();

    let client = Client5::connect(options5(&broker, "agent-7")).await;
    let connected = next_event(&mut events).await;
    client.disconnect().await;
    let disconnected = next_event(&mut events).await;

    let ConnectionEvent::Connected {
        client_id,
        protocol_level,
        at,
    } = connected
    else {
        panic!("expected Connected, got {connected:?}");
    };
    assert_eq!((client_id.as_str(), protocol_level), ("agent-7", 5));
    assert!(at >= before);
    let ConnectionEvent::Disconnected {
        client_id,
        reason,
        at: gone,
    } = disconnected
    else {
        panic!("expected Disconnected, got {disconnected:?}");
    };
    assert_eq!(
        (client_id.as_str(), reason.as_str()),
        ("agent-7", "client_disconnect")
    );
    assert!(gone >= at);
    assert!(broker.connected_clients().is_empty());
    broker.shutdown().await;
}

#[tokio::test]
async fn abrupt_tcp_drop_produces_a_connection_lost_event() {
    let broker = start(BrokerConfig::default()).await;
    let mut events = broker.events();
    let (stream, code) = raw_session(&broker, &raw_connect(4, "agent-dropped", 30)).await;
    assert_eq!(code, 0, "CONNACK return code is Connection Accepted");
    assert_eq!(expect_connected(&mut events, "agent-dropped").await, 4);

    drop(stream);

    assert_eq!(
        expect_disconnected(&mut events, "agent-dropped").await,
        "connection_lost"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn reconnect_with_the_same_client_id_never_reports_the_client_offline_while_it_is_online() {
    let broker = start(BrokerConfig::default()).await;
    let mut events = broker.events();
    let mut first = Client5::connect(options5(&broker, "agent-twice")).await;

    let second = Client5::connect(options5(&broker, "agent-twice")).await;
    first.ended().await;
    assert_eq!(broker.connected_clients(), vec!["agent-twice".to_owned()]);
    second.disconnect().await;

    let mut seen = Vec::new();
    while seen.last().map(String::as_str) != Some("client_disconnect") {
        seen.push(match next_event(&mut events).await {
            ConnectionEvent::Connected { .. } => "connected".to_owned(),
            ConnectionEvent::Disconnected { reason, .. } => reason,
        });
    }
    // The old connection's close is either reported before the new one comes up, or not at all.
    let taken_over_first = [
        "connected",
        "session_taken_over",
        "connected",
        "client_disconnect",
    ];
    let replaced_silently = ["connected", "connected", "client_disconnect"];
    assert!(
        seen == taken_over_first || seen == replaced_silently,
        "unexpected event order {seen:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn receiver_that_falls_behind_is_told_how_many_events_it_lost() {
    let config = BrokerConfig {
        event_capacity: 2,
        ..BrokerConfig::default()
    };
    let broker = start(config).await;
    let mut events = broker.events();

    let mut clients = Vec::new();
    for id in ["a", "b", "c", "d"] {
        clients.push(Client5::connect(options5(&broker, id)).await);
    }

    assert_eq!(
        within("lag", events.recv()).await,
        Err(RecvError::Lagged(2))
    );
    expect_connected(&mut events, "c").await;
    assert_eq!(broker.connected_clients(), vec!["a", "b", "c", "d"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_disconnects_every_client_and_reports_broker_shutdown() {
    let broker = start(BrokerConfig::default()).await;
    let addr = broker.local_addr();
    let mut events = broker.events();
    let mut new = Client5::connect(options5(&broker, "agent-5")).await;
    let mut old = Client3::connect(options3(&broker, "agent-311")).await;
    for _ in 0..2 {
        assert!(matches!(
            next_event(&mut events).await,
            ConnectionEvent::Connected { .. }
        ));
    }

    within("shutdown", broker.shutdown()).await;

    // rmqtt 0.24 closes the socket before it writes the DISCONNECT it means to send to MQTT 5
    // clients, so both kinds of client just see the connection close.
    new.ended().await;
    old.ended().await;
    let mut gone = Vec::new();
    for _ in 0..2 {
        match next_event(&mut events).await {
            ConnectionEvent::Disconnected {
                client_id, reason, ..
            } => gone.push((client_id, reason)),
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    gone.sort();
    assert_eq!(
        gone,
        vec![
            ("agent-311".to_owned(), "broker_shutdown".to_owned()),
            ("agent-5".to_owned(), "broker_shutdown".to_owned()),
        ]
    );
    assert!(TcpStream::connect(addr).await.is_err(), "listener closed");
}
