//! The orders repository: orders with their snapshotted lines and status history.
//! Status changes are conditional on the version read and on the owner epoch
//! (`transition`, see [`crate::fence`]), so two concurrent transitions of one order
//! cannot both apply, and a node that lost the order's shard cannot apply any.

use std::borrow::Borrow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Executor, FromRow, QueryBuilder};

use crate::clock::Micros;
use crate::fence::{self, FencedRow};
use crate::outbox::{self, OutboxEvent};
use crate::shapes::{padded, pieces, MAX_ROWS};
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub id: String,
    pub user_id: String,
    pub status: String,
    /// 1 once payment was captured (even if later cancelled and refunded).
    pub was_paid: i64,
    pub currency: String,
    pub total_amount: i64,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub payment_reference: Option<String>,
    pub expires_at: Micros,
    /// 0 until the stock effect of the last transition is done.
    pub stock_settled: i64,
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
    /// The epoch of the owner that claimed the row last (0 when never clustered).
    pub owner_epoch: i64,
    /// The shipping address as it was at checkout (JSON), if one was given.
    pub shipping_address: Option<String>,
    /// The billing address as it was at checkout (JSON), if one was given.
    pub billing_address: Option<String>,
    /// The sum of the lines.
    pub subtotal_amount: i64,
    /// What shipping cost (0 without a method, or free above its threshold).
    pub shipping_amount: i64,
    /// The tax in the total: included in it, or added to it (`prices_include_tax`).
    pub tax_amount: i64,
    /// The shipping country's rate at checkout, in basis points (0: none).
    pub tax_rate_bps: i64,
    /// 1 when catalog prices (and shipping rates) included tax at checkout.
    pub prices_include_tax: i64,
    /// The shipping method's code and name at checkout, if one was chosen.
    pub shipping_method: Option<String>,
    pub shipping_method_name: Option<String>,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRecord {
    pub order_id: String,
    pub line_no: i64,
    pub sku: String,
    pub product_id: String,
    pub name: String,
    pub unit_amount: i64,
    pub quantity: i64,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub id: String,
    pub order_id: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor: String,
    pub reason: String,
    pub created_at: Micros,
}

const ORDER_COLUMNS: &str =
    "id, user_id, status, was_paid, currency, total_amount, idempotency_key, request_hash, \
     payment_reference, expires_at, stock_settled, version, created_at, updated_at, owner_epoch, \
     shipping_address, billing_address, subtotal_amount, shipping_amount, tax_amount, \
     tax_rate_bps, prices_include_tax, shipping_method, shipping_method_name";

/// Bound parameters of one order's row in the multi-row insert: one per column of
/// `ORDER_COLUMNS`.
pub const ORDER_PARAMETERS: usize = 24;
const _: () = assert!(MAX_ROWS * ORDER_PARAMETERS <= 32_766);

/// An order as placed: the row, its lines, its first history entry and its
/// `order.placed` event, and the cap on its customer's unpaid orders that the node
/// writer checks in the commit that would write it (`None`: no cap).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewOrder {
    pub order: OrderRecord,
    pub lines: Vec<LineRecord>,
    pub history: HistoryRecord,
    pub event: OutboxEvent,
    pub max_unpaid: Option<u32>,
}

/// Inserts orders with their lines, first history entries and events in one
/// transaction, one statement per table and piece of rows (see [`crate::shapes`]):
/// all of them or none (a duplicate id or
/// idempotency key fails them all, as `UniqueViolation`).
pub async fn insert<Placed: Borrow<NewOrder>>(
    connection: &mut AnyConnection,
    placed: &[Placed],
) -> Result<(), DbError> {
    let placed: Vec<&NewOrder> = placed.iter().map(Borrow::borrow).collect();
    let placed = placed.as_slice();
    if placed.is_empty() {
        return Ok(());
    }
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    insert_without_savepoint(&mut transaction, placed).await?;
    transaction.commit().await?;
    Ok(())
}

