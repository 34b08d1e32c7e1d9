//! The Redis connection, when configured. Connecting is lazy and retried on use, so a
//! node starts (and reports not-ready) while Redis is down instead of refusing to
//! start; every command has a short deadline so a dead Redis costs callers milliseconds.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

const OPERATION_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis timed out")]
    Timeout,
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

pub struct RedisStore {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    prefix: String,
}

impl RedisStore {
    pub fn new(url: &str, prefix: &str) -> Result<Self, RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: OnceCell::new(),
            prefix: prefix.to_owned(),
        })
    }

    /// `prefix` + `key`: every key Souk writes lives under the configured namespace.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let client = self.client.clone();
        let connection = tokio::time::timeout(
            OPERATION_TIMEOUT * 2,
            self.connection
                .get_or_try_init(|| async move { ConnectionManager::new(client).await }),
        )
        .await
        .map_err(|_| RedisError::Timeout)??;
        Ok(connection.clone())
    }

    /// Runs one operation with the deadline applied to connecting and answering.
    pub async fn run<T, F, Fut>(&self, operation: F) -> Result<T, RedisError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection().await?;
        tokio::time::timeout(OPERATION_TIMEOUT, operation(connection))
            .await
            .map_err(|_| RedisError::Timeout)?
            .map_err(RedisError::from)
    }

    pub async fn ping(&self) -> Result<(), RedisError> {
        self.run(|mut connection| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }
}
