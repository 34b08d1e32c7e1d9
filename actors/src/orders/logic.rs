//! The rules of orders, run by the order actors and the checkout (`checkout.rs`):
//! payment, cancellation, fulfilment and expiry, driven by the order state machine;
//! stock effects go through the SKU actors and are idempotent by order id. Transitions
//! of one order are also fenced on the row's version, the guard across nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use souk_db::clock::now_micros;
use souk_db::fence::{self, Claim, FencedRow};
use souk_db::node_writer::NodeWriter;
use souk_db::orders::{self, HistoryRecord, OrderFilter, OrderRecord, Transition};
use souk_db::payment_events::{self, RefundRecord};
use souk_db::returns::{self, ReturnLineRecord};
use souk_db::{Db, DbError};

use super::limits::{CheckoutLocks, PurchaseLimits};
use super::payments::{Capture, PaymentProvider, RefundKey};
use super::state::{transition, Event, Initiator, OrderStatus, StockEffect, TransitionError};
use super::views::{build_view, status_of, Caller, OrderParts, OrderView};
use crate::error::{Error, ErrorCode};
use crate::identity::AddressBook;
use crate::inventory::service::{api_error, InventoryService};
use crate::inventory::{Command, InventoryError, InventoryRouter};
use crate::outbox::Topic;
use crate::ports::ProductLookup;
use crate::shipping::Shipping;

/// The order if `owner` (a shopper) owns it, or for anyone when `owner` is `None`
/// (admins, the system); a shopper asking for another's order gets 404, as if it did
/// not exist.
pub(super) fn visible_to(order: OrderRecord, owner: Option<&str>) -> Result<OrderRecord, Error> {
    if owner.is_some_and(|owner| owner != order.user_id) {
        return Err(Error::not_found("order"));
    }
    Ok(order)
}

#[derive(Clone)]
pub struct OrderLogic {
    pub(super) db: Db,
    pub(super) products: Arc<dyn ProductLookup>,
    pub(super) inventory: InventoryService,
    pub(super) payments: Arc<dyn PaymentProvider>,
    pub(super) reservation_ttl: Duration,
    pub(super) limits: PurchaseLimits,
    pub(super) checkout_locks: Arc<CheckoutLocks>,
    pub(super) writer: NodeWriter,
    /// The caller's saved addresses, which checkout snapshots into the order.
    pub(super) addresses: AddressBook,
    /// How long after delivery a shopper may ask for a return.
    pub(super) return_window: Duration,
    /// The shipping methods and tax rates checkout prices orders with.
    pub(super) shipping: Shipping,
    /// Whether catalog prices and shipping rates include tax (VAT-style).
    pub(super) prices_include_tax: bool,
}

/// Returns are accepted for 30 days after delivery unless configured otherwise.
pub const DEFAULT_RETURN_WINDOW: Duration = Duration::from_secs(30 * 86_400);

fn transition_error(error: TransitionError) -> Error {
    match error {
        TransitionError::NotAllowed => {
            Error::new(ErrorCode::Forbidden, "only an admin may do this")
        }
        illegal => Error::new(ErrorCode::IllegalTransition, illegal.to_string()),
    }
}

/// Retries a stock command while its SKU actor is restarting or was fenced.
pub(super) async fn with_retries<F, Fut, T>(mut operation: F) -> Result<T, InventoryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, InventoryError>>,
{
    let mut attempt = 0;
    loop {
        match operation().await {
            Err(error) if error.is_retryable() && attempt < 20 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25 * attempt)).await;
            }
            other => return other,
        }
    }
}

