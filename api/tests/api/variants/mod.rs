//! Product variants over REST and gRPC: each variant sold by its own SKU (stock,
//! checkout, cart), the product's own SKU refused once it has variants, validation,
//! search by a variant's price and option values, and imports of variants (JSON, CSV).
//! Here: the T-shirt in three sizes most tests start from, and the requests they share
//! (create a product, adjust a SKU's stock). The tests: variants sold, stocked and
//! edited (`selling`), variant input refused and SKUs that name one thing, racing
//! writes included (`validation`), search (`search`), and variants in imports and over
//! gRPC (`imports_and_grpc`).

mod imports_and_grpc;
mod search;
mod selling;
mod validation;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

/// A T-shirt in three sizes of one colour, each its own SKU; L at a higher price and
/// with its own image.
fn tee(sku: &str) -> Value {
    json!({
        "sku": sku,
        "name": "Tee",
        "price": {"amount": 1500, "currency": "EUR"},
        "status": "active",
        "images": ["https://img.example.com/tee.jpg"],
        "options": [
            {"name": "Size", "values": ["S", "M", "L"]},
            {"name": "colour", "values": ["Red"]},
        ],
        "variants": [
            {"sku": format!("{sku}-s"), "options": {"size": "S", "colour": "Red"}},
            {"sku": format!("{sku}-m"), "options": {"size": "M", "colour": "Red"},
             "price": {"amount": 1700, "currency": "EUR"}},
            {"sku": format!("{sku}-l"), "options": {"size": "L", "colour": "Red"},
             "price": {"amount": 1900, "currency": "EUR"},
             "images": ["https://img.example.com/tee-l.jpg"]},
        ],
    })
}

async fn create(app: &TestApp, admin: &Session, body: &Value) -> reqwest::Response {
    app.post_json_as("/api/v1/admin/products", &admin.access_token, body)
        .await
}

async fn created(app: &TestApp, admin: &Session, body: &Value) -> Value {
    let response = create(app, admin, body).await;
    let status = response.status();
    let product: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{product}");
    product
}

async fn adjust(app: &TestApp, admin: &Session, sku: &str, delta: i64) -> reqwest::Response {
    app.post_json_as(
        &format!("/api/v1/admin/inventory/{sku}/adjust"),
        &admin.access_token,
        &json!({"delta": delta, "reason": "delivery"}),
    )
    .await
}
