//! A queue whose task sends what was queued together: it waits for the first item,
//! lets the tasks that are about to queue more run once, then hands everything queued
//! (up to [`MAX_ITEMS`] and [`MAX_BATCH_BYTES`]) to its publish function as one batch.
//! Under load a batch holds what arrived while the previous one was being sent; alone,
//! an item leaves at once. [`Coalescers`] keeps one queue per destination and closes
//! those left idle.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::BoxFuture;

/// Items one batch carries at most.
pub(super) const MAX_ITEMS: usize = 256;
/// Encoded bytes one batch carries at most, so that a batch of calls carrying orders
/// stays well inside NATS' default 1 MiB payload limit (an order of many lines is tens
/// of kilobytes; most calls and answers are a few hundred bytes). An item larger than
/// this leaves alone.
pub(super) const MAX_BATCH_BYTES: usize = 512 * 1024;

/// Sends one batch; called by the queue's task, one batch at a time.
pub(super) type Publish<T> = Box<dyn FnMut(Vec<T>) -> BoxFuture<()> + Send>;

/// Dropping it lets its task publish what is still queued and end.
pub(super) struct Coalescer<T> {
    queue: mpsc::UnboundedSender<T>,
    task: JoinHandle<()>,
}

impl<T: prost::Message + 'static> Coalescer<T> {
    pub(super) fn start(mut publish: Publish<T>) -> Self {
        let (queue, mut receiver) = mpsc::unbounded_channel::<T>();
        let task = tokio::spawn(async move {
            // An item that did not fit the batch before it: it leads the next one.
            let mut leftover: Option<T> = None;
            loop {
                let first = match leftover.take() {
                    Some(item) => item,
                    None => match receiver.recv().await {
                        Some(item) => item,
                        None => break,
                    },
                };
                let mut bytes = first.encoded_len();
                let mut batch = vec![first];
                tokio::task::yield_now().await;
                while batch.len() < MAX_ITEMS {
                    let Ok(item) = receiver.try_recv() else {
                        break;
                    };
                    bytes += item.encoded_len();
                    if bytes > MAX_BATCH_BYTES {
                        leftover = Some(item);
                        break;
                    }
                    batch.push(item);
                }
                publish(batch).await;
            }
        });
        Self { queue, task }
    }

    /// Queues `item`; gives it back when the task has stopped.
    pub(super) fn push(&self, item: T) -> Result<(), T> {
        self.queue.send(item).map_err(|error| error.0)
    }

    /// Stops taking items and waits until everything queued has been published.
    pub(super) async fn finish(self) {
        let Self { queue, task } = self;
        drop(queue);
        let _ = task.await;
    }
}

/// One [`Coalescer`] per destination. A queue nobody used for `idle` is closed when
/// another one opens (its destination restarted under another name, or left), unless
/// a task still holds it; closing drops it, so its task publishes what is left and
/// ends.
pub(super) struct Coalescers<K, T> {
    idle: Duration,
    queues: HashMap<K, Recent<T>>,
}

struct Recent<T> {
    queue: Arc<Coalescer<T>>,
    used: Instant,
}

