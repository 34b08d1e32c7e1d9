//! A node's driver: the one task that keeps the shard table true — it computes the ring
//! over the live members, takes the leases of the shards the ring gives this node, renews
//! what it holds, drains and releases what the ring moves elsewhere, stops serving a
//! shard the moment its lease could expire, and publishes every change as a new
//! [`ShardTable`] snapshot.
//!
//! Renewals and acquisitions run as spawned tasks (`lease_tasks`), so a NATS server
//! that stops answering never delays the driver's deadline timer: a shard leaves the
//! table at its `valid_until` whatever the network does. Each lease is taken and
//! renewed by a task of its own, cut off at a deadline (the lease's, or for a take, a
//! lease's length), and its result is taken as soon as it comes: a slow write (a lost
//! acknowledgement) costs at most its own shard, never the others'; a renewal itself
//! looks its write up and writes again once the write has waited a third of the
//! serving window ([`crate::LeaseStore::renew`]), so a lost acknowledgement usually
//! costs nothing.
//!
//! A table that differs from the last one only in how long leases are valid (a round
//! of renewals, whose answers trickle in) is published at most every
//! [`EXTENSION_PUBLISH_INTERVAL`], unless a published deadline is about to pass: every
//! published table wakes the handoff task and is read by every router. A renewal's
//! answer that only extends its lease costs the driver no pass over its shards: the
//! ring, the handoffs and the table are looked at again only when something else
//! changed, or when extended deadlines are due to be published.

mod lease_tasks;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{self, JoinSet};

use crate::lease::{self, Acquire, Holder, Lease, LeaseError, LeaseStore};
use crate::membership::Membership;
use crate::metrics;
use crate::ring::{Ring, ShardId};
use crate::settings::{ClusterSettings, NodeId};
use crate::table::{Handoff, OwnedShard, ShardState, ShardTable};

/// Lease takes in flight at once, and renewals at once.
const CONCURRENT_LEASE_WRITES: usize = 128;

/// The shortest time between two tables that differ only in the leases' deadlines.
const EXTENSION_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

pub(super) enum Command {
    HandoffDone(Handoff),
    Stop,
}

/// A held lease and whether it is being handed over.
struct Held {
    lease: Lease,
    draining_since: Option<Instant>,
}

/// What one renewal task answers.
type Renewed = (ShardId, Result<Lease, LeaseError>);

/// What one acquisition task answers.
type Acquired = (ShardId, Result<Acquire, LeaseError>);

pub(super) struct Driver {
    node: NodeId,
    settings: ClusterSettings,
    leases: LeaseStore,
    members: watch::Receiver<BTreeSet<NodeId>>,
    registered: watch::Receiver<bool>,
    holders: watch::Receiver<Arc<BTreeMap<String, Holder>>>,
    commands: mpsc::UnboundedReceiver<Command>,
    table: watch::Sender<Arc<ShardTable>>,
    held: BTreeMap<ShardId, Held>,
    ring: Arc<Ring>,
    /// The shards the ring gives this node, kept with the ring.
    own_shards: Vec<ShardId>,
    /// The holders by shard, rebuilt when the mirror changes (`None`: to rebuild).
    holders_by_shard: Option<Arc<BTreeMap<ShardId, Holder>>>,
    /// When the last table was published, and when a table held back (only deadlines
    /// moved) is due.
    published_at: Instant,
    publish_due: Option<Instant>,
    /// The nearest deadline of the last table published.
    published_earliest: Option<Instant>,
    /// Something other than a held lease's deadline may have changed since the last
    /// pass: the ring, the handoffs and the table are to be looked at again.
    changed: bool,
    /// A held lease's deadline moved since the last table.
    extended: bool,
    stopping: bool,
    /// Set by ticks and ring or holder changes: try to take wanted shards.
    acquire_due: bool,
    /// Renewals in flight, one task per lease, each answering for its shard.
    renewals: JoinSet<Renewed>,
    /// The shards whose renewal is in flight, with its task.
    renewing: BTreeMap<ShardId, task::Id>,
    /// Bounds the renewals writing at once.
    renewal_slots: Arc<Semaphore>,
    /// Acquisitions in flight, one task per shard.
    acquisitions: JoinSet<Acquired>,
    /// The shards being taken, with their task.
    acquiring: BTreeMap<ShardId, task::Id>,
    /// Bounds the takes writing at once.
    acquisition_slots: Arc<Semaphore>,
    /// Lease releases in flight; a graceful stop waits for them.
    releases: JoinSet<()>,
    /// The shards being released, with their release task: not taken again before it
    /// ends.
    releasing: BTreeMap<ShardId, task::AbortHandle>,
    /// Released shards whose renewal was in flight: their release waits for its answer,
    /// so that it removes the record that renewal may have written.
    release_after_renewal: BTreeMap<ShardId, Lease>,
}

