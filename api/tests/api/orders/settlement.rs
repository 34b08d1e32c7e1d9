//! Settling a paid order that was cancelled: its refund happens once however many
//! settle it at once (its actor, and every node's sweeper), and a refund the provider
//! cannot make now stays owed until it can, rather than being marked done. A capture
//! the order could not keep is refunded the same way. Each node's sweeps act only on
//! the orders it runs.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use souk_actors::entity::EntityRouter;
use souk_actors::orders::views::OrderView;
use souk_actors::orders::{Order, OrderCommand, OrderRouter};

use super::{act, place, product, stock, stored_order};
use crate::helpers::*;

/// The order's recorded refunds, as (amount, reason).
async fn refunds_of(app: &TestApp, order_id: &str) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT amount, reason FROM order_refunds WHERE order_id = ? ORDER BY id")
        .bind(order_id)
        .fetch_all(app.database.db.pool())
        .await
        .unwrap()
}

async fn owed(app: &TestApp, order_id: &str) -> bool {
    let (settled,): (i64,) = sqlx::query_as("SELECT stock_settled FROM orders WHERE id = ?")
        .bind(order_id)
        .fetch_one(app.database.db.pool())
        .await
        .unwrap();
    settled == 0
}

/// The order cancelled with its stock and refund still owed, as if its node died right
/// after committing the cancellation.
async fn cancelled_before_settling(app: &TestApp, order_id: &str) {
    sqlx::query("UPDATE orders SET status = 'cancelled', stock_settled = 0, version = version + 1, updated_at = 0 WHERE id = ?")
        .bind(order_id)
        .execute(app.database.db.pool())
        .await
        .unwrap();
}

/// Places and pays an order of `quantity` units of `sku` with `method`; its id and total.
async fn paid_order(
    app: &TestApp,
    shopper: &Session,
    sku: &str,
    quantity: i64,
    method: &str,
) -> (String, i64) {
    let placed: Value = place(app, shopper, json!([{"sku": sku, "quantity": quantity}])).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let paid = act(
        app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": method}),
    )
    .await;
    assert_eq!(paid.status(), 200, "pay: {}", paid.text().await.unwrap());
    (id, placed["total"]["amount"].as_i64().unwrap())
}

/// A paid order cancelled, its refund owed (as after a crash), settled by three
/// sweeps at once: one refund of the whole total is recorded, the units come back once.
#[actix_web::test]
async fn a_cancelled_paid_order_is_refunded_once_however_many_settle_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("refund-once").await;
    product(&app, &admin, "REFUND-ONCE", 1_250, 10).await;
    let (id, total) = paid_order(&app, &shopper, "REFUND-ONCE", 2, "test-card-ok").await;
    assert_eq!(stock(&app, &admin, "REFUND-ONCE").await, (8, 0));
    cancelled_before_settling(&app, &id).await;
    let orders = &app.state.orders;
    let (first, second, third) = tokio::join!(
        orders.settle_unsettled(),
        orders.settle_unsettled(),
        orders.settle_unsettled()
    );
    for settled in [first, second, third] {
        settled.unwrap();
    }
    assert_eq!(
        refunds_of(&app, &id).await,
        [(total, "order cancelled after payment".to_owned())]
    );
    assert_eq!(stock(&app, &admin, "REFUND-ONCE").await, (10, 0));
    assert!(!owed(&app, &id).await);
    let order: Value = app
        .client
        .get(app.url(&format!("/api/v1/orders/{id}")))
        .bearer_auth(&shopper.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(order["payment_status"], "refunded");
}

