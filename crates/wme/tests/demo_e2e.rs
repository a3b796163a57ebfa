//! The demo scenario end to end: the local platform, a simulated fleet with every behaviour
//! (MQTT 5 and 3.1.1 agents), the seed's create-job payload, and the firmware-upgrade state
//! machine, checked device by device.

use std::time::Duration;

use device_agent_simulator::{Behaviour, StepDelays};
use sha2::{Digest, Sha256};
use wme::campaign::{self, CampaignConfig, DeviceResult};
use wme_local::PlatformConfig;
use wme_local::artifacts::make_image;

fn config() -> CampaignConfig {
    CampaignConfig {
        devices: 7,
        from_version: "1.2.1".into(),
        target_version: "1.2.3".into(),
        mix: vec![
            (Behaviour::Ok, 2),
            (Behaviour::Download404, 1),
            (Behaviour::BadChecksum, 1),
            (Behaviour::BootFails, 1),
            (Behaviour::Silent, 1),
            (Behaviour::Offline, 1),
        ],
        time_scale: 0.01,
        delays: StepDelays {
            transfer: Duration::from_millis(50),
            oper_complete: Duration::from_millis(100),
            boot: Duration::from_millis(150),
        },
        mqtt_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        mqtt311_every: 2,
        timeout: Duration::from_secs(120),
    }
}

fn by_behaviour<'a>(results: &'a [DeviceResult], behaviour: &str) -> Vec<&'a DeviceResult> {
    results
        .iter()
        .filter(|r| r.behaviour == behaviour)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_behaviour_ends_with_its_exact_status_reason_and_firmware() {
    let report = campaign::run(&config(), |_| {})
        .await
        .expect("campaign runs");

    assert_eq!(report.devices, 7);
    assert!(
        report.unexpected.is_empty(),
        "unexpected: {:#?}",
        report.results
    );
    assert_eq!(report.counts.get("SUCCEEDED"), Some(&2));
    assert_eq!(report.counts.get("FAILED"), Some(&4));
    assert_eq!(report.counts.get("TIMED_OUT"), Some(&1));
    assert_eq!(report.results.len(), 7);

    for ok in by_behaviour(&report.results, "ok") {
        assert_eq!(ok.execution_status, "SUCCEEDED");
        assert_eq!(ok.job_execution_status, "SUCCEEDED");
        assert_eq!(ok.step.as_deref(), Some("Done"));
        assert_eq!(ok.reason.as_deref(), Some("device runs firmware 1.2.3"));
        assert_eq!(ok.firmware_version.as_deref(), Some("1.2.3"));
        assert_eq!(ok.device_firmware_version, "1.2.3");
    }

    let not_found = by_behaviour(&report.results, "download-404")[0];
    assert_eq!(not_found.job_execution_status, "FAILED");
    assert_eq!(not_found.execution_status, "FAILED");
    assert_eq!(not_found.step.as_deref(), Some("AwaitNotifications"));
    let reason = not_found.reason.as_deref().unwrap();
    assert!(
        reason.starts_with(r#"Usp.TransferFailed: {"faultCode":9016,"faultString":"http 404 not found for http://127.0.0.1:"#)
            && reason.ends_with(r#"/firmware/1.2.3.bin.missing"}"#),
        "{reason}"
    );
    assert_eq!(not_found.firmware_version.as_deref(), Some("1.2.1"));
    assert_eq!(not_found.device_firmware_version, "1.2.1");

    let bad_checksum = by_behaviour(&report.results, "bad-checksum")[0];
    let image = make_image("1.2.3", PlatformConfig::default().image_size);
    let expected_sha = hex::encode(Sha256::digest(&image));
    let reason = bad_checksum.reason.as_deref().unwrap();
    assert!(
        reason.starts_with(&format!(
            r#"Usp.TransferFailed: {{"faultCode":9018,"faultString":"checksum mismatch: expected {expected_sha}, got "#
        )),
        "{reason}"
    );
    assert_eq!(bad_checksum.job_execution_status, "FAILED");
    assert_eq!(bad_checksum.firmware_version.as_deref(), Some("1.2.1"));

    let boot_fails = by_behaviour(&report.results, "boot-fails")[0];
    assert_eq!(boot_fails.job_execution_status, "FAILED");
    assert_eq!(boot_fails.step.as_deref(), Some("VerifyBoot"));
    assert_eq!(
        boot_fails.reason.as_deref(),
        Some("device booted firmware 1.2.1 (firmwareUpdated false), expected 1.2.3")
    );
    assert_eq!(boot_fails.firmware_version.as_deref(), Some("1.2.1"));
    assert_eq!(boot_fails.device_firmware_version, "1.2.1");

    let silent = by_behaviour(&report.results, "silent")[0];
    assert_eq!(silent.job_execution_status, "TIMED_OUT");
    assert_eq!(silent.execution_status, "FAILED");
    assert_eq!(silent.step.as_deref(), Some("AwaitNotifications"));
    assert_eq!(
        silent.reason.as_deref(),
        Some(
            "Device.TransferCompleteTimedOut: no TransferComplete notification from the device in time (heartbeat 900 s, timeout 3600 s)"
        )
    );
    assert_eq!(silent.firmware_version.as_deref(), Some("1.2.1"));

    let offline = by_behaviour(&report.results, "offline")[0];
    assert_eq!(offline.job_execution_status, "FAILED");
    assert_eq!(offline.step.as_deref(), Some("CheckDevice"));
    assert_eq!(offline.reason.as_deref(), Some("device is not connected"));
    assert_eq!(offline.firmware_version.as_deref(), Some("1.2.1"));

    assert_eq!(report.device_messages.get("malformed"), None);
    assert_eq!(report.device_messages.get("unknown_command_key"), None);
}
