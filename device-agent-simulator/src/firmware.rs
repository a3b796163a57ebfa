//! The simulated device's firmware: its TR-181 `Device.DeviceInfo.FirmwareImage.{i}` table and
//! the checks a downloaded image must pass. No I/O happens here.
//!
//! A WME firmware image is a file whose first line is `WME-FIRMWARE <version>\n`; the bytes after
//! it are opaque. The simulator learns the version it will run after activation from that line,
//! because the Download() command itself carries no version.

use sha2::{Digest, Sha256};

/// The first bytes of every WME firmware image.
pub const IMAGE_MAGIC: &str = "WME-FIRMWARE ";
/// The longest header line accepted, newline included.
pub const MAX_HEADER_LEN: usize = 128;
/// The only `CheckSumAlgorithm` the simulator verifies.
pub const SHA_256: &str = "SHA-256";
/// Object path prefix of the firmware image table.
pub const FIRMWARE_IMAGE_TABLE: &str = "Device.DeviceInfo.FirmwareImage.";
/// The number of images every simulated device has (TR-181 devices usually have two banks).
pub const IMAGE_COUNT: usize = 2;

/// TR-181 `FirmwareImage.{i}.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    NoImage,
    Downloading,
    Validating,
    Available,
    DownloadFailed,
    ValidationFailed,
    InstallationFailed,
    ActivationFailed,
}

impl ImageStatus {
    /// The TR-181 enumeration value.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::NoImage => "NoImage",
            ImageStatus::Downloading => "Downloading",
            ImageStatus::Validating => "Validating",
            ImageStatus::Available => "Available",
            ImageStatus::DownloadFailed => "DownloadFailed",
            ImageStatus::ValidationFailed => "ValidationFailed",
            ImageStatus::InstallationFailed => "InstallationFailed",
            ImageStatus::ActivationFailed => "ActivationFailed",
        }
    }
}

/// One row of the firmware image table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareImage {
    /// TR-181 `Version`; empty when the bank holds no image.
    pub version: String,
    pub status: ImageStatus,
}

/// The firmware image table plus which image is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareTable {
    images: Vec<FirmwareImage>,
    /// 1-based instance number of the running image (TR-181 `ActiveFirmwareImage`).
    active: usize,
}

impl FirmwareTable {
    /// Image 1 is active and runs `version`; image 2 is empty.
    pub fn new(version: &str) -> Self {
        let mut images = vec![
            FirmwareImage {
                version: String::new(),
                status: ImageStatus::NoImage,
            };
            IMAGE_COUNT
        ];
        images[0] = FirmwareImage {
            version: version.to_owned(),
            status: ImageStatus::Available,
        };
        FirmwareTable { images, active: 1 }
    }

    /// The version of the running image (TR-181 `Device.DeviceInfo.SoftwareVersion`).
    pub fn running_version(&self) -> &str {
        &self.images[self.active - 1].version
    }

    /// The 1-based instance number of the running image.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The image with this 1-based instance number, if the device has it.
    pub fn image(&self, instance: usize) -> Option<&FirmwareImage> {
        instance.checked_sub(1).and_then(|i| self.images.get(i))
    }

    /// Sets the status of an existing image; unknown instances are ignored because callers
    /// only pass instances they looked up with [`FirmwareTable::image`].
    pub fn set_status(&mut self, instance: usize, status: ImageStatus) {
        if let Some(image) = instance.checked_sub(1).and_then(|i| self.images.get_mut(i)) {
            image.status = status;
        }
    }

    /// Records a verified image in a bank.
    pub fn store(&mut self, instance: usize, version: &str) {
        if let Some(image) = instance.checked_sub(1).and_then(|i| self.images.get_mut(i)) {
            image.version = version.to_owned();
            image.status = ImageStatus::Available;
        }
    }

    /// Makes an image the running one.
    pub fn activate(&mut self, instance: usize) {
        if self.image(instance).is_some() {
            self.active = instance;
        }
    }
}

/// The 1-based instance number in an object path such as `Device.DeviceInfo.FirmwareImage.2.`.
pub fn image_instance(obj_path: &str) -> Option<usize> {
    let rest = obj_path.strip_prefix(FIRMWARE_IMAGE_TABLE)?;
    let number = rest.strip_suffix('.')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// A TR-069/TR-181 transfer fault: why a download did not produce a usable image.
///
/// The codes are the TR-069 file transfer fault codes that `TransferComplete!.FaultCode` uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferFault {
    /// 9013: the URL's scheme is not one the simulator downloads with.
    #[error("unsupported transfer protocol {scheme:?}; the simulator downloads over http only")]
    UnsupportedProtocol { scheme: String },
    /// 9015: no TCP connection or no HTTP response from the file server.
    #[error("cannot reach file server for {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// 9016: the server answered, but not with the file (404, 500, ...).
    #[error("http {status} for {url}")]
    NotAccessible { url: String, status: String },
    /// 9019: the server refused the credentials (401, 403).
    #[error("http {status} for {url}: authentication failed")]
    AuthenticationFailed { url: String, status: String },
    /// 9017: the body could not be read to its end.
    #[error("download of {url} did not complete: {reason}")]
    Incomplete { url: String, reason: String },
    /// 9018: the size differs from the Download() `FileSize`.
    #[error("file size mismatch: expected {expected} bytes, got {got}")]
    SizeMismatch { expected: u64, got: u64 },
    /// 9018: the SHA-256 differs from the Download() `CheckSum`.
    #[error("checksum mismatch: expected {expected}, got {got}")]
    ChecksumMismatch { expected: String, got: String },
    /// 9018: the file is not a WME firmware image.
    #[error("invalid firmware image: {reason}")]
    InvalidImage { reason: String },
}

