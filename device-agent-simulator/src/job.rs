//! A firmware download from request to report: checking the Download() request, then the timed
//! sequence download, `TransferComplete!`, `OperationComplete` and, with AutoActivate, the
//! hand-over to the agent for the activation reboot and `Boot!`.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::Url;
use tokio::time::{Instant, sleep_until};
use tracing::{debug, info, warn};
use wme_usp::{
    Boot, CommandFailure, FirmwareDownload, Msg, OperComplete, OperateRequest, TransferComplete,
};

use crate::behaviour::Behaviour;
use crate::codes;
use crate::config::StepDelays;
use crate::download::{self, FetchRequest, display_url};
use crate::firmware::{
    self, Expected, FirmwareTable, ImageStatus, SHA_256, TransferFault, VerifiedImage,
};
use crate::state::{AgentCell, Phase};
use crate::transport::Publisher;

/// `TransferComplete!.TransferType` of a download.
const TRANSFER_TYPE_DOWNLOAD: &str = "Download";
/// `Boot!.Cause` of a reboot a controller asked for (here: Download() with AutoActivate).
pub const BOOT_CAUSE_REMOTE_REBOOT: &str = "RemoteReboot";
/// Parameter reported in `Boot!.ParameterMap`.
pub const SOFTWARE_VERSION_PARAM: &str = "Device.DeviceInfo.SoftwareVersion";
/// Subscription ids put in the Notify messages. The simulator has no subscription table; these
/// stand for the subscriptions a controller would have created.
pub const TRANSFER_COMPLETE_SUBSCRIPTION: &str = "wme-sim-transfer-complete";
pub const OPER_COMPLETE_SUBSCRIPTION: &str = "wme-sim-oper-complete";
pub const BOOT_SUBSCRIPTION: &str = "wme-sim-boot";

/// Why a Download() request is answered with a failure instead of being started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: u32,
    pub message: String,
}

/// A checked Download() request.
#[derive(Debug, Clone)]
pub struct DownloadPlan {
    pub instance: usize,
    pub download: FirmwareDownload,
    pub url: Url,
    pub expected: Expected,
    pub command_key: String,
}

/// Checks an Operate request against the commands and images this agent has.
pub fn plan_download(
    req: &OperateRequest,
    table: &FirmwareTable,
) -> Result<DownloadPlan, Rejection> {
    let reject = |code, message: String| Rejection { code, message };
    let Some(obj_path) = req.command.strip_suffix(wme_usp::msg::DOWNLOAD_COMMAND) else {
        return Err(reject(codes::INVALID_PATH, unsupported(&req.command)));
    };
    let Some(instance) = firmware::image_instance(obj_path) else {
        return Err(reject(codes::INVALID_PATH, unsupported(&req.command)));
    };
    if table.image(instance).is_none() {
        let message = format!(
            "object {obj_path} does not exist; this agent has firmware images 1 to {}",
            firmware::IMAGE_COUNT
        );
        return Err(reject(codes::OBJECT_DOES_NOT_EXIST, message));
    }
    let download = FirmwareDownload::from_operate(req)
        .map_err(|e| reject(codes::INVALID_COMMAND_ARGUMENTS, e.to_string()))?;
    let url = Url::parse(&download.url).map_err(|e| {
        reject(
            codes::INVALID_COMMAND_ARGUMENTS,
            format!("invalid URL argument: {e}"),
        )
    })?;
    let expected = expected(&download).map_err(|m| reject(codes::INVALID_COMMAND_ARGUMENTS, m))?;
    Ok(DownloadPlan {
        instance,
        download,
        url,
        expected,
        command_key: req.command_key.clone(),
    })
}

fn unsupported(command: &str) -> String {
    format!(
        "unsupported command {command:?}; this agent supports {}{{i}}.{}",
        firmware::FIRMWARE_IMAGE_TABLE,
        wme_usp::msg::DOWNLOAD_COMMAND
    )
}

fn expected(download: &FirmwareDownload) -> Result<Expected, String> {
    let sha256 = match (&download.checksum_algorithm, &download.checksum) {
        (_, None) => None,
        (None, Some(_)) => return Err("CheckSum given without CheckSumAlgorithm".to_owned()),
        (Some(algo), Some(_)) if !algo.eq_ignore_ascii_case(SHA_256) => {
            return Err(format!(
                "unsupported CheckSumAlgorithm {algo:?}; this agent verifies {SHA_256} only"
            ));
        }
        (Some(_), Some(sum)) if sum.len() != 64 || hex::decode(sum).is_err() => {
            return Err(format!("CheckSum {sum:?} is not 64 hex digits (SHA-256)"));
        }
        (Some(_), Some(sum)) => Some(sum.to_ascii_lowercase()),
    };
    Ok(Expected {
        file_size: download.file_size,
        sha256,
    })
}