/// [`insert`] in the caller's transaction without a transaction (or savepoint) of its
/// own: an error may leave some of the rows written, so the caller must then roll its
/// transaction back rather than commit it.
pub async fn insert_without_savepoint(
    connection: &mut AnyConnection,
    placed: &[&NewOrder],
) -> Result<(), DbError> {
    for piece in pieces(placed, MAX_ROWS) {
        insert_rows(&mut *connection, piece).await?;
    }
    let lines: Vec<&LineRecord> = placed.iter().flat_map(|new| &new.lines).collect();
    for piece in pieces(&lines, MAX_ROWS) {
        insert_lines(&mut *connection, piece).await?;
    }
    for piece in pieces(placed, MAX_ROWS) {
        insert_histories(&mut *connection, piece).await?;
    }
    let events: Vec<&OutboxEvent> = placed.iter().map(|new| &new.event).collect();
    for piece in pieces(&events, MAX_ROWS) {
        outbox::append_all(&mut *connection, piece).await?;
    }
    Ok(())
}

async fn insert_rows(connection: &mut AnyConnection, placed: &[&NewOrder]) -> Result<(), DbError> {
    let mut builder = QueryBuilder::<Any>::new(format!("INSERT INTO orders ({ORDER_COLUMNS}) "));
    builder.push_values(placed, |mut values, new| {
        let order = &new.order;
        values
            .push_bind(order.id.clone())
            .push_bind(order.user_id.clone())
            .push_bind(order.status.clone())
            .push_bind(order.was_paid)
            .push_bind(order.currency.clone())
            .push_bind(order.total_amount)
            .push_bind(order.idempotency_key.clone())
            .push_bind(order.request_hash.clone())
            .push_bind(order.payment_reference.clone())
            .push_bind(order.expires_at)
            .push_bind(order.stock_settled)
            .push_bind(order.version)
            .push_bind(order.created_at)
            .push_bind(order.updated_at)
            .push_bind(order.owner_epoch)
            .push_bind(order.shipping_address.clone())
            .push_bind(order.billing_address.clone())
            .push_bind(order.subtotal_amount)
            .push_bind(order.shipping_amount)
            .push_bind(order.tax_amount)
            .push_bind(order.tax_rate_bps)
            .push_bind(order.prices_include_tax)
            .push_bind(order.shipping_method.clone())
            .push_bind(order.shipping_method_name.clone());
    });
    builder.build().execute(connection).await?;
    Ok(())
}

async fn insert_lines(
    connection: &mut AnyConnection,
    lines: &[&LineRecord],
) -> Result<(), DbError> {
    let mut builder = QueryBuilder::<Any>::new(
        "INSERT INTO order_lines (order_id, line_no, sku, product_id, name, unit_amount, quantity) ",
    );
    builder.push_values(lines, |mut values, line| {
        values
            .push_bind(line.order_id.clone())
            .push_bind(line.line_no)
            .push_bind(line.sku.clone())
            .push_bind(line.product_id.clone())
            .push_bind(line.name.clone())
            .push_bind(line.unit_amount)
            .push_bind(line.quantity);
    });
    builder.build().execute(connection).await?;
    Ok(())
}

async fn insert_histories(
    connection: &mut AnyConnection,
    placed: &[&NewOrder],
) -> Result<(), DbError> {
    let mut builder = QueryBuilder::<Any>::new(
        "INSERT INTO order_history (id, order_id, from_status, to_status, actor, reason, created_at) ",
    );
    builder.push_values(placed, |mut values, new| {
        let history = &new.history;
        values
            .push_bind(history.id.clone())
            .push_bind(history.order_id.clone())
            .push_bind(history.from_status.clone())
            .push_bind(history.to_status.clone())
            .push_bind(history.actor.clone())
            .push_bind(history.reason.clone())
            .push_bind(history.created_at);
    });
    builder.build().execute(connection).await?;
    Ok(())
}

async fn insert_history(
    connection: &mut AnyConnection,
    history: &HistoryRecord,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO order_history (id, order_id, from_status, to_status, actor, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&history.id)
    .bind(&history.order_id)
    .bind(&history.from_status)
    .bind(&history.to_status)
    .bind(&history.actor)
    .bind(&history.reason)
    .bind(history.created_at)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// What a transition found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Applied,
    /// Another transition of this owner's won (the version moved).
    Conflict,
    /// A later owner claimed the order: this one must stop serving it.
    Fenced,
}

