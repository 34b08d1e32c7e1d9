//! Fresh, migrated databases for tests: a temporary SQLite file, or a new database on
//! the MariaDB/MySQL server named by `SOUK_TEST_MYSQL_URL` (which `scripts/test`
//! provisions). Each call returns its own database, so tests never share rows.

use std::path::PathBuf;

use sqlx::{Connection, Executor};

use crate::{Db, PoolSettings};

/// The server the test script provisions, when the variable is not set.
pub const DEFAULT_TEST_MYSQL_URL: &str = "mysql://souk:souk@127.0.0.1:3306";

/// A database for one test; the SQLite file is removed when dropped.
pub struct TestDatabase {
    pub db: Db,
    pub url: String,
    sqlite_dir: Option<PathBuf>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(directory) = self.sqlite_dir.take() {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    Sqlite,
    MySql,
}

pub async fn fresh(backend: TestBackend) -> TestDatabase {
    match backend {
        TestBackend::Sqlite => fresh_sqlite().await,
        TestBackend::MySql => fresh_mysql().await,
    }
}

pub async fn fresh_sqlite() -> TestDatabase {
    let directory =
        std::env::temp_dir().join(format!("souk-test-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&directory).expect("create temporary directory for sqlite");
    let url = format!("sqlite://{}?mode=rwc", directory.join("souk.db").display());
    let db = Db::connect(&url, &PoolSettings::default())
        .await
        .expect("open sqlite test database");
    db.migrate().await.expect("migrate sqlite test database");
    TestDatabase {
        db,
        url,
        sqlite_dir: Some(directory),
    }
}

/// The server URL (no database name) tests use for MariaDB.
pub fn mysql_server_url() -> String {
    std::env::var("SOUK_TEST_MYSQL_URL").unwrap_or_else(|_| DEFAULT_TEST_MYSQL_URL.to_owned())
}

/// A connection to the test server itself, in no database: to create or drop test
/// databases, or to end another session.
pub async fn server_connection() -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let server_url = mysql_server_url();
    sqlx::AnyConnection::connect(&server_url)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot reach MariaDB at {server_url} ({error}); run the suite with ./scripts/test, \
                 which provisions it, or set SOUK_TEST_MYSQL_URL"
            )
        })
}

/// What every test database's name starts with (`scripts/test-services` drops them).
const TEST_DATABASE_PREFIX: &str = "souk_t_";

/// A name for a new test database.
pub fn new_test_database_name() -> String {
    format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::now_v7().simple())
}

/// A new, empty database (no tables) on the test server: its URL. It outlives its test;
/// `scripts/test-services` drops those of earlier runs.
pub async fn empty_mysql() -> String {
    let server_url = mysql_server_url();
    let database_name = new_test_database_name();
    let mut admin = server_connection().await;
    admin
        .execute(format!("CREATE DATABASE `{database_name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci").as_str())
        .await
        .expect("create test database");
    let _ = admin.close().await;
    format!("{}/{database_name}", server_url.trim_end_matches('/'))
}

pub async fn fresh_mysql() -> TestDatabase {
    let url = empty_mysql().await;
    let db = Db::connect(&url, &PoolSettings::default())
        .await
        .expect("connect to mysql test database");
    db.migrate().await.expect("migrate mysql test database");
    TestDatabase {
        db,
        url,
        sqlite_dir: None,
    }
}

/// Two tests per case, `case::sqlite` and `case::mysql`, each run by the test attribute
/// given first: the case (`async fn case(backend: TestBackend)`) runs once on a fresh
/// SQLite file and once on a fresh MariaDB database.
///
/// `souk_db::on_both_backends!(#[tokio::test] first_case, second_case);`
#[macro_export]
macro_rules! on_both_backends {
    (#[$test:meta] $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[$test]
                async fn sqlite() {
                    super::$name($crate::testing::TestBackend::Sqlite).await
                }
                #[$test]
                async fn mysql() {
                    super::$name($crate::testing::TestBackend::MySql).await
                }
            }
        )*
    };
}

/// A `pending_payment` order of `user_id` for `total` EUR (cents) placed now, unpaid,
/// without addresses, shipping or tax: the order row the repository tests start from.
pub fn pending_order(id: &str, user_id: &str, total: i64) -> crate::orders::OrderRecord {
    let now = crate::clock::now_micros();
    crate::orders::OrderRecord {
        id: id.to_owned(),
        user_id: user_id.to_owned(),
        status: "pending_payment".to_owned(),
        was_paid: 0,
        currency: "EUR".to_owned(),
        total_amount: total,
        idempotency_key: None,
        request_hash: "h".to_owned(),
        payment_reference: None,
        expires_at: now + 60_000_000,
        stock_settled: 1,
        version: 1,
        created_at: now,
        updated_at: now,
        owner_epoch: 0,
        shipping_address: None,
        billing_address: None,
        subtotal_amount: total,
        shipping_amount: 0,
        tax_amount: 0,
        tax_rate_bps: 0,
        prices_include_tax: 1,
        shipping_method: None,
        shipping_method_name: None,
    }
}
