//! Firmware images and the HTTP server devices download them from.
//!
//! Images live in memory. Each starts with a header line `WME-FIRMWARE <version>\n` (the
//! simulator reads the version it will boot from it) followed by filler bytes. Downloads need
//! HTTP basic auth with credentials made at start-up and passed to devices in the Operate, the
//! way a presigned URL passes its signature on AWS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tracing::{debug, info};
use wme_workflow::ports::{ArtifactStore, FirmwareImage, PortError};

/// The header line every image starts with.
pub fn image_header(version: &str) -> String {
    format!("WME-FIRMWARE {version}\n")
}

/// Makes an image of `size` bytes (at least the header) for `version`.
pub fn make_image(version: &str, size: usize) -> Bytes {
    let mut image = image_header(version).into_bytes();
    let mut block = Sha256::digest(version.as_bytes()).to_vec();
    while image.len() < size {
        image.extend_from_slice(&block);
        block = Sha256::digest(&block).to_vec();
    }
    image.truncate(size.max(image_header(version).len()));
    Bytes::from(image)
}

#[derive(Debug)]
struct Stored {
    bytes: Bytes,
    sha256: String,
}

/// The image store and its server's address and credentials.
pub struct Artifacts {
    base_url: String,
    username: String,
    password: String,
    /// Read on every download, written when an image is added.
    images: RwLock<HashMap<String, Stored>>,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifacts")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Artifacts {
    /// A store served at `addr`, with fresh random credentials.
    pub fn new(addr: SocketAddr) -> Self {
        let password = uuid::Uuid::new_v4().simple().to_string();
        Self {
            base_url: format!("http://{addr}"),
            username: "wme-device".into(),
            password,
            images: RwLock::new(HashMap::new()),
        }
    }

    /// Adds (or replaces) the image of `version`.
    pub fn put_image(&self, version: &str, bytes: Bytes) {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        info!(version = %version, size = bytes.len(), sha256 = %sha256, "firmware image stored");
        self.images
            .write()
            .expect("images lock")
            .insert(version.into(), Stored { bytes, sha256 });
    }

    fn url(&self, version: &str) -> String {
        format!("{}/firmware/{version}.bin", self.base_url)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let expected = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password));
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .is_some_and(|given| given.trim() == expected)
    }
}

#[async_trait]
impl ArtifactStore for Artifacts {
    async fn firmware_image(&self, version: &str) -> Result<FirmwareImage, PortError> {
        let images = self.images.read().expect("images lock");
        let stored = images.get(version).ok_or_else(|| PortError::NotFound {
            kind: "firmware image",
            name: version.into(),
        })?;
        Ok(FirmwareImage {
            url: self.url(version),
            size: stored.bytes.len() as u64,
            sha256: stored.sha256.clone(),
            credentials: Some((self.username.clone(), self.password.clone())),
        })
    }
}

/// Serves `/firmware/<version>.bin` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    artifacts: Arc<Artifacts>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/firmware/{file}", get(download))
        .with_state(artifacts);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn download(
    State(artifacts): State<Arc<Artifacts>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !artifacts.authorized(&headers) {
        debug!(file = %file, "download refused: bad or missing credentials");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"wme\"")],
        )
            .into_response();
    }
    let version = file.strip_suffix(".bin").unwrap_or("");
    let images = artifacts.images.read().expect("images lock");
    match images.get(version) {
        Some(stored) => {
            debug!(file = %file, "firmware download");
            (
                [(header::CONTENT_TYPE, "application/octet-stream")],
                stored.bytes.clone(),
            )
                .into_response()
        }
        None => {
            debug!(file = %file, "firmware download: not found");
            (
                StatusCode::NOT_FOUND,
                format!("no firmware image `{file}`\n"),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_starts_with_its_version_header_and_has_the_asked_size() {
        let image = make_image("1.2.3", 4096);
        assert_eq!(image.len(), 4096);
        assert!(image.starts_with(b"WME-FIRMWARE 1.2.3\n"));
        assert_ne!(make_image("1.2.3", 4096), make_image("1.2.4", 4096));
    }

    #[tokio::test]
    async fn image_lookup_reports_size_checksum_and_credentials() {
        let artifacts = Artifacts::new("127.0.0.1:8080".parse().unwrap());
        artifacts.put_image("1.2.3", make_image("1.2.3", 100));
        let image = artifacts.firmware_image("1.2.3").await.unwrap();
        assert_eq!(image.url, "http://127.0.0.1:8080/firmware/1.2.3.bin");
        assert_eq!(image.size, 100);
        assert_eq!(
            image.sha256,
            hex::encode(Sha256::digest(make_image("1.2.3", 100)))
        );
        assert!(!format!("{image:?}").contains(&artifacts.password));
        assert_eq!(
            artifacts.firmware_image("9.9.9").await.unwrap_err(),
            PortError::NotFound {
                kind: "firmware image",
                name: "9.9.9".into()
            }
        );
    }
}
