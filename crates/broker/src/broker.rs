//! Starting, observing and stopping one broker instance.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rmqtt::context::ServerContext;
use rmqtt::net::{Builder, Listener};
use rmqtt::server::MqttServer;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::events::Presence;
use crate::{BrokerConfig, BrokerError, ConnectionEvent, hooks};

/// How long a disconnected client's persistent session is kept at most.
const PERSISTENT_SESSION_EXPIRY: Duration = Duration::from_secs(2 * 60 * 60);

/// A running MQTT broker: one TCP listener for MQTT 3.1.1 and MQTT 5 clients.
///
/// Instances are independent (each has its own sessions, routes and hooks), so tests may run
/// many in one process. Dropping a `Broker` stops accepting connections but leaves open
/// connections running; call [`Broker::shutdown`] to close them.
pub struct Broker {
    local_addr: SocketAddr,
    scx: ServerContext,
    presence: Arc<Presence>,
    accept_loop: JoinHandle<()>,
    shutdown_timeout: Duration,
}

impl Broker {
    /// Binds `bind` (use port 0 for a free port) and starts serving on the current tokio
    /// runtime.
    pub async fn start(bind: SocketAddr, config: BrokerConfig) -> Result<Broker, BrokerError> {
        config.validate()?;
        let listener = bind_listener(bind, &config)?;
        let local_addr = listener.local_addr().map_err(|e| BrokerError::Bind {
            addr: bind,
            source: e.into(),
        })?;

        let scx = ServerContext::new()
            // The library's busy check refuses CONNECTs while the machine's CPU load is high,
            // which a test run or a 10,000-agent simulation on two cores would trip.
            .busy_check_enable(false)
            .mqtt_max_sessions(isize::try_from(config.max_connections).unwrap_or(isize::MAX))
            .build()
            .await;
        let presence = Arc::new(Presence::new(config.event_capacity));
        hooks::register(&scx, config.authorizer.clone(), presence.clone()).await;

        let server = MqttServer::new(scx.clone())
            .listener_by_id(listener, local_addr.port())
            .build();
        let accept_loop = tokio::spawn(async move {
            if let Err(e) = server.run().await {
                tracing::error!(error = %e, "mqtt listener stopped");
            }
        });
        tracing::info!(addr = %local_addr, "mqtt broker listening");

        Ok(Broker {
            local_addr,
            scx,
            presence,
            accept_loop,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address the listener is bound to (with the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A receiver of connection events from now on.
    ///
    /// Events sent before this call are not replayed: subscribe before clients connect, or
    /// start from [`Broker::connected_clients`]. A receiver that falls more than
    /// `event_capacity` events behind gets `RecvError::Lagged(n)` and has lost the `n` oldest
    /// events; it should then rebuild its view from [`Broker::connected_clients`].
    pub fn events(&self) -> broadcast::Receiver<ConnectionEvent> {
        self.presence.subscribe()
    }

    /// Client ids connected right now, sorted.
    pub fn connected_clients(&self) -> Vec<String> {
        self.presence.connected_clients()
    }

    /// Stops accepting connections, closes every client connection (clients see the TCP
    /// connection close; rmqtt sends MQTT 5 clients no DISCONNECT), drops all sessions, and
    /// waits up to the configured `shutdown_timeout` for every `Disconnected` event (reason
    /// `broker_shutdown`) to be sent.
    pub async fn shutdown(mut self) {
        self.accept_loop.abort();
        // Aborting is the only way to stop rmqtt's accept loop; the error says "cancelled".
        let _ = (&mut self.accept_loop).await;

        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        // A connection accepted just before the abort may finish its handshake after the
        // first sweep, so sweep again once the first round has closed.
        for _ in 0..2 {
            kick_all(&self.scx).await;
            self.wait_until_all_offline(deadline).await;
        }
        tracing::info!(addr = %self.local_addr, "mqtt broker stopped");
    }

    async fn wait_until_all_offline(&self, deadline: tokio::time::Instant) {
        let mut count = self.presence.count();
        let all_offline = count.wait_for(|online| *online == 0);
        if tokio::time::timeout_at(deadline, all_offline)
            .await
            .is_err()
        {
            let left = self.presence.connected_clients().len();
            tracing::warn!(
                clients = left,
                "mqtt shutdown timed out with clients still online"
            );
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

fn bind_listener(bind: SocketAddr, config: &BrokerConfig) -> Result<Listener, BrokerError> {
    Builder::new()
        .name("wme/tcp")
        .laddr(bind)
        .reuseaddr(Some(true))
        .nodelay(true)
        .max_connections(config.max_connections)
        .max_packet_size(config.max_packet_size)
        // The library's defaults (1,000 queued, 16 in flight) silently drop a fleet's burst of
        // Records on their way to the single controller subscriber.
        .max_mqueue_len(config.max_queued_messages)
        .max_inflight(std::num::NonZeroU16::new(config.max_inflight.max(1)).expect("at least 1"))
        // Every CONNECT goes to the Authorizer, anonymous ones included.
        .allow_anonymous(false)
        // TR-369 agents may send keep-alive 0 (no keep-alive).
        .allow_zero_keepalive(true)
        .min_keepalive(0)
        // A persistent session (MQTT 3.1.1 clean session off, or an MQTT 5 session expiry)
        // outlives its connection and counts against max_connections; bound how long.
        .session_expiry_interval(PERSISTENT_SESSION_EXPIRY)
        .max_session_expiry_interval(PERSISTENT_SESSION_EXPIRY)
        .bind()
        .and_then(Listener::tcp)
        .map_err(|e| BrokerError::Bind {
            addr: bind,
            source: e.into(),
        })
}

/// Ends every session, online or persisted offline, as an administrator would.
async fn kick_all(scx: &ServerContext) {
    let ids: Vec<_> = {
        let shared = scx.extends.shared().await;
        shared.iter().map(|entry| entry.id()).collect()
    };
    let kicks = ids.into_iter().map(|id| async move {
        let entry = scx.extends.shared().await.entry(id);
        // A session busy in a handshake holds the lock; the second sweep gets it.
        if let Ok(mut locked) = entry.try_lock().await
            && let Err(e) = locked.kick(true, true, true).await
        {
            tracing::debug!(client = %locked.id().client_id, error = %e, "mqtt kick failed");
        }
    });
    futures::future::join_all(kicks).await;
}
