//! The node writer against real databases (SQLite and MariaDB): concurrent checkouts
//! and SKU batches share commits, every answered order is stored whole (row, lines,
//! history, event) and every answered SKU batch with its rows, and one part's failure
//! in a shared commit — a duplicate order, a fenced SKU batch — is that part's alone.

use souk_db::clock::now_micros;
use souk_db::inventory::{self, Batch, BatchError, ItemRecord, MovementRecord, ReservationRecord};
use souk_db::node_writer::Written;
use souk_db::orders::{HistoryRecord, LineRecord, NewOrder, OrderRecord};
use souk_db::outbox::OutboxEvent;
use souk_db::testing::{fresh, pending_order, TestBackend};
use souk_db::DbError;

fn new_order(id: &str, user_id: &str, key: Option<&str>, lines: i64) -> NewOrder {
    let now = now_micros();
    NewOrder {
        order: OrderRecord {
            idempotency_key: key.map(str::to_owned),
            ..pending_order(id, user_id, 700 * lines)
        },
        lines: (1..=lines)
            .map(|line_no| LineRecord {
                order_id: id.to_owned(),
                line_no,
                sku: format!("W-{line_no}"),
                product_id: souk_db::ids::new_id(),
                name: "Written".to_owned(),
                unit_amount: 700,
                quantity: 1,
            })
            .collect(),
        history: HistoryRecord {
            id: souk_db::ids::new_id(),
            order_id: id.to_owned(),
            from_status: None,
            to_status: "pending_payment".to_owned(),
            actor: format!("user:{user_id}"),
            reason: "placed".to_owned(),
            created_at: now,
        },
        event: OutboxEvent::new("order.placed", id, &serde_json::json!({"order_id": id})).unwrap(),
        max_unpaid: None,
    }
}

async fn count(db: &souk_db::Db, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn concurrent_checkouts_share_commits_and_a_duplicate_fails_alone(backend: TestBackend) {
    let test = fresh(backend).await;
    let writer = test.db.writer();
    // 60 orders of 1 to 3 lines from 6 customers, each with its own idempotency key,
    // and one more reusing the key of order 7: the unique key refuses that one only.
    let mut placed: Vec<NewOrder> = (0..60)
        .map(|n| {
            let key = format!("key-{n}");
            let customer = format!("customer-{}", n % 6);
            new_order(&souk_db::ids::new_id(), &customer, Some(&key), n % 3 + 1)
        })
        .collect();
    let reused_key = new_order(&souk_db::ids::new_id(), "customer-1", Some("key-7"), 1);
    placed.insert(30, reused_key.clone());
    let checkouts: Vec<_> = placed
        .iter()
        .cloned()
        .map(|order| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.insert_order(order).await })
        })
        .collect();
    let mut answers = Vec::new();
    for checkout in checkouts {
        answers.push(checkout.await.unwrap());
    }

    for (order, answer) in placed.iter().zip(&answers) {
        if order.order.id == reused_key.order.id {
            assert!(
                matches!(answer, Err(DbError::UniqueViolation { .. })),
                "the reused key is refused: {answer:?}"
            );
        } else {
            assert!(answer.is_ok(), "order {}: {answer:?}", order.order.id);
        }
    }
    let written = writer.written();
    assert_eq!(written.orders, 60);
    assert!(
        written.commits < written.orders,
        "concurrent checkouts share commits: {written:?}"
    );
    // Each answered order is stored whole; the refused one left nothing.
    assert_eq!(count(&test.db, "SELECT COUNT(*) FROM orders").await, 60);
    let lines: i64 = placed
        .iter()
        .map(|order| order.lines.len() as i64)
        .sum::<i64>()
        - 1;
    assert_eq!(
        count(&test.db, "SELECT COUNT(*) FROM order_lines").await,
        lines
    );
    assert_eq!(
        count(&test.db, "SELECT COUNT(*) FROM order_history").await,
        60
    );
    assert_eq!(
        count(
            &test.db,
            "SELECT COUNT(*) FROM outbox_events WHERE topic = 'order.placed'"
        )
        .await,
        60
    );
    let stray = format!(
        "SELECT COUNT(*) FROM order_lines WHERE order_id = '{}'",
        reused_key.order.id
    );
    assert_eq!(count(&test.db, &stray).await, 0);
}

