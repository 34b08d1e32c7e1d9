//! A fresh database on each engine: empty, on the engine asked for, and migrating it
//! again is a no-op.

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
