//! Checkout: placing an order. Every line is reserved in its SKU's actor or none is;
//! prices are snapshotted from the catalog, and the shipping and billing addresses
//! named from the caller's address book (read only when named); the order is written
//! by the node's group-commit writer. An `Idempotency-Key` makes retries return the
//! same order, and the same key with another body (items or addresses) is refused.

use sha2::{Digest, Sha256};
use souk_db::clock::now_micros;
use souk_db::orders::{self, HistoryRecord, LineRecord, NewOrder, OrderRecord};
use souk_db::DbError;

use super::logic::{with_retries, OrderLogic};
use super::state::OrderStatus;
use super::views::{build_view, validate_items, CreateOrderInput, OrderParts, OrderView};
use crate::error::{Error, ErrorCode, FieldError, FieldErrors};
use crate::inventory::service::api_error;
use crate::inventory::stock::Holder;
use crate::inventory::{Command, InventoryError, InventoryRouter, StockError};
use crate::outbox::Topic;

impl OrderLogic {
    /// Places an order. Returns it and whether it was created now (`false`: the same
    /// idempotency key and body were seen before, and this is that order).
    // The idempotency key is the client's secret-ish handle on the order: never logged.
    #[tracing::instrument(name = "create_order", skip(self, input, key), fields(idempotent = key.is_some()))]
    pub async fn create(
        &self,
        user_id: &str,
        input: CreateOrderInput,
        key: Option<String>,
    ) -> Result<(OrderView, bool), Error> {
        let items = validate_items(&input.items)?;
        // Billing defaults to shipping; the hash covers the addresses as they apply.
        let shipping_id = input.shipping_address_id;
        let billing_id = input.billing_address_id.or_else(|| shipping_id.clone());
        let request_hash = request_hash(&items, shipping_id.as_deref(), billing_id.as_deref())?;
        if let Some(key) = &key {
            if let Some(existing) = orders::find_by_key(self.db.pool(), user_id, key).await? {
                return self.replay(existing, &request_hash).await;
            }
        }
        // Held until the order is stored, so this customer's concurrent checkouts count
        // each other's orders.
        let _checkout = match self.limits.max_unpaid_orders {
            Some(limit) => {
                let guard = self.checkout_locks.lock(user_id).await;
                let unpaid = orders::count_unpaid(self.db.pool(), user_id).await?;
                if unpaid >= i64::from(limit) {
                    return Err(Error::new(
                        ErrorCode::UnpaidOrderLimit,
                        format!("a customer may have at most {limit} unpaid orders; pay or cancel one first"),
                    ));
                }
                Some(guard)
            }
            None => None,
        };
        // Read only when named: a checkout without addresses costs no round trip.
        let (shipping_address, billing_address) = self
            .address_snapshots(user_id, shipping_id.as_deref(), billing_id.as_deref())
            .await?;
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
                self.inventory.router().execute(
                    product.sku.clone(),
                    Command::Reserve {
                        order_id: order_id.clone(),
                        quantity: *quantity,
                        ttl_ms: reservation_ttl_ms,
                        actor: format!("order:{order_id}"),
                        holder: Some(Holder {
                            customer_id: user_id.to_owned(),
                            max_units: self.limits.max_units_per_sku,
                        }),
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
                    InventoryError::Stock(StockError::CustomerLimit { limit, allowed }) => {
                        Error::new(
                            ErrorCode::PurchaseLimit,
                            format!("{} is limited to {limit} units per customer in unpaid orders; {allowed} more allowed", product.sku),
                        )
                        .with_fields(vec![FieldError::new(
                            product.sku.clone(),
                            format!("at most {allowed} more allowed"),
                        )])
                    }
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
            // Its owner claims it when its actor first loads it.
            owner_epoch: 0,
            shipping_address,
            billing_address,
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
        let placed = Topic::OrderPlaced.event(
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
        )?;
        // Written with the other checkouts of this moment, in one commit.
        let new = NewOrder {
            order: order.clone(),
            lines: line_records.clone(),
            history: history.clone(),
            event: placed,
        };
        match self.writer.insert(new).await {
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
        // The answer is what was just written: nothing to read back.
        let parts = OrderParts {
            lines: line_records,
            history: vec![history],
            ..OrderParts::default()
        };
        Ok((build_view(order, parts)?, true))
    }

    /// The order `key` placed for this user, if any: a retried cart checkout's answer.
    #[tracing::instrument(name = "find_order_by_key", skip(self, key))]
    pub async fn find_by_idempotency_key(
        &self,
        user_id: &str,
        key: &str,
    ) -> Result<Option<OrderView>, Error> {
        match orders::find_by_key(self.db.pool(), user_id, key).await? {
            Some(existing) => Ok(Some(self.view(existing).await?)),
            None => Ok(None),
        }
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

    /// The snapshots (JSON) of the addresses named, each read only when its id is
    /// given, once when both name the same; an id that is not one of the caller's
    /// addresses is `validation_failed` naming its field.
    async fn address_snapshots(
        &self,
        user_id: &str,
        shipping_id: Option<&str>,
        billing_id: Option<&str>,
    ) -> Result<(Option<String>, Option<String>), Error> {
        let mut errors = FieldErrors::default();
        let shipping = match shipping_id {
            Some(id) => {
                self.address_snapshot(user_id, "shipping_address_id", id, &mut errors)
                    .await?
            }
            None => None,
        };
        let billing = match billing_id {
            Some(id) if Some(id) == shipping_id => shipping.clone(),
            Some(id) => {
                self.address_snapshot(user_id, "billing_address_id", id, &mut errors)
                    .await?
            }
            None => None,
        };
        errors.finish()?;
        Ok((shipping, billing))
    }

    async fn address_snapshot(
        &self,
        user_id: &str,
        field: &str,
        id: &str,
        errors: &mut FieldErrors,
    ) -> Result<Option<String>, Error> {
        match self.addresses.snapshot(user_id, id).await? {
            Some(address) => Ok(Some(
                serde_json::to_string(&address).map_err(Error::internal)?,
            )),
            None => {
                errors.push(field, "is not one of your saved addresses");
                Ok(None)
            }
        }
    }
}

/// What an `Idempotency-Key` is bound to: the merged items and, when any is named, the
/// address ids (an order without addresses hashes as it did before they existed).
fn request_hash(
    items: &[(String, i64)],
    shipping_id: Option<&str>,
    billing_id: Option<&str>,
) -> Result<String, Error> {
    let body = match (shipping_id, billing_id) {
        (None, None) => serde_json::to_vec(items),
        _ => serde_json::to_vec(&serde_json::json!({
            "items": items,
            "shipping_address_id": shipping_id,
            "billing_address_id": billing_id,
        })),
    }
    .map_err(Error::internal)?;
    Ok(hex::encode(Sha256::digest(body)))
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
