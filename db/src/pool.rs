//! The connection pools for either engine, chosen by the URL's scheme: the shared
//! pool, and on MySQL/MariaDB a small lane of connections kept for the node writer's
//! commits; the handle also carries the node writer's state.

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection, Executor};

use crate::node_writer::{self, NodeWriter};
use crate::DbError;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static MYSQL_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

/// How long a node waits for another node's migrations before giving up.
const MIGRATION_LOCK_WAIT_SECS: i64 = 600;

/// A pooled connection idle at least this long is pinged before it is handed out, so
/// one the server or the network dropped meanwhile is replaced rather than failing a
/// query; one used more recently is handed out as it is.
const PING_CONNECTIONS_IDLE_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, DbError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Backend::MySql)
        } else {
            // Never echo the URL: it may carry a password.
            Err(DbError::UnsupportedUrl(
                "expected a sqlite: or mysql: url".to_owned(),
            ))
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::MySql => "mysql",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Connections beside `max_connections` that only stock batches use (MySQL and
    /// MariaDB; 0: none). One SKU actor's batch holds every caller of that SKU, so it
    /// must not queue for a connection behind the requests those callers made.
    pub stock_connections: u32,
    /// Connections beside the others that only the email workers use (MySQL and
    /// MariaDB; 0: none, they use the shared pool). The workers run on the node's
    /// background thread, and a connection is driven by the runtime that opened it, so
    /// no connection that serves requests should be opened there.
    pub mail_connections: u32,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            stock_connections: 0,
            mail_connections: 0,
        }
    }
}

/// The named lock serializing migrations of one database (names are at most 64
/// characters: a long database name is replaced by its hash).
fn migration_lock_name(database: &str) -> String {
    let name = format!("souk_migrate:{database}");
    if name.len() <= 64 {
        return name;
    }
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(database.as_bytes()));
    format!("souk_migrate:{}", &digest[..40])
}

/// A pool on either engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    /// Connections only the node writer uses; `None` on SQLite (one writer at a time
    /// whatever the pool) or when none are configured.
    stock_lane: Option<AnyPool>,
    /// Connections only the email workers use; `None` on SQLite (its connections are
    /// driven by threads of their own, not by a runtime) or when none are configured.
    mail_lane: Option<AnyPool>,
    backend: Backend,
    /// The node writer's queue and slots, shared by every clone.
    writes: Arc<Mutex<node_writer::State>>,
    runtime: tokio::runtime::Handle,
}

