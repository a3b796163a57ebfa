//! The AWS adapters against moto in server mode, at `WME_MOTO_ENDPOINT` (`.ci/run` starts it).
//! Without that variable every test prints why it is skipped and passes.
//!
//! The token table is created here as `template.yaml` creates it: `pk`/`sk` string keys,
//! on-demand billing, SSE, point-in-time recovery and TTL on `expiresAt`.

use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    ScalarAttributeType, SseSpecification, TimeToLiveSpecification, TimeToLiveStatus,
};
use serde_json::json;
use sha2::{Digest, Sha256};
use wme_aws::tokens::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
use wme_aws::{DynamoTokenStore, IotDataChannel, IotJobs, S3Artifacts, SfnCallbacks, endpoints};
use wme_workflow::model::{EventOutcome, TargetArn, WaitKey, WaitKind};
use wme_workflow::ports::{
    AgentAddress, ArtifactStore, DeviceChannel, EventRecorded, Jobs, NewJob, Outbound, PortError,
    TargetSelection, TaskCallbacks, TokenStore, WaiterRegistered,
};

const ENDPOINT_VAR: &str = "WME_MOTO_ENDPOINT";

/// The SDK configuration for moto, or `None` (with a message) when no moto endpoint is set.
async fn moto(test: &str) -> Option<SdkConfig> {
    let Ok(endpoint) = std::env::var(ENDPOINT_VAR) else {
        // Written to stderr itself, not through eprintln!, so the test harness does not
        // capture it and the skip shows in every run.
        let _ = writeln!(
            std::io::stderr(),
            "skipping {test}: {ENDPOINT_VAR} is unset (start `moto_server -p 5000` and set it to \
             http://127.0.0.1:5000)"
        );
        return None;
    };
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    Some(config)
}

/// A name no other test (or earlier run against the same moto) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn create_token_table(client: &aws_sdk_dynamodb::Client) -> anyhow::Result<String> {
    let table = unique("wme-tokens");
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    client
        .create_table()
        .table_name(&table)
        .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
        .key_schema(key(SORT_KEY, KeyType::Range)?)
        .attribute_definitions(attr(PARTITION_KEY)?)
        .attribute_definitions(attr(SORT_KEY)?)
        .billing_mode(BillingMode::PayPerRequest)
        .sse_specification(SseSpecification::builder().enabled(true).build())
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TTL_ATTRIBUTE)
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    client
        .update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(table)
}

async fn token_store(config: &SdkConfig) -> anyhow::Result<DynamoTokenStore> {
    let client = aws_sdk_dynamodb::Client::new(config);
    let table = create_token_table(&client).await?;
    Ok(DynamoTokenStore::new(
        client,
        table,
        Duration::from_secs(4 * 3600),
    ))
}

fn ok() -> EventOutcome {
    EventOutcome::Success {
        output: json!({"faultCode": 0}),
    }
}

#[tokio::test]
async fn token_waiting_before_its_event_is_claimed_once() -> anyhow::Result<()> {
    let Some(config) = moto("token_waiting_before_its_event_is_claimed_once").await else {
        return Ok(());
    };
    let store = token_store(&config).await?;
    let op = WaitKey::new("sim-0001", "job-1", WaitKind::OperateResp);

    assert_eq!(
        store.register_waiter(&op, "t0").await?,
        WaiterRegistered::Waiting
    );
    assert_eq!(store.waiting_tokens("sim-0001", "job-1").await?, ["t0"]);
    assert_eq!(
        store.record_event(&op, &ok()).await?,
        EventRecorded::Claimed { token: "t0".into() }
    );
    assert_eq!(
        store.record_event(&op, &ok()).await?,
        EventRecorded::Duplicate
    );
    assert!(store.waiting_tokens("sim-0001", "job-1").await?.is_empty());
    assert_eq!(
        store.register_waiter(&op, "t9").await?,
        WaiterRegistered::AlreadyWaiting
    );
    Ok(())
}

