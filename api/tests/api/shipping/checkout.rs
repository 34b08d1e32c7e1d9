//! Checkout with shipping and tax: the method's rate (free from its threshold on) and
//! the shipping country's tax rate make the order's totals, with prices including tax
//! (VAT-style, the default) or not; a method needs a shipping address in a country it
//! serves, is active and priced in the items' currency; every refusal names its field
//! and reserves nothing; the idempotency key covers the method.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{create_method, put_rate, standard};
use crate::addresses::{berlin, create, refused_fields, us_with_zip};
use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{product, stock};

on_both_backends!(checkout_prices_shipping_and_tax_included);

async fn checkout(
    app: &TestApp,
    user: &Session,
    body: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&user.access_token)
        .json(&body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn placed(app: &TestApp, user: &Session, body: Value) -> Value {
    let response = checkout(app, user, body, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

/// (subtotal, shipping, tax, total) of an order, in cents.
fn totals(order: &Value) -> (i64, i64, i64, i64) {
    let amount = |field: &str| {
        assert_eq!(order[field]["currency"], "EUR", "{order}");
        order[field]["amount"].as_i64().unwrap()
    };
    (
        amount("subtotal"),
        amount("shipping"),
        amount("tax"),
        amount("total"),
    )
}

/// Methods: `standard` (AT, DE; 4.90, free from 50.00), `express` (everywhere, 9.90),
/// `dollars` (USD), `paused` (inactive). Germany taxes 19 %.
async fn shop(app: &TestApp, admin: &Session) {
    product(app, admin, "SHIP-1", 1000, 100).await;
    product(app, admin, "SHIP-2", 2550, 100).await;
    create_method(app, admin, &standard()).await;
    create_method(
        app,
        admin,
        &json!({"code": "express", "name": "Express", "rate": eur(990)}),
    )
    .await;
    create_method(
        app,
        admin,
        &json!({"code": "dollars", "name": "Dollars", "rate": {"amount": 500, "currency": "USD"}}),
    )
    .await;
    create_method(
        app,
        admin,
        &json!({"code": "paused", "name": "Paused", "rate": eur(1), "active": false}),
    )
    .await;
    put_rate(app, admin, "DE", 1900).await;
}

async fn checkout_prices_shipping_and_tax_included(backend: TestBackend) {
    // Many unpaid orders of one shopper: no cap.
    let app = spawn_app_with(backend, |config| config.orders.max_unpaid_orders = 0).await;
    let admin = app.admin().await;
    let ada = app.customer("shipping-checkout").await;
    shop(&app, &admin).await;
    let home = create(&app, &ada, &berlin()).await;
    let paris = create(&app, &ada, &json!({"name": "Ada", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "FR"})).await;
    let (home, paris) = (home["id"].as_str().unwrap(), paris["id"].as_str().unwrap());
    let two = json!([{"sku": "SHIP-1", "quantity": 2}]);

    // 20.00 + 4.90 shipping, 19 % included: 24.90 × 19/119 = 3.9756… → 3.98.
    let order = placed(
        &app,
        &ada,
        json!({"items": two, "shipping_address_id": home, "shipping_method": "Standard"}),
    )
    .await;
    assert_eq!(totals(&order), (2000, 490, 398, 2490));
    assert_eq!(
        order["shipping_method"],
        json!({"code": "standard", "name": "Standard post"})
    );
    assert_eq!(
        (&order["tax_rate_bps"], &order["prices_include_tax"]),
        (&json!(1900), &json!(true))
    );
    // Stored as answered.
    let read: Value = app
        .get_as(
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
            &ada.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(totals(&read), totals(&order));
    assert_eq!(read["shipping_method"], order["shipping_method"]);

    // Free from the threshold on: exactly 50.00 ships free; 49.99 would not.
    let fifty = placed(&app, &ada, json!({"items": [{"sku": "SHIP-1", "quantity": 5}], "shipping_address_id": home, "shipping_method": "standard"})).await;
    assert_eq!(totals(&fifty), (5000, 0, 798, 5000));
    let above = placed(&app, &ada, json!({"items": [{"sku": "SHIP-2", "quantity": 2}], "shipping_address_id": home, "shipping_method": "standard"})).await;
    assert_eq!(totals(&above), (5100, 0, 814, 5100));

    // A country without a rate: no tax. An address without a method: tax, no shipping.
    let france = placed(
        &app,
        &ada,
        json!({"items": two, "shipping_address_id": paris, "shipping_method": "express"}),
    )
    .await;
    assert_eq!(totals(&france), (2000, 990, 0, 2990));
    assert_eq!(france["tax_rate_bps"], 0);
    let unshipped = placed(
        &app,
        &ada,
        json!({"items": [{"sku": "SHIP-1", "quantity": 1}], "shipping_address_id": home}),
    )
    .await;
    assert_eq!(totals(&unshipped), (1000, 0, 160, 1000));
    assert_eq!(unshipped["shipping_method"], Value::Null);
    // Neither: as before shipping and tax existed.
    let plain = placed(&app, &ada, json!({"items": two})).await;
    assert_eq!(totals(&plain), (2000, 0, 0, 2000));
    assert_eq!(
        (&plain["shipping_method"], &plain["tax_rate_bps"]),
        (&Value::Null, &json!(0))
    );
    // The event carries the totals too.
    let events = app
        .events("order.placed", order["id"].as_str().unwrap())
        .await;
    assert_eq!(
        (
            &events[0]["subtotal"],
            &events[0]["shipping"],
            &events[0]["tax"],
            &events[0]["total"]
        ),
        (&eur(2000), &eur(490), &eur(398), &eur(2490))
    );
    // And what the confirmation mail needs besides: the rate and the reservations' deadline.
    assert_eq!(events[0]["tax_rate_bps"], order["tax_rate_bps"]);
    assert!(
        events[0]["expires_at"].as_i64().unwrap() > 0,
        "{}",
        events[0]
    );

    // Refusals name their field and reserve nothing.
    let reserved = stock(&app, &admin, "SHIP-1").await;
    let eve = app.customer("shipping-checkout-eve").await;
    let eves = create(&app, &eve, &us_with_zip("Chicago")).await;
    for (body, field) in [
        (
            json!({"items": two, "shipping_method": "standard"}),
            "shipping_address_id",
        ),
        (
            json!({"items": two, "shipping_address_id": paris, "shipping_method": "standard"}),
            "shipping_method",
        ),
        (
            json!({"items": two, "shipping_address_id": home, "shipping_method": "nothing"}),
            "shipping_method",
        ),
        (
            json!({"items": two, "shipping_address_id": home, "shipping_method": "not a code"}),
            "shipping_method",
        ),
        (
            json!({"items": two, "shipping_address_id": home, "shipping_method": ""}),
            "shipping_method",
        ),
        (
            json!({"items": two, "shipping_address_id": home, "shipping_method": "paused"}),
            "shipping_method",
        ),
        (
            json!({"items": two, "shipping_address_id": home, "shipping_method": "dollars"}),
            "shipping_method",
        ),
        (
            json!({"items": two, "shipping_address_id": eves["id"], "shipping_method": "express"}),
            "shipping_address_id",
        ),
    ] {
        assert_eq!(
            refused_fields(checkout(&app, &ada, body.clone(), None).await).await,
            [field],
            "{body}"
        );
    }
    assert_problem(
        checkout(
            &app,
            &ada,
            json!({"items": two, "shipping_method": 7}),
            None,
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_eq!(stock(&app, &admin, "SHIP-1").await, reserved);

    // The key covers the method: the same body replays, another method is refused.
    let with_key = json!({"items": [{"sku": "SHIP-2", "quantity": 1}], "shipping_address_id": paris, "shipping_method": "express"});
    let first = checkout(&app, &ada, with_key.clone(), Some("ship-key")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = checkout(&app, &ada, with_key, Some("ship-key")).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_problem(
        checkout(
            &app,
            &ada,
            json!({"items": [{"sku": "SHIP-2", "quantity": 1}], "shipping_address_id": paris}),
            Some("ship-key"),
        )
        .await,
        422,
        "idempotency_key_reused",
    )
    .await;

    // A method deleted later: the order keeps its code and name.
    let deleted = crate::addresses::send(
        &app,
        reqwest::Method::DELETE,
        &format!("{}/standard", super::METHODS),
        &admin.access_token,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let kept: Value = app
        .get_as(
            &format!("/api/v1/orders/{}", order["id"].as_str().unwrap()),
            &ada.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["shipping_method"]["name"], "Standard post");
}

/// Prices without tax: tax is added to subtotal + shipping, rounded half up.
#[actix_web::test]
async fn checkout_adds_tax_when_prices_exclude_it() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.orders.prices_include_tax = false;
        config.orders.max_unpaid_orders = 0;
    })
    .await;
    let admin = app.admin().await;
    let ada = app.customer("shipping-exclusive").await;
    shop(&app, &admin).await;
    put_rate(&app, &admin, "AT", 1250).await;
    let home = create(&app, &ada, &berlin()).await;
    let vienna = create(
        &app,
        &ada,
        &json!({"name": "Ada", "line1": "Ring 1", "city": "Wien", "country": "AT"}),
    )
    .await;
    let (home, vienna) = (home["id"].as_str().unwrap(), vienna["id"].as_str().unwrap());

    // 20.00 + 4.90 = 24.90; 19 % of it is 4.731 → 4.73; 29.63 paid.
    let order = placed(&app, &ada, json!({"items": [{"sku": "SHIP-1", "quantity": 2}], "shipping_address_id": home, "shipping_method": "standard"})).await;
    assert_eq!(totals(&order), (2000, 490, 473, 2963));
    assert_eq!(order["prices_include_tax"], false);
    // 10.00 + 4.90 = 14.90 at 12.5 %: 1.8625 → 1.86. 25.50 at 12.5 %: 3.1875 → 3.19.
    let austria = placed(&app, &ada, json!({"items": [{"sku": "SHIP-1", "quantity": 1}], "shipping_address_id": vienna, "shipping_method": "standard"})).await;
    assert_eq!(totals(&austria), (1000, 490, 186, 1676));
    let half = placed(
        &app,
        &ada,
        json!({"items": [{"sku": "SHIP-2", "quantity": 1}], "shipping_address_id": vienna}),
    )
    .await;
    assert_eq!(totals(&half), (2550, 0, 319, 2869));
    // Free shipping from 50.00 (before tax); the payment is for the total with tax.
    let free = placed(&app, &ada, json!({"items": [{"sku": "SHIP-1", "quantity": 5}], "shipping_address_id": home, "shipping_method": "standard"})).await;
    assert_eq!(totals(&free), (5000, 0, 950, 5950));
    let paid = app
        .post_json_as(
            &format!("/api/v1/orders/{}/pay", free["id"].as_str().unwrap()),
            &ada.access_token,
            &json!({"payment_method": "test-card-ok"}),
        )
        .await;
    assert_eq!(paid.status(), StatusCode::OK);
    let paid: Value = paid.json().await.unwrap();
    assert_eq!(totals(&paid), (5000, 0, 950, 5950));
    // No rate for the country: nothing is added.
    let chicago = create(&app, &ada, &us_with_zip("Chicago")).await;
    let us = placed(&app, &ada, json!({"items": [{"sku": "SHIP-1", "quantity": 1}], "shipping_address_id": chicago["id"], "shipping_method": "express"})).await;
    assert_eq!(totals(&us), (1000, 990, 0, 1990));
}
