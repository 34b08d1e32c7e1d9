//! Orders: checkout (all-or-nothing reservations, price snapshots, idempotency keys),
//! payment, cancellation, fulfilment and expiry, driven by the order state machine of
//! `souk_actors::orders`.
//!
//! Transitions of one order are serialized by a version-fenced update of its row (the
//! per-order actor of DESIGN.md is not built yet); stock effects go through the SKU
//! actors and are idempotent by order id.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use souk_actors::inventory::{Command, InventoryError, StockError};
use souk_actors::orders::state::{derived_statuses, Fulfilment, Payment};
use souk_actors::orders::{
    transition, Event, OrderActor, OrderStatus, StockEffect, TransitionError,
};
use souk_db::clock::{now_micros, to_datetime};
use souk_db::orders::{self, HistoryRecord, LineRecord, OrderFilter, OrderRecord};
use souk_db::outbox::OutboxEvent;
use souk_db::{Db, DbError};
use utoipa::ToSchema;

use crate::domain::catalog::parse_sku;
use crate::error::{Error, ErrorCode, FieldError};
use crate::services::catalog::{CatalogService, Money, ProductView};
use crate::services::inventory::{api_error, InventoryService};
use crate::services::payments::{PaymentError, PaymentProvider};

pub const MAX_LINES: usize = 50;
pub const MAX_QUANTITY: i64 = 100;

#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct OrderItemInput {
    pub sku: String,
    pub quantity: i64,
}

/// Only `sku` and `quantity` count; prices come from the catalog, whatever is sent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateOrderInput {
    pub items: Vec<OrderItemInput>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLineView {
    pub sku: String,
    pub product_id: String,
    pub name: String,
    pub unit_price: Money,
    pub quantity: i64,
    pub line_total: Money,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryView {
    pub from: Option<String>,
    pub to: String,
    /// `user:<id>`, `admin:<id>` or `system`.
    pub actor: String,
    pub reason: String,
    /// RFC 3339, UTC.
    pub at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderView {
    pub id: String,
    pub user_id: String,
    /// pending_payment, paid, shipped, delivered, cancelled, expired.
    pub status: String,
    /// pending, captured, refunded, voided.
    pub payment_status: String,
    /// unfulfilled, shipped, delivered, returned.
    pub fulfilment_status: String,
    pub items: Vec<OrderLineView>,
    pub total: Money,
    /// When an unpaid order expires (RFC 3339, UTC).
    pub expires_at: String,
    pub created_at: String,
    pub updated_at: String,
    pub history: Vec<HistoryView>,
}

fn payment_name(payment: Payment) -> &'static str {
    match payment {
        Payment::Pending => "pending",
        Payment::Captured => "captured",
        Payment::Refunded => "refunded",
        Payment::Voided => "voided",
    }
}

fn fulfilment_name(fulfilment: Fulfilment) -> &'static str {
    match fulfilment {
        Fulfilment::Unfulfilled => "unfulfilled",
        Fulfilment::Shipped => "shipped",
        Fulfilment::Delivered => "delivered",
        Fulfilment::Returned => "returned",
    }
}

pub fn parse_status(raw: &str) -> Option<OrderStatus> {
    [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
    ]
    .into_iter()
    .find(|status| status.as_str() == raw)
}

/// Who acts, for the state machine and the history.
#[derive(Debug, Clone)]
pub enum Caller {
    Shopper(String),
    Admin(String),
    System,
}

impl Caller {
    fn actor(&self) -> OrderActor {
        match self {
            Caller::Shopper(_) => OrderActor::Shopper,
            Caller::Admin(_) => OrderActor::Admin,
            Caller::System => OrderActor::System,
        }
    }

    fn label(&self) -> String {
        match self {
            Caller::Shopper(id) => format!("user:{id}"),
            Caller::Admin(id) => format!("admin:{id}"),
            Caller::System => "system".to_owned(),
        }
    }
}

