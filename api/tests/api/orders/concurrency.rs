//! Orders under concurrency and crashes: a checkout waits for one commit of the node
//! writer shared with its reservation, hundreds of racing shoppers never oversell (both
//! engines), stock effects owed at a crash are finished once, concurrent commands on one
//! order apply once, and checkout never holds a connection while awaiting another.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::node_writer::Written;
use souk_db::testing::TestBackend;

use super::{act, order, place, product, stock, stored_order};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    racing_orders_never_oversell,
    a_checkout_waits_for_one_shared_commit,
);

/// (commits, SKU batches, orders) the node writer wrote between two readings.
fn written_between(before: Written, after: Written) -> (u64, u64, u64) {
    (
        after.commits - before.commits,
        after.stock_batches - before.stock_batches,
        after.orders - before.orders,
    )
}

/// The order rides with its last line's reservation: a one-line checkout is one commit
/// of the node writer (its SKU batch and its order together), a two-line checkout two
/// (the first line's reservation, then the second's with the order).
async fn a_checkout_waits_for_one_shared_commit(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("one-commit").await;
    product(&app, &admin, "ONE-1", 700, 10).await;
    product(&app, &admin, "ONE-2", 900, 10).await;
    let writer = app.state.db.writer();

    let before = writer.written();
    let placed = place(&app, &shopper, json!([{"sku": "ONE-1", "quantity": 2}])).await;
    let after = writer.written();
    assert_eq!(
        written_between(before, after),
        (1, 1, 1),
        "one commit holds the reservation and the order: {before:?} → {after:?}"
    );
    let id = placed["id"].as_str().unwrap();
    assert_eq!(stored_order(&app, &shopper, id).await, placed);
    assert_eq!(stock(&app, &admin, "ONE-1").await, (10, 2));
    assert_eq!(app.events("order.placed", id).await.len(), 1);

    let before = writer.written();
    let placed = place(
        &app,
        &shopper,
        json!([{"sku": "ONE-1", "quantity": 1}, {"sku": "ONE-2", "quantity": 3}]),
    )
    .await;
    let after = writer.written();
    assert_eq!(
        written_between(before, after),
        (2, 2, 1),
        "{before:?} → {after:?}"
    );
    let id = placed["id"].as_str().unwrap();
    assert_eq!(stored_order(&app, &shopper, id).await, placed);
    assert_eq!(stock(&app, &admin, "ONE-1").await, (10, 3));
    assert_eq!(stock(&app, &admin, "ONE-2").await, (10, 3));
}

/// Hundreds of shoppers race for one SKU: some pay, some cancel, some let it expire.
/// Afterwards nothing is oversold, the ledger recomputes on_hand, and every order's
/// state agrees with the stock it holds.
async fn racing_orders_never_oversell(backend: TestBackend) {
    let app = spawn_app_with(backend, |config| config.database.max_connections = 20).await;
    let admin = app.admin().await;
    const STOCK: i64 = 60;
    product(&app, &admin, "HOT", 1000, STOCK).await;
    let mut shoppers = Vec::new();
    for index in 0..10 {
        shoppers.push(app.customer(&format!("racer{index}")).await);
    }
    let shoppers = std::sync::Arc::new(shoppers);
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for index in 0..500usize {
        let app = app.clone();
        let shoppers = shoppers.clone();
        tasks.push(actix_web::rt::spawn(async move {
            let shopper = &shoppers[index % shoppers.len()];
            let quantity = 1 + (index % 2) as i64;
            // Like a real client, retry what the server refuses for overload (503).
            let mut placed = None;
            for attempt in 0..30u64 {
                let response = order(
                    &app,
                    shopper,
                    json!([{"sku": "HOT", "quantity": quantity}]),
                    Some(&format!("race-{index}")),
                )
                .await;
                let status = response.status();
                let body: Value = response.json().await.unwrap();
                match status {
                    StatusCode::CREATED | StatusCode::OK => {
                        placed = Some(body);
                        break;
                    }
                    StatusCode::CONFLICT => {
                        assert_eq!(body["code"], "insufficient_stock", "{body}");
                        return;
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1)))
                            .await
                    }
                    other => panic!("unexpected {other}: {body}"),
                }
            }
            let placed = placed.expect("the order was placed within its retries");
            let id = placed["id"].as_str().unwrap().to_owned();
            let (path, body) = match index % 3 {
                0 => (
                    format!("/api/v1/orders/{id}/pay"),
                    json!({"payment_method": "card"}),
                ),
                1 => (format!("/api/v1/orders/{id}/cancel"), json!({})),
                _ => return,
            };
            for attempt in 0..30u64 {
                let response = act(&app, &shopper.access_token, &path, body.clone()).await;
                match response.status() {
                    StatusCode::OK => return,
                    StatusCode::SERVICE_UNAVAILABLE => {
                        tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1)))
                            .await
                    }
                    // An earlier attempt answered 503 after its transition committed: the
                    // order is already where this retry wanted it.
                    StatusCode::CONFLICT => {
                        let current: Value = stored_order(&app, shopper, &id).await;
                        let wanted = if path.ends_with("/pay") {
                            "paid"
                        } else {
                            "cancelled"
                        };
                        assert_eq!(
                            current["status"], wanted,
                            "{path}: 409 for an order that is {}",
                            current["status"]
                        );
                        return;
                    }
                    other => panic!("{path}: {other}"),
                }
            }
            panic!("{path} never succeeded");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    // The rest run out of time.
    sqlx::query("UPDATE orders SET expires_at = 0 WHERE status = 'pending_payment'")
        .execute(app.database.db.pool())
        .await
        .unwrap();
    app.state.orders.expire_due().await.unwrap();

    let pool = app.database.db.pool();
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM orders")
        .fetch_all(pool)
        .await
        .unwrap();
    let quantities: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT order_id, quantity FROM order_lines")
            .fetch_all(pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let sold: i64 = rows
        .iter()
        .filter(|(_, status)| status == "paid")
        .map(|(id, _)| quantities[id])
        .sum();
    assert!(
        rows.iter()
            .all(|(_, status)| ["paid", "cancelled", "expired"].contains(&status.as_str())),
        "no order left pending"
    );
    assert!(sold <= STOCK && sold > 0, "sold {sold} of {STOCK}");
    assert_eq!(
        stock(&app, &admin, "HOT").await,
        (STOCK - sold, 0),
        "on_hand is what was not sold; nothing stays reserved"
    );

    let movements = souk_db::inventory::movements(pool, "HOT").await.unwrap();
    assert_eq!(
        movements.iter().map(|m| m.delta_on_hand).sum::<i64>(),
        STOCK - sold,
        "the ledger recomputes on_hand"
    );
    assert_eq!(movements.iter().map(|m| m.delta_reserved).sum::<i64>(), 0);
    for (id, status) in &rows {
        let kinds: Vec<&str> = movements
            .iter()
            .filter(|m| m.order_id.as_deref() == Some(id))
            .map(|m| m.kind.as_str())
            .collect();
        let expected: &[&str] = if status == "paid" {
            &["reservation", "sale"]
        } else {
            &["reservation", "release"]
        };
        assert_eq!(kinds, expected, "order {id} is {status}");
    }
}

