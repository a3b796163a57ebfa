//! The function on the state machine's MarkInProgress and MarkJobExecution payloads.

use serde_json::{Value, json};
use wme_lambda::fakes::FakeJobs;
use wme_workflow::JobExecutionStatus;
use wme_workflow::ports::PortError;

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn in_progress_payload_updates_the_execution_with_its_details() {
    let jobs = FakeJobs::default();

    let out = wme_fn_update_job_execution::handle(&jobs, fixture("mark_in_progress.json"))
        .await
        .unwrap();

    assert_eq!(out, json!({"status": "IN_PROGRESS"}));
    let updates = jobs.updates.lock().unwrap();
    assert_eq!(updates[0].thing_name, "sim-0001");
    assert_eq!(updates[0].status, JobExecutionStatus::InProgress);
    assert_eq!(updates[0].status_details["step"], "SendDownload");
}

#[tokio::test]
async fn timed_out_payload_reaches_the_job_service_as_a_timeout() {
    // The AWS adapter writes it as FAILED with timedOut=true (tested in wme-aws).
    let jobs = FakeJobs::default();

    wme_fn_update_job_execution::handle(&jobs, fixture("mark_timed_out.json"))
        .await
        .unwrap();

    let updates = jobs.updates.lock().unwrap();
    assert_eq!(updates[0].status, JobExecutionStatus::TimedOut);
    assert_eq!(updates[0].status_details["reason"], "no Boot! within 900 s");
}

#[tokio::test]
async fn terminal_execution_fails_as_a_conflict_and_outages_as_a_service_error() {
    let jobs = FakeJobs {
        update_error: Some(PortError::Conflict("already SUCCEEDED".into())),
        ..FakeJobs::default()
    };
    let err = wme_fn_update_job_execution::handle(&jobs, fixture("mark_timed_out.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "JobExecutionConflict");

    let jobs = FakeJobs {
        update_error: Some(PortError::Unavailable("throttled".into())),
        ..FakeJobs::default()
    };
    let err = wme_fn_update_job_execution::handle(&jobs, fixture("mark_in_progress.json"))
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "JobServiceError");
}

#[tokio::test]
async fn unknown_field_fails_as_invalid_input() {
    let mut event = fixture("mark_in_progress.json");
    event["stauts"] = json!("FAILED");
    let err = wme_fn_update_job_execution::handle(&FakeJobs::default(), event)
        .await
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidInput");
    assert!(
        err.error_message.contains("stauts"),
        "{}",
        err.error_message
    );
}
