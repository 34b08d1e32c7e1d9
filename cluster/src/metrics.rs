//! The cluster's metrics (the `metrics` facade; the node's Prometheus exporter serves
//! them), each named and recorded in one place.

use std::time::Duration;

/// Live members this node sees.
pub fn members(count: usize) {
    metrics::gauge!("souk_cluster_members").set(count as f64);
}

/// Shards this node holds the lease of (serving or draining).
pub fn owned_shards(count: usize) {
    metrics::gauge!("souk_cluster_owned_shards").set(count as f64);
}

pub fn membership_renew_failure() {
    metrics::counter!("souk_cluster_membership_renew_failures_total").increment(1);
}

/// A lease renewal that did not go through (`lost`: someone else holds the lease now;
/// `error`: NATS did not answer).
pub fn lease_renew_failure(reason: &'static str) {
    metrics::counter!("souk_cluster_lease_renew_failures_total", "reason" => reason).increment(1);
}

/// A shard this node stopped serving because its lease could expire before a renewal.
pub fn lease_expired() {
    metrics::counter!("souk_cluster_lease_expired_total").increment(1);
}

pub fn lease_acquired() {
    metrics::counter!("souk_cluster_lease_acquired_total").increment(1);
}

/// A shard handed to another node: how long it drained before its lease was released.
pub fn handoff(duration: Duration, timed_out: bool) {
    let outcome = if timed_out { "timeout" } else { "done" };
    metrics::counter!("souk_cluster_handoffs_total", "outcome" => outcome).increment(1);
    metrics::histogram!("souk_cluster_handoff_seconds").record(duration.as_secs_f64());
}

/// A call forwarded to another node, by outcome, with its latency (retries included).
pub fn forwarded_call(kind: &str, outcome: &'static str, duration: Duration) {
    metrics::counter!("souk_cluster_forwarded_calls_total", "kind" => kind.to_owned(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("souk_cluster_forwarded_call_seconds", "kind" => kind.to_owned())
        .record(duration.as_secs_f64());
}

/// A forwarded call sent again because the node asked was not the owner (or was gone).
pub fn not_owner_retry(kind: &str) {
    metrics::counter!("souk_cluster_not_owner_retries_total", "kind" => kind.to_owned())
        .increment(1);
}

/// An envelope this node received and served (or refused), by outcome.
pub fn served_call(kind: &str, outcome: &'static str) {
    metrics::counter!("souk_cluster_served_calls_total", "kind" => kind.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// One NATS message of the mailbox (`direction`: `calls` sent, `answers` sent back) and
/// the calls or answers it carried; items / messages is how well they were coalesced.
pub fn mailbox_message(direction: &'static str, items: usize) {
    metrics::counter!("souk_cluster_mailbox_messages_total", "direction" => direction).increment(1);
    metrics::counter!("souk_cluster_mailbox_items_total", "direction" => direction)
        .increment(items as u64);
}
