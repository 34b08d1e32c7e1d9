//! The JetStream KV buckets the cluster keeps (members, leases) and the one write the
//! async-nats client does not offer: a put that is both conditional on the key's
//! revision and carries a per-message TTL.
//!
//! Why per-message TTL (nats-server 2.11, ADR-43) rather than the bucket's `max_age`:
//! - `max_age` expires a key silently: watchers are not told, so a dead member would stay
//!   in everyone's ring. With the bucket's `limit_markers` set, the server leaves a
//!   delete marker (`Nats-Marker-Reason: MaxAge`, seen by async-nats as a purge) when a
//!   key expires, and watchers see it go.
//! - `max_age` applies to every key, so a record that must not expire (the cluster's
//!   shard count) could not share the bucket; a per-message TTL applies to the keys
//!   written with one.
//! - The TTL is counted by the server from when it stored the write, so a holder that
//!   notes when it *sent* a renewal knows a lower bound of the expiry without comparing
//!   clocks with anyone.
//!
//! async-nats 0.51 sets `Nats-TTL` only in `create_with_ttl` (and that falls back to a
//! plain `update`, losing the TTL, when the key holds a delete marker) and has no
//! conditional put with a TTL, so [`Bucket::write`] publishes to the bucket's subject
//! itself with both headers, `Nats-Expected-Last-Subject-Sequence` (the revision
//! check, 0 = the key has never been written or was removed) and `Nats-TTL`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind, kv};
use async_nats::{HeaderMap, HeaderValue};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ClusterError;

/// How long a write may wait for the server's acknowledgement.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// One KV bucket with per-message TTLs enabled.
#[derive(Clone)]
pub struct Bucket {
    name: String,
    store: kv::Store,
    jetstream: jetstream::Context,
}

/// Why a conditional write did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The key's revision is not the expected one: someone else wrote it.
    #[error("the key was written by someone else")]
    Conflict,
    #[error("nats: {0}")]
    Nats(String),
}

impl Bucket {
    /// Creates the bucket if missing (every node may race to: an identical creation
    /// succeeds) and checks that it accepts per-message TTLs.
    pub async fn open(
        jetstream: &jetstream::Context,
        name: &str,
        description: &str,
        marker_ttl: Duration,
        replicas: usize,
    ) -> Result<Self, ClusterError> {
        let config = kv::Config {
            bucket: name.to_owned(),
            description: description.to_owned(),
            history: 1,
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            // Markers of expired keys stay this long: watchers that are connected
            // see them, and the bucket does not fill with them.
            limit_markers: Some(marker_ttl.max(Duration::from_secs(1))),
            ..Default::default()
        };
        let store = match jetstream.create_key_value(config).await {
            Ok(store) => store,
            Err(create_error) => match jetstream.get_key_value(name).await {
                Ok(store) => store,
                Err(_) => {
                    return Err(ClusterError::BucketUnsupported {
                        bucket: name.to_owned(),
                        detail: create_error.to_string(),
                    })
                }
            },
        };
        let status = store
            .status()
            .await
            .map_err(|error| ClusterError::nats("bucket status", error))?;
        if !status.info.config.allow_message_ttl {
            return Err(ClusterError::BucketUnsupported {
                bucket: name.to_owned(),
                detail: "the bucket exists without per-message ttl (allow_msg_ttl), as a \
                         nats-server older than 2.11 creates it; a node recreates it on \
                         nats-server >= 2.11 once it is deleted, but deleting the leases \
                         bucket restarts the owner epochs at 1: delete it only with every \
                         node stopped and owner_epoch set back to 0 in inventory_items and \
                         orders (docs/scaling.md)"
                    .to_owned(),
            });
        }
        Ok(Self {
            name: name.to_owned(),
            store,
            jetstream: jetstream.clone(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn store(&self) -> &kv::Store {
        &self.store
    }

    /// Writes `value` under `key`. `expected_revision`: `Some(r)` writes only if the
    /// key's latest message (value, delete or expiry marker) has revision `r`, `Some(0)`
    /// only if the key has none; `None` writes unconditionally. `ttl` (whole seconds,
    /// at least one) makes the server remove the value that long after storing it.
    /// Returns the new revision.
    pub async fn write(
        &self,
        key: &str,
        value: Bytes,
        expected_revision: Option<u64>,
        ttl: Option<Duration>,
    ) -> Result<u64, WriteError> {
        let mut headers = HeaderMap::new();
        if let Some(revision) = expected_revision {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                HeaderValue::from(revision),
            );
        }
        if let Some(ttl) = ttl {
            headers.insert(
                async_nats::header::NATS_MESSAGE_TTL,
                HeaderValue::from(ttl.as_secs().max(1)),
            );
        }
        let subject = format!("$KV.{}.{}", self.name, key);
        let publish = async {
            self.jetstream
                .publish_with_headers(subject, headers, value)
                .await?
                .await
        };
        match tokio::time::timeout(WRITE_TIMEOUT, publish).await {
            Err(_) => Err(WriteError::Nats("write timed out".to_owned())),
            Ok(Ok(ack)) => Ok(ack.sequence),
            Ok(Err(error)) if error.kind() == PublishErrorKind::WrongLastSequence => {
                Err(WriteError::Conflict)
            }
            Ok(Err(error)) => Err(WriteError::Nats(error.to_string())),
        }
    }

    /// The key's latest entry (a value, or a delete/expiry marker), if any.
    pub async fn entry(&self, key: &str) -> Result<Option<kv::Entry>, ClusterError> {
        self.store
            .entry(key)
            .await
            .map_err(|error| ClusterError::nats("read key", error))
    }

    /// Deletes `key` if its revision is still `revision` (leaves a delete marker).
    pub async fn delete(&self, key: &str, revision: u64) -> Result<(), WriteError> {
        let delete = self.store.delete_expect_revision(key, Some(revision));
        match tokio::time::timeout(WRITE_TIMEOUT, delete).await {
            Err(_) => Err(WriteError::Nats("delete timed out".to_owned())),
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                Err(WriteError::Conflict)
            }
            Ok(Err(error)) => Err(WriteError::Nats(error.to_string())),
        }
    }

    /// The latest entry of every key under `prefix` (`members.`), markers left out.
    pub async fn live_entries(&self, prefix: &str) -> Result<Vec<kv::Entry>, ClusterError> {
        use futures_util::TryStreamExt;
        let keys: Vec<String> = self
            .store
            .keys()
            .await
            .map_err(|error| ClusterError::nats("list keys", error))?
            .try_collect()
            .await
            .map_err(|error| ClusterError::nats("list keys", error))?;
        let mut entries = Vec::new();
        for key in keys.iter().filter(|key| key.starts_with(prefix)) {
            if let Some(entry) = self.entry(key).await? {
                if entry.operation == kv::Operation::Put {
                    entries.push(entry);
                }
            }
        }
        Ok(entries)
    }
}

/// A live copy of the keys under one prefix, as `decode` reads them: a snapshot (read
/// before this returns), then every change the bucket's watch delivers. Markers
/// (delete, purge, expiry) remove a key; a value `decode` refuses is left out (and
/// logged). The published map changes only when a decoded value does, so renewals that
/// rewrite the same value cost no notification. A failed watch is started again, with
/// a new snapshot.
pub async fn mirror<T>(
    bucket: Bucket,
    prefix: &'static str,
    decode: fn(&kv::Entry) -> Option<T>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(watch::Receiver<Mirrored<T>>, JoinHandle<()>), ClusterError>
where
    T: Clone + PartialEq + Send + Sync + 'static,
{
    let (sender, receiver) = watch::channel(Arc::new(BTreeMap::new()));
    let mut session = Follower::start(&bucket, prefix, decode, &sender).await?;
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => return,
                error = session.run(&bucket, &sender) => {
                    tracing::warn!(bucket = bucket.name(), %error, "watch failed; watching again");
                }
            }
            loop {
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                match Follower::start(&bucket, prefix, decode, &sender).await {
                    Ok(next) => {
                        session = next;
                        break;
                    }
                    Err(error) => {
                        tracing::warn!(bucket = bucket.name(), %error, "cannot watch; trying again");
                    }
                }
            }
        }
    });
    Ok((receiver, task))
}

