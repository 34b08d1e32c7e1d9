//! The users repository.

use sqlx::{Any, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    /// Always stored normalised (trimmed, lowercase), so equality is plain equality.
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub status: String,
    pub email_verified_at: Option<Micros>,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// What an admin listing filters on. `after` is the last id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub email_contains: Option<String>,
    pub role: Option<String>,
    pub after: Option<String>,
    pub limit: u32,
}

const COLUMNS: &str =
    "id, email, name, password_hash, role, status, email_verified_at, created_at, updated_at";

#[tracing::instrument(name = "users_insert", skip_all, fields(user_id = %user.id))]
pub async fn insert<'e, E>(executor: E, user: &UserRecord) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, role, status, email_verified_at, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(&user.role)
    .bind(&user.status)
    .bind(user.email_verified_at)
    .bind(user.created_at)
    .bind(user.updated_at)
    .execute(executor)
    .await?;
    Ok(())
}

#[tracing::instrument(name = "users_find_by_id", skip(executor))]
pub async fn find_by_id<'e, E>(executor: E, id: &str) -> Result<Option<UserRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ?");
    Ok(sqlx::query_as::<_, UserRecord>(&sql)
        .bind(id)
        .fetch_optional(executor)
        .await?)
}

#[tracing::instrument(name = "users_find_by_email", skip_all)]
pub async fn find_by_email<'e, E>(executor: E, email: &str) -> Result<Option<UserRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = ?");
    Ok(sqlx::query_as::<_, UserRecord>(&sql)
        .bind(email)
        .fetch_optional(executor)
        .await?)
}

/// Writes a user's name, and nothing else, so a change of the address made meanwhile
/// stands. Returns whether a row matched.
#[tracing::instrument(name = "users_rename", skip_all, fields(user_id = %id))]
pub async fn rename<'e, E>(executor: E, id: &str, name: &str, now: Micros) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("UPDATE users SET name = ?, updated_at = ? WHERE id = ?")
        .bind(name)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves a user to another address, verified at `verified_at`, and nothing else, so a
/// rename made meanwhile stands. Returns whether a row matched; an address another user
/// has is a unique violation.
#[tracing::instrument(name = "users_move_email", skip_all, fields(user_id = %id))]
pub async fn move_email<'e, E>(
    executor: E,
    id: &str,
    email: &str,
    verified_at: Option<Micros>,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE users SET email = ?, email_verified_at = ?, updated_at = ? WHERE id = ?",
    )
    .bind(email)
    .bind(verified_at)
    .bind(now)
    .bind(id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(name = "users_update_password", skip_all, fields(user_id = %id))]
pub async fn update_password<'e, E>(
    executor: E,
    id: &str,
    password_hash: &str,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(name = "users_set_status", skip(executor))]
pub async fn set_status<'e, E>(
    executor: E,
    id: &str,
    status: &str,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("UPDATE users SET status = ?, updated_at = ? WHERE id = ?")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(name = "users_set_role", skip(executor))]
pub async fn set_role<'e, E>(
    executor: E,
    id: &str,
    role: &str,
    now: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("UPDATE users SET role = ?, updated_at = ? WHERE id = ?")
        .bind(role)
        .bind(now)
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(name = "users_delete", skip(executor))]
pub async fn delete<'e, E>(executor: E, id: &str) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("DELETE FROM users WHERE id = ?")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// One page of users in creation order, `limit + 1` rows at most so the caller can tell
/// whether another page follows.
// The filter's email needle is personal data: only its shape is logged.
#[tracing::instrument(name = "users_list", skip_all, fields(role = ?filter.role, searched = filter.email_contains.is_some(), limit = filter.limit))]
pub async fn list<'e, E>(executor: E, filter: &UserFilter) -> Result<Vec<UserRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let pattern = filter
        .email_contains
        .as_deref()
        .map(|needle| format!("%{}%", escape_like(needle)));
    // `! ` escapes LIKE wildcards: a backslash would need different literals on the
    // two engines.
    let sql = format!(
        "SELECT {COLUMNS} FROM users \
         WHERE (? IS NULL OR email LIKE ? ESCAPE '!') \
           AND (? IS NULL OR role = ?) \
           AND (? IS NULL OR id > ?) \
         ORDER BY id LIMIT ?"
    );
    Ok(sqlx::query_as::<_, UserRecord>(&sql)
        .bind(pattern.clone())
        .bind(pattern)
        .bind(filter.role.clone())
        .bind(filter.role.clone())
        .bind(filter.after.clone())
        .bind(filter.after.clone())
        .bind(i64::from(filter.limit) + 1)
        .fetch_all(executor)
        .await?)
}

/// Makes `%`, `_` and the escape character itself match literally in a LIKE pattern.
pub fn escape_like(needle: &str) -> String {
    let mut escaped = String::with_capacity(needle.len());
    for character in needle.chars() {
        if matches!(character, '%' | '_' | '!') {
            escaped.push('!');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a%b_c!d"), "a!%b!_c!!d");
        assert_eq!(escape_like("plain"), "plain");
    }
}