/// Everything a running job needs from its agent.
#[derive(Clone)]
pub struct JobContext {
    pub cell: Arc<AgentCell>,
    pub publisher: Publisher,
    pub http: reqwest::Client,
    pub delays: StepDelays,
    pub endpoint_id: String,
    pub controller_endpoint_id: String,
    pub controller_topic: String,
    /// The endpoint that sent the Download(), reported as `Requestor`.
    pub requestor: String,
    /// Prefix of the msg ids of this job's Notify messages.
    pub msg_prefix: String,
}

/// How a job ended.
#[derive(Debug)]
pub enum JobEnd {
    Done,
    /// The new image is stored and AutoActivate was set: reboot into it.
    Reboot(Reboot),
}

/// An activation reboot the agent owes.
#[derive(Debug, Clone)]
pub struct Reboot {
    /// When the agent is back up and sends `Boot!`.
    pub back_at: Instant,
    pub instance: usize,
    pub command_key: String,
    /// msg_id of the `Boot!` Notify.
    pub boot_msg_id: String,
}

/// Runs the download sequence; `accepted_at` is when the OperateResp was sent.
pub async fn run(ctx: JobContext, plan: DownloadPlan, accepted_at: Instant) -> JobEnd {
    let start_time = now();
    ctx.cell.set_phase(Phase::Downloading);
    set_image_status(&ctx.cell, plan.instance, ImageStatus::Downloading);

    let (outcome, fetched_url) = fetch(&ctx, &plan).await;
    let complete_time = now();
    record_outcome(&ctx.cell, plan.instance, &outcome);

    sleep_until(accepted_at + ctx.delays.transfer).await;
    send_transfer_complete(
        &ctx,
        &plan,
        &outcome,
        start_time,
        complete_time,
        fetched_url,
    )
    .await;
    ctx.cell.set_phase(Phase::Transferred);

    sleep_until(accepted_at + ctx.delays.oper_complete).await;
    send_oper_complete(&ctx, &plan, &outcome).await;

    match outcome {
        Ok(_) if plan.download.auto_activate => JobEnd::Reboot(Reboot {
            back_at: accepted_at + ctx.delays.boot,
            instance: plan.instance,
            command_key: plan.command_key,
            boot_msg_id: format!("{}-boot", ctx.msg_prefix),
        }),
        _ => {
            ctx.cell.set_phase(Phase::Idle);
            JobEnd::Done
        }
    }
}

/// Fetches the image the way the agent's behaviour says; returns the URL actually fetched.
async fn fetch(
    ctx: &JobContext,
    plan: &DownloadPlan,
) -> (Result<VerifiedImage, TransferFault>, String) {
    let behaviour = ctx.cell.behaviour;
    let url = match behaviour {
        Behaviour::Download404 => download::missing_url(&plan.url),
        _ => plan.url.clone(),
    };
    let request = FetchRequest {
        url,
        username: plan.download.username.clone(),
        password: plan.download.password.clone(),
        expected: plan.expected.clone(),
        corrupt: behaviour == Behaviour::BadChecksum,
    };
    let shown = display_url(&request.url);
    debug!(url = %shown, "downloading firmware image");
    let outcome = download::fetch(&ctx.http, &request).await;
    match &outcome {
        Ok(image) => {
            info!(url = %shown, version = %image.version, size = image.size, "firmware image downloaded and verified")
        }
        Err(fault) => {
            warn!(url = %shown, fault_code = fault.code(), error = %fault, "firmware download failed")
        }
    }
    (outcome, shown)
}

fn set_image_status(cell: &AgentCell, instance: usize, status: ImageStatus) {
    cell.lock().firmware.set_status(instance, status);
}

fn record_outcome(
    cell: &AgentCell,
    instance: usize,
    outcome: &Result<VerifiedImage, TransferFault>,
) {
    let mut state = cell.lock();
    match outcome {
        Ok(image) => state.firmware.store(instance, &image.version),
        Err(fault) => state.firmware.set_status(instance, fault.image_status()),
    }
}

