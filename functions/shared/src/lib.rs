//! What every WME Lambda function shares: its [`Settings`] read once from the environment, the
//! SDK clients built once per cold start ([`Clients`]), tracing set up for Lambda's JSON log
//! format, and the mapping of workflow errors to the stable error names that the state
//! machine's `Retry` and `Catch` match ([`failure`]).

use std::time::Duration;

use aws_config::SdkConfig;
use lambda_runtime::Diagnostic;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wme_workflow::{Controller, ErrorName};

#[cfg(feature = "test-fakes")]
pub mod fakes;

pub use aws_config;
pub use lambda_runtime;

/// The error name of an event that does not parse into the handler's input.
pub const INVALID_INPUT: &str = "InvalidInput";

/// A setting that is missing or unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    /// A required variable is not set.
    #[error("environment variable `{0}` is not set")]
    Missing(&'static str),
    /// A variable holds something unusable.
    #[error("environment variable `{name}` = `{value}` is not {expected}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

/// The functions' settings, from the environment the template sets.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TOKEN_TABLE`: the task-token table.
    pub token_table: Option<String>,
    /// `FIRMWARE_BUCKET`: the firmware bucket.
    pub firmware_bucket: Option<String>,
    /// `TOKEN_TTL_SECONDS` (default 4 h, past the executions' 3 h timeout).
    pub token_ttl: Duration,
    /// `DOWNLOAD_URL_TTL_SECONDS` (default 1 h).
    pub download_url_ttl: Duration,
    /// `CONTROLLER_ENDPOINT_ID` and `AGENT_ENDPOINT_PREFIX`.
    pub controller: Controller,
    /// `IOT_DATA_ENDPOINT`: `https://...-ats.iot.<region>.amazonaws.com`, or asked of
    /// DescribeEndpoint when unset.
    pub iot_data_endpoint: Option<String>,
    /// `IOT_JOBS_ENDPOINT`, likewise for the Jobs data plane.
    pub iot_jobs_endpoint: Option<String>,
}

impl Settings {
    /// Reads the settings through `var` (the process environment in `main`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let defaults = Controller::default();
        Ok(Self {
            token_table: var("TOKEN_TABLE"),
            firmware_bucket: var("FIRMWARE_BUCKET"),
            token_ttl: seconds(&var, "TOKEN_TTL_SECONDS", 4 * 3600)?,
            download_url_ttl: seconds(&var, "DOWNLOAD_URL_TTL_SECONDS", 3600)?,
            controller: Controller {
                endpoint_id: var("CONTROLLER_ENDPOINT_ID").unwrap_or(defaults.endpoint_id),
                agent_endpoint_prefix: var("AGENT_ENDPOINT_PREFIX")
                    .unwrap_or(defaults.agent_endpoint_prefix),
            },
            iot_data_endpoint: var("IOT_DATA_ENDPOINT"),
            iot_jobs_endpoint: var("IOT_JOBS_ENDPOINT"),
        })
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The token table, required by the functions that use it.
    pub fn require_token_table(&self) -> Result<&str, SettingsError> {
        self.token_table
            .as_deref()
            .ok_or(SettingsError::Missing("TOKEN_TABLE"))
    }

    /// The firmware bucket, required by the command sender.
    pub fn require_firmware_bucket(&self) -> Result<&str, SettingsError> {
        self.firmware_bucket
            .as_deref()
            .ok_or(SettingsError::Missing("FIRMWARE_BUCKET"))
    }
}