#[tokio::test]
async fn event_arriving_before_its_waiter_is_handed_to_the_waiter() -> anyhow::Result<()> {
    let Some(config) = moto("event_arriving_before_its_waiter_is_handed_to_the_waiter").await
    else {
        return Ok(());
    };
    let store = token_store(&config).await?;
    let op = WaitKey::new("sim-0002", "job-1", WaitKind::OperateResp);
    let boot = WaitKey::new("sim-0002", "job-1", WaitKind::Boot);
    let failed = EventOutcome::Failure {
        error: "Device.BootFailed".into(),
        cause: r#"{"reason":"image rejected"}"#.into(),
    };

    store.register_waiter(&op, "t0").await?;
    assert_eq!(
        store.record_event(&boot, &failed).await?,
        EventRecorded::Buffered
    );
    assert_eq!(
        store.register_waiter(&boot, "t3").await?,
        WaiterRegistered::EventAlreadyArrived(failed)
    );
    assert_eq!(store.waiting_tokens("sim-0002", "job-1").await?, ["t0"]);
    Ok(())
}

#[tokio::test]
async fn events_and_waiters_of_unknown_commands_are_refused() -> anyhow::Result<()> {
    let Some(config) = moto("events_and_waiters_of_unknown_commands_are_refused").await else {
        return Ok(());
    };
    let store = token_store(&config).await?;
    let boot = WaitKey::new("sim-0003", "never-sent", WaitKind::Boot);

    assert_eq!(
        store.record_event(&boot, &ok()).await?,
        EventRecorded::UnknownCommand
    );
    let err = store.register_waiter(&boot, "t").await.unwrap_err();
    assert_eq!(
        err,
        PortError::NotFound {
            kind: "command",
            name: "sim-0003/never-sent".into()
        }
    );
    assert!(
        store
            .waiting_tokens("sim-0003", "never-sent")
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn released_event_can_be_recorded_again_and_claims_the_token() -> anyhow::Result<()> {
    let Some(config) = moto("released_event_can_be_recorded_again_and_claims_the_token").await
    else {
        return Ok(());
    };
    let store = token_store(&config).await?;
    let op = WaitKey::new("sim-0004", "job-1", WaitKind::OperateResp);
    let tc = WaitKey::new("sim-0004", "job-1", WaitKind::TransferComplete);

    store.register_waiter(&op, "t0").await?;
    store.register_waiter(&tc, "t1").await?;
    assert_eq!(
        store.record_event(&tc, &ok()).await?,
        EventRecorded::Claimed { token: "t1".into() }
    );
    store.release_event(&tc).await?;
    assert_eq!(
        store.record_event(&tc, &ok()).await?,
        EventRecorded::Claimed { token: "t1".into() }
    );
    // Releasing a slot that was never written is not an error.
    store
        .release_event(&WaitKey::new("sim-0004", "job-1", WaitKind::Boot))
        .await?;
    Ok(())
}

#[tokio::test]
async fn token_items_carry_the_ttl_attribute_the_table_expires_on() -> anyhow::Result<()> {
    let Some(config) = moto("token_items_carry_the_ttl_attribute_the_table_expires_on").await
    else {
        return Ok(());
    };
    let store = token_store(&config).await?;
    let client = store.client();
    store
        .register_waiter(
            &WaitKey::new("sim-0005", "job-1", WaitKind::OperateResp),
            "t0",
        )
        .await?;

    let ttl = client
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await?;
    let ttl = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.attribute_name(), Some(TTL_ATTRIBUTE));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    let items = client
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("sim-0005/job-1".into()),
        )
        .send()
        .await?;
    assert_eq!(items.items().len(), 2, "marker and OperateResp slot");
    for item in items.items() {
        let at: u64 = item[TTL_ATTRIBUTE].as_n().unwrap().parse()?;
        assert!((now_secs() + 4 * 3600 - 60..=now_secs() + 4 * 3600 + 60).contains(&at));
    }
    Ok(())
}

