//! Checkout: placing an order. Every line is reserved in its SKU's actor or none is;
//! prices are snapshotted from the catalog, the addresses, shipping method and tax rate
//! come from the delivery details (`delivery`, each read only when named or needed);
//! the order keeps subtotal, shipping, tax and total. The order rides with
//! the reservation of its last line: the node writer of the node where that SKU's actor
//! runs (this one, or its owner in the cluster) writes the order in the same commit as
//! that reservation (the lines before it were reserved, and committed, first); when
//! the SKU is reached over gRPC (a split inventory service), this node's writer writes
//! it after.
//! An `Idempotency-Key` makes retries return the same order, and the same key with
//! another body (items, addresses or method) is refused; the order is read by its key
//! only when a checkout cannot place its own. Concurrent requests with one key share
//! the order's id and so its reservations, which `holds` keeps whole. The cap on a
//! customer's unpaid orders is checked by the node writer in the commit that would
//! write the order.

use sha2::{Digest, Sha256};
use souk_db::clock::now_micros;
use souk_db::orders::{self, HistoryRecord, LineRecord, NewOrder, OrderRecord};
use souk_db::DbError;

use super::holds::Hold;
use super::logic::{with_retries, OrderLogic};
use super::placed::OrderPlaced;
use super::state::OrderStatus;
use super::views::{
    build_view, validate_items, CreateOrderInput, MergedItems, OrderParts, OrderView,
};
use crate::error::{Error, ErrorCode, FieldError};
use crate::inventory::service::api_error;
use crate::inventory::{InventoryError, InventoryRouter, Outcome, Placed, Placement, StockError};
use crate::outbox::Topic;
use crate::shipping::{self, Totals};

