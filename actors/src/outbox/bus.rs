//! The in-process bus: without NATS, the relay hands events to this node's consumers
//! through a channel. Delivery is at least once for as long as the process lives; what
//! a crash loses from the channel was published but not marked handled, so a node
//! starting on this bus publishes it again (`outbox::reopen_unhandled`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, Mutex};

use crate::outbox::PublishedEvent;

/// One delivery of an event; `attempt` counts from 1, like JetStream's `delivered`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: PublishedEvent,
    pub attempt: u32,
}

/// Events an observer may fall behind by before it loses the oldest.
const OBSERVER_CAPACITY: usize = 4096;

/// Two ways to receive: the workers share one queue (each delivery reaches one worker),
/// while every observer sees every event (the search index follows the catalog so).
#[derive(Clone)]
pub struct LocalBus {
    sender: mpsc::UnboundedSender<Delivery>,
    receiver: Arc<Mutex<mpsc::UnboundedReceiver<Delivery>>>,
    observers: broadcast::Sender<PublishedEvent>,
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBus {
    pub fn new() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Arc::new(Mutex::new(receiver)),
            observers: broadcast::channel(OBSERVER_CAPACITY).0,
        }
    }

    /// Every event published from now on; an observer that falls behind by more than
    /// a few thousand gets `Lagged` and must catch up another way.
    pub fn observe(&self) -> broadcast::Receiver<PublishedEvent> {
        self.observers.subscribe()
    }

    pub fn publish(&self, event: PublishedEvent) -> Result<(), String> {
        // No observer is not an error.
        let _ = self.observers.send(event.clone());
        self.sender
            .send(Delivery { event, attempt: 1 })
            .map_err(|_| "the in-process bus is closed".to_owned())
    }

    /// Delivers the event again after `delay`, counting the attempt.
    pub fn redeliver_after(&self, delivery: Delivery, delay: Duration) {
        let sender = self.sender.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = sender.send(Delivery {
                event: delivery.event,
                attempt: delivery.attempt + 1,
            });
        });
    }

    /// The next delivery; workers share the receiver, so each delivery reaches one.
    pub async fn next(&self) -> Option<Delivery> {
        self.receiver.lock().await.recv().await
    }
}