impl Driver {
    pub(super) fn new(
        node: NodeId,
        settings: ClusterSettings,
        leases: LeaseStore,
        membership: &Membership,
        holders: watch::Receiver<Arc<BTreeMap<String, Holder>>>,
        commands: mpsc::UnboundedReceiver<Command>,
        table: watch::Sender<Arc<ShardTable>>,
    ) -> Self {
        let ring = Arc::new(Ring::new(settings.shards, Vec::new()));
        Self {
            node,
            settings,
            leases,
            members: membership.members(),
            registered: membership.registered(),
            holders,
            commands,
            table,
            held: BTreeMap::new(),
            ring,
            own_shards: Vec::new(),
            holders_by_shard: None,
            published_at: Instant::now(),
            publish_due: None,
            published_earliest: None,
            changed: true,
            extended: false,
            stopping: false,
            acquire_due: true,
            renewals: JoinSet::new(),
            renewing: BTreeMap::new(),
            renewal_slots: Arc::new(Semaphore::new(CONCURRENT_LEASE_WRITES)),
            acquisitions: JoinSet::new(),
            acquiring: BTreeMap::new(),
            acquisition_slots: Arc::new(Semaphore::new(CONCURRENT_LEASE_WRITES)),
            releases: JoinSet::new(),
            releasing: BTreeMap::new(),
            release_after_renewal: BTreeMap::new(),
        }
    }

    pub(super) async fn run(mut self) {
        let mut ticks = tokio::time::interval(self.settings.lease_renew_interval());
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut members_open = true;
        let mut registered_open = true;
        let mut holders_open = true;
        loop {
            if std::mem::take(&mut self.changed) {
                self.reconcile();
                self.publish();
            } else {
                self.publish_extensions();
            }
            while self.releases.try_join_next().is_some() {}
            self.releasing.retain(|_, task| !task.is_finished());
            // An acquisition still in flight may yet add leases to hand back, a
            // renewal still in flight a release to start.
            if self.stopping
                && self.held.is_empty()
                && self.acquisitions.is_empty()
                && self.release_after_renewal.is_empty()
            {
                // Every lease given back before the process may exit.
                while self.releases.join_next().await.is_some() {}
                return;
            }
            let publish_due = self.publish_due;
            let next_deadline = self
                .held
                .values()
                .map(|held| held.lease.valid_until())
                .min();
            let handoff_timeout = self.settings.handoff_timeout();
            let next_handoff_timeout = self
                .held
                .values()
                .filter_map(|held| held.draining_since)
                .min()
                .map(|since| since + handoff_timeout);
            tokio::select! {
                _ = ticks.tick() => {
                    self.changed = true;
                    self.acquire_due = true;
                    self.start_renewals();
                }
                changed = self.members.changed(), if members_open => {
                    self.changed = true;
                    members_open = changed.is_ok();
                    self.acquire_due = true;
                }
                changed = self.registered.changed(), if registered_open => {
                    self.changed = true;
                    registered_open = changed.is_ok();
                    if !*self.registered.borrow() {
                        tracing::error!(node = %self.node, "displaced: handing every shard over");
                        self.stopping = true;
                    }
                }
                changed = self.holders.changed(), if holders_open => {
                    self.changed = true;
                    self.holders_by_shard = None;
                    if changed.is_err() {
                        // The mirror stopped: the node is shutting down.
                        holders_open = false;
                        self.stopping = true;
                    }
                    self.acquire_due = true;
                }
                command = self.commands.recv() => {
                    self.changed = true;
                    self.obey(command);
                    // Handoffs come in bursts (every shard of a ring change): take
                    // what is queued before reconciling once.
                    while let Ok(command) = self.commands.try_recv() {
                        self.obey(Some(command));
                    }
                }
                _ = sleep_until_some(next_deadline) => {
                    self.changed = true;
                    self.expire();
                }
                _ = sleep_until_some(next_handoff_timeout) => self.changed = true,
                _ = sleep_until_some(publish_due) => {}
                Some(renewed) = self.renewals.join_next_with_id(), if !self.renewals.is_empty() => {
                    self.absorb_renewal(renewed);
                    // Renewals end in bursts (a tick starts them all): take every
                    // finished one before publishing once.
                    while let Some(renewed) = self.renewals.try_join_next_with_id() {
                        self.absorb_renewal(renewed);
                    }
                }
                Some(acquired) = self.acquisitions.join_next_with_id(), if !self.acquisitions.is_empty() => {
                    self.changed = true;
                    self.absorb_acquisition(acquired);
                    while let Some(acquired) = self.acquisitions.try_join_next_with_id() {
                        self.absorb_acquisition(acquired);
                    }
                }
            }
        }
    }