impl OrderLogic {
    pub fn new(
        db: Db,
        products: Arc<dyn ProductLookup>,
        inventory: InventoryService,
        payments: Arc<dyn PaymentProvider>,
        reservation_ttl: Duration,
        limits: PurchaseLimits,
        addresses: AddressBook,
    ) -> Self {
        let writer = db.writer();
        Self {
            db: db.clone(),
            products,
            inventory,
            payments,
            reservation_ttl,
            limits,
            checkout_locks: Arc::default(),
            writer,
            shipping: Shipping::new(db.clone()),
            addresses,
            return_window: DEFAULT_RETURN_WINDOW,
            prices_include_tax: true,
        }
    }

    /// The same rules with catalog prices including tax (`true`, VAT-style) or not.
    pub fn with_prices_include_tax(mut self, prices_include_tax: bool) -> Self {
        self.prices_include_tax = prices_include_tax;
        self
    }

    /// The same rules with returns accepted for `window` after delivery.
    pub fn with_return_window(mut self, window: Duration) -> Self {
        self.return_window = window;
        self
    }

    pub(super) async fn view(&self, order: OrderRecord) -> Result<OrderView, Error> {
        let mut parts = self.parts_of(std::slice::from_ref(&order.id)).await?;
        let order_parts = parts.remove(&order.id).unwrap_or_default();
        build_view(order, order_parts)
    }

    /// The lines, history, refunds and returns of several orders: the same five
    /// queries for one order or a page of them.
    async fn parts_of(&self, ids: &[String]) -> Result<HashMap<String, OrderParts>, Error> {
        let pool = self.db.pool();
        let mut parts: HashMap<String, OrderParts> = HashMap::new();
        for line in orders::lines_of(pool, ids).await? {
            parts
                .entry(line.order_id.clone())
                .or_default()
                .lines
                .push(line);
        }
        for entry in orders::history_of(pool, ids).await? {
            parts
                .entry(entry.order_id.clone())
                .or_default()
                .history
                .push(entry);
        }
        for refund in payment_events::refunds_of(pool, ids).await? {
            parts
                .entry(refund.order_id.clone())
                .or_default()
                .refunds
                .push(refund);
        }
        let records = returns::returns_of(pool, ids).await?;
        let return_ids: Vec<String> = records.iter().map(|record| record.id.clone()).collect();
        let mut return_lines: HashMap<String, Vec<ReturnLineRecord>> = HashMap::new();
        for line in returns::lines_of(pool, &return_ids).await? {
            return_lines
                .entry(line.return_id.clone())
                .or_default()
                .push(line);
        }
        for record in records {
            let lines = return_lines.remove(&record.id).unwrap_or_default();
            parts
                .entry(record.order_id.clone())
                .or_default()
                .returns
                .push((record, lines));
        }
        Ok(parts)
    }

    /// The order if the caller may see it: its owner, or an admin. Anyone else gets 404,
    /// as if it did not exist.
    async fn load(&self, id: &str, owner: Option<&str>) -> Result<OrderRecord, Error> {
        let order = self.load_order(id, None).await?;
        visible_to(order, owner)
    }