fn channel(config: &SdkConfig, table: &str) -> IotDataChannel {
    IotDataChannel::new(
        aws_sdk_iotdataplane::Client::new(config),
        aws_sdk_dynamodb::Client::new(config),
        table,
    )
}

#[tokio::test]
async fn agent_address_is_remembered_in_the_token_table() -> anyhow::Result<()> {
    let Some(config) = moto("agent_address_is_remembered_in_the_token_table").await else {
        return Ok(());
    };
    let store = token_store(&config).await?;
    let channel = channel(&config, store.table());
    let address = AgentAddress {
        endpoint_id: "self::sim-0006".into(),
        topic: "usp/v1/agent/sim-0006".into(),
        mqtt5: false,
    };

    assert_eq!(channel.agent_address("sim-0006").await?, None);
    channel
        .remember_agent_address("sim-0006", address.clone())
        .await?;
    assert_eq!(channel.agent_address("sim-0006").await?, Some(address));
    assert!(store.waiting_tokens("sim-0006", "").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn usp_record_is_published_through_iot_data() -> anyhow::Result<()> {
    let Some(config) = moto("usp_record_is_published_through_iot_data").await else {
        return Ok(());
    };
    let channel = channel(&config, "unused");
    channel
        .publish(Outbound {
            topic: "usp/v1/agent/sim-0007".into(),
            response_topic: Some("usp/v1/controller/sim-0007".into()),
            payload: vec![0x0a, 0x03, b'1', b'.', b'3'],
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn iot_endpoints_are_described() -> anyhow::Result<()> {
    let Some(config) = moto("iot_endpoints_are_described").await else {
        return Ok(());
    };
    let iot = aws_sdk_iot::Client::new(&config);
    let url = endpoints::iot_endpoint(&iot, endpoints::DATA_ATS).await?;
    assert!(
        url.starts_with("https://") && url.contains("-ats.iot."),
        "{url}"
    );
    Ok(())
}

fn iot_jobs(config: &SdkConfig) -> IotJobs {
    IotJobs::new(
        aws_sdk_iot::Client::new(config),
        aws_sdk_iotjobsdataplane::Client::new(config),
    )
}

#[tokio::test]
async fn job_template_is_read_and_a_job_created_for_a_thing_group() -> anyhow::Result<()> {
    let Some(config) = moto("job_template_is_read_and_a_job_created_for_a_thing_group").await
    else {
        return Ok(());
    };
    let iot = aws_sdk_iot::Client::new(&config);
    let template_id = unique("FirmwareUpgrade");
    let document = json!({"operation": "firmwareUpgrade", "firmwareVersion": "${aws:iot:parameter:firmwareVersion}"});
    iot.create_job_template()
        .job_template_id(&template_id)
        .description("firmware upgrade")
        .document(document.to_string())
        .send()
        .await?;
    let group = unique("devices_on_factory_firmware_version");
    let group_arn = iot
        .create_thing_group()
        .thing_group_name(&group)
        .send()
        .await?;
    let group_arn = group_arn.thing_group_arn().unwrap().to_string();
    let jobs = iot_jobs(&config);

    let template = jobs.job_template(&template_id).await?;
    assert_eq!(template.document, document);
    assert_eq!(template.description, "firmware upgrade");
    assert!(
        template
            .arn
            .ends_with(&format!("jobtemplate/{template_id}")),
        "{}",
        template.arn
    );

    let job_id = unique("fw-1_2_3");
    let created = jobs
        .create_job(NewJob {
            job_id: job_id.clone(),
            targets: vec![group_arn.parse::<TargetArn>().map_err(anyhow::Error::msg)?],
            document: json!({"firmwareVersion": "1.2.3"}),
            description: "upgrade to 1.2.3".into(),
            target_selection: TargetSelection::Snapshot,
            template_arn: template.arn,
        })
        .await?;
    assert_eq!(created.job_id, job_id);
    assert!(
        created.job_arn.ends_with(&format!("job/{job_id}")),
        "{}",
        created.job_arn
    );
    let stored = iot.get_job_document().job_id(&job_id).send().await?;
    let stored: serde_json::Value = serde_json::from_str(stored.document().unwrap())?;
    assert_eq!(stored, json!({"firmwareVersion": "1.2.3"}));
    Ok(())
}

#[tokio::test]
async fn missing_job_template_is_not_found() -> anyhow::Result<()> {
    let Some(config) = moto("missing_job_template_is_not_found").await else {
        return Ok(());
    };
    let err = iot_jobs(&config)
        .job_template("NoSuchTemplate")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PortError::NotFound {
            kind: "job template",
            name: "NoSuchTemplate".into()
        }
    );
    Ok(())
}

async fn firmware_bucket(config: &SdkConfig) -> anyhow::Result<(aws_sdk_s3::Client, String)> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build(),
    );
    let bucket = unique("wme-firmware");
    s3.create_bucket().bucket(&bucket).send().await?;
    Ok((s3, bucket))
}

#[tokio::test]
async fn firmware_image_is_served_through_a_presigned_url() -> anyhow::Result<()> {
    let Some(config) = moto("firmware_image_is_served_through_a_presigned_url").await else {
        return Ok(());
    };
    let (s3, bucket) = firmware_bucket(&config).await?;
    let image = b"WME-FIRMWARE 1.2.3\nfiller".to_vec();
    let sha256 = hex::encode(Sha256::digest(&image));
    s3.put_object()
        .bucket(&bucket)
        .key("firmware/1.2.3.bin")
        .metadata("sha256", &sha256)
        .body(image.clone().into())
        .send()
        .await?;
    let artifacts = S3Artifacts::new(s3, &bucket, Duration::from_secs(3600));

    let found = artifacts.firmware_image("1.2.3").await?;
    assert_eq!(found.size, image.len() as u64);
    assert_eq!(found.sha256, sha256);
    assert_eq!(found.credentials, None);
    assert!(found.url.contains("X-Amz-Signature="), "{}", found.url);
    assert!(found.url.contains("X-Amz-Expires=3600"), "{}", found.url);
    let body = reqwest::get(&found.url)
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    assert_eq!(body.as_ref(), image.as_slice());
    Ok(())
}

#[tokio::test]
async fn firmware_image_without_checksum_or_object_is_refused() -> anyhow::Result<()> {
    let Some(config) = moto("firmware_image_without_checksum_or_object_is_refused").await else {
        return Ok(());
    };
    let (s3, bucket) = firmware_bucket(&config).await?;
    s3.put_object()
        .bucket(&bucket)
        .key("firmware/1.2.4.bin")
        .body(b"no checksum".to_vec().into())
        .send()
        .await?;
    let artifacts = S3Artifacts::new(s3, &bucket, Duration::from_secs(60));

    let err = artifacts.firmware_image("1.2.4").await.unwrap_err();
    assert!(
        matches!(&err, PortError::Invalid(m) if m.contains("x-amz-meta-sha256")),
        "{err:?}"
    );
    let err = artifacts.firmware_image("9.9.9").await.unwrap_err();
    assert_eq!(
        err,
        PortError::NotFound {
            kind: "firmware image",
            name: format!("s3://{bucket}/firmware/9.9.9.bin")
        }
    );
    Ok(())
}

#[tokio::test]
async fn task_callbacks_reach_step_functions() -> anyhow::Result<()> {
    let Some(config) = moto("task_callbacks_reach_step_functions").await else {
        return Ok(());
    };
    let callbacks = SfnCallbacks::new(aws_sdk_sfn::Client::new(&config));
    // moto accepts any token, so these prove the requests' shape, not the refusals (see
    // docs/deploy.md).
    callbacks.send_task_heartbeat("token-1").await?;
    callbacks
        .send_task_success("token-1", json!({"faultCode": 0}))
        .await?;
    callbacks
        .send_task_failure("token-2", "Device.BootFailed", r#"{"reason":"x"}"#)
        .await?;
    Ok(())
}
