//! Per-shard leases in the `<namespace>_leases` KV bucket: key `shard.<n>`, value a
//! `LeaseRecord` (holder node, its incarnation, the owner epoch).
//!
//! - Taking a free shard writes the record conditionally on the key's revision: 0 when
//!   the key was never written, else the revision of the delete or expiry marker that
//!   ends the previous tenure. The revision of that write is the **owner epoch**; every
//!   later tenure has a higher one (revisions are the stream's sequence numbers).
//! - Renewing rewrites the record conditionally on the revision of the holder's last
//!   write, with the per-key TTL again; the epoch stays the one the tenure began with.
//! - The server removes a record its TTL after storing it, leaving an expiry marker,
//!   and only then can another node take the shard.
//!
//! **Serving bound.** A holder notes `sent`, its monotonic clock just before sending a
//! write; the server stores the write later and expires it `ttl` after storing it, so
//! the lease cannot expire before `sent + ttl` as measured by a clock running at the
//! server's rate. The holder serves the shard only until `sent + ttl - margin`
//! ([`Lease::valid_until`]). The margin (`lease_margin_ms`, default 1 s of a 4 s TTL)
//! absorbs what that argument does not cover: the holder's and the server's clocks
//! running at different rates (NTP keeps that far below 1 %), a server wall clock
//! stepped forward (the server times TTLs with it), the offset between the servers of
//! a NATS cluster when the stream's leader moves, and the holder's own lateness in
//! noticing the deadline (a timer, a busy runtime). No comparison of wall clocks
//! between the holder and the server is involved. The database fence on the owner
//! epoch stays the last guard should all of that fail.
//!
//! A write whose acknowledgement is lost is ambiguous: the holder does not extend its
//! deadline for it, and the next renewal, finding the revision moved, recognises its
//! own record (same incarnation and epoch) and continues from it.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use prost::Message;
use souk_proto::v1::LeaseRecord;

use crate::kv::{Bucket, WriteError};
use crate::ring::ShardId;
use crate::settings::{ClusterSettings, NodeId};
use crate::ClusterError;

const SHARD_PREFIX: &str = "shard.";

/// A shard's current holder as recorded in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub node: NodeId,
    pub incarnation: String,
    pub epoch: u64,
}

/// A lease this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    shard: ShardId,
    epoch: u64,
    /// Revision of this holder's latest confirmed write.
    revision: u64,
    valid_until: Instant,
}

impl Lease {
    pub fn shard(&self) -> ShardId {
        self.shard
    }

    /// The owner epoch: the revision of the write that began this tenure.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The holder serves the shard strictly before this instant.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    pub fn is_valid(&self) -> bool {
        Instant::now() < self.valid_until
    }
}

/// The outcome of trying to take a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    Acquired(Lease),
    /// Someone holds it (possibly this node's previous incarnation).
    HeldBy(Holder),
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The lease is gone: expired, released, or taken by `holder`.
    #[error("lease lost")]
    Lost { holder: Option<Holder> },
    /// NATS did not answer in time; the lease may still be valid until its deadline.
    #[error("lease store unavailable: {0}")]
    Unavailable(String),
}

/// Takes, renews and releases this node's shard leases.
#[derive(Clone)]
pub struct LeaseStore {
    bucket: Bucket,
    node: NodeId,
    incarnation: String,
    ttl: Duration,
    margin: Duration,
    /// Renewals made slow on purpose by the crate's own tests.
    #[cfg(test)]
    lost_acks: test_hooks::LostAcks,
}

