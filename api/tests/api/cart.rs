//! Carts over REST: lines set, changed and removed; the view's prices, stock and what
//! changed since a line was added; the caps; every endpoint's refusals (no caller 401,
//! a bad guest token 404, malformed input 400/422, another user's cart out of reach);
//! guest carts, their expiry and their merge into the signed-in user's cart — in the
//! database on both engines and in Redis. Checkout and concurrency (`checkout`), gRPC
//! (`grpc`).

mod checkout;
mod grpc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    the_cart_over_rest,
    guest_carts_merge_into_the_signed_in_cart,
    guest_carts_expire
);

pub(crate) const CART: &str = "/api/v1/cart";

/// Who calls: a signed-in user's bearer token, a guest cart's token, or nobody.
#[derive(Clone, Copy)]
pub(crate) enum Who<'a> {
    User(&'a Session),
    Guest(&'a str),
    Nobody,
}

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    who: Who<'_>,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path));
    request = match who {
        Who::User(user) => request.bearer_auth(&user.access_token),
        Who::Guest(token) => request.header("Souk-Cart-Token", token),
        Who::Nobody => request,
    };
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

/// `PUT /cart/items/{sku}` that must succeed; returns the cart.
pub(crate) async fn set(app: &TestApp, who: Who<'_>, sku: &str, quantity: i64) -> Value {
    let response = call(
        app,
        Method::PUT,
        &format!("{CART}/items/{sku}"),
        who,
        Some(&json!({"quantity": quantity})),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "set {sku} to {quantity}");
    response.json().await.unwrap()
}

pub(crate) async fn cart(app: &TestApp, who: Who<'_>) -> Value {
    let response = call(app, Method::GET, CART, who, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// The quantity of `sku` in a cart (0 when it has no such line).
pub(crate) fn quantity(cart: &Value, sku: &str) -> i64 {
    line(cart, sku).map_or(0, |line| line["quantity"].as_i64().unwrap())
}

pub(crate) fn line<'a>(cart: &'a Value, sku: &str) -> Option<&'a Value> {
    cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["sku"] == sku)
}

/// An active product priced `amount` EUR cents with `stock` units; returns its id.
pub(crate) async fn product(
    app: &TestApp,
    admin: &Session,
    sku: &str,
    amount: i64,
    stock: i64,
) -> String {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": format!("Item {sku}"), "price": {"amount": amount, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    if stock > 0 {
        let adjusted = app
            .post_json_as(
                &format!("/api/v1/admin/inventory/{sku}/adjust"),
                &admin.access_token,
                &json!({"delta": stock, "reason": "initial stock"}),
            )
            .await;
        assert_eq!(adjusted.status(), StatusCode::OK);
    }
    id
}

