//! A fresh database on each engine: empty, on the engine asked for, and migrating it
//! again is a no-op. On MariaDB, how the pool treats a connection the server dropped:
//! pinged and replaced after sitting idle, handed out as it is when used just before.

use souk_db::testing::TestBackend;

use super::{count, database};

souk_db::on_both_backends!(
    #[tokio::test]
    fresh_database_is_empty_and_on_the_right_engine,
);

async fn fresh_database_is_empty_and_on_the_right_engine(backend: TestBackend) {
    let test = database(backend).await;
    test.db.ping().await.expect("ping");
    for table in [
        "users",
        "refresh_tokens",
        "password_resets",
        "outbox_events",
    ] {
        assert_eq!(count(&test, table).await, 0, "{table} starts empty");
    }
    // Migrating again is a no-op, not an error.
    test.db.migrate().await.expect("second migrate");
}

/// A pool of one connection on a fresh MariaDB database, and that connection's id.
async fn one_connection_pool() -> (souk_db::Db, u64) {
    let url = souk_db::testing::empty_mysql().await;
    let settings = souk_db::PoolSettings {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(5),
        stock_connections: 0,
        mail_connections: 0,
    };
    let db = souk_db::Db::connect(&url, &settings)
        .await
        .expect("connect");
    let id = connection_id(&db).await.expect("the connection's id");
    // sqlx pings a connection as it comes back: wait until it is idle in the pool, so
    // that the session is ended after that ping and not during it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.pool().num_idle() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    (db, id)
}

async fn connection_id(db: &souk_db::Db) -> Result<u64, sqlx::Error> {
    sqlx::query_scalar::<_, i64>("SELECT CONNECTION_ID()")
        .fetch_one(db.pool())
        .await
        .map(|id| id as u64)
}

/// Ends the session `id` on the server, as a server restart or a network drop would.
async fn kill_session(id: u64) {
    use sqlx::{Connection, Executor};
    let mut admin = souk_db::testing::server_connection().await;
    admin
        .execute(format!("KILL {id}").as_str())
        .await
        .expect("kill the session");
    let _ = admin.close().await;
}

#[tokio::test]
async fn a_connection_dropped_while_idle_is_replaced_before_use() {
    let (db, first) = one_connection_pool().await;
    kill_session(first).await;
    // Idle past the threshold: the pool pings it, finds it gone and opens another.
    tokio::time::sleep(std::time::Duration::from_millis(1_300)).await;
    let second = connection_id(&db)
        .await
        .expect("the query runs on a new connection");
    assert_ne!(second, first, "the dropped connection was replaced");
}

#[tokio::test]
async fn a_connection_used_a_moment_ago_is_handed_out_without_a_ping() {
    let (db, first) = one_connection_pool().await;
    kill_session(first).await;
    // In use well within the threshold: no ping, so the query meets the dropped
    // session itself (the price of one round trip less per query under load)...
    assert!(
        connection_id(&db).await.is_err(),
        "an unpinged dropped connection fails its query"
    );
    // ...and the pool, having closed it, opens a new one for the next.
    let next = connection_id(&db).await.expect("a new connection");
    assert_ne!(next, first);
}
