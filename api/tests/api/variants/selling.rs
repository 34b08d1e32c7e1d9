//! Variants sold by their own SKUs (both engines): each has its price, images and stock
//! (kept by its own SKU actor), its SKU finds its product, a checkout and the cart
//! price it as the variant, the product's own SKU is refused for sale, and a PATCH
//! that replaces the variants takes the left-out one off sale while its stock and
//! orders stay.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{adjust, created, tee};
use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{order, stock};

on_both_backends!(
    variants_are_sold_by_their_own_skus,
    a_variant_with_the_longest_name_is_ordered,
);

async fn patch(app: &TestApp, admin: &Session, id: &str, body: &Value) -> reqwest::Response {
    app.client
        .request(
            Method::PATCH,
            app.url(&format!("/api/v1/admin/products/{id}")),
        )
        .bearer_auth(&admin.access_token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn variants_are_sold_by_their_own_skus(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let product = created(&app, &admin, &tee("TEE")).await;
    assert_eq!(
        product["options"],
        json!([{"name": "size", "values": ["S", "M", "L"]}, {"name": "colour", "values": ["Red"]}])
    );
    assert_eq!(product["variants"][0]["sku"], "TEE-S");
    assert_eq!(
        product["variants"][0]["price"],
        json!({"amount": 1500, "currency": "EUR"}),
        "a variant without a price has the product's"
    );
    assert_eq!(
        product["variants"][2]["images"],
        json!(["https://img.example.com/tee-l.jpg"])
    );
    assert_eq!(
        product["price_range"],
        json!({"min": {"amount": 1500, "currency": "EUR"}, "max": {"amount": 1900, "currency": "EUR"}})
    );

    // Each variant has its own stock, kept by its own SKU actor.
    assert_eq!(
        adjust(&app, &admin, "TEE-M", 5).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        adjust(&app, &admin, "TEE-L", 2).await.status(),
        StatusCode::OK
    );
    let by_variant: Value = app
        .get("/api/v1/products/sku/tee-m")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        by_variant["id"], product["id"],
        "a variant's SKU finds its product"
    );
    let availability: Vec<i64> = by_variant["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|variant| variant["available"].as_i64().unwrap())
        .collect();
    assert_eq!(availability, [0, 5, 2]);
    assert_eq!(by_variant["available"], 7, "the product's is the sum");

    // A checkout names the variant; the order line carries its price and options.
    let shopper = app.customer("variants").await;
    let placed = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-M", "quantity": 2}]),
        None,
    )
    .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["items"][0]["sku"], "TEE-M");
    assert_eq!(placed["items"][0]["name"], "Tee (M / Red)");
    assert_eq!(placed["items"][0]["unit_price"]["amount"], 1700);
    assert_eq!(stock(&app, &admin, "TEE-M").await, (5, 2));
    assert_eq!(stock(&app, &admin, "TEE-L").await, (2, 0));

    // The product's own SKU names the product: it is not sold by itself.
    let family = order(&app, &shopper, json!([{"sku": "TEE", "quantity": 1}]), None).await;
    let problem = assert_problem(family, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "items[0].sku");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("TEE-S, TEE-M, TEE-L"), "{message}");
    let sold_out = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-S", "quantity": 1}]),
        None,
    )
    .await;
    assert_problem(sold_out, 409, "insufficient_stock").await;

    // The cart prices a variant line as the variant and refuses the product's SKU.
    let cart = app
        .client
        .put(app.url("/api/v1/cart/items/TEE-L"))
        .bearer_auth(&shopper.access_token)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    let status = cart.status();
    let cart: Value = cart.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["items"][0]["name"], "Tee (L / Red)");
    assert_eq!(cart["items"][0]["unit_price"]["amount"], 1900);
    assert_eq!(cart["items"][0]["available"], 2);
    let family = app
        .client
        .put(app.url("/api/v1/cart/items/TEE"))
        .bearer_auth(&shopper.access_token)
        .json(&json!({"quantity": 1}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(family, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "sku");

    // A PATCH that leaves variants out keeps them; one that replaces them drops the
    // left-out variant from sale, while its stock and orders stay under its SKU.
    let id = product["id"].as_str().unwrap();
    let renamed: Value = patch(&app, &admin, id, &json!({"name": "Basic tee"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["variants"].as_array().unwrap().len(), 3);
    let replaced = patch(
        &app,
        &admin,
        id,
        &json!({
            "options": [{"name": "size", "values": ["M", "L"]}],
            "variants": [
                {"sku": "TEE-M", "options": {"size": "M"}, "price": {"amount": 1800, "currency": "EUR"}},
                {"sku": "TEE-L", "options": {"size": "L"}},
            ],
        }),
    )
    .await;
    assert_eq!(replaced.status(), StatusCode::OK);
    let replaced: Value = replaced.json().await.unwrap();
    assert_eq!(
        replaced["price_range"]["min"]["amount"], 1500,
        "TEE-L now has the product's price"
    );
    assert_eq!(replaced["price_range"]["max"]["amount"], 1800);
    let gone = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-S", "quantity": 1}]),
        None,
    )
    .await;
    assert_problem(gone, 422, "validation_failed").await;
    assert_eq!(
        stock(&app, &admin, "TEE-M").await,
        (5, 2),
        "the order's reservation stays"
    );
    let repriced = order(
        &app,
        &shopper,
        json!([{"sku": "TEE-M", "quantity": 1}]),
        None,
    )
    .await;
    let repriced: Value = repriced.json().await.unwrap();
    assert_eq!(repriced["items"][0]["name"], "Basic tee (M)");
    assert_eq!(repriced["items"][0]["unit_price"]["amount"], 1800);
}

/// A variant's line name is its product's name and its option values, up to about 500
/// characters: the order line keeps the first 200 (the column's width), not a 500.
async fn a_variant_with_the_longest_name_is_ordered(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let value = |letter: &str| letter.repeat(100);
    let long = json!({
        "sku": "LONG",
        "name": "N".repeat(200),
        "price": {"amount": 900, "currency": "EUR"},
        "status": "active",
        "options": [
            {"name": "a", "values": [value("a")]},
            {"name": "b", "values": [value("b")]},
            {"name": "c", "values": [value("c")]},
        ],
        "variants": [
            {"sku": "LONG-1", "options": {"a": value("a"), "b": value("b"), "c": value("c")}},
        ],
    });
    created(&app, &admin, &long).await;
    assert_eq!(
        adjust(&app, &admin, "LONG-1", 3).await.status(),
        StatusCode::OK
    );
    let shopper = app.customer("long-names").await;
    let placed = order(
        &app,
        &shopper,
        json!([{"sku": "LONG-1", "quantity": 1}]),
        None,
    )
    .await;
    let status = placed.status();
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let name = placed["items"][0]["name"].as_str().unwrap();
    assert_eq!(name.chars().count(), 200);
    assert!(
        name.starts_with(&"N".repeat(200 - 1)) && name.ends_with('…'),
        "{name}"
    );
}