    /// Recomputes the ring; marks shards to hand over; releases timed-out handoffs;
    /// starts taking the shards this node should have.
    fn reconcile(&mut self) {
        let mut members = self.members.borrow().clone();
        if !self.stopping {
            members.insert(self.node.clone());
        } else {
            members.remove(&self.node);
        }
        if !self.ring.members().iter().eq(members.iter()) {
            self.ring = Arc::new(Ring::new(self.settings.shards, members));
            self.own_shards = self.ring.shards_of(&self.node);
        }
        let now = Instant::now();
        for (shard, held) in &mut self.held {
            let mine = self.ring.owner(*shard) == Some(&self.node);
            match (mine, held.draining_since) {
                (false, None) => {
                    tracing::info!(shard = shard.0, next = ?self.ring.owner(*shard).map(|n| n.to_string()), "handing shard over");
                    held.draining_since = Some(now);
                }
                (true, Some(_)) => held.draining_since = None,
                _ => {}
            }
        }
        let timeout = self.settings.handoff_timeout();
        let overdue: Vec<ShardId> = self
            .held
            .iter()
            .filter(|(_, held)| {
                held.draining_since
                    .is_some_and(|since| now >= since + timeout)
            })
            .map(|(shard, _)| *shard)
            .collect();
        for shard in overdue {
            self.release(shard, true);
        }
        self.start_acquisitions();
    }

    fn wanted(&self) -> Vec<ShardId> {
        if self.stopping {
            return Vec::new();
        }
        let holders = self.holders.borrow();
        self.own_shards
            .iter()
            .copied()
            .filter(|shard| !self.held.contains_key(shard))
            // Being released: taking it back now would race its release.
            .filter(|shard| {
                !self.releasing.contains_key(shard)
                    && !self.release_after_renewal.contains_key(shard)
            })
            // Being taken already.
            .filter(|shard| !self.acquiring.contains_key(shard))
            // Held by another node (or an earlier incarnation of this one, whose lease
            // must expire first): it releases it when it sees the ring. A record of this
            // very process (a renewal that landed after the shard was given up here) is
            // taken back by `try_acquire`.
            .filter(|shard| match holders.get(&lease::shard_key(*shard)) {
                Some(holder) => {
                    holder.node == self.node && holder.incarnation == self.leases.incarnation()
                }
                None => true,
            })
            .collect()
    }

