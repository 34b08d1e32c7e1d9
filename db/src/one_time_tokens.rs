//! Single-use, expiring tokens sent to a user (password reset, email verification,
//! email change). Only SHA-256 hashes are stored; each kind has a table of the same
//! shape, and every query is written once here for all; an email change's table also
//! holds the address it moves the account to.

use sqlx::{Any, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    PasswordReset,
    EmailVerification,
    EmailChange,
}

impl TokenKind {
    /// A fixed table name (never input), so formatting it into SQL is safe.
    fn table(self) -> &'static str {
        match self {
            TokenKind::PasswordReset => "password_resets",
            TokenKind::EmailVerification => "email_verifications",
            TokenKind::EmailChange => "email_changes",
        }
    }
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct OneTimeToken {
    pub id: String,
    pub token_hash: String,
    pub user_id: String,
    pub created_at: Micros,
    pub expires_at: Micros,
    pub used_at: Option<Micros>,
}

#[tracing::instrument(name = "one_time_tokens_insert", skip(executor, token), fields(user_id = %token.user_id))]
pub async fn insert<'e, E>(
    executor: E,
    kind: TokenKind,
    token: &OneTimeToken,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!(
        "INSERT INTO {} (id, token_hash, user_id, created_at, expires_at, used_at) \
         VALUES (?, ?, ?, ?, ?, ?)",
        kind.table()
    );
    sqlx::query(&sql)
        .bind(&token.id)
        .bind(&token.token_hash)
        .bind(&token.user_id)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.used_at)
        .execute(executor)
        .await?;
    Ok(())
}

#[tracing::instrument(name = "one_time_tokens_find", skip(executor, token_hash))]
pub async fn find<'e, E>(
    executor: E,
    kind: TokenKind,
    token_hash: &str,
) -> Result<Option<OneTimeToken>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!(
        "SELECT id, token_hash, user_id, created_at, expires_at, used_at FROM {} \
         WHERE token_hash = ?",
        kind.table()
    );
    Ok(sqlx::query_as::<_, OneTimeToken>(&sql)
        .bind(token_hash)
        .fetch_optional(executor)
        .await?)
}

/// Spends a token if it is still unspent; `false` when another request won.
#[tracing::instrument(name = "one_time_tokens_mark_used", skip(executor))]
pub async fn mark_used<'e, E>(
    executor: E,
    kind: TokenKind,
    id: &str,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!(
        "UPDATE {} SET used_at = ? WHERE id = ? AND used_at IS NULL",
        kind.table()
    );
    let result = sqlx::query(&sql)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Stores an email-change token with the address it moves the account to.
#[tracing::instrument(name = "one_time_tokens_insert_email_change", skip_all, fields(user_id = %token.user_id))]
pub async fn insert_email_change<'e, E>(
    executor: E,
    token: &OneTimeToken,
    new_email: &str,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO email_changes (id, token_hash, user_id, new_email, created_at, expires_at, used_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&token.id)
    .bind(&token.token_hash)
    .bind(&token.user_id)
    .bind(new_email)
    .bind(token.created_at)
    .bind(token.expires_at)
    .bind(token.used_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// The address an email-change token moves its account to.
#[tracing::instrument(name = "one_time_tokens_email_change_target", skip(executor))]
pub async fn email_change_target<'e, E>(executor: E, id: &str) -> Result<Option<String>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<(String,)> = sqlx::query_as("SELECT new_email FROM email_changes WHERE id = ?")
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(row.map(|(new_email,)| new_email))
}