    /// The stored order, for its actor to own while it is active. On a clustered node
    /// the actor claims the row with its shard's `epoch` first; `stale_owner` when a
    /// later owner did.
    pub async fn load_order(&self, id: &str, epoch: Option<u64>) -> Result<OrderRecord, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(Error::not_found("order"));
        }
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        let epoch = epoch.map(|epoch| i64::try_from(epoch).unwrap_or(i64::MAX));
        if let Some(epoch) = epoch {
            if let Claim::Stale { .. } =
                fence::claim(&mut connection, FencedRow::Order, id, epoch).await?
            {
                return Err(Error::stale_owner());
            }
        }
        let mut order = orders::find(&mut *connection, id)
            .await?
            .ok_or_else(|| Error::not_found("order"))?;
        // A later owner may have claimed the row between the claim and the read.
        order.owner_epoch = fence::writing_epoch(epoch, order.owner_epoch)
            .map_err(|_later| Error::stale_owner())?;
        Ok(order)
    }

    pub async fn get(&self, id: &str, owner: Option<&str>) -> Result<OrderView, Error> {
        let order = self.load(id, owner).await?;
        self.view(order).await
    }

    pub async fn list(
        &self,
        filter: &OrderFilter,
    ) -> Result<(Vec<OrderView>, Option<(i64, String)>), Error> {
        let mut rows = orders::list(self.db.pool(), filter).await?;
        let has_more = rows.len() > filter.limit as usize;
        rows.truncate(filter.limit as usize);
        let next = if has_more {
            rows.last()
                .map(|order| (order.created_at, order.id.clone()))
        } else {
            None
        };
        let ids: Vec<String> = rows.iter().map(|order| order.id.clone()).collect();
        let mut parts = self.parts_of(&ids).await?;
        let views = rows
            .into_iter()
            .map(|order| {
                let order_parts = parts.remove(&order.id).unwrap_or_default();
                build_view(order, order_parts)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok((views, next))
    }

    pub(super) async fn release_lines(&self, order_id: &str, skus: &[&str], reason: &str) {
        for sku in skus {
            let released = with_retries(|| {
                self.inventory.router().execute(
                    (*sku).to_owned(),
                    Command::Release {
                        order_id: order_id.to_owned(),
                        actor: format!("order:{order_id}"),
                        reason: reason.to_owned(),
                    },
                )
            })
            .await;
            if let Err(error) = released {
                // The reservation's TTL releases it in the end.
                tracing::error!(order_id, sku, %error, "cannot release a reservation");
            }
        }
    }

    /// Moves the order along `event`, applying the stock effect the state machine asks for.
    pub(super) async fn apply(
        &self,
        mut order: OrderRecord,
        event: Event,
        caller: &Caller,
        reason: &str,
    ) -> Result<OrderRecord, Error> {
        let from = status_of(&order)?;
        let (to, effect) = transition(from, event, caller.initiator()).map_err(transition_error)?;
        let expected_version = order.version;
        let now = now_micros();
        order.status = to.as_str().to_owned();
        order.version += 1;
        order.updated_at = now;
        if event == Event::Pay {
            order.was_paid = 1;
        }
        // The transition is committed first, with its stock effect marked as owed; the
        // effect follows and is marked done. A crash in between leaves `stock_settled = 0`
        // for the sweeper to finish: the effects are idempotent by order id.
        if effect != StockEffect::None {
            order.stock_settled = 0;
        }
        let history = HistoryRecord {
            id: souk_db::ids::new_id(),
            order_id: order.id.clone(),
            from_status: Some(from.as_str().to_owned()),
            to_status: to.as_str().to_owned(),
            actor: caller.label(),
            reason: reason.chars().take(200).collect(),
            created_at: now,
        };
        let event_record = Topic::of_order_status(to).event(
            &order.id,
            &serde_json::json!({"order_id": order.id, "user_id": order.user_id, "from": from.as_str(), "to": to.as_str(), "reason": reason}),
        )?;
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        match orders::transition(
            &mut connection,
            &order,
            expected_version,
            &history,
            &event_record,
        )
        .await?
        {
            Transition::Applied => {}
            Transition::Conflict => {
                return Err(Error::new(
                    ErrorCode::IllegalTransition,
                    "the order changed meanwhile; reload it",
                ))
            }
            Transition::Fenced => return Err(Error::stale_owner()),
        }
        drop(connection);
        // The transition is committed, so it is the answer; if its stock effect cannot be
        // done now, it stays owed and the sweeper does it.
        if effect != StockEffect::None {
            match self.settle(&order).await {
                // The actor that owns the order keeps this record: it must say settled.
                Ok(()) => order.stock_settled = 1,
                Err(error) => {
                    tracing::warn!(order_id = %order.id, %error, "stock effect owed; the sweeper will finish it")
                }
            }
        }
        Ok(order)
    }

    /// Performs what the order's current state owes its stock — sell (paid and later),
    /// return (cancelled after payment, with a refund), or release (cancelled unpaid,
    /// expired) — and records it done. Every step is idempotent by order id, so running
    /// it twice (a retry, or the sweeper after a crash) changes nothing more.
    pub(super) async fn settle(&self, order: &OrderRecord) -> Result<(), Error> {
        let status = status_of(order)?;
        let actor = format!("order:{}", order.id);
        let lines = orders::lines(self.db.pool(), &order.id).await?;
        for line in &lines {
            let command = match status {
                OrderStatus::PendingPayment => return Ok(()),
                OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered => {
                    Command::Commit {
                        order_id: order.id.clone(),
                        quantity: line.quantity,
                        actor: actor.clone(),
                    }
                }
                OrderStatus::Cancelled if order.was_paid == 1 => Command::Return {
                    order_id: order.id.clone(),
                    sale_order_id: order.id.clone(),
                    quantity: line.quantity,
                    actor: actor.clone(),
                    reason: String::new(),
                },
                OrderStatus::Cancelled | OrderStatus::Expired => Command::Release {
                    order_id: order.id.clone(),
                    actor: actor.clone(),
                    reason: format!("order {}", order.status),
                },
            };
            if let Err(error) = with_retries(|| {
                self.inventory
                    .router()
                    .execute(line.sku.clone(), command.clone())
            })
            .await
            {
                metrics::counter!("souk_order_settlement_failures_total").increment(1);
                tracing::error!(order_id = %order.id, sku = %line.sku, %error, "cannot settle the order's stock; the sweeper retries");
                return Err(api_error(error));
            }
        }
        if status == OrderStatus::Cancelled && order.was_paid == 1 {
            if let Some(reference) = &order.payment_reference {
                // Settled only once refunded: a refund that fails is owed, like the
                // stock, and the sweeper asks again.
                self.refund_whole(order, reference).await?;
            }
        }
        orders::mark_settled(self.db.pool(), &order.id, order.version).await?;
        Ok(())
    }

    /// Refunds what is left of a cancelled order's payment and records the refund under
    /// the provider's id (its `payment.refunded` event then finds it recorded). The
    /// refund's key names the order and the amount, so settling the order twice at
    /// once (its actor and a sweeper) refunds once.
    async fn refund_whole(&self, order: &OrderRecord, reference: &str) -> Result<(), Error> {
        let refunded: i64 =
            payment_events::refunds_of(self.db.pool(), std::slice::from_ref(&order.id))
                .await?
                .iter()
                .map(|refund| refund.amount)
                .sum();
        let amount = order.total_amount - refunded;
        if amount <= 0 {
            return Ok(());
        }
        let key = RefundKey::cancelled_order(&order.id, amount);
        let refund_id = self
            .payments
            .refund(reference, amount, &order.currency, &key)
            .await
            .map_err(|error| {
                metrics::counter!("souk_payment_refund_failures_total").increment(1);
                tracing::warn!(order_id = %order.id, %error, "refund failed; the sweeper asks again");
                Error::from(error)
            })?;
        let refund = RefundRecord {
            id: refund_id,
            order_id: order.id.clone(),
            amount,
            currency: order.currency.clone(),
            reason: "order cancelled after payment".to_owned(),
            created_at: now_micros(),
        };
        payment_events::insert_refund(self.db.pool(), &refund).await?;
        Ok(())
    }

    /// Captures the payment, marks the order paid, then sells the reserved stock.
    #[tracing::instrument(name = "pay_order", skip(self))]
    pub async fn pay(
        &self,
        order: OrderRecord,
        user_id: &str,
        method: &str,
    ) -> Result<(OrderRecord, OrderView), Error> {
        let mut order = visible_to(order, Some(user_id))?;
        let from = status_of(&order)?;
        transition(from, Event::Pay, Initiator::Shopper).map_err(transition_error)?;
        if order.expires_at <= now_micros() {
            let _ = self.expire(order.clone()).await;
            return Err(Error::new(
                ErrorCode::OrderExpired,
                "the order expired before it was paid; place it again",
            ));
        }
        let capture = self
            .payments
            .capture(&order.id, order.total_amount, &order.currency, method)
            .await
            .map_err(Error::from)?;
        let reference = match capture {
            Capture::Captured(reference) => reference,
            // The provider's webhook event pays the order (`on_payment_event`).
            Capture::Pending => {
                let view = self.view(order.clone()).await?;
                return Ok((order, view));
            }
        };
        order.payment_reference = Some(reference.clone());
        let paid = self
            .apply(
                order.clone(),
                Event::Pay,
                &Caller::Shopper(user_id.to_owned()),
                "payment captured",
            )
            .await;
        match paid {
            Ok(order) => {
                let view = self.view(order.clone()).await?;
                Ok((order, view))
            }
            Err(error) => {
                // Another transition won (a concurrent pay or cancel): give the money back,
                // now or, if the provider cannot, by a later sweep.
                if let Err(refund_error) = self
                    .give_back(&reference, order.total_amount, &order.currency)
                    .await
                {
                    metrics::counter!("souk_payment_refund_failures_total").increment(1);
                    tracing::warn!(order_id = %order.id, payment_reference = %reference, error = %refund_error, "a capture the order cannot keep was not refunded; the sweeper asks again");
                    self.owe_refund_of_capture(&order, &reference).await;
                }
                Err(error)
            }
        }
    }

    pub async fn cancel(
        &self,
        order: OrderRecord,
        caller: Caller,
        reason: &str,
    ) -> Result<(OrderRecord, OrderView), Error> {
        let owner = match &caller {
            Caller::Shopper(user_id) => Some(user_id.clone()),
            _ => None,
        };
        let order = visible_to(order, owner.as_deref())?;
        let order = self.apply(order, Event::Cancel, &caller, reason).await?;
        let view = self.view(order.clone()).await?;
        Ok((order, view))
    }

    pub async fn fulfil(
        &self,
        order: OrderRecord,
        admin_id: &str,
        event: Event,
    ) -> Result<(OrderRecord, OrderView), Error> {
        let reason = if event == Event::Ship {
            "shipped"
        } else {
            "delivered"
        };
        let order = self
            .apply(order, event, &Caller::Admin(admin_id.to_owned()), reason)
            .await?;
        let view = self.view(order.clone()).await?;
        Ok((order, view))
    }

    /// Expires an unpaid order whose time ran out, releasing its reservations; returns
    /// the order as it is afterwards (unchanged if it was not due).
    pub async fn expire(&self, order: OrderRecord) -> Result<OrderRecord, Error> {
        if order.status != OrderStatus::PendingPayment.as_str() || order.expires_at > now_micros() {
            return Ok(order);
        }
        self.apply(
            order,
            Event::Expire,
            &Caller::System,
            "unpaid when its reservation ran out",
        )
        .await
    }

    /// Orders changed more than five seconds ago whose stock effect is still owed (a
    /// crash left it undone), at most 100.
    pub async fn unsettled(&self) -> Result<Vec<String>, Error> {
        Ok(orders::unsettled(self.db.pool(), now_micros() - 5_000_000, 100).await?)
    }

    /// Finishes the stock effect `order` still owes, if any; run by the order's actor,
    /// so no transition can come between reading the order and its effect.
    pub async fn settle_owed(&self, mut order: OrderRecord) -> Result<OrderRecord, Error> {
        if order.stock_settled == 0 {
            self.settle(&order).await?;
            order.stock_settled = 1;
        }
        Ok(order)
    }

    /// Unpaid orders past their deadline, at most 100, oldest first.
    pub async fn due_for_expiry(&self) -> Result<Vec<String>, Error> {
        Ok(orders::due_for_expiry(self.db.pool(), now_micros(), 100).await?)
    }
}