/// Where the order service finds the products it snapshots: the catalog in this
/// process, or the product service of another (split services).
pub trait ProductLookup: Send + Sync {
    /// The product if it is active; `not_found` otherwise.
    fn active_by_sku(&self, sku: String) -> BoxFuture<'static, Result<ProductView, Error>>;
}

impl ProductLookup for CatalogService {
    fn active_by_sku(&self, sku: String) -> BoxFuture<'static, Result<ProductView, Error>> {
        let catalog = self.clone();
        Box::pin(async move { catalog.get_product_by_sku(&sku, false).await })
    }
}

#[derive(Clone)]
pub struct OrderService {
    db: Db,
    products: Arc<dyn ProductLookup>,
    inventory: InventoryService,
    payments: Arc<dyn PaymentProvider>,
    reservation_ttl: Duration,
}

fn transition_error(error: TransitionError) -> Error {
    match error {
        TransitionError::NotAllowed => {
            Error::new(ErrorCode::Forbidden, "only an admin may do this")
        }
        illegal => Error::new(ErrorCode::IllegalTransition, illegal.to_string()),
    }
}

/// Retries a stock command while its SKU actor is restarting or was fenced.
async fn with_retries<F, Fut, T>(mut operation: F) -> Result<T, InventoryError>
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

impl OrderService {
    pub fn new(
        db: Db,
        products: Arc<dyn ProductLookup>,
        inventory: InventoryService,
        payments: Arc<dyn PaymentProvider>,
        reservation_ttl: Duration,
    ) -> Self {
        Self {
            db,
            products,
            inventory,
            payments,
            reservation_ttl,
        }
    }

    async fn view(&self, order: OrderRecord) -> Result<OrderView, Error> {
        let lines = orders::lines(self.db.pool(), &order.id).await?;
        let history = orders::history(self.db.pool(), &order.id).await?;
        Ok(build_view(order, lines, history))
    }