impl TransferFault {
    /// The TR-069 fault code reported in `TransferComplete!.FaultCode`.
    pub fn code(&self) -> u32 {
        match self {
            TransferFault::UnsupportedProtocol { .. } => 9013,
            TransferFault::Unreachable { .. } => 9015,
            TransferFault::NotAccessible { .. } => 9016,
            TransferFault::Incomplete { .. } => 9017,
            TransferFault::SizeMismatch { .. }
            | TransferFault::ChecksumMismatch { .. }
            | TransferFault::InvalidImage { .. } => 9018,
            TransferFault::AuthenticationFailed { .. } => 9019,
        }
    }

    /// The image status a failed transfer leaves behind.
    pub fn image_status(&self) -> ImageStatus {
        match self.code() {
            9018 => ImageStatus::ValidationFailed,
            _ => ImageStatus::DownloadFailed,
        }
    }
}

/// What the Download() arguments say the file must look like.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected {
    pub file_size: Option<u64>,
    /// Lowercase hex SHA-256.
    pub sha256: Option<String>,
}

/// A downloaded image that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedImage {
    pub version: String,
    pub size: u64,
    pub sha256: String,
}

/// Checks an image as it streams in, so no image is ever held in memory whole.
#[derive(Debug, Clone, Default)]
pub struct ImageVerifier {
    hasher: Sha256,
    size: u64,
    /// Bytes of the header line seen so far, until the newline arrives.
    header: Vec<u8>,
    header_done: bool,
}

impl ImageVerifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Feeds the next chunk of the file.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        if !self.header_done {
            self.collect_header(chunk);
        }
    }

    fn collect_header(&mut self, chunk: &[u8]) {
        let room = MAX_HEADER_LEN.saturating_sub(self.header.len());
        let take = &chunk[..chunk.len().min(room)];
        match take.iter().position(|b| *b == b'\n') {
            Some(end) => {
                self.header.extend_from_slice(&take[..=end]);
                self.header_done = true;
            }
            None => {
                self.header.extend_from_slice(take);
                self.header_done = self.header.len() >= MAX_HEADER_LEN;
            }
        }
    }

    /// Checks size, then checksum, then the header, against what the Download() promised.
    pub fn finish(self, expected: &Expected) -> Result<VerifiedImage, TransferFault> {
        let sha256 = hex::encode(self.hasher.finalize());
        if let Some(want) = expected.file_size.filter(|want| *want != self.size) {
            return Err(TransferFault::SizeMismatch {
                expected: want,
                got: self.size,
            });
        }
        if let Some(want) = expected
            .sha256
            .as_ref()
            .filter(|w| !w.eq_ignore_ascii_case(&sha256))
        {
            return Err(TransferFault::ChecksumMismatch {
                expected: want.clone(),
                got: sha256,
            });
        }
        let version = parse_header(&self.header)?;
        Ok(VerifiedImage {
            version,
            size: self.size,
            sha256,
        })
    }
}

/// Reads the version out of a `WME-FIRMWARE <version>\n` header line.
pub fn parse_header(line: &[u8]) -> Result<String, TransferFault> {
    let invalid = |reason: String| TransferFault::InvalidImage { reason };
    let Some(body) = line.strip_suffix(b"\n") else {
        return Err(invalid(format!(
            "no header line ending in a newline within the first {MAX_HEADER_LEN} bytes"
        )));
    };
    let text =
        std::str::from_utf8(body).map_err(|_| invalid("header line is not utf-8".to_owned()))?;
    let Some(version) = text.strip_prefix(IMAGE_MAGIC) else {
        let shown: String = text.chars().take(32).collect();
        return Err(invalid(format!(
            "header {shown:?} does not start with {IMAGE_MAGIC:?}"
        )));
    };
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid(format!(
            "version {version:?} in the header is empty or has spaces or control characters"
        )));
    }
    Ok(version.to_owned())
}

