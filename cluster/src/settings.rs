//! The cluster's settings (the `[cluster]` section of the node's configuration) with
//! their defaults and checks, and the validated names derived from them: node ids and
//! the NATS namespace, both of which end up in KV keys and NATS subjects.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ClusterError;

/// The default shard count; fixed for the life of a deployment.
pub const DEFAULT_SHARD_COUNT: u32 = 1024;
/// The longest call timeout a node takes, and the longest a node serves any call.
pub const MAX_CALL_TIMEOUT_MS: u64 = 300_000;

/// Settings of one clustered node. Every duration is whole seconds or milliseconds, as
/// in the rest of Souk's configuration.
///
/// Timing, with the defaults: a lease lives 4 s on the NATS server after each renewal
/// is stored; the holder renews every second and stops serving the shard 1 s
/// (`lease_margin_ms`) before the lease could expire, counted from the moment it *sent*
/// the renewal (so it needs no clock agreement with the server, only clocks that run at
/// about the same rate; the margin absorbs rate drift, a server clock that steps
/// forward and the offset between the servers of a NATS cluster when the stream's
/// leader moves). A renewal that keeps failing therefore gets three tries before the
/// holder stops serving. Membership works the same way with its own TTL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// Join a cluster over NATS: this node then serves only the shards it holds the
    /// lease of and forwards the rest. Off: the node owns every entity.
    pub enabled: bool,
    /// This node's id, unique in the cluster: letters, digits, `-` and `_`. Default: the
    /// host name (the pod name in a StatefulSet), cut at its first dot.
    pub node_id: String,
    /// Shards of the deployment; every node must use the same count.
    pub shards: u32,
    /// Prefix of the KV buckets (`<namespace>_members`, `<namespace>_leases`) and of the
    /// NATS subjects (`<namespace>.cluster.node.<id>`).
    pub namespace: String,
    /// Life of a shard lease on the server after each renewal.
    pub lease_ttl_secs: u64,
    /// How often a holder renews its leases (and tries to take the shards it should own).
    pub lease_renew_ms: u64,
    /// How long before the lease could expire the holder stops serving the shard.
    pub lease_margin_ms: u64,
    /// Life of a membership record after each renewal.
    pub membership_ttl_secs: u64,
    /// How often a node renews its membership record.
    pub membership_renew_ms: u64,
    /// Replicas of the members and leases buckets: 1 on a single nats-server, 3 on a
    /// NATS cluster (so that losing one server loses no lease). Fixed at creation.
    pub kv_replicas: usize,
    /// How long a shard that moves to another node may stay draining (the entity host
    /// flushing and passivating) before its lease is released anyway.
    pub handoff_timeout_ms: u64,
    /// How long a call to an entity may take, retries against a moving owner included;
    /// past it the caller gets a retryable `503`.
    pub call_timeout_ms: u64,
    /// The kinds of entity this node hosts (`sku`, `order`), set by the node from the
    /// services it runs rather than read from the configuration. Every member of a
    /// cluster must host the same kinds, since the ring gives each member shards of all.
    #[serde(skip)]
    pub entity_kinds: Vec<String>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            node_id: default_node_id(),
            shards: DEFAULT_SHARD_COUNT,
            namespace: "souk".to_owned(),
            lease_ttl_secs: 4,
            lease_renew_ms: 1_000,
            lease_margin_ms: 1_000,
            membership_ttl_secs: 4,
            membership_renew_ms: 1_000,
            kv_replicas: 1,
            handoff_timeout_ms: 5_000,
            call_timeout_ms: 10_000,
            entity_kinds: Vec::new(),
        }
    }
}

impl ClusterSettings {
    /// Checks every field and how they relate; the error names the setting.
    pub fn validate(&self) -> Result<(), ClusterError> {
        NodeId::parse(&self.node_id)?;
        Namespace::parse(&self.namespace)?;
        if self.shards == 0 {
            return Err(invalid("shards", "must be at least 1"));
        }
        if self.lease_ttl_secs == 0 {
            return Err(invalid("lease_ttl_secs", "must be at least 1"));
        }
        if self.membership_ttl_secs == 0 {
            return Err(invalid("membership_ttl_secs", "must be at least 1"));
        }
        if self.lease_renew_ms == 0 {
            return Err(invalid("lease_renew_ms", "must be positive"));
        }
        if self.membership_renew_ms == 0 {
            return Err(invalid("membership_renew_ms", "must be positive"));
        }
        // The holder must get at least one renewal in before it stops serving.
        let serving_window = self.lease_ttl().saturating_sub(self.lease_margin());
        if self.lease_margin().is_zero() || serving_window <= self.lease_renew_interval() {
            return Err(invalid(
                "lease_margin_ms",
                "must be positive and leave more than lease_renew_ms of the lease ttl",
            ));
        }
        if !(1..=5).contains(&self.kv_replicas) {
            return Err(invalid("kv_replicas", "must be 1 to 5"));
        }
        if !(1..=MAX_CALL_TIMEOUT_MS).contains(&self.call_timeout_ms) {
            return Err(invalid(
                "call_timeout_ms",
                "must be 1 to 300000 (5 minutes)",
            ));
        }
        if self.membership_renew_interval() >= self.membership_ttl() {
            return Err(invalid(
                "membership_renew_ms",
                "must be shorter than membership_ttl_secs",
            ));
        }
        Ok(())
    }

