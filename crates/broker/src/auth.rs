//! The authorization hook: who may connect, publish and subscribe.

/// Decides whether a client may connect, publish to a topic and subscribe to a filter.
///
/// The broker calls these methods on its connection tasks, so they must be quick and must not
/// block (no I/O): keep the credentials and rules in memory.
pub trait Authorizer: Send + Sync + 'static {
    /// Whether a client presenting these credentials may connect. Called for every CONNECT,
    /// anonymous ones included (`username` and `password` are then `None`). A client that sent
    /// an empty client id is shown the id the broker assigned to it.
    fn authenticate(
        &self,
        client_id: &str,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> bool;

    /// Whether the client may publish to `topic` (also checked for the will topic at CONNECT).
    fn may_publish(&self, client_id: &str, topic: &str) -> bool;

    /// Whether the client may subscribe to `filter` (a topic filter, wildcards included).
    fn may_subscribe(&self, client_id: &str, filter: &str) -> bool;
}

/// Lets every client connect, publish and subscribe: for local development and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authenticate(&self, _: &str, _: Option<&str>, _: Option<&[u8]>) -> bool {
        true
    }

    fn may_publish(&self, _: &str, _: &str) -> bool {
        true
    }

    fn may_subscribe(&self, _: &str, _: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_all_allows_anonymous_and_credentialed_clients_and_any_topic() {
        let auth = AllowAll;
        assert!(auth.authenticate("agent-1", None, None));
        assert!(auth.authenticate("agent-1", Some("user"), Some(b"secret")));
        assert!(auth.may_publish("agent-1", "usp/controller/agent-1"));
        assert!(auth.may_subscribe("agent-1", "#"));
    }
}
