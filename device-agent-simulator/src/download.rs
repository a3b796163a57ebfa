//! Fetching a firmware image over HTTP and verifying it as it streams in.
//!
//! Every failure becomes a [`TransferFault`] with the TR-069 code a real device would report.
//! URLs in fault strings and logs never show a password.

use std::error::Error as _;
use std::time::Duration;

use reqwest::{StatusCode, Url};

use crate::firmware::{Expected, ImageVerifier, TransferFault, VerifiedImage};

/// Images larger than this are refused when the Download() gives no `FileSize`.
pub const MAX_IMAGE_BYTES: u64 = 256 * 1024 * 1024;
/// Appended to the URL path by the `download-404` behaviour.
pub const MISSING_SUFFIX: &str = ".missing";

/// One download, as the Download() arguments describe it.
#[derive(Clone)]
pub struct FetchRequest {
    pub url: Url,
    pub username: Option<String>,
    pub password: Option<String>,
    pub expected: Expected,
    /// Flip a bit of the first byte before verifying (the `bad-checksum` behaviour).
    pub corrupt: bool,
}

/// Builds the HTTP client all agents share: one connection pool for the whole process.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(16)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

/// The URL with any password removed, for fault strings and logs.
pub fn display_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// The URL the `download-404` behaviour fetches: the real one with [`MISSING_SUFFIX`] appended
/// to its path, which the file server does not have.
pub fn missing_url(url: &Url) -> Url {
    let mut missing = url.clone();
    let path = format!("{}{MISSING_SUFFIX}", url.path());
    missing.set_path(&path);
    missing
}

/// Downloads and verifies an image without holding it in memory.
pub async fn fetch(
    client: &reqwest::Client,
    req: &FetchRequest,
) -> Result<VerifiedImage, TransferFault> {
    let url = display_url(&req.url);
    if req.url.scheme() != "http" {
        return Err(TransferFault::UnsupportedProtocol {
            scheme: req.url.scheme().to_owned(),
        });
    }
    let mut response = send(client, req, &url).await?;
    check_status(response.status(), &url)?;

    let limit = req.expected.file_size.unwrap_or(MAX_IMAGE_BYTES);
    let mut verifier = ImageVerifier::new();
    let mut first = true;
    while let Some(chunk) = next_chunk(&mut response, &url).await? {
        if req.corrupt && first && !chunk.is_empty() {
            let mut bytes = chunk.to_vec();
            bytes[0] ^= 1;
            verifier.update(&bytes);
        } else {
            verifier.update(&chunk);
        }
        first = first && chunk.is_empty();
        if verifier.size() > limit {
            return Err(too_large(req, &url, limit, verifier.size()));
        }
    }
    verifier.finish(&req.expected)
}

async fn send(
    client: &reqwest::Client,
    req: &FetchRequest,
    url: &str,
) -> Result<reqwest::Response, TransferFault> {
    let mut builder = client.get(req.url.clone());
    if let Some(user) = &req.username {
        builder = builder.basic_auth(user, req.password.as_ref());
    }
    builder
        .send()
        .await
        .map_err(|e| TransferFault::Unreachable {
            url: url.to_owned(),
            reason: reason(e),
        })
}

fn check_status(status: StatusCode, url: &str) -> Result<(), TransferFault> {
    if status.is_success() {
        return Ok(());
    }
    let shown = match status.canonical_reason() {
        Some(text) => format!("{} {}", status.as_u16(), text.to_lowercase()),
        None => status.as_u16().to_string(),
    };
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return Err(TransferFault::AuthenticationFailed {
            url: url.to_owned(),
            status: shown,
        });
    }
    Err(TransferFault::NotAccessible {
        url: url.to_owned(),
        status: shown,
    })
}

async fn next_chunk(
    response: &mut reqwest::Response,
    url: &str,
) -> Result<Option<bytes::Bytes>, TransferFault> {
    response
        .chunk()
        .await
        .map_err(|e| TransferFault::Incomplete {
            url: url.to_owned(),
            reason: reason(e),
        })
}

fn too_large(req: &FetchRequest, url: &str, limit: u64, got: u64) -> TransferFault {
    match req.expected.file_size {
        Some(expected) => TransferFault::SizeMismatch { expected, got },
        None => TransferFault::Incomplete {
            url: url.to_owned(),
            reason: format!("image is larger than the {limit} byte limit"),
        },
    }
}

/// The error and its causes, without the URL reqwest puts in its own message.
fn reason(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_url_hides_the_password_but_keeps_the_rest() {
        let url = Url::parse("http://fw:s3cret@127.0.0.1:8080/images/a.bin?x=1").unwrap();
        assert_eq!(
            display_url(&url),
            "http://fw:***@127.0.0.1:8080/images/a.bin?x=1"
        );
    }

    #[test]
    fn missing_url_appends_to_the_path_not_the_query() {
        let url = Url::parse("http://127.0.0.1:8080/images/a.bin?x=1").unwrap();
        assert_eq!(
            missing_url(&url).as_str(),
            "http://127.0.0.1:8080/images/a.bin.missing?x=1"
        );
    }

    #[test]
    fn http_statuses_map_to_transfer_faults() {
        let url = "http://h/f";
        assert_eq!(check_status(StatusCode::OK, url), Ok(()));
        assert_eq!(
            check_status(StatusCode::NOT_FOUND, url)
                .unwrap_err()
                .to_string(),
            "http 404 not found for http://h/f"
        );
        assert_eq!(
            check_status(StatusCode::FORBIDDEN, url).unwrap_err().code(),
            9019
        );
        assert_eq!(
            check_status(StatusCode::INTERNAL_SERVER_ERROR, url)
                .unwrap_err()
                .code(),
            9016
        );
    }

    #[tokio::test]
    async fn a_non_http_url_is_an_unsupported_protocol() {
        let req = FetchRequest {
            url: Url::parse("ftp://127.0.0.1/a.bin").unwrap(),
            username: None,
            password: None,
            expected: Expected::default(),
            corrupt: false,
        };
        let fault = fetch(&http_client(), &req).await.unwrap_err();
        assert_eq!(fault.code(), 9013);
        assert_eq!(
            fault.to_string(),
            "unsupported transfer protocol \"ftp\"; the simulator downloads over http only"
        );
    }
}
