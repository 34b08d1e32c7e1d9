//! Returns of delivered orders over REST and gRPC: requested within the window,
//! approved or rejected, received back into stock once, refunded within the payment;
//! racing requests and steps end consistent; every refusal has its code. Here: the
//! helpers the return tests share: orders delivered, returns asked for and stepped
//! through, orders read back. The tests: a return's life and its refund, tax included
//! (`lifecycle`), refusals, the return window and racing steps (`refusals`), the admin's
//! queue of returns over REST and gRPC (`queue`), and a return's steps over gRPC
//! (`grpc`).

mod grpc;
mod lifecycle;
mod queue;
mod refusals;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::orders::{act, place};

/// Places, pays, ships and delivers an order of `quantity` units of `sku`; its id.
async fn delivered(
    app: &TestApp,
    admin: &Session,
    shopper: &Session,
    sku: &str,
    quantity: i64,
) -> String {
    let placed = place(app, shopper, json!([{"sku": sku, "quantity": quantity}])).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    pay_ship_deliver(app, admin, shopper, &id).await;
    id
}

/// Pays, ships and delivers the placed order `id`.
async fn pay_ship_deliver(app: &TestApp, admin: &Session, shopper: &Session, id: &str) {
    let steps = [
        (
            &shopper.access_token,
            format!("/api/v1/orders/{id}/pay"),
            json!({"payment_method": "test-card-ok"}),
        ),
        (
            &admin.access_token,
            format!("/api/v1/admin/orders/{id}/ship"),
            json!({}),
        ),
        (
            &admin.access_token,
            format!("/api/v1/admin/orders/{id}/deliver"),
            json!({}),
        ),
    ];
    for (token, path, body) in steps {
        let response = act(app, token, &path, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

async fn ask_return(
    app: &TestApp,
    shopper: &Session,
    order_id: &str,
    items: Value,
) -> reqwest::Response {
    act(
        app,
        &shopper.access_token,
        &format!("/api/v1/orders/{order_id}/returns"),
        json!({"items": items, "reason": "too big"}),
    )
    .await
}

/// Asks for a return that must be accepted; its id.
async fn requested_return(
    app: &TestApp,
    shopper: &Session,
    order_id: &str,
    items: Value,
) -> String {
    let response = ask_return(app, shopper, order_id, items).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let requested: Value = response.json().await.unwrap();
    requested["id"].as_str().unwrap().to_owned()
}

async fn step(
    app: &TestApp,
    admin: &Session,
    order_id: &str,
    return_id: &str,
    verb: &str,
    body: Value,
) -> reqwest::Response {
    act(
        app,
        &admin.access_token,
        &format!("/api/v1/admin/orders/{order_id}/returns/{return_id}/{verb}"),
        body,
    )
    .await
}

/// Approves and receives the return, both of which must succeed.
async fn approve_and_receive(app: &TestApp, admin: &Session, order_id: &str, return_id: &str) {
    for verb in ["approve", "receive"] {
        let stepped = step(app, admin, order_id, return_id, verb, json!({})).await;
        assert_eq!(stepped.status(), StatusCode::OK, "{verb}");
    }
}

/// Saves a Berlin address in the shopper's book (a German tax rate applies to it); its
/// id.
async fn berlin_address(app: &TestApp, shopper: &Session) -> Value {
    let address: Value = act(
        app,
        &shopper.access_token,
        "/api/v1/users/me/addresses",
        json!({"name": "Ada", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}),
    )
    .await
    .json()
    .await
    .unwrap();
    address["id"].clone()
}

async fn order_of(app: &TestApp, shopper: &Session, id: &str) -> Value {
    app.get_as(&format!("/api/v1/orders/{id}"), &shopper.access_token)
        .await
        .json()
        .await
        .unwrap()
}
