//! schemathesis over every operation of the served document, against a real node, in
//! two runs: the shoppers' operations with a customer's token, then the admin
//! operations with an admin's (so no admin operation disables the customer midway).
//! Path parameters of the operations that act on one resource name resources that
//! exist, so those operations reach their rules and not only a 404; the one operation
//! that deletes its caller's account gets a throwaway account's token. A run fails on
//! any 5xx and on any response whose status, content type, headers or body the
//! document does not allow.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::openapi::checker;

/// Generated cases per operation and phase: both runs take about a minute on two cores.
const MAX_EXAMPLES: &str = "12";

/// What the runs check (schemathesis' names).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance";

const SKU: &str = "SCHEMATHESIS-1";
const SHIPPING_METHOD: &str = "schemathesis";

/// What exists before the runs: ids the operations on one resource are pointed at.
struct Fixtures {
    shopper: Session,
    admin: Session,
    doomed: Session,
    bystander: Session,
    category_id: String,
    product_id: String,
    shopper_order: String,
    bystander_order: String,
    shopper_address: String,
}

async fn created_id(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn order(app: &TestApp, session: &Session) -> String {
    let body = json!({"items": [{"sku": SKU, "quantity": 1}]});
    created_id(
        app.post_json_as("/api/v1/orders", &session.access_token, &body)
            .await,
    )
    .await
}

async fn fixtures(app: &TestApp) -> Fixtures {
    let admin = app.admin().await;
    let token = &admin.access_token;
    let category = json!({"name": "Schemathesis"});
    let category_id = created_id(
        app.post_json_as("/api/v1/admin/categories", token, &category)
            .await,
    )
    .await;
    let product = json!({
        "sku": SKU, "name": "Fuzzed", "price": {"amount": 1250, "currency": "EUR"},
        "category_id": category_id, "status": "active",
    });
    let product_id = created_id(
        app.post_json_as("/api/v1/admin/products", token, &product)
            .await,
    )
    .await;
    let stock = json!({"delta": 10_000, "reason": "schemathesis"});
    let adjusted = app
        .post_json_as(
            &format!("/api/v1/admin/inventory/{SKU}/adjust"),
            token,
            &stock,
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);
    let method = json!({"code": SHIPPING_METHOD, "name": "Fuzzed post", "rate": {"amount": 490, "currency": "EUR"}});
    let created = app
        .post_json_as("/api/v1/admin/shipping-methods", token, &method)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let shopper = app.customer("schemathesis").await;
    let bystander = app.customer("schemathesis-bystander").await;
    let address = json!({"name": "Fuzz", "line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"});
    let shopper_address = created_id(
        app.post_json_as(
            "/api/v1/users/me/addresses",
            &shopper.access_token,
            &address,
        )
        .await,
    )
    .await;
    Fixtures {
        shopper_address,
        shopper_order: order(app, &shopper).await,
        bystander_order: order(app, &bystander).await,
        doomed: app.customer("schemathesis-doomed").await,
        shopper,
        admin,
        bystander,
        category_id,
        product_id,
    }
}

/// One `[[operations]]` table: the operations whose path matches `regex` get `settings`.
fn operations(regex: &str, settings: &str) -> String {
    format!("\n[[operations]]\ninclude-path-regex = '{regex}'\n{settings}\n")
}

fn bearer(token: &str) -> String {
    format!("headers = {{ Authorization = \"Bearer {token}\" }}")
}

fn path_parameter(name: &str, value: &str) -> String {
    format!("parameters = {{ \"path.{name}\" = \"{value}\" }}")
}

/// A dictionary of `values` named `name`, which a body field can draw from.
fn dictionary(name: &str, values: &[&str]) -> String {
    format!("\n[dictionaries.{name}]\nvalues = {values:?}\n")
}

/// Cases put a value from `dictionary` at `body_path` (`items[*].sku`) with
/// `probability`: a field that must name an existing resource then reaches the rules
/// behind it.
fn body_from(body_path: &str, dictionary: &str, probability: f64) -> String {
    format!(
        "parameters = {{ \"body.{body_path}\" = {{ dictionary = \"{dictionary}\", probability = {probability:?} }} }}"
    )
}

/// The shoppers' run: every operation outside `/api/v1/admin/`.
fn shopper_config(fixtures: &Fixtures) -> String {
    let mut config = bearer(&fixtures.shopper.access_token);
    config.push('\n');
    config += &dictionary("skus", &[SKU]);
    config += &operations(
        "^/api/v1/orders$",
        &format!(
            "include-method = 'POST'\n{}",
            body_from("items[*].sku", "skus", 1.0)
        ),
    );
    config += &operations(
        "^/api/v1/users/me$",
        &format!(
            "include-method = 'DELETE'\n{}",
            bearer(&fixtures.doomed.access_token)
        ),
    );
    config += &operations(
        "^/api/v1/orders/\\{id\\}",
        &path_parameter("id", &fixtures.shopper_order),
    );
    config += &operations(
        "^/api/v1/users/me/addresses/\\{id\\}$",
        &path_parameter("id", &fixtures.shopper_address),
    );
    config += &operations(
        "^/api/v1/products/\\{id\\}$",
        &path_parameter("id", &fixtures.product_id),
    );
    config += &operations("^/api/v1/products/sku/", &path_parameter("sku", SKU));
    config += &operations("^/api/v1/cart/items/", &path_parameter("sku", SKU));
    config
}

/// The admins' run: every operation under `/api/v1/admin/`.
fn admin_config(fixtures: &Fixtures) -> String {
    let mut config = bearer(&fixtures.admin.access_token);
    config.push('\n');
    config += &dictionary("categories", &[&fixtures.category_id]);
    config += &operations(
        "^/api/v1/admin/products$",
        &format!(
            "include-method = 'POST'\n{}",
            body_from("category_id", "categories", 0.5)
        ),
    );
    for (regex, name, value) in [
        (
            "^/api/v1/admin/products/\\{id\\}",
            "id",
            fixtures.product_id.as_str(),
        ),
        (
            "^/api/v1/admin/orders/\\{id\\}",
            "id",
            &fixtures.bystander_order,
        ),
        (
            "^/api/v1/admin/users/\\{id\\}",
            "id",
            &fixtures.bystander.id,
        ),
        (
            "^/api/v1/admin/categories/\\{id\\}",
            "id",
            &fixtures.category_id,
        ),
        ("^/api/v1/admin/inventory/\\{sku\\}", "sku", SKU),
        (
            "^/api/v1/admin/shipping-methods/\\{code\\}",
            "code",
            SHIPPING_METHOD,
        ),
        ("^/api/v1/admin/tax-rates/\\{country\\}", "country", "DE"),
    ] {
        config += &operations(regex, &path_parameter(name, value));
    }
    config
}

/// Runs schemathesis over the operations `filter` selects; returns what it printed.
async fn run(app: &TestApp, name: &str, config: String, filter: [&str; 2]) -> String {
    let directory = TempDir::new();
    let config_file = directory.0.join(format!("{name}.toml"));
    std::fs::write(&config_file, config).unwrap();
    let mut command = std::process::Command::new(checker("SOUK_TEST_SCHEMATHESIS"));
    command
        .arg("--config-file")
        .arg(&config_file)
        .arg("run")
        .arg(app.url("/api/v1/openapi.json"))
        .args(filter)
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--phases", "examples,coverage,fuzzing"])
        // One worker: hypothesis describes its strategies with `ast.parse`, which on
        // CPython 3.11 fails now and then when two threads parse at once ("AST
        // constructor recursion depth mismatch", seen in this suite).
        .args(["--workers", "1"])
        .args(["--seed", "16"])
        .args(["--generation-database", "none"])
        .args(["--request-timeout", "20"])
        .arg("--no-color")
        // Reports and caches go to the run's own directory, not the repository.
        .current_dir(&directory.0);
    let started = Instant::now();
    // The node serves on this test's runtime too: wait for schemathesis off it.
    let output = actix_web::rt::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run schemathesis");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis ({name}) failed after {:?}:\n{printed}",
        started.elapsed()
    );
    printed
}

/// The number before `marker` in schemathesis' summary (`Tested: 36`).
fn count_after(printed: &str, marker: &str) -> usize {
    printed
        .lines()
        .find_map(|line| line.trim().strip_prefix(marker))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{marker}` in:\n{printed}"))
}

#[actix_web::test]
async fn schemathesis_finds_nothing_the_document_does_not_allow() {
    let app = spawn_app_with(souk_db::testing::TestBackend::Sqlite, |config| {
        config.http.workers = Some(2);
    })
    .await;
    let fixtures = fixtures(&app).await;
    let started = Instant::now();
    let shoppers = run(
        &app,
        "shoppers",
        shopper_config(&fixtures),
        ["--exclude-path-regex", "^/api/v1/admin/"],
    )
    .await;
    let admins = run(
        &app,
        "admins",
        admin_config(&fixtures),
        ["--include-path-regex", "^/api/v1/admin/"],
    )
    .await;
    let elapsed = started.elapsed();
    // Between them the runs tested every operation of the document.
    let tested = count_after(&shoppers, "Tested:") + count_after(&admins, "Tested:");
    let document: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(tested, operations, "{shoppers}\n{admins}");
    eprintln!("schemathesis: {elapsed:?}\n{shoppers}\n{admins}");
}
