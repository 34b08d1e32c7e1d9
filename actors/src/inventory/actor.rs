//! The SKU actor: owns one SKU's [`Stock`], applies commands in arrival order, and
//! group-commits them — while one batch is being written, the next accumulates; each
//! batch goes to the node writer, which commits it with other SKUs' batches and new
//! orders, fenced on its own on the version the actor loaded and on its owner epoch;
//! every caller of the batch is answered only after that commit. It runs
//! under the entity host, which starts it on first use and restarts it after a failure.
//! On a clustered node it claims the SKU's row with its shard's epoch as it loads; a
//! row a later owner claimed makes it answer `Fenced` and stop.

use std::time::{Duration, Instant};

use actix::prelude::*;
use souk_db::clock::now_micros;
use souk_db::fence::{self, Claim, FencedRow};
use souk_db::inventory::{self, Batch, BatchError, ItemRecord};
use souk_db::Db;
use tokio::sync::oneshot;

use super::feed::{CommittedStock, StockFeed};
use super::ledger::LedgerHolds;
use super::stock::{Changes, Command, Held, Outcome, Stock};
use super::{InventoryError, Sku, SkuReply, SkuRequest};
use crate::entity::{Entity, EntityLink, EntityStop, Passivate, Request, StopReason};
use crate::outbox::Topic;

pub type Reply = Result<Outcome, InventoryError>;

/// A command for this SKU, answered after the batch holding it committed.
#[derive(Message)]
#[rtype(result = "Reply")]
pub struct Execute(pub Command);

/// The committed stock, answered at once.
#[derive(Message)]
#[rtype(result = "Result<Stock, InventoryError>")]
pub struct Snapshot;

/// Sent to the expiry listener for every reservation released by its TTL.
#[derive(Message, Debug, Clone, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct ReservationExpired {
    pub sku: String,
    pub order_id: String,
}

/// Test hook: makes the actor fail its next batch, or panic in its handler.
#[cfg(feature = "fault-injection")]
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub enum InjectFault {
    FailNextBatch,
    Panic,
}

/// What every SKU actor is created with.
#[derive(Clone)]
pub struct SkuDeps {
    pub db: Db,
    /// Told of every reservation released by its TTL (the orders' expiry).
    pub expiry_listener: Option<Recipient<ReservationExpired>>,
    /// Where committed batches are announced (the admin console's live view), if set.
    pub feed: Option<StockFeed>,
}

pub struct SkuActor {
    sku: String,
    link: EntityLink,
    db: Db,
    expiry_listener: Option<Recipient<ReservationExpired>>,
    idle_timeout: Duration,
    /// Asked to stop (shutdown): stop once the open batch has committed.
    passivate_requested: bool,
    feed: Option<StockFeed>,
    /// `None` until loaded, and while a batch is being written: the batch owns the stock
    /// then, rather than a copy of it (copying grows with the open reservations).
    stock: Option<Stock>,
    pending: Vec<(Command, oneshot::Sender<Reply>)>,
    /// Snapshots asked for while a batch is being written, answered once it committed.
    snapshot_waiters: Vec<oneshot::Sender<Result<Stock, InventoryError>>>,
    flushing: bool,
    last_activity: Instant,
    expiry_timer: Option<SpawnHandle>,
    stop: EntityStop,
    /// The owner epoch every batch writes and is fenced on (claimed at load).
    owner_epoch: i64,
    /// A later owner claimed the row: every request is answered `Fenced` until it stops.
    fenced: bool,
    #[cfg(feature = "fault-injection")]
    fail_next_batch: bool,
}

/// How long a fenced actor keeps answering `Fenced` to what queued before it stops.
const FENCED_LINGER: Duration = Duration::from_millis(50);

impl Entity for SkuActor {
    type Kind = Sku;
    type Deps = SkuDeps;

