//! What variant input is refused: bad options and variants name their fields (422),
//! wrong shapes are 400, a SKU names one thing (a product or one variant, never both),
//! stock is kept only for SKUs the catalog sells; a product and another product's
//! variant racing for one SKU are never both stored (both engines); and input that
//! would overflow a MariaDB column once stored as JSON is refused, not a 500.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{adjust, create, created, tee};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(racing_writes_never_share_a_sku);

#[actix_web::test]
async fn variant_input_is_validated() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    created(&app, &admin, &tee("SHIRT")).await;
    let plain = json!({"sku": "MUG", "name": "Mug", "price": {"amount": 900, "currency": "EUR"}});
    created(&app, &admin, &plain).await;

    let with = |extra: Value| {
        let mut body =
            json!({"sku": "NEW", "name": "New", "price": {"amount": 100, "currency": "EUR"}});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let size = json!([{"name": "size", "values": ["S", "M"]}]);
    let cases: Vec<(Value, &str)> = vec![
        (
            with(json!({"variants": [{"sku": "NEW-S", "options": {"size": "S"}}]})),
            "variants",
        ),
        (with(json!({"options": size})), "variants"),
        (
            with(
                json!({"options": size, "variants": [{"sku": "NEW-X", "options": {"size": "XL"}}]}),
            ),
            "variants[0].options",
        ),
        (
            with(json!({"options": size, "variants": [{"sku": "NEW-S", "options": {}}]})),
            "variants[0].options",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}},
                {"sku": "new-s", "options": {"size": "M"}},
            ]})),
            "variants[1].sku",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}},
                {"sku": "NEW-T", "options": {"size": "S"}},
            ]})),
            "variants[1].options",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}, "price": {"amount": 100, "currency": "USD"}},
            ]})),
            "variants[0].price.currency",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "NEW-S", "options": {"size": "S"}, "price": {"amount": -1, "currency": "EUR"}},
            ]})),
            "variants[0].price.amount",
        ),
        (
            with(json!({"options": size, "variants": [{"sku": "NEW", "options": {"size": "S"}}]})),
            "variants[0].sku",
        ),
        (
            with(json!({"options": [
                {"name": "a", "values": ["1"]}, {"name": "b", "values": ["1"]},
                {"name": "c", "values": ["1"]}, {"name": "d", "values": ["1"]},
            ], "variants": [{"sku": "NEW-1", "options": {"a": "1", "b": "1", "c": "1", "d": "1"}}]})),
            "options",
        ),
        (
            with(
                json!({"options": [{"name": "size", "values": []}], "variants": [{"sku": "NEW-S", "options": {"size": "S"}}]}),
            ),
            "options[0].values",
        ),
        (
            with(
                json!({"options": [{"name": "si ze", "values": ["S"]}], "variants": [{"sku": "NEW-S", "options": {"si ze": "S"}}]}),
            ),
            "options[0].name",
        ),
    ];
    for (body, field) in cases {
        let problem =
            assert_problem(create(&app, &admin, &body).await, 422, "validation_failed").await;
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{body}: {problem}");
    }

    // Wrong shapes are 400, not 422 or 500.
    for body in [
        with(json!({"options": "size"})),
        with(
            json!({"options": size, "variants": [{"sku": "NEW-S", "options": {"size": "S"}, "stock": 3}]}),
        ),
        with(json!({"options": size, "variants": [{"sku": "NEW-S", "options": ["S"]}]})),
    ] {
        assert_problem(create(&app, &admin, &body).await, 400, "invalid_body").await;
    }

    // A SKU names one thing: a variant may not take a product's SKU or another
    // product's variant's, nor a product a variant's.
    let taken_by_product =
        with(json!({"options": size, "variants": [{"sku": "MUG", "options": {"size": "S"}}]}));
    let problem = assert_problem(
        create(&app, &admin, &taken_by_product).await,
        409,
        "sku_taken",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("MUG"),
        "{problem}"
    );
    let taken_by_variant =
        with(json!({"options": size, "variants": [{"sku": "SHIRT-M", "options": {"size": "S"}}]}));
    assert_problem(
        create(&app, &admin, &taken_by_variant).await,
        409,
        "sku_taken",
    )
    .await;
    let product_on_variant =
        json!({"sku": "SHIRT-L", "name": "Clash", "price": {"amount": 1, "currency": "EUR"}});
    assert_problem(
        create(&app, &admin, &product_on_variant).await,
        409,
        "sku_taken",
    )
    .await;
    let stored = app
        .get_as("/api/v1/products/sku/NEW", &admin.access_token)
        .await;
    assert_eq!(
        stored.status(),
        StatusCode::NOT_FOUND,
        "no refused product was stored"
    );

    // Stock is kept for a variant's SKU, and for nothing the catalog does not sell.
    assert_eq!(
        adjust(&app, &admin, "SHIRT-S", 1).await.status(),
        StatusCode::OK
    );
    assert_problem(adjust(&app, &admin, "SHIRT-XL", 1).await, 404, "not_found").await;
}

