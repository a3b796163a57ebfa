//! The local platform of WME: everything the firmware-upgrade workflow needs on one machine —
//! an embedded MQTT broker, a device registry with fleet-index queries and dynamic groups, IoT
//! Jobs, a task-token table, a firmware file server, the Amazon States Language engine with the
//! service integrations the workflow uses, and the rules that tie them together.

pub mod artifacts;
pub mod fleet_query;
pub mod functions;
pub mod integrations;
pub mod jobs;
pub mod mqtt_link;
pub mod platform;
pub mod registry;
pub mod tokens;

pub use platform::{LocalPlatform, MessageStats, PlatformConfig, PlatformError};
