//! What the `souk-db` integration tests share: the macro that runs each case on both
//! engines.

/// Two `#[tokio::test]`s per case, `case::sqlite` and `case::mysql`: the case runs once
/// on a fresh SQLite file and once on a fresh MariaDB database (`SOUK_TEST_MYSQL_URL`).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(souk_db::testing::TestBackend::Sqlite).await
                }
                #[tokio::test]
                async fn mysql() {
                    super::$name(souk_db::testing::TestBackend::MySql).await
                }
            }
        )*
    };
}
