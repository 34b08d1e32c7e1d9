//! `Idempotency-Key` on checkout: retries, concurrent ones included, answer one order
//! and hold one reservation, keys belong to their user, another body under a used key is
//! refused and holds nothing, and a retry of an order already paid answers that order
//! and releases what it reserved (both engines).

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{order, pay, place, product, stock};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(a_retry_of_a_paid_order_answers_it_and_holds_nothing);

/// Another body under a used key is refused, and the SKU of its one line is left as
/// `stock_after` (on hand, reserved) says.
async fn key_reused_holds_nothing(
    app: &TestApp,
    admin: &Session,
    user: &Session,
    items: Value,
    key: &str,
    stock_after: (i64, i64),
) {
    let sku = items[0]["sku"].as_str().unwrap().to_owned();
    let refused = order(app, user, items, Some(key)).await;
    assert_problem(refused, 422, "idempotency_key_reused").await;
    assert_eq!(
        stock(app, admin, &sku).await,
        stock_after,
        "the refused request holds nothing"
    );
}

#[actix_web::test]
async fn idempotency_keys_make_retries_safe() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("retry").await;
    product(&app, &admin, "KEYED", 100, 10).await;
    let items = json!([{"sku": "KEYED", "quantity": 2}]);

    // Five concurrent retries of one request: one order, one reservation.
    let attempts = futures_util::future::join_all(
        (0..5).map(|_| order(&app, &shopper, items.clone(), Some("checkout-1"))),
    )
    .await;
    let mut ids = Vec::new();
    for response in attempts {
        assert!(
            response.status() == StatusCode::CREATED || response.status() == StatusCode::OK,
            "{}",
            response.status()
        );
        let body: Value = response.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same order");
    assert_eq!(stock(&app, &admin, "KEYED").await, (10, 2));

    let replay = order(&app, &shopper, items.clone(), Some("checkout-1")).await;
    assert_eq!(replay.status(), StatusCode::OK);
    let different = json!([{"sku": "KEYED", "quantity": 3}]);
    key_reused_holds_nothing(&app, &admin, &shopper, different, "checkout-1", (10, 2)).await;
    // Keys belong to their user.
    let other = app.customer("other").await;
    assert_eq!(
        order(&app, &other, items, Some("checkout-1"))
            .await
            .status(),
        StatusCode::CREATED
    );
}

/// A checkout reads nothing by its key before reserving: a retry of an order already
/// paid reserves anew, finds the order when its insert is refused (or when the stock
/// has sold out since), answers that order and releases what it reserved.
async fn a_retry_of_a_paid_order_answers_it_and_holds_nothing(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("paid-retry").await;
    product(&app, &admin, "PAID-1", 100, 4).await;
    let items = json!([{"sku": "PAID-1", "quantity": 2}]);
    let placed = order(&app, &shopper, items.clone(), Some("paid-key")).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    let id = placed["id"].as_str().unwrap().to_owned();
    let paid = pay(&app, &shopper, &id).await;
    assert_eq!(paid.status(), StatusCode::OK);
    assert_eq!(stock(&app, &admin, "PAID-1").await, (2, 0));

    // Stock enough for the retry's own reservation: it is made, then released.
    let retried = order(&app, &shopper, items.clone(), Some("paid-key")).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let retried: Value = retried.json().await.unwrap();
    assert_eq!(
        (retried["id"].as_str(), retried["status"].as_str()),
        (Some(id.as_str()), Some("paid"))
    );
    assert_eq!(
        stock(&app, &admin, "PAID-1").await,
        (2, 0),
        "the retry holds nothing"
    );
    let different = json!([{"sku": "PAID-1", "quantity": 1}]);
    key_reused_holds_nothing(&app, &admin, &shopper, different, "paid-key", (2, 0)).await;

    // Sold out since: the retry's reservation fails, and it still answers the order.
    let other = app.customer("last-unit").await;
    place(&app, &other, json!([{"sku": "PAID-1", "quantity": 2}])).await;
    let sold_out = order(&app, &shopper, items, Some("paid-key")).await;
    assert_eq!(sold_out.status(), StatusCode::OK);
    let sold_out: Value = sold_out.json().await.unwrap();
    assert_eq!(sold_out["id"].as_str(), Some(id.as_str()));
    assert_eq!(stock(&app, &admin, "PAID-1").await, (2, 2));
    assert_eq!(
        app.events("order.placed", &id).await.len(),
        1,
        "one order, placed once"
    );
}
