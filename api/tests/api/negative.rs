//! Bad input of every kind gets a 4xx problem+json, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn malformed_wrong_typed_and_oversize_bodies() {
    let app = spawn_app().await;
    let paths = [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/password-reset",
        "/api/v1/auth/password-reset/confirm",
    ];
    for path in paths {
        assert_problem(
            post_raw(&app, path, "application/json", b"{\"email".to_vec()).await,
            400,
            "malformed_json",
        )
        .await;
        assert_problem(
            post_raw(&app, path, "application/json", b"".to_vec()).await,
            400,
            "malformed_json",
        )
        .await;
        assert_problem(
            post_raw(&app, path, "application/json", b"[1, 2]".to_vec()).await,
            400,
            "invalid_body",
        )
        .await;
        assert_problem(
            post_raw(&app, path, "application/json", b"{}".to_vec()).await,
            400,
            "invalid_body",
        )
        .await;
        assert_problem(
            post_raw(&app, path, "text/plain", b"{}".to_vec()).await,
            415,
            "unsupported_media_type",
        )
        .await;
        let huge = format!("{{\"email\": \"{}\"}}", "a".repeat(70 * 1024)).into_bytes();
        assert_problem(
            post_raw(&app, path, "application/json", huge).await,
            413,
            "payload_too_large",
        )
        .await;
    }
    let wrong_type = app
        .post_json(
            "/api/v1/auth/register",
            &json!({"email": ["a"], "password": PASSWORD, "name": "A"}),
        )
        .await;
    let problem = assert_problem(wrong_type, 400, "invalid_body").await;
    assert_eq!(problem["errors"][0]["field"], "email");
    let unknown_field = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "a@b.co", "password": PASSWORD, "admin": true}),
        )
        .await;
    assert_problem(unknown_field, 400, "invalid_body").await;
}

#[actix_web::test]
async fn oversize_bodies_without_content_length_are_refused() {
    let app = spawn_app().await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_problem(response, 413, "payload_too_large").await;
}

#[actix_web::test]
async fn hostile_strings_are_just_data() {
    let app = spawn_app().await;
    for email in [
        "' OR '1'='1@example.com",
        "a@b.c; DROP TABLE users",
        "\u{0}@example.com",
        "%@example.com",
    ] {
        let response = app.login(email, PASSWORD).await;
        assert!(
            response.status().is_client_error(),
            "{email:?}: {}",
            response.status()
        );
    }
    let weird = app
        .register("robert'); drop table users;--@example.com", PASSWORD)
        .await;
    assert_problem(weird, 422, "validation_failed").await;
    let unicode = app
        .post_json("/api/v1/auth/register", &json!({"email": unique_email("uni"), "password": "pässwörd ✓✓", "name": "Zoë 🛒 <script>"}))
        .await;
    assert_eq!(unicode.status(), StatusCode::CREATED);
    let body: serde_json::Value = unicode.json().await.unwrap();
    assert_eq!(body["name"], "Zoë 🛒 <script>");
    // A look-alike domain is kept in its ASCII form; a look-alike local part is refused.
    let imitation = app
        .register(
            &format!("{}@ex\u{0430}mple.com", uuid::Uuid::now_v7().simple()),
            PASSWORD,
        )
        .await;
    assert_eq!(imitation.status(), StatusCode::CREATED);
    let imitation: serde_json::Value = imitation.json().await.unwrap();
    assert!(
        imitation["email"].as_str().unwrap().contains("@xn--"),
        "{imitation}"
    );
    let cyrillic = app.register("\u{0430}da@example.com", PASSWORD).await;
    let problem = assert_problem(cyrillic, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "email", "{problem}");
    // A name that shows as nothing, or as something else, is refused.
    for name in ["\u{200B}\u{200C}\u{200D}", "admin\u{202E}gnp.exe"] {
        let refused = app
            .post_json(
                "/api/v1/auth/register",
                &json!({"email": unique_email("bidi"), "password": PASSWORD, "name": name}),
            )
            .await;
        let problem = assert_problem(refused, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "name", "{problem}");
    }
}

