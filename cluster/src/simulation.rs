//! A ring simulation with no servers: for N nodes named like the pods of a StatefulSet
//! (`souk-0` … `souk-{N-1}`), how evenly the shards spread, and how many move when
//! `souk-N` joins or a node leaves. The test below asserts the properties; the `ring`
//! bench prints the table that `docs/scaling.md` quotes.

use crate::ring::Ring;
use crate::settings::NodeId;

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationRow {
    pub nodes: usize,
    pub shard_count: u32,
    /// Fewest and most shards one node owns.
    pub min_shards: usize,
    pub max_shards: usize,
    /// Fraction of shards whose owner changes when `souk-N` joins (ideal: 1/(N+1)).
    pub moved_on_join: f64,
    /// True when every moved shard went to the joiner.
    pub join_moves_only_to_joiner: bool,
    /// Fraction moved when the last node (`souk-{N-1}`, what a StatefulSet removes
    /// first) leaves (ideal: 1/N).
    pub moved_on_leave: f64,
    /// The largest fraction moved by any single node leaving.
    pub worst_leave: f64,
    /// True when, for each sampled node leaving, exactly its shards moved.
    pub leave_moves_only_leavers_shards: bool,
}

impl SimulationRow {
    /// Max over min shards per node (infinite when a node owns none).
    pub fn imbalance(&self) -> f64 {
        if self.min_shards == 0 {
            return f64::INFINITY;
        }
        self.max_shards as f64 / self.min_shards as f64
    }
}

/// The StatefulSet-like id of node `index`.
pub fn pod_id(index: usize) -> NodeId {
    NodeId::parse(&format!("souk-{index}")).expect("pod ids are valid node ids")
}

/// Simulates `nodes` members (at least 1) over `shard_count` shards.
pub fn simulate(shard_count: u32, nodes: usize) -> SimulationRow {
    assert!(nodes > 0, "at least one node");
    let members: Vec<NodeId> = (0..nodes).map(pod_id).collect();
    let ring = Ring::new(shard_count, members.clone());
    let counts = ring.counts();
    let min_shards = counts.values().copied().min().unwrap_or(0);
    let max_shards = counts.values().copied().max().unwrap_or(0);

    let joiner = pod_id(nodes);
    let grown = Ring::new(shard_count, members.iter().cloned().chain([joiner.clone()]));
    let joined = ring.moved(&grown);
    let join_moves_only_to_joiner = joined
        .iter()
        .all(|shard| grown.owner(*shard) == Some(&joiner));

    let total = f64::from(shard_count);
    let last = pod_id(nodes - 1);
    let mut moved_on_leave = 0.0;
    let mut leave_moves_only_leavers_shards = true;
    if nodes > 1 {
        for leaver in sample_leavers(&members) {
            let shrunk = Ring::new(
                shard_count,
                members.iter().filter(|node| *node != leaver).cloned(),
            );
            let moved = ring.moved(&shrunk);
            leave_moves_only_leavers_shards &= moved == ring.shards_of(leaver);
            if *leaver == last {
                moved_on_leave = moved.len() as f64 / total;
            }
        }
    }
    // A leave moves exactly the leaver's shards (checked above on a sample of leavers,
    // and by the ring's property tests on random member sets), so the worst single
    // leave is the busiest node's.
    let worst_leave = if nodes > 1 {
        max_shards as f64 / total
    } else {
        0.0
    };

    SimulationRow {
        nodes,
        shard_count,
        min_shards,
        max_shards,
        moved_on_join: joined.len() as f64 / total,
        join_moves_only_to_joiner,
        moved_on_leave,
        worst_leave,
        leave_moves_only_leavers_shards,
    }
}

/// Up to 8 members spread over the set, the last one included.
fn sample_leavers(members: &[NodeId]) -> impl Iterator<Item = &NodeId> {
    let step = members.len().div_ceil(8).max(1);
    members
        .iter()
        .enumerate()
        .filter(move |(index, _)| index % step == 0 || *index == members.len() - 1)
        .map(|(_, node)| node)
}

/// The node counts the table covers.
pub const TABLE_NODE_COUNTS: [usize; 7] = [3, 4, 8, 16, 32, 64, 128];

/// The table as Markdown, one row per node count.
pub fn markdown_table(shard_count: u32, node_counts: &[usize]) -> String {
    let mut table = String::from(
        "| nodes | shards/node (ideal) | min | max | max/min | moved on join (ideal) | moved on leave of last (ideal) | worst single leave |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for &nodes in node_counts {
        let row = simulate(shard_count, nodes);
        table.push_str(&format!(
            "| {} | {:.1} | {} | {} | {:.2} | {:.1} % ({:.1} %) | {:.1} % ({:.1} %) | {:.1} % |\n",
            nodes,
            f64::from(shard_count) / nodes as f64,
            row.min_shards,
            row.max_shards,
            row.imbalance(),
            row.moved_on_join * 100.0,
            100.0 / (nodes + 1) as f64,
            row.moved_on_leave * 100.0,
            100.0 / nodes as f64,
            row.worst_leave * 100.0,
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the table: moves go only where rendezvous hashing says, and the
    /// amounts stay near the ideal 1/N. The bounds are loose on purpose (a few standard
    /// deviations of a binomial draw); the exact figures are in docs/scaling.md.
    #[test]
    fn the_table_has_the_ring_properties() {
        for nodes in TABLE_NODE_COUNTS {
            let row = simulate(1024, nodes);
            assert!(row.join_moves_only_to_joiner, "{row:?}");
            assert!(row.leave_moves_only_leavers_shards, "{row:?}");
            let ideal_join = 1.0 / (nodes + 1) as f64;
            let ideal_leave = 1.0 / nodes as f64;
            let tolerance = |ideal: f64| 4.0 * (ideal * (1.0 - ideal) / 1024.0).sqrt() + 0.005;
            assert!(
                (row.moved_on_join - ideal_join).abs() <= tolerance(ideal_join),
                "{row:?}"
            );
            assert!(
                (row.moved_on_leave - ideal_leave).abs() <= tolerance(ideal_leave),
                "{row:?}"
            );
            // Up to 32 nodes (32+ shards each) no node owns under half or over twice
            // its share.
            if nodes <= 32 {
                let share = 1024.0 / nodes as f64;
                assert!(row.min_shards as f64 >= share / 2.0, "{row:?}");
                assert!(row.max_shards as f64 <= share * 2.0, "{row:?}");
            }
        }
    }

    #[test]
    fn one_node_owns_everything() {
        let row = simulate(64, 1);
        assert_eq!((row.min_shards, row.max_shards), (64, 64));
        assert!((row.moved_on_join - 0.5).abs() < 0.2);
    }

    #[test]
    fn the_table_has_a_row_per_node_count() {
        let table = markdown_table(64, &[3, 4]);
        assert_eq!(table.lines().count(), 4);
        assert!(table.lines().nth(2).unwrap().starts_with("| 3 | 21.3 |"));
    }
}
