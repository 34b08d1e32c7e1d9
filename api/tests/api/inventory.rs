//! The inventory admin API over the SKU actors, and stock in product reads.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_actors::inventory::Command;
use souk_actors::inventory::InventoryRouter;
use souk_db::testing::TestBackend;

use crate::helpers::*;

/// The stock flag in search follows within `outbox.poll_ms` (500 ms) + 200 ms; three
/// times that, for a loaded machine.
const STOCK_FLAG_BOUND: std::time::Duration = std::time::Duration::from_secs(3);
use crate::on_both_backends;

on_both_backends!(adjust_get_and_ledger);
on_both_backends!(an_adjustment_sent_again_with_its_key_is_applied_once);

async fn product(app: &TestApp, admin: &Session, sku: &str) -> Value {
    let response = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": format!("Item {sku}"), "price": {"amount": 1000, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn adjust(app: &TestApp, admin: &Session, sku: &str, body: Value) -> reqwest::Response {
    app.post_json_as(
        &format!("/api/v1/admin/inventory/{sku}/adjust"),
        &admin.access_token,
        &body,
    )
    .await
}

/// An adjustment sent with an `Idempotency-Key`.
async fn adjust_keyed(
    app: &TestApp,
    admin: &Session,
    sku: &str,
    key: &str,
    body: Value,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/admin/inventory/{sku}/adjust")))
        .bearer_auth(&admin.access_token)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// A restock whose answer never came (a 503 past its deadline, a dropped connection)
/// is sent again with the same key and changes nothing more; another key is another
/// change; a key is per SKU; a malformed key is refused before anything is applied.
async fn an_adjustment_sent_again_with_its_key_is_applied_once(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    product(&app, &admin, "KEY-1").await;
    product(&app, &admin, "KEY-2").await;
    let restock = json!({"delta": 10, "reason": "delivery 7"});

    for _ in 0..2 {
        let response = adjust_keyed(&app, &admin, "KEY-1", "delivery-7", restock.clone()).await;
        assert_eq!(response.status(), StatusCode::OK);
        let stock: Value = response.json().await.unwrap();
        assert_eq!(stock["on_hand"], 10, "applied once: {stock}");
    }
    let other = adjust_keyed(&app, &admin, "KEY-1", "delivery-8", restock.clone()).await;
    assert_eq!(other.json::<Value>().await.unwrap()["on_hand"], 20);
    // Keys compare exactly, on MariaDB as on SQLite.
    let other_case = adjust_keyed(&app, &admin, "KEY-1", "DELIVERY-7", restock.clone()).await;
    assert_eq!(other_case.json::<Value>().await.unwrap()["on_hand"], 30);
    let same_key_other_sku =
        adjust_keyed(&app, &admin, "KEY-2", "delivery-7", restock.clone()).await;
    assert_eq!(
        same_key_other_sku.json::<Value>().await.unwrap()["on_hand"],
        10
    );
    // Without a key, every request is a change of its own.
    adjust(&app, &admin, "KEY-2", restock.clone()).await;
    let unkeyed: Value = adjust(&app, &admin, "KEY-2", restock.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unkeyed["on_hand"], 30);

    for bad in ["", "a key with spaces", &"k".repeat(101)] {
        let refused = adjust_keyed(&app, &admin, "KEY-1", bad, restock.clone()).await;
        assert_problem(refused, 422, "validation_failed").await;
    }
    let ledger: Value = app
        .get_as(
            "/api/v1/admin/inventory/KEY-1/movements",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let adjustments = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|movement| movement["kind"] == "adjustment")
        .count();
    assert_eq!(adjustments, 3, "{ledger}");
    let stock: Value = app
        .get_as("/api/v1/admin/inventory/KEY-1", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stock["on_hand"], 30);
}

async fn adjust_get_and_ledger(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    product(&app, &admin, "INV-1").await;

    let restocked = adjust(
        &app,
        &admin,
        "inv-1",
        json!({"delta": 10, "reason": "delivery 42", "low_stock_threshold": 4}),
    )
    .await;
    assert_eq!(restocked.status(), StatusCode::OK);
    let stock: Value = restocked.json().await.unwrap();
    assert_eq!(
        (
            stock["on_hand"].as_i64(),
            stock["available"].as_i64(),
            stock["low_stock_threshold"].as_i64()
        ),
        (Some(10), Some(10), Some(4))
    );

    // A reservation made by an order (through the same router the orders will use).
    let outcome = app
        .state
        .inventory
        .router()
        .execute(
            "INV-1".into(),
            Command::Reserve {
                order_id: "order-1".into(),
                quantity: 3,
                ttl_ms: 600_000,
                actor: "order:order-1".into(),
                holder: None,
                place: Default::default(),
            },
        )
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");
    let detail: Value = app
        .get_as("/api/v1/admin/inventory/INV-1", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (detail["reserved"].as_i64(), detail["available"].as_i64()),
        (Some(3), Some(7))
    );
    assert_eq!(detail["reservations"][0]["order_id"], "order-1");
    assert!(detail["version"].as_i64().unwrap() >= 2);

    // Taking on_hand below what is reserved is refused and changes nothing, not even
    // the threshold sent with it.
    assert_problem(
        adjust(
            &app,
            &admin,
            "INV-1",
            json!({"delta": -8, "reason": "shrinkage", "low_stock_threshold": 9}),
        )
        .await,
        409,
        "below_reserved",
    )
    .await;
    let unchanged: Value = app
        .get_as("/api/v1/admin/inventory/INV-1", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(unchanged["low_stock_threshold"], 4, "{unchanged}");
    let shrunk = adjust(
        &app,
        &admin,
        "INV-1",
        json!({"delta": -5, "reason": "damaged"}),
    )
    .await;
    assert_eq!(shrunk.status(), StatusCode::OK);

    // Shoppers see availability; the stock filter follows it.
    let shown: Value = app
        .get("/api/v1/products/sku/INV-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["available"], 2);
    // The search index's stock flag follows within the documented bound.
    within(STOCK_FLAG_BOUND, "in stock in search", || async {
        let in_stock: Value = app
            .get("/api/v1/products?in_stock=true")
            .await
            .json()
            .await
            .unwrap();
        in_stock["items"].as_array().unwrap().len() == 1
    })
    .await;

    // Available 2 < threshold 4: listed as low, and the crossing was announced once.
    let low: Value = app
        .get_as(
            "/api/v1/admin/inventory?low_stock=true",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(low["items"][0]["sku"], "INV-1");
    assert_eq!(app.events("stock.low", "INV-1").await.len(), 1);

    // The ledger: who, why, and it recomputes on_hand.
    let ledger: Value = app
        .get_as(
            "/api/v1/admin/inventory/INV-1/movements",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let movements = ledger["items"].as_array().unwrap();
    let kinds: Vec<&str> = movements
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["adjustment", "reservation", "adjustment"]);
    assert_eq!(movements[0]["actor"], format!("admin:{}", admin.id));
    assert_eq!(movements[0]["reason"], "delivery 42");
    let on_hand: i64 = movements
        .iter()
        .map(|m| m["delta_on_hand"].as_i64().unwrap())
        .sum();
    let detail: Value = app
        .get_as("/api/v1/admin/inventory/INV-1", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(Some(on_hand), detail["on_hand"].as_i64());
}

#[actix_web::test]
async fn products_without_stock_are_not_in_stock() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    product(&app, &admin, "NONE-1").await;
    product(&app, &admin, "SOME-1").await;
    assert_eq!(
        adjust(
            &app,
            &admin,
            "SOME-1",
            json!({"delta": 1, "reason": "first"})
        )
        .await
        .status(),
        StatusCode::OK
    );
    let all: Value = app.get("/api/v1/products").await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    within(
        STOCK_FLAG_BOUND,
        "only the stocked product in stock",
        || async {
            let stocked: Value = app
                .get("/api/v1/products?in_stock=true")
                .await
                .json()
                .await
                .unwrap();
            let skus: Vec<&str> = stocked["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| item["sku"].as_str().unwrap())
                .collect();
            skus == ["SOME-1"]
        },
    )
    .await;
    let none: Value = app
        .get("/api/v1/products/sku/NONE-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["available"], 0);
}

#[actix_web::test]
async fn inventory_bad_input_and_access() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer("stock").await;
    product(&app, &admin, "BAD-1").await;
    for (body, code) in [
        (
            json!({"delta": 0, "reason": "nothing"}),
            "validation_failed",
        ),
        (json!({"delta": 5, "reason": ""}), "validation_failed"),
        (
            json!({"delta": 2_000_000_000i64, "reason": "lots"}),
            "validation_failed",
        ),
        // The extremes of i64 are out of range too (abs() of the minimum overflows).
        (
            json!({"delta": i64::MIN, "reason": "lots"}),
            "validation_failed",
        ),
        (
            json!({"delta": i64::MAX, "reason": "lots"}),
            "validation_failed",
        ),
        (
            json!({"delta": 1, "reason": "x", "low_stock_threshold": -1}),
            "validation_failed",
        ),
    ] {
        assert_problem(adjust(&app, &admin, "BAD-1", body).await, 422, code).await;
    }
    assert_problem(
        adjust(&app, &admin, "BAD-1", json!({"delta": "5", "reason": "x"})).await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        adjust(
            &app,
            &admin,
            "BAD-1",
            json!({"delta": 5, "reason": "x", "sku": "OTHER"}),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        adjust(
            &app,
            &admin,
            "NO-SUCH-SKU",
            json!({"delta": 5, "reason": "x"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/admin/inventory/%27%20OR%201", &admin.access_token)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/admin/inventory?cursor=nope", &admin.access_token)
            .await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        app.get_as("/api/v1/admin/inventory?limit=100000", &admin.access_token)
            .await,
        400,
        "invalid_query",
    )
    .await;
    for path in [
        "/api/v1/admin/inventory",
        "/api/v1/admin/inventory/BAD-1",
        "/api/v1/admin/inventory/BAD-1/movements",
    ] {
        assert_problem(app.get(path).await, 401, "missing_token").await;
        assert_problem(
            app.get_as(path, &customer.access_token).await,
            403,
            "forbidden",
        )
        .await;
    }
    assert_problem(
        app.post_json_as(
            "/api/v1/admin/inventory/BAD-1/adjust",
            &customer.access_token,
            &json!({"delta": 5, "reason": "x"}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    let stock: Value = app
        .get_as("/api/v1/admin/inventory/BAD-1", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stock["on_hand"], 0, "no refused request changed the stock");
}

/// The catalog check of an inventory call tells an unknown SKU (404) from a database
/// that cannot be reached (503): an outage is never reported as "not found".
#[actix_web::test]
async fn a_database_outage_on_an_inventory_call_is_a_503_not_a_404() {
    let app = spawn_app().await;
    let unknown = app
        .state
        .inventory
        .known_sku("NEVER-STOCKED")
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), souk_actors::ErrorCode::NotFound);
    app.state.db.close().await;
    // Another SKU: the catalog may remember the first answer.
    let outage = app
        .state
        .inventory
        .known_sku("NEVER-SEEN")
        .await
        .unwrap_err();
    assert_eq!(
        outage.code(),
        souk_actors::ErrorCode::ServiceUnavailable,
        "{outage}"
    );
}

/// A SKU batch that cannot be committed — every connection of the node writer's lane
/// taken (here by the test), so the pool times out — answers a retryable 503 that says
/// when to retry, and writes nothing.
#[actix_web::test]
async fn a_batch_the_database_cannot_take_answers_503_with_retry_after() {
    let app = spawn_app_with(TestBackend::MySql, |config| {
        config.database.stock_connections = 1;
    })
    .await;
    let admin = app.admin().await;
    product(&app, &admin, "BUSY-1").await;
    let body = json!({"delta": 5, "reason": "delivery"});
    assert_eq!(
        adjust(&app, &admin, "BUSY-1", body.clone()).await.status(),
        StatusCode::OK
    );

    let held = app.state.db.acquire_for_writes().await.unwrap();
    let refused = adjust(&app, &admin, "BUSY-1", body.clone()).await;
    let retry_after = refused
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    assert_problem(refused, 503, "service_unavailable").await;
    let retry_after: u64 = retry_after
        .expect("a retryable 503 says when to retry")
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    drop(held);

    let (on_hand,): (i64,) =
        sqlx::query_as("SELECT on_hand FROM inventory_items WHERE sku = 'BUSY-1'")
            .fetch_one(app.database.db.pool())
            .await
            .unwrap();
    assert_eq!(on_hand, 5, "the refused adjustment wrote nothing");
}
