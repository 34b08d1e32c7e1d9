//! Product bodies and patches are validated: refused naming the field (422), or as a
//! malformed or unknown body (400); accepted at the limits; SKUs upper-cased, unique in
//! any case and immutable (SQLite). Tags differing only by an accent are stored or
//! refused, never a conflict or a 500 (both engines).

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    by_id, by_sku, create, create_category, id_of, matching, ok_json, patch_product, product, set,
    with,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(tags_differing_only_by_accents);

/// Two tags that differ only by an accent are two tags (validation keeps both). They are
/// either stored as given or refused as invalid tags: never a SKU conflict or a 500.
async fn tags_differing_only_by_accents(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let mut problems = Vec::new();
    let body = with(
        product("CAFE-1", "Coffee Grinder", 3000),
        json!({"tags": ["cafe", "café"]}),
    );
    let response = app
        .post_json_as("/api/v1/admin/products", &admin.access_token, &body)
        .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    match status {
        StatusCode::CREATED => {
            assert_eq!(answer["tags"], json!(["cafe", "café"]));
            let stored = ok_json(by_sku(&app, None, "CAFE-1").await).await;
            assert_eq!(stored["tags"], json!(["cafe", "café"]));
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert_eq!(answer["errors"][0]["field"], "tags", "{answer}")
        }
        other => problems.push(format!("create with tags cafe, café: {other} {answer}")),
    }

    let plain = create(
        &app,
        &admin,
        with(
            product("CREME-1", "Custard", 500),
            json!({"tags": ["creme"]}),
        ),
    )
    .await;
    let response = patch_product(
        &app,
        &admin,
        &id_of(&plain),
        json!({"tags": ["creme", "crème"]}),
    )
    .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    match status {
        StatusCode::OK => assert_eq!(answer["tags"], json!(["creme", "crème"])),
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert_eq!(answer["errors"][0]["field"], "tags", "{answer}")
        }
        other => problems.push(format!("patch to tags creme, crème: {other} {answer}")),
    }
    // A refused change leaves the product as it was.
    let stored = ok_json(by_id(&app, None, &id_of(&plain)).await).await;
    if stored["tags"] != json!(["creme"]) && stored["tags"] != json!(["creme", "crème"]) {
        problems.push(format!("after the patch: {stored}"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[actix_web::test]
async fn invalid_products_are_refused_with_the_field() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();
    let post = |body: Value| {
        let request = app
            .client
            .post(app.url("/api/v1/admin/products"))
            .bearer_auth(token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    for (body, field) in [
        (
            json!({"sku": "N-1", "name": "Neg", "price": {"amount": -1, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"sku": "N-2", "name": "Huge", "price": {"amount": 1_000_000_000_001_i64, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"sku": "N-3", "name": "Unknown", "price": {"amount": 1, "currency": "XYZ"}}),
            "price.currency",
        ),
        (
            json!({"sku": "N-4", "name": "Euro sign", "price": {"amount": 1, "currency": "€"}}),
            "price.currency",
        ),
        (
            json!({"sku": "N-5", "name": "x".repeat(201), "price": {"amount": 1, "currency": "EUR"}}),
            "name",
        ),
        (
            json!({"sku": "N-6", "name": "   ", "price": {"amount": 1, "currency": "EUR"}}),
            "name",
        ),
        (
            json!({"sku": "N-7", "name": "Long", "description": "d".repeat(5001), "price": {"amount": 1, "currency": "EUR"}}),
            "description",
        ),
        (
            json!({"sku": "N 8", "name": "Space", "price": {"amount": 1, "currency": "EUR"}}),
            "sku",
        ),
        (
            json!({"sku": "N-9", "name": "Tagged", "price": {"amount": 1, "currency": "EUR"}, "tags": ["two words"]}),
            "tags",
        ),
        (
            json!({"sku": "N-10", "name": "Pictured", "price": {"amount": 1, "currency": "EUR"}, "images": ["javascript:alert(1)"]}),
            "images",
        ),
        (
            json!({"sku": "N-11", "name": "Lost", "price": {"amount": 1, "currency": "EUR"}, "category_id": souk_db::ids::new_id()}),
            "category_id",
        ),
        (
            json!({"sku": "N-12", "name": "Slugged", "price": {"amount": 1, "currency": "EUR"}, "category": "garden"}),
            "category",
        ),
    ] {
        let problem = assert_problem(post(body.clone()).await, 422, "validation_failed").await;
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|error| error["field"] == field),
            "{field}: {problem}"
        );
    }
    // At the limits: accepted.
    let at_limit = post(
        json!({"sku": "L-1", "name": "n".repeat(200), "description": "d".repeat(5000),
        "price": {"amount": 0, "currency": "jpy"}}),
    )
    .await;
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    let location = at_limit.headers()["location"].to_str().unwrap().to_owned();
    let at_limit: Value = at_limit.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/products/{}", id_of(&at_limit)));
    assert_eq!(at_limit["status"], "draft", "draft by default");
    assert_eq!(at_limit["price"]["currency"], "JPY");

    // SKUs are upper-cased, so another case is the same SKU.
    let first = post(product("abc-1", "First", 100)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["sku"], "ABC-1");
    for sku in ["ABC-1", "abc-1", " Abc-1 "] {
        assert_problem(post(product(sku, "Second", 200)).await, 409, "sku_taken").await;
    }
    assert_eq!(
        matching(&app, Some(token), &[]).await,
        set(&["L-1", "ABC-1"]),
        "nothing refused was stored"
    );

    // Malformed and wrongly shaped bodies.
    let raw = |content_type: &'static str, body: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/admin/products"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        async move { request.send().await.unwrap() }
    };
    assert_problem(
        raw("application/json", "{\"sku\": ").await,
        400,
        "malformed_json",
    )
    .await;
    assert_problem(raw("application/json", "").await, 400, "malformed_json").await;
    assert_problem(raw("application/json", "[]").await, 400, "invalid_body").await;
    assert_problem(
        raw("text/plain", "{\"sku\": \"T-1\"}").await,
        415,
        "unsupported_media_type",
    )
    .await;
    let unknown = assert_problem(
        post(with(product("U-1", "Unknown", 1), json!({"colour": "red"}))).await,
        400,
        "invalid_body",
    )
    .await;
    assert!(unknown["detail"].as_str().unwrap().contains("colour"));
    let wrong_type = assert_problem(
        post(json!({"sku": "W-1", "name": "Float", "price": {"amount": 10.5, "currency": "EUR"}}))
            .await,
        400,
        "invalid_body",
    )
    .await;
    assert!(wrong_type["detail"].as_str().unwrap().contains("amount"));
}

#[actix_web::test]
async fn patches_validate_and_skus_are_immutable() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let created = create(
        &app,
        &admin,
        with(
            product("PATCH-1", "Patched Lamp", 1000),
            json!({"tags": ["lamp"]}),
        ),
    )
    .await;
    let id = id_of(&created);
    for body in [
        json!({"sku": "OTHER-1"}),
        json!({"sku": "PATCH-1"}),
        json!({"name": "Fine", "id": souk_db::ids::new_id()}),
        json!({"created_at": "2020-01-01T00:00:00Z"}),
        json!({"price": {"amount": 5}}),
        json!({"price": {"amount": 5, "currency": "EUR", "vat": 1}}),
        json!({"status": "deleted"}),
    ] {
        assert_problem(
            patch_product(&app, &admin, &id, body).await,
            400,
            "invalid_body",
        )
        .await;
    }
    let sku_refused = assert_problem(
        patch_product(&app, &admin, &id, json!({"sku": "OTHER-1"})).await,
        400,
        "invalid_body",
    )
    .await;
    assert!(sku_refused["detail"].as_str().unwrap().contains("sku"));
    for (body, field) in [
        (
            json!({"price": {"amount": -5, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"price": {"amount": 5, "currency": "ZZZ"}}),
            "price.currency",
        ),
        (json!({"name": "y".repeat(201)}), "name"),
        (json!({"description": "z".repeat(5001)}), "description"),
        (
            json!({"category_id": souk_db::ids::new_id()}),
            "category_id",
        ),
    ] {
        let problem = assert_problem(
            patch_product(&app, &admin, &id, body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // None of the refused changes happened.
    let unchanged = ok_json(by_id(&app, Some(&admin.access_token), &id).await).await;
    assert_eq!(unchanged, created);

    // A good patch changes only what it names; null takes the product out of its category.
    let category = create_category(&app, &admin, "Lighting", None).await;
    let moved = ok_json(
        patch_product(
            &app,
            &admin,
            &id,
            json!({"category_id": category["id"], "price": {"amount": 1200, "currency": "usd"}}),
        )
        .await,
    )
    .await;
    assert_eq!(moved["category_id"], category["id"]);
    assert_eq!(moved["price"], json!({"amount": 1200, "currency": "USD"}));
    assert_eq!(moved["sku"], "PATCH-1");
    assert_eq!(moved["name"], "Patched Lamp");
    assert_eq!(moved["tags"], json!(["lamp"]));
    let out = ok_json(patch_product(&app, &admin, &id, json!({"category_id": null})).await).await;
    assert_eq!(out["category_id"], Value::Null);
    assert_eq!(out["price"]["amount"], 1200);
}

/// Two edits of one product at once both stand: a rename racing an archive neither
/// loses the new name nor brings the product back (each write is conditional on what
/// it read, and an edit that finds the product changed is applied again to it).
#[actix_web::test]
async fn concurrent_edits_of_a_product_both_stand() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let created = create(&app, &admin, product("RACED", "Raced", 1_000)).await;
    let id = id_of(&created);
    for round in 0..20 {
        let name = format!("Raced {round}");
        let (archive_path, empty) = (format!("/api/v1/admin/products/{id}/archive"), json!({}));
        let archive = app.post_json_as(&archive_path, &admin.access_token, &empty);
        let (renamed, archived) = tokio::join!(
            patch_product(&app, &admin, &id, json!({"name": name})),
            archive
        );
        assert_eq!(renamed.status(), StatusCode::OK, "round {round}");
        assert_eq!(archived.status(), StatusCode::OK, "round {round}");
        let stored: Value = by_id(&app, Some(&admin.access_token), &id)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            (stored["name"].as_str(), stored["status"].as_str()),
            (Some(name.as_str()), Some("archived")),
            "round {round}"
        );
        let restored = app
            .post_json_as(
                &format!("/api/v1/admin/products/{id}/restore"),
                &admin.access_token,
                &json!({}),
            )
            .await;
        assert_eq!(restored.status(), StatusCode::OK);
    }
}