pub type Mirrored<T> = Arc<BTreeMap<String, T>>;

/// One watch session of a mirror.
struct Follower<T> {
    changes: kv::Watch,
    revisions: HashMap<String, u64>,
    decode: fn(&kv::Entry) -> Option<T>,
}

impl<T: Clone + PartialEq> Follower<T> {
    /// Subscribes to changes first, then reads and publishes the snapshot: a change made
    /// meanwhile is in both, and the revision check below skips its second copy.
    async fn start(
        bucket: &Bucket,
        prefix: &'static str,
        decode: fn(&kv::Entry) -> Option<T>,
        sender: &watch::Sender<Mirrored<T>>,
    ) -> Result<Self, ClusterError> {
        let changes = bucket
            .store
            .watch(format!("{prefix}>"))
            .await
            .map_err(|error| ClusterError::nats("watch bucket", error))?;
        let mut revisions = HashMap::new();
        let mut values = BTreeMap::new();
        for entry in bucket.live_entries(prefix).await? {
            revisions.insert(entry.key.clone(), entry.revision);
            if let Some(value) = decode_logged(bucket, &entry, decode) {
                values.insert(entry.key.clone(), value);
            }
        }
        sender.send_replace(Arc::new(values));
        Ok(Self {
            changes,
            revisions,
            decode,
        })
    }

    /// Applies changes until the watch fails or ends; returns why.
    async fn run(&mut self, bucket: &Bucket, sender: &watch::Sender<Mirrored<T>>) -> ClusterError {
        use futures_util::StreamExt;
        while let Some(change) = self.changes.next().await {
            let entry = match change {
                Ok(entry) => entry,
                Err(error) => return ClusterError::nats("watch bucket", error),
            };
            let known = self.revisions.get(&entry.key).copied().unwrap_or(0);
            if entry.revision <= known {
                continue;
            }
            self.revisions.insert(entry.key.clone(), entry.revision);
            let value = match entry.operation {
                kv::Operation::Put => decode_logged(bucket, &entry, self.decode),
                kv::Operation::Delete | kv::Operation::Purge => None,
            };
            sender.send_if_modified(|current| {
                if current.get(&entry.key) == value.as_ref() {
                    return false;
                }
                let map = Arc::make_mut(current);
                match value {
                    Some(value) => map.insert(entry.key.clone(), value),
                    None => map.remove(&entry.key),
                };
                true
            });
        }
        ClusterError::nats("watch bucket", "the watch ended")
    }
}

fn decode_logged<T>(
    bucket: &Bucket,
    entry: &kv::Entry,
    decode: fn(&kv::Entry) -> Option<T>,
) -> Option<T> {
    let value = decode(entry);
    if value.is_none() {
        tracing::warn!(bucket = bucket.name(), key = %entry.key, "undecodable record ignored");
    }
    value
}