impl<K: Hash + Eq, T: prost::Message + 'static> Coalescers<K, T> {
    pub(super) fn new(idle: Duration) -> Self {
        Self {
            idle,
            queues: HashMap::new(),
        }
    }

    /// The queue to `destination`, started by `start` when there is none open.
    pub(super) fn get_or_start<Q>(
        &mut self,
        destination: &Q,
        start: impl FnOnce() -> Coalescer<T>,
    ) -> Arc<Coalescer<T>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let now = Instant::now();
        if let Some(recent) = self.queues.get_mut(destination) {
            recent.used = now;
            return recent.queue.clone();
        }
        let idle = self.idle;
        self.queues.retain(|_, recent| {
            now.duration_since(recent.used) < idle || Arc::strong_count(&recent.queue) > 1
        });
        let queue = Arc::new(start());
        self.queues.insert(
            destination.to_owned(),
            Recent {
                queue: queue.clone(),
                used: now,
            },
        );
        queue
    }

    /// Every open queue, for a stop that finishes them.
    pub(super) fn into_queues(self) -> impl Iterator<Item = Arc<Coalescer<T>>> {
        self.queues.into_values().map(|recent| recent.queue)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    type Batches = Arc<Mutex<Vec<Vec<u32>>>>;

    fn recording() -> (Batches, Publish<u32>) {
        let batches = Arc::new(Mutex::new(Vec::new()));
        let sink = batches.clone();
        let publish: Publish<u32> = Box::new(move |batch| {
            sink.lock().unwrap().push(batch);
            Box::pin(async {})
        });
        (batches, publish)
    }

    #[tokio::test]
    async fn items_queued_together_leave_together_in_order() {
        let (batches, publish) = recording();
        let queue = Coalescer::start(publish);
        for item in 0..10 {
            queue.push(item).unwrap();
        }
        queue.finish().await;
        assert_eq!(*batches.lock().unwrap(), vec![(0..10).collect::<Vec<_>>()]);
    }

    #[tokio::test]
    async fn a_lone_item_leaves_at_once_and_batches_are_capped() {
        let (batches, publish) = recording();
        let queue = Coalescer::start(publish);
        queue.push(7).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while batches.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the lone item was published");
        for item in 0..(MAX_ITEMS as u32 + 5) {
            queue.push(item).unwrap();
        }
        queue.finish().await;
        let sizes: Vec<usize> = batches.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![1, MAX_ITEMS, 5]);
    }

    #[tokio::test]
    async fn a_batch_stays_within_its_bytes() {
        let batches = Arc::new(Mutex::new(Vec::<Vec<String>>::new()));
        let recorded = batches.clone();
        let queue = Coalescer::start(Box::new(move |batch: Vec<String>| {
            recorded.lock().unwrap().push(batch);
            Box::pin(async {})
        }));
        // Five items of 200 KiB (and a byte or two of framing) and one larger than a
        // whole batch, all queued together.
        let item = "x".repeat(200 * 1024);
        for _ in 0..5 {
            queue.push(item.clone()).unwrap();
        }
        queue.push("y".repeat(MAX_BATCH_BYTES + 1)).unwrap();
        queue.push(item.clone()).unwrap();
        queue.finish().await;
        let batches = batches.lock().unwrap();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 2, 1, 1, 1]);
        let items: usize = sizes.iter().sum();
        assert_eq!(items, 7, "every item was published once");
        assert!(batches[3][0].starts_with('y'), "the large item left alone");
    }

    #[tokio::test]
    async fn an_idle_queue_is_closed_when_another_opens_unless_it_is_held() {
        let (batches, publish) = recording();
        let mut publish = Some(publish);
        let mut started = Vec::new();
        let mut queues: Coalescers<String, u32> = Coalescers::new(Duration::ZERO);
        let mut open = |queues: &mut Coalescers<String, u32>, name: &str| {
            queues.get_or_start(name, || {
                started.push(name.to_owned());
                match publish.take() {
                    Some(publish) => Coalescer::start(publish),
                    None => Coalescer::start(Box::new(|_| Box::pin(async {}))),
                }
            })
        };
        let first = open(&mut queues, "a");
        first.push(1).unwrap();
        let held = open(&mut queues, "a");
        drop(first);
        // "a" is held by a task, so opening "b" keeps it.
        drop(open(&mut queues, "b"));
        drop(open(&mut queues, "a"));
        drop(held);
        // Nobody holds "a" now and it has been idle for the whole (zero) limit.
        drop(open(&mut queues, "c"));
        drop(open(&mut queues, "a"));
        assert_eq!(started, ["a", "b", "c", "a"]);
        // The closed queue published what it held before its task ended.
        tokio::time::timeout(Duration::from_secs(5), async {
            while batches.lock().unwrap().is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the closed queue's item was published");
        assert_eq!(*batches.lock().unwrap(), vec![vec![1]]);

        let mut patient: Coalescers<String, u32> = Coalescers::new(Duration::from_secs(3600));
        let mut starts = 0;
        for name in ["a", "b", "a"] {
            drop(patient.get_or_start(name, || {
                starts += 1;
                Coalescer::start(Box::new(|_| Box::pin(async {})))
            }));
        }
        assert_eq!(starts, 2, "a queue used within the limit stays open");
    }
}
