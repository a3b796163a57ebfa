//! Embedded MQTT broker of the local platform.
//!
//! Wraps the `rmqtt` broker library so the `wme` process can serve USP agents (MQTT 3.1.1 and
//! MQTT 5 on one TCP listener) from inside its own tokio runtime. The crate adds three things on
//! top of the library: an [`Authorizer`] hook for per-client authentication and topic
//! authorization, a stream of [`ConnectionEvent`]s for presence tracking, and a [`Broker`] handle
//! that binds (port 0 works), reports its address and shuts down cleanly.

mod auth;
mod broker;
mod config;
mod error;
mod events;
mod hooks;

pub use auth::{AllowAll, Authorizer};
pub use broker::Broker;
pub use config::BrokerConfig;
pub use error::BrokerError;
pub use events::ConnectionEvent;
