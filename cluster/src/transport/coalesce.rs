//! A queue whose task sends what was queued together: it waits for the first item,
//! lets the tasks that are about to queue more run once, then hands everything queued
//! (up to [`MAX_ITEMS`]) to its publish function as one batch. Under load a batch
//! holds what arrived while the previous one was being sent; alone, an item leaves at
//! once.

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::BoxFuture;

/// Items one batch carries at most (calls and answers are a few hundred bytes each,
/// far below NATS' 1 MiB payload limit).
pub(super) const MAX_ITEMS: usize = 256;

/// Sends one batch; called by the queue's task, one batch at a time.
pub(super) type Publish<T> = Box<dyn FnMut(Vec<T>) -> BoxFuture<()> + Send>;

/// Dropping it lets its task publish what is still queued and end.
pub(super) struct Coalescer<T> {
    queue: mpsc::UnboundedSender<T>,
    task: JoinHandle<()>,
}

impl<T: Send + 'static> Coalescer<T> {
    pub(super) fn start(mut publish: Publish<T>) -> Self {
        let (queue, mut receiver) = mpsc::unbounded_channel::<T>();
        let task = tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                tokio::task::yield_now().await;
                while batch.len() < MAX_ITEMS {
                    match receiver.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
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
}