/// Moves an order to `order.status` if it is still at `expected_version` and no owner
/// later than `order.owner_epoch` claimed it; writes the history entry and event with
/// it.
pub async fn transition(
    connection: &mut AnyConnection,
    order: &OrderRecord,
    expected_version: i64,
    history: &HistoryRecord,
    event: &OutboxEvent,
) -> Result<Transition, DbError> {
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    let result = sqlx::query(
        "UPDATE orders SET status = ?, was_paid = ?, payment_reference = ?, stock_settled = ?, version = ?, updated_at = ?, owner_epoch = ? \
         WHERE id = ? AND version = ? AND owner_epoch <= ?",
    )
    .bind(&order.status)
    .bind(order.was_paid)
    .bind(&order.payment_reference)
    .bind(order.stock_settled)
    .bind(order.version)
    .bind(order.updated_at)
    .bind(order.owner_epoch)
    .bind(&order.id)
    .bind(expected_version)
    .bind(order.owner_epoch)
    .execute(&mut *transaction)
    .await?;
    if result.rows_affected() != 1 {
        let stored = fence::owner_epoch(&mut transaction, FencedRow::Order, &order.id).await?;
        return Ok(match stored {
            Some(stored) if stored > order.owner_epoch => Transition::Fenced,
            _ => Transition::Conflict,
        });
    }
    insert_history(&mut transaction, history).await?;
    outbox::append(&mut *transaction, event).await?;
    transaction.commit().await?;
    Ok(Transition::Applied)
}

pub async fn find<'e, E>(executor: E, id: &str) -> Result<Option<OrderRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, OrderRecord>(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?)
}

pub async fn find_by_key<'e, E>(
    executor: E,
    user_id: &str,
    key: &str,
) -> Result<Option<OrderRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, OrderRecord>(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE user_id = ? AND idempotency_key = ?"
    ))
    .bind(user_id)
    .bind(key)
    .fetch_optional(executor)
    .await?)
}

/// For each of `placed`, in order, the cap it would exceed: `Some(max_unpaid)` when its
/// customer already has that many orders waiting for payment, counting the stored ones
/// and those of `placed` before it that fit. One read for all of them, in the caller's
/// transaction (the node writer's commit), so a checkout pays no round trip of its own
/// for the cap.
pub async fn over_unpaid_cap(
    connection: &mut AnyConnection,
    placed: &[&NewOrder],
) -> Result<Vec<Option<u32>>, DbError> {
    let capped: Vec<&str> = placed
        .iter()
        .filter(|new| new.max_unpaid.is_some())
        .map(|new| new.order.user_id.as_str())
        .collect();
    let mut unpaid: HashMap<String, i64> = HashMap::new();
    for piece in padded(&capped).chunks(MAX_ROWS) {
        let mut builder = QueryBuilder::<Any>::new(
            "SELECT user_id, COUNT(*) FROM orders WHERE status = 'pending_payment' AND user_id IN (",
        );
        let mut separated = builder.separated(", ");
        for user_id in piece {
            separated.push_bind(user_id.to_string());
        }
        builder.push(") GROUP BY user_id");
        let counts: Vec<(String, i64)> =
            builder.build_query_as().fetch_all(&mut *connection).await?;
        unpaid.extend(counts);
    }
    Ok(placed
        .iter()
        .map(|new| {
            let limit = new.max_unpaid?;
            let count = unpaid.entry(new.order.user_id.clone()).or_default();
            if *count >= i64::from(limit) {
                return Some(limit);
            }
            *count += 1;
            None
        })
        .collect())
}

pub async fn lines<'e, E>(executor: E, order_id: &str) -> Result<Vec<LineRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, LineRecord>(
        "SELECT order_id, line_no, sku, product_id, name, unit_amount, quantity FROM order_lines WHERE order_id = ? ORDER BY line_no",
    )
    .bind(order_id)
    .fetch_all(executor)
    .await?)
}

