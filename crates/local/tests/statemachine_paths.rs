//! Every path through the firmware-upgrade definition (`statemachine/firmware_upgrade.asl.json`),
//! run on the local engine with scripted task handlers instead of the platform's functions, so
//! each scenario chooses exactly what the fleet index, the job service and the device answer.
//!
//! Time is tokio's paused clock at `time_scale` 1.0: the definition's real TimeoutSeconds (120 s)
//! and HeartbeatSeconds (900 s) elapse instantly and are checked to the second.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;
use wme_asl::{
    CallbackError, Engine, EngineConfig, EventDetails, ExecutionDescription, ExecutionStatus,
    HistoryEvent, TaskCall, TaskFailure, TaskHandler,
};
use wme_local::PlatformConfig;
use wme_local::integrations::{IOT_SEARCH_INDEX, IOT_UPDATE_THING, LAMBDA_INVOKE, function_name};
use wme_local::platform::{FIRMWARE_UPGRADE_DEFINITION, substitutions};
use wme_workflow::{AwaitEventInput, SendCommandInput, UpdateJobExecutionInput};

const THING: &str = "sim-0001";
const JOB: &str = "job-1";
const VERSION: &str = "1.2.3";

/// How the fake device answers one `.waitForTaskToken` task, through the engine's callbacks.
#[derive(Debug, Clone)]
enum Answer {
    /// SendTaskSuccess `after` seconds after the task handed off.
    Success { after: u64, output: Value },
    /// SendTaskFailure `after` seconds after the task handed off.
    Failure {
        after: u64,
        error: &'static str,
        cause: String,
    },
    /// No callback at all.
    Silent,
    /// A SendTaskHeartbeat every `every` seconds, `beats` times, then SendTaskSuccess.
    Heartbeats {
        every: u64,
        beats: u32,
        output: Value,
    },
}

/// What every resource answers in one scenario. The default is the happy path.
#[derive(Debug, Clone)]
struct Script {
    /// searchIndex replies in order; the last one repeats.
    search: Vec<Result<Value, TaskFailure>>,
    /// The error of the IN_PROGRESS UpdateJobExecution call, if it fails.
    mark_in_progress: Option<TaskFailure>,
    /// The error of the final (terminal status) UpdateJobExecution call, if it fails.
    mark_final: Option<TaskFailure>,
    /// The SendUspCommand function's error, or how the OperateResp completes its token.
    send_download: Result<Answer, TaskFailure>,
    transfer: Answer,
    operation: Answer,
    boot: Answer,
    update_thing: Result<Value, TaskFailure>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            search: vec![Ok(search_result(
                json!({"firmwareVersion": "1.0.0"}),
                json!(true),
            ))],
            mark_in_progress: None,
            mark_final: None,
            send_download: Ok(Answer::Success {
                after: 2,
                output: json!({
                    "executedCommand": "Device.DeviceInfo.FirmwareImage.2.Download()",
                    "reqObjPath": "Device.LocalAgent.Request.1."
                }),
            }),
            transfer: Answer::Success {
                after: 30,
                output: json!({"transferUrl": "http://x"}),
            },
            operation: Answer::Success {
                after: 31,
                output: json!({"outputArgs": {}}),
            },
            boot: Answer::Success {
                after: 60,
                output: boot(true, json!(VERSION)),
            },
            update_thing: Ok(json!({})),
        }
    }
}

/// A searchIndex result with one thing, as the AWS SDK integration returns it.
fn search_result(attributes: Value, connected: Value) -> Value {
    json!({"Things": [{
        "ThingName": THING,
        "ThingId": "0b1c",
        "Attributes": attributes,
        "Connectivity": {"Connected": connected, "Timestamp": 1_700_000_000_000_u64}
    }]})
}

/// The output the device-message handler completes the Boot wait with.
fn boot(firmware_updated: bool, firmware_version: Value) -> Value {
    json!({
        "firmwareUpdated": firmware_updated,
        "firmwareVersion": firmware_version,
        "cause": "LocalReboot"
    })
}

