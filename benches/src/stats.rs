//! Latency summaries.

use std::time::Duration;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub requests: usize,
    pub throughput_per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Summary {
    /// This summary as a row of the reports' latency tables: name, count, per second,
    /// p50, p95, p99 and max in ms.
    pub fn markdown_row(&self, name: &str) -> String {
        format!(
            "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            self.requests,
            self.throughput_per_sec,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms
        )
    }
}

pub fn summarise(mut latencies: Vec<Duration>, wall: Duration) -> Summary {
    latencies.sort_unstable();
    let percentile = |fraction: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index =
            ((latencies.len() as f64 * fraction).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    Summary {
        requests: latencies.len(),
        throughput_per_sec: latencies.len() as f64 / wall.as_secs_f64().max(f64::EPSILON),
        p50_ms: percentile(0.50),
        p95_ms: percentile(0.95),
        p99_ms: percentile(0.99),
        max_ms: latencies
            .last()
            .map(|latency| latency.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_right_rank() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let summary = summarise(latencies, Duration::from_secs(1));
        assert_eq!(summary.requests, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(summary.throughput_per_sec, 100.0);
    }

    #[test]
    fn a_markdown_row_gives_every_figure_in_the_tables_order() {
        let latencies: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let summary = summarise(latencies, Duration::from_secs(2));
        assert_eq!(
            summary.markdown_row("all"),
            "| all | 100 | 50 | 50.00 | 95.00 | 99.00 | 100.00 |\n"
        );
    }
}
