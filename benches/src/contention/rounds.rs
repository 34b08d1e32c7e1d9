//! Rounds of a run: each workload × concurrency may run its strategies several times,
//! alternating their order, and each strategy's cells are then taken together.

use serde::Serialize;

use super::report::CellResult;
use super::workload::Workload;
use super::StrategyName;

/// The cells of one workload × concurrency: every strategy once per round (numbered
/// from 1), in the given order in odd rounds and reversed in even ones. A run's
/// databases grow from cell to cell and a later cell runs a little slower; alternating
/// the order gives each strategy the earlier place as often as the later one.
pub(super) fn round_order(
    strategies: &[StrategyName],
    rounds: usize,
) -> Vec<(usize, StrategyName)> {
    (1..=rounds)
        .flat_map(|round| {
            let mut order = strategies.to_vec();
            if round % 2 == 0 {
                order.reverse();
            }
            order.into_iter().map(move |name| (round, name))
        })
        .collect()
}

/// A strategy's cells of one workload × concurrency, taken together over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Pooled {
    pub strategy: String,
    pub workload: Workload,
    pub concurrency: usize,
    /// Each round's reservations/s, in round order.
    pub rates: Vec<f64>,
    /// All rounds' reservations over all their seconds.
    pub reservations_per_sec: f64,
    /// All rounds' reservations over their seconds and their settling (souk
    /// strategies): [`CellResult::placed_and_mailed_per_sec`] over the rounds.
    pub placed_and_mailed_per_sec: Option<f64>,
}

/// Each strategy × workload × concurrency over its rounds, in the order the cells ran
/// first.
pub(super) fn pooled(cells: &[CellResult]) -> Vec<Pooled> {
    let mut keys: Vec<(&str, Workload, usize)> = Vec::new();
    for cell in cells {
        let key = (cell.strategy.as_str(), cell.workload, cell.concurrency);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(strategy, workload, concurrency)| {
            let mine: Vec<&CellResult> = cells
                .iter()
                .filter(|cell| {
                    cell.strategy == strategy
                        && cell.workload == workload
                        && cell.concurrency == concurrency
                })
                .collect();
            let reserved: u64 = mine.iter().map(|cell| cell.reserved).sum();
            let wall: f64 = mine.iter().map(|cell| cell.wall_secs).sum();
            let settled: Option<f64> = mine.iter().map(|cell| cell.settled_secs).sum();
            Pooled {
                strategy: strategy.to_owned(),
                workload,
                concurrency,
                rates: mine
                    .iter()
                    .map(|cell| cell.latency.throughput_per_sec)
                    .collect(),
                reservations_per_sec: reserved as f64 / wall.max(1e-9),
                placed_and_mailed_per_sec: settled
                    .map(|settled| reserved as f64 / (wall + settled).max(1e-9)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::contention::report::goal;
    use crate::contention::strategies::{Cell, Verification};
    use crate::stats::Summary;

    #[test]
    fn rounds_alternate_the_order_of_the_strategies() {
        let strategies = [StrategyName::SoukHttp, StrategyName::SoukCluster];
        assert_eq!(
            round_order(&strategies, 3),
            [
                (1, StrategyName::SoukHttp),
                (1, StrategyName::SoukCluster),
                (2, StrategyName::SoukCluster),
                (2, StrategyName::SoukHttp),
                (3, StrategyName::SoukHttp),
                (3, StrategyName::SoukCluster),
            ]
        );
        assert_eq!(round_order(&strategies, 1).len(), 2);
    }

    fn cell(
        strategy: &str,
        round: usize,
        reserved: u64,
        wall_secs: f64,
        settled: f64,
    ) -> CellResult {
        let cell = Cell {
            id: round,
            workload: Workload::Hot,
            skus: 1,
            stock_per_sku: 1_000_000,
            concurrency: 256,
        };
        let latency = Summary {
            requests: reserved as usize,
            throughput_per_sec: reserved as f64 / wall_secs,
            p50_ms: 1.0,
            p95_ms: 1.0,
            p99_ms: 1.0,
            max_ms: 1.0,
        };
        let verification = Verification {
            recorded: reserved,
            oversold_units: 0,
            inconsistent_skus: 0,
        };
        let mut result = CellResult::new(
            strategy,
            &cell,
            Duration::from_secs_f64(wall_secs),
            reserved,
            0,
            0,
            None,
            latency,
            verification,
            None,
        );
        result.round = round;
        result.settled_secs = Some(settled);
        result
    }

    #[test]
    fn a_strategys_rate_over_its_rounds_is_its_reservations_over_its_seconds() {
        let cells = vec![
            cell("souk-http", 1, 4_000, 10.0, 1.0),
            cell("souk-cluster", 1, 3_000, 10.0, 0.0),
            cell("souk-cluster", 2, 3_600, 8.0, 2.0),
            cell("souk-http", 2, 2_000, 10.0, 1.0),
        ];
        let pooled = pooled(&cells);
        let names: Vec<&str> = pooled
            .iter()
            .map(|pooled| pooled.strategy.as_str())
            .collect();
        assert_eq!(
            names,
            ["souk-http", "souk-cluster"],
            "in the order the cells first ran"
        );
        assert_eq!(pooled[0].rates, [400.0, 200.0]);
        assert_eq!(pooled[0].reservations_per_sec, 300.0);
        assert_eq!(pooled[1].reservations_per_sec, 6_600.0 / 18.0);
        assert_eq!(pooled[1].placed_and_mailed_per_sec, Some(6_600.0 / 20.0));
        let goal = goal(&cells, &pooled);
        let expected = format!("{:.2}×", (6_600.0 / 18.0) / 300.0);
        assert!(
            goal.iter().any(|line| line.contains(&format!(
                "souk-cluster = {expected} souk-http over 2 rounds (goal ≥ 0.8×): met"
            ))),
            "{goal:?}"
        );
    }

    #[test]
    fn one_round_reports_as_before() {
        let cells = vec![
            cell("souk-http", 1, 4_000, 10.0, 1.0),
            cell("souk-cluster", 1, 3_000, 10.0, 1.0),
        ];
        let goal = goal(&cells, &pooled(&cells));
        assert!(
            goal.contains(
                &"hot, 256 clients: souk-cluster = 0.75× souk-http (goal ≥ 0.8×): NOT met; placed and mailed 0.75×".to_owned()
            ),
            "{goal:?}"
        );
    }
}
