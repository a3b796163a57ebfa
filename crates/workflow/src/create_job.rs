//! JobsCreateJob: turns an operator's campaign request into an IoT job made from the
//! `FirmwareUpgrade` template.

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use crate::ErrorName;
use crate::model::TargetArn;
use crate::ports::{Jobs, NewJob, PortError, TargetSelection};

/// The template every firmware-upgrade job is made from.
pub const FIRMWARE_UPGRADE_TEMPLATE: &str = "FirmwareUpgrade";

/// The request an operator sends (the seed's payload, plus optional `targets` and
/// `targetSelection`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateJobRequest {
    /// The firmware version to install.
    pub firmware_version: Option<String>,
    /// What triggered the upgrade (`manual`, `scheduled`, `automatic`).
    pub upgrade_trigger: Option<String>,
    /// One target.
    pub target_arn: Option<String>,
    /// Several targets.
    pub targets: Option<Vec<String>>,
    /// `SNAPSHOT` (default) or `CONTINUOUS`.
    pub target_selection: Option<String>,
}

/// The job created.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedJob {
    /// The job id, also the USP command key.
    pub job_id: String,
    /// The job ARN.
    pub job_arn: String,
    /// The job document.
    pub document: Value,
}

/// Why a job could not be created. Each names the field or target at fault.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CreateJobError {
    /// The payload is not a JSON object of the expected shape.
    #[error("invalid create-job payload: {0}")]
    InvalidPayload(String),
    /// A required field is absent.
    #[error("missing field `{0}` in the create-job payload")]
    MissingField(&'static str),
    /// A field has a value that is not allowed.
    #[error("invalid `{field}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A target does not exist.
    #[error("unknown target `{0}`: no such thing or thing group")]
    UnknownTarget(String),
    /// The job template is missing.
    #[error("job template `{0}` not found; create it before creating jobs")]
    TemplateNotFound(String),
    /// The job service failed.
    #[error("job service failed: {0}")]
    Service(PortError),
}

impl ErrorName for CreateJobError {
    fn error_name(&self) -> &'static str {
        match self {
            CreateJobError::InvalidPayload(_)
            | CreateJobError::MissingField(_)
            | CreateJobError::InvalidField { .. } => "InvalidInput",
            CreateJobError::UnknownTarget(_) => "UnknownTarget",
            CreateJobError::TemplateNotFound(_) => "JobTemplateNotFound",
            CreateJobError::Service(_) => "JobServiceError",
        }
    }
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
struct ValidRequest {
    firmware_version: String,
    upgrade_trigger: String,
    targets: Vec<TargetArn>,
    target_selection: TargetSelection,
}

/// Creates the job. `payload` is the raw event the function was invoked with.
pub async fn create_job(jobs: &dyn Jobs, payload: &Value) -> Result<CreatedJob, CreateJobError> {
    let request = validate(payload)?;
    let template = jobs
        .job_template(FIRMWARE_UPGRADE_TEMPLATE)
        .await
        .map_err(|e| match e {
            PortError::NotFound { .. } => {
                CreateJobError::TemplateNotFound(FIRMWARE_UPGRADE_TEMPLATE.into())
            }
            other => CreateJobError::Service(other),
        })?;

    let mut document = template.document.clone();
    if !document.is_object() {
        document = json!({});
    }
    document["firmwareVersion"] = json!(request.firmware_version);
    document["upgradeTrigger"] = json!(request.upgrade_trigger);
    let job_id = job_id_for(&request.firmware_version);
    let job = NewJob {
        job_id: job_id.clone(),
        targets: request.targets.clone(),
        document: document.clone(),
        description: format!("{} to {}", template.description, request.firmware_version),
        target_selection: request.target_selection,
        template_arn: template.arn.clone(),
    };
    let created = jobs.create_job(job).await.map_err(|e| match e {
        PortError::NotFound { name, .. } => CreateJobError::UnknownTarget(name),
        other => CreateJobError::Service(other),
    })?;
    info!(job_id = %created.job_id, firmware_version = %request.firmware_version, targets = request.targets.len(), "job created");
    Ok(CreatedJob {
        job_id: created.job_id,
        job_arn: created.job_arn,
        document,
    })
}

/// A job id that says what the job does and is unique: `firmware-upgrade-1_2_3-<8 hex>`.
fn job_id_for(version: &str) -> String {
    let version: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    format!("firmware-upgrade-{version}-{}", &unique[..8])
}

