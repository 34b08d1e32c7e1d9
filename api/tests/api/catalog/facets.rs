//! Search facets on both engines: category and attribute counts and totals agree with
//! every match on every page, facet values are the stored values (filtering on one finds
//! exactly those products), and the browse facets follow status and category changes.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    create, create_category, id_of, items, patch_product, product, search, search_all, seed,
    transition, with,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    facets_and_totals_count_every_match,
    facet_values_are_the_stored_values,
    browse_facets_follow_status_and_category_changes,
);

async fn facets_and_totals_count_every_match(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let seeded = seed(&app, &admin).await;
    let shopper_queries: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("category", seeded.apparel.as_str())],
        vec![("tag", "summer")],
        vec![("currency", "EUR")],
        vec![("q", "everyday")],
        vec![("attr", "size:42")],
        vec![("price_min", "3000"), ("price_max", "9000")],
        vec![("tag", "nonexistent")],
    ];
    let admin_queries: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("status", "draft,archived")],
        vec![("q", "everyday")],
    ];
    let runs = shopper_queries.iter().map(|query| (None, query)).chain(
        admin_queries
            .iter()
            .map(|query| (Some(admin.access_token.as_str()), query)),
    );
    for (token, query) in runs {
        let (all, first) = search_all(&app, token, query, 2).await;
        assert_eq!(
            first["total"].as_i64().unwrap(),
            all.len() as i64,
            "{query:?}: total"
        );
        let mut categories: BTreeMap<Option<String>, i64> = BTreeMap::new();
        let mut attributes: BTreeMap<(String, String), i64> = BTreeMap::new();
        for item in &all {
            *categories
                .entry(item["category_id"].as_str().map(str::to_owned))
                .or_default() += 1;
            for (name, value) in item["attributes"].as_object().unwrap() {
                *attributes
                    .entry((name.clone(), value.as_str().unwrap().to_owned()))
                    .or_default() += 1;
            }
        }
        let facets = &first["facets"];
        let mut facet_categories = BTreeMap::new();
        for entry in facets["categories"].as_array().unwrap() {
            let previous = facet_categories.insert(
                entry["category_id"].as_str().map(str::to_owned),
                entry["count"].as_i64().unwrap(),
            );
            assert!(previous.is_none(), "{query:?}: a category listed twice");
        }
        assert_eq!(facet_categories, categories, "{query:?}: category facets");
        let mut facet_attributes = BTreeMap::new();
        for attribute in facets["attributes"].as_array().unwrap() {
            let name = attribute["name"].as_str().unwrap();
            for value in attribute["values"].as_array().unwrap() {
                let previous = facet_attributes.insert(
                    (name.to_owned(), value["value"].as_str().unwrap().to_owned()),
                    value["count"].as_i64().unwrap(),
                );
                assert!(previous.is_none(), "{query:?}: a value listed twice");
            }
        }
        assert_eq!(facet_attributes, attributes, "{query:?}: attribute facets");
    }

    // A concrete check of the numbers, not only of their consistency.
    let page = search(&app, None, &[("category", seeded.apparel.as_str())]).await;
    assert_eq!(page["total"], 3);
    let white = page["facets"]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|attribute| attribute["name"] == "color")
        .unwrap()["values"]
        .clone();
    assert_eq!(
        white,
        json!([{"value": "black", "count": 1}, {"value": "white", "count": 2}])
    );
}

/// Attribute values are free text. The facet for a value counts the products that have
/// exactly that value, and filtering on a facet value finds exactly those products.
async fn facet_values_are_the_stored_values(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    for (sku, color) in [
        ("RED-1", "Red"),
        ("RED-2", "red"),
        ("RED-3", "red"),
        ("BLUE-1", "Blue"),
    ] {
        create(
            &app,
            &admin,
            with(
                product(sku, "Painted Vase", 1000),
                json!({"attributes": {"color": color}}),
            ),
        )
        .await;
    }
    let page = search(&app, None, &[]).await;
    let values = page["facets"]["attributes"][0]["values"].clone();
    assert_eq!(page["facets"]["attributes"][0]["name"], "color");
    let mut stored: BTreeMap<String, i64> = BTreeMap::new();
    for item in items(&page) {
        *stored
            .entry(item["attributes"]["color"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let mut faceted: BTreeMap<String, i64> = BTreeMap::new();
    for value in values.as_array().unwrap() {
        faceted.insert(
            value["value"].as_str().unwrap().to_owned(),
            value["count"].as_i64().unwrap(),
        );
    }
    assert_eq!(faceted, stored, "facets: {values}");
    for (value, count) in &faceted {
        let filter = format!("color:{value}");
        let (found, _) = search_all(&app, None, &[("attr", &filter)], 10).await;
        assert_eq!(found.len() as i64, *count, "attr={filter}");
        for item in &found {
            assert_eq!(item["attributes"]["color"], value.as_str(), "attr={filter}");
        }
    }
}

/// The browse facet counts from copies of status and category kept beside the
/// attributes: they must follow every change of the product.
async fn browse_facets_follow_status_and_category_changes(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let first = id_of(&create_category(&app, &admin, "Facet One", None).await);
    let second = id_of(&create_category(&app, &admin, "Facet Two", None).await);
    let teal = create(
        &app,
        &admin,
        with(
            product("TEAL-1", "Teal lamp", 2500),
            json!({"attributes": {"colour": "teal"}, "category_id": first}),
        ),
    )
    .await;
    create(
        &app,
        &admin,
        with(
            product("PLUM-1", "Plum lamp", 2600),
            json!({"attributes": {"colour": "plum"}}),
        ),
    )
    .await;
    let teal_count = |page: &Value| -> i64 {
        page["facets"]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|facet| facet["name"] == "colour")
            .flat_map(|facet| facet["values"].as_array().unwrap().clone())
            .filter(|value| value["value"] == "teal")
            .map(|value| value["count"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(teal_count(&search(&app, None, &[]).await), 1);
    assert_eq!(
        teal_count(&search(&app, None, &[("category", first.as_str())]).await),
        1
    );

    let id = id_of(&teal);
    let moved = patch_product(&app, &admin, &id, json!({"category_id": second})).await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(
        teal_count(&search(&app, None, &[("category", first.as_str())]).await),
        0
    );
    assert_eq!(
        teal_count(&search(&app, None, &[("category", second.as_str())]).await),
        1
    );

    transition(&app, &admin, &id, "archive").await;
    assert_eq!(
        teal_count(&search(&app, None, &[]).await),
        0,
        "archived products leave the shoppers' facets"
    );
    assert_eq!(
        teal_count(&search(&app, Some(&admin.access_token), &[("status", "archived")]).await),
        1
    );
}
