//! Errors returned when starting the broker.

use std::net::SocketAddr;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The TCP listener could not be bound (address in use, no permission, bad address).
    #[error("cannot listen for mqtt on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A [`BrokerConfig`](crate::BrokerConfig) field holds a value the broker cannot run with.
    #[error("invalid broker config: {field} is {value}, {hint}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        hint: &'static str,
    },
}
