//! The email repository (verification tokens are `one_time_tokens`): the send log that
//! de-duplicates consumers by event id, and dead letters.

use sqlx::{Any, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

/// The longest error text kept; SMTP servers can be chatty.
pub const MAX_ERROR_CHARS: usize = 1000;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct SendRecord {
    pub id: String,
    pub event_id: String,
    pub template: String,
    pub recipient: String,
    pub subject: String,
    /// `sent`, `failed` (will be retried) or `dead_lettered`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct DeadLetterRecord {
    pub id: String,
    pub event_id: String,
    pub topic: String,
    pub aggregate_id: String,
    pub payload: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at: Micros,
    pub replayed_at: Option<Micros>,
}

pub fn clip_error(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

/// Marks the user's address verified (a later call keeps the first time); `false` when
/// the user no longer exists.
#[tracing::instrument(name = "users_mark_email_verified", skip(executor))]
pub async fn mark_user_verified<'e, E>(
    executor: E,
    user_id: &str,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    // `updated_at` always changes, so the row counts as affected on MariaDB too.
    let updated = sqlx::query(
        "UPDATE users SET email_verified_at = COALESCE(email_verified_at, ?), updated_at = ? WHERE id = ?",
    )
    .bind(now)
    .bind(now)
    .bind(user_id)
    .execute(executor)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// Email addresses of active admins: the recipients of operational alerts.
#[tracing::instrument(name = "users_admin_emails", skip(executor))]
pub async fn admin_emails<'e, E>(executor: E) -> Result<Vec<String>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT email FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id",
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|(email,)| email).collect())
}

const SEND_COLUMNS: &str = "id, event_id, template, recipient, subject, status, attempts, last_error, created_at, updated_at";

#[tracing::instrument(name = "email_sends_find", skip(executor, recipient))]
pub async fn find_send<'e, E>(
    executor: E,
    event_id: &str,
    template: &str,
    recipient: &str,
) -> Result<Option<SendRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, SendRecord>(&format!(
        "SELECT {SEND_COLUMNS} FROM email_sends WHERE event_id = ? AND template = ? AND recipient = ?"
    ))
    .bind(event_id)
    .bind(template)
    .bind(recipient)
    .fetch_optional(executor)
    .await?)
}

/// Creates the send row of (event, template, recipient) or updates its status. Most
/// sends are an event's first, so the row is inserted first: one statement then.
#[tracing::instrument(name = "email_sends_record", skip_all, fields(event_id = %send.event_id, template = %send.template, status = %send.status))]
pub async fn record_send(pool: &sqlx::Pool<Any>, send: &SendRecord) -> Result<(), DbError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO email_sends ({SEND_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&send.id)
    .bind(&send.event_id)
    .bind(&send.template)
    .bind(&send.recipient)
    .bind(&send.subject)
    .bind(&send.status)
    .bind(send.attempts)
    .bind(&send.last_error)
    .bind(send.created_at)
    .bind(send.updated_at)
    .execute(pool)
    .await;
    let Err(error) = inserted else {
        return Ok(());
    };
    match DbError::from(error) {
        // The row exists (an earlier attempt's, or another worker's): update it.
        DbError::UniqueViolation { .. } => {
            sqlx::query(
                "UPDATE email_sends SET subject = ?, status = ?, attempts = ?, last_error = ?, updated_at = ? \
                 WHERE event_id = ? AND template = ? AND recipient = ?",
            )
            .bind(&send.subject)
            .bind(&send.status)
            .bind(send.attempts)
            .bind(&send.last_error)
            .bind(send.updated_at)
            .bind(&send.event_id)
            .bind(&send.template)
            .bind(&send.recipient)
            .execute(pool)
            .await?;
            Ok(())
        }
        other => Err(other),
    }
}

/// The most recent sends, newest first; `before` is the last id of the previous page.
#[tracing::instrument(name = "email_sends_recent", skip(executor))]
pub async fn recent_sends<'e, E>(
    executor: E,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<SendRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, SendRecord>(&format!(
        "SELECT {SEND_COLUMNS} FROM email_sends WHERE (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
    ))
    .bind(before)
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?)
}

const DEAD_COLUMNS: &str =
    "id, event_id, topic, aggregate_id, payload, attempts, last_error, created_at, replayed_at";

#[tracing::instrument(name = "email_dead_letters_insert", skip_all, fields(event_id = %letter.event_id))]
pub async fn insert_dead_letter<'e, E>(
    executor: E,
    letter: &DeadLetterRecord,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(&format!(
        "INSERT INTO email_dead_letters ({DEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&letter.id)
    .bind(&letter.event_id)
    .bind(&letter.topic)
    .bind(&letter.aggregate_id)
    .bind(&letter.payload)
    .bind(letter.attempts)
    .bind(&letter.last_error)
    .bind(letter.created_at)
    .bind(letter.replayed_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Dead letters newest first; `before` is the last id of the previous page.
#[tracing::instrument(name = "email_dead_letters_list", skip(executor))]
pub async fn dead_letters<'e, E>(
    executor: E,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<DeadLetterRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, DeadLetterRecord>(&format!(
        "SELECT {DEAD_COLUMNS} FROM email_dead_letters WHERE (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?"
    ))
    .bind(before)
    .bind(before)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?)
}

#[tracing::instrument(name = "email_dead_letters_find", skip(executor))]
pub async fn find_dead_letter<'e, E>(
    executor: E,
    id: &str,
) -> Result<Option<DeadLetterRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, DeadLetterRecord>(&format!(
        "SELECT {DEAD_COLUMNS} FROM email_dead_letters WHERE id = ?"
    ))
    .bind(id)
    .fetch_optional(executor)
    .await?)
}

#[tracing::instrument(name = "email_dead_letters_mark_replayed", skip(executor))]
pub async fn mark_replayed<'e, E>(executor: E, id: &str, now: Micros) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE email_dead_letters SET replayed_at = ? WHERE id = ? AND replayed_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Undoes [`mark_replayed`] when the replay could not be published.
#[tracing::instrument(name = "email_dead_letters_unmark_replayed", skip(executor))]
pub async fn unmark_replayed<'e, E>(executor: E, id: &str) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("UPDATE email_dead_letters SET replayed_at = NULL WHERE id = ?")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Active accounts created before `created_before` whose address is not verified and
/// that got no reminder yet: (id, email, name), oldest first.
#[tracing::instrument(name = "users_unverified_unreminded", skip(executor))]
pub async fn unverified_unreminded<'e, E>(
    executor: E,
    created_before: Micros,
    limit: u32,
) -> Result<Vec<(String, String, String)>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as(
        "SELECT id, email, name FROM users WHERE status = 'active' AND email_verified_at IS NULL \
         AND verification_reminded_at IS NULL AND created_at < ? ORDER BY id LIMIT ?",
    )
    .bind(created_before)
    .bind(i64::from(limit))
    .fetch_all(executor)
    .await?)
}

/// Marks the reminder as sent once; `false` when another run did it first.
#[tracing::instrument(name = "users_mark_reminded", skip(executor))]
pub async fn mark_reminded<'e, E>(executor: E, user_id: &str, now: Micros) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE users SET verification_reminded_at = ? WHERE id = ? \
         AND verification_reminded_at IS NULL AND email_verified_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}
