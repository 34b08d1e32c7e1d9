//! Migrations across processes: nodes that start together on a fresh MariaDB database
//! (a StatefulSet with parallel pod management, a scale-out) each run the migrator;
//! they must take turns, and every one of them must come up.

use std::sync::Arc;

use souk_db::testing::{mysql_server_url, new_test_database_name, server_connection};
use souk_db::{Db, PoolSettings};
use sqlx::Executor;

const NODES: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn pools_migrating_one_fresh_database_at_once_all_succeed() {
    let server_url = mysql_server_url();
    let database = new_test_database_name();
    let mut admin = server_connection().await;
    admin
        .execute(format!("CREATE DATABASE `{database}`").as_str())
        .await
        .expect("create an empty database");
    let url = format!("{}/{database}", server_url.trim_end_matches('/'));

    // One pool per "node", connected before anyone migrates.
    let mut pools = Vec::new();
    for _ in 0..NODES {
        pools.push(
            Db::connect(&url, &PoolSettings::default())
                .await
                .expect("connect"),
        );
    }
    let start = Arc::new(tokio::sync::Barrier::new(NODES));
    let mut migrations = tokio::task::JoinSet::new();
    for db in pools.clone() {
        let start = start.clone();
        migrations.spawn(async move {
            start.wait().await;
            db.migrate().await
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = migrations.join_next().await {
        if let Err(error) = result.expect("migration task") {
            failures.push(error.to_string());
        }
    }
    assert!(failures.is_empty(), "every node migrates: {failures:?}");

    let expected = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/mysql"))
        .expect("migrations folder")
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|entry| entry.path().extension().is_some_and(|ext| ext == "sql"))
        })
        .count() as i64;
    let (applied, succeeded): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), CAST(COALESCE(SUM(success), 0) AS SIGNED) FROM _sqlx_migrations",
    )
    .fetch_one(pools[0].pool())
    .await
    .expect("read the migrations table");
    assert_eq!((applied, succeeded), (expected, expected));

    // A node restarting later finds nothing to do.
    pools[1].migrate().await.expect("migrate again");

    for db in &pools {
        db.close().await;
    }
    admin
        .execute(format!("DROP DATABASE `{database}`").as_str())
        .await
        .expect("drop the test database");
}
