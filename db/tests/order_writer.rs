//! The node's order writer against real databases (SQLite and MariaDB): concurrent
//! checkouts share commits, every answered order is stored whole (row, lines, history,
//! event), and one order's failure in a shared batch is that order's alone.

use souk_db::clock::now_micros;
use souk_db::order_writer::{OrderWriter, Written};
use souk_db::orders::{HistoryRecord, LineRecord, NewOrder, OrderRecord};
use souk_db::outbox::OutboxEvent;
use souk_db::testing::{fresh, TestBackend};
use souk_db::DbError;

fn new_order(id: &str, user_id: &str, key: Option<&str>, lines: i64) -> NewOrder {
    let now = now_micros();
    NewOrder {
        order: OrderRecord {
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            status: "pending_payment".to_owned(),
            was_paid: 0,
            currency: "EUR".to_owned(),
            total_amount: 700 * lines,
            idempotency_key: key.map(str::to_owned),
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
            subtotal_amount: 700 * lines,
            shipping_amount: 0,
            tax_amount: 0,
            tax_rate_bps: 0,
            prices_include_tax: 1,
            shipping_method: None,
            shipping_method_name: None,
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
    let writer = OrderWriter::new(test.db.clone());
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
            tokio::spawn(async move { writer.insert(order).await })
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
    let writer = OrderWriter::new(test.db.clone());
    let id = souk_db::ids::new_id();
    writer
        .insert(new_order(&id, "customer-0", None, 2))
        .await
        .unwrap();
    assert_eq!(
        writer.written(),
        Written {
            commits: 1,
            orders: 1
        }
    );
    let stored = format!("SELECT COUNT(*) FROM order_lines WHERE order_id = '{id}'");
    assert_eq!(count(&test.db, &stored).await, 2);
    // The same order again is a duplicate, answered as such.
    let again = writer.insert(new_order(&id, "customer-0", None, 2)).await;
    assert!(
        matches!(again, Err(DbError::UniqueViolation { .. })),
        "{again:?}"
    );
}

souk_db::on_both_backends!(
    #[tokio::test]
    concurrent_checkouts_share_commits_and_a_duplicate_fails_alone,
    an_order_alone_is_written_at_once,
);
