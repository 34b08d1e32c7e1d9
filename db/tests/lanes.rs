//! The lanes beside the shared pool. The stock lane: on MariaDB the node writer's
//! commits (SKU batches and new orders) get a connection of their own even while
//! ordinary work holds every connection of the shared pool. The mail lane: the email
//! workers' connections, apart from those that serve requests. On SQLite, and with no
//! lane configured, both share the pool and wait like everyone else.

use std::time::Duration;

use souk_db::testing::{empty_mysql, fresh_sqlite};
use souk_db::{Db, PoolSettings};

fn settings(stock_connections: u32) -> PoolSettings {
    PoolSettings {
        max_connections: 2,
        acquire_timeout: Duration::from_secs(2),
        stock_connections,
        mail_connections: 0,
    }
}

/// Holds every connection of the shared pool.
async fn exhaust(db: &Db) -> Vec<sqlx::pool::PoolConnection<sqlx::Any>> {
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(db.pool().acquire().await.expect("a shared connection"));
    }
    assert!(
        db.pool().try_acquire().is_none(),
        "the shared pool is exhausted"
    );
    held
}

#[tokio::test]
async fn the_writer_gets_a_lane_connection_while_the_shared_pool_is_exhausted() {
    let db = Db::connect(&empty_mysql().await, &settings(1))
        .await
        .expect("connect");
    let held = exhaust(&db).await;
    let mut connection = tokio::time::timeout(Duration::from_secs(1), db.acquire_for_writes())
        .await
        .expect("the lane answers at once")
        .expect("a lane connection");
    let (one,): (i64,) = sqlx::query_as("SELECT 1")
        .fetch_one(&mut *connection)
        .await
        .expect("the lane connection works");
    assert_eq!(one, 1);
    // The lane's one connection is taken: the next commit waits for the lane, not for
    // the shared pool (whose connections may belong to a runtime that is stopping).
    let waiting = tokio::spawn({
        let db = db.clone();
        async move { db.acquire_for_writes().await.map(drop) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "no lane connection is free yet");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "a shared connection is not taken");
    drop(connection);
    waiting
        .await
        .expect("the waiting commit did not panic")
        .expect("the freed lane connection");
    db.close().await;
}

#[tokio::test]
async fn without_a_lane_the_writer_waits_for_the_shared_pool() {
    let sqlite = fresh_sqlite().await;
    for db in [
        Db::connect(&empty_mysql().await, &settings(0))
            .await
            .expect("connect"),
        // SQLite has one writer whatever the pools: a lane setting is ignored there.
        Db::connect(&sqlite.url, &settings(1))
            .await
            .expect("connect"),
    ] {
        let held = exhaust(&db).await;
        let waited =
            tokio::time::timeout(Duration::from_millis(300), db.acquire_for_writes()).await;
        assert!(waited.is_err(), "no connection beside the shared pool");
        drop(held);
        db.close().await;
    }
}

#[tokio::test]
async fn the_mail_pool_is_a_lane_of_its_own_on_mariadb_only() {
    let mail = |mail_connections| PoolSettings {
        mail_connections,
        ..settings(0)
    };
    let db = Db::connect(&empty_mysql().await, &mail(1))
        .await
        .expect("connect");
    let held = exhaust(&db).await;
    let connection = tokio::time::timeout(Duration::from_secs(1), db.mail_pool().acquire())
        .await
        .expect("the mail lane answers at once")
        .expect("a mail lane connection");
    assert!(
        db.mail_pool().try_acquire().is_none(),
        "the mail lane has one connection"
    );
    drop((held, connection));
    db.close().await;

    let sqlite = fresh_sqlite().await;
    for db in [
        Db::connect(&empty_mysql().await, &mail(0))
            .await
            .expect("connect"),
        // SQLite's connections are not driven by a runtime: no lane there.
        Db::connect(&sqlite.url, &mail(1)).await.expect("connect"),
    ] {
        let held = exhaust(&db).await;
        let waited =
            tokio::time::timeout(Duration::from_millis(300), db.mail_pool().acquire()).await;
        assert!(waited.is_err(), "mail waits for the shared pool");
        drop(held);
        db.close().await;
    }
}

/// Neither pool runs sqlx's maintenance task (idle reaping, lifetime recycling), which
/// in sqlx 0.8.6 can spin forever once connections are taken and returned at once
/// (sqlx issue 3645): the pools are configured without the timeouts that start it.
#[tokio::test]
async fn no_pool_runs_the_maintenance_task() {
    let url = empty_mysql().await;
    let db = Db::connect(&url, &settings(1)).await.unwrap();
    let sqlite = fresh_sqlite().await;
    for pool in [db.pool(), sqlite.db.pool()] {
        let options = pool.options();
        assert_eq!(options.get_idle_timeout(), None);
        assert_eq!(options.get_max_lifetime(), None);
        assert_eq!(options.get_min_connections(), 0);
    }
}
