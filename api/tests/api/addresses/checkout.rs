//! Checkout with addresses: the order keeps copies of the addresses named, which later
//! edits and deletions of the address book do not reach; ids that are not the caller's
//! addresses are refused naming the field; the idempotency key covers the addresses.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{berlin, create, refused_fields, send, us_with_zip, ADDRESSES};
use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{order, product, stock};

on_both_backends!(orders_keep_copies_of_their_addresses);

/// The address fields an order's copy shows.
fn content(address: &Value) -> Value {
    let mut content = address.clone();
    for field in ["id", "created_at", "updated_at"] {
        content.as_object_mut().unwrap().remove(field);
    }
    content
}

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

async fn orders_keep_copies_of_their_addresses(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let ada = app.customer("checkout-addresses").await;
    let eve = app.customer("checkout-addresses-eve").await;
    product(&app, &admin, "ADDR-1", 900, 50).await;
    let items = json!([{"sku": "ADDR-1", "quantity": 1}]);
    let home = create(&app, &ada, &berlin()).await;
    let office = create(&app, &ada, &json!({"name": "Ada at work", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "FR"})).await;
    let eves = create(&app, &eve, &us_with_zip("Chicago")).await;
    let (home_id, office_id) = (home["id"].as_str().unwrap(), office["id"].as_str().unwrap());

    // Shipping only: it bills too. Both: each its own. None: null, as before.
    let shipped = checkout(
        &app,
        &ada,
        json!({"items": items, "shipping_address_id": home_id}),
        None,
    )
    .await;
    assert_eq!(shipped.status(), StatusCode::CREATED);
    let shipped: Value = shipped.json().await.unwrap();
    assert_eq!(shipped["shipping_address"], content(&home));
    assert_eq!(shipped["billing_address"], content(&home));
    let both = checkout(
        &app,
        &ada,
        json!({"items": items, "shipping_address_id": home_id, "billing_address_id": office_id}),
        Some("both-1"),
    )
    .await;
    assert_eq!(both.status(), StatusCode::CREATED);
    let both: Value = both.json().await.unwrap();
    assert_eq!(
        (
            both["shipping_address"].clone(),
            both["billing_address"].clone()
        ),
        (content(&home), content(&office))
    );
    let plain = order(&app, &ada, items.clone(), None).await;
    let plain: Value = plain.json().await.unwrap();
    assert_eq!(
        (&plain["shipping_address"], &plain["billing_address"]),
        (&Value::Null, &Value::Null)
    );

    // Ids that are not the caller's addresses: 422 naming the field, nothing reserved.
    let reserved = stock(&app, &admin, "ADDR-1").await;
    let eves_id = eves["id"].as_str().unwrap();
    for (body, field) in [
        (
            json!({"items": items, "shipping_address_id": eves_id}),
            "shipping_address_id",
        ),
        (
            json!({"items": items, "shipping_address_id": home_id, "billing_address_id": eves_id}),
            "billing_address_id",
        ),
        (
            json!({"items": items, "billing_address_id": "not-an-id"}),
            "billing_address_id",
        ),
        (
            json!({"items": items, "shipping_address_id": ""}),
            "shipping_address_id",
        ),
    ] {
        assert_eq!(
            refused_fields(checkout(&app, &ada, body, None).await).await,
            [field]
        );
    }
    assert_eq!(stock(&app, &admin, "ADDR-1").await, reserved);

    // Edits and deletions of the address book leave the orders as placed.
    let edited = send(
        &app,
        Method::PATCH,
        &format!("{ADDRESSES}/{home_id}"),
        &ada.access_token,
        Some(&json!({"line1": "Moved 2"})),
    )
    .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let deleted = send(
        &app,
        Method::DELETE,
        &format!("{ADDRESSES}/{office_id}"),
        &ada.access_token,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for placed in [&shipped, &both] {
        let id = placed["id"].as_str().unwrap();
        let stored: Value = app
            .get_as(&format!("/api/v1/orders/{id}"), &ada.access_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(stored["shipping_address"], placed["shipping_address"]);
        assert_eq!(stored["billing_address"], placed["billing_address"]);
        let admin_view: Value = app
            .get_as(&format!("/api/v1/admin/orders/{id}"), &admin.access_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(admin_view["billing_address"], placed["billing_address"]);
    }
    let listed: Value = app
        .get_as("/api/v1/orders", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    let listed_both = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == both["id"])
        .unwrap();
    assert_eq!(listed_both["billing_address"], content(&office));

    // The idempotency key is bound to the addresses too: a replay with the same body is
    // the same order (even though the billing address is deleted since), another is refused.
    let replay = checkout(
        &app,
        &ada,
        json!({"items": items, "shipping_address_id": home_id, "billing_address_id": office_id}),
        Some("both-1"),
    )
    .await;
    assert_eq!(replay.status(), StatusCode::OK);
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["id"], both["id"]);
    assert_eq!(replay["billing_address"], content(&office));
    let other = checkout(
        &app,
        &ada,
        json!({"items": items, "shipping_address_id": home_id}),
        Some("both-1"),
    )
    .await;
    assert_problem(other, 422, "idempotency_key_reused").await;
    let no_address = checkout(&app, &ada, json!({"items": items}), Some("both-1")).await;
    assert_problem(no_address, 422, "idempotency_key_reused").await;
}