    /// Drops the shards whose deadline passed: serving stops before the lease expires.
    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<ShardId> = self
            .held
            .iter()
            .filter(|(_, held)| held.lease.valid_until() <= now)
            .map(|(shard, _)| *shard)
            .collect();
        for shard in expired {
            metrics::lease_expired();
            tracing::warn!(
                shard = shard.0,
                "lease could not be renewed in time; no longer serving"
            );
            self.held.remove(&shard);
        }
    }

    fn obey(&mut self, command: Option<Command>) {
        match command {
            Some(Command::HandoffDone(handoff)) => self.finish_handoff(handoff),
            Some(Command::Stop) | None => self.stopping = true,
        }
    }

    /// Releases a shard whose handoff the entity host finished, unless the report is
    /// of an earlier handoff of the shard than the one under way.
    fn finish_handoff(&mut self, handoff: Handoff) {
        let current = self
            .held
            .get(&handoff.shard)
            .is_some_and(|held| held.draining_since == Some(handoff.since));
        if current {
            self.release(handoff.shard, false);
        }
    }

    /// Stops holding `shard` and releases its lease in the background.
    fn release(&mut self, shard: ShardId, timed_out: bool) {
        let Some(held) = self.held.remove(&shard) else {
            return;
        };
        if let Some(since) = held.draining_since {
            metrics::handoff(since.elapsed(), timed_out);
        }
        tracing::info!(
            shard = shard.0,
            epoch = held.lease.epoch(),
            timed_out,
            "released shard"
        );
        if self.renewing.contains_key(&shard) {
            self.release_after_renewal.insert(shard, held.lease);
        } else {
            self.start_release(held.lease);
        }
    }

    fn publish(&mut self) {
        let now = Instant::now();
        let owned: BTreeMap<ShardId, OwnedShard> = self
            .held
            .iter()
            .filter(|(_, held)| held.lease.valid_until() > now)
            .map(|(shard, held)| {
                let state = match held.draining_since {
                    Some(since) => ShardState::Draining { since },
                    None => ShardState::Serving,
                };
                let owned = OwnedShard {
                    epoch: held.lease.epoch(),
                    state,
                    valid_until: held.lease.valid_until(),
                };
                (*shard, owned)
            })
            .collect();
        metrics::owned_shards(owned.len());
        let holders = match &self.holders_by_shard {
            Some(holders) => holders.clone(),
            None => {
                let holders: Arc<BTreeMap<ShardId, Holder>> = Arc::new(
                    self.holders
                        .borrow()
                        .iter()
                        .filter_map(|(key, holder)| {
                            Some((lease::shard_from_key(key)?, holder.clone()))
                        })
                        .collect(),
                );
                self.holders_by_shard = Some(holders.clone());
                holders
            }
        };
        let ready = !self.stopping
            && *self.registered.borrow()
            && self.members.borrow().contains(&self.node)
            && self
                .own_shards
                .iter()
                .all(|shard| owned.contains_key(shard));
        let current = self.table.borrow().clone();
        let same_shards = (Arc::ptr_eq(&current.ring, &self.ring) || current.ring == self.ring)
            && current.ready == ready
            && current.leaving == self.stopping
            && (Arc::ptr_eq(&current.holders, &holders) || *current.holders == *holders)
            && current.owned.len() == owned.len()
            && current
                .owned
                .iter()
                .zip(&owned)
                .all(|((shard, was), (same_shard, held))| {
                    shard == same_shard && was.epoch == held.epoch && was.state == held.state
                });
        if same_shards {
            if current.owned == owned {
                self.publish_due = None;
                self.extended = false;
                return;
            }
            if self.extensions_held_back(now) {
                return;
            }
        }
        self.published_earliest = owned.values().map(|owned| owned.valid_until).min();
        self.table.send_replace(Arc::new(ShardTable {
            node: self.node.clone(),
            version: current.version + 1,
            ring: self.ring.clone(),
            owned,
            holders,
            ready,
            leaving: self.stopping,
        }));
        self.published_at = now;
        self.publish_due = None;
        self.extended = false;
    }

    /// After a pass in which only held leases' deadlines may have moved: publishes them
    /// if they are due, without looking at anything else.
    fn publish_extensions(&mut self) {
        if !self.extended || self.extensions_held_back(Instant::now()) {
            return;
        }
        self.publish();
    }

    /// Whether a table that would only extend deadlines is held back now (and when it
    /// is due): at most one every [`EXTENSION_PUBLISH_INTERVAL`], unless a published
    /// deadline is about to pass.
    fn extensions_held_back(&mut self, now: Instant) -> bool {
        let due = self.published_at + EXTENSION_PUBLISH_INTERVAL;
        let passing = self
            .published_earliest
            .is_some_and(|earliest| earliest <= now + 2 * EXTENSION_PUBLISH_INTERVAL);
        if now < due && !passing {
            self.publish_due = Some(due);
            return true;
        }
        false
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
