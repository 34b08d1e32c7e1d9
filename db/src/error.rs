use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    /// A unique constraint refused the write; `constraint` names it when the engine says.
    #[error("unique constraint violated")]
    UniqueViolation { constraint: Option<String> },
    /// A value the schema cannot hold; a bug in the caller, not bad user input.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The order's customer already has as many unpaid orders as its cap allows.
    #[error("the customer already has {limit} unpaid orders")]
    UnpaidOrderLimit { limit: u32 },
    #[error("unsupported database url: {0}")]
    UnsupportedUrl(String),
    /// Another process held the migration lock for too long, or the server refused it.
    #[error("migration lock not acquired: {0}")]
    MigrationLock(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The engine gave up on the transaction for a concurrent one (a deadlock or a
    /// serialization failure, SQLSTATE 40001): the whole transaction may be retried.
    #[error("the transaction met a concurrent one: {0}")]
    Contention(sqlx::Error),
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error {
            if database_error.is_unique_violation() {
                return DbError::UniqueViolation {
                    constraint: database_error.constraint().map(str::to_owned),
                };
            }
            if database_error.code().as_deref() == Some("40001") {
                return DbError::Contention(error);
            }
        }
        DbError::Sqlx(error)
    }
}