impl OrderLogic {
    /// Places an order. Returns it and whether it was created now (`false`: the same
    /// idempotency key and body were seen before, and this is that order).
    ///
    /// Nothing is read by the key first: the order's id follows from (user, key, body),
    /// its reservations are idempotent by that id and the key is unique with the order,
    /// so a retry of a placed order ends on a refused insert or on a failure (its stock
    /// sold out since, say); either reads the order by its key and answers it.
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
        let method_code = input.shipping_method;
        let request_hash = request_hash(
            &items.items,
            shipping_id.as_deref(),
            billing_id.as_deref(),
            method_code.as_deref(),
        )?;
        let checkout = Checkout {
            items,
            shipping_id,
            billing_id,
            method_code,
            request_hash,
        };
        let placed = self.place(user_id, &checkout, key.as_deref()).await;
        let (Err(error), Some(key)) = (&placed, &key) else {
            return placed;
        };
        // Both were answered after a read by this key: nothing more to find.
        if matches!(
            error.code(),
            ErrorCode::IdempotencyKeyReused | ErrorCode::UnpaidOrderLimit
        ) {
            return placed;
        }
        // This failure may be a retry's: the order its first attempt placed stands.
        match orders::find_by_key(self.db.pool(), user_id, key).await {
            Ok(Some(existing)) => self.replay(existing, &checkout.request_hash).await,
            _ => placed,
        }
    }

    async fn place(
        &self,
        user_id: &str,
        checkout: &Checkout,
        key: Option<&str>,
    ) -> Result<(OrderView, bool), Error> {
        let Checkout {
            items,
            shipping_id,
            billing_id,
            method_code,
            request_hash,
        } = checkout;
        // The cap on unpaid orders is checked in the commit that writes the order (one
        // read for the whole commit); this lock, held until the order is stored, keeps
        // one customer's concurrent checkouts out of concurrent commits, so each is
        // counted with the ones before it.
        let _checkout = match self.limits.max_unpaid_orders {
            Some(_) => Some(self.checkout_locks.lock(user_id).await),
            None => None,
        };
        // Read only when named: a checkout without addresses costs no round trip.
        let (shipping_address, billing_address) = self
            .address_snapshots(user_id, shipping_id.as_deref(), billing_id.as_deref())
            .await?;
        // Read only when named (the method) or needed (the rate of a shipping country).
        let (method, tax_rate_bps) = self
            .pricing(method_code.as_deref(), shipping_address.as_ref())
            .await?;
        // Snapshot every line from the catalog; prices sent by the client play no part.
        let mut lines = Vec::with_capacity(items.items.len());
        let mut errors = Vec::new();
        for (index, (sku, quantity)) in items.items.iter().enumerate() {
            match self.products.active_by_sku(sku.clone()).await {
                Ok(product) => lines.push((product, *quantity)),
                Err(error) if error.code() == ErrorCode::NotFound => errors.push(FieldError::new(
                    items.field(index, "sku"),
                    format!("{sku} is not an active product"),
                )),
                // A product's own SKU when it has variants: the message names them.
                Err(error) if error.code() == ErrorCode::ValidationFailed => {
                    errors.extend(error.field_errors().iter().map(|field| {
                        FieldError::new(items.field(index, "sku"), field.message.clone())
                    }))
                }
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
        if let Some(method) = method.as_ref().filter(|method| method.currency != currency) {
            return Err(Error::validation(vec![FieldError::new(
                "shipping_method",
                format!(
                    "is priced in {}; the items are in {currency}",
                    method.currency
                ),
            )]));
        }
        let subtotal: i64 = lines
            .iter()
            .map(|(product, quantity)| product.price.amount * quantity)
            .sum();
        let shipping_amount = method.as_ref().map_or(0, |method| {
            shipping::shipping_cost(subtotal, method.rate_amount, method.free_above_amount)
        });
        let Totals { tax, total, .. } = shipping::totals(
            subtotal,
            shipping_amount,
            tax_rate_bps,
            self.prices_include_tax,
        );
        // With a key, the id follows from (user, key, body): concurrent retries reserve
        // under one order id (reservations are idempotent by it) and only one insert wins.
        let order_id = match &key {
            Some(key) => derived_id(user_id, key, request_hash),
            None => souk_db::ids::new_id(),
        };
        let now = now_micros();
        let ttl_micros = i64::try_from(self.reservation_ttl.as_micros()).unwrap_or(i64::MAX / 4);
        // The stock reservations outlive the order's own deadline by a grace period, so
        // a payment accepted just before the deadline still finds them to commit.
        let reservation_ttl_ms = ttl_micros / 1000 + 60_000;
        let shipping_address = shipping_address
            .map(|address| serde_json::to_string(&address))
            .transpose()
            .map_err(Error::internal)?;
        let billing_address = billing_address
            .map(|address| serde_json::to_string(&address))
            .transpose()
            .map_err(Error::internal)?;
        let order = OrderRecord {
            id: order_id.clone(),
            user_id: user_id.to_owned(),
            status: OrderStatus::PendingPayment.as_str().to_owned(),
            was_paid: 0,
            currency: currency.clone(),
            total_amount: total,
            idempotency_key: key.map(str::to_owned),
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
            subtotal_amount: subtotal,
            shipping_amount,
            tax_amount: tax,
            tax_rate_bps,
            prices_include_tax: i64::from(self.prices_include_tax),
            shipping_method: method.as_ref().map(|method| method.code.clone()),
            shipping_method_name: method.as_ref().map(|method| method.name.clone()),
        };
        let line_records: Vec<LineRecord> = lines
            .iter()
            .enumerate()
            .map(|(index, (product, quantity))| LineRecord {
                order_id: order_id.clone(),
                line_no: index as i64 + 1,
                sku: product.sku.clone(),
                product_id: product.id.clone(),
                name: line_name(&product.name),
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
        let placed = Topic::OrderPlaced
            .event(&order_id, &OrderPlaced::of(&order, &line_records).payload())?;
        // Written with the reservation of its last line, in that line's commit, by the
        // node where that SKU's actor runs; over gRPC, by this node's writer afterwards.
        let new = NewOrder {
            order: order.clone(),
            lines: line_records.clone(),
            history: history.clone(),
            event: placed,
            max_unpaid: self.limits.max_unpaid_orders,
        };
        let hold = Hold {
            order_id: &order_id,
            user_id,
            ttl_ms: reservation_ttl_ms,
            max_units: self.limits.max_units_per_sku,
            keyed: key.is_some(),
        };
        // The lines to release should the order not be placed. With a key, a line found
        // reserved already is left out: it is the reservation of a concurrent or earlier
        // request with this key (the same order id), or, rarely, of this checkout's own
        // attempt whose answer was lost, which its TTL then releases.
        let mut reserved: Vec<(&str, i64)> = Vec::new();
        // With a key, the lines found reserved already: should the order be placed, they
        // are held again after it is stored (`hold_again`), since the request that made
        // them may release them on failing.
        let mut adopted: Vec<(&str, i64)> = Vec::new();
        // What became of the order handed to the last line's reservation.
        let mut placed: Option<Placed> = None;
        let mut placed_already = false;
        for (line, (product, quantity)) in lines.iter().enumerate() {
            let last = line + 1 == lines.len();
            let outcome = with_retries(|| {
                // Each attempt hands over the order afresh: a failed attempt's actor
                // dropped it unwritten.
                let place = match last {
                    true => {
                        let (place, told) = Placement::of(new.clone());
                        placed = Some(told);
                        place
                    }
                    false => Placement::default(),
                };
                self.inventory
                    .router()
                    .execute(product.sku.clone(), hold.reserve(*quantity, place))
            })
            .await;
            // A batch whose commit failed with an unknown outcome may have written the
            // reservation, and the order with it: then the order stands, whole.
            if let Err(error) = &outcome {
                if last && error.is_retryable() && self.stored_as_own(&order_id, user_id).await? {
                    placed_already = true;
                    break;
                }
            }
            if let Err(error) = outcome {
                // A line refused for good holds nothing. One that failed retryably may
                // have been reserved all the same (its answer lost, its commit's outcome
                // unknown): without a key the order id is this checkout's alone, so it
                // is released with the others. Not the last line, whose commit may yet
                // write the order with its reservation (the order's lookup above may
                // have come before it); nor with a key, where the reservation may be a
                // concurrent request's with this key. Their TTL releases those.
                if key.is_none() && error.is_retryable() && !last {
                    reserved.push((&product.sku, *quantity));
                }
                self.release_unplaced(&hold, &reserved, "order not placed: a line failed")
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
            match outcome {
                Ok(Outcome::AlreadyReserved) if key.is_some() => {
                    adopted.push((&product.sku, *quantity))
                }
                _ => reserved.push((&product.sku, *quantity)),
            }
        }
        let written = match placed.and_then(Placed::outcome) {
            Some(written) => written,
            None if placed_already => Ok(()),
            None => self.writer.insert_order(new).await,
        };
        match written {
            Ok(()) => {}
            // With a key, a refused insert means a concurrent request or an earlier one
            // with the same key placed it; so may a refusal by the cap, which counted
            // that order. What this checkout reserved is the stored order's only while
            // that order is this one, waiting for its payment.
            Err(refusal @ (DbError::UniqueViolation { .. } | DbError::UnpaidOrderLimit { .. }))
                if key.is_some() =>
            {
                let key = key.unwrap_or_default();
                let Some(existing) = orders::find_by_key(self.db.pool(), user_id, key).await?
                else {
                    self.release_unplaced(&hold, &reserved, "order not placed: refused")
                        .await;
                    return Err(match refusal {
                        DbError::UnpaidOrderLimit { limit } => unpaid_order_limit(limit),
                        _ => Error::internal("idempotent order vanished"),
                    });
                };
                let holds_these = existing.id == order_id
                    && existing.status == OrderStatus::PendingPayment.as_str();
                if !holds_these {
                    self.release_unplaced(&hold, &reserved, "duplicate request")
                        .await;
                }
                return self.replay(existing, request_hash).await;
            }
            // Without a key the id is this checkout's own: the order was written by an
            // earlier attempt of the last line whose answer came too late to count (the
            // insert was refused, or the cap counted the order itself).
            Err(DbError::UniqueViolation { .. } | DbError::UnpaidOrderLimit { .. })
                if self.stored_as_own(&order_id, user_id).await? => {}
            Err(DbError::UnpaidOrderLimit { limit }) => {
                self.release_unplaced(&hold, &reserved, "order not placed: unpaid-order limit")
                    .await;
                return Err(unpaid_order_limit(limit));
            }
            Err(error) => {
                self.release_unplaced(&hold, &reserved, "order not placed: storage failed")
                    .await;
                return Err(error.into());
            }
        }
        self.hold_again(&hold, &adopted).await;
        tracing::info!(order_id = %order_id, total, shipping_amount, tax, "order placed");
        // The answer is what was just written: nothing to read back.
        let parts = OrderParts {
            lines: line_records,
            history: vec![history],
            ..OrderParts::default()
        };
        Ok((build_view(order, parts)?, true))
    }

    /// Whether this user's order `order_id` is stored: a checkout's own order, written
    /// by an attempt whose answer was lost.
    async fn stored_as_own(&self, order_id: &str, user_id: &str) -> Result<bool, Error> {
        Ok(orders::find(self.db.pool(), order_id)
            .await?
            .is_some_and(|stored| stored.user_id == user_id))
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
}

/// The refusal of an order past its customer's cap on unpaid orders.
fn unpaid_order_limit(limit: u32) -> Error {
    Error::new(
        ErrorCode::UnpaidOrderLimit,
        format!("a customer may have at most {limit} unpaid orders; pay or cancel one first"),
    )
}

/// A checkout's request, validated, and the hash its `Idempotency-Key` is bound to.
struct Checkout {
    items: MergedItems,
    shipping_id: Option<String>,
    billing_id: Option<String>,
    method_code: Option<String>,
    request_hash: String,
}

/// Characters an order line's name keeps: the width of `order_lines.name`.
const LINE_NAME_CHARS: usize = 200;

/// The name an order line stores: a variant's name (its product's name and its option
/// values, up to about 500 characters) is cut to the column, ending in an ellipsis.
fn line_name(name: &str) -> String {
    if name.chars().count() <= LINE_NAME_CHARS {
        return name.to_owned();
    }
    let mut cut: String = name.chars().take(LINE_NAME_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// What an `Idempotency-Key` is bound to: the merged items and, when any is named, the
/// address ids and the shipping method (an order without addresses hashes as it did
/// before they existed, and one without a method as it did before methods existed).
fn request_hash(
    items: &[(String, i64)],
    shipping_id: Option<&str>,
    billing_id: Option<&str>,
    shipping_method: Option<&str>,
) -> Result<String, Error> {
    let body = match (shipping_id, billing_id, shipping_method) {
        (None, None, None) => serde_json::to_vec(items),
        (_, _, None) => serde_json::to_vec(&serde_json::json!({
            "items": items,
            "shipping_address_id": shipping_id,
            "billing_address_id": billing_id,
        })),
        (_, _, Some(method)) => serde_json::to_vec(&serde_json::json!({
            "items": items,
            "shipping_address_id": shipping_id,
            "billing_address_id": billing_id,
            "shipping_method": method,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_name_fits_its_column() {
        assert_eq!(line_name("Mug (Blue / Large)"), "Mug (Blue / Large)");
        let variant = format!(
            "{} ({} / {})",
            "é".repeat(200),
            "x".repeat(100),
            "y".repeat(100)
        );
        let stored = line_name(&variant);
        assert_eq!(stored.chars().count(), LINE_NAME_CHARS);
        assert!(stored.starts_with("éé") && stored.ends_with('…'));
    }

    fn sha(body: &[u8]) -> String {
        hex::encode(Sha256::digest(body))
    }

    /// Keys stored before addresses and methods existed still replay: an order without
    /// them hashes its items alone, and one with addresses but no method as it did
    /// before methods existed.
    #[test]
    fn the_hash_covers_the_method_only_when_one_is_named() {
        let items = vec![("SKU-1".to_owned(), 2)];
        assert_eq!(
            request_hash(&items, None, None, None).unwrap(),
            sha(br#"[["SKU-1",2]]"#)
        );
        assert_eq!(
            request_hash(&items, Some("a"), Some("a"), None).unwrap(),
            sha(br#"{"billing_address_id":"a","items":[["SKU-1",2]],"shipping_address_id":"a"}"#)
        );
        let with_method = request_hash(&items, Some("a"), Some("a"), Some("express")).unwrap();
        assert_ne!(
            with_method,
            request_hash(&items, Some("a"), Some("a"), None).unwrap()
        );
        assert_ne!(
            with_method,
            request_hash(&items, Some("a"), Some("a"), Some("standard")).unwrap()
        );
    }
}
