//! Prometheus metrics. The recorder is process-global, so it is installed once per
//! process (tests start many apps in one process) and every app renders the same one.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the recorder on first call; later calls return the same handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .expect("latency buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

pub fn record_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let labels = [
        ("method", method.to_owned()),
        ("route", route.to_owned()),
        ("status", status.to_string()),
    ];
    metrics::counter!("souk_http_requests_total", &labels).increment(1);
    metrics::histogram!("souk_http_request_duration_seconds", &labels)
        .record(elapsed.as_secs_f64());
}

/// Pool gauges are sampled when scraped, which is when they are read.
pub fn record_pool(db: &souk_db::Db) {
    let (open, idle, max) = db.pool_usage();
    let backend = db.backend().name();
    metrics::gauge!("souk_db_pool_connections", "backend" => backend, "state" => "open")
        .set(f64::from(open));
    metrics::gauge!("souk_db_pool_connections", "backend" => backend, "state" => "idle")
        .set(idle as f64);
    metrics::gauge!("souk_db_pool_connections", "backend" => backend, "state" => "max")
        .set(f64::from(max));
}
