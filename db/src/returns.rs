//! The returns repository: returns of delivered orders with their lines. A status
//! change is conditional on the status read, so two concurrent changes of one return
//! cannot both apply; each change writes its outbox event in the same transaction.

use sqlx::{Any, AnyConnection, Executor, FromRow, QueryBuilder};

use crate::clock::Micros;
use crate::outbox::{self, OutboxEvent};
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ReturnRecord {
    pub id: String,
    pub order_id: String,
    pub status: String,
    pub reason: String,
    pub decision: String,
    pub currency: String,
    pub refund_amount: Option<i64>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ReturnLineRecord {
    pub return_id: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_amount: i64,
}

const RETURN_COLUMNS: &str =
    "id, order_id, status, reason, decision, currency, refund_amount, created_at, updated_at";

/// Stores a new return with its lines and its event, all or nothing.
#[tracing::instrument(name = "returns_insert", skip_all, fields(return_id = %record.id))]
pub async fn insert(
    connection: &mut AnyConnection,
    record: &ReturnRecord,
    lines: &[ReturnLineRecord],
    event: &OutboxEvent,
) -> Result<(), DbError> {
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    sqlx::query(&format!(
        "INSERT INTO order_returns ({RETURN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&record.id)
    .bind(&record.order_id)
    .bind(&record.status)
    .bind(&record.reason)
    .bind(&record.decision)
    .bind(&record.currency)
    .bind(record.refund_amount)
    .bind(record.created_at)
    .bind(record.updated_at)
    .execute(&mut *transaction)
    .await?;
    let mut builder = QueryBuilder::<Any>::new(
        "INSERT INTO order_return_lines (return_id, sku, quantity, unit_amount) ",
    );
    builder.push_values(lines, |mut values, line| {
        values
            .push_bind(line.return_id.clone())
            .push_bind(line.sku.clone())
            .push_bind(line.quantity)
            .push_bind(line.unit_amount);
    });
    builder.build().execute(&mut *transaction).await?;
    outbox::append(&mut *transaction, event).await?;
    transaction.commit().await?;
    Ok(())
}

/// Moves a return from `from` to `record.status` (with its decision and refund) and
/// writes its event; `false` when the return was no longer in `from`.
#[tracing::instrument(name = "returns_change", skip_all, fields(return_id = %record.id, from, to = %record.status))]
pub async fn change(
    connection: &mut AnyConnection,
    record: &ReturnRecord,
    from: &str,
    event: &OutboxEvent,
) -> Result<bool, DbError> {
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    let changed = sqlx::query(
        "UPDATE order_returns SET status = ?, decision = ?, refund_amount = ?, updated_at = ? \
         WHERE id = ? AND status = ?",
    )
    .bind(&record.status)
    .bind(&record.decision)
    .bind(record.refund_amount)
    .bind(record.updated_at)
    .bind(&record.id)
    .bind(from)
    .execute(&mut *transaction)
    .await?;
    if changed.rows_affected() != 1 {
        return Ok(false);
    }
    outbox::append(&mut *transaction, event).await?;
    transaction.commit().await?;
    Ok(true)
}

/// The returns of several orders, by order, oldest first.
pub async fn returns_of<'e, E>(
    executor: E,
    order_ids: &[String],
) -> Result<Vec<ReturnRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let select = format!("SELECT {RETURN_COLUMNS} FROM order_returns WHERE order_id IN (");
    crate::rows_for_ids(executor, &select, order_ids, "order_id, created_at, id").await
}

/// The lines of several returns, by return and SKU.
pub async fn lines_of<'e, E>(
    executor: E,
    return_ids: &[String],
) -> Result<Vec<ReturnLineRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    crate::rows_for_ids(
        executor,
        "SELECT return_id, sku, quantity, unit_amount FROM order_return_lines WHERE return_id IN (",
        return_ids,
        "return_id, sku",
    )
    .await
}

/// Returns in `status` (all when `None`), oldest first, after `after` (the created_at
/// and id of the previous page's last); `limit + 1` rows at most.
pub async fn list<'e, E>(
    executor: E,
    status: Option<&str>,
    after: Option<(Micros, String)>,
    limit: u32,
) -> Result<Vec<ReturnRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let (after_at, after_id) = after.unzip();
    Ok(sqlx::query_as::<_, ReturnRecord>(&format!(
        "SELECT {RETURN_COLUMNS} FROM order_returns WHERE (? IS NULL OR status = ?) \
         AND (? IS NULL OR created_at > ? OR (created_at = ? AND id > ?)) \
         ORDER BY created_at, id LIMIT ?"
    ))
    .bind(status)
    .bind(status)
    .bind(after_at)
    .bind(after_at)
    .bind(after_at)
    .bind(after_id)
    .bind(i64::from(limit) + 1)
    .fetch_all(executor)
    .await?)
}
