//! The shard ring: which shard an entity key falls in, and which live member owns a
//! shard, computed the same way on every node from nothing but the key and the member
//! ids.
//!
//! The algorithm (version [`RING_VERSION`]; changing any step moves entities between
//! shards and must come with a new version and a migration plan):
//! - shard of a key = XXH3-64 (seed 0) of the key's UTF-8 bytes, modulo the shard count.
//!   XXH3's output is frozen by the xxHash specification since release 0.8.0 and is the
//!   same on every platform and in every implementation; `std`'s `DefaultHasher` is
//!   not (its algorithm may change between Rust releases).
//! - weight of (shard, node) = XXH3-64 (seed 0) of the shard number as 4 big-endian
//!   bytes followed by the node id's UTF-8 bytes.
//! - owner of a shard = the member with the highest weight (rendezvous, or highest
//!   random weight, hashing); on an equal weight the smaller node id wins.
//!
//! So a joining node takes exactly the shards for which it now has the highest weight
//! (about 1/(N+1) of them) and a leaving node's shards, and only those, go to the
//! runners-up: no other shard moves.

use std::collections::BTreeMap;
use std::fmt;

use xxhash_rust::xxh3::xxh3_64;

use crate::settings::NodeId;

/// Version of the hashing scheme above.
pub const RING_VERSION: u32 = 1;

/// A shard number, `0..shard_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(formatter)
    }
}

/// The stable 64-bit hash of an entity key.
pub fn key_hash(key: &str) -> u64 {
    xxh3_64(key.as_bytes())
}

/// The shard an entity key belongs to. `shard_count` must be positive.
pub fn shard_of(key: &str, shard_count: u32) -> ShardId {
    assert!(shard_count > 0, "shard count must be positive");
    ShardId((key_hash(key) % u64::from(shard_count)) as u32)
}

/// The rendezvous weight of `node` for `shard`.
pub fn weight(shard: ShardId, node: &NodeId) -> u64 {
    let mut input = Vec::with_capacity(4 + node.as_str().len());
    input.extend_from_slice(&shard.0.to_be_bytes());
    input.extend_from_slice(node.as_str().as_bytes());
    xxh3_64(&input)
}

/// The owner of `shard` among `members`: the highest weight, ties to the smaller id.
pub fn rendezvous_owner<'a>(
    shard: ShardId,
    members: impl IntoIterator<Item = &'a NodeId>,
) -> Option<&'a NodeId> {
    members
        .into_iter()
        .map(|node| (weight(shard, node), node))
        .max_by(|(left_weight, left), (right_weight, right)| {
            left_weight.cmp(right_weight).then_with(|| right.cmp(left))
        })
        .map(|(_, node)| node)
}

/// The owner of every shard for one member set, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ring {
    shard_count: u32,
    /// Sorted, without duplicates.
    members: Vec<NodeId>,
    /// Index into `members` per shard; empty when there are no members.
    owners: Vec<u32>,
}

impl Ring {
    pub fn new(shard_count: u32, members: impl IntoIterator<Item = NodeId>) -> Self {
        assert!(shard_count > 0, "shard count must be positive");
        let mut members: Vec<NodeId> = members.into_iter().collect();
        members.sort();
        members.dedup();
        let owners = if members.is_empty() {
            Vec::new()
        } else {
            (0..shard_count)
                .map(|shard| owner_index(ShardId(shard), &members))
                .collect()
        };
        Self {
            shard_count,
            members,
            owners,
        }
    }

    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// The members, sorted by id.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    pub fn contains(&self, node: &NodeId) -> bool {
        self.members.binary_search(node).is_ok()
    }

    pub fn shard_of(&self, key: &str) -> ShardId {
        shard_of(key, self.shard_count)
    }

    /// The owner of `shard`; `None` without members or for a shard out of range.
    pub fn owner(&self, shard: ShardId) -> Option<&NodeId> {
        let index = *self.owners.get(shard.0 as usize)?;
        self.members.get(index as usize)
    }

    pub fn owner_of_key(&self, key: &str) -> Option<&NodeId> {
        self.owner(self.shard_of(key))
    }

    /// The shards `node` owns, ascending.
    pub fn shards_of(&self, node: &NodeId) -> Vec<ShardId> {
        let Ok(index) = self.members.binary_search(node) else {
            return Vec::new();
        };
        self.owners
            .iter()
            .enumerate()
            .filter(|(_, owner)| **owner as usize == index)
            .map(|(shard, _)| ShardId(shard as u32))
            .collect()
    }

    /// Shards per member (members owning none included, with 0).
    pub fn counts(&self) -> BTreeMap<&NodeId, usize> {
        let mut counts: BTreeMap<&NodeId, usize> =
            self.members.iter().map(|node| (node, 0)).collect();
        for owner in &self.owners {
            *counts
                .get_mut(&self.members[*owner as usize])
                .expect("owner is a member") += 1;
        }
        counts
    }

    /// The shards whose owner differs between `self` and `other` (same shard count).
    pub fn moved(&self, other: &Ring) -> Vec<ShardId> {
        assert_eq!(
            self.shard_count, other.shard_count,
            "rings of one deployment"
        );
        (0..self.shard_count)
            .map(ShardId)
            .filter(|shard| self.owner(*shard) != other.owner(*shard))
            .collect()
    }
}