    fn for_key(sku: String, deps: SkuDeps, link: EntityLink) -> Self {
        Self {
            idle_timeout: link.idle_timeout(),
            sku,
            link,
            db: deps.db,
            expiry_listener: deps.expiry_listener,
            feed: deps.feed,
            passivate_requested: false,
            stock: None,
            pending: Vec::new(),
            snapshot_waiters: Vec::new(),
            flushing: false,
            last_activity: Instant::now(),
            expiry_timer: None,
            stop: EntityStop::default(),
            owner_epoch: 0,
            fenced: false,
            #[cfg(feature = "fault-injection")]
            fail_next_batch: false,
        }
    }
}

impl SkuActor {
    /// Broadcasts the stock a batch committed, with the reservations it placed.
    fn announce(
        &self,
        stock: &Stock,
        batch: &[(Command, oneshot::Sender<Reply>)],
        results: &[Reply],
    ) {
        let Some(feed) = self.feed.as_ref().filter(|feed| feed.receiver_count() > 0) else {
            return;
        };
        let reservations = batch
            .iter()
            .zip(results)
            .filter(|((command, _), result)| {
                matches!(command, Command::Reserve { .. })
                    && matches!(result, Ok(Outcome::Reserved { .. }))
            })
            .count();
        let _ = feed.send(std::sync::Arc::new(CommittedStock {
            sku: stock.sku.clone(),
            on_hand: stock.on_hand,
            reserved: stock.reserved,
            low_stock_threshold: stock.low_stock_threshold,
            version: stock.version.unwrap_or(0),
            reservations: u32::try_from(reservations).unwrap_or(u32::MAX),
            committed_at: now_micros(),
        }));
    }

    fn stop_with(&mut self, context: &mut Context<Self>, reason: StopReason) {
        self.stop.set(reason);
        context.stop();
    }

    fn flush(&mut self, context: &mut Context<Self>) {
        if self.flushing || self.pending.is_empty() {
            return;
        }
        // A failed batch stops the actor, which reloads from the database, so the
        // in-memory stock is never needed again if the write fails.
        let Some(stock) = self.stock.take() else {
            return;
        };
        self.flushing = true;
        let batch: Vec<(Command, oneshot::Sender<Reply>)> = std::mem::take(&mut self.pending);
        let commands: Vec<Command> = batch.iter().map(|(command, _)| command.clone()).collect();
        metrics::histogram!("souk_inventory_batch_size").record(commands.len() as f64);
        let db = self.db.clone();
        #[cfg(feature = "fault-injection")]
        let fail = std::mem::take(&mut self.fail_next_batch);
        #[cfg(not(feature = "fault-injection"))]
        let fail = false;
        let started = Instant::now();
        let version_before = stock.version;
        let owner_epoch = self.owner_epoch;
        let write = async move { write(db, stock, commands, owner_epoch, fail).await };
        context.spawn(write.into_actor(self).map(move |outcome, actor, context| {
            actor.flushing = false;
            match outcome {
                Ok((stock, results, expired)) => {
                    metrics::histogram!("souk_inventory_batch_seconds")
                        .record(started.elapsed().as_secs_f64());
                    if stock.version != version_before {
                        actor.announce(&stock, &batch, &results);
                    }
                    for waiter in actor.snapshot_waiters.drain(..) {
                        let _ = waiter.send(Ok(stock.clone()));
                    }
                    actor.stock = Some(stock);
                    for ((_, reply_to), result) in batch.into_iter().zip(results) {
                        let _ = reply_to.send(result);
                    }
                    if let Some(listener) = &actor.expiry_listener {
                        for order_id in expired {
                            listener.do_send(ReservationExpired {
                                sku: actor.sku.clone(),
                                order_id,
                            });
                        }
                    }
                    actor.schedule_expiry(context);
                    actor.flush(context);
                    if actor.passivate_requested && !actor.flushing {
                        actor.stop_with(context, StopReason::Passivated);
                    }
                }
                Err(BatchError::Fenced) => {
                    tracing::warn!(sku = %actor.sku, "fenced: another owner wrote this sku; stopping");
                    metrics::counter!("souk_inventory_fenced_total").increment(1);
                    for (_, reply_to) in batch {
                        let _ = reply_to.send(Err(InventoryError::Fenced));
                    }
                    actor.stop_with(context, StopReason::Fenced);
                }
                Err(BatchError::Db(error)) => {
                    // The outcome of the commit is unknown: reload from the database
                    // rather than trust memory.
                    tracing::error!(sku = %actor.sku, %error, "inventory batch failed; restarting from the database");
                    for (_, reply_to) in batch {
                        let _ = reply_to.send(Err(InventoryError::Unavailable(error.to_string())));
                    }
                    actor.stop_with(context, StopReason::Failed);
                }
            }
        }));
    }

