//! The inventory repository. Only a SKU's actor writes, through the node writer
//! ([`crate::node_writer`]), which commits the batches of many SKUs together with
//! [`write_parts`]: each batch fenced on its own on the version its actor loaded and on
//! its owner epoch (see [`crate::fence`]).

use sqlx::{Any, AnyConnection, Executor, FromRow, QueryBuilder};

use crate::clock::Micros;
use crate::outbox::{self, OutboxEvent};
use crate::shapes::{padded, pieces, MAX_ROWS};
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ItemRecord {
    pub sku: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub low_stock_threshold: i64,
    pub version: i64,
    pub updated_at: Micros,
    /// The epoch of the owner that claimed the row last (0 when never clustered). A
    /// batch writes its actor's epoch here and requires the stored one to be no higher.
    pub owner_epoch: i64,
}

/// The columns of an [`ItemRecord`], in its order.
const ITEM_COLUMNS: &str =
    "sku, on_hand, reserved, low_stock_threshold, version, updated_at, owner_epoch";

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ReservationRecord {
    pub sku: String,
    pub order_id: String,
    pub quantity: i64,
    pub expires_at: Micros,
    pub created_at: Micros,
    /// The customer whose unpaid order holds it.
    pub customer_id: Option<String>,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct MovementRecord {
    pub id: String,
    pub sku: String,
    /// `adjustment`, `reservation`, `release`, `sale`, `expiry`.
    pub kind: String,
    pub delta_on_hand: i64,
    pub delta_reserved: i64,
    pub order_id: Option<String>,
    /// Who: a user id, `system`, or `order:<id>`.
    pub actor: String,
    pub reason: String,
    pub version: i64,
    pub created_at: Micros,
    /// The Idempotency-Key of the admin's change this movement records, if sent.
    pub request_key: Option<String>,
}

/// Everything one batch changes, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub item: Option<ItemRecord>,
    /// The version the actor loaded; `None` when the row did not exist.
    pub expected_version: Option<i64>,
    pub new_reservations: Vec<ReservationRecord>,
    pub removed_reservations: Vec<String>,
    pub movements: Vec<MovementRecord>,
    pub events: Vec<OutboxEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Another owner wrote since this one loaded: it must stop.
    #[error("fenced: the item changed under another owner")]
    Fenced,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for BatchError {
    fn from(error: sqlx::Error) -> Self {
        BatchError::Db(error.into())
    }
}

pub async fn load_item(
    connection: &mut AnyConnection,
    sku: &str,
) -> Result<Option<ItemRecord>, DbError> {
    Ok(sqlx::query_as::<_, ItemRecord>(&format!(
        "SELECT {ITEM_COLUMNS} FROM inventory_items WHERE sku = ?"
    ))
    .bind(sku)
    .fetch_optional(&mut *connection)
    .await?)
}

pub async fn load_reservations(
    connection: &mut AnyConnection,
    sku: &str,
) -> Result<Vec<ReservationRecord>, DbError> {
    Ok(sqlx::query_as::<_, ReservationRecord>(
        "SELECT sku, order_id, quantity, expires_at, created_at, customer_id FROM inventory_reservations WHERE sku = ? ORDER BY order_id",
    )
    .bind(sku)
    .fetch_all(&mut *connection)
    .await?)
}

/// SKUs holding a reservation whose time ran out by `now`, at most `limit` of them.
pub async fn skus_with_lapsed_reservations<'e, E>(
    executor: E,
    now: Micros,
    limit: u32,
) -> Result<Vec<String>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    crate::keys_due(
        executor,
        "SELECT DISTINCT sku FROM inventory_reservations WHERE expires_at <= ? ORDER BY sku LIMIT ?",
        now,
        limit,
    )
    .await
}

/// What the ledger of `sku` holds of a batch's idempotent commands, read before the
/// batch applies them: of `order_ids`, each `sale` and `return` movement as (order id,
/// kind), and which of `request_keys` (admins' keyed changes) it holds. One query for
/// each list (per [`crate::MAX_IN_LIST`] values), not one per command.
pub async fn recorded_for_batch(
    connection: &mut AnyConnection,
    sku: &str,
    order_ids: &[&str],
    request_keys: &[&str],
) -> Result<(Vec<(String, String)>, Vec<String>), DbError> {
    let movements = crate::rows_in_pieces(connection, order_ids, |builder| {
        builder.push("SELECT order_id, kind FROM inventory_movements WHERE sku = ");
        builder.push_bind(sku.to_owned());
        builder.push(" AND kind IN ('sale', 'return') AND order_id IN (");
    })
    .await?;
    let requests: Vec<(String,)> = crate::rows_in_pieces(connection, request_keys, |builder| {
        builder.push("SELECT request_key FROM inventory_movements WHERE sku = ");
        builder.push_bind(sku.to_owned());
        builder.push(" AND request_key IN (");
    })
    .await?;
    Ok((movements, requests.into_iter().map(|(key,)| key).collect()))
}

