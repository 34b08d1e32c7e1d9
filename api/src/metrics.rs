//! Prometheus metrics. The recorder is process-global, so it is installed once per
//! process (tests start many apps in one process) and every app renders the same one.
//! Installing it describes every metric Souk exports (`# HELP`) and starts the process
//! collector; each node then creates, at zero, the series its alert rules select, so an
//! alert has a series before the first event.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::topology::{Service, ServiceSet};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric Souk records, with its help text. A metric recorded anywhere in the
/// workspace belongs here (the tests fail on a `# TYPE` without `# HELP`).
const CATALOGUE: &[(&str, Kind, &str)] = &[
    // Edges.
    (
        "souk_http_requests_total",
        Kind::Counter,
        "REST requests answered, by method, route pattern and status.",
    ),
    (
        "souk_http_request_duration_seconds",
        Kind::Histogram,
        "Time to answer a REST request, by method, route pattern and status.",
    ),
    (
        "souk_grpc_requests_total",
        Kind::Counter,
        "gRPC calls answered, by service, method and status code.",
    ),
    (
        "souk_grpc_request_duration_seconds",
        Kind::Histogram,
        "Time to answer a gRPC call (to its response headers), by service, method and status code.",
    ),
    (
        "souk_grpc_client_failures_total",
        Kind::Counter,
        "Failed calls to another Souk service, by service.",
    ),
    (
        "souk_grpc_client_fast_failures_total",
        Kind::Counter,
        "Calls to another Souk service refused at once because its circuit is open, by service.",
    ),
    (
        "souk_db_pool_connections",
        Kind::Gauge,
        "Database pool connections, by backend and state (open, idle, max), sampled at scrape.",
    ),
    (
        "souk_console_feed_lagged_total",
        Kind::Counter,
        "Stock events the admin console's live hub missed because it fell behind.",
    ),
    (
        "souk_console_live_viewers",
        Kind::Gauge,
        "Admin consoles following the live stock stream.",
    ),
    // Identity.
    (
        "souk_auth_refresh_reuse_total",
        Kind::Counter,
        "Refresh tokens presented a second time (their sessions were revoked).",
    ),
    (
        "souk_redis_fallbacks_total",
        Kind::Counter,
        "Times Redis could not be reached and Souk counted in process instead, by use.",
    ),
    (
        "souk_node_cache_requests_total",
        Kind::Counter,
        "Reads of a node's own caches on the hot path (sessions, product snapshots), by cache and outcome (hit, miss).",
    ),
    // Catalog and search.
    (
        "souk_cache_requests_total",
        Kind::Counter,
        "Catalog cache reads, by cache and outcome (hit, miss, error).",
    ),
    (
        "souk_cache_invalidation_failures_total",
        Kind::Counter,
        "Cache invalidations that could not reach Redis, by cache.",
    ),
    (
        "souk_search_feed_errors_total",
        Kind::Counter,
        "Search index updates that failed (the next rebuild repairs them).",
    ),
    (
        "souk_search_index_products",
        Kind::Gauge,
        "Products in the search index after its last build.",
    ),
    (
        "souk_search_index_build_seconds",
        Kind::Histogram,
        "Time to build the search index from the database.",
    ),
    // Inventory and orders.
    (
        "souk_order_batch_size",
        Kind::Histogram,
        "Orders committed together by the node writer in one transaction.",
    ),
    (
        "souk_stock_batches_per_commit",
        Kind::Histogram,
        "SKU actor batches committed together by the node writer in one transaction.",
    ),
    (
        "souk_inventory_batch_size",
        Kind::Histogram,
        "Stock commands committed together in one SKU actor batch.",
    ),
    (
        "souk_inventory_batch_seconds",
        Kind::Histogram,
        "Time from a SKU actor batch's start to its commit by the node writer.",
    ),
    (
        "souk_inventory_fenced_total",
        Kind::Counter,
        "SKU actor batches refused because another owner wrote the row first.",
    ),
    (
        "souk_checkout_lines_unheld_total",
        Kind::Counter,
        "Lines of a placed order that a concurrent request with its key released and that could not be reserved again.",
    ),
    (
        "souk_order_settlement_failures_total",
        Kind::Counter,
        "Orders whose stock effects could not be settled yet (the sweeper retries).",
    ),
    (
        "souk_payment_refund_failures_total",
        Kind::Counter,
        "Refunds the payment provider could not make (a cancelled order's is retried).",
    ),
    // Entities and tasks.
    (
        "souk_entities_live",
        Kind::Gauge,
        "Entity actors running on this node, by kind.",
    ),
    (
        "souk_entity_passivations_total",
        Kind::Counter,
        "Entity actors stopped because they were idle, by kind.",
    ),
    (
        "souk_entity_restarts_total",
        Kind::Counter,
        "Entity actors restarted after a failure, by kind and reason (failed, crashed).",
    ),
    (
        "souk_entity_restart_backoff_seconds",
        Kind::Histogram,
        "Backoff before an entity actor's restart, by kind.",
    ),
    (
        "souk_task_restarts_total",
        Kind::Counter,
        "Supervised tasks restarted, by task and reason.",
    ),
    // Events and mail.
    (
        "souk_outbox_published_total",
        Kind::Counter,
        "Outbox events the relay published.",
    ),
    (
        "souk_outbox_lag_seconds",
        Kind::Gauge,
        "Age of the oldest unpublished outbox event, 0 when none.",
    ),
    (
        "souk_emails_sent_total",
        Kind::Counter,
        "Emails sent, by template.",
    ),
    (
        "souk_emails_failed_total",
        Kind::Counter,
        "Email delivery attempts that failed.",
    ),
    (
        "souk_emails_retried_total",
        Kind::Counter,
        "Failed email deliveries scheduled for another attempt.",
    ),
    (
        "souk_emails_dead_lettered_total",
        Kind::Counter,
        "Events whose emails failed every attempt and were dead-lettered.",
    ),
    // The cluster (recorded once nodes run it).
    (
        "souk_cluster_members",
        Kind::Gauge,
        "Live cluster members this node sees.",
    ),
    (
        "souk_cluster_owned_shards",
        Kind::Gauge,
        "Shards whose lease this node holds.",
    ),
    (
        "souk_cluster_membership_renew_failures_total",
        Kind::Counter,
        "Membership renewals that failed.",
    ),
    (
        "souk_cluster_lease_renew_failures_total",
        Kind::Counter,
        "Shard lease renewals that failed, by reason (lost, error).",
    ),
    (
        "souk_cluster_lease_expired_total",
        Kind::Counter,
        "Shards this node stopped serving because their lease could expire.",
    ),
    (
        "souk_cluster_lease_acquired_total",
        Kind::Counter,
        "Shard leases acquired.",
    ),
    (
        "souk_cluster_handoffs_total",
        Kind::Counter,
        "Shards handed to another node, by outcome.",
    ),
    (
        "souk_cluster_handoff_seconds",
        Kind::Histogram,
        "Time a handed-off shard drained before its lease was released.",
    ),
    (
        "souk_cluster_forwarded_calls_total",
        Kind::Counter,
        "Calls forwarded to another node, by kind and outcome.",
    ),
    (
        "souk_cluster_forwarded_call_seconds",
        Kind::Histogram,
        "Latency of calls forwarded to another node, by kind.",
    ),
    (
        "souk_cluster_not_owner_retries_total",
        Kind::Counter,
        "Forwarded calls sent again because the node asked did not own the shard, by kind.",
    ),
    (
        "souk_cluster_served_calls_total",
        Kind::Counter,
        "Forwarded calls this node received, by kind and outcome.",
    ),
    (
        "souk_cluster_mailbox_messages_total",
        Kind::Counter,
        "NATS messages of the cluster mailbox, by direction (calls, answers).",
    ),
    (
        "souk_cluster_mailbox_items_total",
        Kind::Counter,
        "Calls or answers those messages carried, by direction.",
    ),
];