fn seconds(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<Duration, SettingsError> {
    let Some(value) = var(name) else {
        return Ok(Duration::from_secs(default));
    };
    match value.parse::<u64>() {
        Ok(secs) if secs > 0 => Ok(Duration::from_secs(secs)),
        _ => Err(SettingsError::Invalid {
            name,
            value,
            expected: "a positive number of seconds",
        }),
    }
}

/// The SDK configuration a function's clients are built from.
pub async fn sdk_config() -> SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Sets up tracing for Lambda: JSON lines when the function's log format is JSON, each carrying
/// the invocation's span with its `requestId`.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// The Lambda error for a workflow error: its stable name as the error type.
pub fn failure<E: ErrorName + std::fmt::Display>(error: &E) -> Diagnostic {
    Diagnostic {
        error_type: error.error_name().into(),
        error_message: error.to_string(),
    }
}

/// The handler's input parsed from the event, or an `InvalidInput` failure naming the problem.
pub fn parse_input<T: DeserializeOwned>(event: Value) -> Result<T, Diagnostic> {
    serde_json::from_value(event).map_err(|e| Diagnostic {
        error_type: INVALID_INPUT.into(),
        error_message: format!("invalid input: {e}"),
    })
}

/// The clients the functions use, built once per cold start.
pub mod clients {
    use super::*;
    use wme_aws::endpoints::{self, EndpointError};

    /// IoT control plane.
    pub fn iot(config: &SdkConfig) -> aws_sdk_iot::Client {
        aws_sdk_iot::Client::new(config)
    }

    /// DynamoDB.
    pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(config)
    }

    /// Step Functions.
    pub fn sfn(config: &SdkConfig) -> aws_sdk_sfn::Client {
        aws_sdk_sfn::Client::new(config)
    }

    /// S3.
    pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::new(config)
    }

    /// IoT Data, bound to `endpoint` or to the account's `iot:Data-ATS` endpoint.
    pub async fn iot_data(
        config: &SdkConfig,
        endpoint: Option<&str>,
    ) -> Result<aws_sdk_iotdataplane::Client, EndpointError> {
        let url = resolve(config, endpoint, endpoints::DATA_ATS).await?;
        let conf = aws_sdk_iotdataplane::config::Builder::from(config)
            .endpoint_url(url)
            .build();
        Ok(aws_sdk_iotdataplane::Client::from_conf(conf))
    }

    /// IoT Jobs data plane, bound to `endpoint` or to the account's `iot:Jobs` endpoint.
    pub async fn iot_jobs_data(
        config: &SdkConfig,
        endpoint: Option<&str>,
    ) -> Result<aws_sdk_iotjobsdataplane::Client, EndpointError> {
        let url = resolve(config, endpoint, endpoints::JOBS).await?;
        let conf = aws_sdk_iotjobsdataplane::config::Builder::from(config)
            .endpoint_url(url)
            .build();
        Ok(aws_sdk_iotjobsdataplane::Client::from_conf(conf))
    }

    /// IoT Jobs data plane on the SDK's regional endpoint, for a function that never calls it
    /// (create-job builds `IotJobs` for CreateJob alone) and so needs no DescribeEndpoint.
    pub fn iot_jobs_data_regional(config: &SdkConfig) -> aws_sdk_iotjobsdataplane::Client {
        aws_sdk_iotjobsdataplane::Client::new(config)
    }

    async fn resolve(
        config: &SdkConfig,
        endpoint: Option<&str>,
        endpoint_type: &str,
    ) -> Result<String, EndpointError> {
        match endpoint {
            Some(url) => Ok(url.to_string()),
            None => endpoints::iot_endpoint(&iot(config), endpoint_type).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_what_the_template_may_leave_out() {
        let settings = Settings::from_vars(|name| (name == "TOKEN_TABLE").then(|| "t".into()));
        let settings = settings.unwrap();
        assert_eq!(settings.require_token_table(), Ok("t"));
        assert_eq!(settings.token_ttl, Duration::from_secs(4 * 3600));
        assert_eq!(settings.controller.endpoint_id, "self::wme-controller");
        assert_eq!(
            settings.require_firmware_bucket(),
            Err(SettingsError::Missing("FIRMWARE_BUCKET"))
        );
    }

    #[test]
    fn a_ttl_that_is_not_a_positive_number_is_refused_by_name() {
        let err = Settings::from_vars(|name| (name == "TOKEN_TTL_SECONDS").then(|| "0".into()))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable `TOKEN_TTL_SECONDS` = `0` is not a positive number of seconds"
        );
    }

    #[test]
    fn an_unparsable_event_is_invalid_input() {
        let err =
            parse_input::<wme_workflow::SendCommandInput>(serde_json::json!({"x": 1})).unwrap_err();
        assert_eq!(err.error_type, INVALID_INPUT);
    }
}
