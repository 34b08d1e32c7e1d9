//! The node writer: one group commit for the node's writes of the moment — the
//! batches of many SKU actors and the new orders of concurrent checkouts — in one
//! transaction, with one multi-row statement per table where it can, so the node
//! commits once for many entities. Each SKU batch is fenced on its own (see
//! [`inventory::write_parts`]): a fenced batch fails alone, its rows unwritten, while
//! the others commit. A SKU batch may carry orders (a checkout's order rides with the
//! reservation of its last line): they are written in the same transaction, and only
//! if their batch is. Each caller is answered only after the commit that holds its
//! write. An order whose customer already has as many unpaid orders as its cap allows
//! is refused in the commit (one read for all of the commit's orders), its SKU batch
//! written. A batch that fails whole is written again in halves until the failing part
//! is alone, so one order's failure (a duplicate idempotency key, say) stays that
//! order's.
//!
//! No task waits for work: the caller that finds a writer slot free starts a task that
//! writes what is queued (its own part among it), then batch after batch whatever
//! queued meanwhile, until the queue is empty. At most [`WRITERS`] batches are in
//! flight, so one fills while another commits. A SKU actor has at most one batch in
//! flight, so one SKU is never in two of them.

use std::collections::VecDeque;
use std::sync::MutexGuard;

use sqlx::AnyConnection;
use tokio::sync::oneshot;

use crate::inventory::{self, Batch, BatchError};
use crate::orders::{self, NewOrder};
use crate::{Db, DbError};

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
/// SKU batches in one commit at most (their rows are written in chunks).
const MAX_STOCK_BATCHES: usize = 1_024;

/// Per order a SKU batch carried: written, or why it was refused (a unique key, its
/// customer's unpaid cap).
pub type OrderOutcomes = Vec<Result<(), DbError>>;

/// One entity's write, as queued: a SKU batch with the orders it carries, or an order.
enum Part {
    Stock {
        batch: Batch,
        orders: Vec<NewOrder>,
        reply: oneshot::Sender<Result<OrderOutcomes, BatchError>>,
    },
    Order {
        order: Box<NewOrder>,
        reply: oneshot::Sender<Result<(), DbError>>,
    },
}

impl Part {
    fn orders(&self) -> &[NewOrder] {
        match self {
            Part::Stock { orders, .. } => orders,
            Part::Order { order, .. } => std::slice::from_ref(order),
        }
    }
}

/// What one part came to in a commit.
enum Landed {
    /// Written, with the error of each of its orders that was refused (a unique key,
    /// its customer's unpaid cap).
    Written(Vec<Option<DbError>>),
    /// A SKU batch fenced (nothing of it written, nor its orders).
    Fenced,
}

/// The node's writer; clones share it (it lives in the node's [`Db`]).
#[derive(Clone)]
pub struct NodeWriter {
    db: Db,
}

#[derive(Default)]
pub(crate) struct State {
    queue: VecDeque<Part>,
    /// Batches being written.
    writers: usize,
    written: Written,
}

impl std::fmt::Debug for State {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("State")
            .field("queued", &self.queue.len())
            .field("writers", &self.writers)
            .finish()
    }
}

/// What the writer has committed since the node started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub commits: u64,
    pub orders: u64,
    pub stock_batches: u64,
}

impl State {
    fn take_slot(&mut self) -> bool {
        if self.writers < WRITERS && !self.queue.is_empty() {
            self.writers += 1;
            return true;
        }
        false
    }

    /// The oldest queued parts, at least one, up to `MAX_LINES` lines, `MAX_ORDERS`
    /// orders and `MAX_STOCK_BATCHES` SKU batches.
    fn take_batch(&mut self) -> Vec<Part> {
        let mut batch = Vec::new();
        let (mut lines, mut orders, mut stock) = (0, 0, 0);
        while let Some(next) = self.queue.front() {
            let next_lines: usize = next.orders().iter().map(|order| order.lines.len()).sum();
            let next_stock = usize::from(matches!(next, Part::Stock { .. }));
            let full = lines + next_lines > MAX_LINES
                || orders + next.orders().len() > MAX_ORDERS
                || stock + next_stock > MAX_STOCK_BATCHES;
            if full && !batch.is_empty() {
                break;
            }
            lines += next_lines;
            orders += next.orders().len();
            stock += next_stock;
            batch.extend(self.queue.pop_front());
        }
        batch
    }
}