/// Items of one multi-row `UPDATE` at most, a power of two (each binds seventeen
/// parameters).
const UPDATE_ITEMS: usize = 256;

/// Writes the batches of many SKUs in the caller's transaction, each fenced on its
/// own: its item row is written only if it still holds the version the batch's actor
/// loaded (or, new, does not exist yet) and no later owner claimed it, and only then
/// are its reservations, ledger rows and events written. Answers, per batch, whether
/// it was written (`false`: fenced); an error means the transaction must be dropped.
///
/// The item rows of several batches are written by one `UPDATE` per
/// [`UPDATE_ITEMS`], inside a savepoint; should any of them be fenced, the savepoint
/// is rolled back and each row written alone to find which.
pub async fn write_parts(
    transaction: &mut AnyConnection,
    batches: &[&Batch],
) -> Result<Vec<bool>, DbError> {
    let mut written = vec![true; batches.len()];
    let updates: Vec<usize> = (0..batches.len())
        .filter(|&index| batches[index].item.is_some() && batches[index].expected_version.is_some())
        .collect();
    for chunk in updates.chunks(UPDATE_ITEMS) {
        if chunk.len() > 1 {
            let mut savepoint = sqlx::Connection::begin(&mut *transaction).await?;
            let items: Vec<(&ItemRecord, i64)> = chunk
                .iter()
                .filter_map(|&index| {
                    let batch = batches[index];
                    Some((batch.item.as_ref()?, batch.expected_version?))
                })
                .collect();
            if update_items(&mut savepoint, &padded(&items)).await? == chunk.len() as u64 {
                savepoint.commit().await?;
                continue;
            }
            savepoint.rollback().await?;
        }
        for &index in chunk {
            let batch = batches[index];
            if let (Some(item), Some(expected)) = (&batch.item, batch.expected_version) {
                written[index] = update_items(&mut *transaction, &[(item, expected)]).await? == 1;
            }
        }
    }
    for (index, batch) in batches.iter().enumerate() {
        let (Some(item), None) = (&batch.item, batch.expected_version) else {
            continue;
        };
        // A row that exists already was created by another owner since this one
        // loaded: a failed statement, not a failed transaction, on both engines.
        let inserted = sqlx::query(&format!(
            "INSERT INTO inventory_items ({ITEM_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&item.sku)
        .bind(item.on_hand)
        .bind(item.reserved)
        .bind(item.low_stock_threshold)
        .bind(item.version)
        .bind(item.updated_at)
        .bind(item.owner_epoch)
        .execute(&mut *transaction)
        .await;
        match inserted.map_err(DbError::from) {
            Ok(_) => {}
            Err(DbError::UniqueViolation { .. }) => written[index] = false,
            Err(other) => return Err(other),
        }
    }
    let landed: Vec<&Batch> = batches
        .iter()
        .zip(&written)
        .filter(|(_, written)| **written)
        .map(|(batch, _)| *batch)
        .collect();
    for batch in &landed {
        let Some(item) = &batch.item else {
            continue;
        };
        for order_ids in pieces(&batch.removed_reservations, MAX_ROWS) {
            let mut builder =
                QueryBuilder::<Any>::new("DELETE FROM inventory_reservations WHERE sku = ");
            builder
                .push_bind(item.sku.clone())
                .push(" AND order_id IN (");
            let mut separated = builder.separated(", ");
            for order_id in order_ids {
                separated.push_bind(order_id.clone());
            }
            builder.push(")");
            builder.build().execute(&mut *transaction).await?;
        }
    }
    let reservations: Vec<&ReservationRecord> = landed
        .iter()
        .flat_map(|batch| &batch.new_reservations)
        .collect();
    for chunk in pieces(&reservations, MAX_ROWS) {
        let mut builder = QueryBuilder::<Any>::new(
            "INSERT INTO inventory_reservations (sku, order_id, quantity, expires_at, created_at, customer_id) ",
        );
        builder.push_values(chunk, |mut values, reservation| {
            values
                .push_bind(reservation.sku.clone())
                .push_bind(reservation.order_id.clone())
                .push_bind(reservation.quantity)
                .push_bind(reservation.expires_at)
                .push_bind(reservation.created_at)
                .push_bind(reservation.customer_id.clone());
        });
        builder.build().execute(&mut *transaction).await?;
    }
    let movements: Vec<&MovementRecord> =
        landed.iter().flat_map(|batch| &batch.movements).collect();
    for chunk in pieces(&movements, MAX_ROWS) {
        let mut builder = QueryBuilder::<Any>::new(
            "INSERT INTO inventory_movements (id, sku, kind, delta_on_hand, delta_reserved, order_id, actor, reason, version, created_at, request_key) ",
        );
        builder.push_values(chunk, |mut values, movement| {
            values
                .push_bind(movement.id.clone())
                .push_bind(movement.sku.clone())
                .push_bind(movement.kind.clone())
                .push_bind(movement.delta_on_hand)
                .push_bind(movement.delta_reserved)
                .push_bind(movement.order_id.clone())
                .push_bind(movement.actor.clone())
                .push_bind(movement.reason.clone())
                .push_bind(movement.version)
                .push_bind(movement.created_at)
                .push_bind(movement.request_key.clone());
        });
        builder.build().execute(&mut *transaction).await?;
    }
    let events: Vec<&OutboxEvent> = landed.iter().flat_map(|batch| &batch.events).collect();
    for chunk in pieces(&events, MAX_ROWS) {
        outbox::append_all(&mut *transaction, chunk).await?;
    }
    Ok(written)
}

/// Reads one column of an item row.
type ItemColumn = fn(&ItemRecord) -> i64;

/// Writes item rows, each only where it still holds its expected version and no
/// later owner claimed it; answers how many were written.
async fn update_items(
    connection: &mut AnyConnection,
    items: &[(&ItemRecord, i64)],
) -> Result<u64, DbError> {
    let mut builder = QueryBuilder::<Any>::new("UPDATE inventory_items SET ");
    let columns: [(&str, ItemColumn); 6] = [
        ("on_hand", |item| item.on_hand),
        ("reserved", |item| item.reserved),
        ("low_stock_threshold", |item| item.low_stock_threshold),
        ("version", |item| item.version),
        ("updated_at", |item| item.updated_at),
        ("owner_epoch", |item| item.owner_epoch),
    ];
    for (position, (column, value)) in columns.iter().enumerate() {
        if position > 0 {
            builder.push(", ");
        }
        builder.push(format!("{column} = CASE sku"));
        for (item, _) in items {
            builder.push(" WHEN ").push_bind(item.sku.clone());
            builder.push(" THEN ").push_bind(value(item));
        }
        builder.push(" END");
    }
    builder.push(" WHERE sku IN (");
    let mut separated = builder.separated(", ");
    for (item, _) in items {
        separated.push_bind(item.sku.clone());
    }
    builder.push(") AND version = CASE sku");
    for (item, expected) in items {
        builder.push(" WHEN ").push_bind(item.sku.clone());
        builder.push(" THEN ").push_bind(*expected);
    }
    builder.push(" END AND owner_epoch <= CASE sku");
    for (item, _) in items {
        builder.push(" WHEN ").push_bind(item.sku.clone());
        builder.push(" THEN ").push_bind(item.owner_epoch);
    }
    builder.push(" END");
    Ok(builder
        .build()
        .execute(&mut *connection)
        .await?
        .rows_affected())
}

/// The ledger of a SKU, oldest first.
pub async fn movements<'e, E>(executor: E, sku: &str) -> Result<Vec<MovementRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, MovementRecord>(
        "SELECT id, sku, kind, delta_on_hand, delta_reserved, order_id, actor, reason, version, created_at, request_key \
         FROM inventory_movements WHERE sku = ? ORDER BY id",
    )
    .bind(sku)
    .fetch_all(executor)
    .await?)
}

