use reqwest::StatusCode;
use serde_json::Value;
use souk_db::testing::TestBackend;

use crate::helpers::*;

#[actix_web::test]
async fn health_and_readiness_with_every_dependency() {
    let app = spawn_app_with(TestBackend::MySql, |config| {
        config.redis.url = Some(redis_url());
        config.nats.url = Some(nats_url());
    })
    .await;
    let health: Value = app.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    for dependency in ["database", "redis", "nats", "search"] {
        assert_eq!(ready["checks"][dependency], "ok", "{ready}");
    }
}

#[actix_web::test]
async fn readiness_names_the_dependency_that_is_down() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.redis.url = Some(format!("redis://127.0.0.1:{}", dead_port()));
        config.nats.url = Some(format!("nats://127.0.0.1:{}", dead_port()));
    })
    .await;
    assert_eq!(
        app.get("/healthz").await.status(),
        StatusCode::OK,
        "alive even when dependencies are not"
    );
    let started = std::time::Instant::now();
    let ready = app.get("/readyz").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "readiness answers within its deadline"
    );
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["checks"]["database"], "ok");
    assert!(
        ready["checks"]["redis"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{ready}"
    );
    assert!(
        ready["checks"]["nats"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{ready}"
    );
}

/// `/metrics` is served on the operations address only; the probes answer on both.
#[actix_web::test]
async fn metrics_are_on_the_operations_address_not_the_public_port() {
    let app = spawn_app().await;
    assert_problem(app.get("/metrics").await, 404, "route_not_found").await;
    let scrape = app.ops_get("/metrics").await;
    assert_eq!(scrape.status(), StatusCode::OK);
    assert!(scrape.text().await.unwrap().contains("souk_"));
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::OK,
            "public {path}"
        );
        assert_eq!(
            app.ops_get(path).await.status(),
            StatusCode::OK,
            "ops {path}"
        );
    }
    assert_eq!(
        app.ops_get("/api/v1/products").await.status(),
        StatusCode::NOT_FOUND,
        "the operations address serves nothing of the API"
    );
    assert_ne!(app.ops_address, app.address);
}

/// A node left at the defaults shows its metrics on loopback only.
#[test]
fn the_default_operations_address_is_loopback() {
    let config = souk_api::config::Config::default();
    assert!(config.http.ops_addr.ip().is_loopback());
    assert_ne!(config.http.ops_addr.port(), config.http.addr.port());
}

#[actix_web::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    let user = app.customer("metrics").await;
    app.get_as("/api/v1/users/me", &user.access_token).await;
    app.login(&user.email, "wrong password!").await;
    let text = app.metrics().await;
    let has = |needle: &str| {
        text.lines().any(|line| {
            line.starts_with("souk_") && needle.split('|').all(|part| line.contains(part))
        })
    };
    assert!(
        has("souk_http_requests_total|route=\"/api/v1/users/me\"|status=\"200\"|method=\"GET\""),
        "{text}"
    );
    assert!(
        has("souk_http_requests_total|route=\"/api/v1/auth/login\"|status=\"401\""),
        "{text}"
    );
    assert!(
        has("souk_http_request_duration_seconds_bucket|route=\"/api/v1/auth/login\"|le=\"0.005\""),
        "histogram buckets: {text}"
    );
    assert!(has("souk_db_pool_connections|state=\"max\""), "{text}");
}

/// No label takes raw client input: made-up methods and unknown paths fall into one
/// bounded series each, however many a client invents.
#[actix_web::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    for index in 0..20 {
        let method = reqwest::Method::from_bytes(format!("PROBE{index}XYZ").as_bytes()).unwrap();
        let _ = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
        let _ = app.get(&format!("/made/up/{index}")).await;
    }
    let text = app.metrics().await;
    assert!(
        !text.contains("PROBE"),
        "a client's method became a label: {text}"
    );
    assert!(
        !text.contains("/made/up"),
        "a client's path became a label: {text}"
    );
    // Only this test's route counts: other tests of the same process (the API fuzzer)
    // send unknown methods to other routes of the one metrics recorder.
    let series = text
        .lines()
        .filter(|line| {
            line.starts_with("souk_http_requests_total{")
                && line.contains("method=\"other\"")
                && line.contains("route=\"/healthz\"")
        })
        .count();
    assert_eq!(
        series, 1,
        "one series per route for every unknown method: {text}"
    );
}

#[actix_web::test]
async fn request_ids_are_echoed_and_sanitised() {
    let app = spawn_app().await;
    let generated = app.get("/healthz").await;
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(souk_db::ids::is_well_formed(&id));
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-abc.123");
    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "evil\tinjected value")
        .send()
        .await
        .unwrap();
    assert_ne!(hostile.headers()["x-request-id"], "evil\tinjected value");
    let problem = app.get("/api/v1/users/me").await;
    assert!(
        problem.headers().get("x-request-id").is_some(),
        "errors carry the id too"
    );
}

