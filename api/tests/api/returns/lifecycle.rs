//! A return's life: a delivered order's units requested back (no more than are left to
//! return), approved, received into stock once with a ledger entry, and refunded within
//! what was paid, once, with one event per step (both engines); and a refund that
//! includes the tax share of units priced excluding tax, not shipping.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    approve_and_receive, ask_return, berlin_address, delivered, order_of, pay_ship_deliver,
    requested_return, step,
};
use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{act, product, stock};

on_both_backends!(a_delivered_order_is_returned_received_and_refunded);

async fn a_delivered_order_is_returned_received_and_refunded(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("returner").await;
    product(&app, &admin, "RET-1", 1000, 5).await;
    let id = delivered(&app, &admin, &shopper, "RET-1", 3).await;
    assert_eq!(stock(&app, &admin, "RET-1").await, (2, 0));

    let requested = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "ret-1", "quantity": 2}]),
    )
    .await;
    assert_eq!(requested.status(), StatusCode::CREATED);
    let requested: Value = requested.json().await.unwrap();
    let return_id = requested["id"].as_str().unwrap().to_owned();
    assert_eq!(requested["status"], "requested");
    assert_eq!(requested["reason"], "too big");
    assert_eq!(
        requested["items"],
        json!([{"sku": "RET-1", "quantity": 2, "unit_price": {"amount": 1000, "currency": "EUR"}}])
    );
    // Only one unit is left to return while this return is open.
    let too_many = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-1", "quantity": 2}]),
    )
    .await;
    let problem = assert_problem(too_many, 422, "validation_failed").await;
    assert_eq!(
        problem["errors"][0]["field"], "items[0].quantity",
        "{problem}"
    );

    let approved = step(&app, &admin, &id, &return_id, "approve", json!({})).await;
    assert_eq!(approved.status(), StatusCode::OK);
    assert_eq!(
        approved.json::<Value>().await.unwrap()["status"],
        "approved"
    );
    let received = step(&app, &admin, &id, &return_id, "receive", json!({})).await;
    assert_eq!(received.status(), StatusCode::OK);
    assert_eq!(
        stock(&app, &admin, "RET-1").await,
        (4, 0),
        "the units are back"
    );
    let ledger: Value = app
        .get_as(
            "/api/v1/admin/inventory/RET-1/movements",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let returned: Vec<&Value> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|movement| movement["kind"] == "return")
        .collect();
    assert_eq!(returned.len(), 1, "{ledger}");
    assert_eq!(returned[0]["delta_on_hand"], 2);
    assert!(returned[0]["reason"].as_str().unwrap().contains(&return_id));

    let over = step(
        &app,
        &admin,
        &id,
        &return_id,
        "refund",
        json!({"amount": 2001}),
    )
    .await;
    let problem = assert_problem(over, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "amount");
    let refunded = step(&app, &admin, &id, &return_id, "refund", json!({})).await;
    assert_eq!(refunded.status(), StatusCode::OK);
    let refunded: Value = refunded.json().await.unwrap();
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(
        refunded["refund"],
        json!({"amount": 2000, "currency": "EUR"})
    );
    let again = step(&app, &admin, &id, &return_id, "refund", json!({})).await;
    assert_problem(again, 409, "illegal_transition").await;

    // The provider's own event for the refund finds it recorded: one refund, not two.
    within(
        std::time::Duration::from_secs(5),
        "the order shows the refund",
        || async {
            order_of(&app, &shopper, &id).await["refunds"]
                .as_array()
                .unwrap()
                .len()
                == 1
        },
    )
    .await;
    let order = order_of(&app, &shopper, &id).await;
    assert_eq!(order["refunds"][0]["amount"]["amount"], 2000);
    assert_eq!(order["returns"][0]["status"], "refunded");
    assert_eq!(
        order["status"], "delivered",
        "a return does not change the order's status"
    );
    // One event (and so one mail) per step.
    let steps: Vec<String> = app
        .events("order.return_updated", &id)
        .await
        .iter()
        .map(|payload| payload["status"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(
        steps,
        ["requested", "approved", "received", "refunded"],
        "{steps:?}"
    );
}

/// With prices excluding tax, a return refunds the units' tax share too (not shipping).
#[actix_web::test]
async fn a_return_refunds_the_tax_that_was_added() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.orders.prices_include_tax = false;
    })
    .await;
    let admin = app.admin().await;
    let shopper = app.customer("taxed-returner").await;
    product(&app, &admin, "RET-8", 1000, 5).await;
    let rate = app
        .client
        .put(app.url("/api/v1/admin/tax-rates/DE"))
        .bearer_auth(&admin.access_token)
        .json(&json!({"rate_bps": 1900}))
        .send()
        .await
        .unwrap();
    assert_eq!(rate.status(), StatusCode::CREATED);
    let address_id = berlin_address(&app, &shopper).await;
    let placed = act(
        &app,
        &shopper.access_token,
        "/api/v1/orders",
        json!({"items": [{"sku": "RET-8", "quantity": 2}], "shipping_address_id": address_id}),
    )
    .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["total"]["amount"], 2380, "20.00 + 19 % tax");
    let id = placed["id"].as_str().unwrap().to_owned();
    pay_ship_deliver(&app, &admin, &shopper, &id).await;
    let return_id = requested_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-8", "quantity": 1}]),
    )
    .await;
    approve_and_receive(&app, &admin, &id, &return_id).await;
    let over = step(
        &app,
        &admin,
        &id,
        &return_id,
        "refund",
        json!({"amount": 1191}),
    )
    .await;
    assert_problem(over, 422, "validation_failed").await;
    let refunded: Value = step(&app, &admin, &id, &return_id, "refund", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        refunded["refund"],
        json!({"amount": 1190, "currency": "EUR"})
    );
}

/// Returns of one unit at a time give back what one return of them all would: the tax
/// share is rounded over every unit refunded so far, not rounded up in each return (the
/// difference would come out of the shipping, which is not refunded).
#[actix_web::test]
async fn returns_of_one_unit_at_a_time_refund_the_tax_once() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.orders.prices_include_tax = false;
    })
    .await;
    let admin = app.admin().await;
    let shopper = app.customer("unit-returner").await;
    product(&app, &admin, "RET-9", 10, 5).await;
    crate::shipping::put_rate(&app, &admin, "DE", 500).await;
    crate::shipping::create_method(
        &app,
        &admin,
        &json!({"code": "parcel", "name": "Parcel", "rate": {"amount": 100, "currency": "EUR"}}),
    )
    .await;
    let address_id = berlin_address(&app, &shopper).await;
    let placed = act(
        &app,
        &shopper.access_token,
        "/api/v1/orders",
        json!({"items": [{"sku": "RET-9", "quantity": 2}], "shipping_address_id": address_id,
               "shipping_method": "parcel"}),
    )
    .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    pay_ship_deliver(&app, &admin, &shopper, &id).await;
    let mut refunded = 0;
    for _ in 0..2 {
        let return_id = requested_return(
            &app,
            &shopper,
            &id,
            json!([{"sku": "RET-9", "quantity": 1}]),
        )
        .await;
        approve_and_receive(&app, &admin, &id, &return_id).await;
        let done: Value = step(&app, &admin, &id, &return_id, "refund", json!({}))
            .await
            .json()
            .await
            .unwrap();
        refunded += done["refund"]["amount"].as_i64().unwrap();
    }
    // 20.00 with 5 % tax is 21 (0.50 of tax a unit, rounded once), not 11 + 11.
    assert_eq!(refunded, 21);
}