fn validate(payload: &Value) -> Result<ValidRequest, CreateJobError> {
    if !payload.is_object() {
        return Err(CreateJobError::InvalidPayload(format!(
            "expected a JSON object, got {}",
            json_kind(payload)
        )));
    }
    let request: CreateJobRequest = serde_json::from_value(payload.clone())
        .map_err(|e| CreateJobError::InvalidPayload(e.to_string()))?;
    let firmware_version = request
        .firmware_version
        .ok_or(CreateJobError::MissingField("firmwareVersion"))?;
    check_version(&firmware_version)?;
    let upgrade_trigger = request.upgrade_trigger.unwrap_or_else(|| "manual".into());
    if !matches!(
        upgrade_trigger.as_str(),
        "manual" | "scheduled" | "automatic"
    ) {
        return Err(CreateJobError::InvalidField {
            field: "upgradeTrigger",
            reason: format!("`{upgrade_trigger}` is not one of manual, scheduled, automatic"),
        });
    }
    let targets = parse_targets(request.target_arn, request.targets)?;
    let target_selection = match request.target_selection.as_deref() {
        None | Some("SNAPSHOT") => TargetSelection::Snapshot,
        Some("CONTINUOUS") => TargetSelection::Continuous,
        Some(other) => {
            return Err(CreateJobError::InvalidField {
                field: "targetSelection",
                reason: format!("`{other}` is not SNAPSHOT or CONTINUOUS"),
            });
        }
    };
    Ok(ValidRequest {
        firmware_version,
        upgrade_trigger,
        targets,
        target_selection,
    })
}

/// Checks a firmware version as the create-job handler does.
pub fn check_version(version: &str) -> Result<(), CreateJobError> {
    let valid = !version.is_empty()
        && version.len() <= 64
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    if valid {
        Ok(())
    } else {
        Err(CreateJobError::InvalidField {
            field: "firmwareVersion",
            reason: format!(
                "`{version}` is not a version (1 to 64 letters, digits, '.', '-', '_', '+')"
            ),
        })
    }
}

fn parse_targets(
    target_arn: Option<String>,
    targets: Option<Vec<String>>,
) -> Result<Vec<TargetArn>, CreateJobError> {
    let (field, arns): (&'static str, Vec<String>) = match (target_arn, targets) {
        (Some(_), Some(_)) => {
            return Err(CreateJobError::InvalidField {
                field: "targets",
                reason: "give either targetArn or targets, not both".into(),
            });
        }
        (Some(arn), None) => ("targetArn", vec![arn]),
        (None, Some(list)) if list.is_empty() => {
            return Err(CreateJobError::InvalidField {
                field: "targets",
                reason: "the list is empty".into(),
            });
        }
        (None, Some(list)) => ("targets", list),
        (None, None) => return Err(CreateJobError::MissingField("targetArn")),
    };
    arns.iter()
        .map(|arn| {
            arn.parse()
                .map_err(|reason| CreateJobError::InvalidField { field, reason })
        })
        .collect()
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_payload() -> Value {
        json!({
            "firmwareVersion": "1.2.3",
            "upgradeTrigger": "manual",
            "targetArn": "arn:aws:iot:local:000000000000:thinggroup/devices_on_factory_firmware_version"
        })
    }

    #[test]
    fn seed_payload_is_valid() {
        let request = validate(&seed_payload()).unwrap();
        assert_eq!(request.firmware_version, "1.2.3");
        assert_eq!(
            request.targets[0].name(),
            "devices_on_factory_firmware_version"
        );
        assert_eq!(request.target_selection, TargetSelection::Snapshot);
    }

    #[test]
    fn missing_firmware_version_names_the_field() {
        let mut payload = seed_payload();
        payload.as_object_mut().unwrap().remove("firmwareVersion");
        let err = validate(&payload).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing field `firmwareVersion` in the create-job payload"
        );
        assert_eq!(err.error_name(), "InvalidInput");
    }

    #[test]
    fn malformed_target_arn_names_the_field_and_value() {
        let mut payload = seed_payload();
        payload["targetArn"] = json!("devices_on_factory_firmware_version");
        let err = validate(&payload).unwrap_err();
        assert!(
            matches!(
                err,
                CreateJobError::InvalidField {
                    field: "targetArn",
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("`devices_on_factory_firmware_version`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_refused_by_name() {
        let mut payload = seed_payload();
        payload["firmwareVersoin"] = json!("1.2.3");
        let err = validate(&payload).unwrap_err();
        assert!(err.to_string().contains("firmwareVersoin"), "{err}");
    }

    #[test]
    fn wrong_type_and_non_object_payloads_are_refused() {
        let err = validate(&json!({"firmwareVersion": 123, "targetArn": "x"})).unwrap_err();
        assert!(matches!(err, CreateJobError::InvalidPayload(_)), "{err}");
        let err = validate(&json!("1.2.3")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid create-job payload: expected a JSON object, got a string"
        );
    }

    #[test]
    fn bad_version_and_trigger_are_refused() {
        let mut payload = seed_payload();
        payload["firmwareVersion"] = json!("1.2.3; rm -rf /");
        assert!(matches!(
            validate(&payload).unwrap_err(),
            CreateJobError::InvalidField {
                field: "firmwareVersion",
                ..
            }
        ));
        let mut payload = seed_payload();
        payload["upgradeTrigger"] = json!("whenever");
        assert!(matches!(
            validate(&payload).unwrap_err(),
            CreateJobError::InvalidField {
                field: "upgradeTrigger",
                ..
            }
        ));
    }

    #[test]
    fn job_id_is_a_valid_aws_job_id() {
        let id = job_id_for("1.2.3+build.7");
        assert!(id.starts_with("firmware-upgrade-1_2_3_build_7-"), "{id}");
        assert!(id.len() <= 64);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
