//! The Authorizer hook: CONNECT refusals, forbidden publishes and subscriptions, limits.

use std::sync::Arc;

use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode as Code5, LastWill, PubAckReason, SubscribeReasonCode as Sub5,
};
use rumqttc::v5::{self, Incoming as In5};
use wme_broker::{Authorizer, BrokerConfig};

use crate::clients::{
    Client3, Client5, expect_connected, expect_disconnected, options3, options5, start,
};

/// Lets in user "agent" with password "good"; forbids topics and filters under "forbidden/".
struct TestAuthorizer;

impl Authorizer for TestAuthorizer {
    fn authenticate(&self, _: &str, username: Option<&str>, password: Option<&[u8]>) -> bool {
        username == Some("agent") && password == Some(b"good")
    }

    fn may_publish(&self, _: &str, topic: &str) -> bool {
        !topic.starts_with("forbidden/")
    }

    fn may_subscribe(&self, _: &str, filter: &str) -> bool {
        !filter.starts_with("forbidden/")
    }
}

fn guarded() -> BrokerConfig {
    BrokerConfig {
        authorizer: Arc::new(TestAuthorizer),
        ..BrokerConfig::default()
    }
}

fn agent5(broker: &wme_broker::Broker, client_id: &str) -> v5::MqttOptions {
    let mut options = options5(broker, client_id);
    options.set_credentials("agent", "good");
    options
}

fn agent3(broker: &wme_broker::Broker, client_id: &str) -> rumqttc::MqttOptions {
    let mut options = options3(broker, client_id);
    options.set_credentials("agent", "good");
    options
}

#[tokio::test]
async fn wrong_password_gets_a_bad_username_or_password_connack_in_v5_and_v311() {
    let broker = start(guarded()).await;
    let mut events = broker.events();

    let mut options = options5(&broker, "intruder-5");
    options.set_credentials("agent", "bad");
    let error = Client5::spawn(options).ended().await;
    assert!(
        matches!(
            error,
            v5::ConnectionError::ConnectionRefused(Code5::BadUserNamePassword)
        ),
        "got {error:?}"
    );

    let mut options = options3(&broker, "intruder-311");
    options.set_credentials("agent", "bad");
    let error = Client3::spawn(options).ended().await;
    assert!(
        matches!(
            error,
            rumqttc::ConnectionError::ConnectionRefused(
                rumqttc::ConnectReturnCode::BadUserNamePassword
            )
        ),
        "got {error:?}"
    );

    // Refused clients never show up as connected: the first event is the next good client.
    Client5::connect(agent5(&broker, "welcome")).await;
    expect_connected(&mut events, "welcome").await;
    broker.shutdown().await;
}

#[tokio::test]
async fn anonymous_connect_is_put_to_the_authorizer_and_refused() {
    let broker = start(guarded()).await;

    let error = Client5::spawn(options5(&broker, "anonymous")).ended().await;

    assert!(
        matches!(
            error,
            v5::ConnectionError::ConnectionRefused(Code5::BadUserNamePassword)
        ),
        "got {error:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn v5_publish_to_a_forbidden_topic_gets_a_not_authorized_puback_and_is_not_delivered() {
    let broker = start(guarded()).await;
    let mut watcher = Client5::connect(agent5(&broker, "watcher")).await;
    watcher.subscribe("#").await;
    let mut agent = Client5::connect(agent5(&broker, "agent")).await;

    agent
        .client
        .publish("forbidden/x", QoS5::AtLeastOnce, false, "no")
        .await
        .unwrap();
    let reason = agent
        .next("PUBACK", |p| match p {
            In5::PubAck(ack) => Some(ack.reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, PubAckReason::NotAuthorized);

    // The connection stays up, and the watcher's first message is the allowed one.
    agent
        .client
        .publish("allowed/x", QoS5::AtMostOnce, false, "yes")
        .await
        .unwrap();
    let first = watcher.next_publish().await;
    assert_eq!(
        (&first.topic[..], &first.payload[..]),
        (&b"allowed/x"[..], &b"yes"[..])
    );
    assert_eq!(
        broker.connected_clients(),
        vec!["agent".to_owned(), "watcher".to_owned()]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn v311_publish_to_a_forbidden_topic_closes_that_connection() {
    let broker = start(guarded()).await;
    let mut watcher = Client5::connect(agent5(&broker, "watcher")).await;
    watcher.subscribe("#").await;
    let mut events = broker.events();
    let mut agent = Client3::connect(agent3(&broker, "agent-311")).await;
    expect_connected(&mut events, "agent-311").await;

    agent
        .client
        .publish("forbidden/x", rumqttc::QoS::AtLeastOnce, false, "no")
        .await
        .unwrap();

    agent.ended().await;
    assert_eq!(
        expect_disconnected(&mut events, "agent-311").await,
        "publish_not_authorized"
    );
    let other = Client3::connect(agent3(&broker, "other-311")).await;
    other
        .client
        .publish("allowed/y", rumqttc::QoS::AtLeastOnce, false, "yes")
        .await
        .unwrap();
    assert_eq!(&watcher.next_publish().await.topic[..], b"allowed/y");
    broker.shutdown().await;
}

#[tokio::test]
async fn subscribe_to_a_forbidden_filter_is_refused_in_the_suback() {
    let broker = start(guarded()).await;
    let mut new = Client5::connect(agent5(&broker, "agent-5")).await;
    let mut old = Client3::connect(agent3(&broker, "agent-311")).await;

    assert_eq!(new.subscribe("forbidden/#").await, Sub5::NotAuthorized);
    assert_eq!(
        old.subscribe("forbidden/#").await,
        rumqttc::SubscribeReasonCode::Failure
    );
    assert_eq!(
        new.subscribe("allowed/#").await,
        Sub5::Success(QoS5::AtLeastOnce)
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn will_on_a_forbidden_topic_is_refused_at_connect() {
    let broker = start(guarded()).await;
    let mut options = agent5(&broker, "sneaky");
    options.set_last_will(LastWill::new(
        "forbidden/will",
        "bye",
        QoS5::AtMostOnce,
        false,
        None,
    ));

    let error = Client5::spawn(options).ended().await;

    assert!(
        matches!(
            error,
            v5::ConnectionError::ConnectionRefused(Code5::NotAuthorized)
        ),
        "got {error:?}"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn connect_beyond_max_connections_is_refused_as_server_unavailable() {
    let config = BrokerConfig {
        max_connections: 1,
        ..BrokerConfig::default()
    };
    let broker = start(config).await;
    let _first = Client5::connect(options5(&broker, "first")).await;

    let error = Client5::spawn(options5(&broker, "second")).ended().await;

    assert!(
        matches!(
            error,
            v5::ConnectionError::ConnectionRefused(Code5::ServerUnavailable)
        ),
        "got {error:?}"
    );
    assert_eq!(broker.connected_clients(), vec!["first".to_owned()]);
    broker.shutdown().await;
}
