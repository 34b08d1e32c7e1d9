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
}