impl NodeWriter {
    pub(crate) fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn written(&self) -> Written {
        self.lock().written
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.db
            .writer_state()
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes a SKU's batch; returns once the commit that holds it is done, `Fenced` if
    /// another owner wrote the SKU since its actor loaded it.
    pub async fn write_stock(&self, batch: Batch) -> Result<(), BatchError> {
        self.write_stock_with_orders(batch, Vec::new())
            .await
            .map(drop)
    }

    /// Writes a SKU's batch and, in the same transaction and only if the batch is
    /// written, the orders it carries; answers per order whether it was written (a
    /// duplicate idempotency key or its customer's unpaid cap may refuse one).
    pub async fn write_stock_with_orders(
        &self,
        batch: Batch,
        orders: Vec<NewOrder>,
    ) -> Result<OrderOutcomes, BatchError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Part::Stock {
            batch,
            orders,
            reply,
        });
        answer
            .await
            .unwrap_or_else(|_| Err(BatchError::Db(stopped())))
    }

    /// Inserts the order (its lines, first history entry and event); returns once the
    /// commit that holds it is done, or with the error that kept it out.
    pub async fn insert_order(&self, order: NewOrder) -> Result<(), DbError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Part::Order {
            order: Box::new(order),
            reply,
        });
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }

    fn enqueue(&self, part: Part) {
        let lead = {
            let mut state = self.lock();
            state.queue.push_back(part);
            state.take_slot()
        };
        if lead {
            // The batch is written by a task of its own: a caller whose client goes
            // away must not take the other callers' batch (and the slot) with it. It
            // runs on the node's main runtime: a caller's (an HTTP worker's, an actor
            // arbiter's) may stop first during a graceful stop.
            self.spawn_writer();
        }
    }

    /// Gives a slot back; answers whether one was taken again for what queued meanwhile.
    fn return_slot(&self) -> bool {
        let mut state = self.lock();
        state.writers -= 1;
        state.take_slot()
    }

    /// Starts a task that writes batch after batch in the slot taken for it.
    fn spawn_writer(&self) {
        let writer = self.clone();
        self.db
            .runtime()
            .spawn(async move { while writer.write_one_batch().await {} });
    }

    /// Writes one batch in the slot taken for it, then gives the slot back; returns
    /// whether the caller took a slot again to write the next batch.
    async fn write_one_batch(&self) -> bool {
        let slot = Slot(Some(self.clone()));
        let batch = self.lock().take_batch();
        self.write(batch).await;
        slot.give_back()
    }

    async fn write(&self, batch: Vec<Part>) {
        if batch.is_empty() {
            return;
        }
        // Which part failed a batch is not known: its halves are written apart until
        // the failing part is alone, so only it fails, in a few more commits.
        let mut pending = vec![batch];
        while let Some(mut parts) = pending.pop() {
            match self.commit(&parts).await {
                Ok(landed) => {
                    self.count(&parts, &landed);
                    for (part, landed) in parts.into_iter().zip(landed) {
                        answer(part, landed);
                    }
                }
                // Alone, the part gets the error itself, not a copy: its class (a pool
                // timeout or a lost connection is transient, a contention retryable)
                // decides what the caller answers.
                Err(error) if parts.len() == 1 => match parts.pop() {
                    Some(Part::Stock { reply, .. }) => {
                        let _ = reply.send(Err(BatchError::Db(error)));
                    }
                    Some(Part::Order { reply, .. }) => {
                        let _ = reply.send(Err(error));
                    }
                    None => {}
                },
                Err(_) => {
                    let second = parts.split_off(parts.len() / 2);
                    pending.push(second);
                    pending.push(parts);
                }
            }
        }
    }

    /// Counts a commit and what it wrote (not what it left out).
    fn count(&self, parts: &[Part], landed: &[Landed]) {
        let (mut orders, mut stock) = (0, 0);
        for (part, landed) in parts.iter().zip(landed) {
            let Landed::Written(refused) = landed else {
                continue;
            };
            orders += refused.iter().filter(|refused| refused.is_none()).count() as u64;
            stock += u64::from(matches!(part, Part::Stock { .. }));
        }
        metrics::histogram!("souk_order_batch_size").record(orders as f64);
        metrics::histogram!("souk_stock_batches_per_commit").record(stock as f64);
        let mut state = self.lock();
        state.written.commits += 1;
        state.written.orders += orders;
        state.written.stock_batches += stock;
    }

    /// One transaction: the SKU batches, then the orders (those SKU batches carry, if
    /// they were written, and those on their own); answers what each part came to.
    async fn commit(&self, parts: &[Part]) -> Result<Vec<Landed>, DbError> {
        let mut connection = self.db.acquire_for_writes().await?;
        let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
        let stock: Vec<(usize, &Batch)> = parts
            .iter()
            .enumerate()
            .filter_map(|(index, part)| match part {
                Part::Stock { batch, .. } => Some((index, batch)),
                Part::Order { .. } => None,
            })
            .collect();
        let mut fenced = vec![false; parts.len()];
        if !stock.is_empty() {
            let batches: Vec<&Batch> = stock.iter().map(|(_, batch)| *batch).collect();
            let written = inventory::write_parts(&mut transaction, &batches).await?;
            for ((index, _), written) in stock.iter().zip(written) {
                fenced[*index] = !written;
            }
        }
        // (part, the order's place in the part) of every order to insert.
        let mut placed: Vec<((usize, usize), &NewOrder)> = Vec::new();
        for (index, part) in parts
            .iter()
            .enumerate()
            .filter(|(index, _)| !fenced[*index])
        {
            placed.extend(
                part.orders()
                    .iter()
                    .enumerate()
                    .map(|(position, order)| ((index, position), order)),
            );
        }
        let mut landed: Vec<Landed> = parts
            .iter()
            .zip(&fenced)
            .map(|(part, fenced)| match fenced {
                true => Landed::Fenced,
                false => Landed::Written(part.orders().iter().map(|_| None).collect()),
            })
            .collect();
        // An order past its customer's unpaid cap is refused here, its SKU batch kept.
        let placing: Vec<&NewOrder> = placed.iter().map(|(_, order)| *order).collect();
        let over_cap = orders::over_unpaid_cap(&mut transaction, &placing).await?;
        let mut refused: Vec<((usize, usize), DbError)> = Vec::new();
        let mut fitting = Vec::with_capacity(placed.len());
        for (placing, over_cap) in placed.into_iter().zip(over_cap) {
            match over_cap {
                Some(limit) => refused.push((placing.0, DbError::UnpaidOrderLimit { limit })),
                None => fitting.push(placing),
            }
        }
        if stock.is_empty() {
            // Only orders: none of this commit is kept if one is refused, so no
            // savepoint (two statements fewer). A refusal fails the commit, and its
            // parts are written again in halves, as for any other failure.
            let orders: Vec<&NewOrder> = fitting.iter().map(|(_, order)| *order).collect();
            orders::insert_without_savepoint(&mut transaction, &orders).await?;
        } else {
            refused.extend(insert_orders(&mut transaction, &fitting).await?);
        }
        for ((index, position), error) in refused {
            if let Landed::Written(refused) = &mut landed[index] {
                refused[position] = Some(error);
            }
        }
        transaction.commit().await?;
        Ok(landed)
    }
}

