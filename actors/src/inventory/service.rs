//! Inventory for admins: stock levels, adjustments and the ledger. Every change goes
//! through the SKU's actor (via the router); reads of lists come from the stock rows,
//! which only the actors write.

use serde::Serialize;
use souk_db::clock::to_datetime;
use souk_db::inventory::{self, ItemRecord, MovementRecord, StockOverviewQuery, StockOverviewRow};
use souk_db::Db;
use utoipa::ToSchema;

pub use super::stock::OnHandChange;
use super::{
    Command, CommittedReceiver, InventoryError, InventoryRouter, SkuRouter, Stock, StockError,
    StockFeed,
};
use crate::catalog::model::parse_sku;
use crate::catalog::CatalogService;
use crate::error::{Error, ErrorCode, FieldError};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReservationView {
    pub order_id: String,
    pub quantity: i64,
    /// RFC 3339, UTC.
    pub expires_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StockView {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub available: i64,
    pub low_stock_threshold: i64,
    /// Bumped by every committed change; 0 before the first.
    pub version: i64,
    /// Open reservations (detail view only; empty in lists).
    pub reservations: Vec<ReservationView>,
}

impl From<Stock> for StockView {
    fn from(stock: Stock) -> Self {
        Self {
            available: stock.available(),
            reservations: stock
                .reservations
                .iter()
                .map(|(order_id, held)| ReservationView {
                    order_id: order_id.clone(),
                    quantity: held.quantity,
                    expires_at: to_datetime(held.expires_at).to_rfc3339(),
                })
                .collect(),
            version: stock.version.unwrap_or(0),
            sku: stock.sku,
            on_hand: stock.on_hand,
            reserved: stock.reserved,
            low_stock_threshold: stock.low_stock_threshold,
        }
    }
}

impl From<ItemRecord> for StockView {
    fn from(item: ItemRecord) -> Self {
        Self {
            available: item.on_hand - item.reserved,
            sku: item.sku,
            on_hand: item.on_hand,
            reserved: item.reserved,
            low_stock_threshold: item.low_stock_threshold,
            version: item.version,
            reservations: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MovementView {
    pub id: String,
    /// `adjustment`, `reservation`, `release`, `sale` or `expiry`.
    pub kind: String,
    pub delta_on_hand: i64,
    pub delta_reserved: i64,
    pub order_id: Option<String>,
    /// Who: `admin:<user id>`, `order:<id>` or `system`.
    pub actor: String,
    pub reason: String,
    pub version: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
}

impl From<MovementRecord> for MovementView {
    fn from(movement: MovementRecord) -> Self {
        Self {
            created_at: to_datetime(movement.created_at).to_rfc3339(),
            id: movement.id,
            kind: movement.kind,
            delta_on_hand: movement.delta_on_hand,
            delta_reserved: movement.delta_reserved,
            order_id: movement.order_id,
            actor: movement.actor,
            reason: movement.reason,
            version: movement.version,
        }
    }
}

const MAX_DELTA: i64 = 1_000_000_000;

/// Checks an admin adjustment before it reaches the SKU's actor; returns the trimmed
/// reason.
pub fn validate_adjustment(
    delta: i64,
    reason: &str,
    low_stock_threshold: Option<i64>,
) -> Result<String, Error> {
    let mut errors = Vec::new();
    // A range check, not `abs()`: `i64::MIN.abs()` overflows.
    if !(-MAX_DELTA..=MAX_DELTA).contains(&delta) {
        errors.push(FieldError::new(
            "delta",
            format!("must be between -{MAX_DELTA} and {MAX_DELTA}"),
        ));
    }
    if delta == 0 && low_stock_threshold.is_none() {
        errors.push(FieldError::new(
            "delta",
            "must not be 0 unless low_stock_threshold changes",
        ));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        errors.push(FieldError::new("reason", "must be 1 to 200 characters"));
    }
    if low_stock_threshold.is_some_and(|threshold| !(0..=MAX_DELTA).contains(&threshold)) {
        errors.push(FieldError::new(
            "low_stock_threshold",
            format!("must be between 0 and {MAX_DELTA}"),
        ));
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    Ok(reason.to_owned())
}

/// Maps the actors' refusals and failures to API errors. A retryable failure is a 503
/// with a pause to retry after: the restart's backoff rounded up to whole seconds, else
/// one second.
pub fn api_error(error: InventoryError) -> Error {
    match error {
        InventoryError::Stock(StockError::Insufficient { available }) => Error::new(
            ErrorCode::InsufficientStock,
            format!("only {available} available"),
        ),
        InventoryError::Stock(StockError::CustomerLimit { limit, allowed }) => Error::new(
            ErrorCode::PurchaseLimit,
            format!("a customer may hold at most {limit} units in unpaid orders; {allowed} more allowed"),
        ),
        InventoryError::Stock(StockError::BelowReserved { reserved }) => Error::new(
            ErrorCode::BelowReserved,
            format!("on_hand cannot go below the {reserved} reserved units"),
        ),
        InventoryError::Stock(other) => Error::new(ErrorCode::ValidationFailed, other.to_string()),
        InventoryError::Unreachable(detail) => Error::new(
            ErrorCode::DependencyUnavailable,
            format!("the inventory service is unreachable: {detail}"),
        ),
        retryable => {
            tracing::warn!(error = %retryable, "inventory unavailable");
            let retry_after_secs = match &retryable {
                InventoryError::Restarting { retry_after_ms } => retry_after_ms.div_ceil(1000),
                _ => 1,
            };
            Error::unavailable_retry_after(
                ErrorCode::ServiceUnavailable,
                format!("inventory: {retryable}; retry"),
                retry_after_secs,
            )
        }
    }
}

/// One admin action on a SKU's stock.
#[derive(Debug, Clone)]
pub struct StockChange {
    pub on_hand: OnHandChange,
    /// Why, for the ledger (validated by [`validate_adjustment`]).
    pub reason: String,
    pub low_stock_threshold: Option<i64>,
    /// The admin's Idempotency-Key: the change is applied once per key and SKU.
    pub request_key: Option<String>,
}

#[derive(Clone)]
pub struct InventoryService {
    db: Db,
    router: SkuRouter,
    catalog: CatalogService,
    feed: Option<StockFeed>,
}

impl InventoryService {
    pub fn new(db: Db, router: SkuRouter, catalog: CatalogService) -> Self {
        Self {
            db,
            router,
            catalog,
            feed: None,
        }
    }

    /// The same service, reaching the SKU actors through `router`.
    pub fn with_router(&self, router: SkuRouter) -> Self {
        Self {
            router,
            ..self.clone()
        }
    }

    /// The feed the SKU actors of this process announce committed batches on.
    pub fn with_feed(mut self, feed: StockFeed) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Every batch committed from now on by the SKU actors of this process; `None` when
    /// they run elsewhere (split services).
    pub fn committed(&self) -> Option<CommittedReceiver> {
        self.feed.as_ref().map(StockFeed::subscribe)
    }

    pub fn router(&self) -> &SkuRouter {
        &self.router
    }

    /// One pass of the sweep of lapsed reservations ([`super::lapsed`]).
    pub async fn release_lapsed(&self) -> Result<usize, InventoryError> {
        super::lapsed::release_lapsed(&self.db, self.router.as_ref()).await
    }

    /// The SKU if the catalog has a product with it (of any status): admins stock only
    /// what the catalog sells. An unknown SKU is `not_found`; a catalog that cannot be
    /// read is its own error (503 or 500), never a 404.
    pub async fn known_sku(&self, raw: &str) -> Result<String, Error> {
        let sku = parse_sku(raw).map_err(|_| Error::not_found("sku"))?;
        match self.catalog.get_product_by_sku(&sku, true).await {
            Ok(_) => Ok(sku),
            Err(error) if error.code() == ErrorCode::NotFound => Err(Error::not_found("sku")),
            Err(error) => Err(error),
        }
    }

    pub async fn stock(&self, sku: &str) -> Result<StockView, Error> {
        self.router
            .stock(sku.to_owned())
            .await
            .map(StockView::from)
            .map_err(api_error)
    }

    /// Applies a change of on_hand (and optionally a new threshold) as one admin action:
    /// the threshold is set first, so a change that crosses it is announced, and put
    /// back if the change is refused, so a refused action changes nothing.
    #[tracing::instrument(name = "adjust_stock", skip(self, change),
        fields(on_hand = ?change.on_hand, keyed = change.request_key.is_some()))]
    pub async fn adjust(
        &self,
        sku: &str,
        change: StockChange,
        admin_id: &str,
    ) -> Result<StockView, Error> {
        let actor = format!("admin:{admin_id}");
        let StockChange {
            on_hand,
            reason,
            low_stock_threshold,
            request_key,
        } = change;
        let command = match (on_hand, request_key) {
            (OnHandChange::By(0), _) => None,
            (on_hand, Some(request_key)) => Some(Command::KeyedChange {
                request_key,
                on_hand,
                actor: actor.clone(),
                reason,
            }),
            (OnHandChange::By(delta), None) => Some(Command::Adjust {
                delta,
                actor: actor.clone(),
                reason,
            }),
            (OnHandChange::To(on_hand), None) => Some(Command::SetOnHand {
                on_hand,
                actor: actor.clone(),
                reason,
            }),
        };
        let mut threshold_before = None;
        if let Some(threshold) = low_stock_threshold {
            if command.is_some() {
                threshold_before = Some(self.stock(sku).await?.low_stock_threshold);
            }
            self.set_threshold(sku, threshold, &actor).await?;
        }
        if let Some(command) = command {
            let adjusted = self
                .router
                .execute(sku.to_owned(), command)
                .await
                .map_err(api_error);
            if let Err(refused) = adjusted {
                if let Some(before) = threshold_before {
                    if let Err(error) = self.set_threshold(sku, before, &actor).await {
                        tracing::warn!(%sku, %error, "cannot put the threshold back after a refused adjustment");
                    }
                }
                return Err(refused);
            }
        }
        self.stock(sku).await
    }

    async fn set_threshold(&self, sku: &str, threshold: i64, actor: &str) -> Result<(), Error> {
        self.router
            .execute(
                sku.to_owned(),
                Command::SetThreshold {
                    threshold,
                    actor: actor.to_owned(),
                },
            )
            .await
            .map(|_| ())
            .map_err(api_error)
    }

    pub async fn list(
        &self,
        low_stock: bool,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ItemRecord>, Error> {
        Ok(inventory::list_items(self.db.pool(), low_stock, after, limit).await?)
    }

    pub async fn movements(
        &self,
        sku: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<MovementRecord>, Error> {
        Ok(inventory::movements_page(self.db.pool(), sku, after, limit).await?)
    }

    /// Every catalog SKU with its stock, for the admin console's table.
    pub async fn overview(
        &self,
        query: &StockOverviewQuery,
    ) -> Result<Vec<StockOverviewRow>, Error> {
        Ok(inventory::stock_overview(self.db.pool(), query).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retryable_failure_says_when_to_retry() {
        let cases = [
            (InventoryError::Fenced, 1),
            (InventoryError::Unavailable("pool timed out".into()), 1),
            (InventoryError::Restarting { retry_after_ms: 1 }, 1),
            (
                InventoryError::Restarting {
                    retry_after_ms: 1_000,
                },
                1,
            ),
            (
                InventoryError::Restarting {
                    retry_after_ms: 1_001,
                },
                2,
            ),
            (InventoryError::Restarting { retry_after_ms: 0 }, 1),
        ];
        for (error, seconds) in cases {
            let mapped = api_error(error.clone());
            assert_eq!(mapped.code(), ErrorCode::ServiceUnavailable, "{error}");
            assert_eq!(mapped.retry_after_secs(), Some(seconds), "{error}");
        }
    }

    #[test]
    fn a_refusal_has_no_pause() {
        let mapped = api_error(InventoryError::Stock(StockError::Insufficient {
            available: 2,
        }));
        assert_eq!(mapped.code(), ErrorCode::InsufficientStock);
        assert_eq!(mapped.retry_after_secs(), None);
    }
}