pub async fn history<'e, E>(executor: E, order_id: &str) -> Result<Vec<HistoryRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, HistoryRecord>(
        "SELECT id, order_id, from_status, to_status, actor, reason, created_at FROM order_history WHERE order_id = ? ORDER BY id",
    )
    .bind(order_id)
    .fetch_all(executor)
    .await?)
}

#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    pub user_id: Option<String>,
    pub status: Option<String>,
    pub created_from: Option<Micros>,
    pub created_to: Option<Micros>,
    /// Newest first: (created_at, id) of the last order of the previous page.
    pub before: Option<(Micros, String)>,
    pub limit: u32,
}

/// Newest first, `limit + 1` rows at most.
pub async fn list<'e, E>(executor: E, filter: &OrderFilter) -> Result<Vec<OrderRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let (before_at, before_id) = match &filter.before {
        Some((at, id)) => (Some(*at), Some(id.clone())),
        None => (None, None),
    };
    Ok(sqlx::query_as::<_, OrderRecord>(&format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE (? IS NULL OR user_id = ?) AND (? IS NULL OR status = ?) \
         AND (? IS NULL OR created_at >= ?) AND (? IS NULL OR created_at < ?) \
         AND (? IS NULL OR created_at < ? OR (created_at = ? AND id < ?)) \
         ORDER BY created_at DESC, id DESC LIMIT ?"
    ))
    .bind(&filter.user_id)
    .bind(&filter.user_id)
    .bind(&filter.status)
    .bind(&filter.status)
    .bind(filter.created_from)
    .bind(filter.created_from)
    .bind(filter.created_to)
    .bind(filter.created_to)
    .bind(before_at)
    .bind(before_at)
    .bind(before_at)
    .bind(before_id)
    .bind(i64::from(filter.limit) + 1)
    .fetch_all(executor)
    .await?)
}

/// Unpaid orders whose reservations have run out, oldest first.
pub async fn due_for_expiry<'e, E>(
    executor: E,
    now: Micros,
    limit: u32,
) -> Result<Vec<String>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    crate::keys_due(
        executor,
        "SELECT id FROM orders WHERE status = 'pending_payment' AND expires_at <= ? ORDER BY expires_at LIMIT ?",
        now,
        limit,
    )
    .await
}

/// Records that the stock effect of the transition that produced `version` is done.
pub async fn mark_settled<'e, E>(executor: E, id: &str, version: i64) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("UPDATE orders SET stock_settled = 1 WHERE id = ? AND version = ?")
        .bind(id)
        .bind(version)
        .execute(executor)
        .await?;
    Ok(())
}

/// Orders whose last transition's stock effect is not done, and which changed before
/// `changed_before` (so a request still doing it is left alone).
pub async fn unsettled<'e, E>(
    executor: E,
    changed_before: Micros,
    limit: u32,
) -> Result<Vec<String>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM orders WHERE stock_settled = 0 AND updated_at <= ? ORDER BY updated_at LIMIT ?",
    )
    .bind(changed_before)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// The lines of several orders, by order then line number.
pub async fn lines_of<'e, E>(executor: E, order_ids: &[String]) -> Result<Vec<LineRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    crate::rows_for_ids(
        executor,
        "SELECT order_id, line_no, sku, product_id, name, unit_amount, quantity FROM order_lines WHERE order_id IN (",
        order_ids,
        "order_id, line_no",
    )
    .await
}

/// The history of several orders, by order, oldest first.
pub async fn history_of<'e, E>(
    executor: E,
    order_ids: &[String],
) -> Result<Vec<HistoryRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    crate::rows_for_ids(
        executor,
        "SELECT id, order_id, from_status, to_status, actor, reason, created_at FROM order_history WHERE order_id IN (",
        order_ids,
        "order_id, id",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::{ORDER_COLUMNS, ORDER_PARAMETERS};

    #[test]
    fn the_parameter_count_is_the_column_count() {
        assert_eq!(ORDER_COLUMNS.split(',').count(), ORDER_PARAMETERS);
    }
}