/// The provider cannot refund: the cancellation stands, its refund stays owed (the
/// order is not settled, nothing is recorded as refunded) and the sweeper asks again;
/// once the provider can, the refund is made and the order settled.
#[actix_web::test]
async fn a_refund_the_provider_cannot_make_stays_owed() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("refund-owed").await;
    product(&app, &admin, "REFUND-OWED", 990, 10).await;
    let (id, total) = paid_order(
        &app,
        &shopper,
        "REFUND-OWED",
        1,
        "test-card-refund-unavailable",
    )
    .await;
    let cancelled = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/cancel"),
        json!({"reason": "changed my mind"}),
    )
    .await;
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["payment_status"], "refund_pending");
    assert_eq!(stock(&app, &admin, "REFUND-OWED").await, (10, 0));
    assert!(refunds_of(&app, &id).await.is_empty());
    assert!(owed(&app, &id).await, "a refund not made is owed");
    sqlx::query("UPDATE orders SET updated_at = 0 WHERE id = ?")
        .bind(&id)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    app.state.orders.settle_unsettled().await.unwrap();
    assert!(
        owed(&app, &id).await,
        "still owed while the provider cannot refund"
    );
    assert!(app
        .metrics()
        .await
        .contains("souk_payment_refund_failures_total"));
    // The provider recovers (here: the payment becomes one the test double refunds).
    sqlx::query("UPDATE orders SET payment_reference = ? WHERE id = ?")
        .bind(format!("test-double-{id}"))
        .bind(&id)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    app.state.orders.settle_unsettled().await.unwrap();
    assert_eq!(
        refunds_of(&app, &id).await,
        [(total, "order cancelled after payment".to_owned())]
    );
    assert!(!owed(&app, &id).await);
}

/// The refunds owed on captures no order could keep, as (payment reference, amount).
async fn unkept_captures(app: &TestApp) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT payment_reference, amount FROM unkept_captures ORDER BY payment_reference",
    )
    .fetch_all(app.database.db.pool())
    .await
    .unwrap()
}

/// A payment captured for an order another transition changed meanwhile is given back;
/// when the provider cannot refund it then, the refund is owed and a sweep makes it
/// once the provider can.
#[actix_web::test]
async fn a_capture_the_order_cannot_keep_is_refunded_when_the_provider_can() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("unkept").await;
    product(&app, &admin, "UNKEPT", 1250, 5).await;
    let placed: Value = place(&app, &shopper, json!([{"sku": "UNKEPT", "quantity": 2}])).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let total = placed["total"]["amount"].as_i64().unwrap();
    // The order's actor holds the order (an expiry not yet due leaves it as it is);
    // then the order changes under it, as a transition on another node would.
    app.state.orders.expire(&id).await.unwrap();
    sqlx::query("UPDATE orders SET version = version + 1 WHERE id = ?")
        .bind(&id)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    let paid = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": "test-card-refund-unavailable"}),
    )
    .await;
    assert_eq!(paid.status(), 409, "pay: {}", paid.text().await.unwrap());
    let reference = format!("test-double-unrefundable-{id}");
    assert_eq!(unkept_captures(&app).await, [(reference.clone(), total)]);
    // Due at once (as thirty seconds later), while the provider still cannot refund.
    let due_now = "UPDATE unkept_captures SET attempted_at = 0";
    sqlx::query(due_now)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    assert_eq!(app.state.orders.refund_unkept_captures().await.unwrap(), 0);
    assert_eq!(unkept_captures(&app).await, [(reference, total)]);
    // The provider recovers (here: the payment becomes one the test double refunds).
    sqlx::query("UPDATE unkept_captures SET payment_reference = ?, attempted_at = 0")
        .bind(format!("test-double-{id}"))
        .execute(app.database.db.pool())
        .await
        .unwrap();
    assert_eq!(app.state.orders.refund_unkept_captures().await.unwrap(), 1);
    assert!(unkept_captures(&app).await.is_empty());
}

