//! Many connections at once: all accepted, all reported, all closed by shutdown.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wme_broker::{BrokerConfig, ConnectionEvent};

use crate::clients::{next_event, raw_connect, start, within};

const CLIENTS: usize = 1000;

#[tokio::test]
async fn a_thousand_clients_are_accepted_reported_and_closed_by_shutdown() {
    let broker = start(BrokerConfig::default()).await;
    let mut events = broker.events();

    let mut streams = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
        stream
            .write_all(&raw_connect(4, &format!("agent-{i:04}"), 0))
            .await
            .unwrap();
        streams.push(stream);
    }
    for stream in &mut streams {
        let mut connack = [0u8; 4];
        within("a CONNACK", stream.read_exact(&mut connack))
            .await
            .unwrap();
        assert_eq!(connack, [0x20, 2, 0, 0]);
    }

    assert_eq!(broker.connected_clients().len(), CLIENTS);
    assert_eq!(broker.connected_clients()[CLIENTS - 1], "agent-0999");
    let mut connected = 0;
    while connected < CLIENTS {
        match next_event(&mut events).await {
            ConnectionEvent::Connected { .. } => connected += 1,
            other => panic!("expected only connects, got {other:?}"),
        }
    }

    within("shutdown", broker.shutdown()).await;
    for _ in 0..CLIENTS {
        match next_event(&mut events).await {
            ConnectionEvent::Disconnected { reason, .. } => assert_eq!(reason, "broker_shutdown"),
            other => panic!("expected only disconnects, got {other:?}"),
        }
    }
    for stream in &mut streams {
        let mut rest = Vec::new();
        within("the socket to close", stream.read_to_end(&mut rest))
            .await
            .unwrap();
        assert!(rest.is_empty(), "no packet after the CONNACK, got {rest:?}");
    }
}