async fn an_order_alone_is_written_at_once(backend: TestBackend) {
    let test = fresh(backend).await;
    let writer = test.db.writer();
    let id = souk_db::ids::new_id();
    writer
        .insert_order(new_order(&id, "customer-0", None, 2))
        .await
        .unwrap();
    assert_eq!(
        writer.written(),
        Written {
            commits: 1,
            orders: 1,
            stock_batches: 0,
        }
    );
    let stored = format!("SELECT COUNT(*) FROM order_lines WHERE order_id = '{id}'");
    assert_eq!(count(&test.db, &stored).await, 2);
    // The same order again is a duplicate, answered as such.
    let again = writer
        .insert_order(new_order(&id, "customer-0", None, 2))
        .await;
    assert!(
        matches!(again, Err(DbError::UniqueViolation { .. })),
        "{again:?}"
    );
}

/// A commit that cannot get a connection (the pool's only one taken, its wait over)
/// answers the pool's own timeout, to an order and to a SKU batch alike: a transient
/// failure the caller retries, not a broken one.
async fn a_commit_without_a_connection_answers_the_pool_timeout(backend: TestBackend) {
    let test = fresh(backend).await;
    let settings = souk_db::PoolSettings {
        max_connections: 1,
        acquire_timeout: std::time::Duration::from_millis(200),
        ..souk_db::PoolSettings::default()
    };
    let busy = souk_db::Db::connect(&test.url, &settings).await.unwrap();
    let writer = busy.writer();
    let held = busy.pool().acquire().await.unwrap();

    let id = souk_db::ids::new_id();
    let order = writer
        .insert_order(new_order(&id, "customer-0", None, 1))
        .await;
    assert!(
        matches!(order, Err(DbError::Sqlx(sqlx::Error::PoolTimedOut))),
        "{order:?}"
    );
    let stock = writer
        .write_stock(stock_batch("BUSY-1", 1, "order-1"))
        .await;
    assert!(
        matches!(
            stock,
            Err(BatchError::Db(DbError::Sqlx(sqlx::Error::PoolTimedOut)))
        ),
        "{stock:?}"
    );

    drop(held);
    writer
        .insert_order(new_order(&id, "customer-0", None, 1))
        .await
        .unwrap();
    let stored = format!("SELECT COUNT(*) FROM orders WHERE id = '{id}'");
    assert_eq!(count(&test.db, &stored).await, 1);
}

/// A batch of `sku` moving from `version - 1` to `version` (a new row at version 1)
/// that reserves one unit for `order_id`.
fn stock_batch(sku: &str, version: i64, order_id: &str) -> Batch {
    let now = now_micros();
    Batch {
        item: Some(ItemRecord {
            sku: sku.to_owned(),
            on_hand: 10,
            reserved: version - 1,
            low_stock_threshold: 0,
            version,
            updated_at: now,
            owner_epoch: 0,
        }),
        expected_version: (version > 1).then_some(version - 1),
        new_reservations: vec![ReservationRecord {
            sku: sku.to_owned(),
            order_id: order_id.to_owned(),
            quantity: 1,
            expires_at: now + 60_000_000,
            created_at: now,
            customer_id: None,
        }],
        removed_reservations: Vec::new(),
        movements: vec![MovementRecord {
            id: souk_db::ids::new_id(),
            sku: sku.to_owned(),
            kind: "reservation".to_owned(),
            delta_on_hand: 0,
            delta_reserved: 1,
            order_id: Some(order_id.to_owned()),
            actor: format!("order:{order_id}"),
            reason: String::new(),
            version,
            created_at: now,
            request_key: None,
        }],
        events: Vec::new(),
    }
}