/// A Lambda function error as the lambda:invoke integration reports it.
fn function_error(error_type: &str, message: &str) -> TaskFailure {
    let cause = json!({"errorType": error_type, "errorMessage": message});
    TaskFailure::new(error_type, cause.to_string())
}

/// What the fake saw and did.
#[derive(Debug, Default)]
struct Record {
    /// Lambda invocations: function name and payload, in order.
    invocations: Vec<(String, Value)>,
    search_calls: Vec<Value>,
    update_thing_calls: Vec<Value>,
    /// Each callback the fake device sent and the engine's answer.
    callbacks: Vec<(String, Result<(), CallbackError>)>,
}

/// Stands in for the Lambda functions and the IoT registry integrations.
struct Fake {
    script: Script,
    engine: Weak<Engine>,
    search_replies: Mutex<Vec<Result<Value, TaskFailure>>>,
    record: Arc<Mutex<Record>>,
}

#[async_trait::async_trait]
impl TaskHandler for Fake {
    async fn invoke(&self, call: TaskCall) -> Result<Value, TaskFailure> {
        if call.resource == IOT_SEARCH_INDEX {
            self.record
                .lock()
                .unwrap()
                .search_calls
                .push(call.parameters.clone());
            return self.next_search_reply();
        }
        if call.resource == IOT_UPDATE_THING {
            self.record
                .lock()
                .unwrap()
                .update_thing_calls
                .push(call.parameters.clone());
            return self.script.update_thing.clone();
        }
        assert!(
            call.resource.starts_with(LAMBDA_INVOKE),
            "unexpected resource {}",
            call.resource
        );
        let name = function_name(
            call.parameters["FunctionName"]
                .as_str()
                .expect("FunctionName"),
        );
        let payload = call.parameters["Payload"].clone();
        let name = name.to_string();
        self.record
            .lock()
            .unwrap()
            .invocations
            .push((name.clone(), payload.clone()));
        match name.as_str() {
            "UpdateJobExecution" => self.update_job_execution(&payload),
            "SendUspCommand" => self.send_usp_command(&payload, call.task_token),
            "AwaitDeviceEvent" => self.await_device_event(&payload, call.task_token),
            other => Err(function_error("Lambda.ResourceNotFoundException", other)),
        }
    }
}

impl Fake {
    fn next_search_reply(&self) -> Result<Value, TaskFailure> {
        let mut replies = self.search_replies.lock().unwrap();
        if replies.len() > 1 {
            replies.remove(0)
        } else {
            replies[0].clone()
        }
    }

