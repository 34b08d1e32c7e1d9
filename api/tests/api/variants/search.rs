//! Search finds products by their variants: price filters and sorts by a variant's
//! price, option values filtered and counted as attributes, and a product in stock
//! when one of its variants is.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{adjust, created, tee};
use crate::helpers::*;

async fn search(app: &TestApp, query: &[(&str, &str)]) -> Value {
    let response = app
        .client
        .get(app.url("/api/v1/products"))
        .query(query)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn skus(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sku"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn search_finds_products_by_their_variants() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    created(&app, &admin, &tee("TEE")).await;
    let plain = json!({"sku": "MUG", "name": "Mug", "price": {"amount": 1800, "currency": "EUR"}, "status": "active",
                       "attributes": {"size": "M"}});
    created(&app, &admin, &plain).await;

    // A price filter matches a product when one of its variants is in range; price
    // sorts use the lowest price.
    assert_eq!(skus(&search(&app, &[("price_min", "1850")]).await), ["TEE"]);
    assert_eq!(skus(&search(&app, &[("price_max", "1600")]).await), ["TEE"]);
    assert_eq!(
        skus(&search(&app, &[("price_min", "1750"), ("price_max", "1850")]).await),
        ["MUG"],
        "no variant of TEE is priced between 1750 and 1850"
    );
    assert_eq!(
        skus(&search(&app, &[("sort", "price_asc")]).await),
        ["TEE", "MUG"]
    );
    assert_eq!(
        skus(
            &search(
                &app,
                &[
                    ("sort", "price_asc"),
                    ("currency", "EUR"),
                    ("price_min", "1600")
                ]
            )
            .await
        ),
        ["TEE", "MUG"]
    );
    let item = &search(&app, &[("q", "tee")]).await["items"][0];
    assert_eq!(item["price_range"]["max"]["amount"], 1900);
    assert_eq!(
        item["variants"][1]["options"],
        json!({"size": "M", "colour": "Red"})
    );

    // Option values filter and count as attributes do, merged with them.
    assert_eq!(skus(&search(&app, &[("attr", "size:L")]).await), ["TEE"]);
    assert_eq!(
        skus(&search(&app, &[("attr", "colour:Red")]).await),
        ["TEE"]
    );
    let page = search(&app, &[("attr", "size:M"), ("sort", "name")]).await;
    assert_eq!(skus(&page), ["MUG", "TEE"]);
    let facets = search(&app, &[]).await["facets"]["attributes"].clone();
    let sizes = facets
        .as_array()
        .unwrap()
        .iter()
        .find(|facet| facet["name"] == "size")
        .unwrap()["values"]
        .clone();
    assert_eq!(
        sizes,
        json!([{"value": "L", "count": 1}, {"value": "M", "count": 2}, {"value": "S", "count": 1}])
    );

    // A product is in stock when one of its variants is.
    assert!(skus(&search(&app, &[("in_stock", "true")]).await).is_empty());
    assert_eq!(
        adjust(&app, &admin, "TEE-L", 1).await.status(),
        StatusCode::OK
    );
    within(
        std::time::Duration::from_secs(10),
        "a variant's stock reaches search",
        || async { skus(&search(&app, &[("in_stock", "true")]).await) == ["TEE"] },
    )
    .await;
}
