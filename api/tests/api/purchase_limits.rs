//! Purchase limits against denial of inventory: one customer cannot hold a SKU's stock,
//! or any number of orders, unpaid; everyone else can still buy.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{act, order, place, product, stock};

// The cap on unpaid orders is counted in the node writer's commit: both engines.
on_both_backends!(unpaid_orders_per_customer_are_capped_even_when_placed_at_once);

#[actix_web::test]
async fn one_customer_cannot_hold_a_skus_stock_unpaid() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.orders.max_units_per_sku = 3;
    })
    .await;
    let admin = app.admin().await;
    product(&app, &admin, "HOT-1", 1000, 10).await;
    product(&app, &admin, "CALM-1", 500, 10).await;
    let hoarder = app.customer("hoarder").await;
    let first = place(&app, &hoarder, json!([{"sku": "HOT-1", "quantity": 2}])).await;

    // Two more would make four units of HOT-1 held unpaid by one customer. The other
    // line of the refused order is not kept either.
    let refused = order(
        &app,
        &hoarder,
        json!([{"sku": "CALM-1", "quantity": 1}, {"sku": "HOT-1", "quantity": 2}]),
        None,
    )
    .await;
    let problem = assert_problem(refused, 409, "purchase_limit").await;
    assert_eq!(problem["errors"][0]["field"], "HOT-1", "{problem}");
    assert_eq!(stock(&app, &admin, "HOT-1").await, (10, 2));
    assert_eq!(stock(&app, &admin, "CALM-1").await, (10, 0));

    // Up to the cap is fine, and another customer is not affected by it.
    place(&app, &hoarder, json!([{"sku": "HOT-1", "quantity": 1}])).await;
    let neighbour = app.customer("neighbour").await;
    place(&app, &neighbour, json!([{"sku": "HOT-1", "quantity": 3}])).await;
    assert_eq!(stock(&app, &admin, "HOT-1").await, (10, 6));

    // Paid units are bought, not held: paying frees the cap.
    let paid = act(
        &app,
        &hoarder.access_token,
        &format!("/api/v1/orders/{}/pay", first["id"].as_str().unwrap()),
        json!({"payment_method": "test-card-ok"}),
    )
    .await;
    assert_eq!(paid.status(), StatusCode::OK);
    place(&app, &hoarder, json!([{"sku": "HOT-1", "quantity": 2}])).await;
    assert_eq!(stock(&app, &admin, "HOT-1").await, (8, 6));
}

async fn unpaid_orders_per_customer_are_capped_even_when_placed_at_once(backend: TestBackend) {
    let app = spawn_app_with(backend, |config| {
        config.orders.max_unpaid_orders = 2;
    })
    .await;
    let admin = app.admin().await;
    product(&app, &admin, "MANY-1", 100, 50).await;
    let shopper = app.customer("eager").await;

    let attempts = (0..6).map(|index| {
        let key = format!("eager-{index}");
        let (app, shopper) = (&app, &shopper);
        async move {
            let response = order(
                app,
                shopper,
                json!([{"sku": "MANY-1", "quantity": 1}]),
                Some(&key),
            )
            .await;
            (key, response)
        }
    });
    let mut created: Vec<(String, Value)> = Vec::new();
    for (key, response) in futures_util::future::join_all(attempts).await {
        match response.status() {
            StatusCode::CREATED => created.push((key, response.json().await.unwrap())),
            _ => {
                assert_problem(response, 409, "unpaid_order_limit").await;
            }
        }
    }
    assert_eq!(created.len(), 2, "exactly the cap is placed: {created:?}");
    assert_eq!(stock(&app, &admin, "MANY-1").await, (50, 2));

    // A retry of a placed order is that order, not a new one the cap refuses.
    let (key, first) = &created[0];
    let retried = order(
        &app,
        &shopper,
        json!([{"sku": "MANY-1", "quantity": 1}]),
        Some(key),
    )
    .await;
    assert_eq!(retried.status(), StatusCode::OK);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(retried["id"], first["id"]);

    // Cancelling one makes room for one more.
    let cancelled = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{}/cancel", first["id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    place(&app, &shopper, json!([{"sku": "MANY-1", "quantity": 1}])).await;
    let another = order(
        &app,
        &shopper,
        json!([{"sku": "MANY-1", "quantity": 1}]),
        None,
    )
    .await;
    assert_problem(another, 409, "unpaid_order_limit").await;
}