    fn schedule_expiry(&mut self, context: &mut Context<Self>) {
        if let Some(handle) = self.expiry_timer.take() {
            context.cancel_future(handle);
        }
        let Some(next) = self.stock.as_ref().and_then(Stock::next_expiry) else {
            return;
        };
        let delay = Duration::from_micros(u64::try_from(next - now_micros()).unwrap_or(0));
        self.expiry_timer = Some(context.run_later(delay, |actor, context| {
            actor.expiry_timer = None;
            let (reply_to, _) = oneshot::channel();
            actor.pending.push((Command::ExpireDue, reply_to));
            actor.flush(context);
        }));
    }
}

type Written = (Stock, Vec<Reply>, Vec<String>);

/// Applies a batch to a copy of the stock and writes it in one fenced transaction.
async fn write(
    db: Db,
    mut stock: Stock,
    commands: Vec<Command>,
    owner_epoch: i64,
    fail: bool,
) -> Result<Written, BatchError> {
    if fail {
        return Err(BatchError::Db(souk_db::DbError::Invalid(
            "injected failure".into(),
        )));
    }
    let now = now_micros();
    let available_before = stock.available();
    let mut changes = Changes::default();
    let mut results = Vec::with_capacity(commands.len());
    let mut expired = Vec::new();
    let mut threshold_changed = false;
    let mut carried = Vec::new();
    // A sale recorded already is not made again, whatever reservation the order holds
    // now, and an admin's change sent with a key is applied once per key: what the
    // ledger holds of them is read once for the batch.
    let ledger = LedgerHolds::read(&db, &stock.sku, &commands).await?;
    for command in &commands {
        let recorded = ledger.of(command);
        threshold_changed |= matches!(command, Command::SetThreshold { .. });
        let result = stock.apply(command, now, recorded, &mut changes);
        if let Ok(Outcome::Expired { order_ids }) = &result {
            expired.extend(order_ids.iter().cloned());
        }
        // A reservation that holds (now or already) writes the order it carries.
        if let (
            Command::Reserve { place, .. },
            Ok(Outcome::Reserved { .. } | Outcome::AlreadyReserved),
        ) = (command, &result)
        {
            carried.extend(place.take());
        }
        results.push(result.map_err(InventoryError::from));
    }
    // Nothing to write: the carried orders go back unwritten (their tellers dropped),
    // and their checkouts write them.
    if changes.is_empty() && !threshold_changed {
        return Ok((stock, results, expired));
    }
    let expected_version = stock.version;
    let version = expected_version.unwrap_or(0) + 1;
    for movement in &mut changes.movements {
        movement.version = version;
    }
    let mut events = Vec::new();
    // Crossing the low-stock threshold downwards is announced once per crossing.
    if stock.low_stock_threshold > 0
        && available_before >= stock.low_stock_threshold
        && stock.available() < stock.low_stock_threshold
    {
        let payload = serde_json::json!({
            "sku": stock.sku,
            "available": stock.available(),
            "threshold": stock.low_stock_threshold,
        });
        if let Ok(event) = Topic::StockLow.event(&stock.sku, &payload) {
            events.push(event);
        }
    }
    // Crossing zero either way changes whether the product is in stock for search.
    if (available_before > 0) != (stock.available() > 0) {
        let payload = serde_json::json!({
            "sku": stock.sku,
            "available": stock.available(),
        });
        if let Ok(event) = Topic::StockAvailability.event(&stock.sku, &payload) {
            events.push(event);
        }
    }
    let batch = Batch {
        item: Some(ItemRecord {
            sku: stock.sku.clone(),
            on_hand: stock.on_hand,
            reserved: stock.reserved,
            low_stock_threshold: stock.low_stock_threshold,
            version,
            updated_at: now,
            owner_epoch,
        }),
        expected_version,
        new_reservations: changes.new_reservations,
        removed_reservations: changes.removed_reservations,
        movements: changes.movements,
        events,
    };
    let (orders, tellers): (Vec<_>, Vec<_>) = carried.into_iter().unzip();
    let placed = db.writer().write_stock_with_orders(batch, orders).await?;
    // Told before the reservations are answered, so a checkout finds its order's
    // outcome as soon as its reservation's.
    for (teller, written) in tellers.into_iter().zip(placed) {
        teller.tell(written);
    }
    stock.version = Some(version);
    Ok((stock, results, expired))
}

