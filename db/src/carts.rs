//! The cart repository: each cart is one row (`cart_key`, a JSON document of its lines,
//! `version`), written whole and only when the version is still the one read, so two
//! sessions editing one cart never lose a write: the loser reads again and retries.
//! A guest cart past `expires_at` is treated as gone and swept by `delete_expired`.

use sqlx::{Any, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct CartRow {
    pub cart_key: String,
    pub version: i64,
    /// The cart document (JSON bytes); the actors crate owns its shape.
    pub content: Vec<u8>,
    pub expires_at: Option<Micros>,
    pub updated_at: Micros,
}

/// The cart unless it is absent or expired at `now`.
#[tracing::instrument(name = "carts_find", skip(executor))]
pub async fn find<'e, E>(executor: E, key: &str, now: Micros) -> Result<Option<CartRow>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, CartRow>(
        "SELECT cart_key, version, content, expires_at, updated_at FROM carts \
         WHERE cart_key = ? AND (expires_at IS NULL OR expires_at > ?)",
    )
    .bind(key)
    .bind(now)
    .fetch_optional(executor)
    .await?)
}

/// Writes `row` (its `version` is the new one) if the stored cart is still at
/// `expected` (0: there is none, or only an expired one). `false`: another write won.
#[tracing::instrument(name = "carts_save", skip(executor, row), fields(cart_key = %row.cart_key, version = row.version))]
pub async fn save<'e, E>(
    executor: E,
    row: &CartRow,
    expected: i64,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any> + Copy,
{
    if expected == 0 {
        // An expired row under the key is gone as far as readers know: drop it first.
        sqlx::query(
            "DELETE FROM carts WHERE cart_key = ? AND expires_at IS NOT NULL AND expires_at <= ?",
        )
        .bind(&row.cart_key)
        .bind(now)
        .execute(executor)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO carts (cart_key, version, content, expires_at, updated_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&row.cart_key)
        .bind(row.version)
        .bind(&row.content)
        .bind(row.expires_at)
        .bind(row.updated_at)
        .execute(executor)
        .await;
        return match inserted {
            Ok(_) => Ok(true),
            Err(error) => match DbError::from(error) {
                DbError::UniqueViolation { .. } => Ok(false),
                other => Err(other),
            },
        };
    }
    let updated = sqlx::query(
        "UPDATE carts SET version = ?, content = ?, expires_at = ?, updated_at = ? \
         WHERE cart_key = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)",
    )
    .bind(row.version)
    .bind(&row.content)
    .bind(row.expires_at)
    .bind(row.updated_at)
    .bind(&row.cart_key)
    .bind(expected)
    .bind(now)
    .execute(executor)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Deletes the cart; with `expected`, only while it is still at that version.
#[tracing::instrument(name = "carts_delete", skip(executor))]
pub async fn delete<'e, E>(executor: E, key: &str, expected: Option<i64>) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let deleted =
        sqlx::query("DELETE FROM carts WHERE cart_key = ? AND (? IS NULL OR version = ?)")
            .bind(key)
            .bind(expected)
            .bind(expected)
            .execute(executor)
            .await?;
    Ok(deleted.rows_affected() == 1)
}

/// Deletes the carts expired at `now`; returns how many.
#[tracing::instrument(name = "carts_delete_expired", skip(executor))]
pub async fn delete_expired<'e, E>(executor: E, now: Micros) -> Result<u64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let deleted = sqlx::query("DELETE FROM carts WHERE expires_at IS NOT NULL AND expires_at <= ?")
        .bind(now)
        .execute(executor)
        .await?;
    Ok(deleted.rows_affected())
}
