//! A transaction the engine gives up for a concurrent one reads as `Contention`, which
//! callers answer as retryable (503), not as an internal error. A real deadlock on the
//! MariaDB server: two transactions each holding the row the other wants.

use souk_db::testing::fresh_mysql;
use souk_db::DbError;

#[tokio::test]
async fn a_deadlock_victim_is_contention() {
    let database = fresh_mysql().await;
    let db = &database.db;
    sqlx::query("INSERT INTO catalog_skus (sku, product_id) VALUES ('A', 'one'), ('B', 'two')")
        .execute(db.pool())
        .await
        .unwrap();
    let update = "UPDATE catalog_skus SET product_id = 'taken' WHERE sku = ?";
    let mut first = db.begin().await.unwrap();
    let mut second = db.begin().await.unwrap();
    sqlx::query(update)
        .bind("A")
        .execute(&mut *first)
        .await
        .unwrap();
    sqlx::query(update)
        .bind("B")
        .execute(&mut *second)
        .await
        .unwrap();
    // Each now waits for the other's row: the server picks a victim.
    let (first_outcome, second_outcome) = tokio::join!(
        async {
            let outcome = sqlx::query(update).bind("B").execute(&mut *first).await;
            if outcome.is_ok() {
                first.commit().await.unwrap();
            }
            outcome.map_err(DbError::from)
        },
        async {
            let outcome = sqlx::query(update).bind("A").execute(&mut *second).await;
            if outcome.is_ok() {
                second.commit().await.unwrap();
            }
            outcome.map_err(DbError::from)
        }
    );
    let failures: Vec<DbError> = [first_outcome, second_outcome]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert_eq!(failures.len(), 1, "one victim: {failures:?}");
    assert!(
        matches!(failures[0], DbError::Contention(_)),
        "{:?}",
        failures[0]
    );
}