/// Why an actor could not load its SKU.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("a later owner (epoch {0}) claimed the sku")]
    Fenced(i64),
    #[error(transparent)]
    Db(#[from] souk_db::DbError),
}

/// Claims the row with `epoch` (on a clustered node), then reads the stock and its
/// reservations; answers the stock and the owner epoch its batches must carry.
async fn load(db: Db, sku: String, epoch: Option<u64>) -> Result<(Stock, i64), LoadError> {
    let mut connection = db.pool().acquire().await.map_err(souk_db::DbError::from)?;
    let epoch = epoch.map(|epoch| i64::try_from(epoch).unwrap_or(i64::MAX));
    if let Some(epoch) = epoch {
        if let Claim::Stale { owner_epoch } =
            fence::claim(&mut connection, FencedRow::Item, &sku, epoch).await?
        {
            return Err(LoadError::Fenced(owner_epoch));
        }
    }
    let mut stock = Stock::empty(&sku);
    let mut owner_epoch = epoch.unwrap_or(0);
    if let Some(item) = inventory::load_item(&mut connection, &sku).await? {
        stock.on_hand = item.on_hand;
        stock.reserved = item.reserved;
        stock.low_stock_threshold = item.low_stock_threshold;
        stock.version = Some(item.version);
        owner_epoch = fence::writing_epoch(epoch, item.owner_epoch).map_err(LoadError::Fenced)?;
    }
    for reservation in inventory::load_reservations(&mut connection, &sku).await? {
        stock.reservations.insert(
            reservation.order_id,
            Held {
                quantity: reservation.quantity,
                expires_at: reservation.expires_at,
                created_at: reservation.created_at,
                customer_id: reservation.customer_id,
            },
        );
    }
    Ok((stock, owner_epoch))
}

impl Actor for SkuActor {
    type Context = Context<Self>;

    fn started(&mut self, context: &mut Context<Self>) {
        // Nothing is handled until the stock is loaded.
        let loading = load(self.db.clone(), self.sku.clone(), self.link.epoch());
        context.wait(
            loading
                .into_actor(self)
                .map(|loaded, actor, context| match loaded {
                    Ok((stock, owner_epoch)) => {
                        actor.stock = Some(stock);
                        actor.owner_epoch = owner_epoch;
                        actor.schedule_expiry(context);
                    }
                    Err(LoadError::Fenced(owner_epoch)) => {
                        tracing::warn!(sku = %actor.sku, owner_epoch, epoch = actor.link.epoch(),
                            "a later owner claimed this sku; not serving it");
                        metrics::counter!("souk_inventory_fenced_total").increment(1);
                        actor.fenced = true;
                        context.run_later(FENCED_LINGER, |actor, context| {
                            actor.stop_with(context, StopReason::Fenced);
                        });
                    }
                    Err(error) => {
                        tracing::error!(sku = %actor.sku, %error, "cannot load inventory");
                        actor.stop_with(context, StopReason::Failed);
                    }
                }),
        );
        let check_every = (self.idle_timeout / 2).max(Duration::from_millis(10));
        context.run_interval(check_every, |actor, context| {
            let holds_reservations = actor
                .stock
                .as_ref()
                .is_some_and(|stock| !stock.reservations.is_empty());
            // An actor holding reservations stays: its timer must release them.
            if actor.last_activity.elapsed() >= actor.idle_timeout
                && actor.pending.is_empty()
                && !actor.flushing
                && !holds_reservations
            {
                actor.stop_with(context, StopReason::Passivated);
            }
        });
    }

