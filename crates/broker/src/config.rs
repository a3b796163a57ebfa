//! Broker settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{AllowAll, Authorizer, BrokerError};

/// Settings for [`Broker::start`](crate::Broker::start).
#[derive(Clone)]
pub struct BrokerConfig {
    /// Decides who may connect, publish and subscribe. Default: [`AllowAll`].
    pub authorizer: Arc<dyn Authorizer>,
    /// Most sessions the broker holds at once; a CONNECT beyond it is refused with
    /// "server unavailable" (MQTT 5 reason 0x88, MQTT 3.1.1 return code 3). Persistent sessions
    /// (clean session off) of disconnected clients count until they expire. Must be at least 1.
    /// Default: 20,000.
    pub max_connections: usize,
    /// Largest MQTT packet accepted from a client, in bytes. Default: 1 MiB.
    pub max_packet_size: u32,
    /// Capacity of the [`ConnectionEvent`](crate::ConnectionEvent) channel: how many events a
    /// slow receiver may fall behind before it loses the oldest ones. Must be at least 1.
    /// Default: 65,536.
    pub event_capacity: usize,
    /// How long [`Broker::shutdown`](crate::Broker::shutdown) waits for the disconnected
    /// clients' sessions to close. Default: 5 seconds.
    pub shutdown_timeout: Duration,
    /// How many messages may wait for one subscriber that is slower than its publishers before
    /// the broker drops new ones. The controller subscribes to every device's topic, so this
    /// bounds a whole fleet's burst. Default: 1,000,000.
    pub max_queued_messages: usize,
    /// QoS 1 messages in flight to one subscriber before the broker waits for its acks.
    /// Default: 1,024.
    pub max_inflight: u16,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            authorizer: Arc::new(AllowAll),
            max_connections: 20_000,
            max_packet_size: 1024 * 1024,
            event_capacity: 65_536,
            shutdown_timeout: Duration::from_secs(5),
            max_queued_messages: 1_000_000,
            max_inflight: 1024,
        }
    }
}

impl BrokerConfig {
    pub(crate) fn validate(&self) -> Result<(), BrokerError> {
        if self.max_connections == 0 {
            return Err(invalid("max_connections", 0, "it must be at least 1"));
        }
        if self.event_capacity == 0 {
            return Err(invalid("event_capacity", 0, "it must be at least 1"));
        }
        if self.max_packet_size < 64 {
            return Err(invalid(
                "max_packet_size",
                self.max_packet_size,
                "it must be at least 64 bytes",
            ));
        }
        Ok(())
    }
}

fn invalid(field: &'static str, value: impl fmt::Display, hint: &'static str) -> BrokerError {
    BrokerError::InvalidConfig {
        field,
        value: value.to_string(),
        hint,
    }
}

impl fmt::Debug for BrokerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("max_connections", &self.max_connections)
            .field("max_packet_size", &self.max_packet_size)
            .field("event_capacity", &self.event_capacity)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        assert!(BrokerConfig::default().validate().is_ok());
    }

    #[test]
    fn zero_event_capacity_is_rejected_with_the_field_named() {
        let config = BrokerConfig {
            event_capacity: 0,
            ..BrokerConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid broker config: event_capacity is 0, it must be at least 1"
        );
    }

    #[test]
    fn zero_max_connections_is_rejected_with_the_field_named() {
        let config = BrokerConfig {
            max_connections: 0,
            ..BrokerConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid broker config: max_connections is 0, it must be at least 1"
        );
    }

    #[test]
    fn tiny_max_packet_size_is_rejected_with_the_field_named() {
        let config = BrokerConfig {
            max_packet_size: 10,
            ..BrokerConfig::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid broker config: max_packet_size is 10, it must be at least 64 bytes"
        );
    }
}