fn owner_index(shard: ShardId, members: &[NodeId]) -> u32 {
    let owner = rendezvous_owner(shard, members).expect("members is not empty");
    members
        .binary_search(owner)
        .expect("owner comes from members") as u32
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::parse(name).expect("valid node id")
    }

    fn nodes(count: usize) -> Vec<NodeId> {
        (0..count)
            .map(|index| node(&format!("souk-{index}")))
            .collect()
    }

    /// Pinned outputs: if one of these changes, every deployment's entities would move.
    /// The empty input's hash is the xxHash specification's own test vector.
    #[test]
    fn golden_vector() {
        assert_eq!(key_hash(""), 0x2d06_8005_38d3_94c2);
        let shards: Vec<u32> = ["SEED-000001", "SEED-000002", "sku-42", "0192f1c2-order"]
            .iter()
            .map(|key| shard_of(key, 1024).0)
            .collect();
        assert_eq!(shards, GOLDEN_SHARDS);
        let ring = Ring::new(1024, nodes(3));
        let owners: Vec<&str> = [0, 1, 2, 3, 511, 1023]
            .iter()
            .map(|shard| ring.owner(ShardId(*shard)).unwrap().as_str())
            .collect();
        assert_eq!(owners, GOLDEN_OWNERS);
    }

    // Cross-checked with the reference C library (through Python's `xxhash` package),
    // an implementation independent of the Rust crate.
    const GOLDEN_SHARDS: [u32; 4] = [980, 729, 715, 805];
    const GOLDEN_OWNERS: [&str; 6] = ["souk-2", "souk-0", "souk-0", "souk-2", "souk-2", "souk-2"];

    #[test]
    fn empty_ring_owns_nothing() {
        let ring = Ring::new(16, Vec::new());
        assert_eq!(ring.owner(ShardId(3)), None);
        assert!(ring.shards_of(&node("a")).is_empty());
        assert!(ring.counts().is_empty());
    }

    #[test]
    fn out_of_range_shard_has_no_owner() {
        let ring = Ring::new(16, nodes(2));
        assert_eq!(ring.owner(ShardId(16)), None);
    }

    #[test]
    fn duplicate_members_count_once() {
        let ring = Ring::new(64, [node("a"), node("b"), node("a")]);
        assert_eq!(ring.members(), &[node("a"), node("b")]);
        assert_eq!(ring.counts().values().sum::<usize>(), 64);
    }

    fn member_set() -> impl Strategy<Value = Vec<NodeId>> {
        prop::collection::btree_set("[a-z0-9-]{1,12}", 1..12)
            .prop_map(|names| names.iter().map(|name| node(name)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn same_members_in_any_order_give_the_same_ring(members in member_set()) {
            let mut reversed = members.clone();
            reversed.reverse();
            prop_assert_eq!(Ring::new(256, members), Ring::new(256, reversed));
        }

        #[test]
        fn shard_is_in_range(key in ".*", count in 1u32..5000) {
            prop_assert!(shard_of(&key, count).0 < count);
        }

        #[test]
        fn a_join_moves_only_shards_to_the_joiner(members in member_set(), joiner in "[A-Z]{1,8}") {
            let joiner = node(&joiner);
            let before = Ring::new(512, members.clone());
            let mut grown = members;
            grown.push(joiner.clone());
            let after = Ring::new(512, grown);
            for shard in before.moved(&after) {
                prop_assert_eq!(after.owner(shard), Some(&joiner));
            }
            prop_assert_eq!(before.moved(&after).len(), after.shards_of(&joiner).len());
        }

        #[test]
        fn a_leave_moves_only_the_leavers_shards(members in member_set(), leaver in 0usize..12) {
            prop_assume!(members.len() > 1);
            let leaver = members[leaver % members.len()].clone();
            let before = Ring::new(512, members.clone());
            let after = Ring::new(512, members.into_iter().filter(|node| *node != leaver));
            prop_assert_eq!(before.moved(&after), before.shards_of(&leaver));
        }
    }
}