async fn send_transfer_complete(
    ctx: &JobContext,
    plan: &DownloadPlan,
    outcome: &Result<VerifiedImage, TransferFault>,
    start_time: String,
    complete_time: String,
    fetched_url: String,
) {
    let (fault_code, fault_string) = match outcome {
        Ok(_) => (0, String::new()),
        Err(fault) => (fault.code(), fault.to_string()),
    };
    let event = TransferComplete {
        command: plan.download.command(),
        command_key: plan.command_key.clone(),
        requestor: ctx.requestor.clone(),
        transfer_type: TRANSFER_TYPE_DOWNLOAD.to_owned(),
        affected: plan.download.obj_path.clone(),
        transfer_url: fetched_url,
        start_time,
        complete_time,
        fault_code,
        fault_string,
    };
    let msg_id = format!("{}-transfer-complete", ctx.msg_prefix);
    let msg =
        wme_usp::notify_transfer_complete(&msg_id, TRANSFER_COMPLETE_SUBSCRIPTION, true, &event);
    publish(ctx, &msg, "TransferComplete!").await;
}

async fn send_oper_complete(
    ctx: &JobContext,
    plan: &DownloadPlan,
    outcome: &Result<VerifiedImage, TransferFault>,
) {
    let result = match outcome {
        // TR-181 Download() has no output arguments.
        Ok(_) => Ok(HashMap::new()),
        Err(fault) => Err(CommandFailure {
            err_code: codes::COMMAND_FAILURE,
            err_msg: fault.to_string(),
        }),
    };
    let event = OperComplete {
        obj_path: plan.download.obj_path.clone(),
        command_name: wme_usp::msg::DOWNLOAD_COMMAND.to_owned(),
        command_key: plan.command_key.clone(),
        result,
    };
    let msg_id = format!("{}-oper-complete", ctx.msg_prefix);
    let msg = wme_usp::notify_oper_complete(&msg_id, OPER_COMPLETE_SUBSCRIPTION, true, &event);
    publish(ctx, &msg, "OperationComplete").await;
}

async fn publish(ctx: &JobContext, msg: &Msg, what: &'static str) {
    let record = wme_usp::encode_msg_record(&ctx.endpoint_id, &ctx.controller_endpoint_id, msg);
    match ctx.publisher.publish(&ctx.controller_topic, record).await {
        Ok(()) => debug!(notify = what, "notification sent"),
        Err(e) => warn!(notify = what, error = %e, "cannot send notification"),
    }
}

/// Boots into the downloaded image, or, for `boot-fails`, back into the old one, and returns
/// the `Boot!` event to report.
pub fn activate(cell: &AgentCell, reboot: &Reboot) -> Boot {
    let mut state = cell.lock();
    let updated = cell.behaviour != Behaviour::BootFails;
    if updated {
        state.firmware.activate(reboot.instance);
    } else {
        state
            .firmware
            .set_status(reboot.instance, ImageStatus::ActivationFailed);
    }
    let mut map = serde_json::Map::new();
    map.insert(
        SOFTWARE_VERSION_PARAM.to_owned(),
        state.firmware.running_version().into(),
    );
    Boot {
        command_key: reboot.command_key.clone(),
        cause: BOOT_CAUSE_REMOTE_REBOOT.to_owned(),
        firmware_updated: updated,
        parameter_map: serde_json::Value::Object(map).to_string(),
    }
}

