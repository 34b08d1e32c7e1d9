//! The address book over REST and gRPC — create, list (paged), read, edit, delete; the
//! validation of every field; the cap; another user's address answering 404 — and
//! checkout copying the addresses it names into the order, where later edits and
//! deletions of the address book do not reach them.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;
use souk_proto::v1 as pb;
use souk_proto::v1::order_service_client::OrderServiceClient;
use souk_proto::v1::user_service_client::UserServiceClient;
use tonic::{Code, Request};

use crate::grpc_edges::channel;
use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{order, product, stock};

on_both_backends!(
    the_address_book_over_rest,
    orders_keep_copies_of_their_addresses
);

const ADDRESSES: &str = "/api/v1/users/me/addresses";

fn berlin() -> Value {
    json!({"name": " Ada Lovelace ", "line1": "Unter den Linden 1", "city": "Berlin",
           "postal_code": "10117", "country": "de", "phone": "+49 30 1234567"})
}

async fn send(
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

async fn create(app: &TestApp, user: &Session, body: &Value) -> Value {
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
async fn refused_fields(response: reqwest::Response) -> Vec<String> {
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
}

fn us_with_zip(city: &str) -> Value {
    json!({"name": "Bob", "line1": "1 Main St", "city": city, "postal_code": "60601", "country": "US"})
}

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

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[actix_web::test]
async fn the_address_book_over_grpc() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ada = app.customer("grpc-addresses").await;
    let eve = app.customer("grpc-addresses-eve").await;
    product(&app, &admin, "GADDR-1", 700, 5).await;
    let channel = channel(&app).await;
    let mut users = UserServiceClient::new(channel.clone());
    let token = ada.access_token.as_str();
    let london = pb::PostalAddress {
        name: "Ada".into(),
        line1: "10 Downing Street".into(),
        city: "London".into(),
        postal_code: Some("sw1a 2aa".into()),
        country: "gb".into(),
        ..Default::default()
    };

    let status = users
        .list_addresses(Request::new(pb::ListAddressesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let created = users
        .create_address(authorized(
            pb::CreateAddressRequest {
                address: Some(london.clone()),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    let saved = created.address.clone().unwrap();
    assert_eq!(
        (saved.country.as_str(), saved.postal_code.as_deref()),
        ("GB", Some("SW1A 2AA"))
    );
    let listed = users
        .list_addresses(authorized(pb::ListAddressesRequest::default(), token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items, vec![created.clone()]);
    assert_eq!(listed.next_cursor, "");
    let read = users
        .get_address(authorized(
            pb::GetAddressRequest {
                id: created.id.clone(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);

    let updated = users
        .update_address(authorized(
            pb::UpdateAddressRequest {
                id: created.id.clone(),
                line2: Some("Flat 1".into()),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updated.address.as_ref().unwrap().line2.as_deref(),
        Some("Flat 1")
    );
    assert_eq!(updated.address.as_ref().unwrap().city, "London");

    // Invalid fields are INVALID_ARGUMENT; empty required fields count as missing.
    let mut bad = london.clone();
    bad.country = "XX".into();
    bad.name = String::new();
    let status = users
        .create_address(authorized(
            pb::CreateAddressRequest { address: Some(bad) },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = users
        .create_address(authorized(
            pb::CreateAddressRequest { address: None },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Another user's address is NOT_FOUND for every method.
    let theirs = |id: &str| {
        authorized(
            pb::GetAddressRequest { id: id.to_owned() },
            &eve.access_token,
        )
    };
    assert_eq!(
        users
            .get_address(theirs(&created.id))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let status = users
        .update_address(authorized(
            pb::UpdateAddressRequest {
                id: created.id.clone(),
                city: Some("x".into()),
                ..Default::default()
            },
            &eve.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = users
        .delete_address(authorized(
            pb::DeleteAddressRequest {
                id: created.id.clone(),
            },
            &eve.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // CreateOrder copies the address; the copy outlives the address book entry.
    let mut orders = OrderServiceClient::new(channel);
    let placed = orders
        .create_order(authorized(
            pb::CreateOrderRequest {
                items: vec![pb::OrderItem {
                    sku: "GADDR-1".into(),
                    quantity: 1,
                }],
                shipping_address_id: created.id.clone(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(placed.shipping_address, updated.address);
    assert_eq!(placed.billing_address, updated.address);
    let status = orders
        .create_order(authorized(
            pb::CreateOrderRequest {
                items: vec![pb::OrderItem {
                    sku: "GADDR-1".into(),
                    quantity: 1,
                }],
                billing_address_id: created.id.clone(),
                ..Default::default()
            },
            &eve.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    users
        .delete_address(authorized(
            pb::DeleteAddressRequest {
                id: created.id.clone(),
            },
            token,
        ))
        .await
        .unwrap();
    let status = users
        .get_address(authorized(
            pb::GetAddressRequest {
                id: created.id.clone(),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let stored = orders
        .get_order(authorized(
            pb::GetOrderRequest {
                id: placed.id.clone(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.shipping_address, updated.address);
    let none = orders
        .create_order(authorized(
            pb::CreateOrderRequest {
                items: vec![pb::OrderItem {
                    sku: "GADDR-1".into(),
                    quantity: 1,
                }],
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((none.shipping_address, none.billing_address), (None, None));
}
