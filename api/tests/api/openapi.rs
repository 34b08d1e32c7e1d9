//! The served OpenAPI document: it validates (openapi-spec-validator), and it says what
//! the server does — every error is problem+json, the statuses the shared extractors
//! answer are documented, the limits the validators enforce are in the schemas, and a
//! body the server lets a client leave out is not required.
//! `schemathesis` then holds the server to it over every operation.

mod schemathesis;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::*;

/// The checker an SOUK_TEST_* variable points at; unset fails the test (CI included):
/// `scripts/test-services` installs every checker.
pub(crate) fn checker(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run `eval \"$(scripts/test-services)\"` (it installs the API checkers)")
    })
}

async fn served_document(app: &TestApp) -> Value {
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// (method, path, operation) of every operation of the document.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            found.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    found
}

fn schema<'a>(document: &'a Value, name: &str) -> &'a Value {
    let schema = &document["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    schema
}

/// The schema of a query parameter of an operation.
fn query_parameter<'a>(operation: &'a Value, name: &str) -> &'a Value {
    operation["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|parameter| parameter["name"] == name && parameter["in"] == "query")
        .map(|parameter| &parameter["schema"])
        .unwrap_or_else(|| panic!("no query parameter {name}"))
}

#[actix_web::test]
async fn the_served_document_validates() {
    let app = spawn_app().await;
    let document = served_document(&app).await;
    let directory = TempDir::new();
    let file = directory.0.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let output = Command::new(checker("SOUK_TEST_OPENAPI_SPEC_VALIDATOR"))
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && printed.contains("OK"),
        "openapi-spec-validator:\n{printed}"
    );
}

#[actix_web::test]
async fn every_operation_has_its_own_operation_id() {
    let app = spawn_app().await;
    let document = served_document(&app).await;
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (method, path, operation) in operations(&document) {
        let id = operation["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
            .to_owned();
        if let Some(first) = seen.insert(id.clone(), format!("{method} {path}")) {
            panic!("operationId {id} names both {first} and {method} {path}");
        }
    }
    assert!(seen.len() >= 48, "{} operations", seen.len());
}

#[actix_web::test]
async fn every_error_is_problem_json_and_the_shared_refusals_are_documented() {
    let app = spawn_app().await;
    let document = served_document(&app).await;
    for (method, path, operation) in operations(&document) {
        let name = format!("{method} {path}");
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            let status: u16 = status.parse().unwrap();
            if status < 400 || (path == "/readyz" && status == 503) {
                continue;
            }
            let types: Vec<&String> = response["content"].as_object().unwrap().keys().collect();
            assert_eq!(
                types,
                ["application/problem+json"],
                "{name} {status}: {response}"
            );
        }
        let documented = |status: &str| responses.contains_key(status);
        let json_body = operation["requestBody"]["content"]["application/json"].is_object();
        if json_body {
            for status in ["400", "408", "413", "415"] {
                assert!(documented(status), "{name} has a JSON body but no {status}");
            }
        }
        let secured = operation["security"]
            .as_array()
            .is_some_and(|requirements| requirements.iter().any(|r| r.get("bearer").is_some()));
        if secured {
            for status in ["401", "403"] {
                assert!(
                    documented(status),
                    "{name} takes a token but has no {status}"
                );
            }
        }
        if path.starts_with("/api/v1/admin/") {
            assert!(secured, "{name} is an admin operation without security");
        }
        if path.contains('{') {
            assert!(documented("404"), "{name} has a path parameter but no 404");
        }
    }
    // What the handlers refuse beyond the shared extractors.
    let paths = &document["paths"];
    for (path, method, status) in [
        ("/api/v1/orders", "post", "422"),
        ("/api/v1/orders/{id}/pay", "post", "422"),
        ("/api/v1/orders/{id}/pay", "post", "402"),
        ("/api/v1/admin/orders/{id}/ship", "post", "409"),
        ("/api/v1/admin/inventory/{sku}/adjust", "post", "422"),
        ("/api/v1/auth/password-reset", "post", "429"),
        ("/api/v1/auth/register", "post", "422"),
        ("/api/v1/admin/products/import", "post", "415"),
    ] {
        assert!(
            paths[path][method]["responses"][status].is_object(),
            "{method} {path} does not document {status}"
        );
    }
}

