//! The part of an agent that [`crate::Simulator::snapshot`] reads while the agent runs.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use crate::behaviour::Behaviour;
use crate::firmware::FirmwareTable;

/// Where an agent is in the firmware download sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The `offline` behaviour: never connects.
    Offline,
    /// Waiting for requests.
    Idle,
    /// A Download() was accepted; fetching the image or waiting to send `TransferComplete!`.
    /// A `silent` agent stays here for good.
    Downloading,
    /// `TransferComplete!` sent; waiting to send `OperationComplete`.
    Transferred,
    /// Disconnected to activate the new image; `Boot!` follows the reconnect.
    Rebooting,
}

/// What one agent looks like from outside, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    pub thing_name: String,
    pub behaviour: Behaviour,
    /// The version of the running image.
    pub firmware_version: String,
    pub phase: Phase,
    /// Connected to the broker and subscribed to its topic.
    pub connected: bool,
}

/// The mutable state of an agent.
#[derive(Debug, Clone)]
pub(crate) struct AgentState {
    pub firmware: FirmwareTable,
    pub phase: Phase,
    pub connected: bool,
}

/// One agent's shared state. A std `Mutex` is enough: every critical section is a few field
/// updates and never spans an `.await`.
#[derive(Debug)]
pub(crate) struct AgentCell {
    pub thing_name: String,
    pub behaviour: Behaviour,
    state: Mutex<AgentState>,
    /// Number of connected agents in the whole simulator, for `wait_connected`.
    connected_count: watch::Sender<usize>,
}

impl AgentCell {
    pub fn new(
        thing_name: String,
        behaviour: Behaviour,
        firmware: FirmwareTable,
        connected_count: watch::Sender<usize>,
    ) -> Arc<Self> {
        let phase = match behaviour {
            Behaviour::Offline => Phase::Offline,
            _ => Phase::Idle,
        };
        let state = AgentState {
            firmware,
            phase,
            connected: false,
        };
        Arc::new(AgentCell {
            thing_name,
            behaviour,
            state: Mutex::new(state),
            connected_count,
        })
    }

    /// Locks the state; a poisoned lock still holds consistent data (no invariant spans an
    /// update), so it is used as is.
    pub fn lock(&self) -> MutexGuard<'_, AgentState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_phase(&self, phase: Phase) {
        self.lock().phase = phase;
    }

    /// Records a connect or disconnect and keeps the simulator-wide count in step.
    pub fn set_connected(&self, connected: bool) {
        let changed = {
            let mut state = self.lock();
            let changed = state.connected != connected;
            state.connected = connected;
            changed
        };
        if changed {
            self.connected_count.send_modify(|n| {
                *n = if connected {
                    *n + 1
                } else {
                    n.saturating_sub(1)
                };
            });
        }
    }

    pub fn status(&self) -> AgentStatus {
        let state = self.lock();
        AgentStatus {
            thing_name: self.thing_name.clone(),
            behaviour: self.behaviour,
            firmware_version: state.firmware.running_version().to_owned(),
            phase: state.phase,
            connected: state.connected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connecting_twice_counts_once() {
        let (count, rx) = watch::channel(0);
        let cell = AgentCell::new(
            "sim-0001".into(),
            Behaviour::Ok,
            FirmwareTable::new("1"),
            count,
        );
        cell.set_connected(true);
        cell.set_connected(true);
        assert_eq!(*rx.borrow(), 1);
        cell.set_connected(false);
        cell.set_connected(false);
        assert_eq!(*rx.borrow(), 0);
    }

    #[test]
    fn an_offline_agent_starts_in_the_offline_phase() {
        let (count, _rx) = watch::channel(0);
        let cell = AgentCell::new(
            "sim-0001".into(),
            Behaviour::Offline,
            FirmwareTable::new("1"),
            count,
        );
        let status = cell.status();
        assert_eq!(status.phase, Phase::Offline);
        assert!(!status.connected);
        assert_eq!(status.firmware_version, "1");
    }
}