impl LeaseStore {
    /// Opens (creating if missing) the leases bucket for `settings`' namespace;
    /// `incarnation` tells this process's leases from a previous one's.
    pub async fn open(
        jetstream: &jetstream::Context,
        settings: &ClusterSettings,
        incarnation: &str,
    ) -> Result<Self, ClusterError> {
        settings.validate()?;
        let bucket = Bucket::open(
            jetstream,
            &settings.namespace()?.leases_bucket(),
            "souk cluster shard leases",
            settings.lease_ttl(),
            settings.kv_replicas,
        )
        .await?;
        Ok(Self {
            bucket,
            node: settings.node()?,
            incarnation: incarnation.to_owned(),
            ttl: settings.lease_ttl(),
            margin: settings.lease_margin(),
            #[cfg(test)]
            lost_acks: Default::default(),
        })
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    /// How long a renewal waits for its write's answer before it reads the key: a third
    /// of the time a lease serves after its renewal is sent, so that a second write
    /// fits before the holder must stop serving.
    pub fn renewal_patience(&self) -> Duration {
        self.ttl.saturating_sub(self.margin) / 3
    }

    pub fn incarnation(&self) -> &str {
        &self.incarnation
    }

    pub(crate) fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// Takes `shard` if it is free (never taken, released or expired).
    pub async fn try_acquire(&self, shard: ShardId) -> Result<Acquire, LeaseError> {
        let key = shard_key(shard);
        let current = self.read(&key).await?;
        let expected = match current {
            Some(entry) if entry.operation == kv::Operation::Put => {
                let holder = decode_holder(&entry).ok_or_else(|| corrupt(&key))?;
                if holder.node != self.node || holder.incarnation != self.incarnation {
                    return Ok(Acquire::HeldBy(holder));
                }
                // Ours already (an acquisition whose acknowledgement was lost):
                // continue the tenure with a confirmed renewal.
                let mut lease = Lease {
                    shard,
                    epoch: holder.epoch,
                    revision: entry.revision,
                    valid_until: Instant::now(),
                };
                self.renew(&mut lease).await?;
                return Ok(Acquire::Acquired(lease));
            }
            Some(marker) => marker.revision,
            None => 0,
        };
        let sent = Instant::now();
        let record = self.record(0);
        let written = self
            .bucket
            .write(&key, record, Some(expected), Some(self.ttl))
            .await;
        #[cfg(test)]
        let written = self
            .lost_acks
            .hold(shard, test_hooks::Write::Acquisition, written)
            .await;
        match written {
            Ok(revision) => Ok(Acquire::Acquired(Lease {
                shard,
                epoch: revision,
                revision,
                valid_until: self.deadline(sent),
            })),
            Err(WriteError::Conflict) => match self.holder(shard).await? {
                Some(holder) => Ok(Acquire::HeldBy(holder)),
                None => Err(LeaseError::Unavailable(
                    "the lease changed while taking it".to_owned(),
                )),
            },
            Err(WriteError::Nats(error)) => Err(LeaseError::Unavailable(error)),
        }
    }

    /// Extends `lease`. On [`LeaseError::Unavailable`] the lease keeps its deadline (and
    /// may be renewed again before it); on [`LeaseError::Lost`] it must be dropped.
    ///
    /// A write not answered within [`LeaseStore::renewal_patience`] (its acknowledgement
    /// lost when the connection to NATS is re-established, or just slow) is looked up in
    /// the bucket and made again from our own record there, while the first write may
    /// still answer: whichever acknowledged write answers first extends the lease, from
    /// the moment it was sent.
    pub async fn renew(&self, lease: &mut Lease) -> Result<(), LeaseError> {
        let key = shard_key(lease.shard);
        let (shard, epoch) = (lease.shard, lease.epoch);
        let first_sent = Instant::now();
        let first = self.write_renewal(&key, shard, epoch, lease.revision);
        tokio::pin!(first);
        let mut first_pending =
            match tokio::time::timeout(self.renewal_patience(), &mut first).await {
                Ok(Ok(revision)) => {
                    self.extend(lease, revision, first_sent);
                    return Ok(());
                }
                Ok(Err(WriteError::Nats(error))) => return Err(LeaseError::Unavailable(error)),
                Ok(Err(WriteError::Conflict)) => false,
                Err(_) => true,
            };
        // Our record may have moved on under a write whose answer did not come: the
        // second write starts from what is there, if it is still ours.
        let retry = async {
            let revision = self.own_revision(&key, epoch).await?;
            let sent = Instant::now();
            let written = self.write_renewal(&key, shard, epoch, revision).await;
            Ok::<_, LeaseError>((written, sent))
        };
        tokio::pin!(retry);
        let retried = loop {
            tokio::select! {
                written = &mut first, if first_pending => {
                    first_pending = false;
                    if let Ok(revision) = written {
                        self.extend(lease, revision, first_sent);
                        return Ok(());
                    }
                }
                retried = &mut retry => break retried,
            }
        };
        match retried {
            Ok((Ok(revision), sent)) => {
                self.extend(lease, revision, sent);
                return Ok(());
            }
            Err(lost @ LeaseError::Lost { .. }) => return Err(lost),
            Ok((Err(_), _)) | Err(LeaseError::Unavailable(_)) => {}
        }
        // The second write conflicted (the first landed meanwhile) or could not be
        // made: the first write's answer, if it is still to come, decides.
        if first_pending {
            if let Ok(revision) = first.await {
                self.extend(lease, revision, first_sent);
                return Ok(());
            }
        }
        Err(LeaseError::Unavailable(
            "no renewal of the lease was acknowledged".to_owned(),
        ))
    }

    /// One conditional write of this node's record for `shard` over `revision`.
    async fn write_renewal(
        &self,
        key: &str,
        shard: ShardId,
        epoch: u64,
        revision: u64,
    ) -> Result<u64, WriteError> {
        let written = self
            .bucket
            .write(key, self.record(epoch), Some(revision), Some(self.ttl))
            .await;
        #[cfg(test)]
        let written = self
            .lost_acks
            .hold(shard, test_hooks::Write::Renewal, written)
            .await;
        #[cfg(not(test))]
        let _ = shard;
        written
    }

    /// The revision of the shard's record if it is still this holder's, of `epoch`.
    async fn own_revision(&self, key: &str, epoch: u64) -> Result<u64, LeaseError> {
        let current = self.read(key).await?;
        let holder = current
            .as_ref()
            .filter(|entry| entry.operation == kv::Operation::Put)
            .and_then(decode_holder);
        let still_ours = holder.as_ref().is_some_and(|holder| {
            holder.node == self.node
                && holder.incarnation == self.incarnation
                && holder.epoch == epoch
        });
        match current {
            Some(entry) if still_ours => Ok(entry.revision),
            _ => Err(LeaseError::Lost { holder }),
        }
    }

    /// Records an acknowledged renewal: its revision, and a deadline counted from when
    /// it was sent.
    fn extend(&self, lease: &mut Lease, revision: u64, sent: Instant) {
        lease.revision = revision;
        lease.valid_until = lease.valid_until.max(self.deadline(sent));
    }

    /// Gives the shard up (the caller has stopped serving it) so that its next owner
    /// can take it at once instead of waiting for the TTL. Only the write `lease` names
    /// (its latest confirmed one) is removed: a key that has moved on since is left
    /// alone, since this holder's later record may be a renewal whose answer was lost
    /// or the shard taken back by [`LeaseStore::try_acquire`] and served again — the two
    /// look the same. Such a record expires on its own unless renewed; a caller that
    /// does not want to wait for that releases only after its renewals have answered.
    pub async fn release(&self, lease: Lease) -> Result<(), LeaseError> {
        match self
            .bucket
            .delete(&shard_key(lease.shard), lease.revision)
            .await
        {
            Ok(()) => Ok(()),
            Err(WriteError::Conflict) => {
                tracing::debug!(
                    shard = lease.shard.0,
                    revision = lease.revision,
                    "the lease moved on since; not released"
                );
                Ok(())
            }
            Err(WriteError::Nats(error)) => Err(LeaseError::Unavailable(error)),
        }
    }

    /// The shard's holder as the bucket has it now.
    pub async fn holder(&self, shard: ShardId) -> Result<Option<Holder>, LeaseError> {
        let current = self.read(&shard_key(shard)).await?;
        Ok(current
            .filter(|entry| entry.operation == kv::Operation::Put)
            .as_ref()
            .and_then(decode_holder))
    }

    async fn read(&self, key: &str) -> Result<Option<kv::Entry>, LeaseError> {
        let read = self.bucket.entry(key);
        match tokio::time::timeout(crate::kv::WRITE_TIMEOUT, read).await {
            Ok(Ok(entry)) => Ok(entry),
            Ok(Err(error)) => Err(LeaseError::Unavailable(error.to_string())),
            Err(_) => Err(LeaseError::Unavailable("read timed out".to_owned())),
        }
    }

    fn record(&self, epoch: u64) -> Bytes {
        Bytes::from(
            LeaseRecord {
                node_id: self.node.as_str().to_owned(),
                incarnation: self.incarnation.clone(),
                epoch,
            }
            .encode_to_vec(),
        )
    }

    fn deadline(&self, sent: Instant) -> Instant {
        sent + self.ttl.saturating_sub(self.margin)
    }
}

fn corrupt(key: &str) -> LeaseError {
    LeaseError::Unavailable(format!("undecodable lease record under {key}"))
}

pub(crate) fn shard_key(shard: ShardId) -> String {
    format!("{SHARD_PREFIX}{}", shard.0)
}

pub(crate) const LEASE_PREFIX: &str = SHARD_PREFIX;

/// The shard a lease key names.
pub(crate) fn shard_from_key(key: &str) -> Option<ShardId> {
    key.strip_prefix(SHARD_PREFIX)?.parse().ok().map(ShardId)
}

/// The holder a record names; the epoch of a tenure's first write is its revision.
pub(crate) fn decode_holder(entry: &kv::Entry) -> Option<Holder> {
    let record = LeaseRecord::decode(entry.value.clone()).ok()?;
    Some(Holder {
        node: NodeId::parse(&record.node_id).ok()?,
        incarnation: record.incarnation,
        epoch: if record.epoch == 0 {
            entry.revision
        } else {
            record.epoch
        },
    })
}

#[cfg(test)]
pub(crate) mod test_hooks {
    //! Test only: lease writes whose acknowledgement is lost, on demand.

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use crate::kv::WriteError;
    use crate::ring::ShardId;