#[actix_web::test]
async fn the_schemas_carry_the_limits_the_server_enforces() {
    let app = spawn_app().await;
    let document = served_document(&app).await;
    let paths = &document["paths"];
    for (path, method) in [
        ("/api/v1/orders", "get"),
        ("/api/v1/users/me/addresses", "get"),
        ("/api/v1/products", "get"),
        ("/api/v1/admin/orders", "get"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/inventory", "get"),
        ("/api/v1/admin/inventory/{sku}/movements", "get"),
        ("/api/v1/admin/emails", "get"),
        ("/api/v1/admin/emails/dead-letters", "get"),
    ] {
        let operation = &paths[path][method];
        let limit = query_parameter(operation, "limit");
        assert_eq!(
            (&limit["minimum"], &limit["maximum"]),
            (&json!(1), &json!(souk_actors::paging::MAX_LIMIT)),
            "{path} limit"
        );
        assert_eq!(
            query_parameter(operation, "cursor")["minLength"],
            1,
            "{path}"
        );
    }
    let statuses: BTreeSet<String> = souk_actors::orders::OrderStatus::ALL
        .iter()
        .map(|status| status.as_str().to_owned())
        .collect();
    let documented: BTreeSet<String> =
        serde_json::from_value(schema(&document, "OrderStatus")["enum"].clone()).unwrap();
    assert_eq!(documented, statuses);
    let filter = query_parameter(&paths["/api/v1/admin/orders"]["get"], "status");
    assert!(filter.to_string().contains("OrderStatus"), "{filter}");
    assert!(schema(&document, "OrderView")["properties"]["status"]
        .to_string()
        .contains("OrderStatus"));

    let order = schema(&document, "CreateOrderInput");
    assert_eq!(order["properties"]["items"]["minItems"], 1);
    assert_eq!(
        order["properties"]["items"]["maxItems"],
        souk_actors::orders::views::MAX_LINES
    );
    let item = &schema(&document, "OrderItemInput")["properties"];
    assert_eq!(item["quantity"]["type"], "integer");
    assert_eq!(
        (&item["quantity"]["minimum"], &item["quantity"]["maximum"]),
        (&json!(1), &json!(souk_actors::orders::views::MAX_QUANTITY))
    );
    assert_eq!(
        (&item["sku"]["minLength"], &item["sku"]["maxLength"]),
        (&json!(2), &json!(64))
    );

    let address = schema(&document, "AddressInput");
    assert_eq!(
        address["required"],
        json!(["name", "line1", "city", "country"])
    );
    let fields = &address["properties"];
    assert_eq!(fields["line1"]["maxLength"], 200);
    assert_eq!(fields["postal_code"]["maxLength"], 12);
    assert_eq!(fields["country"]["enum"].as_array().unwrap().len(), 249);
    assert!(
        schema(&document, "OrderView")["properties"]["shipping_address"]
            .to_string()
            .contains("PostalAddress")
    );
    // Shipping and tax: the method's fields, the rate's range, the order's totals.
    let method = schema(&document, "ShippingMethodInput");
    assert_eq!(method["required"], json!(["code", "name", "rate"]));
    let fields = &method["properties"];
    assert_eq!(fields["code"]["maxLength"], 100);
    assert_eq!(
        fields["countries"]["items"]["enum"]
            .as_array()
            .unwrap()
            .len(),
        249
    );
    let rate = &schema(&document, "TaxRateInput")["properties"]["rate_bps"];
    assert_eq!(
        (&rate["minimum"], &rate["maximum"]),
        (&json!(0), &json!(10000))
    );
    let order = &schema(&document, "OrderView")["properties"];
    for total in ["subtotal", "shipping", "tax", "total"] {
        assert!(order[total].to_string().contains("Money"), "{total}");
    }
    assert!(order["shipping_method"]
        .to_string()
        .contains("OrderShippingMethod"));
    assert_eq!(order["prices_include_tax"]["type"], "boolean");
    let register = &schema(&document, "RegisterRequest")["properties"];
    assert_eq!(register["password"]["minLength"], 8);
    assert_eq!(register["password"]["maxLength"], 72);
    assert_eq!(register["name"]["maxLength"], 100);
    assert_eq!(register["email"]["maxLength"], 254);
    let adjust = &schema(&document, "AdjustRequest")["properties"];
    assert_eq!(adjust["reason"]["maxLength"], 200);
    assert_eq!(adjust["low_stock_threshold"]["minimum"], 0);
    let pay = &schema(&document, "PayRequest")["properties"];
    assert_eq!(
        (
            &pay["payment_method"]["minLength"],
            &pay["payment_method"]["maxLength"]
        ),
        (&json!(1), &json!(100))
    );
    let product = &schema(&document, "ProductInput")["properties"];
    assert_eq!(product["name"]["maxLength"], 200);
    assert_eq!(
        product["tags"]["maxItems"],
        souk_actors::catalog::model::MAX_TAGS
    );
    assert_eq!(
        product["images"]["maxItems"],
        souk_actors::catalog::model::MAX_IMAGES
    );
    let money = &schema(&document, "MoneyInput")["properties"];
    assert_eq!(money["amount"]["minimum"], 0);
    assert_eq!(
        money["amount"]["maximum"],
        souk_actors::catalog::model::MAX_PRICE_AMOUNT
    );
    let sort = query_parameter(&paths["/api/v1/products"]["get"], "sort");
    assert!(sort.to_string().contains("SortOrder"), "{sort}");
}

#[actix_web::test]
async fn json_imports_refuse_rows_that_are_not_objects() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let import = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/admin/products/import"))
            .bearer_auth(&admin.access_token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let refused = assert_problem(import("[null, null]").await.unwrap(), 400, "invalid_body").await;
    let fields: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["[0]", "[1]"], "{refused}");
    let mixed = r#"[{"sku": "NOT-IMPORTED", "name": "Kept out", "price": {"amount": 100, "currency": "EUR"}}, 7]"#;
    let refused = assert_problem(import(mixed).await.unwrap(), 400, "invalid_body").await;
    assert_eq!(refused["errors"][0]["field"], "[1]", "{refused}");
    // Refused whole: the good row was not imported either.
    let lookup = app
        .get_as("/api/v1/products/sku/NOT-IMPORTED", &admin.access_token)
        .await;
    assert_eq!(lookup.status(), 404);
    // An empty array imports nothing, and says so.
    let empty = import("[]").await.unwrap();
    assert_eq!(empty.status(), 200);
    let report: Value = empty.json().await.unwrap();
    assert_eq!(report["created"], 0);
}

