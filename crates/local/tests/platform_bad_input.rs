//! The running local platform against bad input: garbage Records over a real MQTT connection and
//! bad create-job payloads are refused with their reason, and the platform keeps working.

use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::json;
use wme_local::{LocalPlatform, PlatformConfig};

async fn platform() -> LocalPlatform {
    LocalPlatform::start(PlatformConfig::default())
        .await
        .expect("platform starts")
}

/// Publishes `messages` from an MQTT 5 client and waits until the platform counted them.
async fn publish_all(platform: &LocalPlatform, messages: &[(&str, Vec<u8>)]) {
    let addr = platform.mqtt_addr();
    let options = MqttOptions::new("garbage-sender", addr.ip().to_string(), addr.port());
    let (client, mut eventloop) = AsyncClient::new(options, 64);
    let driver = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Outgoing(rumqttc::Outgoing::Disconnect) = event {
                break;
            }
        }
    });
    for (topic, payload) in messages {
        client
            .publish(*topic, QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
    }
    let expected: u64 = messages.len() as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counted: u64 = platform.message_stats.snapshot().values().sum();
        if counted >= expected {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {counted} of {expected} counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.disconnect().await.unwrap();
    driver.await.unwrap();
}

#[tokio::test]
async fn garbage_records_are_counted_by_reason_and_the_platform_keeps_running() {
    let platform = platform().await;
    let valid_but_misaddressed = wme_usp::encode_msg_record(
        "self::sim-0001",
        "self::someone-else",
        &wme_usp::notify_resp("m1", "s1"),
    );
    let unknown_command = wme_usp::encode_msg_record(
        "self::sim-0001",
        "self::wme-controller",
        &wme_usp::operate_resp_accepted("download/never-sent-job/1234abcd", "Device.X()", "p"),
    );
    let wrong_sender = wme_usp::encode_msg_record(
        "self::sim-0002",
        "self::wme-controller",
        &wme_usp::notify_resp("m1", "s1"),
    );
    publish_all(
        &platform,
        &[
            ("usp/v1/controller/sim-0001", vec![0xff, 0x00, 0x13, 0x37]),
            ("usp/v1/controller/sim-0001", Vec::new()),
            (
                "usp/v1/controller/sim-0001",
                valid_but_misaddressed.clone()[..5].to_vec(),
            ),
            ("usp/v1/controller/sim-0001", valid_but_misaddressed),
            ("usp/v1/controller/sim-0001", unknown_command),
            ("usp/v1/controller/sim-0001", wrong_sender),
            ("usp/v1/controller/a/b", vec![1, 2, 3]),
        ],
    )
    .await;

    let stats = platform.message_stats.snapshot();
    assert_eq!(stats.get("malformed"), Some(&3), "{stats:?}");
    assert_eq!(stats.get("wrong_to_id"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("unknown_command_key"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("wrong_from_id"), Some(&1), "{stats:?}");
    assert_eq!(stats.get("unexpected_topic"), Some(&1), "{stats:?}");

    // Still serving: a job can be created and its target resolved.
    platform
        .registry
        .create_thing(
            "sim-0001",
            [("firmwareVersion".to_string(), "1.2.1".to_string())].into(),
        )
        .unwrap();
    let created = platform
        .create_job(json!({
            "firmwareVersion": "1.2.3",
            "targetArn": "arn:aws:iot:local:000000000000:thing/sim-0001"
        }))
        .await
        .unwrap();
    assert_eq!(
        platform.jobs.describe_job(&created.job_id).unwrap().total,
        1
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn bad_create_job_payloads_name_the_field_at_fault() {
    let platform = platform().await;
    let cases = [
        (
            json!({"upgradeTrigger": "manual", "targetArn": "arn:aws:iot:local:000000000000:thinggroup/g"}),
            "InvalidInput",
            "missing field `firmwareVersion` in the create-job payload",
        ),
        (
            json!({"firmwareVersion": "1.2.3", "targetArn": "devices_on_factory_firmware_version"}),
            "InvalidInput",
            "invalid `targetArn`: malformed targetArn `devices_on_factory_firmware_version`: expected arn:aws:iot:<region>:<account>:thinggroup/<name>",
        ),
        (
            json!({"firmwareVersion": "1.2.3", "targetArn": "arn:aws:iot:local:000000000000:thinggroup/no_such_group"}),
            "UnknownTarget",
            "unknown target `arn:aws:iot:local:000000000000:thinggroup/no_such_group`: no such thing or thing group",
        ),
        (
            json!(["not", "an", "object"]),
            "InvalidInput",
            "invalid create-job payload: expected a JSON object, got an array",
        ),
    ];
    for (payload, error_type, message) in cases {
        let err = platform.create_job(payload.clone()).await.unwrap_err();
        assert_eq!(
            (err.error_type.as_str(), err.message.as_str()),
            (error_type, message),
            "{payload}"
        );
    }
    platform.shutdown().await;
}

#[tokio::test]
async fn execution_that_ends_without_an_outcome_fails_its_job_execution() {
    use wme_workflow::ports::{Jobs, NewJob};

    let platform = platform().await;
    platform
        .registry
        .create_thing(
            "sim-0001",
            [("firmwareVersion".to_string(), "1.2.1".to_string())].into(),
        )
        .unwrap();
    // A job document without firmwareVersion: the definition's first state fails with
    // States.Runtime, which no Catch can handle, so the workflow itself records nothing.
    let job = NewJob {
        job_id: "broken-document".into(),
        targets: vec![
            "arn:aws:iot:local:000000000000:thing/sim-0001"
                .parse()
                .unwrap(),
        ],
        document: json!({"operation": "FirmwareUpgrade"}),
        description: String::new(),
        target_selection: Default::default(),
        template_arn: String::new(),
    };
    platform.jobs.create_job(job).await.unwrap();

    let summary = platform
        .wait_for_job("broken-document", Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        summary.count(wme_workflow::JobExecutionStatus::Failed),
        1,
        "{summary:?}"
    );
    let execution = platform
        .jobs
        .describe_job_execution("broken-document", "sim-0001")
        .unwrap();
    assert_eq!(execution.status_details["step"], "Execution");
    let reason = &execution.status_details["reason"];
    assert!(
        reason.contains("ended FAILED without recording an outcome: States.Runtime"),
        "{reason}"
    );
    platform.shutdown().await;
}
