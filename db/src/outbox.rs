//! The transactional outbox: a domain event is written in the same transaction as the
//! change that causes it, so either both exist or neither does. Relays (one per node)
//! lease them in batches, publish them and mark them published; until then they wait
//! here, unpublished.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor, FromRow, QueryBuilder};

use crate::clock::{now_micros, Micros};
use crate::ids::new_id;
use crate::shapes;
use crate::DbError;

/// The largest payload the outbox stores (the MySQL column is `VARCHAR(12000)`).
pub const MAX_PAYLOAD_CHARS: usize = 12_000;

#[derive(Debug, Clone, FromRow, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    pub id: String,
    /// Dotted event name, e.g. `user.registered`.
    pub topic: String,
    pub aggregate_id: String,
    /// The event body as JSON text.
    pub payload: String,
    pub created_at: Micros,
    pub published_at: Option<Micros>,
}

impl OutboxEvent {
    pub fn new(
        topic: &str,
        aggregate_id: &str,
        payload: &impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: new_id(),
            topic: topic.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            payload: serde_json::to_string(payload)?,
            created_at: now_micros(),
            published_at: None,
        })
    }
}

#[tracing::instrument(name = "outbox_append", skip_all, fields(topic = %event.topic, event_id = %event.id))]
pub async fn append<'e, E>(executor: E, event: &OutboxEvent) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    append_all(executor, &[event]).await
}

/// Appends events in one statement (in the caller's transaction); a caller writing
/// many cuts them into `shapes::pieces`.
pub async fn append_all<'e, E>(executor: E, events: &[&OutboxEvent]) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    if let Some(event) = events
        .iter()
        .find(|event| event.payload.chars().count() > MAX_PAYLOAD_CHARS)
    {
        return Err(DbError::Invalid(format!(
            "event {} payload exceeds {MAX_PAYLOAD_CHARS} characters",
            event.topic
        )));
    }
    if events.is_empty() {
        return Ok(());
    }
    let mut builder = QueryBuilder::<Any>::new(
        "INSERT INTO outbox_events (id, topic, aggregate_id, payload, created_at, published_at) ",
    );
    builder.push_values(events, |mut values, event| {
        values
            .push_bind(event.id.clone())
            .push_bind(event.topic.clone())
            .push_bind(event.aggregate_id.clone())
            .push_bind(event.payload.clone())
            .push_bind(event.created_at)
            .push_bind(event.published_at);
    });
    builder.build().execute(executor).await?;
    Ok(())
}

/// Unpublished events in the order they were written, oldest first.
#[tracing::instrument(name = "outbox_unpublished", skip(executor))]
pub async fn unpublished<'e, E>(executor: E, limit: u32) -> Result<Vec<OutboxEvent>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, OutboxEvent>(
        "SELECT id, topic, aggregate_id, payload, created_at, published_at FROM outbox_events \
         WHERE published_at IS NULL ORDER BY id LIMIT ?",
    )
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?)
}

/// Events of one topic about one aggregate, oldest first.
#[tracing::instrument(name = "outbox_for_aggregate", skip(executor))]
pub async fn for_aggregate<'e, E>(
    executor: E,
    topic: &str,
    aggregate_id: &str,
) -> Result<Vec<OutboxEvent>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, OutboxEvent>(
        "SELECT id, topic, aggregate_id, payload, created_at, published_at FROM outbox_events \
         WHERE topic = ? AND aggregate_id = ? ORDER BY id",
    )
    .bind(topic)
    .bind(aggregate_id)
    .fetch_all(executor)
    .await?)
}

/// Ids of events no relay holds a live lease on, oldest first: candidates for [`claim`].
#[tracing::instrument(name = "outbox_claimable", skip(executor))]
pub async fn claimable<'e, E>(executor: E, now: Micros, limit: u32) -> Result<Vec<String>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM outbox_events WHERE published_at IS NULL \
         AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Leases to `relay` until `until` those of `ids` that are unpublished and on no live
