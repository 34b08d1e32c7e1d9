//! Membership: each node keeps a record `members.<node id>` in the `<namespace>_members`
//! KV bucket, written with a per-key TTL and renewed periodically; a node that stops
//! renewing (killed, frozen, cut off) expires and the server's expiry marker tells every
//! watcher. The same bucket holds `settings.shard_count` and `settings.entity_kinds`,
//! written once without a TTL by the first node: a node configured with another shard
//! count, or hosting other kinds of entity (running other services), refuses to join.
//!
//! Renewals are compare-and-set on the record's revision. If the record was rewritten
//! by another process with the same node id (a replacement pod started while this one
//! still runs), this node is displaced: it stops renewing and reports it. If the record
//! expired (this node was cut off for longer than the TTL), it registers again.
//! See `kv.rs` for why per-key TTLs rather than the bucket's `max_age`.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use prost::Message;
use souk_proto::v1::MemberRecord;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::kv::{Bucket, WriteError};
use crate::metrics;
use crate::settings::{ClusterSettings, NodeId};
use crate::ClusterError;

const MEMBER_PREFIX: &str = "members.";
const SHARD_COUNT_KEY: &str = "settings.shard_count";
const ENTITY_KINDS_KEY: &str = "settings.entity_kinds";

/// This node's place in the cluster; dropping it stops renewing (the record then
/// expires), [`Membership::leave`] removes the record at once.
pub struct Membership {
    node: NodeId,
    incarnation: String,
    bucket: Bucket,
    members: watch::Receiver<BTreeSet<NodeId>>,
    registered: watch::Receiver<bool>,
    revision: Arc<Mutex<u64>>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Membership {
    /// Checks the shard count, registers this node and starts renewing and watching.
    pub async fn join(
        jetstream: &jetstream::Context,
        settings: &ClusterSettings,
    ) -> Result<Self, ClusterError> {
        settings.validate()?;
        let node = settings.node()?;
        let namespace = settings.namespace()?;
        let bucket = Bucket::open(
            jetstream,
            &namespace.members_bucket(),
            "souk cluster members and settings",
            settings.membership_ttl(),
            settings.kv_replicas,
        )
        .await?;
        check_shard_count(&bucket, settings.shards).await?;
        check_entity_kinds(&bucket, &settings.entity_kinds).await?;

        let incarnation = uuid::Uuid::now_v7().simple().to_string();
        let record = MemberRecord {
            node_id: node.as_str().to_owned(),
            incarnation: incarnation.clone(),
            shard_count: settings.shards,
            joined_at_ms: unix_millis(),
        }
        .encode_to_vec();
        let key = member_key(&node);
        let revision = bucket
            .write(
                &key,
                Bytes::from(record.clone()),
                None,
                Some(settings.membership_ttl()),
            )
            .await
            .map_err(|error| ClusterError::nats("register member", error))?;
        tracing::info!(node = %node, incarnation, revision, "joined the cluster");

        let (shutdown, shutdown_receiver) = watch::channel(false);
        let (registered_sender, registered) = watch::channel(true);
        let revision = Arc::new(Mutex::new(revision));
        let (records, mirror_task) = crate::kv::mirror(
            bucket.clone(),
            MEMBER_PREFIX,
            decode_member,
            shutdown_receiver.clone(),
        )
        .await?;
        let (members_sender, members) = watch::channel(BTreeSet::new());
        let members_task = tokio::spawn(project_members(
            records,
            members_sender,
            shutdown_receiver.clone(),
        ));
        let renewer = Renewer {
            bucket: bucket.clone(),
            node: node.clone(),
            incarnation: incarnation.clone(),
            record: Bytes::from(record),
            ttl: settings.membership_ttl(),
            interval: settings.membership_renew_interval(),
            revision: revision.clone(),
            registered: registered_sender,
        };
        let renew_task = tokio::spawn(renewer.run(shutdown_receiver));
        Ok(Self {
            node,
            incarnation,
            bucket,
            members,
            registered,
            revision,
            shutdown,
            tasks: vec![mirror_task, members_task, renew_task],
        })
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// Random per process start.
    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    /// The live members (this node included once its record is seen), updated as
    /// records appear and expire.
    pub fn members(&self) -> watch::Receiver<BTreeSet<NodeId>> {
        self.members.clone()
    }

    /// False once another process took this node id over: the node must stop.
    pub fn registered(&self) -> watch::Receiver<bool> {
        self.registered.clone()
    }

    /// Stops renewing and removes this node's record (unless a successor rewrote it).
    pub async fn leave(mut self) -> Result<(), ClusterError> {
        self.stop().await;
        let revision = *self.revision.lock().expect("revision lock");
        match self.bucket.delete(&member_key(&self.node), revision).await {
            Ok(()) | Err(WriteError::Conflict) => {
                tracing::info!(node = %self.node, "left the cluster");
                Ok(())
            }
            Err(error) => Err(ClusterError::nats("leave", error)),
        }
    }

    async fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn member_key(node: &NodeId) -> String {
    format!("{MEMBER_PREFIX}{node}")
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn decode_member(entry: &kv::Entry) -> Option<NodeId> {
    let record = MemberRecord::decode(entry.value.clone()).ok()?;
    let node = NodeId::parse(&record.node_id).ok()?;
    (member_key(&node) == entry.key).then_some(node)
}

/// Turns the mirrored records into the member set.
async fn project_members(
    mut records: watch::Receiver<Arc<std::collections::BTreeMap<String, NodeId>>>,
    members: watch::Sender<BTreeSet<NodeId>>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let current: BTreeSet<NodeId> = records.borrow_and_update().values().cloned().collect();
        metrics::members(current.len());
        members.send_if_modified(|known| {
            if *known == current {
                return false;
            }
            *known = current;
            true
        });
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            changed = records.changed() => if changed.is_err() { return },
        }
    }
}

/// Writes the shard count if no node has, else compares with it.
async fn check_shard_count(bucket: &Bucket, configured: u32) -> Result<(), ClusterError> {
    let recorded = record_once(bucket, SHARD_COUNT_KEY, &configured.to_string()).await?;
    let recorded = recorded
        .parse::<u32>()
        .map_err(|_| ClusterError::CorruptRecord {
            bucket: bucket.name().to_owned(),
            key: SHARD_COUNT_KEY.to_owned(),
            detail: "not a number".to_owned(),
        })?;
    if recorded != configured {
        return Err(ClusterError::ShardCountMismatch {
            cluster: recorded,
            configured,
        });
    }
    Ok(())
}

/// Writes the entity kinds this node hosts if no node has, else compares with them:
/// the ring gives every member shards of every kind, so all members host the same.
async fn check_entity_kinds(bucket: &Bucket, hosted: &[String]) -> Result<(), ClusterError> {
    let hosted = kinds_record(hosted);
    let recorded = record_once(bucket, ENTITY_KINDS_KEY, &hosted).await?;
    if recorded != hosted {
        return Err(ClusterError::EntityKindsMismatch {
            cluster: recorded,
            hosted,
        });
    }
    Ok(())
}

/// The kinds as recorded: sorted, comma-separated, `none` for none.
fn kinds_record(kinds: &[String]) -> String {
    let kinds: BTreeSet<&str> = kinds.iter().map(String::as_str).collect();
    if kinds.is_empty() {
        return "none".to_owned();
    }
    kinds.into_iter().collect::<Vec<_>>().join(",")
}

/// A deployment-wide setting under `key`, written without a TTL by the first node:
/// writes `value` if no node has, else answers what was recorded.
async fn record_once(bucket: &Bucket, key: &str, value: &str) -> Result<String, ClusterError> {
    for _ in 0..5 {
        let current = bucket.entry(key).await?;
        let expected_revision = match &current {
            Some(entry) if entry.operation == kv::Operation::Put => {
                return std::str::from_utf8(&entry.value)
                    .map(str::to_owned)
                    .map_err(|_| ClusterError::CorruptRecord {
                        bucket: bucket.name().to_owned(),
                        key: key.to_owned(),
                        detail: "not utf-8".to_owned(),
                    });
            }
            Some(marker) => marker.revision,
            None => 0,
        };
        match bucket
            .write(
                key,
                Bytes::from(value.to_owned()),
                Some(expected_revision),
                None,
            )
            .await
        {
            Ok(_) => {
                tracing::info!(key, value, "recorded the cluster's setting");
                return Ok(value.to_owned());
            }
            // Another node wrote it meanwhile: read it.
            Err(WriteError::Conflict) => continue,
            Err(error) => return Err(ClusterError::nats("record cluster setting", error)),
        }
    }
    Err(ClusterError::nats(
        "record cluster setting",
        "the record kept changing",
    ))
}

struct Renewer {
    bucket: Bucket,
    node: NodeId,
    incarnation: String,
    record: Bytes,
    ttl: Duration,
    interval: Duration,
    revision: Arc<Mutex<u64>>,
    registered: watch::Sender<bool>,
}

impl Renewer {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                _ = ticks.tick() => {}
            }
            match self.renew().await {
                Ok(()) => {}
                Err(ClusterError::Displaced { node }) => {
                    tracing::error!(
                        node,
                        "another process registered with this node id; this node stops renewing"
                    );
                    let _ = self.registered.send(false);
                    return;
                }
                Err(error) => {
                    metrics::membership_renew_failure();
                    tracing::warn!(node = %self.node, %error, "membership renewal failed");
                }
            }
        }
    }

    async fn renew(&self) -> Result<(), ClusterError> {
        let key = member_key(&self.node);
        let expected = *self.revision.lock().expect("revision lock");
        let written = self
            .bucket
            .write(&key, self.record.clone(), Some(expected), Some(self.ttl))
            .await;
        let revision = match written {
            Ok(revision) => revision,
            Err(WriteError::Conflict) => self.register_again(&key).await?,
            Err(error) => return Err(ClusterError::nats("renew member", error)),
        };
        *self.revision.lock().expect("revision lock") = revision;
        Ok(())
    }

    /// The record is not the one this node last wrote: taken over, or expired.
    async fn register_again(&self, key: &str) -> Result<u64, ClusterError> {
        let current = self.bucket.entry(key).await?;
        let expected = match current {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let record = MemberRecord::decode(entry.value.clone()).ok();
                let ours = record.is_some_and(|record| record.incarnation == self.incarnation);
                if !ours {
                    return Err(ClusterError::Displaced {
                        node: self.node.to_string(),
                    });
                }
                // Our own write whose acknowledgement was lost.
                entry.revision
            }
            Some(marker) => {
                tracing::warn!(node = %self.node, "membership had expired; registering again");
                marker.revision
            }
            None => 0,
        };
        self.bucket
            .write(key, self.record.clone(), Some(expected), Some(self.ttl))
            .await
            .map_err(|error| ClusterError::nats("register member again", error))
    }
}
