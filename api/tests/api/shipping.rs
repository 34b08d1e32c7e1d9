//! Shipping and tax over REST: admins manage shipping methods and tax rates (every
//! field validated, each refusal named), shoppers list the methods serving a country,
//! and checkout prices shipping and tax into the order's totals (`checkout`); the same
//! over gRPC (`grpc`).

mod checkout;
mod grpc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::addresses::{refused_fields, send};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(admins_manage_shipping_methods, admins_manage_tax_rates);

pub(crate) const METHODS: &str = "/api/v1/admin/shipping-methods";
pub(crate) const RATES: &str = "/api/v1/admin/tax-rates";

pub(crate) fn standard() -> Value {
    json!({"code": "Standard", "name": " Standard post ", "countries": ["de", "AT", "DE"],
           "rate": {"amount": 490, "currency": "eur"}, "free_above": {"amount": 5000, "currency": "EUR"}})
}

pub(crate) async fn create_method(app: &TestApp, admin: &Session, body: &Value) -> Value {
    let response = app.post_json_as(METHODS, &admin.access_token, body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("{METHODS}/{}", created["code"].as_str().unwrap())
    );
    created
}

pub(crate) async fn put_rate(app: &TestApp, admin: &Session, country: &str, rate_bps: i64) {
    let response = send(
        app,
        Method::PUT,
        &format!("{RATES}/{country}"),
        &admin.access_token,
        Some(&json!({"rate_bps": rate_bps})),
    )
    .await;
    assert!(response.status().is_success(), "{}", response.status());
}

