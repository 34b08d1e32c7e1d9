//! The gRPC API against a real node: the same flows, rules and errors as REST, on the
//! gRPC port, with health checking and reflection. Here: what the tests share: a
//! one-line `CreateOrder`, the Souk code a status carries, an active product in stock.
//! The tests: a shopper's flow from registration to payment (`shopper`), tokens,
//! ownership, invalid arguments and unknown ids refused as over REST (`refusals`),
//! health checking and reflection (`health`), and the email service's admin methods and
//! verification (`mail`), and an admin's orders (`admin_orders`).

mod admin_orders;
mod health;
mod mail;
mod refusals;
mod shopper;

use serde_json::json;
use souk_proto::v1 as pb;
use tonic::{Request, Status};
use tonic_types::StatusExt;

use crate::helpers::*;

/// `CreateOrder` for one line, as `token`'s owner; an empty key means none.
fn order_request(
    sku: &str,
    quantity: i64,
    idempotency_key: &str,
    token: &str,
) -> Request<pb::CreateOrderRequest> {
    authorized(
        pb::CreateOrderRequest {
            items: vec![pb::OrderItem {
                sku: sku.to_owned(),
                quantity,
            }],
            idempotency_key: idempotency_key.to_owned(),
            ..Default::default()
        },
        token,
    )
}

/// The stable Souk code a status carries in its `ErrorInfo`.
fn souk_code(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

async fn active_product(app: &TestApp, admin: &Session, sku: &str, stock: i64) {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": format!("Item {sku}"), "price": {"amount": 1250, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let adjusted = app
        .post_json_as(
            &format!("/api/v1/admin/inventory/{sku}/adjust"),
            &admin.access_token,
            &json!({"delta": stock, "reason": "initial stock"}),
        )
        .await;
    assert_eq!(adjusted.status(), 200);
}
