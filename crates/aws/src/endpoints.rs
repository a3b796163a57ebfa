//! The account-specific IoT endpoints that the IoT Data and IoT Jobs data-plane clients need.

use aws_sdk_iot::error::DisplayErrorContext;

/// The endpoint type for publishing (`iot:Data-ATS`).
pub const DATA_ATS: &str = "iot:Data-ATS";
/// The endpoint type of the Jobs data plane (`iot:Jobs`).
pub const JOBS: &str = "iot:Jobs";

/// Why an endpoint could not be had.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// DescribeEndpoint failed.
    #[error("iot DescribeEndpoint for `{endpoint_type}` failed: {message}")]
    Describe {
        /// The endpoint type asked for.
        endpoint_type: String,
        /// The service's words.
        message: String,
    },
    /// DescribeEndpoint answered without an address.
    #[error("iot DescribeEndpoint for `{0}` returned no address")]
    Empty(String),
}

/// The `https://` URL of the account's endpoint of `endpoint_type`.
pub async fn iot_endpoint(
    iot: &aws_sdk_iot::Client,
    endpoint_type: &str,
) -> Result<String, EndpointError> {
    let out = iot
        .describe_endpoint()
        .endpoint_type(endpoint_type)
        .send()
        .await
        .map_err(|e| EndpointError::Describe {
            endpoint_type: endpoint_type.into(),
            message: format!("{}", DisplayErrorContext(&e)),
        })?;
    let address = out
        .endpoint_address()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| EndpointError::Empty(endpoint_type.into()))?;
    Ok(format!("https://{address}"))
}