/// lease, and returns the events this call won, whole, oldest first. One conditional
/// UPDATE for all of them (the condition is what makes relays on several nodes
/// exclusive: a row another relay leased in between is left alone), then one read of
/// the rows now leased to `relay` until `until` — a value no earlier pass of this relay
/// used, since `until` moves with the clock.
#[tracing::instrument(name = "outbox_claim", skip(executor, ids), fields(candidates = ids.len()))]
pub async fn claim<'e, E>(
    executor: E,
    ids: &[String],
    relay: &str,
    now: Micros,
    until: Micros,
) -> Result<Vec<OutboxEvent>, DbError>
where
    E: Executor<'e, Database = Any> + Copy,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids = padded_ids(ids);
    let mut builder = QueryBuilder::<Any>::new("UPDATE outbox_events SET claimed_by = ");
    builder
        .push_bind(relay.to_owned())
        .push(", claimed_until = ")
        .push_bind(until)
        .push(" WHERE published_at IS NULL AND (claimed_until IS NULL OR claimed_until < ")
        .push_bind(now)
        .push(") AND id IN (");
    push_ids(&mut builder, &ids);
    builder.push(")");
    builder.build().execute(executor).await?;

    let mut builder = QueryBuilder::<Any>::new(
        "SELECT id, topic, aggregate_id, payload, created_at, published_at FROM outbox_events \
         WHERE published_at IS NULL AND claimed_by = ",
    );
    builder
        .push_bind(relay.to_owned())
        .push(" AND claimed_until = ")
        .push_bind(until)
        .push(" AND id IN (");
    push_ids(&mut builder, &ids);
    builder.push(") ORDER BY id");
    Ok(builder
        .build_query_as::<OutboxEvent>()
        .fetch_all(executor)
        .await?)
}

/// `ids` padded to a power-of-two count (see [`shapes::padded`]), so that a relay's
/// passes reuse a few prepared statements; a repeated id changes nothing.
fn padded_ids(ids: &[String]) -> Vec<&str> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    shapes::padded(&ids)
}

fn push_ids(builder: &mut QueryBuilder<'_, Any>, ids: &[&str]) {
    let mut separated = builder.separated(", ");
    for id in ids {
        separated.push_bind(id.to_string());
    }
}

#[tracing::instrument(name = "outbox_find", skip(executor))]
pub async fn find<'e, E>(executor: E, id: &str) -> Result<Option<OutboxEvent>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, OutboxEvent>(
        "SELECT id, topic, aggregate_id, payload, created_at, published_at FROM outbox_events \
         WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(executor)
    .await?)
}

/// Marks `ids` published, in one statement, and handled too when `handled` (stored by
/// JetStream, which delivers it from there; see [`mark_handled`] for the in-process
/// bus).
#[tracing::instrument(name = "outbox_mark_published", skip(executor, ids), fields(events = ids.len()))]
pub async fn mark_published<'e, E>(
    executor: E,
    ids: &[String],
    now: Micros,
    handled: bool,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    if ids.is_empty() {
        return Ok(());
    }
    let mut builder = QueryBuilder::<Any>::new("UPDATE outbox_events SET published_at = ");
    builder.push_bind(now);
    if handled {
        builder.push(", handled_at = ").push_bind(now);
    }
    builder.push(" WHERE published_at IS NULL AND id IN (");
    push_ids(&mut builder, &padded_ids(ids));
    builder.push(")");
    builder.build().execute(executor).await?;
    Ok(())
}

/// Marks an event handled: a worker of this process is done with it (sent, dead-lettered
/// or nothing to send).
#[tracing::instrument(name = "outbox_mark_handled", skip(executor))]
pub async fn mark_handled<'e, E>(executor: E, id: &str, now: Micros) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("UPDATE outbox_events SET handled_at = ? WHERE id = ? AND handled_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Makes the events published but never handled unpublished again, free of any lease,
/// so the relay publishes them once more; how many. A node on the in-process bus calls
/// it as it starts: what its previous process had queued in memory died with it.
#[tracing::instrument(name = "outbox_reopen_unhandled", skip(executor))]
pub async fn reopen_unhandled<'e, E>(executor: E) -> Result<u64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let reopened = sqlx::query(
        "UPDATE outbox_events SET published_at = NULL, claimed_by = NULL, claimed_until = NULL \
         WHERE handled_at IS NULL AND published_at IS NOT NULL",
    )
    .execute(executor)
    .await?;
    Ok(reopened.rows_affected())
}

/// When the oldest unpublished event was written, if any: the relay's lag.
#[tracing::instrument(name = "outbox_oldest_unpublished", skip(executor))]
pub async fn oldest_unpublished<'e, E>(executor: E) -> Result<Option<Micros>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<(Micros,)> = sqlx::query_as(
        "SELECT created_at FROM outbox_events WHERE published_at IS NULL ORDER BY id LIMIT 1",
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(created_at,)| created_at))
}

/// Gives the leases `relay` holds on `ids` back early (a publish failed), so any relay
/// may retry them at once.
#[tracing::instrument(name = "outbox_release", skip(executor, ids), fields(events = ids.len()))]
pub async fn release<'e, E>(executor: E, ids: &[String], relay: &str) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    if ids.is_empty() {
        return Ok(());
    }
    let mut builder = QueryBuilder::<Any>::new(
        "UPDATE outbox_events SET claimed_until = NULL WHERE published_at IS NULL AND claimed_by = ",
    );
    builder.push_bind(relay.to_owned()).push(" AND id IN (");
    push_ids(&mut builder, &padded_ids(ids));
    builder.push(")");
    builder.build().execute(executor).await?;
    Ok(())
}