/// Every route the server registers is documented, and the docs page needs no network.
#[actix_web::test]
async fn openapi_documents_every_route_and_the_docs_page_works_offline() {
    let app = spawn_app().await;
    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let expected = [
        ("/healthz", "get"),
        ("/api/v1/admin/system/tree", "get"),
        ("/api/v1/admin/cluster", "get"),
        ("/api/v1/admin/search", "get"),
        ("/api/v1/admin/search/reindex", "post"),
        ("/readyz", "get"),
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/password", "post"),
        ("/api/v1/auth/password-reset", "post"),
        ("/api/v1/auth/password-reset/confirm", "post"),
        ("/api/v1/auth/verify-email", "get"),
        ("/api/v1/auth/verify-email/resend", "post"),
        ("/api/v1/auth/confirm-email-change", "post"),
        ("/api/v1/admin/emails", "get"),
        ("/api/v1/admin/emails/dead-letters", "get"),
        ("/api/v1/admin/emails/dead-letters/{id}/replay", "post"),
        ("/api/v1/users/me", "get"),
        ("/api/v1/users/me", "patch"),
        ("/api/v1/users/me", "delete"),
        ("/api/v1/users/me/addresses", "get"),
        ("/api/v1/users/me/addresses", "post"),
        ("/api/v1/users/me/addresses/{id}", "get"),
        ("/api/v1/users/me/addresses/{id}", "patch"),
        ("/api/v1/users/me/addresses/{id}", "delete"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/users/{id}", "get"),
        ("/api/v1/admin/users/{id}/disable", "post"),
        ("/api/v1/admin/users/{id}/enable", "post"),
        ("/api/v1/products", "get"),
        ("/api/v1/products/{id}", "get"),
        ("/api/v1/products/sku/{sku}", "get"),
        ("/api/v1/categories", "get"),
        ("/api/v1/admin/products", "post"),
        ("/api/v1/admin/products/{id}", "patch"),
        ("/api/v1/admin/products/{id}/archive", "post"),
        ("/api/v1/admin/products/{id}/restore", "post"),
        ("/api/v1/admin/products/import", "post"),
        ("/api/v1/admin/categories", "post"),
        ("/api/v1/admin/categories/{id}", "patch"),
        ("/api/v1/admin/categories/{id}", "delete"),
        ("/api/v1/admin/inventory", "get"),
        ("/api/v1/admin/inventory/{sku}", "get"),
        ("/api/v1/admin/inventory/{sku}/adjust", "post"),
        ("/api/v1/admin/inventory/{sku}/movements", "get"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/pay", "post"),
        ("/api/v1/orders/{id}/cancel", "post"),
        ("/api/v1/admin/orders", "get"),
        ("/api/v1/admin/orders/{id}", "get"),
        ("/api/v1/admin/orders/{id}/ship", "post"),
        ("/api/v1/admin/orders/{id}/deliver", "post"),
        ("/api/v1/admin/orders/{id}/cancel", "post"),
        ("/api/v1/payments/webhook", "post"),
        ("/api/v1/orders/{id}/returns", "post"),
        ("/api/v1/admin/returns", "get"),
        (
            "/api/v1/admin/orders/{id}/returns/{return_id}/approve",
            "post",
        ),
        (
            "/api/v1/admin/orders/{id}/returns/{return_id}/reject",
            "post",
        ),
        (
            "/api/v1/admin/orders/{id}/returns/{return_id}/receive",
            "post",
        ),
        (
            "/api/v1/admin/orders/{id}/returns/{return_id}/refund",
            "post",
        ),
        ("/api/v1/carts/guest", "post"),
        ("/api/v1/cart", "get"),
        ("/api/v1/cart", "delete"),
        ("/api/v1/cart/items/{sku}", "put"),
        ("/api/v1/cart/items/{sku}", "delete"),
        ("/api/v1/cart/merge", "post"),
        ("/api/v1/cart/checkout", "post"),
        ("/api/v1/shipping-methods", "get"),
        ("/api/v1/admin/shipping-methods", "get"),
        ("/api/v1/admin/shipping-methods", "post"),
        ("/api/v1/admin/shipping-methods/{code}", "patch"),
        ("/api/v1/admin/shipping-methods/{code}", "delete"),
        ("/api/v1/admin/tax-rates", "get"),
        ("/api/v1/admin/tax-rates/{country}", "put"),
        ("/api/v1/admin/tax-rates/{country}", "delete"),
    ];
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((path.clone(), method.clone()));
        }
    }
    for (path, method) in expected {
        assert!(
            documented.contains(&(path.to_owned(), method.to_owned())),
            "{method} {path} is not documented"
        );
        // And the route really exists: whatever it answers, it is not the router's
        // "no such endpoint" or "wrong method".
        let response = app
            .client
            .request(
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                app.url(&path.replace("{id}", "x").replace("{sku}", "x")),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            !["route_not_found", "method_not_allowed"]
                .contains(&body["code"].as_str().unwrap_or("")),
            "{method} {path}: {status} {body}"
        );
    }
    assert_eq!(
        documented.len(),
        expected.len(),
        "documented routes: {documented:?}"
    );
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());

    let page = app.get("/api/v1/docs").await;
    assert_eq!(page.status(), StatusCode::OK);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(
        header("content-security-policy").contains("frame-ancestors 'none'"),
        "the docs page cannot be framed"
    );
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-content-type-options"), "nosniff");
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/v1/openapi.json"));
    assert!(
        html.contains("id=\"error-email_taken\""),
        "the error table is on the page"
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external resources"
    );
}

/// Every response, errors and JSON alike, forbids content sniffing.
#[actix_web::test]
async fn every_response_forbids_content_sniffing() {
    let app = spawn_app().await;
    for path in [
        "/healthz",
        "/api/v1/openapi.json",
        "/api/v1/users/me",
        "/no/such/route",
    ] {
        let response = app.get(path).await;
        assert_eq!(
            response
                .headers()
                .get("x-content-type-options")
                .map(|value| value.to_str().unwrap()),
            Some("nosniff"),
            "{path}"
        );
    }
}
