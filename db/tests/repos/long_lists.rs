//! Lists longer than an engine binds in one statement (SQLite 32 766 parameters,
//! MariaDB 65 535) are read in pieces: the stock of a catalog page's SKUs, and the side
//! rows of many products.

use souk_db::catalog::{self, ProductRecord};
use souk_db::inventory;
use souk_db::testing::TestBackend;

use super::database;

souk_db::on_both_backends!(
    #[tokio::test]
    lists_longer_than_one_statement_binds_are_read_in_pieces,
);

const LONG: usize = 70_000;

async fn lists_longer_than_one_statement_binds_are_read_in_pieces(backend: TestBackend) {
    let test = database(backend).await;
    for (sku, on_hand) in [("SKU-00001", 4), ("SKU-69999", 9)] {
        sqlx::query(
            "INSERT INTO inventory_items (sku, on_hand, reserved, low_stock_threshold, version, updated_at) \
             VALUES (?, ?, 1, 0, 1, 0)",
        )
        .bind(sku)
        .bind(on_hand)
        .execute(test.db.pool())
        .await
        .unwrap();
    }
    let skus: Vec<String> = (0..LONG).map(|n| format!("SKU-{n:05}")).collect();
    let mut connection = test.db.pool().acquire().await.unwrap();
    let mut available = inventory::available_for(&mut connection, &skus)
        .await
        .expect("the stock of 70 000 SKUs");
    available.sort();
    assert_eq!(
        available,
        [("SKU-00001".to_owned(), 3), ("SKU-69999".to_owned(), 8)]
    );

    let products: Vec<ProductRecord> = (0..LONG)
        .map(|n| ProductRecord {
            id: format!("product-{n:05}"),
            sku: format!("P-{n:05}"),
            name: "Unstored".to_owned(),
            description: String::new(),
            price_amount: 100,
            currency: "EUR".to_owned(),
            category_id: None,
            images: "[]".to_owned(),
            status: "active".to_owned(),
            created_at: 0,
            updated_at: 0,
        })
        .collect();
    let rows = catalog::with_side_rows(&mut connection, products)
        .await
        .expect("the side rows of 70 000 products");
    assert_eq!(rows.len(), LONG);
    assert_eq!(
        rows[LONG - 1].product.id,
        format!("product-{:05}", LONG - 1)
    );
    assert!(rows
        .iter()
        .all(|row| row.tags.is_empty() && row.variants.is_empty()));
}
