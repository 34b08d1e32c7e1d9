//! Souk's database layer: one pool type for SQLite (the embedded default) and
//! MySQL/MariaDB (production), the migrations of both, one repository module per
//! domain, and the node writer (`node_writer`), which group-commits the node's SKU
//! batches and new orders together.
//!
//! Every repository query is written once, in the SQL subset both engines share, and
//! runs through sqlx's `Any` driver; only the DDL differs per engine (see
//! `migrations/sqlite` and `migrations/mysql`). Conventions that keep the two engines
//! interchangeable:
//! - ids are UUIDv7 strings (`VARCHAR(36)`), opaque to clients and ordered by creation
//!   time, which is what keyset pagination sorts on;
//! - times are `BIGINT` microseconds since the Unix epoch, UTC;
//! - money is `BIGINT` minor units next to a `CHAR(3)` ISO 4217 code;
//! - flags and enums are strings or integers, never engine-specific boolean types.

pub mod addresses;
pub mod carts;
pub mod catalog;
pub mod clock;
pub mod email;
pub mod error;
pub mod fence;
pub mod ids;
pub mod inventory;
pub mod node_writer;
pub mod one_time_tokens;
pub mod orders;
pub mod outbox;
pub mod payment_events;
pub mod pool;
pub mod returns;
pub mod sessions;
mod shapes;
pub mod shipping;
pub mod users;
pub mod variants;

pub use error::DbError;
pub use pool::{Backend, Db, PoolSettings};

/// The sqlx database type every repository is written against.
pub type Database = sqlx::Any;
/// A transaction on either engine.
pub type Transaction = sqlx::Transaction<'static, sqlx::Any>;

#[cfg(feature = "test-support")]
pub mod testing;

/// Values bound in one `IN (…)` list at most: far under SQLite's 32 766 and MariaDB's
/// 65 535 parameters, so a list of any length is read in pieces of this size.
pub(crate) const MAX_IN_LIST: usize = 1_000;

/// The rows a query finds for `values`, however many (read in pieces of
/// [`MAX_IN_LIST`]): `head` writes the statement up to its `IN (`, binding what it
/// needs; each piece's values are bound after it.
pub(crate) async fn rows_in_pieces<T, V>(
    connection: &mut sqlx::AnyConnection,
    values: &[V],
    head: impl Fn(&mut sqlx::QueryBuilder<'static, sqlx::Any>),
) -> Result<Vec<T>, DbError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
    V: ToString,
{
    let mut rows = Vec::new();
    for piece in values.chunks(MAX_IN_LIST) {
        let mut builder = sqlx::QueryBuilder::new("");
        head(&mut builder);
        let mut separated = builder.separated(", ");
        for value in piece {
            separated.push_bind(value.to_string());
        }
        builder.push(")");
        rows.extend(
            builder
                .build_query_as::<T>()
                .fetch_all(&mut *connection)
                .await?,
        );
    }
    Ok(rows)
}

/// The keys (its only column) that `select` finds: a query binding the moment by which
/// rows fall due, then how many keys at most, as a sweep asks for what is due.
pub(crate) async fn keys_due<'e, E>(
    executor: E,
    select: &'static str,
    now: clock::Micros,
    limit: u32,
) -> Result<Vec<String>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows: Vec<(String,)> = sqlx::query_as(select)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(executor)
        .await?;
    Ok(rows.into_iter().map(|(key,)| key).collect())
}

/// The rows `select` (a `SELECT … FROM … WHERE <column> IN (` prefix) finds for `ids`,
/// then ordered by `order_by`: one query for a page of parents' children or for rows by
/// their ids, written once for every repository.
pub(crate) async fn rows_for_ids<'e, E, T>(
    executor: E,
    select: &str,
    ids: &[String],
    order_by: &str,
) -> Result<Vec<T>, DbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
    T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> + Send + Unpin,
{
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut builder = sqlx::QueryBuilder::<sqlx::Any>::new(select);
    let mut separated = builder.separated(", ");
    for id in ids {
        separated.push_bind(id.clone());
    }
    builder.push(") ORDER BY ");
    builder.push(order_by);
    Ok(builder.build_query_as::<T>().fetch_all(executor).await?)
}
