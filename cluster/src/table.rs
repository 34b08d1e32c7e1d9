//! The shard table: one immutable snapshot of what this node knows — the member ring,
//! the shards it holds (with their owner epochs, serving or draining) and who holds
//! the others — published by the node's driver through a `tokio::sync::watch` channel
//! whenever any of it changes. Routing and the entity host read it; nothing here talks
//! to NATS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::lease::Holder;
use crate::ring::{Ring, ShardId};
use crate::settings::NodeId;

/// What this node does with a shard whose lease it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardState {
    /// This node serves the shard's entities.
    Serving,
    /// The shard moves to another node: take no new commands, flush open batches,
    /// passivate, then report the [`Handoff`] done (or the lease is released when the
    /// handoff timeout passes).
    Draining { since: Instant },
}

/// One handoff of a shard, named by when its draining began: a shard can drain, be kept
/// after all (the ring moved back) and drain again, and a report of the first handoff
/// done must not release the shard in the middle of the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Handoff {
    pub shard: ShardId,
    pub since: Instant,
}

/// A shard whose lease this node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnedShard {
    /// The owner epoch every write of this tenure must be fenced with.
    pub epoch: u64,
    pub state: ShardState,
    /// Serving must stop strictly before this instant unless the lease is renewed
    /// (a later snapshot then carries a later instant).
    pub valid_until: Instant,
}

/// A snapshot of the shard table.
#[derive(Debug, Clone)]
pub struct ShardTable {
    pub node: NodeId,
    /// Bumped on every published change.
    pub version: u64,
    /// The ring over the live members (this node included while it is a member).
    pub ring: Arc<Ring>,
    /// The shards this node holds.
    pub owned: BTreeMap<ShardId, OwnedShard>,
    /// Every shard's holder as seen in the leases bucket (this node's included).
    pub holders: Arc<BTreeMap<ShardId, Holder>>,
    /// Joined, table read, and every shard the ring gives this node held.
    pub ready: bool,
    /// The node is leaving (graceful stop) or was displaced: it takes no shard.
    pub leaving: bool,
}

impl ShardTable {
    pub(crate) fn empty(node: NodeId, shard_count: u32) -> Self {
        Self {
            node,
            version: 0,
            ring: Arc::new(Ring::new(shard_count, Vec::new())),
            owned: BTreeMap::new(),
            holders: Arc::new(BTreeMap::new()),
            ready: false,
            leaving: false,
        }
    }

    pub fn shard_count(&self) -> u32 {
        self.ring.shard_count()
    }

    pub fn shard_of(&self, key: &str) -> ShardId {
        self.ring.shard_of(key)
    }

    /// The epoch to fence with if this node serves `shard` right now (serving state and
    /// lease deadline not passed, checked against the clock at the call).
    pub fn serving_epoch(&self, shard: ShardId) -> Option<u64> {
        let owned = self.owned.get(&shard)?;
        let serving = owned.state == ShardState::Serving && Instant::now() < owned.valid_until;
        serving.then_some(owned.epoch)
    }

    pub fn serves(&self, shard: ShardId) -> bool {
        self.serving_epoch(shard).is_some()
    }

    /// Whether this node serves the shard of the entity `key` right now.
    pub fn serves_key(&self, key: &str) -> bool {
        self.serves(self.shard_of(key))
    }

    /// Where a message for `shard` should go: this node if it serves it; else the
    /// lease holder (unless that is this node, draining); else the ring's owner, who
    /// takes the lease when it is free.
    pub fn owner(&self, shard: ShardId) -> Option<&NodeId> {
        if self.serves(shard) {
            return Some(&self.node);
        }
        match self.holders.get(&shard) {
            Some(holder) if holder.node != self.node => Some(&holder.node),
            _ => self.ring.owner(shard),
        }
    }

    pub fn owner_of_key(&self, key: &str) -> Option<&NodeId> {
        self.owner(self.shard_of(key))
    }

    /// The handoffs of the shards this node must hand over.
    pub fn draining(&self) -> impl Iterator<Item = Handoff> + '_ {
        self.owned
            .iter()
            .filter_map(|(shard, owned)| match owned.state {
                ShardState::Draining { since } => Some(Handoff {
                    shard: *shard,
                    since,
                }),
                ShardState::Serving => None,
            })
    }

    /// Shards per holder, as the leases bucket has them (for the admin view).
    pub fn shards_per_holder(&self) -> BTreeMap<&NodeId, usize> {
        let mut counts = BTreeMap::new();
        for holder in self.holders.values() {
            *counts.entry(&holder.node).or_insert(0) += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::parse(name).unwrap()
    }

    fn table_with(owned: OwnedShard, holder: Option<&str>) -> ShardTable {
        let mut table = ShardTable::empty(node("a"), 8);
        table.ring = Arc::new(Ring::new(8, [node("a"), node("b")]));
        table.owned.insert(ShardId(3), owned);
        if let Some(holder) = holder {
            let holders = BTreeMap::from([(
                ShardId(3),
                Holder {
                    node: node(holder),
                    incarnation: "x".to_owned(),
                    epoch: 7,
                },
            )]);
            table.holders = Arc::new(holders);
        }
        table
    }

    #[test]
    fn a_serving_shard_is_served_until_its_deadline_only() {
        let later = Instant::now() + Duration::from_secs(60);
        let table = table_with(
            OwnedShard {
                epoch: 7,
                state: ShardState::Serving,
                valid_until: later,
            },
            Some("a"),
        );
        assert_eq!(table.serving_epoch(ShardId(3)), Some(7));
        assert_eq!(table.owner(ShardId(3)), Some(&node("a")));

        let expired = table_with(
            OwnedShard {
                epoch: 7,
                state: ShardState::Serving,
                valid_until: Instant::now(),
            },
            Some("a"),
        );
        assert_eq!(expired.serving_epoch(ShardId(3)), None);
        assert_eq!(expired.owner(ShardId(3)), expired.ring.owner(ShardId(3)));
    }

    #[test]
    fn a_draining_shard_points_to_its_next_owner() {
        let since = Instant::now();
        let table = table_with(
            OwnedShard {
                epoch: 7,
                state: ShardState::Draining { since },
                valid_until: Instant::now() + Duration::from_secs(60),
            },
            Some("a"),
        );
        assert!(!table.serves(ShardId(3)));
        assert_eq!(
            table.draining().collect::<Vec<_>>(),
            vec![Handoff {
                shard: ShardId(3),
                since
            }]
        );
        assert_eq!(table.owner(ShardId(3)), table.ring.owner(ShardId(3)));
    }

    #[test]
    fn another_holder_wins_over_the_ring() {
        let mut table = table_with(
            OwnedShard {
                epoch: 1,
                state: ShardState::Serving,
                valid_until: Instant::now(),
            },
            Some("c"),
        );
        table.owned.clear();
        assert_eq!(table.owner(ShardId(3)), Some(&node("c")));
        assert_eq!(table.shards_per_holder().get(&node("c")), Some(&1));
    }
}