async fn many_skus_and_orders_share_commits_and_a_fenced_batch_fails_alone(backend: TestBackend) {
    let test = fresh(backend).await;
    let writer = test.db.writer();
    // 40 SKUs created (version 1), each reserving for its first order.
    let created: Vec<_> = (0..40)
        .map(|n| {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .write_stock(stock_batch(&format!("S-{n}"), 1, &format!("first-{n}")))
                    .await
            })
        })
        .collect();
    for creation in created {
        creation.await.unwrap().unwrap();
    }
    // Then, at once: every SKU's next batch (version 2), a stale batch of S-7 that
    // still expects version 0 (another owner's), a second creation of S-8, and orders.
    let mut stock: Vec<(String, Batch)> = (0..40)
        .map(|n| {
            (
                format!("S-{n}"),
                stock_batch(&format!("S-{n}"), 2, &format!("second-{n}")),
            )
        })
        .collect();
    let mut stale = stock_batch("S-7", 1, "stale-7");
    stale.expected_version = Some(0);
    stock.insert(11, ("stale".to_owned(), stale));
    stock.insert(
        23,
        ("recreated".to_owned(), stock_batch("S-8", 1, "recreated-8")),
    );
    let batches: Vec<_> = stock
        .into_iter()
        .map(|(name, batch)| {
            let writer = writer.clone();
            tokio::spawn(async move { (name, writer.write_stock(batch).await) })
        })
        .collect();
    let orders: Vec<_> = (0..10)
        .map(|n| {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .insert_order(new_order(
                        &souk_db::ids::new_id(),
                        "customer-0",
                        Some(&format!("k-{n}")),
                        1,
                    ))
                    .await
            })
        })
        .collect();
    for batch in batches {
        let (name, answer) = batch.await.unwrap();
        match name.as_str() {
            "stale" | "recreated" => assert!(
                matches!(answer, Err(BatchError::Fenced)),
                "{name} is fenced: {answer:?}"
            ),
            _ => assert!(answer.is_ok(), "{name}: {answer:?}"),
        }
    }
    for order in orders {
        order.await.unwrap().unwrap();
    }
    let written = writer.written();
    assert_eq!(
        (written.stock_batches, written.orders),
        (80, 10),
        "{written:?}"
    );
    assert!(
        written.commits < 40 + 40 + 10,
        "SKU batches and orders share commits: {written:?}"
    );
    // Every SKU is at version 2 with both its reservations and movements; the fenced
    // batches left nothing.
    let mut connection = test.db.pool().acquire().await.unwrap();
    for n in 0..40 {
        let sku = format!("S-{n}");
        let item = inventory::load_item(&mut connection, &sku)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((item.version, item.reserved), (2, 1), "{sku}");
        let held: Vec<String> = inventory::load_reservations(&mut connection, &sku)
            .await
            .unwrap()
            .into_iter()
            .map(|reservation| reservation.order_id)
            .collect();
        assert_eq!(
            held,
            vec![format!("first-{n}"), format!("second-{n}")],
            "{sku}"
        );
    }
    assert_eq!(
        count(&test.db, "SELECT COUNT(*) FROM inventory_movements").await,
        80
    );
    assert_eq!(
        count(
            &test.db,
            "SELECT COUNT(*) FROM inventory_reservations WHERE order_id IN ('stale-7', 'recreated-8')"
        )
        .await,
        0
    );
    assert_eq!(count(&test.db, "SELECT COUNT(*) FROM orders").await, 10);
}