    fn stopped(&mut self, _context: &mut Context<Self>) {
        self.stop.report_stopped(&self.link);
    }
}

impl Drop for SkuActor {
    /// Should the actor be dropped without `stopped` having run, the host still
    /// learns that it is gone.
    fn drop(&mut self) {
        self.stop.report_dropped(&self.link);
        for (_, reply_to) in self.pending.drain(..) {
            let _ = reply_to.send(Err(if self.fenced {
                InventoryError::Fenced
            } else {
                InventoryError::Unavailable("the sku actor stopped".into())
            }));
        }
    }
}

impl SkuActor {
    fn execute(&mut self, command: Command, context: &mut Context<Self>) -> ResponseFuture<Reply> {
        self.last_activity = Instant::now();
        if self.fenced {
            return Box::pin(async { Err(InventoryError::Fenced) });
        }
        let (reply_to, reply) = oneshot::channel();
        self.pending.push((command, reply_to));
        self.flush(context);
        Box::pin(async move {
            reply.await.unwrap_or_else(|_| {
                Err(InventoryError::Unavailable("the sku actor stopped".into()))
            })
        })
    }

    fn snapshot(&mut self) -> ResponseFuture<Result<Stock, InventoryError>> {
        self.last_activity = Instant::now();
        if self.fenced {
            return Box::pin(async { Err(InventoryError::Fenced) });
        }
        if let Some(stock) = &self.stock {
            let stock = stock.clone();
            return Box::pin(async move { Ok(stock) });
        }
        if !self.flushing {
            return Box::pin(async {
                Err(InventoryError::Unavailable("the sku is not loaded".into()))
            });
        }
        let (reply_to, reply) = oneshot::channel();
        self.snapshot_waiters.push(reply_to);
        Box::pin(async move {
            reply.await.unwrap_or_else(|_| {
                Err(InventoryError::Unavailable("the sku actor stopped".into()))
            })
        })
    }
}

impl Handler<Execute> for SkuActor {
    type Result = ResponseFuture<Reply>;

    fn handle(&mut self, message: Execute, context: &mut Context<Self>) -> Self::Result {
        self.execute(message.0, context)
    }
}

impl Handler<Snapshot> for SkuActor {
    type Result = ResponseFuture<Result<Stock, InventoryError>>;

    fn handle(&mut self, _: Snapshot, _: &mut Context<Self>) -> Self::Result {
        self.snapshot()
    }
}

impl Handler<Request<Sku>> for SkuActor {
    type Result = ResponseFuture<Result<SkuReply, InventoryError>>;

    fn handle(&mut self, request: Request<Sku>, context: &mut Context<Self>) -> Self::Result {
        match request.0 {
            SkuRequest::Execute(command) => {
                let reply = self.execute(command, context);
                Box::pin(async move { reply.await.map(SkuReply::Done) })
            }
            SkuRequest::Snapshot => {
                let reply = self.snapshot();
                Box::pin(async move { reply.await.map(SkuReply::Stock) })
            }
        }
    }
}

impl Handler<Passivate> for SkuActor {
    type Result = ();

    /// Stops now, or once the open batch and what waits for the next have committed.
    fn handle(&mut self, _: Passivate, context: &mut Context<Self>) {
        if self.flushing || !self.pending.is_empty() {
            self.passivate_requested = true;
            self.flush(context);
            return;
        }
        self.stop_with(context, StopReason::Passivated);
    }
}

#[cfg(feature = "fault-injection")]
impl Handler<InjectFault> for SkuActor {
    type Result = ();

    fn handle(&mut self, fault: InjectFault, _: &mut Context<Self>) {
        match fault {
            InjectFault::FailNextBatch => self.fail_next_batch = true,
            InjectFault::Panic => panic!("injected panic in the actor of sku {}", self.sku),
        }
    }
}
