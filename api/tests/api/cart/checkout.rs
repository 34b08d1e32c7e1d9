//! Checkout from the cart — the order placed through the idempotent create, exactly the
//! ordered lines taken out after, a retry with the key answering the same order, an
//! empty cart refused — and concurrency: two sessions editing one cart lose no write,
//! a checkout racing an edit leaves the order and the cart consistent, and a merge racing
//! guest edits loses none it accepted; in the database on both engines and in Redis.

use futures_util::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{call, cart, product, quantity, set, Who, CART};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    checkout_places_the_order_and_takes_its_lines_out,
    two_sessions_editing_one_cart_lose_nothing,
    a_checkout_racing_an_edit_stays_consistent,
    a_merge_racing_guest_edits_loses_none_it_accepted
);

async fn checkout(
    app: &TestApp,
    user: &Session,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("{CART}/checkout")))
        .bearer_auth(&user.access_token);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// The quantity of `sku` in an order (0 when it has no such line).
fn ordered(order: &Value, sku: &str) -> i64 {
    order["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["sku"] == sku)
        .map_or(0, |line| line["quantity"].as_i64().unwrap())
}

async fn checkout_places_the_order_and_takes_its_lines_out(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    product(&app, &admin, "BUY-A", 1000, 10).await;
    product(&app, &admin, "BUY-B", 250, 1).await;
    let ada = app.customer("cart-checkout").await;
    let eve = app.customer("cart-checkout-eve").await;
    let ada_ = Who::User(&ada);

    assert_problem(checkout(&app, &ada, None, None).await, 409, "cart_empty").await;
    set(&app, ada_, "BUY-A", 2).await;
    set(&app, ada_, "BUY-B", 1).await;
    set(&app, Who::User(&eve), "BUY-A", 1).await;
    // Refusals leave the cart as it was.
    let body = json!({"shipping_address_id": souk_db::ids::new_id()});
    let response = checkout(&app, &ada, None, Some(body)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "shipping_address_id");
    let response = checkout(&app, &ada, None, Some(json!({"coupon": "x"}))).await;
    assert_problem(response, 400, "invalid_body").await;
    let response = checkout(&app, &ada, Some(" "), None).await;
    assert_problem(response, 422, "validation_failed").await;
    set(&app, ada_, "BUY-B", 2).await;
    let response = checkout(&app, &ada, Some("k1"), None).await;
    assert_problem(response, 409, "insufficient_stock").await;
    set(&app, ada_, "BUY-B", 1).await;
    assert_eq!(quantity(&cart(&app, ada_).await, "BUY-A"), 2);

    // Placed: the order holds the cart's lines at today's prices; the cart is empty.
    let placed = checkout(&app, &ada, Some("k1"), Some(json!({}))).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    assert_eq!((ordered(&order, "BUY-A"), ordered(&order, "BUY-B")), (2, 1));
    assert_eq!(order["total"], json!({"amount": 2250, "currency": "EUR"}));
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(cart(&app, ada_).await["items"], json!([]));
    // Eve's cart is untouched.
    assert_eq!(quantity(&cart(&app, Who::User(&eve)).await, "BUY-A"), 1);

    // A retry with the key answers the same order, and takes nothing out twice.
    set(&app, ada_, "BUY-A", 1).await;
    let retried = checkout(&app, &ada, Some("k1"), None).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let again: Value = retried.json().await.unwrap();
    assert_eq!(again["id"], order["id"]);
    assert_eq!(quantity(&cart(&app, ada_).await, "BUY-A"), 1);
    // The key is the cart's own: the same key on POST /orders is another request.
    let direct = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&ada.access_token)
        .header("Idempotency-Key", "k1")
        .json(&json!({"items": [{"sku": "BUY-A", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), StatusCode::CREATED);
    let orders: Value = app
        .get_as("/api/v1/orders", &ada.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orders["items"].as_array().unwrap().len(), 2);
}

async fn two_sessions_editing_one_cart_lose_nothing(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    concurrent_editors(&app).await;
}

#[actix_web::test]
async fn two_sessions_editing_one_cart_lose_nothing_in_redis() {
    let app = spawn_app_with_redis(|_| {}).await;
    concurrent_editors(&app).await;
}

/// Two sessions of one user, and two holders of one guest token, each set ten lines
/// at once: every line of both is in the cart.
async fn concurrent_editors(app: &TestApp) {
    let admin = app.admin().await;
    let ada = app.customer("cart-editors").await;
    let second = app.session_for(&ada.id, &ada.email).await;
    for index in 0..20 {
        product(app, &admin, &format!("EDIT-{index}"), 100, 0).await;
    }
    let guest: Value = app
        .post_json("/api/v1/carts/guest", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let token = guest["token"].as_str().unwrap();
    let sides = [
        (Who::User(&ada), Who::User(&second), 20),
        // The guest cart was written once when it was made.
        (Who::Guest(token), Who::Guest(token), 21),
    ];
    for (first, other, version) in sides {
        let edits = (0..20).map(|index| {
            let who = if index % 2 == 0 { first } else { other };
            async move { set(app, who, &format!("EDIT-{index}"), index + 1).await }
        });
        join_all(edits).await;
        let view = cart(app, first).await;
        assert_eq!(view["items"].as_array().unwrap().len(), 20, "{view}");
        for index in 0..20 {
            assert_eq!(quantity(&view, &format!("EDIT-{index}")), index + 1);
        }
        assert_eq!(view["version"], version);
    }
}

async fn a_checkout_racing_an_edit_stays_consistent(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    checkout_races(&app).await;
}

#[actix_web::test]
async fn a_checkout_racing_an_edit_stays_consistent_in_redis() {
    let app = spawn_app_with_redis(|_| {}).await;
    checkout_races(&app).await;
}

/// The cart holds RACE-A × 2; a checkout runs while another session raises A to 5 and
/// adds RACE-B × 1. Whichever comes first, nothing is lost or bought twice: A is
/// ordered 5 (the raise came first) or 2, with the rest (3), or the raise after the
/// checkout (5), left in the cart; B is in the order or in the cart, once.
async fn checkout_races(app: &TestApp) {
    let admin = app.admin().await;
    product(app, &admin, "RACE-A", 100, 1000).await;
    product(app, &admin, "RACE-B", 100, 1000).await;
    let ada = app.customer("cart-race").await;
    let other = app.session_for(&ada.id, &ada.email).await;
    for round in 0..8 {
        let response = call(app, Method::DELETE, CART, Who::User(&ada), None).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        set(app, Who::User(&ada), "RACE-A", 2).await;
        let key = format!("race-{round}");
        let edit = async {
            if round % 2 == 1 {
                tokio::time::sleep(std::time::Duration::from_millis(round * 2)).await;
            }
            set(app, Who::User(&other), "RACE-A", 5).await;
            set(app, Who::User(&other), "RACE-B", 1).await;
        };
        let (placed, ()) = tokio::join!(checkout(app, &ada, Some(&key), None), edit);
        assert_eq!(placed.status(), StatusCode::CREATED, "round {round}");
        let order: Value = placed.json().await.unwrap();
        let after = cart(app, Who::User(&ada)).await;
        let a = (ordered(&order, "RACE-A"), quantity(&after, "RACE-A"));
        assert!(
            [(5, 0), (2, 3), (2, 5)].contains(&a),
            "round {round}: RACE-A {a:?}"
        );
        let b = ordered(&order, "RACE-B") + quantity(&after, "RACE-B");
        assert_eq!(b, 1, "round {round}: RACE-B in order and cart");
        // A retry with the key changes nothing.
        let retried = checkout(app, &ada, Some(&key), None).await;
        assert_eq!(retried.status(), StatusCode::OK);
        assert_eq!(cart(app, Who::User(&ada)).await["items"], after["items"]);
    }
}

async fn a_merge_racing_guest_edits_loses_none_it_accepted(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    merge_races(&app).await;
}

#[actix_web::test]
async fn a_merge_racing_guest_edits_loses_none_it_accepted_in_redis() {
    let app = spawn_app_with_redis(|_| {}).await;
    merge_races(&app).await;
}

/// Guest edits sent while the guest cart merges into the user's: each edit is either
/// accepted before the merge took the cart (and then is in the user's cart) or refused
/// with 404 because the cart is gone; none is accepted and lost.
async fn merge_races(app: &TestApp) {
    let admin = app.admin().await;
    for index in 0..12 {
        product(app, &admin, &format!("MERGE-{index}"), 100, 0).await;
    }
    for round in 0..3 {
        let ada = app.customer(&format!("cart-merge-{round}")).await;
        let guest: Value = app
            .post_json("/api/v1/carts/guest", &json!({}))
            .await
            .json()
            .await
            .unwrap();
        let token = guest["token"].as_str().unwrap();
        set(app, Who::Guest(token), "MERGE-0", 1).await;
        let edits = (1..12).map(|index| async move {
            let sku = format!("MERGE-{index}");
            let response = call(
                app,
                Method::PUT,
                &format!("{CART}/items/{sku}"),
                Who::Guest(token),
                Some(&json!({"quantity": 1})),
            )
            .await;
            (sku, response.status())
        });
        let merge = async {
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
            app.client
                .post(app.url(&format!("{CART}/merge")))
                .bearer_auth(&ada.access_token)
                .header("Souk-Cart-Token", token)
                .send()
                .await
                .unwrap()
        };
        let (outcomes, merged) = tokio::join!(join_all(edits), merge);
        assert_eq!(merged.status(), StatusCode::OK);
        let mine = cart(app, Who::User(&ada)).await;
        assert_eq!(quantity(&mine, "MERGE-0"), 1, "{mine}");
        for (sku, status) in outcomes {
            match status {
                StatusCode::OK => {
                    assert_eq!(quantity(&mine, &sku), 1, "{sku} was accepted: {mine}")
                }
                StatusCode::NOT_FOUND => {}
                other => panic!("{sku}: {other}"),
            }
        }
    }
}