/// A page of items in SKU order; `low_stock` keeps those whose available stock is under
/// their threshold. `limit + 1` rows at most.
pub async fn list_items<'e, E>(
    executor: E,
    low_stock: bool,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ItemRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, ItemRecord>(&format!(
        "SELECT {ITEM_COLUMNS} FROM inventory_items \
         WHERE (? = 0 OR (low_stock_threshold > 0 AND on_hand - reserved < low_stock_threshold)) \
           AND (? IS NULL OR sku > ?) ORDER BY sku LIMIT ?"
    ))
    .bind(i64::from(low_stock))
    .bind(after)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(executor)
    .await?)
}

/// Available units (`on_hand - reserved`) of the SKUs that have stock rows, however
/// many SKUs are asked (read in pieces of `MAX_IN_LIST`).
pub async fn available_for(
    connection: &mut AnyConnection,
    skus: &[String],
) -> Result<Vec<(String, i64)>, DbError> {
    crate::rows_in_pieces(connection, skus, |builder| {
        builder.push("SELECT sku, on_hand - reserved FROM inventory_items WHERE sku IN (");
    })
    .await
}

/// A page of a SKU's ledger, oldest first, after the movement id `after`.
pub async fn movements_page<'e, E>(
    executor: E,
    sku: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<MovementRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, MovementRecord>(
        "SELECT id, sku, kind, delta_on_hand, delta_reserved, order_id, actor, reason, version, created_at, request_key \
         FROM inventory_movements WHERE sku = ? AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?",
    )
    .bind(sku)
    .bind(after)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(executor)
    .await?)
}