#[actix_web::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    assert_problem(
        app.get("/api/v1/nothing-here").await,
        404,
        "route_not_found",
    )
    .await;
    let wrong_method = app
        .client
        .put(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert!(wrong_method.headers().get("allow").is_some());
    assert_problem(wrong_method, 405, "method_not_allowed").await;
    let get_login = app.get("/api/v1/auth/login").await;
    assert_problem(get_login, 405, "method_not_allowed").await;
}

/// Every endpoint that takes a JSON body refuses malformed, wrongly typed and oversize
/// bodies with the same problems, even for a caller who may use it.
#[actix_web::test]
async fn every_json_endpoint_refuses_bad_bodies() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let id = souk_db::ids::new_id();
    let endpoints = [
        (reqwest::Method::PATCH, "/api/v1/users/me".to_owned()),
        (reqwest::Method::POST, "/api/v1/auth/password".to_owned()),
        (reqwest::Method::POST, "/api/v1/admin/products".to_owned()),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/admin/products/{id}"),
        ),
        (reqwest::Method::POST, "/api/v1/admin/categories".to_owned()),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/admin/categories/{id}"),
        ),
        (
            reqwest::Method::POST,
            "/api/v1/admin/inventory/ANY-SKU/adjust".to_owned(),
        ),
        (reqwest::Method::POST, "/api/v1/orders".to_owned()),
        (reqwest::Method::POST, format!("/api/v1/orders/{id}/pay")),
        (reqwest::Method::POST, format!("/api/v1/orders/{id}/cancel")),
        (
            reqwest::Method::POST,
            format!("/api/v1/admin/orders/{id}/cancel"),
        ),
    ];
    let huge = format!("{{\"name\": \"{}\"}}", "a".repeat(70 * 1024));
    for (method, path) in &endpoints {
        let send = |body: String, content_type: &'static str| {
            app.client
                .request(method.clone(), app.url(path))
                .bearer_auth(&admin.access_token)
                .header("content-type", content_type)
                .body(body)
                .send()
        };
        let malformed = send("{\"unterminated".into(), "application/json")
            .await
            .unwrap();
        assert_problem(malformed, 400, "malformed_json").await;
        let wrong_shape = send("[1, 2, 3]".into(), "application/json").await.unwrap();
        assert_problem(wrong_shape, 400, "invalid_body").await;
        let oversize = send(huge.clone(), "application/json").await.unwrap();
        assert_problem(oversize, 413, "payload_too_large").await;
        let not_json = send("name=x".into(), "application/x-www-form-urlencoded")
            .await
            .unwrap();
        assert_problem(not_json, 415, "unsupported_media_type").await;
        let anonymous = app
            .client
            .request(method.clone(), app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_problem(anonymous, 401, "missing_token").await;
    }
}

/// JSON Schema counts `3.0` as an integer, and so does the document: the server agrees,
/// and still refuses `3.5` where an integer is due.
#[actix_web::test]
async fn whole_numbers_written_with_a_fraction_are_integers() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    crate::orders::product(&app, &admin, "WHOLE-1", 500, 0).await;
    let adjust = |delta: serde_json::Value| {
        let body = json!({"delta": delta, "reason": "delivery"});
        let (app, token) = (&app, admin.access_token.clone());
        async move {
            app.post_json_as("/api/v1/admin/inventory/WHOLE-1/adjust", &token, &body)
                .await
        }
    };
    let adjusted = adjust(json!(3.0)).await;
    assert_eq!(adjusted.status(), StatusCode::OK);
    let adjusted: serde_json::Value = adjusted.json().await.unwrap();
    assert_eq!(adjusted["on_hand"], 3, "{adjusted}");
    let refused = assert_problem(adjust(json!(3.5)).await, 400, "invalid_body").await;
    assert_eq!(refused["errors"][0]["field"], "delta", "{refused}");
}