/// A paid order whose sale is still owed (as after a crash) is cancelled while the
/// sweeper settles it. The two run one after the other in the order's actor, so the
/// sweeper never sells on a status the cancellation has just changed: the units come
/// back whole, round after round.
#[actix_web::test]
async fn a_sweep_beside_a_cancellation_sells_nothing_for_the_cancelled_order() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("sweep-cancel").await;
    product(&app, &admin, "SWEEP-CANCEL", 500, 100).await;
    for round in 0..12 {
        let placed: Value = place(
            &app,
            &shopper,
            json!([{"sku": "SWEEP-CANCEL", "quantity": 3}]),
        )
        .await;
        let id = placed["id"].as_str().unwrap().to_owned();
        // As if the node died right after committing the payment, before its sale.
        sqlx::query("UPDATE orders SET status = 'paid', was_paid = 1, stock_settled = 0, version = version + 1, updated_at = 0 WHERE id = ?")
            .bind(&id)
            .execute(app.database.db.pool())
            .await
            .unwrap();
        let path = format!("/api/v1/orders/{id}/cancel");
        let (cancelled, swept) = tokio::join!(
            act(
                &app,
                &shopper.access_token,
                &path,
                json!({"reason": "changed my mind"})
            ),
            app.state.orders.settle_unsettled()
        );
        swept.unwrap();
        assert_eq!(cancelled.status(), 200, "round {round}");
        app.state.orders.settle_unsettled().await.unwrap();
        assert_eq!(
            stock(&app, &admin, "SWEEP-CANCEL").await,
            (100, 0),
            "round {round}: nothing sold for a cancelled order"
        );
        assert!(!owed(&app, &id).await, "round {round}");
    }
}

/// The order router of a node that runs none of the orders (on a cluster: a node
/// serving none of their shards); it still reaches them, through `inner`.
struct RunsNone(OrderRouter);

impl EntityRouter<Order> for RunsNone {
    fn send(
        &self,
        order_id: String,
        command: OrderCommand,
    ) -> BoxFuture<'static, Result<Option<OrderView>, souk_actors::Error>> {
        self.0.send(order_id, command)
    }

    fn serves_here(&self, _order_id: &str) -> bool {
        false
    }
}

/// A node's sweeps leave an order it does not run to the node that runs it: an unpaid
/// order past its deadline is not expired, nor a cancelled paid order settled, by the
/// other node's sweeps; the owner's sweeps do both.
#[actix_web::test]
async fn a_nodes_sweeps_leave_the_orders_it_does_not_run_to_their_owner() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("sweeps-owner").await;
    product(&app, &admin, "SWEEP-OWNER", 1_000, 10).await;
    let unpaid: Value = place(
        &app,
        &shopper,
        json!([{"sku": "SWEEP-OWNER", "quantity": 1}]),
    )
    .await;
    let unpaid = unpaid["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE orders SET expires_at = 0 WHERE id = ?")
        .bind(&unpaid)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    let (cancelled, _) = paid_order(&app, &shopper, "SWEEP-OWNER", 2, "test-card-ok").await;
    cancelled_before_settling(&app, &cancelled).await;

    let owner = &app.state.orders;
    let elsewhere = owner.with_router(Arc::new(RunsNone(owner.router().clone())));
    assert_eq!(elsewhere.expire_due().await.unwrap(), 0);
    assert_eq!(elsewhere.settle_unsettled().await.unwrap(), 0);
    assert_eq!(
        stored_order(&app, &shopper, &unpaid).await["status"],
        "pending_payment"
    );
    assert!(
        owed(&app, &cancelled).await,
        "settled by a node that does not run it"
    );
    assert!(refunds_of(&app, &cancelled).await.is_empty());

    assert_eq!(owner.expire_due().await.unwrap(), 1);
    assert_eq!(owner.settle_unsettled().await.unwrap(), 1);
    assert_eq!(
        stored_order(&app, &shopper, &unpaid).await["status"],
        "expired"
    );
    assert!(!owed(&app, &cancelled).await);
    assert_eq!(refunds_of(&app, &cancelled).await.len(), 1);
    assert_eq!(stock(&app, &admin, "SWEEP-OWNER").await, (10, 0));
}
