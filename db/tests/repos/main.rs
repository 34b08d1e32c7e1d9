//! The repositories of `souk-db` against both engines: every case runs once on a fresh
//! SQLite file and once on a fresh MariaDB database (`SOUK_TEST_MYSQL_URL`), unless it
//! needs no database (ids and the clock). Here: the helpers the cases share. The cases:
//! a fresh database and its pooled connections (`engine`), users (`users`), refresh
//! tokens and password resets (`tokens`), the outbox in a user's transaction
//! (`outbox`), ids and the clock (`ids_and_clock`), lists longer than one statement
//! binds (`long_lists`), and what a SKU's ledger holds of a batch (`ledger`).

mod engine;
mod ids_and_clock;
mod ledger;
mod long_lists;
mod outbox;
mod tokens;
mod users;

use souk_db::clock::Micros;
use souk_db::ids;
use souk_db::testing::{fresh, TestBackend, TestDatabase};
use souk_db::users::UserRecord;
use souk_db::Backend;

// ---------------------------------------------------------------------------------------
// helpers

/// A fixed instant with non-zero microseconds and far beyond `i32`, to catch truncation.
const T0: Micros = 1_764_000_000_123_456;

async fn database(backend: TestBackend) -> TestDatabase {
    let test = fresh(backend).await;
    let expected = match backend {
        TestBackend::Sqlite => Backend::Sqlite,
        TestBackend::MySql => Backend::MySql,
    };
    assert_eq!(test.db.backend(), expected);
    test
}

fn user(email: &str) -> UserRecord {
    UserRecord {
        id: ids::new_id(),
        email: email.to_owned(),
        name: format!("Name of {email}"),
        password_hash: "$2b$12$abcdefghijklmnopqrstuuZ0123456789ABCDEFGHIJKLMNOPQRSTU".to_owned(),
        role: "customer".to_owned(),
        status: "active".to_owned(),
        email_verified_at: None,
        created_at: T0,
        updated_at: T0,
    }
}

async fn count(test: &TestDatabase, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(test.db.pool())
        .await
        .expect("count rows")
}