async fn one_statement_writes_many_items_and_a_stale_one_is_found_alone(backend: TestBackend) {
    let test = fresh(backend).await;
    let mut connection = test.db.pool().acquire().await.unwrap();
    for n in 0..4 {
        test.db
            .writer()
            .write_stock(stock_batch(&format!("P-{n}"), 1, &format!("a-{n}")))
            .await
            .unwrap();
    }
    // Four batches at version 2, and between them a stale one of P-2 (expects 0).
    let mut stale = stock_batch("P-2", 3, "stale");
    stale.expected_version = Some(0);
    let batches: Vec<Batch> = (0..4)
        .map(|n| stock_batch(&format!("P-{n}"), 2, &format!("b-{n}")))
        .collect();
    let parts = [&batches[0], &batches[1], &stale, &batches[2], &batches[3]];
    let mut transaction = sqlx::Connection::begin(&mut *connection).await.unwrap();
    let written = inventory::write_parts(&mut transaction, &parts)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(written, vec![true, true, false, true, true]);
    for n in 0..4 {
        let item = inventory::load_item(&mut connection, &format!("P-{n}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item.version, 2, "P-{n}");
    }
    assert_eq!(
        count(
            &test.db,
            "SELECT COUNT(*) FROM inventory_reservations WHERE order_id = 'stale'"
        )
        .await,
        0
    );
    // All four fresh ones in one statement (no stale one among them).
    let batches: Vec<Batch> = (0..4)
        .map(|n| stock_batch(&format!("P-{n}"), 3, &format!("c-{n}")))
        .collect();
    let parts: Vec<&Batch> = batches.iter().collect();
    let mut transaction = sqlx::Connection::begin(&mut *connection).await.unwrap();
    let written = inventory::write_parts(&mut transaction, &parts)
        .await
        .unwrap();
    transaction.commit().await.unwrap();
    assert_eq!(written, vec![true; 4]);
    assert_eq!(
        count(
            &test.db,
            "SELECT COUNT(*) FROM inventory_items WHERE version = 3"
        )
        .await,
        4
    );
    assert_eq!(
        count(&test.db, "SELECT COUNT(*) FROM inventory_reservations").await,
        12
    );
}

/// `new_order` with a cap on its customer's unpaid orders.
fn capped_order(user_id: &str, max_unpaid: u32) -> NewOrder {
    NewOrder {
        max_unpaid: Some(max_unpaid),
        ..new_order(&souk_db::ids::new_id(), user_id, None, 1)
    }
}

async fn an_order_past_its_customers_unpaid_cap_is_refused_alone(backend: TestBackend) {
    let test = fresh(backend).await;
    let writer = test.db.writer();
    // One of alice's orders that is paid (it does not count), then two unpaid ones.
    let mut paid = new_order(&souk_db::ids::new_id(), "alice", None, 1);
    paid.order.status = "paid".to_owned();
    writer.insert_order(paid).await.unwrap();
    for _ in 0..2 {
        writer.insert_order(capped_order("alice", 2)).await.unwrap();
    }

    // A third unpaid order is refused; bob, with none, is not.
    let refused = writer.insert_order(capped_order("alice", 2)).await;
    assert!(
        matches!(refused, Err(DbError::UnpaidOrderLimit { limit: 2 })),
        "{refused:?}"
    );
    writer.insert_order(capped_order("bob", 2)).await.unwrap();
    // Without a cap, or with a higher one, alice's order is written.
    writer
        .insert_order(new_order(&souk_db::ids::new_id(), "alice", None, 1))
        .await
        .unwrap();

    // A SKU batch carrying three orders of carol (cap 2) and one of dave: in one
    // commit, carol's first two count each other and the third is refused; the batch
    // itself is written.
    let carried = vec![
        capped_order("carol", 2),
        capped_order("carol", 2),
        capped_order("carol", 2),
        capped_order("dave", 2),
    ];
    let outcomes = writer
        .write_stock_with_orders(stock_batch("CAP-1", 1, "carried"), carried.clone())
        .await
        .unwrap();
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok() && outcomes[3].is_ok());
    assert!(
        matches!(outcomes[2], Err(DbError::UnpaidOrderLimit { limit: 2 })),
        "{outcomes:?}"
    );
    let unpaid = |user: &str| {
        format!(
            "SELECT COUNT(*) FROM orders WHERE user_id = '{user}' AND status = 'pending_payment'"
        )
    };
    assert_eq!(count(&test.db, &unpaid("alice")).await, 3);
    assert_eq!(count(&test.db, &unpaid("bob")).await, 1);
    assert_eq!(count(&test.db, &unpaid("carol")).await, 2);
    assert_eq!(count(&test.db, &unpaid("dave")).await, 1);
    let refused_id = &carried[2].order.id;
    for table in ["orders", "order_lines", "order_history"] {
        let column = if table == "orders" { "id" } else { "order_id" };
        let rows = format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{refused_id}'");
        assert_eq!(count(&test.db, &rows).await, 0, "{table}");
    }
    assert_eq!(
        count(
            &test.db,
            "SELECT COUNT(*) FROM inventory_reservations WHERE sku = 'CAP-1'"
        )
        .await,
        1
    );
}

/// Text that quoting and escaping touch: quotes, a backslash, control characters,
/// accents and a character outside the Basic Multilingual Plane.
const AWKWARD: &str = "O'Brien \"Crème\" \\ brûlée\n\t😀 ";

async fn every_value_of_many_orders_survives_one_insert(backend: TestBackend) {
    let test = fresh(backend).await;
    // 600 orders, so every table's rows go in several statements, with addresses of
    // ~2 000 characters.
    let address = AWKWARD.repeat(70);
    let placed: Vec<NewOrder> = (0..600)
        .map(|n| {
            let id = format!("whole-{n:04}");
            let mut new = new_order(&id, &format!("customer-{}", n % 7), None, 1 + n % 3);
            new.order.shipping_address = Some(address.clone());
            new.order.billing_address = (n % 2 == 0).then(|| address.clone());
            new.order.payment_reference = Some(AWKWARD.to_owned());
            new.order.total_amount = i64::MAX - n;
            new.order.tax_amount = i64::MIN + n;
            new.order.shipping_method_name = Some(AWKWARD.to_owned());
            for line in &mut new.lines {
                line.name = format!("{AWKWARD}{n}");
            }
            new.history.reason = AWKWARD.to_owned();
            new.event =
                OutboxEvent::new("order.placed", &id, &serde_json::json!({ "note": address }))
                    .unwrap();
            new
        })
        .collect();
    let mut connection = test.db.pool().acquire().await.unwrap();
    souk_db::orders::insert(&mut connection, &placed)
        .await
        .unwrap();
    drop(connection);
    // Ids in placing order are in key order, so the stored lines and history of all
    // the orders read back in the order they were placed.
    let ids: Vec<String> = placed.iter().map(|new| new.order.id.clone()).collect();
    let lines = souk_db::orders::lines_of(test.db.pool(), &ids)
        .await
        .unwrap();
    let placed_lines: Vec<LineRecord> = placed.iter().flat_map(|new| new.lines.clone()).collect();
    assert_eq!(lines, placed_lines);
    let history = souk_db::orders::history_of(test.db.pool(), &ids)
        .await
        .unwrap();
    let placed_history: Vec<HistoryRecord> = placed.iter().map(|new| new.history.clone()).collect();
    assert_eq!(history, placed_history);
    for new in &placed {
        let id = &new.order.id;
        let stored = souk_db::orders::find(test.db.pool(), id).await.unwrap();
        assert_eq!(stored.as_ref(), Some(&new.order), "order {id}");
        let event = souk_db::outbox::find(test.db.pool(), &new.event.id)
            .await
            .unwrap();
        assert_eq!(event.as_ref(), Some(&new.event), "event of {id}");
    }
    // A duplicate anywhere among many refuses them all, and writes none.
    let mut again: Vec<NewOrder> = (0..50)
        .map(|n| new_order(&format!("whole-new-{n}"), "customer-x", None, 1))
        .collect();
    again.push(placed[599].clone());
    let mut connection = test.db.pool().acquire().await.unwrap();
    let refused = souk_db::orders::insert(&mut connection, &again).await;
    assert!(
        matches!(refused, Err(DbError::UniqueViolation { .. })),
        "{refused:?}"
    );
    drop(connection);
    assert_eq!(
        count(
            &test.db,
            "SELECT COUNT(*) FROM orders WHERE id LIKE 'whole-new-%'"
        )
        .await,
        0
    );
    assert_eq!(count(&test.db, "SELECT COUNT(*) FROM orders").await, 600);
}

souk_db::on_both_backends!(
    #[tokio::test]
    every_value_of_many_orders_survives_one_insert,
    one_statement_writes_many_items_and_a_stale_one_is_found_alone,
    concurrent_checkouts_share_commits_and_a_duplicate_fails_alone,
    an_order_alone_is_written_at_once,
    a_commit_without_a_connection_answers_the_pool_timeout,
    many_skus_and_orders_share_commits_and_a_fenced_batch_fails_alone,
    an_order_past_its_customers_unpaid_cap_is_refused_alone,
);
