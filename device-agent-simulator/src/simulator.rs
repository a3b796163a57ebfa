//! The fleet: starts one task per agent, reports on them, and stops them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{Instrument, info, info_span};

use crate::agent::{self, Agent, Common};
use crate::behaviour::Behaviour;
use crate::config::{self, ConfigError, SimulatorConfig};
use crate::download;
use crate::firmware::FirmwareTable;
use crate::state::{AgentCell, AgentStatus};

/// What can go wrong running a simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid simulator config: {0}")]
    Config(#[from] ConfigError),
    #[error(
        "only {connected} of {expected} agents connected within {timeout:?}; is the broker up?"
    )]
    ConnectTimeout {
        connected: usize,
        expected: usize,
        timeout: Duration,
    },
}

/// A running fleet of simulated agents.
pub struct Simulator {
    cells: Vec<Arc<AgentCell>>,
    tasks: JoinSet<()>,
    /// Set to true once to stop every agent; a watch lets each agent check it cheaply.
    shutdown: watch::Sender<bool>,
    /// Number of connected agents, kept by the agents themselves.
    connected: watch::Receiver<usize>,
    /// Agents that are expected to connect (all but `offline`).
    expected: usize,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("agents", &self.cells.len())
            .field("expected", &self.expected)
            .field("connected", &*self.connected.borrow())
            .finish()
    }
}

impl Simulator {
    /// Validates the config and starts every agent. Agents connect in the background; see
    /// [`Simulator::wait_connected`].
    pub async fn start(config: SimulatorConfig) -> Result<Simulator, SimError> {
        config.validate()?;
        let common = Arc::new(Common {
            host: config.broker.ip().to_string(),
            port: config.broker.port(),
            keep_alive: config.keep_alive,
            delays: config.delays,
            controller_endpoint_id: config.controller_endpoint_id.clone(),
            http: download::http_client(),
        });
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(0usize);
        let mut cells = Vec::with_capacity(config.agents.len());
        let mut tasks = JoinSet::new();
        let mut online = 0usize;
        for spec in &config.agents {
            let cell = AgentCell::new(
                spec.thing_name.clone(),
                spec.behaviour,
                FirmwareTable::new(&spec.firmware_version),
                connected_tx.clone(),
            );
            let agent = Agent {
                cell: cell.clone(),
                common: common.clone(),
                endpoint_id: config.endpoint_id(&spec.thing_name),
                mqtt_version: spec.mqtt_version,
                agent_topic: config::agent_topic(&spec.thing_name),
                controller_topic: config::controller_topic(&spec.thing_name),
                start_delay: start_delay(online, config.connect_rate),
                next_request: 1,
                pending_boot: None,
            };
            if spec.behaviour != Behaviour::Offline {
                online += 1;
            }
            let span = info_span!("agent", device = %spec.thing_name);
            tasks.spawn(agent::run(agent, shutdown_rx.clone()).instrument(span));
            cells.push(cell);
        }
        info!(agents = cells.len(), online, broker = %config.broker, "simulator started");
        Ok(Simulator {
            cells,
            tasks,
            shutdown,
            connected,
            expected: online,
        })
    }

    /// Waits until every agent that is not `offline` is connected and subscribed; returns how
    /// many that is.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<usize, SimError> {
        let mut connected = self.connected.clone();
        let expected = self.expected;
        let waited = tokio::time::timeout(timeout, connected.wait_for(|n| *n >= expected)).await;
        match waited {
            Ok(Ok(_)) => Ok(expected),
            _ => Err(SimError::ConnectTimeout {
                connected: *self.connected.borrow(),
                expected,
                timeout,
            }),
        }
    }

    /// The status of every agent, in config order.
    pub fn snapshot(&self) -> Vec<AgentStatus> {
        self.cells.iter().map(|cell| cell.status()).collect()
    }

    /// The status of one agent.
    pub fn status(&self, thing_name: &str) -> Option<AgentStatus> {
        self.cells
            .iter()
            .find(|cell| cell.thing_name == thing_name)
            .map(|cell| cell.status())
    }

    /// Number of agents currently connected.
    pub fn connected(&self) -> usize {
        *self.connected.borrow()
    }

    /// Disconnects every agent and waits for all of them to stop.
    pub async fn shutdown(mut self) {
        info!(agents = self.cells.len(), "simulator shutting down");
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
        info!("simulator stopped");
    }
}

/// Spreads connects so that at most `rate` agents start per second.
fn start_delay(index: usize, rate: Option<u32>) -> Duration {
    match rate {
        Some(rate) if rate > 0 => Duration::from_secs_f64(index as f64 / f64::from(rate)),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connects_are_spread_by_the_rate() {
        assert_eq!(start_delay(0, Some(100)), Duration::ZERO);
        assert_eq!(start_delay(250, Some(100)), Duration::from_millis(2500));
        assert_eq!(start_delay(250, None), Duration::ZERO);
    }
}
