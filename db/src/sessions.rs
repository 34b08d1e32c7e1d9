//! Refresh-token families (password-reset tokens are `one_time_tokens`). Only SHA-256 hashes of tokens are
//! stored; the tokens themselves exist only in the client's hands.

use sqlx::{Any, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    pub id: String,
    pub token_hash: String,
    /// Every token rotated from one login shares the family; revoking it ends the session.
    pub family_id: String,
    pub user_id: String,
    pub issued_at: Micros,
    pub expires_at: Micros,
    pub used_at: Option<Micros>,
    pub revoked_at: Option<Micros>,
}

#[tracing::instrument(name = "refresh_tokens_insert", skip_all, fields(family_id = %token.family_id))]
pub async fn insert_refresh_token<'e, E>(
    executor: E,
    token: &RefreshTokenRecord,
) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, issued_at, expires_at, used_at, revoked_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&token.id)
    .bind(&token.token_hash)
    .bind(&token.family_id)
    .bind(&token.user_id)
    .bind(token.issued_at)
    .bind(token.expires_at)
    .bind(token.used_at)
    .bind(token.revoked_at)
    .execute(executor)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "refresh_tokens_find", skip_all)]
pub async fn find_refresh_token<'e, E>(
    executor: E,
    token_hash: &str,
) -> Result<Option<RefreshTokenRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, RefreshTokenRecord>(
        "SELECT id, token_hash, family_id, user_id, issued_at, expires_at, used_at, revoked_at \
         FROM refresh_tokens WHERE token_hash = ?",
    )
    .bind(token_hash)
    .fetch_optional(executor)
    .await?)
}

/// Marks a token spent, only if it still is live: of two racing refreshes with one token
/// exactly one sees `true`.
#[tracing::instrument(name = "refresh_tokens_mark_used", skip(executor))]
pub async fn mark_refresh_token_used<'e, E>(
    executor: E,
    id: &str,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(name = "refresh_tokens_revoke_family", skip(executor))]
pub async fn revoke_family<'e, E>(executor: E, family_id: &str, now: Micros) -> Result<u64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

/// Ends every session of a user, except the family named in `keep` (the caller's own).
#[tracing::instrument(name = "refresh_tokens_revoke_user", skip(executor))]
pub async fn revoke_user_sessions<'e, E>(
    executor: E,
    user_id: &str,
    keep: Option<&str>,
    now: Micros,
) -> Result<u64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = ? \
         WHERE user_id = ? AND revoked_at IS NULL AND (? IS NULL OR family_id <> ?)",
    )
    .bind(now)
    .bind(user_id)
    .bind(keep)
    .bind(keep)
    .execute(executor)
    .await?;
    Ok(result.rows_affected())
}

#[tracing::instrument(name = "refresh_tokens_delete_user", skip(connection))]
pub async fn delete_user_tokens(
    connection: &mut sqlx::AnyConnection,
    user_id: &str,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM refresh_tokens WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM password_resets WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM email_verifications WHERE user_id = ?")
        .bind(user_id)
        .execute(&mut *connection)
        .await?;
    forget_email_changes(&mut *connection, user_id).await
}

/// Drops the user's pending email changes: a password change or reset ends them, so a
/// confirmation link mailed before it no longer moves the account.
#[tracing::instrument(name = "email_changes_forget", skip(executor))]
pub async fn forget_email_changes<'e, E>(executor: E, user_id: &str) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("DELETE FROM email_changes WHERE user_id = ?")
        .bind(user_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Whether a session (refresh family) of the user is still live: not revoked (logout,
/// password change or reset, reuse) and not past its expiry.
#[tracing::instrument(name = "refresh_tokens_family_live", skip(executor))]
pub async fn family_live<'e, E>(
    executor: E,
    user_id: &str,
    family_id: &str,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_tokens \
         WHERE family_id = ? AND user_id = ? AND revoked_at IS NULL AND expires_at > ?",
    )
    .bind(family_id)
    .bind(user_id)
    .bind(now)
    .fetch_one(executor)
    .await?;
    Ok(live > 0)
}