/// Which SKUs the stock overview keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StockFilter {
    #[default]
    All,
    /// Available under a (non-zero) low-stock threshold.
    Low,
    /// Nothing available.
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StockSort {
    #[default]
    Sku,
    Name,
    OnHand,
    Reserved,
    Available,
}

/// A page of the stock overview: every product of the catalog with its stock (zero
/// when it never had any), filtered, sorted and paged by offset.
#[derive(Debug, Clone, Default)]
pub struct StockOverviewQuery {
    /// Kept when the SKU or the name contains it (case-insensitive).
    pub text: Option<String>,
    pub filter: StockFilter,
    pub sort: StockSort,
    pub descending: bool,
    pub offset: u32,
    pub limit: u32,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct StockOverviewRow {
    pub sku: String,
    pub name: String,
    /// The product's status: draft, active or archived.
    pub status: String,
    pub on_hand: i64,
    pub reserved: i64,
    pub low_stock_threshold: i64,
    pub version: i64,
}

/// `%` and `_` match themselves in `text`; `!` is the escape character.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for character in text.to_lowercase().chars() {
        if matches!(character, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

/// The overview page, one row per SKU that sells (a product's own, or each of its
/// variants'); `limit + 1` rows at most, so the caller knows if more follow.
pub async fn stock_overview<'e, E>(
    executor: E,
    query: &StockOverviewQuery,
) -> Result<Vec<StockOverviewRow>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let filter = match query.filter {
        StockFilter::All => "1 = 1",
        StockFilter::Low => {
            "COALESCE(i.low_stock_threshold, 0) > 0 \
             AND COALESCE(i.on_hand, 0) - COALESCE(i.reserved, 0) < i.low_stock_threshold"
        }
        StockFilter::Out => "COALESCE(i.on_hand, 0) - COALESCE(i.reserved, 0) <= 0",
    };
    let order = match query.sort {
        StockSort::Sku => "c.sku",
        StockSort::Name => "p.name",
        StockSort::OnHand => "COALESCE(i.on_hand, 0)",
        StockSort::Reserved => "COALESCE(i.reserved, 0)",
        StockSort::Available => "COALESCE(i.on_hand, 0) - COALESCE(i.reserved, 0)",
    };
    let direction = if query.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT c.sku, p.name, p.status, COALESCE(i.on_hand, 0) AS on_hand, \
           COALESCE(i.reserved, 0) AS reserved, COALESCE(i.low_stock_threshold, 0) AS low_stock_threshold, \
           COALESCE(i.version, 0) AS version \
         FROM catalog_skus c JOIN products p ON p.id = c.product_id \
           LEFT JOIN inventory_items i ON i.sku = c.sku \
         WHERE (c.sku <> p.sku OR NOT EXISTS (SELECT 1 FROM product_variants v WHERE v.product_id = p.id)) \
           AND (? IS NULL OR LOWER(c.sku) LIKE ? ESCAPE '!' OR LOWER(p.name) LIKE ? ESCAPE '!') AND {filter} \
         ORDER BY {order} {direction}, c.sku {direction} LIMIT ? OFFSET ?"
    );
    let pattern = query.text.as_deref().map(contains_pattern);
    Ok(sqlx::query_as::<_, StockOverviewRow>(&sql)
        .bind(pattern.clone())
        .bind(pattern.clone())
        .bind(pattern)
        .bind(i64::from(query.limit) + 1)
        .bind(i64::from(query.offset))
        .fetch_all(executor)
        .await?)
}