impl Db {
    #[tracing::instrument(name = "db_connect", skip_all, fields(backend))]
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        tracing::Span::current().record("backend", backend.name());
        // `mariadb:` is accepted as an alias; sqlx only knows `mysql:`.
        let url = match url.strip_prefix("mariadb:") {
            Some(rest) => format!("mysql:{rest}"),
            None => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = Self::pool_options(backend, settings.max_connections, settings)
            .connect_with(options.clone())
            .await?;
        let lane = |connections: u32| match backend {
            Backend::MySql if connections > 0 => Some(
                Self::pool_options(backend, connections, settings)
                    .min_connections(0)
                    .connect_lazy_with(options.clone()),
            ),
            _ => None,
        };
        let stock_lane = lane(settings.stock_connections);
        let mail_lane = lane(settings.mail_connections);
        Ok(Self {
            pool,
            stock_lane,
            mail_lane,
            backend,
            writes: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    fn pool_options(
        backend: Backend,
        max_connections: u32,
        settings: &PoolSettings,
    ) -> AnyPoolOptions {
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(settings.acquire_timeout)
            // No idle reaping or lifetime recycling, so sqlx starts no maintenance task:
            // in sqlx 0.8.6 that task can spin at 100 % of a core forever (and hang the
            // process's exit) once a connection returned while another is taken drives
            // its idle count below zero (sqlx issue 3645). Stale connections are still
            // caught: one that sat idle is pinged before it is handed out.
            .idle_timeout(None)
            .max_lifetime(None)
            // A connection in use a moment ago is alive: pinging it too would double
            // the round trips of every one-statement read under load.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_CONNECTIONS_IDLE_FOR {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |connection, _meta| {
                Box::pin(async move {
                    match backend {
                        // WAL lets readers run beside the single writer; FULL sync makes an
                        // acknowledged commit survive power loss, not only a process crash;
                        // the busy timeout turns writer contention into waiting, not errors.
                        Backend::Sqlite => {
                            connection
                                .execute(
                                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                                )
                                .await?;
                        }
                        // Times are stored as integers, but keep the session in UTC so that
                        // anything the server computes agrees with them.
                        Backend::MySql => {
                            connection
                                .execute("SET time_zone = '+00:00', sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                                .await?;
                        }
                    }
                    Ok(())
                })
            })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool the email workers use: the mail lane, whose connections only they open
    /// (on the node's background thread); the shared pool where there is no lane.
    pub fn mail_pool(&self) -> &AnyPool {
        self.mail_lane.as_ref().unwrap_or(&self.pool)
    }

    /// The node's writer of SKU batches and new orders (one per connected `Db`, shared
    /// by its clones).
    pub fn writer(&self) -> NodeWriter {
        NodeWriter::new(self.clone())
    }

    pub(crate) fn writer_state(&self) -> &Mutex<node_writer::State> {
        &self.writes
    }

    /// A connection for a node writer's commit: from the stock lane, whose connections
    /// only the writer's tasks open (on the runtime that connected the `Db`); from the
    /// shared pool where there is no lane.
    pub async fn acquire_for_writes(&self) -> Result<PoolConnection<Any>, DbError> {
        match &self.stock_lane {
            Some(lane) => Ok(lane.acquire().await?),
            None => Ok(self.pool.acquire().await?),
        }
    }

    /// The runtime the node writer's tasks run on: the one that connected the `Db`
    /// (the node's main runtime), which outlives the HTTP workers and actor arbiters
    /// that stop before it.
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations. On MySQL/MariaDB, nodes starting together take turns
    /// (see [`Db::migrate_mysql_serialized`]); SQLite is one process's file.
    #[tracing::instrument(name = "db_migrate", skip(self), fields(backend = self.backend.name()))]
    pub async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
            Backend::MySql => self.migrate_mysql_serialized().await?,
        }
        Ok(())
    }

    /// Runs the MySQL migrator on one connection while that connection holds a named
    /// lock (`GET_LOCK`) for this database, so that processes migrating the same
    /// database at once run one after the other: the later ones find the migrations
    /// applied and do nothing. sqlx takes such a lock itself, but with a timeout of -1,
    /// which MariaDB does not read as "wait forever": it answers NULL at once without
    /// the lock, and sqlx ignores the answer, so two nodes both insert the first
    /// migration's version and one fails with a duplicate key.
    async fn migrate_mysql_serialized(&self) -> Result<(), DbError> {
        let mut connection = self.pool.acquire().await?;
        let database: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
            .fetch_one(&mut *connection)
            .await?;
        let lock = migration_lock_name(database.as_deref().unwrap_or_default());
        let acquired: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&lock)
            .bind(MIGRATION_LOCK_WAIT_SECS)
            .fetch_one(&mut *connection)
            .await?;
        if acquired != Some(1) {
            return Err(DbError::MigrationLock(format!(
                "{lock} still held by another process after {MIGRATION_LOCK_WAIT_SECS} s"
            )));
        }
        tracing::debug!(lock, "holding the migration lock");
        // `run_direct` is `run` on a connection already held (sqlx's own way around
        // `run(&mut connection)` futures not being `Send` for every lifetime).
        let migrated = MYSQL_MIGRATOR.run_direct(&mut *connection).await;
        let released = sqlx::query_scalar::<_, Option<i64>>("SELECT RELEASE_LOCK(?)")
            .bind(&lock)
            .fetch_one(&mut *connection)
            .await;
        if released.is_err() {
            // Closing the session is the other way to drop a named lock.
            let _ = connection.detach().close().await;
        }
        migrated?;
        Ok(())
    }

    /// Round-trips one query on a pooled connection: the readiness check.
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut connection = self.pool.acquire().await?;
        connection.ping().await?;
        Ok(())
    }

    /// On SQLite the transaction takes the write lock up front (`BEGIN IMMEDIATE`): a
    /// deferred transaction that reads and then writes fails at once with "database is
    /// locked" when another connection wrote meanwhile, as the busy timeout does not
    /// apply to that upgrade; taking the lock first makes it wait instead.
    pub async fn begin(&self) -> Result<crate::Transaction, DbError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::MySql => self.pool.begin().await?,
        })
    }

    /// (connections open, of which idle, maximum): the pool gauges of `/metrics`.
    pub fn pool_usage(&self) -> (u32, usize, u32) {
        (
            self.pool.size(),
            self.pool.num_idle(),
            self.pool.options().get_max_connections(),
        )
    }

    pub async fn close(&self) {
        for lane in [&self.stock_lane, &self.mail_lane].into_iter().flatten() {
            lane.close().await;
        }
        self.pool.close().await;
    }
}
