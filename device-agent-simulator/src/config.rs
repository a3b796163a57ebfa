//! What a simulator run is told: the broker, the agents and their behaviours, the step delays,
//! and the naming conventions shared with the controller.
//!
//! [`SimulatorConfig::validate`] rejects, with a message naming the value, anything that would
//! make an agent misbehave or a library call panic later.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use wme_usp::MqttVersion;

use crate::behaviour::Behaviour;

/// Prefix of an agent's USP endpoint id; the thing name follows it.
pub const DEFAULT_ENDPOINT_PREFIX: &str = "self::";
/// The controller's USP endpoint id.
pub const DEFAULT_CONTROLLER_ENDPOINT_ID: &str = "self::wme-controller";
/// Agents subscribe to `usp/v1/agent/<thing>`.
pub const AGENT_TOPIC_PREFIX: &str = "usp/v1/agent/";
/// Agents publish to `usp/v1/controller/<thing>`.
pub const CONTROLLER_TOPIC_PREFIX: &str = "usp/v1/controller/";
/// MQTT keep-alive unless told otherwise.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);

/// The thing name of the `n`th simulated device (1-based): `sim-0001`, ..., `sim-12345`.
pub fn thing_name(n: usize) -> String {
    format!("sim-{n:04}")
}

/// The topic an agent subscribes to (its USP MQTT "agent topic").
pub fn agent_topic(thing_name: &str) -> String {
    format!("{AGENT_TOPIC_PREFIX}{thing_name}")
}

/// The controller topic an agent publishes Notify messages and its connect record to.
pub fn controller_topic(thing_name: &str) -> String {
    format!("{CONTROLLER_TOPIC_PREFIX}{thing_name}")
}

/// When each step of a firmware download happens, measured from the moment the agent accepted
/// the Download() request.
///
/// Steps always happen in order: a step whose offset is earlier than the previous step's (or
/// than the end of the HTTP download) happens right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepDelays {
    /// `TransferComplete!` is sent this long after the request.
    pub transfer: Duration,
    /// `OperationComplete` is sent this long after the request.
    pub oper_complete: Duration,
    /// With AutoActivate, the agent is back from its reboot and sends `Boot!` this long after
    /// the request; it goes offline right after `OperationComplete`.
    pub boot: Duration,
}

/// One simulated device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// The IoT thing name, also the MQTT client id and the last level of its topics.
    pub thing_name: String,
    pub behaviour: Behaviour,
    /// The version image 1 runs at start.
    pub firmware_version: String,
    pub mqtt_version: MqttVersion,
}

impl AgentSpec {
    /// An MQTT 5 agent.
    pub fn new(
        thing_name: impl Into<String>,
        behaviour: Behaviour,
        firmware_version: &str,
    ) -> Self {
        AgentSpec {
            thing_name: thing_name.into(),
            behaviour,
            firmware_version: firmware_version.to_owned(),
            mqtt_version: MqttVersion::V5,
        }
    }

    /// Devices `sim-0001` .. `sim-<n>`, the `k`th with `behaviours[k]`.
    pub fn fleet(behaviours: &[Behaviour], firmware_version: &str, mqtt: MqttVersion) -> Vec<Self> {
        behaviours
            .iter()
            .enumerate()
            .map(|(i, behaviour)| AgentSpec {
                mqtt_version: mqtt,
                ..AgentSpec::new(thing_name(i + 1), *behaviour, firmware_version)
            })
            .collect()
    }
}

/// Everything a [`crate::Simulator`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorConfig {
    pub broker: SocketAddr,
    pub agents: Vec<AgentSpec>,
    pub delays: StepDelays,
    /// Prefix of each agent's USP endpoint id (`self::` gives `self::sim-0001`).
    pub endpoint_prefix: String,
    /// The endpoint id Notify messages and connect records are addressed to.
    pub controller_endpoint_id: String,
    /// MQTT keep-alive, whole seconds from 5 to 65535.
    pub keep_alive: Duration,
    /// At most this many agents start connecting per second; `None` starts all at once.
    pub connect_rate: Option<u32>,
}

impl SimulatorConfig {
    /// A config with the default endpoint ids, keep-alive and no connect rate limit.
    pub fn new(broker: SocketAddr, agents: Vec<AgentSpec>, delays: StepDelays) -> Self {
        SimulatorConfig {
            broker,
            agents,
            delays,
            endpoint_prefix: DEFAULT_ENDPOINT_PREFIX.to_owned(),
            controller_endpoint_id: DEFAULT_CONTROLLER_ENDPOINT_ID.to_owned(),
            keep_alive: DEFAULT_KEEP_ALIVE,
            connect_rate: None,
        }
    }

    /// The USP endpoint id of an agent.
    pub fn endpoint_id(&self, thing_name: &str) -> String {
        format!("{}{thing_name}", self.endpoint_prefix)
    }