    pub fn node(&self) -> Result<NodeId, ClusterError> {
        NodeId::parse(&self.node_id)
    }

    pub fn namespace(&self) -> Result<Namespace, ClusterError> {
        Namespace::parse(&self.namespace)
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }

    pub fn lease_renew_interval(&self) -> Duration {
        Duration::from_millis(self.lease_renew_ms)
    }

    pub fn lease_margin(&self) -> Duration {
        Duration::from_millis(self.lease_margin_ms)
    }

    pub fn membership_ttl(&self) -> Duration {
        Duration::from_secs(self.membership_ttl_secs)
    }

    pub fn membership_renew_interval(&self) -> Duration {
        Duration::from_millis(self.membership_renew_ms)
    }

    pub fn handoff_timeout(&self) -> Duration {
        Duration::from_millis(self.handoff_timeout_ms)
    }

    pub fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.call_timeout_ms)
    }
}

fn invalid(setting: &'static str, reason: &str) -> ClusterError {
    ClusterError::InvalidSetting {
        setting,
        reason: reason.to_owned(),
    }
}

/// The host name up to its first dot, made a valid node id; `souk` when there is none.
pub fn default_node_id() -> String {
    let host = hostname::get()
        .ok()
        .and_then(|name| name.into_string().ok())
        .unwrap_or_default();
    let first_label = host.split('.').next().unwrap_or_default();
    let cleaned: String = first_label
        .chars()
        .filter(|character| is_name_char(*character))
        .take(MAX_NAME_LEN)
        .collect();
    if cleaned.is_empty() {
        "souk".to_owned()
    } else {
        cleaned
    }
}

const MAX_NAME_LEN: usize = 64;

fn is_name_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '-' || character == '_'
}

fn check_name(setting: &'static str, value: &str) -> Result<(), ClusterError> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || !value.chars().all(is_name_char) {
        return Err(invalid(
            setting,
            "must be 1 to 64 letters, digits, '-' or '_'",
        ));
    }
    Ok(())
}

/// A node's id: safe as a KV key and as a NATS subject token.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

impl NodeId {
    pub fn parse(value: &str) -> Result<Self, ClusterError> {
        check_name("node_id", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// The prefix of the cluster's buckets and subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    pub fn parse(value: &str) -> Result<Self, ClusterError> {
        check_name("namespace", value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn members_bucket(&self) -> String {
        format!("{}_members", self.0)
    }

    pub fn leases_bucket(&self) -> String {
        format!("{}_leases", self.0)
    }

    /// The subject a node's mailbox listens on for calls.
    pub fn calls_subject(&self, node: &NodeId) -> String {
        format!("{}.cluster.calls.{}", self.0, node.as_str())
    }

    /// The start of the subjects a node's answers come back on: one more token, the
    /// node that answers, follows.
    pub fn answer_prefix(&self, node: &NodeId, token: &str) -> String {
        format!("{}.cluster.answers.{}.{token}", self.0, node.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        ClusterSettings::default().validate().expect("defaults");
    }

    #[test]
    fn default_node_id_is_a_valid_node_id() {
        NodeId::parse(&default_node_id()).expect("host name as node id");
    }

    #[test]
    fn bad_values_name_their_setting() {
        type Change = fn(&mut ClusterSettings);
        let cases: [(&str, Change); 8] = [
            ("node_id", |s| s.node_id = "a.b".to_owned()),
            ("node_id", |s| s.node_id = String::new()),
            ("namespace", |s| s.namespace = "souk events".to_owned()),
            ("shards", |s| s.shards = 0),
            ("lease_margin_ms", |s| s.lease_margin_ms = 3_500),
            ("membership_renew_ms", |s| s.membership_renew_ms = 4_000),
            ("call_timeout_ms", |s| s.call_timeout_ms = 0),
            ("call_timeout_ms", |s| s.call_timeout_ms = 300_001),
        ];
        for (setting, change) in cases {
            let mut settings = ClusterSettings::default();
            change(&mut settings);
            let error = settings.validate().expect_err(setting);
            assert!(
                error.to_string().contains(setting),
                "{error} names {setting}"
            );
        }
    }

    #[test]
    fn deserializes_partial_sections_over_defaults() {
        let settings: ClusterSettings =
            toml::from_str("node_id = \"souk-2\"\nshards = 256\n").expect("parse");
        assert_eq!(settings.node_id, "souk-2");
        assert_eq!(settings.shards, 256);
        assert_eq!(settings.lease_ttl_secs, 4);
        let unknown = toml::from_str::<ClusterSettings>("shard = 3\n");
        assert!(unknown.is_err(), "unknown keys are refused");
    }

    #[test]
    fn subjects_and_buckets_carry_the_namespace() {
        let namespace = Namespace::parse("shop1").unwrap();
        let node = NodeId::parse("souk-0").unwrap();
        assert_eq!(namespace.members_bucket(), "shop1_members");
        assert_eq!(namespace.leases_bucket(), "shop1_leases");
        assert_eq!(namespace.calls_subject(&node), "shop1.cluster.calls.souk-0");
        assert_eq!(
            namespace.answer_prefix(&node, "00ff"),
            "shop1.cluster.answers.souk-0.00ff"
        );
    }
}