/// A raw body, for what `json!` cannot send.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: &str,
) -> reqwest::Response {
    app.client
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn admins_manage_shipping_methods(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let ada = app.customer("shipping-methods").await;
    let token = admin.access_token.as_str();

    // Only admins manage methods; the public list needs no token.
    assert_problem(app.get(METHODS).await, 401, "missing_token").await;
    assert_problem(
        send(&app, Method::GET, METHODS, &ada.access_token, None).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post_json_as(METHODS, &ada.access_token, &standard())
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        send(
            &app,
            Method::DELETE,
            &format!("{METHODS}/standard"),
            &ada.access_token,
            None,
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    assert_problem(
        send(
            &app,
            Method::PATCH,
            &format!("{METHODS}/standard"),
            &ada.access_token,
            Some(&json!({"active": false})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // Created normalised: code lower case, name trimmed, countries upper case, sorted, once.
    let created = create_method(&app, &admin, &standard()).await;
    assert_eq!(created["code"], "standard");
    assert_eq!(created["name"], "Standard post");
    assert_eq!(created["countries"], json!(["AT", "DE"]));
    assert_eq!(created["rate"], json!({"amount": 490, "currency": "EUR"}));
    assert_eq!(
        created["free_above"],
        json!({"amount": 5000, "currency": "EUR"})
    );
    assert_eq!(created["active"], true);
    let worldwide = create_method(
        &app,
        &admin,
        &json!({"code": "world", "name": "Worldwide", "rate": {"amount": 1500, "currency": "EUR"}, "active": false}),
    )
    .await;
    assert_eq!(worldwide["countries"], json!([]));
    assert_eq!(worldwide["free_above"], Value::Null);
    assert_problem(
        app.post_json_as(METHODS, token, &standard()).await,
        409,
        "shipping_method_taken",
    )
    .await;

    // Every invalid field named at once.
    let mut fields = refused_fields(
        app.post_json_as(
            METHODS,
            token,
            &json!({"code": "no spaces", "name": " ", "countries": ["DE", "XX", "deu"],
                    "rate": {"amount": -1, "currency": "EURO"}, "free_above": {"amount": 5, "currency": "USD"}}),
        )
        .await,
    )
    .await;
    fields.sort();
    assert_eq!(
        fields,
        [
            "code",
            "countries[1]",
            "countries[2]",
            "name",
            "rate.amount",
            "rate.currency"
        ]
    );
    assert_eq!(
        refused_fields(
            app.post_json_as(
                METHODS,
                token,
                &json!({"code": "usd", "name": "Dollars", "rate": {"amount": 5, "currency": "EUR"}, "free_above": {"amount": 5, "currency": "USD"}}),
            )
            .await
        )
        .await,
        ["free_above.currency"]
    );
    // Malformed JSON, an unknown field, a missing field: 400.
    assert_problem(
        send_raw(&app, Method::POST, METHODS, token, "{\"code\": ").await,
        400,
        "malformed_json",
    )
    .await;
    let mut unknown = standard();
    unknown["colour"] = json!("red");
    assert_problem(
        app.post_json_as(METHODS, token, &unknown).await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        app.post_json_as(METHODS, token, &json!({"code": "x", "name": "X"}))
            .await,
        400,
        "invalid_body",
    )
    .await;

    // The admin list holds both, by code; the public list only the active ones, and for
    // a country only those serving it.
    let listed: Value = app.get_as(METHODS, token).await.json().await.unwrap();
    let codes: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|method| method["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["standard", "world"]);
    // The list shape of every list, which comes whole here.
    assert_eq!(listed["next_cursor"], Value::Null);
    assert!(listed.as_object().unwrap().contains_key("next_cursor"));
    let public = |query: &'static str| {
        let app = &app;
        async move {
            let response = app.get(&format!("/api/v1/shipping-methods{query}")).await;
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|method| method["code"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(public("").await, ["standard"]);
    assert_eq!(public("?country=de").await, ["standard"]);
    assert!(public("?country=FR").await.is_empty());

    // PATCH: only what is given; `null` clears the threshold; the code cannot change.
    let patched = send(
        &app,
        Method::PATCH,
        &format!("{METHODS}/world"),
        token,
        Some(&json!({"active": true, "free_above": {"amount": 20000, "currency": "EUR"}})),
    )
    .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        (
            &patched["active"],
            &patched["free_above"]["amount"],
            &patched["name"]
        ),
        (&json!(true), &json!(20000), &json!("Worldwide"))
    );
    assert_eq!(public("?country=FR").await, ["world"]);
    assert_eq!(public("?country=DE").await, ["standard", "world"]);
    let cleared: Value = send(
        &app,
        Method::PATCH,
        &format!("{METHODS}/WORLD"),
        token,
        Some(&json!({"free_above": null, "countries": ["fr"]})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        (&cleared["free_above"], &cleared["countries"]),
        (&Value::Null, &json!(["FR"]))
    );
    // A new rate currency leaves the old threshold meaningless: it must come too.
    assert_eq!(
        refused_fields(
            send(
                &app,
                Method::PATCH,
                &format!("{METHODS}/standard"),
                token,
                Some(&json!({"rate": {"amount": 500, "currency": "USD"}})),
            )
            .await
        )
        .await,
        ["free_above"]
    );
    for (body, field) in [
        (json!({"countries": ["ZZ"]}), "countries[0]"),
        (json!({"name": ""}), "name"),
        (
            json!({"rate": {"amount": 1_000_000_000_001_i64, "currency": "EUR"}}),
            "rate.amount",
        ),
    ] {
        assert_eq!(
            refused_fields(
                send(
                    &app,
                    Method::PATCH,
                    &format!("{METHODS}/standard"),
                    token,
                    Some(&body)
                )
                .await
            )
            .await,
            [field]
        );
    }
    assert_problem(
        send(
            &app,
            Method::PATCH,
            &format!("{METHODS}/standard"),
            token,
            Some(&json!({"code": "other"})),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        send_raw(
            &app,
            Method::PATCH,
            &format!("{METHODS}/standard"),
            token,
            "[1,",
        )
        .await,
        400,
        "malformed_json",
    )
    .await;
    assert_problem(
        send(
            &app,
            Method::PATCH,
            &format!("{METHODS}/nothing"),
            token,
            Some(&json!({"active": false})),
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        send(
            &app,
            Method::PATCH,
            &format!("{METHODS}/not%20a%20code"),
            token,
            Some(&json!({})),
        )
        .await,
        404,
        "not_found",
    )
    .await;

    // The public list refuses a country that is not one.
    for bad in ["XX", "deu", "1"] {
        assert_eq!(
            refused_fields(
                app.get(&format!("/api/v1/shipping-methods?country={bad}"))
                    .await
            )
            .await,
            ["country"]
        );
    }
    assert_problem(
        app.get("/api/v1/shipping-methods?colour=red").await,
        400,
        "invalid_query",
    )
    .await;

    // Delete: 204, then 404.
    let deleted = send(
        &app,
        Method::DELETE,
        &format!("{METHODS}/world"),
        token,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_problem(
        send(
            &app,
            Method::DELETE,
            &format!("{METHODS}/world"),
            token,
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(public("?country=FR").await, Vec::<String>::new());
}

async fn admins_manage_tax_rates(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let ada = app.customer("tax-rates").await;
    let token = admin.access_token.as_str();

    assert_problem(app.get(RATES).await, 401, "missing_token").await;
    assert_problem(
        send(&app, Method::GET, RATES, &ada.access_token, None).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        send(
            &app,
            Method::PUT,
            &format!("{RATES}/DE"),
            &ada.access_token,
            Some(&json!({"rate_bps": 1900})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;

    // PUT creates (201), then changes (200); countries in either case, stored upper.
    let created = send(
        &app,
        Method::PUT,
        &format!("{RATES}/de"),
        token,
        Some(&json!({"rate_bps": 1900})),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(
        (&created["country"], &created["rate_bps"]),
        (&json!("DE"), &json!(1900))
    );
    let changed = send(
        &app,
        Method::PUT,
        &format!("{RATES}/DE"),
        token,
        Some(&json!({"rate_bps": 700})),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    put_rate(&app, &admin, "AT", 2000).await;
    put_rate(&app, &admin, "FR", 0).await;
    put_rate(&app, &admin, "HU", 10_000).await;
    let listed: Value = app.get_as(RATES, token).await.json().await.unwrap();
    assert!(listed.as_object().unwrap().contains_key("next_cursor"));
    let rates: Vec<(String, i64)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rate| {
            (
                rate["country"].as_str().unwrap().to_owned(),
                rate["rate_bps"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rates,
        [
            ("AT".to_owned(), 2000),
            ("DE".to_owned(), 700),
            ("FR".to_owned(), 0),
            ("HU".to_owned(), 10_000)
        ]
    );

    // Refusals: a rate out of range or a country that is not one (422 naming it),
    // malformed or unknown bodies (400), an unknown country to delete (404).
    for (country, rate, fields) in [
        ("DE", -1, vec!["rate_bps"]),
        ("DE", 10_001, vec!["rate_bps"]),
        ("XX", 100, vec!["country"]),
        ("DEU", 20_000, vec!["country", "rate_bps"]),
    ] {
        assert_eq!(
            refused_fields(
                send(
                    &app,
                    Method::PUT,
                    &format!("{RATES}/{country}"),
                    token,
                    Some(&json!({"rate_bps": rate}))
                )
                .await
            )
            .await,
            fields
        );
    }
    assert_problem(
        send_raw(
            &app,
            Method::PUT,
            &format!("{RATES}/DE"),
            token,
            "{\"rate_bps\": 19",
        )
        .await,
        400,
        "malformed_json",
    )
    .await;
    for body in [
        json!({"rate_bps": 1900, "reduced": true}),
        json!({}),
        json!({"rate_bps": 19.5}),
        json!({"rate_bps": "1900"}),
    ] {
        assert_problem(
            send(
                &app,
                Method::PUT,
                &format!("{RATES}/DE"),
                token,
                Some(&body),
            )
            .await,
            400,
            "invalid_body",
        )
        .await;
    }
    assert_eq!(
        refused_fields(send(&app, Method::DELETE, &format!("{RATES}/ZZ"), token, None).await).await,
        ["country"]
    );
    let deleted = send(&app, Method::DELETE, &format!("{RATES}/at"), token, None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_problem(
        send(&app, Method::DELETE, &format!("{RATES}/AT"), token, None).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        send(
            &app,
            Method::DELETE,
            &format!("{RATES}/AT"),
            &ada.access_token,
            None,
        )
        .await,
        403,
        "forbidden",
    )
    .await;
}
