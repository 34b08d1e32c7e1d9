//! Orders over HTTP: checkout, payment, fulfilment, cancellation, expiry, idempotency,
//! and stock that always agrees with the orders. Here: the helpers the order tests share
//! (several used by other modules too): products with stock, orders placed, acted on and
//! read back. The tests: an order's life (`lifecycle`), idempotency keys
//! (`idempotency`), what is refused (`refusals`), concurrency, shared commits and
//! crash recovery (`concurrency`), and the refund a cancelled paid order is owed
//! (`settlement`).

mod concurrency;
mod idempotency;
mod lifecycle;
mod refusals;
mod settlement;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

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
