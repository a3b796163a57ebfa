//! Bridges rmqtt's hook points to the [`Authorizer`] and the presence table.

use std::sync::Arc;

use async_trait::async_trait;
use rmqtt::acl::AuthInfo;
use rmqtt::codec::types::MQTT_LEVEL_5;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::context::ServerContext;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType, Type};
use rmqtt::session::Session;
use rmqtt::types::{
    AuthResult, ConnectInfo, LastWill, Publish, PublishAclResult, Subscribe, SubscribeAclResult,
};

use crate::Authorizer;
use crate::events::Presence;

/// The hook points this crate needs; every one short-circuits rmqtt's chain with our answer.
const HOOKED: [Type; 5] = [
    Type::ClientAuthenticate,
    Type::MessagePublishCheckAcl,
    Type::ClientSubscribeCheckAcl,
    Type::ClientConnected,
    Type::ClientDisconnected,
];

#[derive(Clone)]
struct BrokerHooks {
    authorizer: Arc<dyn Authorizer>,
    presence: Arc<Presence>,
}

/// Registers the hooks on a fresh server context before its listener starts.
pub(crate) async fn register(
    scx: &ServerContext,
    authorizer: Arc<dyn Authorizer>,
    presence: Arc<Presence>,
) {
    let hooks = BrokerHooks {
        authorizer,
        presence,
    };
    let register = scx.extends.hook_mgr().register();
    for typ in HOOKED {
        register.add(typ, Box::new(hooks.clone())).await;
    }
    register.start().await;
}

#[async_trait]
impl Handler for BrokerHooks {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => {
                (false, Some(HookResult::AuthResult(self.authenticate(info))))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let result = self.check_publish(session, publish).await;
                (false, Some(HookResult::PublishAclResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let result = self.check_subscribe(session, subscribe);
                (false, Some(HookResult::SubscribeAclResult(result)))
            }
            Parameter::ClientConnected(session) => {
                let level = session.protocol().await.unwrap_or_default();
                self.presence.connected(&session.id, level);
                (true, acc)
            }
            Parameter::ClientDisconnected(session, reason) => {
                self.presence.disconnected(&session.id, reason);
                (true, acc)
            }
            _ => (true, acc),
        }
    }
}

impl BrokerHooks {
    fn authenticate(&self, info: &ConnectInfo) -> AuthResult {
        let client_id = &info.id().client_id;
        let username = info.username().map(|u| u.as_ref());
        let password = info.password().map(|p| p.as_ref());
        if !self.authorizer.authenticate(client_id, username, password) {
            tracing::info!(client = %client_id, "mqtt connect refused: bad credentials");
            return AuthResult::BadUsernameOrPassword;
        }
        // rmqtt publishes a will without asking the publish hook, so the will topic is
        // checked here, where the client can still be told.
        if let Some(topic) = info.last_will().map(|will| will_topic(&will).to_owned())
            && !self.authorizer.may_publish(client_id, &topic)
        {
            tracing::info!(client = %client_id, topic = %topic, "mqtt connect refused: will topic");
            return AuthResult::NotAuthorized;
        }
        AuthResult::Allow(false, None::<AuthInfo>)
    }

    async fn check_publish(&self, session: &Session, publish: &Publish) -> PublishAclResult {
        let client_id = &session.id.client_id;
        if self.authorizer.may_publish(client_id, &publish.topic) {
            return PublishAclResult::allow();
        }
        tracing::info!(client = %client_id, topic = %publish.topic, "mqtt publish refused");
        // MQTT 5 can say "not authorized" in the PUBACK; MQTT 3.1.1 cannot, and its spec
        // (MQTT-3.3.5-2) leaves a positive ack or closing the connection: we close.
        let level = session.protocol().await.unwrap_or_default();
        PublishAclResult::rejected(level != MQTT_LEVEL_5, Some("not authorized".into()))
    }

    fn check_subscribe(&self, session: &Session, subscribe: &Subscribe) -> SubscribeAclResult {
        let client_id = &session.id.client_id;
        let filter = &subscribe.topic_filter;
        if self.authorizer.may_subscribe(client_id, filter) {
            return SubscribeAclResult::new_success(subscribe.opts.qos(), None);
        }
        tracing::info!(client = %client_id, filter = %filter, "mqtt subscribe refused");
        SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
    }
}

fn will_topic<'a>(will: &LastWill<'a>) -> &'a str {
    match will {
        LastWill::V3(will) => &will.topic,
        LastWill::V5(will) => &will.topic,
    }
}
