//! The payment provider's webhook events and the refunds they record. An event is
//! claimed by its id before its order is changed, so a redelivered event is answered
//! from its row; a claim left unfinished (the node died mid-way) can be taken over
//! once it is older than the caller's bound. Refunds owed on captures no order could
//! keep wait in `unkept_captures` until a sweep makes them.

use sqlx::{Any, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

/// The outcome of an event while its order is being changed.
pub const PROCESSING: &str = "processing";

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct PaymentEventRecord {
    pub id: String,
    pub kind: String,
    pub order_id: String,
    pub outcome: String,
    pub received_at: Micros,
    pub finished_at: Option<Micros>,
}

/// What claiming an event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// This caller processes the event: it was new, or its earlier claim was abandoned.
    Ours,
    /// The event was seen before; its row says what became of it.
    Seen(PaymentEventRecord),
}

/// Claims the event `id` for processing at `now`; takes over a claim still
/// processing that was made before `abandoned_before`.
#[tracing::instrument(name = "payment_events_claim", skip(executor), fields(event_id = %id))]
pub async fn claim<'e, E>(
    executor: E,
    id: &str,
    kind: &str,
    order_id: &str,
    now: Micros,
    abandoned_before: Micros,
) -> Result<Claimed, DbError>
where
    E: Executor<'e, Database = Any> + Copy,
{
    let inserted = sqlx::query(
        "INSERT INTO payment_events (id, kind, order_id, outcome, received_at, finished_at) \
         VALUES (?, ?, ?, ?, ?, NULL)",
    )
    .bind(id)
    .bind(kind)
    .bind(order_id)
    .bind(PROCESSING)
    .bind(now)
    .execute(executor)
    .await;
    match inserted.map_err(DbError::from) {
        Ok(_) => return Ok(Claimed::Ours),
        Err(DbError::UniqueViolation { .. }) => {}
        Err(error) => return Err(error),
    }
    let taken_over = sqlx::query(
        "UPDATE payment_events SET received_at = ? \
         WHERE id = ? AND outcome = ? AND received_at < ?",
    )
    .bind(now)
    .bind(id)
    .bind(PROCESSING)
    .bind(abandoned_before)
    .execute(executor)
    .await?;
    if taken_over.rows_affected() == 1 {
        return Ok(Claimed::Ours);
    }
    match find(executor, id).await? {
        Some(record) => Ok(Claimed::Seen(record)),
        // Released between the two statements: the sender's retry claims it.
        None => Ok(Claimed::Seen(PaymentEventRecord {
            id: id.to_owned(),
            kind: kind.to_owned(),
            order_id: order_id.to_owned(),
            outcome: PROCESSING.to_owned(),
            received_at: now,
            finished_at: None,
        })),
    }
}

pub async fn find<'e, E>(executor: E, id: &str) -> Result<Option<PaymentEventRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as(
        "SELECT id, kind, order_id, outcome, received_at, finished_at \
         FROM payment_events WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(executor)
    .await?)
}

/// Records what the event did.
#[tracing::instrument(name = "payment_events_finish", skip(executor), fields(event_id = %id))]
pub async fn finish<'e, E>(executor: E, id: &str, outcome: &str, now: Micros) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("UPDATE payment_events SET outcome = ?, finished_at = ? WHERE id = ?")
        .bind(outcome)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Gives up a claim that could not be processed now, so the sender's retry claims it.
#[tracing::instrument(name = "payment_events_release", skip(executor), fields(event_id = %id))]
pub async fn release<'e, E>(executor: E, id: &str) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("DELETE FROM payment_events WHERE id = ? AND outcome = ?")
        .bind(id)
        .bind(PROCESSING)
        .execute(executor)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct RefundRecord {
    /// The provider's id of the refund.
    pub id: String,
    pub order_id: String,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub created_at: Micros,
}

/// Records a refund; `false` when one with its id was recorded before.
#[tracing::instrument(name = "order_refunds_insert", skip(executor, refund), fields(order_id = %refund.order_id))]
pub async fn insert_refund<'e, E>(executor: E, refund: &RefundRecord) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let inserted = sqlx::query(
        "INSERT INTO order_refunds (id, order_id, amount, currency, reason, created_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&refund.id)
    .bind(&refund.order_id)
    .bind(refund.amount)
    .bind(&refund.currency)
    .bind(&refund.reason)
    .bind(refund.created_at)
    .execute(executor)
    .await;
    match inserted.map_err(DbError::from) {
        Ok(_) => Ok(true),
        Err(DbError::UniqueViolation { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The refunds of several orders, by order, oldest first.
pub async fn refunds_of<'e, E>(
    executor: E,
    order_ids: &[String],
) -> Result<Vec<RefundRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    crate::rows_for_ids(
        executor,
        "SELECT id, order_id, amount, currency, reason, created_at FROM order_refunds WHERE order_id IN (",
        order_ids,
        "order_id, created_at, id",
    )
    .await
}

/// A capture no order could keep whose refund is owed (`unkept_captures`).
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct UnkeptCaptureRecord {
    pub payment_reference: String,
    pub order_id: String,
    pub amount: i64,
    pub currency: String,
    pub created_at: Micros,
    pub attempted_at: Micros,
}

/// Records a refund owed on a capture; one row per payment (a second call keeps the
/// first).
#[tracing::instrument(name = "unkept_captures_owe", skip(executor, capture), fields(order_id = %capture.order_id))]
pub async fn owe_unkept_capture<'e, E>(
    executor: E,
    capture: &UnkeptCaptureRecord,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    let inserted = sqlx::query(
        "INSERT INTO unkept_captures (payment_reference, order_id, amount, currency, created_at, attempted_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&capture.payment_reference)
    .bind(&capture.order_id)
    .bind(capture.amount)
    .bind(&capture.currency)
    .bind(capture.created_at)
    .bind(capture.attempted_at)
    .execute(executor)
    .await;
    match inserted.map_err(DbError::from) {
        Ok(_) | Err(DbError::UniqueViolation { .. }) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Owed refunds last asked for before `attempted_before`, at most `limit`, oldest ask
/// first.
pub async fn unkept_captures_due<'e, E>(
    executor: E,
    attempted_before: Micros,
    limit: u32,
) -> Result<Vec<UnkeptCaptureRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as(
        "SELECT payment_reference, order_id, amount, currency, created_at, attempted_at \
         FROM unkept_captures WHERE attempted_at < ? ORDER BY attempted_at, payment_reference LIMIT ?",
    )
    .bind(attempted_before)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?)
}

/// Notes another ask for an owed refund that the provider refused.
pub async fn unkept_capture_attempted<'e, E>(
    executor: E,
    payment_reference: &str,
    now: Micros,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("UPDATE unkept_captures SET attempted_at = ? WHERE payment_reference = ?")
        .bind(now)
        .bind(payment_reference)
        .execute(executor)
        .await?;
    Ok(())
}

/// Forgets an owed refund once it is made.
pub async fn unkept_capture_refunded<'e, E>(
    executor: E,
    payment_reference: &str,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("DELETE FROM unkept_captures WHERE payment_reference = ?")
        .bind(payment_reference)
        .execute(executor)
        .await?;
    Ok(())
}
