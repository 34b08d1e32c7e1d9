//! The console's stock pages over plain HTTP: the live stream of committed stock and
//! hot SKUs, and the stock table's search, filters, sorting and pages.

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::http::{assert_strict_csp, get_with, signed_in};
use super::{place_order, product, WAIT};
use crate::helpers::*;

#[actix_web::test]
async fn the_live_stream_carries_committed_stock_and_hot_skus() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer("stream").await;
    product(&app, &admin, "LIVE-SKU", "Streamed item").await;
    let session = signed_in(&app, &admin.email).await;
    let adjusted = app
        .post_json_as(
            "/api/v1/admin/inventory/LIVE-SKU/adjust",
            &admin.access_token,
            &json!({"delta": 20, "reason": "delivery"}),
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);

    let mut stream = get_with(&app, "/admin/live?skus=LIVE-SKU,OTHER-SKU", &session).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    assert_strict_csp(&stream);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("event: hot"));

    place_order(&app, &customer, "LIVE-SKU", 2).await;
    place_order(&app, &customer, "LIVE-SKU", 1).await;
    let deadline = Instant::now() + WAIT;
    let mut seen = String::new();
    while !(seen.contains("\"reserved\":3") && seen.contains("\"sku\":\"LIVE-SKU\",\"per_second\""))
    {
        assert!(Instant::now() < deadline, "the stream said only {seen}");
        let chunk = tokio::time::timeout(WAIT, stream.chunk())
            .await
            .expect("a frame within the wait")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: stock"));
    assert!(seen.contains("\"available\":17"));
    assert!(seen.contains("\"last_minute\":2"), "{seen}");
}

crate::on_both_backends!(the_stock_table_searches_filters_sorts_and_pages);

/// The rows of a stock table page, in order.
fn table_skus(html: &str) -> Vec<String> {
    html.split("<tr class=\"level-")
        .skip(1)
        .filter_map(|row| {
            let start = row.find("data-sku=\"")? + "data-sku=\"".len();
            Some(row[start..].split('"').next()?.to_owned())
        })
        .collect()
}

async fn the_stock_table_searches_filters_sorts_and_pages(backend: souk_db::testing::TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shop = [
        ("TBL-A", "Apple, 50% off", 10, 5),
        ("TBL-B", "Banana_split", 2, 5),
        ("TBL-C", "Cherry", 0, 1),
        ("TBL-D", "Date", 30, 0),
    ];
    for (sku, name, stock, threshold) in shop {
        product(&app, &admin, sku, name).await;
        let adjusted = app
            .post_json_as(
                &format!("/api/v1/admin/inventory/{sku}/adjust"),
                &admin.access_token,
                &json!({"delta": stock, "reason": "count", "low_stock_threshold": threshold}),
            )
            .await;
        assert_eq!(adjusted.status(), StatusCode::OK);
    }
    let session = signed_in(&app, &admin.email).await;
    let table = |query: &'static str| {
        let (app, session) = (&app, &session);
        async move {
            let page = get_with(app, &format!("/admin/stock?{query}"), session).await;
            assert_eq!(page.status(), StatusCode::OK, "{query}");
            page.text().await.unwrap()
        }
    };

    let every = table("").await;
    assert_eq!(table_skus(&every), ["TBL-A", "TBL-B", "TBL-C", "TBL-D"]);
    assert!(every.contains("<tr class=\"level-low\" data-sku=\"TBL-B\">"));
    assert!(every.contains("<tr class=\"level-out\" data-sku=\"TBL-C\">"));
    assert_eq!(table_skus(&table("filter=low").await), ["TBL-B", "TBL-C"]);
    assert_eq!(table_skus(&table("filter=out").await), ["TBL-C"]);
    // What is typed is matched literally: `%` and `_` are no wildcards.
    assert_eq!(table_skus(&table("q=50%25").await), ["TBL-A"]);
    assert_eq!(table_skus(&table("q=_").await), ["TBL-B"]);
    assert_eq!(table_skus(&table("q=tbl-d").await), ["TBL-D"]);
    assert_eq!(
        table_skus(&table("sort=available&dir=desc").await),
        ["TBL-D", "TBL-A", "TBL-B", "TBL-C"]
    );
    assert_eq!(
        table_skus(&table("sort=name&dir=desc&filter=low").await),
        ["TBL-C", "TBL-B"]
    );

    // Pages of 50.
    let rows: Vec<Value> = (0..51)
        .map(|index| {
            json!({"sku": format!("PAGE-{index:03}"), "name": format!("Paged {index}"),
            "price": {"amount": 100, "currency": "EUR"}, "status": "active"})
        })
        .collect();
    let imported = app
        .client
        .post(app.url("/api/v1/admin/products/import"))
        .bearer_auth(&admin.access_token)
        .json(&rows)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), StatusCode::OK);
    let first = table("q=page-").await;
    assert_eq!(table_skus(&first).len(), 50);
    assert!(first.contains("rel=\"next\""));
    let second = table("q=page-&page=2").await;
    assert_eq!(table_skus(&second), ["PAGE-050"]);
    assert!(!second.contains("rel=\"next\"") && second.contains("rel=\"prev\""));

    // A product sold by variants is listed by the variants' SKUs, which hold its stock,
    // and not by its own, which sells nothing.
    let tee = json!({
        "sku": "TBL-TEE", "name": "Table tee", "status": "active",
        "price": {"amount": 1500, "currency": "EUR"},
        "options": [{"name": "size", "values": ["M", "L"]}],
        "variants": [
            {"sku": "TBL-TEE-M", "options": {"size": "M"}},
            {"sku": "TBL-TEE-L", "options": {"size": "L"}},
        ],
    });
    let created = app
        .post_json_as("/api/v1/admin/products", &admin.access_token, &tee)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let restocked = app
        .post_json_as(
            "/api/v1/admin/inventory/TBL-TEE-M/adjust",
            &admin.access_token,
            &json!({"delta": 7, "reason": "count"}),
        )
        .await;
    assert_eq!(restocked.status(), StatusCode::OK);
    assert_eq!(
        table_skus(&table("q=tbl-tee").await),
        ["TBL-TEE-L", "TBL-TEE-M"]
    );
    assert_eq!(
        table_skus(&table("q=tbl-tee&filter=out").await),
        ["TBL-TEE-L"]
    );
}