/// Inserts the orders in the caller's transaction, all in one savepoint; should a
/// unique key refuse that, each in one of its own, to leave out only the refused.
/// Answers the refused with their errors; any other error fails the transaction.
async fn insert_orders<Key: Copy>(
    transaction: &mut AnyConnection,
    placed: &[(Key, &NewOrder)],
) -> Result<Vec<(Key, DbError)>, DbError> {
    let together: Vec<&NewOrder> = placed.iter().map(|(_, order)| *order).collect();
    match orders::insert(&mut *transaction, &together).await {
        Ok(()) => return Ok(Vec::new()),
        Err(DbError::UniqueViolation { .. }) if placed.len() > 1 => {}
        Err(DbError::UniqueViolation { constraint }) => {
            return Ok(vec![(placed[0].0, DbError::UniqueViolation { constraint })])
        }
        Err(error) => return Err(error),
    }
    let mut refused = Vec::new();
    for (key, order) in placed {
        match orders::insert(&mut *transaction, &[*order]).await {
            Ok(()) => {}
            Err(error @ DbError::UniqueViolation { .. }) => refused.push((*key, error)),
            Err(error) => return Err(error),
        }
    }
    Ok(refused)
}

/// A writer slot taken: given back when its batch is written, or when the task writing
/// it ends otherwise (a panic, the runtime stopping), so a slot is never lost and what
/// is queued still finds a writer.
struct Slot(Option<NodeWriter>);

