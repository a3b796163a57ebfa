//! MQTT 5 properties, mixed protocol versions, QoS 0/1 and keep-alive 0.

use bytes::Bytes;
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use tokio::io::AsyncWriteExt;
use wme_broker::BrokerConfig;

use crate::clients::{
    Client3, Client5, expect_connected, options3, options5, raw_connect, raw_session,
    read_packet_header, start,
};

#[tokio::test]
async fn v5_response_topic_correlation_data_and_user_properties_reach_a_v5_subscriber_intact() {
    let broker = start(BrokerConfig::default()).await;
    let mut agent = Client5::connect(options5(&broker, "agent-5")).await;
    agent.subscribe("usp/agent/agent-5").await;
    let controller = Client5::connect(options5(&broker, "controller")).await;

    let properties = PublishProperties {
        response_topic: Some("usp/controller/reply".to_owned()),
        correlation_data: Some(Bytes::from_static(&[0xde, 0xad, 0x00, 0xbe, 0xef])),
        user_properties: vec![
            ("usp-msg-id".to_owned(), "42".to_owned()),
            ("usp-msg-id".to_owned(), "43".to_owned()),
        ],
        content_type: Some("application/vnd.bbf.usp.msg".to_owned()),
        ..PublishProperties::default()
    };
    controller
        .client
        .publish_with_properties(
            "usp/agent/agent-5",
            QoS5::AtLeastOnce,
            false,
            "record",
            properties,
        )
        .await
        .unwrap();

    let publish = agent.next_publish().await;
    assert_eq!(publish.topic, Bytes::from_static(b"usp/agent/agent-5"));
    assert_eq!(publish.payload, Bytes::from_static(b"record"));
    let received = publish.properties.expect("properties forwarded");
    assert_eq!(
        received.response_topic.as_deref(),
        Some("usp/controller/reply")
    );
    assert_eq!(
        received.correlation_data,
        Some(Bytes::from_static(&[0xde, 0xad, 0x00, 0xbe, 0xef]))
    );
    assert_eq!(
        received.user_properties,
        vec![
            ("usp-msg-id".to_owned(), "42".to_owned()),
            ("usp-msg-id".to_owned(), "43".to_owned()),
        ]
    );
    assert_eq!(
        received.content_type.as_deref(),
        Some("application/vnd.bbf.usp.msg")
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn v311_and_v5_clients_exchange_messages_at_qos_0_and_1() {
    let broker = start(BrokerConfig::default()).await;
    let mut old = Client3::connect(options3(&broker, "agent-311")).await;
    let mut new = Client5::connect(options5(&broker, "controller-5")).await;
    old.subscribe("to/old").await;
    new.subscribe("to/new").await;

    new.client
        .publish("to/old", QoS5::AtLeastOnce, false, "from v5")
        .await
        .unwrap();
    old.client
        .publish("to/new", rumqttc::QoS::AtMostOnce, false, "from v3.1.1")
        .await
        .unwrap();

    let at_old = old.next_publish().await;
    assert_eq!(
        (at_old.topic.as_str(), &at_old.payload[..]),
        ("to/old", &b"from v5"[..])
    );
    assert_eq!(at_old.qos, rumqttc::QoS::AtLeastOnce);
    let at_new = new.next_publish().await;
    assert_eq!(
        (&at_new.topic[..], &at_new.payload[..]),
        (&b"to/new"[..], &b"from v3.1.1"[..])
    );
    assert_eq!(at_new.qos, QoS5::AtMostOnce);
    broker.shutdown().await;
}

#[tokio::test]
async fn v311_client_with_keep_alive_zero_is_accepted() {
    let broker = start(BrokerConfig::default()).await;
    let mut events = broker.events();
    let mut options = options3(&broker, "agent-ka0-311");
    options.set_keep_alive(std::time::Duration::ZERO);

    let mut client = Client3::connect(options).await;

    assert_eq!(
        client.subscribe("ka0/#").await,
        rumqttc::SubscribeReasonCode::Success(rumqttc::QoS::AtLeastOnce)
    );
    assert_eq!(expect_connected(&mut events, "agent-ka0-311").await, 4);
    broker.shutdown().await;
}

#[tokio::test]
async fn v5_connect_with_keep_alive_zero_gets_a_success_connack_and_a_working_session() {
    // rumqttc's MQTT 5 options refuse a keep-alive under 5 s, so the CONNECT is sent raw.
    let broker = start(BrokerConfig::default()).await;
    let mut events = broker.events();

    let (mut stream, reason_code) = raw_session(&broker, &raw_connect(5, "agent-ka0-5", 0)).await;
    assert_eq!(reason_code, 0x00, "CONNACK reason code is Success");

    stream.write_all(&[0xc0, 0x00]).await.unwrap(); // PINGREQ
    assert_eq!(read_packet_header(&mut stream).await, (0xd0, 0), "PINGRESP");
    assert_eq!(expect_connected(&mut events, "agent-ka0-5").await, 5);
    broker.shutdown().await;
}

#[tokio::test]
async fn two_brokers_in_one_process_keep_their_clients_and_messages_apart() {
    let first = start(BrokerConfig::default()).await;
    let second = start(BrokerConfig::default()).await;
    assert_ne!(first.local_addr(), second.local_addr());
    let mut first_events = first.events();
    let mut listener = Client5::connect(options5(&first, "same-id")).await;
    listener.subscribe("shared/topic").await;
    let mut talker = Client5::connect(options5(&second, "same-id")).await;

    talker
        .client
        .publish("shared/topic", QoS5::AtLeastOnce, false, "second")
        .await
        .unwrap();
    talker
        .next("PUBACK", |p| {
            matches!(p, rumqttc::v5::Incoming::PubAck(_)).then_some(())
        })
        .await;
    let local = Client5::connect(options5(&first, "local")).await;
    local
        .client
        .publish("shared/topic", QoS5::AtLeastOnce, false, "first")
        .await
        .unwrap();

    // Had the second broker routed into the first, "second" would arrive before "first".
    assert_eq!(&listener.next_publish().await.payload[..], b"first");
    assert_eq!(
        first.connected_clients(),
        vec!["local".to_owned(), "same-id".to_owned()]
    );
    assert_eq!(second.connected_clients(), vec!["same-id".to_owned()]);
    expect_connected(&mut first_events, "same-id").await;
    expect_connected(&mut first_events, "local").await;
    first.shutdown().await;
    second.shutdown().await;
}
