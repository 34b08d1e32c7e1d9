//! The committed-stock feed: after every batch it commits, a SKU actor broadcasts the
//! SKU's new numbers, so watchers (the admin console) follow stock without reading the
//! database. Sending costs the same whatever the number of watchers, and a watcher that
//! falls behind loses the oldest snapshots rather than slowing the actor.

use std::sync::Arc;

use souk_db::clock::Micros;
use tokio::sync::broadcast;

/// Snapshots kept for a watcher that is behind; older ones are dropped for it.
pub const FEED_CAPACITY: usize = 4096;

/// A SKU's stock as one committed batch left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedStock {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub low_stock_threshold: i64,
    pub version: i64,
    /// Reservations the batch placed (not counting idempotent repeats).
    pub reservations: u32,
    pub committed_at: Micros,
}

impl CommittedStock {
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved
    }
}

pub type StockFeed = broadcast::Sender<Arc<CommittedStock>>;

/// A watcher of the feed.
pub type CommittedReceiver = broadcast::Receiver<Arc<CommittedStock>>;

pub fn new_feed() -> StockFeed {
    broadcast::channel(FEED_CAPACITY).0
}
