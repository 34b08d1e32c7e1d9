//! The address book repository: each user's saved addresses. Every query names the
//! owning user next to the address id, so one user's id can never reach another's row.
//! Edits are conditional on the version read; a new address is counted against the
//! cap with its owner's row locked, so two concurrent inserts cannot both pass it.

use sqlx::{Any, AnyConnection, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct AddressRecord {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub phone: Option<String>,
    pub version: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

const COLUMNS: &str =
    "id, user_id, name, line1, line2, city, region, postal_code, country, phone, \
     version, created_at, updated_at";

/// What an insert found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Inserted,
    /// The user already has `max` addresses; nothing was written.
    Full,
}

/// Inserts `address` unless its user already has `max` addresses. The user's row is
/// locked first (a no-op update), so concurrent inserts for one user take turns and
/// each counts the others' rows.
#[tracing::instrument(name = "addresses_insert", skip_all, fields(address_id = %address.id, user_id = %address.user_id))]
pub async fn insert(
    connection: &mut AnyConnection,
    address: &AddressRecord,
    max: u32,
) -> Result<Inserted, DbError> {
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    sqlx::query("UPDATE users SET id = id WHERE id = ?")
        .bind(&address.user_id)
        .execute(&mut *transaction)
        .await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM addresses WHERE user_id = ?")
        .bind(&address.user_id)
        .fetch_one(&mut *transaction)
        .await?;
    if count >= i64::from(max) {
        return Ok(Inserted::Full);
    }
    sqlx::query(&format!(
        "INSERT INTO addresses ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&address.id)
    .bind(&address.user_id)
    .bind(&address.name)
    .bind(&address.line1)
    .bind(&address.line2)
    .bind(&address.city)
    .bind(&address.region)
    .bind(&address.postal_code)
    .bind(&address.country)
    .bind(&address.phone)
    .bind(address.version)
    .bind(address.created_at)
    .bind(address.updated_at)
    .execute(&mut *transaction)
    .await?;
    transaction.commit().await?;
    Ok(Inserted::Inserted)
}

/// The address if `user_id` owns it.
#[tracing::instrument(name = "addresses_find", skip(executor))]
pub async fn find<'e, E>(
    executor: E,
    user_id: &str,
    id: &str,
) -> Result<Option<AddressRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, AddressRecord>(&format!(
        "SELECT {COLUMNS} FROM addresses WHERE id = ? AND user_id = ?"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(executor)
    .await?)
}

/// One page of a user's addresses in creation order (ids are UUIDv7), after the id
/// `after`; `limit + 1` rows at most so the caller can tell whether another follows.
#[tracing::instrument(name = "addresses_list", skip(executor))]
pub async fn list<'e, E>(
    executor: E,
    user_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<AddressRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, AddressRecord>(&format!(
        "SELECT {COLUMNS} FROM addresses WHERE user_id = ? AND (? IS NULL OR id > ?) \
         ORDER BY id LIMIT ?"
    ))
    .bind(user_id)
    .bind(after)
    .bind(after)
    .bind(i64::from(limit) + 1)
    .fetch_all(executor)
    .await?)
}

/// Writes the fields of `address` if its row is still at `expected_version` (the
/// record carries the next one). Returns whether it was.
#[tracing::instrument(name = "addresses_update", skip_all, fields(address_id = %address.id, user_id = %address.user_id))]
pub async fn update<'e, E>(
    executor: E,
    address: &AddressRecord,
    expected_version: i64,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE addresses SET name = ?, line1 = ?, line2 = ?, city = ?, region = ?, \
         postal_code = ?, country = ?, phone = ?, version = ?, updated_at = ? \
         WHERE id = ? AND user_id = ? AND version = ?",
    )
    .bind(&address.name)
    .bind(&address.line1)
    .bind(&address.line2)
    .bind(&address.city)
    .bind(&address.region)
    .bind(&address.postal_code)
    .bind(&address.country)
    .bind(&address.phone)
    .bind(address.version)
    .bind(address.updated_at)
    .bind(&address.id)
    .bind(&address.user_id)
    .bind(expected_version)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes the address if `user_id` owns it. Returns whether it did.
#[tracing::instrument(name = "addresses_delete", skip(executor))]
pub async fn delete<'e, E>(executor: E, user_id: &str, id: &str) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("DELETE FROM addresses WHERE id = ? AND user_id = ?")
        .bind(id)
        .bind(user_id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes every address of a user (their account is being deleted).
#[tracing::instrument(name = "addresses_delete_for_user", skip(executor))]
pub async fn delete_for_user<'e, E>(executor: E, user_id: &str) -> Result<u64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("DELETE FROM addresses WHERE user_id = ?")
        .bind(user_id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected())
}