    fn update_job_execution(&self, payload: &Value) -> Result<Value, TaskFailure> {
        let input: UpdateJobExecutionInput = serde_json::from_value(payload.clone())
            .map_err(|e| function_error("InvalidInput", &e.to_string()))?;
        let failure = match input.status.as_str() {
            "IN_PROGRESS" => &self.script.mark_in_progress,
            _ => &self.script.mark_final,
        };
        if let Some(failure) = failure {
            return Err(failure.clone());
        }
        let output = json!({"status": input.status});
        Ok(json!({"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200}))
    }

    fn send_usp_command(
        &self,
        payload: &Value,
        token: Option<String>,
    ) -> Result<Value, TaskFailure> {
        let input: SendCommandInput = serde_json::from_value(payload.clone())
            .map_err(|e| function_error("InvalidInput", &e.to_string()))?;
        assert_eq!(token.as_deref(), Some(input.task_token.as_str()));
        let answer = self.script.send_download.clone()?;
        self.answer("OperateResp", input.task_token, answer);
        Ok(json!({"StatusCode": 200, "Payload": {"msgId": "download/job-1/0000"}}))
    }

    fn await_device_event(
        &self,
        payload: &Value,
        token: Option<String>,
    ) -> Result<Value, TaskFailure> {
        let input: AwaitEventInput = serde_json::from_value(payload.clone())
            .map_err(|e| function_error("InvalidInput", &e.to_string()))?;
        assert_eq!(token.as_deref(), Some(input.task_token.as_str()));
        let answer = match input.event.as_str() {
            "TransferComplete" => self.script.transfer.clone(),
            "OperationComplete" => self.script.operation.clone(),
            "Boot" => self.script.boot.clone(),
            other => return Err(function_error("InvalidInput", other)),
        };
        self.answer(&input.event, input.task_token, answer);
        Ok(json!({"StatusCode": 200, "Payload": {"waiting": true}}))
    }

    /// Plays `answer` for `token` from a task of its own, as the device would.
    fn answer(&self, event: &str, token: String, answer: Answer) {
        let engine = self.engine.upgrade().expect("engine alive");
        let record = self.record.clone();
        let event = event.to_string();
        tokio::spawn(async move {
            let log = |what: &str, result| {
                record
                    .lock()
                    .unwrap()
                    .callbacks
                    .push((format!("{event} {what}"), result));
            };
            match answer {
                Answer::Silent => {}
                Answer::Success { after, output } => {
                    sleep(after).await;
                    log("success", engine.send_task_success(&token, output));
                }
                Answer::Failure {
                    after,
                    error,
                    cause,
                } => {
                    sleep(after).await;
                    log("failure", engine.send_task_failure(&token, error, &cause));
                }
                Answer::Heartbeats {
                    every,
                    beats,
                    output,
                } => {
                    for _ in 0..beats {
                        sleep(every).await;
                        log("heartbeat", engine.send_task_heartbeat(&token));
                    }
                    sleep(every).await;
                    log("success", engine.send_task_success(&token, output));
                }
            }
        });
    }
}

async fn sleep(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

/// One finished execution and what the fake saw of it.
struct Run {
    description: ExecutionDescription,
    elapsed: Duration,
    history: Vec<HistoryEvent>,
    record: Arc<Mutex<Record>>,
}

impl Run {
    /// UpdateJobExecution payloads, in order.
    fn job_updates(&self) -> Vec<Value> {
        self.calls_of("UpdateJobExecution")
    }

    fn calls_of(&self, function: &str) -> Vec<Value> {
        let record = self.record.lock().unwrap();
        let calls = record
            .invocations
            .iter()
            .filter(|(name, _)| name == function);
        calls.map(|(_, payload)| payload.clone()).collect()
    }

    fn update_thing_calls(&self) -> Vec<Value> {
        self.record.lock().unwrap().update_thing_calls.clone()
    }

    fn search_calls(&self) -> Vec<Value> {
        self.record.lock().unwrap().search_calls.clone()
    }

    /// The callbacks the device sent, by label, with whether the engine accepted them.
    fn callbacks(&self) -> Vec<(String, bool)> {
        let record = self.record.lock().unwrap();
        record
            .callbacks
            .iter()
            .map(|(label, result)| (label.clone(), result.is_ok()))
            .collect()
    }

    fn late_callbacks(&self) -> Vec<String> {
        let record = self.record.lock().unwrap();
        let late = record
            .callbacks
            .iter()
            .filter(|(_, r)| matches!(r, Err(CallbackError::TaskTimedOut(_))));
        late.map(|(label, _)| label.clone()).collect()
    }

    fn timed_out_tasks(&self) -> Vec<String> {
        let timed_out = self
            .history
            .iter()
            .filter_map(|event| match &event.details {
                EventDetails::TaskTimedOut { error, .. } => Some(error.clone()),
                _ => None,
            });
        timed_out.collect()
    }

    fn assert_failed(&self, error: &str, reason: &str) {
        assert_eq!(
            self.description.status,
            ExecutionStatus::Failed,
            "{:?}",
            self.description
        );
        assert_eq!(self.description.error.as_deref(), Some(error));
        assert_eq!(self.description.cause.as_deref(), Some(reason));
    }
}

fn notify_next_input() -> Value {
    json!({
        "thingName": THING,
        "execution": {"jobId": JOB, "jobDocument": {"firmwareVersion": VERSION}}
    })
}

async fn run(script: Script) -> Run {
    run_with_input(script, notify_next_input()).await
}

async fn run_with_input(script: Script, input: Value) -> Run {
    let engine = Engine::new(EngineConfig::default());
    let record = Arc::new(Mutex::new(Record::default()));
    let fake = Arc::new(Fake {
        search_replies: Mutex::new(script.search.clone()),
        script,
        engine: Arc::downgrade(&engine),
        record: record.clone(),
    });
    for resource in [LAMBDA_INVOKE, IOT_SEARCH_INDEX, IOT_UPDATE_THING] {
        engine.register(resource, fake.clone());
    }
    let subs = substitutions(&PlatformConfig::default());
    let machine = engine
        .create_state_machine("firmware_upgrade", FIRMWARE_UPGRADE_DEFINITION, &subs)
        .expect("the definition loads");

    let started = Instant::now();
    let arn = engine
        .start_execution(&machine, Some("sim-0001_job-1"), input)
        .await
        .unwrap();
    let limit = Duration::from_secs(4 * 3600);
    let description = tokio::time::timeout(limit, engine.wait_for_execution(&arn))
        .await
        .expect("the execution finishes within its own 3-hour timeout")
        .expect("the execution exists");
    let elapsed = started.elapsed();
    // Let the fake device's pending callbacks run, so late ones are recorded.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let history = engine.history(&arn).unwrap();
    Run {
        description,
        elapsed,
        history,
        record,
    }
}

fn in_progress() -> Value {
    json!({
        "thingName": THING,
        "jobId": JOB,
        "status": "IN_PROGRESS",
        "statusDetails": {"step": "SendDownload"}
    })
}

fn final_update(status: &str, step: &str, reason: &str) -> Value {
    json!({
        "thingName": THING,
        "jobId": JOB,
        "status": status,
        "statusDetails": {"step": step, "reason": reason}
    })
}

fn thing_updated_to_target_version() -> Value {
    json!({
        "ThingName": THING,
        "AttributePayload": {"Attributes": {"firmwareVersion": VERSION}, "Merge": true}
    })
}

#[tokio::test(start_paused = true)]
async fn happy_path_upgrades_and_records_the_new_version() {
    let run = run(Script::default()).await;

    assert_eq!(run.description.status, ExecutionStatus::Succeeded);
    let reason = "device runs firmware 1.2.3";
    assert_eq!(
        run.description.output,
        Some(json!({"status": "SUCCEEDED", "step": "Done", "reason": reason}))
    );
    assert_eq!(
        run.job_updates(),
        [in_progress(), final_update("SUCCEEDED", "Done", reason)]
    );
    assert_eq!(
        run.update_thing_calls(),
        [thing_updated_to_target_version()]
    );
    assert_eq!(
        run.search_calls(),
        [json!({"IndexName": "AWS_Things", "QueryString": "thingName:sim-0001"})]
    );
    assert_eq!(run.elapsed, Duration::from_secs(2 + 60));
    assert_eq!(
        run.callbacks(),
        [
            ("OperateResp success".to_string(), true),
            ("TransferComplete success".to_string(), true),
            ("OperationComplete success".to_string(), true),
            ("Boot success".to_string(), true),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn happy_path_sends_the_functions_the_inputs_they_accept() {
    let run = run(Script::default()).await;

    let send = run.calls_of("SendUspCommand");
    assert_eq!(send.len(), 1);
    let token = send[0]["taskToken"]
        .as_str()
        .expect("a task token")
        .to_string();
    assert_eq!(
        send[0],
        json!({"thingName": THING, "jobId": JOB, "firmwareVersion": VERSION, "taskToken": token})
    );
    let events: Vec<(String, String)> = run
        .calls_of("AwaitDeviceEvent")
        .iter()
        .map(|p| {
            assert_eq!((&p["thingName"], &p["jobId"]), (&json!(THING), &json!(JOB)));
            (
                p["event"].as_str().unwrap().to_string(),
                p["taskToken"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Boot", "OperationComplete", "TransferComplete"]);
    let mut tokens: Vec<&str> = events.iter().map(|(_, t)| t.as_str()).collect();
    tokens.push(&token);
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 4, "every wait has its own task token");
}

#[tokio::test(start_paused = true)]
async fn device_missing_from_the_fleet_index_fails_at_check_device() {
    let script = Script {
        search: vec![Ok(json!({"Things": []}))],
        ..Script::default()
    };
    let run = run(script).await;

    let reason = "device not found in the fleet index";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [final_update("FAILED", "CheckDevice", reason)]
    );
    assert!(run.calls_of("SendUspCommand").is_empty());
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn thing_without_firmware_version_attribute_fails_at_check_device() {
    let search = search_result(json!({"model": "sim"}), json!(true));
    let run = run(Script {
        search: vec![Ok(search)],
        ..Script::default()
    })
    .await;

    let reason = "thing has no firmwareVersion attribute";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [final_update("FAILED", "CheckDevice", reason)]
    );
    assert!(run.calls_of("SendUspCommand").is_empty());
}

#[tokio::test(start_paused = true)]
async fn disconnected_device_fails_at_check_device() {
    let search = search_result(json!({"firmwareVersion": "1.0.0"}), json!(false));
    let run = run(Script {
        search: vec![Ok(search)],
        ..Script::default()
    })
    .await;

    let reason = "device is not connected";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [final_update("FAILED", "CheckDevice", reason)]
    );
    assert!(run.calls_of("SendUspCommand").is_empty());
}

#[tokio::test(start_paused = true)]
async fn device_without_connectivity_data_counts_as_not_connected() {
    let thing =
        json!({"Things": [{"ThingName": THING, "Attributes": {"firmwareVersion": "1.0.0"}}]});
    let run = run(Script {
        search: vec![Ok(thing)],
        ..Script::default()
    })
    .await;

    let reason = "device is not connected";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [final_update("FAILED", "CheckDevice", reason)]
    );
}

#[tokio::test(start_paused = true)]
async fn device_already_on_the_target_version_succeeds_without_an_operate() {
    let search = search_result(json!({"firmwareVersion": VERSION}), json!(true));
    let run = run(Script {
        search: vec![Ok(search)],
        ..Script::default()
    })
    .await;

    let reason = "device already runs firmware 1.2.3";
    assert_eq!(run.description.status, ExecutionStatus::Succeeded);
    assert_eq!(
        run.description.output,
        Some(json!({"status": "SUCCEEDED", "step": "CheckDevice", "reason": reason}))
    );
    assert_eq!(
        run.job_updates(),
        [final_update("SUCCEEDED", "CheckDevice", reason)]
    );
    assert!(run.calls_of("SendUspCommand").is_empty());
    assert!(run.calls_of("AwaitDeviceEvent").is_empty());
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn throttled_fleet_search_is_retried_until_it_answers() {
    let throttled = TaskFailure::new("Iot.ThrottlingException", "Rate exceeded");
    let ok = Script::default().search[0].clone();
    let script = Script {
        search: vec![Err(throttled.clone()), Err(throttled), ok],
        ..Script::default()
    };
    let run = run(script).await;

    assert_eq!(run.description.status, ExecutionStatus::Succeeded);
    assert_eq!(run.search_calls().len(), 3);
    let retried = run.history.iter().filter(|e| matches!(&e.details, EventDetails::StateRetried { name, error, .. } if name == "LookUpDevice" && error == "Iot.ThrottlingException")).count();
    assert_eq!(retried, 2);
    assert_eq!(run.job_updates()[0], in_progress());
    assert_eq!(
        run.update_thing_calls(),
        [thing_updated_to_target_version()]
    );
}

#[tokio::test(start_paused = true)]
async fn fleet_search_throttled_past_max_attempts_fails_at_look_up() {
    let throttled = TaskFailure::new("Iot.ThrottlingException", "Rate exceeded");
    let run = run(Script {
        search: vec![Err(throttled)],
        ..Script::default()
    })
    .await;

    let reason = "Iot.ThrottlingException: Rate exceeded";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.search_calls().len(),
        5,
        "the first attempt and MaxAttempts 4 retries"
    );
    assert_eq!(
        run.job_updates(),
        [final_update("FAILED", "LookUpDevice", reason)]
    );
}

#[tokio::test(start_paused = true)]
async fn fleet_search_failing_hard_fails_at_look_up_without_retries() {
    let missing = TaskFailure::new(
        "Iot.ResourceNotFoundException",
        "index `AWS_Things` does not exist",
    );
    let run = run(Script {
        search: vec![Err(missing)],
        ..Script::default()
    })
    .await;

    let reason = "Iot.ResourceNotFoundException: index `AWS_Things` does not exist";
    run.assert_failed("FAILED", reason);
    assert_eq!(run.search_calls().len(), 1);
    assert_eq!(
        run.job_updates(),
        [final_update("FAILED", "LookUpDevice", reason)]
    );
    assert!(run.calls_of("SendUspCommand").is_empty());
}

#[tokio::test(start_paused = true)]
async fn failing_to_mark_in_progress_fails_the_job_execution_without_sending() {
    let conflict = function_error(
        "JobExecutionConflict",
        "job execution already finished: job-1/sim-0001",
    );
    let cause = conflict.cause.clone();
    let run = run(Script {
        mark_in_progress: Some(conflict),
        ..Script::default()
    })
    .await;

    let reason = format!("JobExecutionConflict: {cause}");
    run.assert_failed("FAILED", &reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("FAILED", "MarkInProgress", &reason)
        ]
    );
    assert!(run.calls_of("SendUspCommand").is_empty());
}

#[tokio::test(start_paused = true)]
async fn job_service_errors_on_mark_in_progress_are_retried() {
    let unavailable = function_error(
        "JobServiceError",
        "job service failed: service unavailable: x",
    );
    let cause = unavailable.cause.clone();
    let run = run(Script {
        mark_in_progress: Some(unavailable),
        ..Script::default()
    })
    .await;

    let reason = format!("JobServiceError: {cause}");
    run.assert_failed("FAILED", &reason);
    let updates = run.job_updates();
    assert_eq!(
        updates.len(),
        6,
        "five IN_PROGRESS attempts and the final FAILED"
    );
    assert!(updates[..5].iter().all(|u| *u == in_progress()));
    assert_eq!(
        updates[5],
        final_update("FAILED", "MarkInProgress", &reason)
    );
}

#[tokio::test(start_paused = true)]
async fn missing_firmware_image_fails_at_send_download() {
    let missing = function_error(
        "FirmwareImageNotFound",
        "firmware image for version `1.2.3` not found",
    );
    let cause = missing.cause.clone();
    let run = run(Script {
        send_download: Err(missing),
        ..Script::default()
    })
    .await;

    let reason = format!("FirmwareImageNotFound: {cause}");
    run.assert_failed("FAILED", &reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("FAILED", "SendDownload", &reason)
        ]
    );
    assert_eq!(
        run.calls_of("SendUspCommand").len(),
        1,
        "not a retryable error"
    );
    assert!(run.calls_of("AwaitDeviceEvent").is_empty());
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn operate_refused_by_the_device_fails_at_send_download() {
    let cause = json!({"executedCommand": "Device.DeviceInfo.FirmwareImage.2.Download()", "errCode": 7004, "errMsg": "busy"}).to_string();
    let answer = Answer::Failure {
        after: 2,
        error: "Usp.OperateFailed",
        cause: cause.clone(),
    };
    let run = run(Script {
        send_download: Ok(answer),
        ..Script::default()
    })
    .await;

    let reason = format!("Usp.OperateFailed: {cause}");
    run.assert_failed("FAILED", &reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("FAILED", "SendDownload", &reason)
        ]
    );
    assert!(run.calls_of("AwaitDeviceEvent").is_empty());
    assert_eq!(run.elapsed, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn missing_operate_resp_times_out_after_120_seconds() {
    let run = run(Script {
        send_download: Ok(Answer::Silent),
        ..Script::default()
    })
    .await;

    let reason = "no OperateResp from the device within 120 s";
    run.assert_failed("TIMED_OUT", reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("TIMED_OUT", "SendDownload", reason)
        ]
    );
    assert_eq!(run.elapsed, Duration::from_secs(120));
    assert_eq!(run.timed_out_tasks(), ["States.Timeout"]);
    assert!(run.calls_of("AwaitDeviceEvent").is_empty());
}

#[tokio::test(start_paused = true)]
async fn failed_transfer_fails_the_notifications_and_cancels_the_other_waits() {
    let cause = json!({"faultCode": 7106, "faultString": "unsupported image"}).to_string();
    let transfer = Answer::Failure {
        after: 30,
        error: "Usp.TransferFailed",
        cause: cause.clone(),
    };
    let run = run(Script {
        transfer,
        ..Script::default()
    })
    .await;

    let reason = format!("Usp.TransferFailed: {cause}");
    run.assert_failed("FAILED", &reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("FAILED", "AwaitNotifications", &reason)
        ]
    );
    assert_eq!(run.elapsed, Duration::from_secs(2 + 30));
    assert_eq!(
        run.late_callbacks(),
        ["OperationComplete success", "Boot success"]
    );
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn failed_operation_complete_fails_the_notifications() {
    let cause = json!({"errCode": 7002, "errMsg": "image corrupt"}).to_string();
    let operation = Answer::Failure {
        after: 31,
        error: "Usp.OperationFailed",
        cause: cause.clone(),
    };
    let run = run(Script {
        operation,
        ..Script::default()
    })
    .await;

    let reason = format!("Usp.OperationFailed: {cause}");
    run.assert_failed("FAILED", &reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("FAILED", "AwaitNotifications", &reason)
        ]
    );
    assert_eq!(run.late_callbacks(), ["Boot success"]);
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn missing_boot_times_out_after_its_900_second_heartbeat() {
    let run = run(Script {
        boot: Answer::Silent,
        ..Script::default()
    })
    .await;

    let reason = "Device.BootTimedOut: no Boot notification from the device in time (heartbeat 900 s, timeout 3600 s)";
    run.assert_failed("TIMED_OUT", reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("TIMED_OUT", "AwaitNotifications", reason)
        ]
    );
    assert_eq!(run.elapsed, Duration::from_secs(2 + 900));
    assert_eq!(run.timed_out_tasks(), ["States.HeartbeatTimeout"]);
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn heartbeats_every_600_seconds_keep_the_boot_wait_alive_past_900_seconds() {
    let boot = Answer::Heartbeats {
        every: 600,
        beats: 3,
        output: boot(true, json!(VERSION)),
    };
    let run = run(Script {
        boot,
        ..Script::default()
    })
    .await;

    assert_eq!(
        run.description.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        run.description
    );
    assert_eq!(run.elapsed, Duration::from_secs(2 + 4 * 600));
    assert!(run.timed_out_tasks().is_empty());
    let boot_callbacks: Vec<(String, bool)> = run
        .callbacks()
        .into_iter()
        .filter(|(label, _)| label.starts_with("Boot"))
        .collect();
    assert_eq!(
        boot_callbacks,
        [
            ("Boot heartbeat".to_string(), true),
            ("Boot heartbeat".to_string(), true),
            ("Boot heartbeat".to_string(), true),
            ("Boot success".to_string(), true),
        ]
    );
    assert_eq!(
        run.update_thing_calls(),
        [thing_updated_to_target_version()]
    );
}

#[tokio::test(start_paused = true)]
async fn boot_without_firmware_updated_fails_verification() {
    let boot_answer = Answer::Success {
        after: 60,
        output: boot(false, json!(VERSION)),
    };
    let run = run(Script {
        boot: boot_answer,
        ..Script::default()
    })
    .await;

    let reason = "device booted firmware 1.2.3 (firmwareUpdated false), expected 1.2.3";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [in_progress(), final_update("FAILED", "VerifyBoot", reason)]
    );
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn boot_into_another_version_fails_verification() {
    let boot_answer = Answer::Success {
        after: 60,
        output: boot(true, json!("1.0.0")),
    };
    let run = run(Script {
        boot: boot_answer,
        ..Script::default()
    })
    .await;

    let reason = "device booted firmware 1.0.0 (firmwareUpdated true), expected 1.2.3";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [in_progress(), final_update("FAILED", "VerifyBoot", reason)]
    );
    assert!(run.update_thing_calls().is_empty());
}

#[tokio::test(start_paused = true)]
async fn boot_without_a_software_version_fails_verification() {
    let boot_answer = Answer::Success {
        after: 60,
        output: boot(true, Value::Null),
    };
    let run = run(Script {
        boot: boot_answer,
        ..Script::default()
    })
    .await;

    let reason = "device booted firmware null (firmwareUpdated true), expected 1.2.3";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [in_progress(), final_update("FAILED", "VerifyBoot", reason)]
    );
}

#[tokio::test(start_paused = true)]
async fn failing_registry_update_fails_after_the_upgrade() {
    let missing = TaskFailure::new(
        "Iot.ResourceNotFoundException",
        "thing `sim-0001` not found",
    );
    let run = run(Script {
        update_thing: Err(missing),
        ..Script::default()
    })
    .await;

    let reason = "Iot.ResourceNotFoundException: thing `sim-0001` not found";
    run.assert_failed("FAILED", reason);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("FAILED", "UpdateThingVersion", reason)
        ]
    );
    assert_eq!(
        run.update_thing_calls(),
        [thing_updated_to_target_version()]
    );
}

#[tokio::test(start_paused = true)]
async fn boot_wait_ends_at_its_3600_second_timeout_even_while_heartbeats_arrive() {
    let boot = Answer::Heartbeats {
        every: 500,
        beats: 10,
        output: boot(true, json!(VERSION)),
    };
    let run = run(Script {
        boot,
        ..Script::default()
    })
    .await;

    // The Fail state's Cause names the heartbeat although the TimeoutSeconds expired.
    let reason = "Device.BootTimedOut: no Boot notification from the device in time (heartbeat 900 s, timeout 3600 s)";
    run.assert_failed("TIMED_OUT", reason);
    assert_eq!(run.elapsed, Duration::from_secs(2 + 3600));
    assert_eq!(run.timed_out_tasks(), ["States.Timeout"]);
    assert_eq!(
        run.job_updates(),
        [
            in_progress(),
            final_update("TIMED_OUT", "AwaitNotifications", reason)
        ]
    );
    assert_eq!(
        run.late_callbacks().last().map(String::as_str),
        Some("Boot success")
    );
}

#[tokio::test(start_paused = true)]
async fn failing_final_status_update_fails_the_execution_with_the_job_service_error() {
    let conflict = function_error(
        "JobExecutionConflict",
        "job execution already finished: job-1/sim-0001",
    );
    let cause = conflict.cause.clone();
    let run = run(Script {
        mark_final: Some(conflict),
        ..Script::default()
    })
    .await;

    assert_eq!(run.description.status, ExecutionStatus::Failed);
    assert_eq!(
        run.description.error.as_deref(),
        Some("JobExecutionConflict")
    );
    assert_eq!(run.description.cause.as_deref(), Some(cause.as_str()));
    let reason = "device runs firmware 1.2.3";
    assert_eq!(
        run.job_updates(),
        [in_progress(), final_update("SUCCEEDED", "Done", reason)]
    );
    assert_eq!(
        run.update_thing_calls(),
        [thing_updated_to_target_version()]
    );
}

#[tokio::test(start_paused = true)]
async fn job_document_without_firmware_version_fails_before_any_job_update() {
    let input = json!({"thingName": THING, "execution": {"jobId": JOB, "jobDocument": {}}});
    let run = run_with_input(Script::default(), input).await;

    assert_eq!(run.description.status, ExecutionStatus::Failed);
    assert_eq!(run.description.error.as_deref(), Some("States.Runtime"));
    let cause = run.description.cause.clone().unwrap_or_default();
    assert!(cause.contains("'ReadJob'"), "{cause}");
    assert!(
        cause.contains("$.execution.jobDocument.firmwareVersion"),
        "{cause}"
    );
    assert!(run.search_calls().is_empty());
    assert!(
        run.job_updates().is_empty(),
        "the job execution is never marked"
    );
}
