//! What a SKU's ledger holds of a batch's idempotent commands, read in one query per
//! list: sales and returns by order, and admins' request keys, of that SKU only.

use souk_db::inventory;
use souk_db::testing::TestBackend;

use super::database;

souk_db::on_both_backends!(
    #[tokio::test]
    a_batch_reads_what_its_skus_ledger_holds_of_its_orders_and_keys,
);

async fn a_batch_reads_what_its_skus_ledger_holds_of_its_orders_and_keys(backend: TestBackend) {
    let test = database(backend).await;
    let rows = [
        ("m1", "HELD", "sale", Some("order-1"), None),
        ("m2", "HELD", "return", Some("order-2"), None),
        ("m3", "HELD", "reservation", Some("order-3"), None),
        ("m4", "OTHER", "sale", Some("order-4"), None),
        ("m5", "HELD", "adjustment", None, Some("Delivery-7")),
        ("m6", "OTHER", "adjustment", None, Some("Delivery-8")),
    ];
    for (id, sku, kind, order_id, request_key) in rows {
        sqlx::query(
            "INSERT INTO inventory_movements (id, sku, kind, delta_on_hand, delta_reserved, \
             order_id, actor, reason, version, created_at, request_key) \
             VALUES (?, ?, ?, 0, 0, ?, 'test', 'test', 1, 0, ?)",
        )
        .bind(id)
        .bind(sku)
        .bind(kind)
        .bind(order_id)
        .bind(request_key)
        .execute(test.db.pool())
        .await
        .unwrap();
    }
    // More orders than one statement binds: the list is read in pieces.
    let mut order_ids: Vec<String> = (0..2_500).map(|n| format!("unknown-{n}")).collect();
    order_ids.extend(["order-1", "order-2", "order-3", "order-4"].map(str::to_owned));
    let order_ids: Vec<&str> = order_ids.iter().map(String::as_str).collect();
    let keys = ["Delivery-7", "delivery-7", "Delivery-8"];
    let mut connection = test.db.pool().acquire().await.unwrap();
    let (mut movements, requests) =
        inventory::recorded_for_batch(&mut connection, "HELD", &order_ids, &keys)
            .await
            .unwrap();
    movements.sort();
    assert_eq!(
        movements,
        [
            ("order-1".to_owned(), "sale".to_owned()),
            ("order-2".to_owned(), "return".to_owned()),
        ]
    );
    // Keys compare exactly, and another SKU's are not this one's.
    assert_eq!(requests, ["Delivery-7".to_owned()]);

    let (movements, requests) = inventory::recorded_for_batch(&mut connection, "HELD", &[], &[])
        .await
        .unwrap();
    assert!(movements.is_empty() && requests.is_empty());
}