    /// The order if the caller may see it: its owner, or an admin. Anyone else gets 404,
    /// as if it did not exist.
    async fn load(&self, id: &str, owner: Option<&str>) -> Result<OrderRecord, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(Error::not_found("order"));
        }
        let order = orders::find(self.db.pool(), id)
            .await?
            .ok_or_else(|| Error::not_found("order"))?;
        if owner.is_some_and(|owner| owner != order.user_id) {
            return Err(Error::not_found("order"));
        }
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
        // Two queries for the whole page, not two per order.
        let ids: Vec<String> = rows.iter().map(|order| order.id.clone()).collect();
        let mut lines: HashMap<String, Vec<LineRecord>> = HashMap::new();
        for line in orders::lines_of(self.db.pool(), &ids).await? {
            lines.entry(line.order_id.clone()).or_default().push(line);
        }
        let mut history: HashMap<String, Vec<HistoryRecord>> = HashMap::new();
        for entry in orders::history_of(self.db.pool(), &ids).await? {
            history
                .entry(entry.order_id.clone())
                .or_default()
                .push(entry);
        }
        let views = rows
            .into_iter()
            .map(|order| {
                let order_lines = lines.remove(&order.id).unwrap_or_default();
                let order_history = history.remove(&order.id).unwrap_or_default();
                build_view(order, order_lines, order_history)
            })
            .collect();
        Ok((views, next))
    }

    /// Places an order. Returns it and whether it was created now (`false`: the same
    /// idempotency key and body were seen before, and this is that order).
    #[tracing::instrument(name = "create_order", skip(self, input))]
    pub async fn create(
        &self,
        user_id: &str,
        input: CreateOrderInput,
        key: Option<String>,
    ) -> Result<(OrderView, bool), Error> {
        let items = validate_items(&input.items)?;
        let request_hash = hex::encode(Sha256::digest(
            serde_json::to_vec(&items).map_err(Error::internal)?,
        ));
        if let Some(key) = &key {
            if let Some(existing) = orders::find_by_key(self.db.pool(), user_id, key).await? {
                return self.replay(existing, &request_hash).await;
            }
        }
        // Snapshot every line from the catalog; prices sent by the client play no part.
        let mut lines = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (index, (sku, quantity)) in items.iter().enumerate() {
            match self.products.active_by_sku(sku.clone()).await {
                Ok(product) => lines.push((product, *quantity)),
                Err(error) if error.code() == ErrorCode::NotFound => errors.push(FieldError::new(
                    format!("items[{index}].sku"),
                    format!("{sku} is not an active product"),
                )),
                // The catalog could not answer: that is not the shopper's mistake.
                Err(error) => return Err(error),
            }
        }
        if !errors.is_empty() {
            return Err(Error::validation(errors));
        }
        let currency = lines[0].0.price.currency.clone();
        if lines
            .iter()
            .any(|(product, _)| product.price.currency != currency)
        {
            return Err(Error::validation(vec![FieldError::new(
                "items",
                "every item must be priced in the same currency",
            )]));
        }
        // With a key, the id follows from (user, key, body): concurrent retries reserve
        // under one order id (reservations are idempotent by it) and only one insert wins.
        let order_id = match &key {
            Some(key) => derived_id(user_id, key, &request_hash),
            None => souk_db::ids::new_id(),
        };
        let now = now_micros();
        let ttl_micros = i64::try_from(self.reservation_ttl.as_micros()).unwrap_or(i64::MAX / 4);
        // The stock reservations outlive the order's own deadline by a grace period, so
        // a payment accepted just before the deadline still finds them to commit.
        let reservation_ttl_ms = ttl_micros / 1000 + 60_000;
        let mut reserved: Vec<&str> = Vec::new();
        for (product, quantity) in &lines {
            let outcome = with_retries(|| {
                self.inventory.router().send(
                    product.sku.clone(),
                    Command::Reserve {
                        order_id: order_id.clone(),
                        quantity: *quantity,
                        ttl_ms: reservation_ttl_ms,
                        actor: format!("order:{order_id}"),
                    },
                )
            })
            .await;
            if let Err(error) = outcome {
                self.release_lines(
                    &order_id,
                    &reserved,
                    "order not placed: another line failed",
                )
                .await;
                return Err(match error {
                    InventoryError::Stock(StockError::Insufficient { available }) => Error::new(
                        ErrorCode::InsufficientStock,
                        format!("{} has only {available} available", product.sku),
                    )
                    .with_fields(vec![FieldError::new(
                        product.sku.clone(),
                        format!("only {available} available"),
                    )]),
                    other => api_error(other),
                });
            }
            reserved.push(&product.sku);
        }
        let total: i64 = lines
            .iter()
            .map(|(product, quantity)| product.price.amount * quantity)
            .sum();
        let order = OrderRecord {
            id: order_id.clone(),
            user_id: user_id.to_owned(),
            status: OrderStatus::PendingPayment.as_str().to_owned(),
            was_paid: 0,
            currency: currency.clone(),
            total_amount: total,
            idempotency_key: key.clone(),
            request_hash: request_hash.clone(),
            payment_reference: None,
            expires_at: now + ttl_micros,
            // The reservations were made before the insert: placing is settled.
            stock_settled: 1,
            version: 1,
            created_at: now,
            updated_at: now,
        };
        let line_records: Vec<LineRecord> = lines
            .iter()
            .enumerate()
            .map(|(index, (product, quantity))| LineRecord {
                order_id: order_id.clone(),
                line_no: index as i64 + 1,
                sku: product.sku.clone(),
                product_id: product.id.clone(),
                name: product.name.clone(),
                unit_amount: product.price.amount,
                quantity: *quantity,
            })
            .collect();
        let history = HistoryRecord {
            id: souk_db::ids::new_id(),
            order_id: order_id.clone(),
            from_status: None,
            to_status: order.status.clone(),
            actor: format!("user:{user_id}"),
            reason: "placed".to_owned(),
            created_at: now,
        };
        let placed = OutboxEvent::new(
            "order.placed",
            &order_id,
            &serde_json::json!({
                "order_id": order_id,
                "user_id": user_id,
                "total": {"amount": total, "currency": currency},
                "lines": line_records.iter().map(|line| serde_json::json!({
                    "sku": line.sku, "name": line.name, "quantity": line.quantity,
                    "unit_price": {"amount": line.unit_amount, "currency": currency},
                })).collect::<Vec<_>>(),
            }),
        )
        .map_err(Error::internal)?;
        // The connection goes back to the pool before anything else awaits one: a request
        // holding it while asking for another deadlocks the pool once as many requests
        // run as it has connections.
        let inserted = {
            let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
            orders::insert(&mut connection, &order, &line_records, &history, &placed).await
        };
        match inserted {
            Ok(()) => {}
            Err(DbError::UniqueViolation { .. }) if key.is_some() => {
                // A concurrent request with the same key won the insert.
                let key = key.unwrap_or_default();
                let existing = orders::find_by_key(self.db.pool(), user_id, &key)
                    .await?
                    .ok_or_else(|| Error::internal("idempotent order vanished"))?;
                if existing.id != order_id {
                    self.release_lines(&order_id, &reserved, "duplicate request")
                        .await;
                }
                return self.replay(existing, &request_hash).await;
            }
            Err(error) => {
                self.release_lines(&order_id, &reserved, "order not placed: storage failed")
                    .await;
                return Err(error.into());
            }
        }
        tracing::info!(order_id = %order_id, total, "order placed");
        Ok((self.view(order).await?, true))
    }

    async fn replay(
        &self,
        existing: OrderRecord,
        request_hash: &str,
    ) -> Result<(OrderView, bool), Error> {
        if existing.request_hash != request_hash {
            return Err(Error::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key was used with a different request",
            ));
        }
        Ok((self.view(existing).await?, false))
    }

    async fn release_lines(&self, order_id: &str, skus: &[&str], reason: &str) {
        for sku in skus {
            let released = with_retries(|| {
                self.inventory.router().send(
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
    async fn apply(
        &self,
        mut order: OrderRecord,
        event: Event,
        caller: &Caller,
        reason: &str,
    ) -> Result<OrderRecord, Error> {
        let from = parse_status(&order.status).unwrap_or(OrderStatus::PendingPayment);
        let (to, effect) = transition(from, event, caller.actor()).map_err(transition_error)?;
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
        let event_record = OutboxEvent::new(
            &format!("order.{}", to.as_str()),
            &order.id,
            &serde_json::json!({"order_id": order.id, "user_id": order.user_id, "from": from.as_str(), "to": to.as_str(), "reason": reason}),
        )
        .map_err(Error::internal)?;
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        if !orders::transition(
            &mut connection,
            &order,
            expected_version,
            &history,
            &event_record,
        )
        .await?
        {
            return Err(Error::new(
                ErrorCode::IllegalTransition,
                "the order changed meanwhile; reload it",
            ));
        }
        drop(connection);
        // The transition is committed, so it is the answer; if its stock effect cannot be
        // done now, it stays owed and the sweeper does it.
        if effect != StockEffect::None {
            if let Err(error) = self.settle(&order).await {
                tracing::warn!(order_id = %order.id, %error, "stock effect owed; the sweeper will finish it");
            }
        }
        Ok(order)
    }

    /// Performs what the order's current state owes its stock — sell (paid and later),
    /// return (cancelled after payment, with a refund), or release (cancelled unpaid,
    /// expired) — and records it done. Every step is idempotent by order id, so running
    /// it twice (a retry, or the sweeper after a crash) changes nothing more.
    async fn settle(&self, order: &OrderRecord) -> Result<(), Error> {
        let status = parse_status(&order.status).unwrap_or(OrderStatus::PendingPayment);
        let actor = format!("order:{}", order.id);
        let lines = orders::lines(self.db.pool(), &order.id).await?;
        for line in &lines {
            let command = match status {
                OrderStatus::PendingPayment => return Ok(()),
                OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered => {
                    Command::Commit {
                        order_id: order.id.clone(),
                        actor: actor.clone(),
                    }
                }
                OrderStatus::Cancelled if order.was_paid == 1 => Command::Return {
                    order_id: order.id.clone(),
                    quantity: line.quantity,
                    actor: actor.clone(),
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
                    .send(line.sku.clone(), command.clone())
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
                if let Err(error) = self
                    .payments
                    .refund(reference, order.total_amount, &order.currency)
                    .await
                {
                    tracing::error!(order_id = %order.id, %error, "refund failed; needs attention");
                }
            }
        }
        orders::mark_settled(self.db.pool(), &order.id, order.version).await?;
        Ok(())
    }

    /// Captures the payment, marks the order paid, then sells the reserved stock.
    #[tracing::instrument(name = "pay_order", skip(self))]
    pub async fn pay(&self, user_id: &str, id: &str, method: &str) -> Result<OrderView, Error> {
        let mut order = self.load(id, Some(user_id)).await?;
        let from = parse_status(&order.status).unwrap_or(OrderStatus::PendingPayment);
        transition(from, Event::Pay, OrderActor::Shopper).map_err(transition_error)?;
        if order.expires_at <= now_micros() {
            let _ = self.expire(&order.id).await;
            return Err(Error::new(
                ErrorCode::OrderExpired,
                "the order expired before it was paid; place it again",
            ));
        }
        let reference = self
            .payments
            .capture(&order.id, order.total_amount, &order.currency, method)
            .await
            .map_err(|error| match error {
                PaymentError::Declined(why) => Error::new(ErrorCode::PaymentDeclined, why),
                PaymentError::Unavailable(why) => Error::new(ErrorCode::ServiceUnavailable, why),
            })?;
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
            Ok(order) => self.view(order).await,
            Err(error) => {
                // Another transition won (a concurrent pay or cancel): give the money back.
                let _ = self
                    .payments
                    .refund(&reference, order.total_amount, &order.currency)
                    .await;
                Err(error)
            }
        }
    }

    pub async fn cancel(&self, caller: Caller, id: &str, reason: &str) -> Result<OrderView, Error> {
        let owner = match &caller {
            Caller::Shopper(user_id) => Some(user_id.clone()),
            _ => None,
        };
        let order = self.load(id, owner.as_deref()).await?;
        let order = self.apply(order, Event::Cancel, &caller, reason).await?;
        self.view(order).await
    }

    pub async fn fulfil(&self, admin_id: &str, id: &str, event: Event) -> Result<OrderView, Error> {
        let order = self.load(id, None).await?;
        let reason = if event == Event::Ship {
            "shipped"
        } else {
            "delivered"
        };
        let order = self
            .apply(order, event, &Caller::Admin(admin_id.to_owned()), reason)
            .await?;
        self.view(order).await
    }

    /// Expires an unpaid order whose time ran out, releasing its reservations.
    pub async fn expire(&self, id: &str) -> Result<(), Error> {
        let order = self.load(id, None).await?;
        if order.status != OrderStatus::PendingPayment.as_str() || order.expires_at > now_micros() {
            return Ok(());
        }
        self.apply(
            order,
            Event::Expire,
            &Caller::System,
            "unpaid when its reservation ran out",
        )
        .await?;
        Ok(())
    }

    /// Finishes the stock effects a crash left undone (orders changed more than five
    /// seconds ago whose effect is still owed).
    pub async fn settle_unsettled(&self) -> Result<usize, Error> {
        let due = orders::unsettled(self.db.pool(), now_micros() - 5_000_000, 100).await?;
        let mut settled = 0;
        for id in due {
            let Some(order) = orders::find(self.db.pool(), &id).await? else {
                continue;
            };
            if order.stock_settled == 0 && self.settle(&order).await.is_ok() {
                settled += 1;
            }
        }
        Ok(settled)
    }

    /// Unpaid orders past their deadline, at most 100, oldest first.
    pub async fn due_for_expiry(&self) -> Result<Vec<String>, Error> {
        Ok(orders::due_for_expiry(self.db.pool(), now_micros(), 100).await?)
    }

    /// One sweep of unpaid orders past their deadline, run here rather than through the
    /// orders' actors (tests and tools; the node's sweeper routes them).
    pub async fn expire_due(&self) -> Result<usize, Error> {
        let due = orders::due_for_expiry(self.db.pool(), now_micros(), 100).await?;
        let mut expired = 0;
        for id in due {
            match self.expire(&id).await {
                Ok(()) => expired += 1,
                Err(error) => tracing::warn!(order_id = %id, %error, "cannot expire order"),
            }
        }
        Ok(expired)
    }
}

/// Items merged by SKU (quantities added), sorted, each validated.
fn validate_items(items: &[OrderItemInput]) -> Result<Vec<(String, i64)>, Error> {
    if items.is_empty() || items.len() > MAX_LINES {
        return Err(Error::validation(vec![FieldError::new(
            "items",
            format!("must hold 1 to {MAX_LINES} items"),
        )]));
    }
    let mut merged: BTreeMap<String, i64> = BTreeMap::new();
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match parse_sku(&item.sku) {
            Ok(sku) => *merged.entry(sku).or_default() += item.quantity.clamp(-1, MAX_QUANTITY + 1),
            Err(message) => errors.push(FieldError::new(format!("items[{index}].sku"), message)),
        }
        if !(1..=MAX_QUANTITY).contains(&item.quantity) {
            errors.push(FieldError::new(
                format!("items[{index}].quantity"),
                format!("must be 1 to {MAX_QUANTITY}"),
            ));
        }
    }
    for (sku, quantity) in &merged {
        if *quantity > MAX_QUANTITY && errors.is_empty() {
            errors.push(FieldError::new(
                "items",
                format!("{sku}: at most {MAX_QUANTITY} in total"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    Ok(merged.into_iter().collect())
}

/// A stable UUID-shaped id from (user, key, body).
fn derived_id(user_id: &str, key: &str, request_hash: &str) -> String {
    let digest = Sha256::digest(format!("{user_id}\n{key}\n{request_hash}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// An order as the API shows it, from its row, lines and history.
fn build_view(
    order: OrderRecord,
    lines: Vec<LineRecord>,
    history: Vec<HistoryRecord>,
) -> OrderView {
    let status = parse_status(&order.status).unwrap_or(OrderStatus::PendingPayment);
    let (payment, fulfilment) = derived_statuses(status, order.was_paid == 1);
    let money = |amount: i64| Money {
        amount,
        currency: order.currency.clone(),
    };
    OrderView {
        items: lines
            .into_iter()
            .map(|line| OrderLineView {
                unit_price: money(line.unit_amount),
                line_total: money(line.unit_amount * line.quantity),
                sku: line.sku,
                product_id: line.product_id,
                name: line.name,
                quantity: line.quantity,
            })
            .collect(),
        total: money(order.total_amount),
        payment_status: payment_name(payment).to_owned(),
        fulfilment_status: fulfilment_name(fulfilment).to_owned(),
        expires_at: to_datetime(order.expires_at).to_rfc3339(),
        created_at: to_datetime(order.created_at).to_rfc3339(),
        updated_at: to_datetime(order.updated_at).to_rfc3339(),
        history: history
            .into_iter()
            .map(|entry| HistoryView {
                from: entry.from_status,
                to: entry.to_status,
                actor: entry.actor,
                reason: entry.reason,
                at: to_datetime(entry.created_at).to_rfc3339(),
            })
            .collect(),
        id: order.id,
        user_id: order.user_id,
        status: order.status,
    }
}