/// The operation ids of the handlers under `api/src/rest/` that take an `OptionalJson`
/// body, read from their source: the attribute `#[utoipa::path(…)]` and the handler's
/// signature after it.
fn operations_with_optional_bodies() -> BTreeSet<String> {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rest");
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(&directory).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|extension| extension != "rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for annotated in source.split("#[utoipa::path(").skip(1) {
            let id = annotated
                .split_once("operation_id = \"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(id, _)| id)
                .unwrap_or_else(|| panic!("{}: an operation without an id", path.display()));
            let signature = annotated
                .split_once("fn ")
                .and_then(|(_, rest)| rest.split_once('{'))
                .map(|(signature, _)| signature)
                .unwrap_or_else(|| panic!("{id}: no handler after its attribute"));
            if signature.contains("OptionalJson<") {
                found.insert(id.to_owned());
            }
        }
    }
    found
}

#[actix_web::test]
async fn a_body_the_server_does_without_is_not_required() {
    let app = spawn_app().await;
    let document = served_document(&app).await;
    let optional = operations_with_optional_bodies();
    for id in [
        "cancel_order",
        "admin_cancel_order",
        "reject_return",
        "refund_return",
        "checkout_cart",
    ] {
        assert!(
            optional.contains(id),
            "{id} not found in the handlers: {optional:?}"
        );
    }
    let mut checked = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let Some(id) = operation["operationId"].as_str() else {
            continue;
        };
        if !optional.contains(id) {
            continue;
        }
        let body = &operation["requestBody"];
        assert!(
            body["content"]["application/json"].is_object(),
            "{method} {path}: {body}"
        );
        assert_ne!(body["required"], json!(true), "{method} {path}: {body}");
        checked.insert(id.to_owned());
    }
    assert_eq!(checked, optional, "operations missing from the document");

    // As documented: no body (also an empty one with a JSON content type, as many
    // clients send), or `null`, is no body.
    let admin = app.admin().await;
    let shopper = app.customer("optional-body").await;
    crate::orders::product(&app, &admin, "OPT-1", 500, 3).await;
    for body in [None, Some(""), Some("null")] {
        let placed =
            crate::orders::place(&app, &shopper, json!([{"sku": "OPT-1", "quantity": 1}])).await;
        let url = app.url(&format!(
            "/api/v1/orders/{}/cancel",
            placed["id"].as_str().unwrap()
        ));
        let mut request = app.client.post(url).bearer_auth(&shopper.access_token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let cancelled = request.send().await.unwrap();
        assert_eq!(cancelled.status(), 200, "{body:?}");
        let cancelled: Value = cancelled.json().await.unwrap();
        assert_eq!(cancelled["status"], "cancelled", "{body:?}");
    }
}
