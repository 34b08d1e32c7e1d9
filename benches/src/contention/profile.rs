//! Reads Souk's own metrics while the harness runs: the SKU actors' batch sizes and how
//! long each batch's transaction took, so a `souk-actor` figure can be explained
//! (throughput on a hot SKU = batch size × commit rate), and on a cluster how many
//! forwarded calls and answers each NATS message of the mailbox carried.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde::Serialize;

pub const BATCH_SIZE: &str = "souk_inventory_batch_size";
pub const BATCH_SECONDS: &str = "souk_inventory_batch_seconds";
const MAILBOX_MESSAGES: &str = "souk_cluster_mailbox_messages_total";
const MAILBOX_ITEMS: &str = "souk_cluster_mailbox_items_total";

#[derive(Default)]
struct Samples {
    by_name: Mutex<HashMap<String, Vec<f64>>>,
    /// The mailbox counters, by `<metric>/<direction>`.
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

struct Count(Arc<AtomicU64>);

impl metrics::CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

struct Series {
    name: String,
    samples: Arc<Samples>,
}

impl metrics::HistogramFn for Series {
    fn record(&self, value: f64) {
        if let Ok(mut by_name) = self.samples.by_name.lock() {
            by_name.entry(self.name.clone()).or_default().push(value);
        }
    }
}

struct Capture(Arc<Samples>);

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        if key.name() != MAILBOX_MESSAGES && key.name() != MAILBOX_ITEMS {
            return Counter::noop();
        }
        let direction = key
            .labels()
            .find(|label| label.key() == "direction")
            .map_or("", |label| label.value());
        let Ok(mut counters) = self.0.counters.lock() else {
            return Counter::noop();
        };
        let count = counters
            .entry(format!("{}/{direction}", key.name()))
            .or_default()
            .clone();
        Counter::from_arc(Arc::new(Count(count)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if key.name() == BATCH_SIZE || key.name() == BATCH_SECONDS {
            Histogram::from_arc(Arc::new(Series {
                name: key.name().to_owned(),
                samples: self.0.clone(),
            }))
        } else {
            Histogram::noop()
        }
    }
}

static SAMPLES: OnceLock<Option<Arc<Samples>>> = OnceLock::new();

/// Installs the capturing recorder once per process; `None` if another recorder was
/// installed first (then no profile is reported).
fn samples() -> Option<&'static Arc<Samples>> {
    SAMPLES
        .get_or_init(|| {
            let samples = Arc::new(Samples::default());
            metrics::set_global_recorder(Capture(samples.clone()))
                .ok()
                .map(|_| samples)
        })
        .as_ref()
}

pub fn install() {
    let _ = samples();
}

/// Batches of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct BatchProfile {
    pub batches: usize,
    pub mean_batch_size: f64,
    pub p50_batch_size: f64,
    pub p99_batch_size: f64,
    pub max_batch_size: f64,
    /// Histogram of batch sizes: (upper bound, count), bounds 1, 2, 4, … .
    pub batch_size_histogram: Vec<(u64, usize)>,
    pub p50_commit_ms: f64,
    pub p99_commit_ms: f64,
    pub batches_per_sec: f64,
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * fraction).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// Drains what was recorded since the last call.
pub fn take(wall_secs: f64) -> Option<BatchProfile> {
    let samples = samples()?;
    let mut by_name = samples.by_name.lock().ok()?;
    let mut sizes = by_name.remove(BATCH_SIZE).unwrap_or_default();
    let mut seconds = by_name.remove(BATCH_SECONDS).unwrap_or_default();
    if sizes.is_empty() {
        return None;
    }
    sizes.sort_by(f64::total_cmp);
    seconds.sort_by(f64::total_cmp);
    let mut histogram: Vec<(u64, usize)> = Vec::new();
    for &size in &sizes {
        let bound = (size.max(1.0) as u64).next_power_of_two();
        match histogram.iter_mut().find(|(upper, _)| *upper == bound) {
            Some((_, count)) => *count += 1,
            None => histogram.push((bound, 1)),
        }
    }
    histogram.sort_unstable();
    Some(BatchProfile {
        batches: sizes.len(),
        mean_batch_size: sizes.iter().sum::<f64>() / sizes.len() as f64,
        p50_batch_size: percentile(&sizes, 0.5),
        p99_batch_size: percentile(&sizes, 0.99),
        max_batch_size: sizes.last().copied().unwrap_or(0.0),
        batch_size_histogram: histogram,
        p50_commit_ms: percentile(&seconds, 0.5) * 1000.0,
        p99_commit_ms: percentile(&seconds, 0.99) * 1000.0,
        batches_per_sec: sizes.len() as f64 / wall_secs.max(f64::EPSILON),
    })
}

/// The cluster mailbox during one cell: forwarded calls and their answers, and the NATS
/// messages that carried them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MailboxProfile {
    pub calls: u64,
    pub call_messages: u64,
    pub answers: u64,
    pub answer_messages: u64,
}

impl MailboxProfile {
    pub fn calls_per_message(&self) -> f64 {
        self.calls as f64 / self.call_messages.max(1) as f64
    }

    pub fn answers_per_message(&self) -> f64 {
        self.answers as f64 / self.answer_messages.max(1) as f64
    }
}

/// What the mailbox counters gained since the last call; `None` when nothing was
/// forwarded.
pub fn take_mailbox() -> Option<MailboxProfile> {
    let samples = samples()?;
    let counters = samples.counters.lock().ok()?;
    let take = |name: &str, direction: &str| {
        counters
            .get(&format!("{name}/{direction}"))
            .map_or(0, |count| count.swap(0, Ordering::Relaxed))
    };
    let profile = MailboxProfile {
        calls: take(MAILBOX_ITEMS, "calls"),
        call_messages: take(MAILBOX_MESSAGES, "calls"),
        answers: take(MAILBOX_ITEMS, "answers"),
        answer_messages: take(MAILBOX_MESSAGES, "answers"),
    };
    (profile.call_messages > 0).then_some(profile)
}
