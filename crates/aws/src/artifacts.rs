//! Firmware images in S3: `firmware/<version>.bin`, uploaded with the user metadata `sha256`
//! (lowercase hex); devices download them through a presigned GET URL.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use tracing::debug;
use wme_workflow::ports::{ArtifactStore, FirmwareImage, PortError};

/// The user-metadata key holding an image's SHA-256 (`x-amz-meta-sha256`).
pub const SHA256_METADATA: &str = "sha256";

/// The object key of a version's image.
pub fn image_key(version: &str) -> String {
    format!("firmware/{version}.bin")
}

/// The firmware bucket.
#[derive(Debug, Clone)]
pub struct S3Artifacts {
    client: aws_sdk_s3::Client,
    bucket: String,
    url_ttl: Duration,
}

impl S3Artifacts {
    /// Images in `bucket`, with download URLs valid for `url_ttl`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, url_ttl: Duration) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            url_ttl,
        }
    }

    async fn presigned_url(&self, key: &str) -> Result<String, PortError> {
        let config = PresigningConfig::expires_in(self.url_ttl).map_err(|e| {
            PortError::Invalid(format!("url lifetime {:?} is not valid: {e}", self.url_ttl))
        })?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| PortError::Unavailable(format!("s3 presigning failed: {e}")))?;
        Ok(request.uri().to_string())
    }
}

#[async_trait]
impl ArtifactStore for S3Artifacts {
    async fn firmware_image(&self, version: &str) -> Result<FirmwareImage, PortError> {
        let key = image_key(version);
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(se) if se.is_not_found() => PortError::NotFound {
                    kind: "firmware image",
                    name: format!("s3://{}/{key}", self.bucket),
                },
                _ => PortError::Unavailable(format!(
                    "s3 HeadObject of `{key}` failed: {}",
                    DisplayErrorContext(&e)
                )),
            })?;
        let sha256 = head
            .metadata()
            .and_then(|m| m.get(SHA256_METADATA))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                PortError::Invalid(format!(
                    "s3://{}/{key} has no x-amz-meta-sha256 of 64 hex digits; upload it with \
                     --metadata sha256=<hex>",
                    self.bucket
                ))
            })?
            .to_ascii_lowercase();
        let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
        let url = self.presigned_url(&key).await?;
        // The URL carries a signature: log the key, never the URL.
        debug!(key = %key, size, "firmware url presigned");
        Ok(FirmwareImage {
            url,
            size,
            sha256,
            credentials: None,
        })
    }
}