/// The fields a validation problem names.
async fn refused_fields(response: reqwest::Response) -> Vec<String> {
    let problem = assert_problem(response, 422, "validation_failed").await;
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn raw_put(
    app: &TestApp,
    user: &Session,
    path: &str,
    body: &'static str,
) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .bearer_auth(&user.access_token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn the_cart_over_rest(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    rest_scenario(&app).await;
}

#[actix_web::test]
async fn the_cart_over_rest_in_redis() {
    let app = spawn_app_with_redis(|_| {}).await;
    rest_scenario(&app).await;
    // The cart lives in Redis, not in the database.
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM carts")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

async fn rest_scenario(app: &TestApp) {
    let admin = app.admin().await;
    let ada = app.customer("cart").await;
    let eve = app.customer("cart-eve").await;
    let alpha = product(app, &admin, "CART-A", 1250, 5).await;
    product(app, &admin, "CART-B", 300, 0).await;
    let gamma = product(app, &admin, "CART-C", 999, 10).await;
    let ada_ = Who::User(&ada);

    // Nobody: 401 on every endpoint.
    for (method, path) in [
        (Method::GET, CART.to_owned()),
        (Method::DELETE, CART.to_owned()),
        (Method::PUT, format!("{CART}/items/CART-A")),
        (Method::DELETE, format!("{CART}/items/CART-A")),
        (Method::POST, format!("{CART}/merge")),
        (Method::POST, format!("{CART}/checkout")),
    ] {
        let body = json!({"quantity": 1});
        let response = call(app, method.clone(), &path, Who::Nobody, Some(&body)).await;
        assert_problem(response, 401, "missing_token").await;
    }
    let forged = app
        .client
        .get(app.url(CART))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_problem(forged, 401, "invalid_token").await;
    // A guest token that is malformed or unknown names no cart.
    let unknown = "A".repeat(43);
    for token in ["nope", unknown.as_str()] {
        let response = call(app, Method::GET, CART, Who::Guest(token), None).await;
        assert_problem(response, 404, "not_found").await;
        let body = json!({"quantity": 1});
        let path = format!("{CART}/items/CART-A");
        let response = call(app, Method::PUT, &path, Who::Guest(token), Some(&body)).await;
        assert_problem(response, 404, "not_found").await;
        let response = call(app, Method::DELETE, CART, Who::Guest(token), None).await;
        assert_problem(response, 404, "not_found").await;
    }

    // An empty cart, never written.
    let empty = cart(app, ada_).await;
    assert_eq!(empty["items"], json!([]));
    assert_eq!(
        (&empty["total"], &empty["version"]),
        (&Value::Null, &json!(0))
    );

    // Lines: priced now, checked against the stock now.
    let first = set(app, ada_, "cart-a", 2).await;
    let a = line(&first, "CART-A").expect("the SKU is canonical");
    assert_eq!(a["quantity"], 2);
    assert_eq!(a["name"], "Item CART-A");
    assert_eq!(a["unit_price"], json!({"amount": 1250, "currency": "EUR"}));
    assert_eq!(a["line_total"], json!({"amount": 2500, "currency": "EUR"}));
    assert_eq!(
        (&a["status"], &a["available"]),
        (&json!("available"), &json!(5))
    );
    assert_eq!(a["price_changed"], false);
    let with_b = set(app, ada_, "CART-B", 1).await;
    let b = line(&with_b, "CART-B").unwrap();
    assert_eq!(
        (&b["status"], &b["available"]),
        (&json!("out_of_stock"), &json!(0))
    );
    let raised = set(app, ada_, "CART-A", 7).await;
    assert_eq!(
        line(&raised, "CART-A").unwrap()["status"],
        "insufficient_stock"
    );
    let view = set(app, ada_, "CART-A", 2).await;
    assert_eq!(view["total"], json!({"amount": 2800, "currency": "EUR"}));
    assert_eq!(view["item_count"], 3);
    assert!(view["version"].as_i64().unwrap() >= 4);

    // A price change since the line was added is shown as such.
    let repriced = app
        .client
        .patch(app.url(&format!("/api/v1/admin/products/{alpha}")))
        .bearer_auth(&admin.access_token)
        .json(&json!({"price": {"amount": 1500, "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(repriced.status(), StatusCode::OK);
    let now = cart(app, ada_).await;
    let a = line(&now, "CART-A").unwrap();
    assert_eq!(a["price_changed"], true);
    assert_eq!(a["price_when_added"]["amount"], 1250);
    assert_eq!(a["unit_price"]["amount"], 1500);
    assert_eq!(a["line_total"]["amount"], 3000);
    assert_eq!(now["total"]["amount"], 3300);

    // A product no longer sold stays in the cart, unpriced, and out of the total.
    set(app, ada_, "CART-C", 1).await;
    let archived = app
        .post_json_as(
            &format!("/api/v1/admin/products/{gamma}/archive"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(archived.status(), StatusCode::OK);
    let now = cart(app, ada_).await;
    let c = line(&now, "CART-C").unwrap();
    assert_eq!(
        (&c["status"], &c["unit_price"]),
        (&json!("unavailable"), &Value::Null)
    );
    assert_eq!(c["name"], "Item CART-C");
    assert_eq!(now["total"]["amount"], 3300);

    // Malformed input: 400 for the body's shape, 422 naming the field.
    let path = format!("{CART}/items/CART-A");
    for quantity in [101, -1] {
        let body = json!({"quantity": quantity});
        let response = call(app, Method::PUT, &path, ada_, Some(&body)).await;
        assert_eq!(refused_fields(response).await, ["quantity"]);
    }
    let body = json!({"quantity": 1});
    for sku in ["NOPE-1", "!!", "CART-C"] {
        let path = format!("{CART}/items/{sku}");
        let response = call(app, Method::PUT, &path, ada_, Some(&body)).await;
        assert_eq!(refused_fields(response).await, ["sku"], "{sku}");
    }
    assert_problem(
        raw_put(app, &ada, &path, "{\"quantity\": ").await,
        400,
        "malformed_json",
    )
    .await;
    for body in [
        r#"{"quantity": 1, "price": 1}"#,
        "{}",
        r#"{"quantity": "1"}"#,
    ] {
        assert_problem(raw_put(app, &ada, &path, body).await, 400, "invalid_body").await;
    }
    let response = call(
        app,
        Method::DELETE,
        &format!("{CART}/items/NOPE-1"),
        ada_,
        None,
    )
    .await;
    assert_problem(response, 404, "not_found").await;
    let response = call(app, Method::POST, &format!("{CART}/merge"), ada_, None).await;
    assert_eq!(refused_fields(response).await, ["Souk-Cart-Token"]);

    // Another user's cart is out of reach: Eve sees and edits only her own.
    let eves = Who::User(&eve);
    assert_eq!(cart(app, eves).await["items"], json!([]));
    let response = call(
        app,
        Method::DELETE,
        &format!("{CART}/items/CART-A"),
        eves,
        None,
    )
    .await;
    assert_problem(response, 404, "not_found").await;
    set(app, eves, "CART-A", 1).await;
    let response = call(app, Method::DELETE, CART, eves, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(quantity(&cart(app, ada_).await, "CART-A"), 2);

    // Removing: one line (also by quantity 0), then all of them.
    let removed = call(
        app,
        Method::DELETE,
        &format!("{CART}/items/CART-B"),
        ada_,
        None,
    )
    .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let removed: Value = removed.json().await.unwrap();
    assert!(line(&removed, "CART-B").is_none());
    let zeroed = set(app, ada_, "CART-C", 0).await;
    assert!(line(&zeroed, "CART-C").is_none());
    let response = call(app, Method::DELETE, CART, ada_, None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(cart(app, ada_).await["items"], json!([]));
}

async fn guest_carts_merge_into_the_signed_in_cart(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    product(&app, &admin, "GUEST-A", 500, 100).await;
    product(&app, &admin, "GUEST-B", 700, 100).await;
    let ada = app.customer("cart-guest").await;

    let created = app.post_json("/api/v1/carts/guest", &json!({})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let guest: Value = created.json().await.unwrap();
    let token = guest["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43);
    assert!(guest["expires_at"]
        .as_str()
        .is_some_and(|at| !at.is_empty()));
    let as_guest = Who::Guest(&token);
    assert_eq!(cart(&app, as_guest).await["items"], json!([]));
    set(&app, as_guest, "GUEST-A", 30).await;
    let view = set(&app, as_guest, "GUEST-B", 1).await;
    assert!(view["expires_at"].is_string(), "{view}");
    // Only the hash of the token is stored.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT cart_key FROM carts")
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    assert!(stored.iter().all(|(key,)| !key.contains(&token)));
    // A guest cannot check out or merge.
    let response = call(
        &app,
        Method::POST,
        &format!("{CART}/checkout"),
        as_guest,
        None,
    )
    .await;
    assert_problem(response, 401, "missing_token").await;
    let response = call(&app, Method::POST, &format!("{CART}/merge"), as_guest, None).await;
    assert_problem(response, 401, "missing_token").await;

    // Signed in: the guest's lines join Ada's, quantities added and capped at 100.
    set(&app, Who::User(&ada), "GUEST-A", 90).await;
    let merge = |token: String| {
        let app = &app;
        let ada = &ada;
        async move {
            app.client
                .post(app.url(&format!("{CART}/merge")))
                .bearer_auth(&ada.access_token)
                .header("Souk-Cart-Token", token)
                .send()
                .await
                .unwrap()
        }
    };
    let merged = merge(token.clone()).await;
    assert_eq!(merged.status(), StatusCode::OK);
    let merged: Value = merged.json().await.unwrap();
    assert_eq!(quantity(&merged, "GUEST-A"), 100);
    assert_eq!(quantity(&merged, "GUEST-B"), 1);
    assert_eq!(
        merged["expires_at"],
        Value::Null,
        "a user's cart does not expire"
    );
    // The guest cart is gone: its token reaches nothing, a second merge adds nothing.
    let response = call(&app, Method::GET, CART, as_guest, None).await;
    assert_problem(response, 404, "not_found").await;
    assert_problem(merge(token.clone()).await, 404, "not_found").await;
    assert_problem(merge("bad".to_owned()).await, 404, "not_found").await;
    assert_eq!(quantity(&cart(&app, Who::User(&ada)).await, "GUEST-A"), 100);
}

async fn guest_carts_expire(backend: TestBackend) {
    let app = spawn_app_with(backend, |config| config.cart.guest_ttl_secs = 1).await;
    expiry_scenario(&app).await;
}

#[actix_web::test]
async fn guest_carts_expire_in_redis() {
    let app = spawn_app_with_redis(|config| config.cart.guest_ttl_secs = 1).await;
    expiry_scenario(&app).await;
}

async fn expiry_scenario(app: &TestApp) {
    let admin = app.admin().await;
    product(app, &admin, "EXPIRE-A", 500, 1).await;
    let guest: Value = app
        .post_json("/api/v1/carts/guest", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let token = guest["token"].as_str().unwrap();
    set(app, Who::Guest(token), "EXPIRE-A", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let response = call(app, Method::GET, CART, Who::Guest(token), None).await;
    assert_problem(response, 404, "not_found").await;
    let body = json!({"quantity": 1});
    let path = format!("{CART}/items/EXPIRE-A");
    let response = call(app, Method::PUT, &path, Who::Guest(token), Some(&body)).await;
    assert_problem(response, 404, "not_found").await;
}

#[actix_web::test]
async fn a_cart_holds_at_most_fifty_lines() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ada = app.customer("cart-cap").await;
    for index in 0..51 {
        product(&app, &admin, &format!("CAP-{index}"), 100, 0).await;
    }
    for index in 0..50 {
        set(&app, Who::User(&ada), &format!("CAP-{index}"), 100).await;
    }
    let body = json!({"quantity": 1});
    let response = call(
        &app,
        Method::PUT,
        &format!("{CART}/items/CAP-50"),
        Who::User(&ada),
        Some(&body),
    )
    .await;
    assert_problem(response, 409, "cart_limit").await;
    // An existing line still changes.
    let view = set(&app, Who::User(&ada), "CAP-0", 3).await;
    assert_eq!(view["items"].as_array().unwrap().len(), 50);
    assert_eq!(view["item_count"], 49 * 100 + 3);
}

/// An account deleted with its cart in Redis takes the cart with it.
#[actix_web::test]
async fn a_deleted_account_takes_its_redis_cart_along() {
    let prefix = own_redis_prefix();
    let configured = prefix.clone();
    let app = spawn_app_with_redis(move |config| config.redis.key_prefix = configured).await;
    let admin = app.admin().await;
    product(&app, &admin, "GONE-1", 100, 0).await;
    let ada = app.customer("cart-deleted").await;
    set(&app, Who::User(&ada), "GONE-1", 2).await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}cart:user:{}", ada.id);
    let exists = |connection: &mut redis::aio::MultiplexedConnection| {
        let key = key.clone();
        let mut connection = connection.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut connection)
                .await
                .unwrap()
        }
    };
    assert_eq!(exists(&mut connection).await, 1, "the cart is in redis");
    let deleted = call(
        &app,
        Method::DELETE,
        "/api/v1/users/me",
        Who::User(&ada),
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        exists(&mut connection).await,
        0,
        "and goes with the account"
    );
}