    /// Checks everything the agents rely on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_endpoint_id(&self.controller_endpoint_id, "controller endpoint id")?;
        check_keep_alive(self.keep_alive)?;
        if self.connect_rate == Some(0) {
            return Err(ConfigError::ZeroConnectRate);
        }
        let mut seen = HashSet::with_capacity(self.agents.len());
        for agent in &self.agents {
            check_agent(agent)?;
            check_endpoint_id(&self.endpoint_id(&agent.thing_name), "agent endpoint id")?;
            if !seen.insert(agent.thing_name.as_str()) {
                return Err(ConfigError::DuplicateThingName {
                    name: agent.thing_name.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A [`SimulatorConfig`] that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("thing name {name:?} is not usable as an MQTT client id and topic level: {reason}")]
    BadThingName { name: String, reason: &'static str },
    #[error("thing name {name:?} is used by more than one agent")]
    DuplicateThingName { name: String },
    #[error(
        "firmware version {version:?} of {thing} must be non-empty printable ascii without spaces"
    )]
    BadFirmwareVersion { thing: String, version: String },
    #[error("{what} {id:?} must be non-empty and without spaces or control characters")]
    BadEndpointId { what: &'static str, id: String },
    #[error("keep-alive {keep_alive:?} must be whole seconds from 5 to 65535")]
    BadKeepAlive { keep_alive: Duration },
    #[error("connect rate must be at least 1 agent per second")]
    ZeroConnectRate,
}

fn check_agent(agent: &AgentSpec) -> Result<(), ConfigError> {
    let name = &agent.thing_name;
    let bad = |reason| ConfigError::BadThingName {
        name: name.clone(),
        reason,
    };
    if name.is_empty() || name.len() > 128 {
        return Err(bad("it must be 1 to 128 bytes long"));
    }
    if name
        .chars()
        .any(|c| matches!(c, '/' | '+' | '#') || !c.is_ascii_graphic())
    {
        return Err(bad(
            "it must be printable ascii without '/', '+', '#' or spaces",
        ));
    }
    let version = &agent.firmware_version;
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ConfigError::BadFirmwareVersion {
            thing: name.clone(),
            version: version.clone(),
        });
    }
    Ok(())
}

fn check_endpoint_id(id: &str, what: &'static str) -> Result<(), ConfigError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ConfigError::BadEndpointId {
            what,
            id: id.to_owned(),
        });
    }
    Ok(())
}

fn check_keep_alive(keep_alive: Duration) -> Result<(), ConfigError> {
    let whole = keep_alive.subsec_nanos() == 0;
    if !whole || !(5..=65535).contains(&keep_alive.as_secs()) {
        return Err(ConfigError::BadKeepAlive { keep_alive });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays() -> StepDelays {
        StepDelays {
            transfer: Duration::from_millis(1),
            oper_complete: Duration::from_millis(2),
            boot: Duration::from_millis(3),
        }
    }

    fn config(agents: Vec<AgentSpec>) -> SimulatorConfig {
        SimulatorConfig::new("127.0.0.1:1883".parse().unwrap(), agents, delays())
    }

    #[test]
    fn thing_names_have_at_least_four_digits() {
        assert_eq!(thing_name(1), "sim-0001");
        assert_eq!(thing_name(10000), "sim-10000");
    }

    #[test]
    fn a_fleet_is_numbered_from_one_with_the_given_behaviours() {
        let fleet = AgentSpec::fleet(
            &[Behaviour::Ok, Behaviour::Silent],
            "1.2.1",
            MqttVersion::V3_1_1,
        );
        assert_eq!(fleet[0].thing_name, "sim-0001");
        assert_eq!(fleet[1].thing_name, "sim-0002");
        assert_eq!(fleet[1].behaviour, Behaviour::Silent);
        assert_eq!(fleet[1].mqtt_version, MqttVersion::V3_1_1);
    }

    #[test]
    fn endpoint_ids_join_prefix_and_thing_name() {
        let config = config(vec![]);
        assert_eq!(config.endpoint_id("sim-0001"), "self::sim-0001");
        assert_eq!(agent_topic("sim-0001"), "usp/v1/agent/sim-0001");
        assert_eq!(controller_topic("sim-0001"), "usp/v1/controller/sim-0001");
    }

    #[test]
    fn a_valid_config_passes() {
        let agents = AgentSpec::fleet(&[Behaviour::Ok; 3], "1.2.1", MqttVersion::V5);
        assert_eq!(config(agents).validate(), Ok(()));
    }

    #[test]
    fn duplicate_thing_names_are_rejected() {
        let agent = AgentSpec::new("sim-0001", Behaviour::Ok, "1.2.1");
        let err = config(vec![agent.clone(), agent]).validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "thing name \"sim-0001\" is used by more than one agent"
        );
    }

    #[test]
    fn thing_names_with_topic_wildcards_are_rejected() {
        let err = config(vec![AgentSpec::new("sim/1", Behaviour::Ok, "1")])
            .validate()
            .unwrap_err();
        assert!(matches!(err, ConfigError::BadThingName { ref name, .. } if name == "sim/1"));
    }

    #[test]
    fn an_empty_firmware_version_is_rejected() {
        let err = config(vec![AgentSpec::new("sim-0001", Behaviour::Ok, "")])
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "firmware version \"\" of sim-0001 must be non-empty printable ascii without spaces"
        );
    }

    #[test]
    fn keep_alive_must_be_whole_seconds_in_range() {
        for bad in [
            Duration::from_secs(4),
            Duration::from_millis(5500),
            Duration::from_secs(70000),
        ] {
            let mut config = config(vec![]);
            config.keep_alive = bad;
            assert_eq!(
                config.validate(),
                Err(ConfigError::BadKeepAlive { keep_alive: bad })
            );
        }
    }

    #[test]
    fn a_zero_connect_rate_is_rejected() {
        let mut config = config(vec![]);
        config.connect_rate = Some(0);
        assert_eq!(config.validate(), Err(ConfigError::ZeroConnectRate));
    }

    #[test]
    fn a_controller_endpoint_id_with_spaces_is_rejected() {
        let mut config = config(vec![]);
        config.controller_endpoint_id = "self::wme controller".into();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::BadEndpointId { .. })
        ));
    }
}