impl Slot {
    /// Gives the slot back; answers whether the caller took one again to write what
    /// queued meanwhile.
    fn give_back(mut self) -> bool {
        self.0.take().is_some_and(|writer| writer.return_slot())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(writer) = self.0.take() else {
            return;
        };
        tracing::error!("a node writer's batch ended unwritten; its callers are told so");
        if writer.return_slot() {
            writer.spawn_writer();
        }
    }
}

fn answer(part: Part, landed: Landed) {
    match (part, landed) {
        (Part::Stock { reply, .. }, Landed::Fenced) => {
            let _ = reply.send(Err(BatchError::Fenced));
        }
        (Part::Stock { reply, .. }, Landed::Written(refused)) => {
            let placed = refused
                .into_iter()
                .map(|refused| refused.map_or(Ok(()), Err));
            let _ = reply.send(Ok(placed.collect()));
        }
        (Part::Order { reply, .. }, landed) => {
            let result = match landed {
                Landed::Written(mut refused) => refused.pop().flatten().map_or(Ok(()), Err),
                Landed::Fenced => Err(DbError::Invalid("an order alone is never fenced".into())),
            };
            let _ = reply.send(result);
        }
    }
}

fn stopped() -> DbError {
    DbError::Invalid("the node writer stopped".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{HistoryRecord, LineRecord};
    use crate::outbox::OutboxEvent;
    use crate::testing::{fresh_sqlite, pending_order};

    fn order(id: &str) -> NewOrder {
        NewOrder {
            order: pending_order(id, "customer", 700),
            lines: vec![LineRecord {
                order_id: id.to_owned(),
                line_no: 1,
                sku: "W-1".to_owned(),
                product_id: crate::ids::new_id(),
                name: "Written".to_owned(),
                unit_amount: 700,
                quantity: 1,
            }],
            history: HistoryRecord {
                id: crate::ids::new_id(),
                order_id: id.to_owned(),
                from_status: None,
                to_status: "pending_payment".to_owned(),
                actor: "user:customer".to_owned(),
                reason: "placed".to_owned(),
                created_at: crate::clock::now_micros(),
            },
            event: OutboxEvent::new("order.placed", id, &serde_json::json!({"order_id": id}))
                .unwrap(),
            max_unpaid: None,
        }
    }

    /// Every slot is held by a writing task that ended without giving it back (as one
    /// that panicked or was cancelled does): its guard gives the slot back and starts a
    /// writer for what queued meanwhile, which is written.
    #[tokio::test]
    async fn a_slot_whose_task_ended_unwritten_is_given_back_and_the_queue_written() {
        let test = fresh_sqlite().await;
        let writer = test.db.writer();
        let ended: Vec<Slot> = (0..WRITERS)
            .map(|_| {
                let mut state = writer.lock();
                state.writers += 1;
                Slot(Some(writer.clone()))
            })
            .collect();
        let (reply, answer) = oneshot::channel();
        writer.enqueue(Part::Order {
            order: Box::new(order("queued")),
            reply,
        });
        assert_eq!(writer.lock().queue.len(), 1, "every slot is taken");

        drop(ended);

        let written = tokio::time::timeout(std::time::Duration::from_secs(10), answer)
            .await
            .expect("the queued order is written");
        assert!(matches!(written, Ok(Ok(()))), "{written:?}");
        assert_eq!(writer.written().orders, 1);
        // The writers give their slots back just after answering.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while writer.lock().writers > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let state = writer.lock();
        assert_eq!((state.writers, state.queue.len()), (0, 0));
    }
}