/// A crash between a transition and its stock effect leaves the effect owed; the
/// sweeper finishes it, once.
#[actix_web::test]
async fn owed_stock_effects_are_finished_after_a_crash() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("crash").await;
    product(&app, &admin, "OWED", 100, 10).await;
    let paid: Value = place(&app, &shopper, json!([{"sku": "OWED", "quantity": 3}])).await;
    let cancelled: Value = place(&app, &shopper, json!([{"sku": "OWED", "quantity": 2}])).await;
    assert_eq!(stock(&app, &admin, "OWED").await, (10, 5));
    // As if the node died right after committing these transitions.
    let pool = app.database.db.pool();
    sqlx::query("UPDATE orders SET status = 'paid', was_paid = 1, stock_settled = 0, version = version + 1, updated_at = 0 WHERE id = ?")
        .bind(paid["id"].as_str().unwrap())
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE orders SET status = 'cancelled', stock_settled = 0, version = version + 1, updated_at = 0 WHERE id = ?")
        .bind(cancelled["id"].as_str().unwrap())
        .execute(pool)
        .await
        .unwrap();
    // The node's own sweeper may get there first; either way each effect happens once.
    app.state.orders.settle_unsettled().await.unwrap();
    assert_eq!(
        stock(&app, &admin, "OWED").await,
        (7, 0),
        "sold 3, released 2"
    );
    app.state.orders.settle_unsettled().await.unwrap();
    assert_eq!(
        stock(&app, &admin, "OWED").await,
        (7, 0),
        "settling again changes nothing"
    );
    let (owed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders WHERE stock_settled = 0")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(owed, 0, "nothing owed any more");
}

/// Commands for one order run one at a time in its actor: of five concurrent payments
/// exactly one goes through.
#[actix_web::test]
async fn concurrent_commands_on_one_order_apply_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("double").await;
    product(&app, &admin, "ONCE", 100, 10).await;
    let placed: Value = place(&app, &shopper, json!([{"sku": "ONCE", "quantity": 2}])).await;
    let path = format!("/api/v1/orders/{}/pay", placed["id"].as_str().unwrap());
    let attempts = futures_util::future::join_all((0..5).map(|_| {
        act(
            &app,
            &shopper.access_token,
            &path,
            json!({"payment_method": "card"}),
        )
    }))
    .await;
    let statuses: Vec<u16> = attempts
        .iter()
        .map(|response| response.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|status| [200, 409].contains(status)),
        "{statuses:?}"
    );
    assert_eq!(stock(&app, &admin, "ONCE").await, (8, 0), "sold once");
}

/// A node with a single database connection still places orders: no step of checkout
/// holds a connection while waiting for another (which would deadlock the pool as soon
/// as as many orders run as it has connections, until the acquire timeout).
#[actix_web::test]
async fn checkout_never_holds_a_connection_while_awaiting_another() {
    let app = spawn_app_with(TestBackend::MySql, |config| {
        config.database.max_connections = 1;
    })
    .await;
    let admin = app.admin().await;
    let shopper = app.customer("one-connection").await;
    product(&app, &admin, "ONECONN", 250, 3).await;
    for key in ["first", "second"] {
        let response = order(
            &app,
            &shopper,
            json!([{"sku": "ONECONN", "quantity": 1}]),
            Some(key),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED, "order {key}");
        let placed: Value = response.json().await.unwrap();
        assert_eq!(placed["items"][0]["sku"], "ONECONN");
    }
    assert_eq!(stock(&app, &admin, "ONECONN").await, (3, 2));
}
