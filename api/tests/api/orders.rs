//! Orders over HTTP: checkout, payment, fulfilment, cancellation, expiry, idempotency,
//! and stock that always agrees with the orders.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::node_writer::Written;
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    checkout_pay_ship_deliver,
    racing_orders_never_oversell,
    a_checkout_waits_for_one_shared_commit,
    a_retry_of_a_paid_order_answers_it_and_holds_nothing,
);

pub(crate) async fn product(app: &TestApp, admin: &Session, sku: &str, amount: i64, stock: i64) {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": format!("Item {sku}"), "price": {"amount": amount, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    if stock > 0 {
        let adjusted = app
            .post_json_as(
                &format!("/api/v1/admin/inventory/{sku}/adjust"),
                &admin.access_token,
                &json!({"delta": stock, "reason": "initial stock"}),
            )
            .await;
        assert_eq!(adjusted.status(), StatusCode::OK);
    }
}

pub(crate) async fn stock(app: &TestApp, admin: &Session, sku: &str) -> (i64, i64) {
    let stock: Value = app
        .get_as(
            &format!("/api/v1/admin/inventory/{sku}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    (
        stock["on_hand"].as_i64().unwrap(),
        stock["reserved"].as_i64().unwrap(),
    )
}

pub(crate) async fn order(
    app: &TestApp,
    user: &Session,
    items: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&user.access_token)
        .json(&json!({"items": items}));
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

/// Places an order that must be accepted; returns it.
pub(crate) async fn place(app: &TestApp, user: &Session, items: Value) -> Value {
    let response = order(app, user, items, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

pub(crate) async fn act(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.post_json_as(path, token, &body).await
}

/// `POST /api/v1/orders/{id}/pay` as `user` with the test double's accepting card.
async fn pay(app: &TestApp, user: &Session, id: &str) -> reqwest::Response {
    act(
        app,
        &user.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": "test-card-ok"}),
    )
    .await
}

/// `GET /api/v1/orders/{id}` as `user`, as JSON.
async fn stored_order(app: &TestApp, user: &Session, id: &str) -> Value {
    app.get_as(&format!("/api/v1/orders/{id}"), &user.access_token)
        .await
        .json()
        .await
        .unwrap()
}

/// Another body under a used key is refused, and the SKU of its one line is left as
/// `stock_after` (on hand, reserved) says.
async fn key_reused_holds_nothing(
    app: &TestApp,
    admin: &Session,
    user: &Session,
    items: Value,
    key: &str,
    stock_after: (i64, i64),
) {
    let sku = items[0]["sku"].as_str().unwrap().to_owned();
    let refused = order(app, user, items, Some(key)).await;
    assert_problem(refused, 422, "idempotency_key_reused").await;
    assert_eq!(
        stock(app, admin, &sku).await,
        stock_after,
        "the refused request holds nothing"
    );
}

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

async fn checkout_pay_ship_deliver(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("buyer").await;
    product(&app, &admin, "CUP-1", 1500, 5).await;
    product(&app, &admin, "POT-1", 2500, 5).await;

    // Client-sent prices are ignored: the catalog's are snapshotted.
    let placed = order(
        &app,
        &shopper,
        json!([{"sku": "cup-1", "quantity": 2, "price": 1}, {"sku": "POT-1", "quantity": 1}]),
        None,
    )
    .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    assert_eq!(placed["status"], "pending_payment");
    assert_eq!(placed["payment_status"], "pending");
    assert_eq!(placed["fulfilment_status"], "unfulfilled");
    assert_eq!(placed["total"], json!({"amount": 5500, "currency": "EUR"}));
    assert_eq!(placed["items"][0]["unit_price"]["amount"], 1500);
    // The answer is built from what was written; it is what the database now holds.
    let stored: Value = stored_order(&app, &shopper, &id).await;
    assert_eq!(placed, stored);
    assert_eq!(stock(&app, &admin, "CUP-1").await, (5, 2));
    assert_eq!(app.events("order.placed", &id).await.len(), 1);

    let paid = pay(&app, &shopper, &id).await;
    assert_eq!(paid.status(), StatusCode::OK);
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(
        (paid["status"].as_str(), paid["payment_status"].as_str()),
        (Some("paid"), Some("captured"))
    );
    assert_eq!(
        stock(&app, &admin, "CUP-1").await,
        (3, 0),
        "payment sells the reserved units"
    );
    // Paying twice is an illegal transition, and sells nothing more.
    let again = pay(&app, &shopper, &id).await;
    assert_problem(again, 409, "illegal_transition").await;
    assert_eq!(stock(&app, &admin, "CUP-1").await, (3, 0));

    assert_problem(
        act(
            &app,
            &shopper.access_token,
            &format!("/api/v1/admin/orders/{id}/ship"),
            json!({}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let shipped: Value = act(
        &app,
        &admin.access_token,
        &format!("/api/v1/admin/orders/{id}/ship"),
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(shipped["fulfilment_status"], "shipped");
    // Shoppers cannot cancel a shipped order.
    assert_problem(
        act(
            &app,
            &shopper.access_token,
            &format!("/api/v1/orders/{id}/cancel"),
            json!({}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let delivered: Value = act(
        &app,
        &admin.access_token,
        &format!("/api/v1/admin/orders/{id}/deliver"),
        json!({}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(delivered["status"], "delivered");
    assert_problem(
        act(
            &app,
            &admin.access_token,
            &format!("/api/v1/admin/orders/{id}/cancel"),
            json!({}),
        )
        .await,
        409,
        "illegal_transition",
    )
    .await;

    let history: Vec<(String, String)> = delivered["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["to"].as_str().unwrap().to_owned(),
                entry["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("pending_payment".to_owned(), format!("user:{}", shopper.id)),
            ("paid".to_owned(), format!("user:{}", shopper.id)),
            ("shipped".to_owned(), format!("admin:{}", admin.id)),
            ("delivered".to_owned(), format!("admin:{}", admin.id)),
        ]
    );
    for topic in ["order.paid", "order.shipped", "order.delivered"] {
        assert_eq!(app.events(topic, &id).await.len(), 1, "{topic}");
    }
    let mine: Value = app
        .get_as("/api/v1/orders", &shopper.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let listed: Value = app
        .get_as("/api/v1/admin/orders?status=delivered", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"][0]["id"], id.as_str());
    // A listed order carries the same lines and history as the order read alone.
    assert_eq!(listed["items"][0], delivered);
    assert_eq!(mine["items"][0], delivered);
}

#[actix_web::test]
async fn a_short_line_releases_the_others() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("short").await;
    product(&app, &admin, "PLENTY", 100, 5).await;
    product(&app, &admin, "SCARCE", 100, 1).await;
    let refused = order(
        &app,
        &shopper,
        json!([{"sku": "PLENTY", "quantity": 2}, {"sku": "SCARCE", "quantity": 3}]),
        None,
    )
    .await;
    let problem = assert_problem(refused, 409, "insufficient_stock").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("SCARCE has only 1 available"),
        "{problem}"
    );
    assert_eq!(
        stock(&app, &admin, "PLENTY").await,
        (5, 0),
        "the reserved line was released"
    );
    let mine: Value = app
        .get_as("/api/v1/orders", &shopper.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        mine["items"].as_array().unwrap().is_empty(),
        "nothing half-created"
    );
}

#[actix_web::test]
async fn idempotency_keys_make_retries_safe() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("retry").await;
    product(&app, &admin, "KEYED", 100, 10).await;
    let items = json!([{"sku": "KEYED", "quantity": 2}]);

    // Five concurrent retries of one request: one order, one reservation.
    let attempts = futures_util::future::join_all(
        (0..5).map(|_| order(&app, &shopper, items.clone(), Some("checkout-1"))),
    )
    .await;
    let mut ids = Vec::new();
    for response in attempts {
        assert!(
            response.status() == StatusCode::CREATED || response.status() == StatusCode::OK,
            "{}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same order");
    assert_eq!(stock(&app, &admin, "KEYED").await, (10, 2));

    let replay = order(&app, &shopper, items.clone(), Some("checkout-1")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let different = json!([{"sku": "KEYED", "quantity": 3}]);
    key_reused_holds_nothing(&app, &admin, &shopper, different, "checkout-1", (10, 2)).await;
    // Keys belong to their user.
    let other = app.customer("other").await;
    assert_eq!(
        order(&app, &other, items, Some("checkout-1"))
            .await
            .status(),
        StatusCode::CREATED
    );
}

/// A checkout reads nothing by its key before reserving: a retry of an order already
/// paid reserves anew, finds the order when its insert is refused (or when the stock
/// has sold out since), answers that order and releases what it reserved.
async fn a_retry_of_a_paid_order_answers_it_and_holds_nothing(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("paid-retry").await;
    product(&app, &admin, "PAID-1", 100, 4).await;
    let items = json!([{"sku": "PAID-1", "quantity": 2}]);
    let placed = order(&app, &shopper, items.clone(), Some("paid-key")).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    let paid = pay(&app, &shopper, &id).await;
    assert_eq!(paid.status(), StatusCode::OK);
    assert_eq!(stock(&app, &admin, "PAID-1").await, (2, 0));

    // Stock enough for the retry's own reservation: it is made, then released.
    let retried = order(&app, &shopper, items.clone(), Some("paid-key")).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(
        (retried["id"].as_str(), retried["status"].as_str()),
        (Some(id.as_str()), Some("paid"))
    );
    assert_eq!(
        stock(&app, &admin, "PAID-1").await,
        (2, 0),
        "the retry holds nothing"
    );
    let different = json!([{"sku": "PAID-1", "quantity": 1}]);
    key_reused_holds_nothing(&app, &admin, &shopper, different, "paid-key", (2, 0)).await;

    // Sold out since: the retry's reservation fails, and it still answers the order.
    let other = app.customer("last-unit").await;
    place(&app, &other, json!([{"sku": "PAID-1", "quantity": 2}])).await;
    let sold_out = order(&app, &shopper, items, Some("paid-key")).await;
    assert_eq!(sold_out.status(), StatusCode::OK);
    let sold_out: Value = sold_out.json().await.unwrap();
    assert_eq!(sold_out["id"].as_str(), Some(id.as_str()));
    assert_eq!(stock(&app, &admin, "PAID-1").await, (2, 2));
    assert_eq!(
        app.events("order.placed", &id).await.len(),
        1,
        "one order, placed once"
    );
}

#[actix_web::test]
async fn cancellation_releases_or_returns_stock() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("cancel").await;
    product(&app, &admin, "BACK", 100, 10).await;
    let unpaid: Value = place(&app, &shopper, json!([{"sku": "BACK", "quantity": 3}])).await;
    let cancelled = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{}/cancel", unpaid["id"].as_str().unwrap()),
        json!({"reason": "changed my mind"}),
    )
    .await;
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(
        (
            cancelled["status"].as_str(),
            cancelled["payment_status"].as_str()
        ),
        (Some("cancelled"), Some("voided"))
    );
    assert_eq!(cancelled["history"][1]["reason"], "changed my mind");
    assert_eq!(stock(&app, &admin, "BACK").await, (10, 0));

    let paid: Value = place(&app, &shopper, json!([{"sku": "BACK", "quantity": 4}])).await;
    let id = paid["id"].as_str().unwrap();
    act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": "card"}),
    )
    .await;
    assert_eq!(stock(&app, &admin, "BACK").await, (6, 0));
    let refunded: Value = act(
        &app,
        &admin.access_token,
        &format!("/api/v1/admin/orders/{id}/cancel"),
        json!({"reason": "out of business"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (
            refunded["payment_status"].as_str(),
            refunded["fulfilment_status"].as_str()
        ),
        (Some("refunded"), Some("returned"))
    );
    assert_eq!(
        stock(&app, &admin, "BACK").await,
        (10, 0),
        "returned stock is back on hand"
    );
}

#[actix_web::test]
async fn declined_and_late_payments_sell_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("late").await;
    product(&app, &admin, "LATE", 100, 10).await;
    let placed: Value = place(&app, &shopper, json!([{"sku": "LATE", "quantity": 2}])).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    let declined = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": "test-card-declined"}),
    )
    .await;
    assert_problem(declined, 402, "payment_declined").await;
    assert_eq!(
        stock(&app, &admin, "LATE").await,
        (10, 2),
        "still reserved after a decline"
    );

    sqlx::query("UPDATE orders SET expires_at = 0 WHERE id = ?")
        .bind(&id)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    let late = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": "card"}),
    )
    .await;
    assert_problem(late, 409, "order_expired").await;
    let expired: Value = stored_order(&app, &shopper, &id).await;
    assert_eq!(expired["status"], "expired");
    assert_eq!(
        stock(&app, &admin, "LATE").await,
        (10, 0),
        "nothing sold, the reservation released"
    );
}

#[actix_web::test]
async fn unpaid_orders_expire_on_their_own() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("sweep").await;
    product(&app, &admin, "SWEEP", 100, 10).await;
    let placed: Value = place(&app, &shopper, json!([{"sku": "SWEEP", "quantity": 4}])).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    sqlx::query("UPDATE orders SET expires_at = 0 WHERE id = ?")
        .bind(&id)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    // The expiry commits first and its release follows (owed until done), so a reader
    // may briefly see `expired` with the units still reserved: wait for both.
    let mut status = String::new();
    let mut units = (0, 0);
    for _ in 0..100 {
        let current: Value = stored_order(&app, &shopper, &id).await;
        status = current["status"].as_str().unwrap().to_owned();
        units = stock(&app, &admin, "SWEEP").await;
        if status == "expired" && units == (10, 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, "expired",
        "the node's sweeper expires unpaid orders"
    );
    assert_eq!(units, (10, 0), "and releases their reservations");
    assert_eq!(app.events("order.expired", &id).await.len(), 1);
}

#[actix_web::test]
async fn orders_are_private_and_bad_input_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let owner = app.customer("owner").await;
    let stranger = app.customer("stranger").await;
    product(&app, &admin, "PRIV", 100, 10).await;
    let placed: Value = place(&app, &owner, json!([{"sku": "PRIV", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();
    assert_problem(
        app.get_as(&format!("/api/v1/orders/{id}"), &stranger.access_token)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        act(
            &app,
            &stranger.access_token,
            &format!("/api/v1/orders/{id}/pay"),
            json!({"payment_method": "card"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        act(
            &app,
            &stranger.access_token,
            &format!("/api/v1/orders/{id}/cancel"),
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.get("/api/v1/orders").await, 401, "missing_token").await;
    assert_problem(
        app.get_as("/api/v1/admin/orders", &owner.access_token)
            .await,
        403,
        "forbidden",
    )
    .await;

    for (items, code) in [
        (json!([]), "validation_failed"),
        (json!([{"sku": "PRIV", "quantity": 0}]), "validation_failed"),
        (
            json!([{"sku": "PRIV", "quantity": 1000}]),
            "validation_failed",
        ),
        (
            json!([{"sku": "NO-SUCH", "quantity": 1}]),
            "validation_failed",
        ),
        (
            json!([{"sku": "' OR 1=1", "quantity": 1}]),
            "validation_failed",
        ),
    ] {
        assert_problem(order(&app, &owner, items, None).await, 422, code).await;
    }
    assert_problem(
        order(
            &app,
            &owner,
            json!([{"sku": "PRIV", "quantity": "1"}]),
            None,
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        order(
            &app,
            &owner,
            json!([{"sku": "PRIV", "quantity": 1}]),
            Some(&"k".repeat(101)),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let malformed = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&owner.access_token)
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "malformed_json").await;
    for query in ["status=lost", "cursor=abc", "from=yesterday", "limit=0"] {
        let response = app
            .get_as(
                &format!("/api/v1/admin/orders?{query}"),
                &admin.access_token,
            )
            .await;
        assert!(response.status() == 400, "{query}: {}", response.status());
    }
    assert_problem(
        app.get_as(
            &format!("/api/v1/admin/orders/{}", souk_db::ids::new_id()),
            &admin.access_token,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        stock(&app, &admin, "PRIV").await,
        (10, 1),
        "refused requests reserved nothing"
    );
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

/// A stored status the code does not know is an error, never read as a default: the
/// order cannot be paid or cancelled, and it stays exactly as stored.
#[actix_web::test]
async fn an_unknown_stored_status_is_an_error_not_a_default() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("corrupt").await;
    product(&app, &admin, "CORRUPT", 100, 5).await;
    let placed = place(&app, &shopper, json!([{"sku": "CORRUPT", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();
    let pool = app.database.db.pool();
    sqlx::query("UPDATE orders SET status = 'bogus' WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    let paid = pay(&app, &shopper, id).await;
    assert_problem(paid, 500, "internal").await;
    let cancelled = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/cancel"),
        json!({}),
    )
    .await;
    assert_problem(cancelled, 500, "internal").await;
    let (status, version): (String, i64) =
        sqlx::query_as("SELECT status, version FROM orders WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(status, "bogus", "nothing was written over it");
    assert_eq!(version, 1);
    assert_eq!(
        stock(&app, &admin, "CORRUPT").await,
        (5, 1),
        "the stock untouched"
    );
}

/// A cancellation's body is optional: none at all is a cancellation without a reason;
/// a body that is sent is still checked.
#[actix_web::test]
async fn a_cancel_without_a_body_works_and_a_bad_body_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("nobody").await;
    product(&app, &admin, "NOBODY", 100, 5).await;
    let placed = place(&app, &shopper, json!([{"sku": "NOBODY", "quantity": 1}])).await;
    let path = format!("/api/v1/orders/{}/cancel", placed["id"].as_str().unwrap());
    let malformed = app
        .client
        .post(app.url(&path))
        .bearer_auth(&shopper.access_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "malformed_json").await;
    let bare = app
        .client
        .post(app.url(&path))
        .bearer_auth(&shopper.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::OK);
    let cancelled: Value = bare.json().await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["history"][1]["reason"],
        "cancelled by the shopper"
    );
}
