//! Owner-epoch fences on both engines: a claim raises a row's epoch but never lowers
//! it, and once a later owner has claimed a row no write of an earlier one lands —
//! neither a SKU batch nor an order transition — while unfenced writes (epoch kept as
//! loaded) work as before.

use souk_db::clock::now_micros;
use souk_db::fence::{self, Claim, FencedRow};
use souk_db::inventory::{self, Batch, BatchError, ItemRecord};
use souk_db::orders::{self, HistoryRecord, LineRecord, OrderRecord, Transition};
use souk_db::outbox::OutboxEvent;
use souk_db::testing::{fresh, pending_order, TestBackend};

souk_db::on_both_backends!(
    #[tokio::test]
    a_later_owners_claim_fences_an_earlier_owners_sku_batch,
    a_later_owners_claim_fences_an_earlier_owners_order_transition,
);

fn item(sku: &str, on_hand: i64, version: i64, owner_epoch: i64) -> ItemRecord {
    ItemRecord {
        sku: sku.to_owned(),
        on_hand,
        reserved: 0,
        low_stock_threshold: 0,
        version,
        updated_at: now_micros(),
        owner_epoch,
    }
}

fn batch(item: ItemRecord, expected_version: Option<i64>) -> Batch {
    Batch {
        item: Some(item),
        expected_version,
        ..Batch::default()
    }
}

async fn a_later_owners_claim_fences_an_earlier_owners_sku_batch(backend: TestBackend) {
    let test = fresh(backend).await;
    let mut connection = test.db.pool().acquire().await.unwrap();
    let writer = test.db.writer();
    let claim = fence::claim(&mut connection, FencedRow::Item, "F-1", 5)
        .await
        .unwrap();
    assert_eq!(claim, Claim::Absent);
    // The owner of epoch 5 creates the row and writes it.
    writer
        .write_stock(batch(item("F-1", 10, 1, 5), None))
        .await
        .unwrap();
    writer
        .write_stock(batch(item("F-1", 11, 2, 5), Some(1)))
        .await
        .unwrap();
    // The owner of epoch 7 claims it; 5 can no longer claim or write.
    let claim = fence::claim(&mut connection, FencedRow::Item, "F-1", 7)
        .await
        .unwrap();
    assert_eq!(claim, Claim::Claimed);
    let claim = fence::claim(&mut connection, FencedRow::Item, "F-1", 5)
        .await
        .unwrap();
    assert_eq!(claim, Claim::Stale { owner_epoch: 7 });
    let stale = writer
        .write_stock(batch(item("F-1", 99, 3, 5), Some(2)))
        .await;
    assert!(matches!(stale, Err(BatchError::Fenced)), "{stale:?}");
    // Claiming again with the same epoch is a no-op that still succeeds.
    let claim = fence::claim(&mut connection, FencedRow::Item, "F-1", 7)
        .await
        .unwrap();
    assert_eq!(claim, Claim::Claimed);
    writer
        .write_stock(batch(item("F-1", 12, 3, 7), Some(2)))
        .await
        .unwrap();
    let stored = inventory::load_item(&mut connection, "F-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.on_hand, stored.version, stored.owner_epoch),
        (12, 3, 7)
    );
    // A node that is not clustered writes with the epoch it loaded: it still writes.
    writer
        .write_stock(batch(item("F-1", 13, 4, stored.owner_epoch), Some(3)))
        .await
        .unwrap();
}

fn order(id: &str, version: i64, owner_epoch: i64) -> OrderRecord {
    OrderRecord {
        version,
        owner_epoch,
        ..pending_order(id, "u1", 500)
    }
}

fn history(order_id: &str, to: &str) -> HistoryRecord {
    HistoryRecord {
        id: souk_db::ids::new_id(),
        order_id: order_id.to_owned(),
        from_status: Some("pending_payment".to_owned()),
        to_status: to.to_owned(),
        actor: "system".to_owned(),
        reason: String::new(),
        created_at: now_micros(),
    }
}

fn event(order_id: &str) -> OutboxEvent {
    OutboxEvent::new(
        "order.status",
        order_id,
        &serde_json::json!({"order_id": order_id}),
    )
    .unwrap()
}

async fn a_later_owners_claim_fences_an_earlier_owners_order_transition(backend: TestBackend) {
    let test = fresh(backend).await;
    let mut connection = test.db.pool().acquire().await.unwrap();
    let id = souk_db::ids::new_id();
    let line = LineRecord {
        order_id: id.clone(),
        line_no: 1,
        sku: "F-1".to_owned(),
        product_id: souk_db::ids::new_id(),
        name: "Fenced".to_owned(),
        unit_amount: 500,
        quantity: 1,
    };
    let placed = history(&id, "pending_payment");
    let new = orders::NewOrder {
        order: order(&id, 1, 0),
        lines: vec![line],
        history: placed,
        event: event(&id),
        max_unpaid: None,
    };
    orders::insert(&mut connection, &[new]).await.unwrap();
    // Two owners believe they own the order: 3 claims first, then 4.
    assert_eq!(
        fence::claim(&mut connection, FencedRow::Order, &id, 3)
            .await
            .unwrap(),
        Claim::Claimed
    );
    assert_eq!(
        fence::claim(&mut connection, FencedRow::Order, &id, 4)
            .await
            .unwrap(),
        Claim::Claimed
    );
    let mut stale = order(&id, 2, 3);
    stale.status = "cancelled".to_owned();
    let outcome = orders::transition(
        &mut connection,
        &stale,
        1,
        &history(&id, "cancelled"),
        &event(&id),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Transition::Fenced);
    let mut current = order(&id, 2, 4);
    current.status = "paid".to_owned();
    let outcome = orders::transition(
        &mut connection,
        &current,
        1,
        &history(&id, "paid"),
        &event(&id),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Transition::Applied);
    // The same owner racing itself (an old version) is a conflict, not a fence.
    let outcome = orders::transition(
        &mut connection,
        &current,
        1,
        &history(&id, "paid"),
        &event(&id),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Transition::Conflict);
    let stored = orders::find(&mut *connection, &id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.version, stored.owner_epoch),
        ("paid", 2, 4)
    );
    let (entries,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM order_history WHERE order_id = ?")
            .bind(&id)
            .fetch_one(&mut *connection)
            .await
            .unwrap();
    assert_eq!(
        entries, 2,
        "only the placed and the applied transition are in the history"
    );
}