    /// Which write of a shard's lease.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) enum Write {
        Acquisition,
        Renewal,
    }

    /// Shards whose next writes of a kind land but are answered only after a delay
    /// each (one per write, in turn), and then as a timeout (as when the server's
    /// acknowledgement is lost).
    #[derive(Clone, Default)]
    pub(crate) struct LostAcks(Arc<Mutex<Delays>>);

    /// The delays still to come, in turn, for each shard's writes of a kind.
    type Delays = BTreeMap<(ShardId, Write), Vec<Duration>>;

    impl LostAcks {
        pub(crate) async fn hold(
            &self,
            shard: ShardId,
            write: Write,
            written: Result<u64, WriteError>,
        ) -> Result<u64, WriteError> {
            let delay = {
                let mut lost = self.0.lock().expect("lost acks");
                let delays = lost.get_mut(&(shard, write));
                let delay =
                    delays.and_then(|delays| (!delays.is_empty()).then(|| delays.remove(0)));
                lost.retain(|_, delays| !delays.is_empty());
                delay
            };
            let Some(delay) = delay else {
                return written;
            };
            tokio::time::sleep(delay).await;
            Err(WriteError::Nats(
                "write timed out (test: acknowledgement lost)".to_owned(),
            ))
        }
    }

    impl super::LeaseStore {
        /// The next renewal write of `shard` lands, but its caller hears of it only
        /// after `delay`, as a timeout.
        pub(crate) fn lose_next_renewal_ack(&self, shard: ShardId, delay: Duration) {
            self.lost_acks
                .0
                .lock()
                .expect("lost acks")
                .entry((shard, Write::Renewal))
                .or_default()
                .push(delay);
        }

        /// The next take of `shard` lands, but its caller hears of it only after
        /// `delay`, as a timeout.
        pub(crate) fn lose_next_acquisition_ack(&self, shard: ShardId, delay: Duration) {
            self.lost_acks
                .0
                .lock()
                .expect("lost acks")
                .entry((shard, Write::Acquisition))
                .or_default()
                .push(delay);
        }
    }
}