/// A product and another product's variant created at the same moment with one SKU:
/// exactly one of them is stored, every time.
async fn racing_writes_never_share_a_sku(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    for round in 0..8 {
        let sku = format!("RACE-{round}");
        let product =
            json!({"sku": sku, "name": "Plain", "price": {"amount": 100, "currency": "EUR"}});
        let with_variant = json!({
            "sku": format!("FAMILY-{round}"), "name": "Family",
            "price": {"amount": 100, "currency": "EUR"},
            "options": [{"name": "size", "values": ["S"]}],
            "variants": [{"sku": sku, "options": {"size": "S"}}],
        });
        let (first, second) = tokio::join!(
            create(&app, &admin, &product),
            create(&app, &admin, &with_variant)
        );
        let mut statuses = [first.status().as_u16(), second.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "round {round}");
    }
}

/// The longest values a product takes, of the characters JSON escapes, on MariaDB
/// (which refuses a value wider than its column where SQLite stores it): the most and
/// longest image URLs and option values that are accepted are stored; a `\` in a URL,
/// or option values whose JSON list would not fit, are a validation error.
#[actix_web::test]
async fn values_wider_than_their_columns_once_stored_are_refused_on_mysql() {
    let app = spawn_app_on(TestBackend::MySql).await;
    let admin = app.admin().await;
    let url = |fill: &str, index: usize| {
        let head = format!("https://img.example.com/{index}/");
        format!("{head}{}", fill.repeat(300 - head.len()))
    };
    let value = |fill: &str, index: usize| format!("{}{index:02}", fill.repeat(98));
    let product = |images: Vec<String>, values: Vec<String>, variant_images: Vec<String>| {
        let first = values[0].clone();
        json!({
            "sku": "WIDE", "name": "Wide", "price": {"amount": 100, "currency": "EUR"},
            "images": images,
            "options": [{"name": "fit", "values": values}],
            "variants": [{"sku": "WIDE-1", "options": {"fit": first}, "images": variant_images}],
        })
    };
    let images = |fill: &str| (0..10).map(|index| url(fill, index)).collect::<Vec<_>>();
    let values = |fill: &str, count: usize| {
        (0..count)
            .map(|index| value(fill, index))
            .collect::<Vec<_>>()
    };

    let cases = [
        (product(images("\\"), values("a", 1), vec![]), "images"),
        (
            product(images("a"), values("a", 1), images("\\")),
            "variants[0].images",
        ),
        (
            product(images("a"), values("\"", 50), vec![]),
            "options[0].values",
        ),
        (
            product(images("a"), values("\\", 50), vec![]),
            "options[0].values",
        ),
    ];
    for (body, field) in cases {
        let problem =
            assert_problem(create(&app, &admin, &body).await, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }

    // The widest accepted: ten 300-character URLs on the product and on its variant, 50
    // values of 100 characters, and as many quote-heavy values as fit.
    created(
        &app,
        &admin,
        &product(images("%"), values("a", 50), images("~")),
    )
    .await;
    let quotes = json!({
        "sku": "QUOTED", "name": "Quoted", "price": {"amount": 100, "currency": "EUR"},
        "options": [{"name": "fit", "values": values("\"", 29)},
                    {"name": "size", "values": values("\\", 29)}],
        "variants": [{"sku": "QUOTED-1", "options": {"fit": value("\"", 0), "size": value("\\", 0)}}],
    });
    let stored = created(&app, &admin, &quotes).await;
    assert_eq!(stored["options"][0]["values"][28], json!(value("\"", 28)));
}
