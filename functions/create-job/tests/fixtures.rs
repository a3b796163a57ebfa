//! The function on the operator's payloads, as JSON fixtures.

use serde_json::{Value, json};
use wme_lambda::fakes::FakeJobs;
use wme_workflow::ports::JobTemplate;

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn jobs_with_template() -> FakeJobs {
    let mut jobs = FakeJobs::default();
    jobs.templates.insert(
        "FirmwareUpgrade".into(),
        JobTemplate {
            id: "FirmwareUpgrade".into(),
            arn: "arn:aws:iot:eu-west-1:123456789012:jobtemplate/FirmwareUpgrade".into(),
            document: json!({"operation": "firmwareUpgrade"}),
            description: "Firmware upgrade".into(),
        },
    );
    jobs
}

#[tokio::test]
async fn seed_payload_creates_a_job_for_the_thing_group() {
    let jobs = jobs_with_template();

    let out = wme_fn_create_job::handle(&jobs, fixture("seed.json"))
        .await
        .unwrap();

    let created = jobs.created.lock().unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0].targets[0].name(),
        "devices_on_factory_firmware_version"
    );
    assert_eq!(
        created[0].document,
        json!({"operation": "firmwareUpgrade", "firmwareVersion": "1.2.3", "upgradeTrigger": "manual"})
    );
    assert_eq!(out["jobId"], json!(created[0].job_id));
    assert!(
        out["jobArn"]
            .as_str()
            .unwrap()
            .ends_with(&created[0].job_id)
    );
}

#[tokio::test]
async fn malformed_target_fails_as_invalid_input() {
    let jobs = jobs_with_template();

    let err = wme_fn_create_job::handle(&jobs, fixture("bad_target.json"))
        .await
        .unwrap_err();

    assert_eq!(err.error_type, "InvalidInput");
    assert!(
        err.error_message.contains("targetArn"),
        "{}",
        err.error_message
    );
    assert!(jobs.created.lock().unwrap().is_empty());
}

#[tokio::test]
async fn missing_template_fails_with_its_stable_name() {
    let err = wme_fn_create_job::handle(&FakeJobs::default(), fixture("seed.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "JobTemplateNotFound");
}
