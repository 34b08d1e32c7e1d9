//! The node's group-commit writer of new orders: checkouts that reach their insert at
//! about the same time are written together — one transaction, one multi-row statement
//! per table (orders, lines, history, events) — so the node commits once for many
//! orders. Each checkout is answered only after the commit that holds its order. A
//! batch that fails is written again in halves until the failing order is alone, so
//! one order's failure (a duplicate idempotency key, say) stays that order's.
//!
//! No task waits for work: the checkout that finds a writer slot free starts a task
//! that writes what is queued (that checkout's order among it), then batch after batch
//! whatever queued meanwhile, until the queue is empty. At most [`WRITERS`] batches are
//! in flight, so one fills while another commits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::orders::{self, NewOrder};
use crate::{Db, DbError};
use tokio::sync::oneshot;

/// Batches written at once.
pub const WRITERS: usize = 2;
/// SQLite allows 32 766 bound parameters per statement.
const MAX_PARAMETERS: usize = 32_766;
/// Lines in one batch at most: a line is seven parameters of one statement.
const MAX_LINES: usize = 1_800;
const _: () = assert!(MAX_LINES * 7 <= MAX_PARAMETERS);
/// Orders in one batch at most: an order is `orders::ORDER_PARAMETERS` parameters of
/// one statement (each order also has one line at least, so this bounds the history
/// and outbox statements too).
const MAX_ORDERS: usize = MAX_PARAMETERS / orders::ORDER_PARAMETERS;
const _: () = assert!(MAX_ORDERS * orders::ORDER_PARAMETERS <= MAX_PARAMETERS);

type Reply = oneshot::Sender<Result<(), DbError>>;

#[derive(Clone)]
pub struct OrderWriter {
    db: Db,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<(NewOrder, Reply)>,
    /// Batches being written.
    writers: usize,
    /// Batches and orders committed so far.
    written: Written,
}

/// What the writer has committed since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub commits: u64,
    pub orders: u64,
}

impl State {
    fn take_slot(&mut self) -> bool {
        if self.writers < WRITERS && !self.queue.is_empty() {
            self.writers += 1;
            return true;
        }
        false
    }

    /// The oldest queued orders, at least one, up to `MAX_LINES` lines and `MAX_ORDERS`
    /// orders.
    fn take_batch(&mut self) -> Vec<(NewOrder, Reply)> {
        let mut batch = Vec::new();
        let mut lines = 0;
        while let Some((next, _)) = self.queue.front() {
            if !batch.is_empty()
                && (lines + next.lines.len() > MAX_LINES || batch.len() >= MAX_ORDERS)
            {
                break;
            }
            lines += next.lines.len();
            batch.extend(self.queue.pop_front());
        }
        batch
    }
}

impl OrderWriter {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            state: Arc::default(),
        }
    }

    pub fn written(&self) -> Written {
        self.lock().written
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Inserts the order (its lines, first history entry and event); returns once the
    /// commit that holds it is done, or with the error that kept it out.
    pub async fn insert(&self, order: NewOrder) -> Result<(), DbError> {
        let (reply, answer) = oneshot::channel();
        let lead = {
            let mut state = self.lock();
            state.queue.push_back((order, reply));
            state.take_slot()
        };
        if lead {
            // The batch is written by a task of its own: a checkout whose client goes
            // away must not take the other checkouts' batch (and the slot) with it.
            let writer = self.clone();
            tokio::spawn(async move { while writer.write_one_batch().await {} });
        }
        answer
            .await
            .unwrap_or_else(|_| Err(DbError::Invalid("the order writer stopped".to_owned())))
    }

    /// Writes one batch in the slot taken for it, then gives the slot back; returns
    /// whether the caller took a slot again to write the next batch.
    async fn write_one_batch(&self) -> bool {
        let batch = self.lock().take_batch();
        self.write(batch).await;
        let mut state = self.lock();
        state.writers -= 1;
        state.take_slot()
    }

    async fn write(&self, batch: Vec<(NewOrder, Reply)>) {
        if batch.is_empty() {
            return;
        }
        metrics::histogram!("souk_order_batch_size").record(batch.len() as f64);
        let (orders, replies): (Vec<NewOrder>, Vec<Reply>) = batch.into_iter().unzip();
        let mut replies: Vec<Option<Reply>> = replies.into_iter().map(Some).collect();
        // Which order failed a batch is not known: its halves are written apart until
        // the failing order is alone, so only it fails, in a few more commits.
        let mut parts = Vec::new();
        parts.push(0..orders.len());
        while let Some(part) = parts.pop() {
            let written = self.insert_now(&orders[part.clone()]).await;
            match written {
                Ok(()) => {
                    self.count(part.len());
                    for reply in replies[part].iter_mut().filter_map(Option::take) {
                        let _ = reply.send(Ok(()));
                    }
                }
                Err(error) if part.len() == 1 => {
                    if let Some(reply) = replies[part.start].take() {
                        let _ = reply.send(Err(error));
                    }
                }
                Err(_) => {
                    let middle = part.start + part.len() / 2;
                    parts.push(middle..part.end);
                    parts.push(part.start..middle);
                }
            }
        }
    }

    fn count(&self, orders: usize) {
        let mut state = self.lock();
        state.written.commits += 1;
        state.written.orders += orders as u64;
    }

    async fn insert_now(&self, orders: &[NewOrder]) -> Result<(), DbError> {
        let mut connection = self.db.pool().acquire().await?;
        orders::insert(&mut connection, orders).await
    }
}