/// The current time as TR-106 `dateTime` (RFC 3339, UTC, milliseconds).
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operate(command: &str, args: &[(&str, &str)]) -> OperateRequest {
        OperateRequest {
            msg_id: "m1".into(),
            command: command.into(),
            command_key: "ck".into(),
            send_resp: true,
            input_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn download_args() -> Vec<(&'static str, &'static str)> {
        vec![
            ("URL", "http://127.0.0.1:1/fw.bin"),
            ("AutoActivate", "true"),
        ]
    }

    const DOWNLOAD_2: &str = "Device.DeviceInfo.FirmwareImage.2.Download()";

    #[test]
    fn a_valid_download_is_planned_for_its_image() {
        let mut args = download_args();
        args.push(("CheckSumAlgorithm", "SHA-256"));
        let sum = "AB".repeat(32);
        args.push(("CheckSum", &sum));
        args.push(("FileSize", "42"));
        let plan = plan_download(&operate(DOWNLOAD_2, &args), &FirmwareTable::new("1")).unwrap();
        assert_eq!(plan.instance, 2);
        assert_eq!(plan.command_key, "ck");
        assert_eq!(
            plan.expected,
            Expected {
                file_size: Some(42),
                sha256: Some("ab".repeat(32))
            }
        );
    }

    #[test]
    fn an_unknown_command_is_an_invalid_path() {
        let req = operate("Device.Reboot()", &[]);
        let rejection = plan_download(&req, &FirmwareTable::new("1")).unwrap_err();
        assert_eq!(rejection.code, codes::INVALID_PATH);
        assert_eq!(
            rejection.message,
            "unsupported command \"Device.Reboot()\"; this agent supports \
             Device.DeviceInfo.FirmwareImage.{i}.Download()"
        );
    }

    #[test]
    fn a_missing_image_instance_does_not_exist() {
        let req = operate(
            "Device.DeviceInfo.FirmwareImage.3.Download()",
            &download_args(),
        );
        let rejection = plan_download(&req, &FirmwareTable::new("1")).unwrap_err();
        assert_eq!(rejection.code, codes::OBJECT_DOES_NOT_EXIST);
    }

    #[test]
    fn a_missing_url_is_an_invalid_argument() {
        let req = operate(DOWNLOAD_2, &[("AutoActivate", "true")]);
        let rejection = plan_download(&req, &FirmwareTable::new("1")).unwrap_err();
        assert_eq!(
            rejection,
            Rejection {
                code: codes::INVALID_COMMAND_ARGUMENTS,
                message: "missing argument URL".into()
            }
        );
    }

    #[test]
    fn an_unsupported_checksum_algorithm_is_refused_up_front() {
        let mut args = download_args();
        args.push(("CheckSumAlgorithm", "SHA-1"));
        args.push(("CheckSum", "00"));
        let rejection =
            plan_download(&operate(DOWNLOAD_2, &args), &FirmwareTable::new("1")).unwrap_err();
        assert_eq!(rejection.code, codes::INVALID_COMMAND_ARGUMENTS);
        assert_eq!(
            rejection.message,
            "unsupported CheckSumAlgorithm \"SHA-1\"; this agent verifies SHA-256 only"
        );
    }

    #[test]
    fn a_checksum_that_is_not_sha256_hex_is_refused() {
        let mut args = download_args();
        args.push(("CheckSumAlgorithm", "SHA-256"));
        args.push(("CheckSum", "xyz"));
        let rejection =
            plan_download(&operate(DOWNLOAD_2, &args), &FirmwareTable::new("1")).unwrap_err();
        assert_eq!(
            rejection.message,
            "CheckSum \"xyz\" is not 64 hex digits (SHA-256)"
        );
    }

    #[test]
    fn an_unparsable_url_is_an_invalid_argument() {
        let req = operate(
            DOWNLOAD_2,
            &[("URL", "not a url"), ("AutoActivate", "false")],
        );
        let rejection = plan_download(&req, &FirmwareTable::new("1")).unwrap_err();
        assert_eq!(rejection.code, codes::INVALID_COMMAND_ARGUMENTS);
        assert!(
            rejection.message.starts_with("invalid URL argument: "),
            "{}",
            rejection.message
        );
    }

    fn cell(behaviour: Behaviour) -> Arc<AgentCell> {
        let (count, _) = tokio::sync::watch::channel(0);
        let cell = AgentCell::new(
            "sim-0001".into(),
            behaviour,
            FirmwareTable::new("1.2.1"),
            count,
        );
        cell.lock().firmware.store(2, "1.2.3");
        cell
    }

    fn reboot() -> Reboot {
        Reboot {
            back_at: Instant::now(),
            instance: 2,
            command_key: "ck".into(),
            boot_msg_id: "b".into(),
        }
    }

    #[test]
    fn activation_runs_the_new_image_and_reports_it() {
        let cell = cell(Behaviour::Ok);
        let boot = activate(&cell, &reboot());
        assert_eq!(cell.status().firmware_version, "1.2.3");
        assert_eq!(boot.cause, "RemoteReboot");
        assert!(boot.firmware_updated);
        assert_eq!(
            boot.parameter_map,
            r#"{"Device.DeviceInfo.SoftwareVersion":"1.2.3"}"#
        );
    }

    #[test]
    fn a_failing_boot_keeps_the_old_image_and_says_so() {
        let cell = cell(Behaviour::BootFails);
        let boot = activate(&cell, &reboot());
        assert_eq!(cell.status().firmware_version, "1.2.1");
        assert!(!boot.firmware_updated);
        assert_eq!(
            boot.parameter_map,
            r#"{"Device.DeviceInfo.SoftwareVersion":"1.2.1"}"#
        );
        assert_eq!(
            cell.lock().firmware.image(2).unwrap().status,
            ImageStatus::ActivationFailed
        );
    }
}