fn describe() {
    for (name, kind, help) in CATALOGUE {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
        }
    }
}

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
            describe();
            let process = metrics_process::Collector::default();
            process.describe();
            process.collect();
            let _ = PROCESS.set(process);
            handle
        })
        .clone()
}

/// The series the alert rules (deploy/helm/souk/files/souk-alerts.yaml) select, at
/// zero, for the services this node runs: a counter born at 1 shows no `increase()`,
/// so without them an alert would miss the first event. HTTP requests start with the
/// probe route's series (the first a load balancer creates anyway).
pub fn register_alert_series(services: &ServiceSet) {
    let probe = [
        ("method", "GET".to_owned()),
        ("route", "/healthz".to_owned()),
        ("status", "200".to_owned()),
    ];
    metrics::counter!("souk_http_requests_total", &probe).increment(0);
    let _ = metrics::histogram!("souk_http_request_duration_seconds", &probe);
    if services.contains(Service::Email) {
        metrics::counter!("souk_emails_dead_lettered_total").increment(0);
    }
    let kinds = [(Service::Inventory, "sku"), (Service::Order, "order")];
    for (service, kind) in kinds {
        if services.contains(service) {
            for reason in ["failed", "crashed"] {
                metrics::counter!("souk_entity_restarts_total", "kind" => kind, "reason" => reason)
                    .increment(0);
            }
        }
    }
}

/// What is sampled when scraped: the process figures (CPU, memory, file descriptors).
pub fn collect_process() {
    if let Some(process) = PROCESS.get() {
        process.collect();
    }
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

/// One gRPC call: `service` and `method` are names of the served contract (or
/// `unknown`), `code` a gRPC status name.
pub fn record_grpc_call(service: &str, method: &str, code: &'static str, elapsed: Duration) {
    let labels = [
        ("service", service.to_owned()),
        ("method", method.to_owned()),
        ("code", code.to_owned()),
    ];
    metrics::counter!("souk_grpc_requests_total", &labels).increment(1);
    metrics::histogram!("souk_grpc_request_duration_seconds", &labels)
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
