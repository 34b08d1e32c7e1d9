//! The address book over REST and gRPC — create, list (paged), read, edit, delete; the
//! validation of every field; the cap; another user's address answering 404 — and
//! checkout copying the addresses it names into the order, where later edits and
//! deletions of the address book do not reach them (`checkout`, `grpc`).

mod checkout;
mod grpc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(the_address_book_over_rest);

const ADDRESSES: &str = "/api/v1/users/me/addresses";

pub(crate) fn berlin() -> Value {
    json!({"name": " Ada Lovelace ", "line1": "Unter den Linden 1", "city": "Berlin",
           "postal_code": "10117", "country": "de", "phone": "+49 30 1234567"})
}

pub(crate) async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

pub(crate) async fn create(app: &TestApp, user: &Session, body: &Value) -> Value {
    let response = app.post_json_as(ADDRESSES, &user.access_token, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("{ADDRESSES}/{}", created["id"].as_str().unwrap())
    );
    created
}

/// The fields a validation problem names.
pub(crate) async fn refused_fields(response: reqwest::Response) -> Vec<String> {
    let problem = assert_problem(response, 422, "validation_failed").await;
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}
async fn the_address_book_over_rest(backend: TestBackend) {
    let app = spawn_app_with(backend, |config| config.users.max_addresses = 4).await;
    let ada = app.customer("addresses").await;
    let eve = app.customer("addresses-eve").await;
    let token = ada.access_token.as_str();

    assert_problem(app.get(ADDRESSES).await, 401, "missing_token").await;
    assert_problem(
        app.post_json(ADDRESSES, &berlin()).await,
        401,
        "missing_token",
    )
    .await;
    assert_problem(
        send(&app, Method::GET, ADDRESSES, "not-a-token", None).await,
        401,
        "invalid_token",
    )
    .await;

    // Created trimmed and normalised; read back as created.
    let home = create(&app, &ada, &berlin()).await;
    let id = home["id"].as_str().unwrap().to_owned();
    assert_eq!(home["name"], "Ada Lovelace");
    assert_eq!(home["country"], "DE");
    assert_eq!(home["postal_code"], "10117");
    assert_eq!(home["line2"], Value::Null);
    let path = format!("{ADDRESSES}/{id}");
    let read: Value = app.get_as(&path, token).await.json().await.unwrap();
    assert_eq!(read, home);
    let listed: Value = app.get_as(ADDRESSES, token).await.json().await.unwrap();
    assert_eq!(listed, json!({"items": [home], "next_cursor": null}));

    // Edits change only what is given; an empty string clears an optional field.
    let edited = send(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"city": "Potsdam", "line2": "Hinterhaus", "phone": ""})),
    )
    .await;
    assert_eq!(edited.status(), StatusCode::OK);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(
        (&edited["city"], &edited["line2"], &edited["phone"]),
        (&json!("Potsdam"), &json!("Hinterhaus"), &Value::Null)
    );
    assert_eq!(edited["postal_code"], "10117");
    // The result is validated whole: moving to the US without a postal code is refused.
    let to_us = send(
        &app,
        Method::PATCH,
        &path,
        token,
        Some(&json!({"country": "US", "postal_code": ""})),
    )
    .await;
    assert_eq!(refused_fields(to_us).await, ["postal_code"]);

    // Another user's address does not exist for them: 404 on every method, never 403.
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"city": "Stolen"}));
        let response = send(
            &app,
            method.clone(),
            &path,
            &eve.access_token,
            body.as_ref(),
        )
        .await;
        assert_problem(response, 404, "not_found").await;
    }
    let eves: Value = app
        .get_as(ADDRESSES, &eve.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(eves["items"], json!([]));
    let still: Value = app.get_as(&path, token).await.json().await.unwrap();
    assert_eq!(still["city"], "Potsdam");

    // Bodies: malformed, unknown fields, missing and invalid fields.
    let malformed = app
        .client
        .post(app.url(ADDRESSES))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{\"name\":")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "malformed_json").await;
    let mut unknown = berlin();
    unknown["is_default"] = json!(true);
    assert_problem(
        app.post_json_as(ADDRESSES, token, &unknown).await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        send(
            &app,
            Method::PATCH,
            &path,
            token,
            Some(&json!({"user_id": eve.id})),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_eq!(
        refused_fields(app.post_json_as(ADDRESSES, token, &json!({})).await).await,
        ["name", "line1", "city", "country"]
    );
    let mut blank = berlin();
    blank["city"] = json!("   ");
    blank["name"] = Value::Null;
    assert_eq!(
        refused_fields(app.post_json_as(ADDRESSES, token, &blank).await).await,
        ["name", "city"]
    );
    for country in ["XX", "DEU", "Germany", ""] {
        let mut bad = berlin();
        bad["country"] = json!(country);
        assert_eq!(
            refused_fields(app.post_json_as(ADDRESSES, token, &bad).await).await,
            ["country"],
            "{country}"
        );
    }
    let us = json!({"name": "Bob", "line1": "1 Main St", "city": "Springfield", "region": "IL", "country": "US"});
    assert_eq!(
        refused_fields(app.post_json_as(ADDRESSES, token, &us).await).await,
        ["postal_code"]
    );
    let mut long = berlin();
    long["line1"] = json!("x".repeat(201));
    long["phone"] = json!("call me");
    long["postal_code"] = json!("<b>");
    assert_eq!(
        refused_fields(app.post_json_as(ADDRESSES, token, &long).await).await,
        ["line1", "postal_code", "phone"]
    );
    // Hong Kong has no postal codes: none is needed.
    create(
        &app,
        &ada,
        &json!({"name": "Ada", "line1": "1 Queen's Road", "city": "Hong Kong", "country": "hk"}),
    )
    .await;

    // Ids that name nothing.
    for bad in ["nope", "00000000-0000-7000-8000-000000000000", "%20"] {
        assert_problem(
            app.get_as(&format!("{ADDRESSES}/{bad}"), token).await,
            404,
            "not_found",
        )
        .await;
    }

    // Pages, oldest first; then the cap.
    create(&app, &ada, &us_with_zip("Chicago")).await;
    create(&app, &ada, &us_with_zip("Boston")).await;
    let first: Value = app
        .get_as(&format!("{ADDRESSES}?limit=3"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get_as(&format!("{ADDRESSES}?limit=3&cursor={cursor}"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["city"], "Boston");
    assert_eq!(second["next_cursor"], Value::Null);
    assert_problem(
        app.get_as(&format!("{ADDRESSES}?cursor=forged"), token)
            .await,
        400,
        "invalid_cursor",
    )
    .await;
    assert_problem(
        app.get_as(&format!("{ADDRESSES}?limit=0"), token).await,
        400,
        "invalid_query",
    )
    .await;
    let full = assert_problem(
        app.post_json_as(ADDRESSES, token, &us_with_zip("Denver"))
            .await,
        409,
        "address_limit",
    )
    .await;
    assert!(full["detail"].as_str().unwrap().contains('4'), "{full}");
    // Another user's book is their own.
    create(&app, &eve, &us_with_zip("Denver")).await;

    // Deleted: gone for reads, edits and a second delete; room for another.
    assert_eq!(
        send(&app, Method::DELETE, &path, token, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(app.get_as(&path, token).await, 404, "not_found").await;
    assert_problem(
        send(
            &app,
            Method::PATCH,
            &path,
            token,
            Some(&json!({"city": "x"})),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        send(&app, Method::DELETE, &path, token, None).await,
        404,
        "not_found",
    )
    .await;
    create(&app, &ada, &us_with_zip("Denver")).await;

    // Deleting the account deletes its address book.
    let deleted = send(
        &app,
        Method::DELETE,
        "/api/v1/users/me",
        &eve.access_token,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let left = souk_db::addresses::list(app.database.db.pool(), &eve.id, None, 10)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

pub(crate) fn us_with_zip(city: &str) -> Value {
    json!({"name": "Bob", "line1": "1 Main St", "city": city, "postal_code": "60601", "country": "US"})
}
