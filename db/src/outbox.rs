//! The transactional outbox: a domain event is written in the same transaction as the
//! change that causes it, so either both exist or neither does. A relay publishes them
//! later (the email issue adds it); until then they wait here, unpublished.

use serde::Serialize;
use sqlx::{Any, Executor, FromRow};

use crate::clock::{now_micros, Micros};
use crate::ids::new_id;
use crate::DbError;

/// The largest payload the outbox stores (the MySQL column is `VARCHAR(12000)`).
pub const MAX_PAYLOAD_CHARS: usize = 12_000;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
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
    if event.payload.chars().count() > MAX_PAYLOAD_CHARS {
        return Err(DbError::Invalid(format!(
            "event {} payload exceeds {MAX_PAYLOAD_CHARS} characters",
            event.topic
        )));
    }
    sqlx::query(
        "INSERT INTO outbox_events (id, topic, aggregate_id, payload, created_at, published_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&event.id)
    .bind(&event.topic)
    .bind(&event.aggregate_id)
    .bind(&event.payload)
    .bind(event.created_at)
    .bind(event.published_at)
    .execute(executor)
    .await?;
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
