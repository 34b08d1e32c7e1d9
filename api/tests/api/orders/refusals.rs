//! What orders refuse: another user's order is out of reach and bad input is refused;
//! and a stored status the code does not know is an error, never read as a default (the
//! order can be neither paid nor cancelled and stays as stored).

use serde_json::{json, Value};

use super::{act, order, pay, place, product, stock};
use crate::helpers::*;

#[actix_web::test]
async fn orders_are_private_and_bad_input_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let owner = app.customer("owner").await;
    let stranger = app.customer("stranger").await;
    product(&app, &admin, "PRIV", 100, 10).await;
    let placed: Value = place(&app, &owner, json!([{"sku": "PRIV", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();
    assert_problem(
        app.get_as(&format!("/api/v1/orders/{id}"), &stranger.access_token)
            .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        act(
            &app,
            &stranger.access_token,
            &format!("/api/v1/orders/{id}/pay"),
            json!({"payment_method": "card"}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        act(
            &app,
            &stranger.access_token,
            &format!("/api/v1/orders/{id}/cancel"),
            json!({}),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.get("/api/v1/orders").await, 401, "missing_token").await;
    assert_problem(
        app.get_as("/api/v1/admin/orders", &owner.access_token)
            .await,
        403,
        "forbidden",
    )
    .await;

    for (items, code) in [
        (json!([]), "validation_failed"),
        (json!([{"sku": "PRIV", "quantity": 0}]), "validation_failed"),
        (
            json!([{"sku": "PRIV", "quantity": 1000}]),
            "validation_failed",
        ),
        (
            json!([{"sku": "NO-SUCH", "quantity": 1}]),
            "validation_failed",
        ),
        (
            json!([{"sku": "' OR 1=1", "quantity": 1}]),
            "validation_failed",
        ),
    ] {
        assert_problem(order(&app, &owner, items, None).await, 422, code).await;
    }
    // A refusal names the item as the request placed it (items are merged and sorted by
    // SKU before the catalog is asked).
    let unknown_second = order(
        &app,
        &owner,
        json!([{"sku": "ZZZ-1", "quantity": 1}, {"sku": "AAA-NONE", "quantity": 1}, {"sku": "ZZZ-1", "quantity": 1}]),
        None,
    )
    .await;
    let refused = assert_problem(unknown_second, 422, "validation_failed").await;
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["items[1].sku", "items[0].sku"], "{refused}");
    assert_problem(
        order(
            &app,
            &owner,
            json!([{"sku": "PRIV", "quantity": "1"}]),
            None,
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        order(
            &app,
            &owner,
            json!([{"sku": "PRIV", "quantity": 1}]),
            Some(&"k".repeat(101)),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;
    let malformed = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&owner.access_token)
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "malformed_json").await;
    for query in ["status=lost", "cursor=abc", "from=yesterday", "limit=0"] {
        let response = app
            .get_as(
                &format!("/api/v1/admin/orders?{query}"),
                &admin.access_token,
            )
            .await;
        assert!(response.status() == 400, "{query}: {}", response.status());
    }
    assert_problem(
        app.get_as(
            &format!("/api/v1/admin/orders/{}", souk_db::ids::new_id()),
            &admin.access_token,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        stock(&app, &admin, "PRIV").await,
        (10, 1),
        "refused requests reserved nothing"
    );
}

/// A stored status the code does not know is an error, never read as a default: the
/// order cannot be paid or cancelled, and it stays exactly as stored.
#[actix_web::test]
async fn an_unknown_stored_status_is_an_error_not_a_default() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("corrupt").await;
    product(&app, &admin, "CORRUPT", 100, 5).await;
    let placed = place(&app, &shopper, json!([{"sku": "CORRUPT", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();
    let pool = app.database.db.pool();
    sqlx::query("UPDATE orders SET status = 'bogus' WHERE id = ?")
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    let paid = pay(&app, &shopper, id).await;
    assert_problem(paid, 500, "internal").await;
    let cancelled = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/cancel"),
        json!({}),
    )
    .await;
    assert_problem(cancelled, 500, "internal").await;
    let (status, version): (String, i64) =
        sqlx::query_as("SELECT status, version FROM orders WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(status, "bogus", "nothing was written over it");
    assert_eq!(version, 1);
    assert_eq!(
        stock(&app, &admin, "CORRUPT").await,
        (5, 1),
        "the stock untouched"
    );
}