/// Builds an image file in the WME format: the header line followed by `body`.
pub fn build_image(version: &str, body: &[u8]) -> Vec<u8> {
    let mut image = format!("{IMAGE_MAGIC}{version}\n").into_bytes();
    image.extend_from_slice(body);
    image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn verify_in_chunks(
        image: &[u8],
        chunk: usize,
        expected: &Expected,
    ) -> Result<VerifiedImage, TransferFault> {
        let mut verifier = ImageVerifier::new();
        for part in image.chunks(chunk) {
            verifier.update(part);
        }
        verifier.finish(expected)
    }

    #[test]
    fn a_new_table_runs_image_one_and_has_an_empty_image_two() {
        let table = FirmwareTable::new("1.2.1");
        assert_eq!(table.running_version(), "1.2.1");
        assert_eq!(table.active(), 1);
        assert_eq!(table.image(2).unwrap().status, ImageStatus::NoImage);
        assert_eq!(table.image(3), None);
        assert_eq!(table.image(0), None);
    }

    #[test]
    fn activating_a_stored_image_changes_the_running_version() {
        let mut table = FirmwareTable::new("1.2.1");
        table.store(2, "1.2.3");
        table.activate(2);
        assert_eq!(table.running_version(), "1.2.3");
        assert_eq!(table.image(1).unwrap().version, "1.2.1");
    }

    #[test]
    fn image_instances_are_read_from_object_paths() {
        assert_eq!(
            image_instance("Device.DeviceInfo.FirmwareImage.2."),
            Some(2)
        );
        assert_eq!(
            image_instance("Device.DeviceInfo.FirmwareImage.12."),
            Some(12)
        );
        assert_eq!(image_instance("Device.DeviceInfo.FirmwareImage.2"), None);
        assert_eq!(image_instance("Device.DeviceInfo.FirmwareImage.*."), None);
        assert_eq!(image_instance("Device.DeviceInfo.FirmwareImage.."), None);
        assert_eq!(image_instance("Device.LocalAgent."), None);
    }

    #[test]
    fn a_valid_image_verifies_whatever_the_chunking() {
        let image = build_image("1.2.3", &[7u8; 1000]);
        let expected = Expected {
            file_size: Some(image.len() as u64),
            sha256: Some(sha256_hex(&image).to_uppercase()),
        };
        for chunk in [1, 3, 13, 64, 4096] {
            let verified = verify_in_chunks(&image, chunk, &expected).unwrap();
            assert_eq!(verified.version, "1.2.3");
            assert_eq!(verified.size, image.len() as u64);
            assert_eq!(verified.sha256, sha256_hex(&image));
        }
    }

    #[test]
    fn a_checksum_mismatch_names_both_sums_and_is_fault_9018() {
        let image = build_image("1.2.3", b"payload");
        let expected = Expected {
            file_size: None,
            sha256: Some("00".repeat(32)),
        };
        let fault = verify_in_chunks(&image, 4, &expected).unwrap_err();
        assert_eq!(
            fault.to_string(),
            format!(
                "checksum mismatch: expected {}, got {}",
                "00".repeat(32),
                sha256_hex(&image)
            )
        );
        assert_eq!(fault.code(), 9018);
        assert_eq!(fault.image_status(), ImageStatus::ValidationFailed);
    }

    #[test]
    fn a_size_mismatch_is_reported_before_the_checksum() {
        let image = build_image("1.2.3", b"payload");
        let expected = Expected {
            file_size: Some(3),
            sha256: Some("00".repeat(32)),
        };
        let fault = verify_in_chunks(&image, 4, &expected).unwrap_err();
        assert_eq!(
            fault,
            TransferFault::SizeMismatch {
                expected: 3,
                got: image.len() as u64
            }
        );
    }

    #[test]
    fn a_file_without_the_header_is_an_invalid_image() {
        let fault = verify_in_chunks(b"ELF\x7f binary\n", 5, &Expected::default()).unwrap_err();
        assert_eq!(
            fault.to_string(),
            "invalid firmware image: header \"ELF\\u{7f} binary\" does not start with \"WME-FIRMWARE \""
        );
    }

    #[test]
    fn a_header_without_newline_within_the_limit_is_an_invalid_image() {
        let fault = verify_in_chunks(&[b'A'; 500], 100, &Expected::default()).unwrap_err();
        assert_eq!(
            fault.to_string(),
            "invalid firmware image: no header line ending in a newline within the first 128 bytes"
        );
    }

    #[test]
    fn a_header_with_an_empty_version_is_an_invalid_image() {
        let fault = parse_header(b"WME-FIRMWARE \n").unwrap_err();
        assert!(matches!(fault, TransferFault::InvalidImage { .. }));
        let fault = parse_header(b"WME-FIRMWARE 1.2 beta\n").unwrap_err();
        assert!(fault.to_string().contains("\"1.2 beta\""), "{fault}");
    }

    #[test]
    fn fault_codes_follow_tr069() {
        let url = "http://h/f".to_owned();
        let cases = [
            (
                TransferFault::Unreachable {
                    url: url.clone(),
                    reason: "refused".into(),
                },
                9015,
            ),
            (
                TransferFault::NotAccessible {
                    url: url.clone(),
                    status: "404 Not Found".into(),
                },
                9016,
            ),
            (
                TransferFault::Incomplete {
                    url: url.clone(),
                    reason: "reset".into(),
                },
                9017,
            ),
            (
                TransferFault::AuthenticationFailed {
                    url,
                    status: "401 Unauthorized".into(),
                },
                9019,
            ),
        ];
        for (fault, code) in cases {
            assert_eq!(fault.code(), code, "{fault}");
            assert_eq!(fault.image_status(), ImageStatus::DownloadFailed);
        }
    }
}
