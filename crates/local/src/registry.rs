//! The device registry: things with attributes, connectivity that follows the broker's client
//! sessions, dynamic thing groups defined by fleet-index queries, and fleet-index search.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::fleet_query::{Indexed, Query, QueryError};

/// One registered thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Thing {
    /// Its name (also its MQTT client id).
    pub name: String,
    /// Attributes, as AWS IoT keeps them: string to string.
    pub attributes: BTreeMap<String, String>,
    /// Whether its MQTT client is connected.
    pub connected: bool,
    /// When connectivity last changed.
    pub connectivity_changed: DateTime<Utc>,
    /// Incremented on every attribute update.
    pub version: u64,
}

impl Indexed for Thing {
    fn thing_name(&self) -> &str {
        &self.name
    }
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
    fn connected(&self) -> bool {
        self.connected
    }
}

impl Thing {
    /// The thing as fleet-index search returns it through the Step Functions SDK integration.
    pub fn search_result(&self) -> Value {
        json!({
            "ThingName": self.name,
            "ThingId": format!("{:x}", fxhash(&self.name)),
            "Attributes": self.attributes,
            "Connectivity": {
                "Connected": self.connected,
                "Timestamp": self.connectivity_changed.timestamp_millis(),
            },
        })
    }
}

fn fxhash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Why a registry call failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum RegistryError {
    /// No such thing.
    #[error("thing `{0}` not found")]
    ThingNotFound(String),
    /// No such group.
    #[error("thing group `{0}` not found")]
    GroupNotFound(String),
    /// The name is taken.
    #[error("`{0}` already exists")]
    AlreadyExists(String),
    /// The group's query is invalid.
    #[error(transparent)]
    InvalidQuery(#[from] QueryError),
    /// A name is not a valid thing or group name.
    #[error("invalid name `{0}`: use 1 to 128 letters, digits, '_', '-', ':'")]
    InvalidName(String),
}

#[derive(Debug, Clone)]
struct DynamicGroup {
    query: Query,
}

#[derive(Debug, Default)]
struct Inner {
    things: HashMap<String, Thing>,
    groups: HashMap<String, DynamicGroup>,
}

/// The registry. A `RwLock` because searches (one per workflow execution) far outnumber writes
/// and never wait on I/O while holding it.
#[derive(Debug, Default)]
pub struct Registry {
    inner: RwLock<Inner>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a thing.
    pub fn create_thing(
        &self,
        name: &str,
        attributes: BTreeMap<String, String>,
    ) -> Result<(), RegistryError> {
        check_name(name)?;
        let mut inner = self.inner.write().expect("registry lock");
        if inner.things.contains_key(name) {
            return Err(RegistryError::AlreadyExists(name.into()));
        }
        let thing = Thing {
            name: name.into(),
            attributes,
            connected: false,
            connectivity_changed: Utc::now(),
            version: 1,
        };
        inner.things.insert(name.into(), thing);
        Ok(())
    }

    /// Merges attributes into a thing (`UpdateThing` with `Merge: true`); an empty value removes
    /// the attribute, as AWS does.
    pub fn merge_attributes(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
    ) -> Result<u64, RegistryError> {
        let mut inner = self.inner.write().expect("registry lock");
        let thing = inner
            .things
            .get_mut(name)
            .ok_or_else(|| RegistryError::ThingNotFound(name.into()))?;
        for (key, value) in attributes {
            if value.is_empty() {
                thing.attributes.remove(key);
            } else {
                thing.attributes.insert(key.clone(), value.clone());
            }
        }
        thing.version += 1;
        Ok(thing.version)
    }

    /// Follows a client session: a client id that is no thing is ignored.
    pub fn set_connected(&self, client_id: &str, connected: bool, at: DateTime<Utc>) -> bool {
        let mut inner = self.inner.write().expect("registry lock");
        match inner.things.get_mut(client_id) {
            Some(thing) => {
                thing.connected = connected;
                thing.connectivity_changed = at;
                true
            }
            None => false,
        }
    }

    /// One thing.
    pub fn describe_thing(&self, name: &str) -> Result<Thing, RegistryError> {
        let inner = self.inner.read().expect("registry lock");
        inner
            .things
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::ThingNotFound(name.into()))
    }

    /// Creates a dynamic thing group whose members are the things matching `query`.
    pub fn create_dynamic_group(&self, name: &str, query: &str) -> Result<(), RegistryError> {
        check_name(name)?;
        let query = Query::parse(query)?;
        let mut inner = self.inner.write().expect("registry lock");
        if inner.groups.contains_key(name) {
            return Err(RegistryError::AlreadyExists(name.into()));
        }
        inner.groups.insert(name.into(), DynamicGroup { query });
        Ok(())
    }

    /// The current members of a group, sorted by name.
    pub fn group_members(&self, name: &str) -> Result<Vec<String>, RegistryError> {
        let inner = self.inner.read().expect("registry lock");
        let group = inner
            .groups
            .get(name)
            .ok_or_else(|| RegistryError::GroupNotFound(name.into()))?;
        let mut members: Vec<String> = inner
            .things
            .values()
            .filter(|thing| group.query.matches(*thing))
            .map(|thing| thing.name.clone())
            .collect();
        members.sort();
        Ok(members)
    }

    /// Whether a group exists.
    pub fn group_exists(&self, name: &str) -> bool {
        self.inner
            .read()
            .expect("registry lock")
            .groups
            .contains_key(name)
    }

    /// Fleet-index search. `thingName:EXACT` is a lookup; other queries scan the registry.
    pub fn search(&self, query: &str, max_results: usize) -> Result<Vec<Thing>, RegistryError> {
        let query = Query::parse(query)?;
        let inner = self.inner.read().expect("registry lock");
        if let Some(name) = query.exact_thing_name() {
            return Ok(inner.things.get(name).cloned().into_iter().collect());
        }
        let mut found: Vec<Thing> = inner
            .things
            .values()
            .filter(|t| query.matches(*t))
            .cloned()
            .collect();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found.truncate(max_results);
        Ok(found)
    }

    /// Number of things.
    pub fn len(&self) -> usize {
        self.inner.read().expect("registry lock").things.len()
    }

    /// Whether no thing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn check_name(name: &str) -> Result<(), RegistryError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'));
    if valid {
        Ok(())
    } else {
        Err(RegistryError::InvalidName(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(version: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("firmwareVersion".to_string(), version.to_string())])
    }

    #[test]
    fn dynamic_group_membership_follows_attribute_updates() {
        let registry = Registry::new();
        registry.create_thing("sim-0001", attrs("1.2.1")).unwrap();
        registry.create_thing("sim-0002", attrs("1.2.1")).unwrap();
        registry
            .create_dynamic_group("factory", "attributes.firmwareVersion: 1.2.1")
            .unwrap();
        assert_eq!(
            registry.group_members("factory").unwrap(),
            ["sim-0001", "sim-0002"]
        );
        registry
            .merge_attributes("sim-0001", &attrs("1.2.3"))
            .unwrap();
        assert_eq!(registry.group_members("factory").unwrap(), ["sim-0002"]);
    }

    #[test]
    fn search_by_thing_name_returns_connectivity() {
        let registry = Registry::new();
        registry.create_thing("sim-0001", attrs("1.2.1")).unwrap();
        assert!(registry.set_connected("sim-0001", true, Utc::now()));
        assert!(!registry.set_connected("not-a-thing", true, Utc::now()));
        let found = registry.search("thingName:sim-0001", 10).unwrap();
        assert_eq!(
            found[0].search_result()["Connectivity"]["Connected"],
            json!(true)
        );
        assert!(
            registry
                .search("thingName:sim-0009", 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn unknown_thing_update_and_bad_group_query_are_errors() {
        let registry = Registry::new();
        assert_eq!(
            registry.merge_attributes("ghost", &attrs("1")).unwrap_err(),
            RegistryError::ThingNotFound("ghost".into())
        );
        assert!(matches!(
            registry
                .create_dynamic_group("g", "attributes.x:")
                .unwrap_err(),
            RegistryError::InvalidQuery(_)
        ));
        assert_eq!(
            registry.group_members("nope").unwrap_err().to_string(),
            "thing group `nope` not found"
        );
    }

    #[test]
    fn empty_attribute_value_removes_the_attribute() {
        let registry = Registry::new();
        registry.create_thing("a", attrs("1")).unwrap();
        registry.merge_attributes("a", &attrs("")).unwrap();
        assert!(registry.describe_thing("a").unwrap().attributes.is_empty());
    }
}
