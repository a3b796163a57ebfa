//! Many simulated USP (TR-369) agents in one tokio process, each with its own MQTT connection,
//! endpoint id and TR-181 firmware image table, for exercising a controller's firmware-upgrade
//! workflow end to end.
//!
//! Each agent answers `Device.DeviceInfo.FirmwareImage.{i}.Download()` by really downloading
//! and verifying the image over HTTP, then reports `TransferComplete!`, `OperationComplete` and,
//! after an activation reboot, `Boot!`, at configurable delays. A per-agent [`Behaviour`]
//! injects failures (HTTP 404, bad checksum, failed boot, silence, never connecting).
//!
//! ```no_run
//! # async fn demo(broker: std::net::SocketAddr) -> Result<(), device_agent_simulator::SimError> {
//! use std::time::Duration;
//! use device_agent_simulator::*;
//!
//! let behaviours = mix(17, &[(Behaviour::Ok, 16), (Behaviour::Silent, 1)]);
//! let agents = AgentSpec::fleet(&behaviours, "1.2.1", MqttVersion::V5);
//! let delays = StepDelays {
//!     transfer: Duration::from_secs(10),
//!     oper_complete: Duration::from_secs(15),
//!     boot: Duration::from_secs(20),
//! };
//! let sim = Simulator::start(SimulatorConfig::new(broker, agents, delays)).await?;
//! sim.wait_connected(Duration::from_secs(30)).await?;
//! println!("{:?}", sim.snapshot());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod agent;
pub mod behaviour;
pub mod codes;
pub mod config;
pub mod download;
pub mod firmware;
mod job;
mod simulator;
mod state;
mod transport;

pub use behaviour::{Behaviour, MixError, UnknownBehaviour, mix, parse_mix};
pub use config::{
    AgentSpec, ConfigError, DEFAULT_CONTROLLER_ENDPOINT_ID, DEFAULT_ENDPOINT_PREFIX,
    SimulatorConfig, StepDelays, agent_topic, controller_topic, thing_name,
};
pub use firmware::{TransferFault, build_image};
pub use job::{
    BOOT_CAUSE_REMOTE_REBOOT, BOOT_SUBSCRIPTION, OPER_COMPLETE_SUBSCRIPTION,
    SOFTWARE_VERSION_PARAM, TRANSFER_COMPLETE_SUBSCRIPTION,
};
pub use simulator::{SimError, Simulator};
pub use state::{AgentStatus, Phase};
pub use wme_usp::MqttVersion;
