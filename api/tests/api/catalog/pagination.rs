//! Cursor pagination of catalog searches on both engines: a walk while products are
//! inserted sees every product there at the start exactly once (newest, price and
//! relevance order), and archiving a product already seen skips none of the others.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{create, filler, id_of, items, patch_product, product, search, transition, with};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    pagination_survives_concurrent_inserts,
    relevance_pages_survive_archiving_a_seen_product,
);

/// Walks every page of a shopper's search, `limit=3`, creating the products `between`
/// returns after each page. Returns the items seen and the products created.
async fn walk_while_inserting(
    app: &TestApp,
    admin: &Session,
    query: &[(&str, &str)],
    between: impl Fn(usize) -> Vec<Value>,
) -> (Vec<Value>, Vec<Value>) {
    let mut seen = Vec::new();
    let mut inserted = Vec::new();
    let mut cursor: Option<String> = None;
    for page_number in 0..100 {
        let mut pairs: Vec<(&str, &str)> = query.to_vec();
        pairs.push(("limit", "3"));
        if let Some(cursor) = &cursor {
            pairs.push(("cursor", cursor.as_str()));
        }
        let page = search(app, None, &pairs).await;
        assert!(items(&page).len() <= 3);
        seen.extend(items(&page).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (seen, inserted),
        }
        for body in between(page_number) {
            inserted.push(create(app, admin, body).await);
        }
    }
    panic!("{query:?}: pagination does not end");
}

/// Asserts every id of `expected` was seen exactly once and no id came twice.
fn assert_each_once(label: &str, seen: &[Value], expected: &BTreeSet<String>) {
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for item in seen {
        *times.entry(id_of(item)).or_default() += 1;
    }
    let twice: Vec<&String> = times
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(twice.is_empty(), "{label}: seen twice: {twice:?}");
    let missed: Vec<&String> = expected
        .iter()
        .filter(|id| !times.contains_key(*id))
        .collect();
    assert!(missed.is_empty(), "{label}: never seen: {missed:?}");
}

async fn pagination_survives_concurrent_inserts(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    // Twelve products mention "walrus" (in the name, the description or a tag), twelve
    // do not; prices repeat so that ties straddle page boundaries.
    let mut walrus = BTreeSet::new();
    let mut everything = BTreeSet::new();
    for index in 0..12_i64 {
        let price = 1000 + (index % 4) * 100;
        let body = match index % 3 {
            0 => with(
                product(
                    &format!("W-{index}"),
                    &format!("Walrus Figurine {index}"),
                    price,
                ),
                json!({"description": "Carved from pale driftwood."}),
            ),
            1 => with(
                product(
                    &format!("W-{index}"),
                    &format!("Driftwood Figurine {index}"),
                    price,
                ),
                json!({"description": "Carved in the shape of a walrus."}),
            ),
            _ => with(
                product(
                    &format!("W-{index}"),
                    &format!("Pebble Figurine {index}"),
                    price,
                ),
                json!({"description": "Carved from smooth river pebble.", "tags": ["walrus"]}),
            ),
        };
        let created = create(&app, &admin, body).await;
        walrus.insert(id_of(&created));
        everything.insert(id_of(&created));
    }
    for index in 0..12_i64 {
        let created = create(
            &app,
            &admin,
            with(
                product(
                    &format!("N-{index}"),
                    &format!("Ceramic Bowl {index}"),
                    1000 + (index % 4) * 100,
                ),
                json!({"description": "Glazed by hand in blue."}),
            ),
        )
        .await;
        everything.insert(id_of(&created));
    }

    // Between pages: one more walrus, cheaper than everything, and one dearer product
    // without the word.
    let inserts = |label: &'static str| {
        move |page: usize| {
            vec![
                with(
                    product(
                        &format!("{label}-W{page}"),
                        &format!("Walrus Magnet {label}{page}"),
                        10 + page as i64,
                    ),
                    json!({"description": "A fridge magnet."}),
                ),
                with(
                    product(
                        &format!("{label}-N{page}"),
                        &format!("Linen Napkin {label}{page}"),
                        5000 + page as i64,
                    ),
                    json!({"description": "Plain linen."}),
                ),
            ]
        }
    };

    // Newest first: later inserts sort before the cursor and are never seen.
    let (seen, inserted) =
        walk_while_inserting(&app, &admin, &[("sort", "newest")], inserts("A")).await;
    assert!(!inserted.is_empty(), "several pages were walked");
    assert_each_once("newest", &seen, &everything);
    assert_eq!(
        seen.len(),
        everything.len(),
        "newest: only the products there at the start"
    );
    for product in &inserted {
        everything.insert(id_of(product));
        if product["name"].as_str().unwrap().starts_with("Walrus") {
            walrus.insert(id_of(product));
        }
    }

    // Price ascending: every product there at the start exactly once, in order; the
    // dear inserts land after the cursor and may be seen, the cheap ones never.
    let (seen, inserted) =
        walk_while_inserting(&app, &admin, &[("sort", "price_asc")], inserts("B")).await;
    assert!(!inserted.is_empty());
    assert_each_once("price_asc", &seen, &everything);
    let prices: Vec<i64> = seen
        .iter()
        .map(|item| item["price"]["amount"].as_i64().unwrap())
        .collect();
    assert!(
        prices.windows(2).all(|pair| pair[0] <= pair[1]),
        "{prices:?}"
    );
    let late: BTreeSet<String> = inserted.iter().map(id_of).collect();
    for item in &seen {
        let id = id_of(item);
        assert!(everything.contains(&id) || late.contains(&id));
    }
    for product in &inserted {
        everything.insert(id_of(product));
        if product["name"].as_str().unwrap().starts_with("Walrus") {
            walrus.insert(id_of(product));
        }
    }

    // Relevance: every walrus product there at the start exactly once; products inserted
    // meanwhile may appear (after the cursor), never twice.
    let (seen, inserted) =
        walk_while_inserting(&app, &admin, &[("q", "walrus")], inserts("C")).await;
    assert!(!inserted.is_empty());
    assert_each_once("relevance", &seen, &walrus);
    let late: BTreeSet<String> = inserted.iter().map(id_of).collect();
    for item in &seen {
        let id = id_of(item);
        assert!(
            walrus.contains(&id) || late.contains(&id),
            "relevance: {id} is neither original nor inserted"
        );
    }
    // Name matches rank before the others, across pages.
    let last_name_match = seen
        .iter()
        .rposition(|item| item["name"].as_str().unwrap().starts_with("Walrus"))
        .unwrap();
    let first_other = seen
        .iter()
        .position(|item| !item["name"].as_str().unwrap().starts_with("Walrus"))
        .unwrap();
    assert!(
        last_name_match < first_other,
        "name matches first: {:?}",
        seen.iter().map(|item| &item["name"]).collect::<Vec<_>>()
    );
}

/// Pages that follow a cursor must not skip a product because one the shopper already
/// saw left the result set (every sort, relevance included, pages by keyset).
async fn relevance_pages_survive_archiving_a_seen_product(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    filler(&app, &admin, 8).await;
    let mut expected = BTreeSet::new();
    for index in 0..6_i64 {
        let created = create(
            &app,
            &admin,
            with(
                product(
                    &format!("Z-{index}"),
                    &format!("Zebra Print {index}"),
                    100 * index + 100,
                ),
                json!({"description": "Striped wall art."}),
            ),
        )
        .await;
        expected.insert(id_of(&created));
    }
    for query in [
        vec![("q", "zebra"), ("sort", "price_asc")],
        vec![("q", "zebra")],
    ] {
        // Bring every product back before each walk.
        for id in &expected {
            let response = patch_product(&app, &admin, id, json!({"status": "active"})).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
        let mut pairs = query.clone();
        pairs.push(("limit", "3"));
        let first = search(&app, None, &pairs).await;
        let mut seen: Vec<Value> = items(&first).clone();
        assert_eq!(seen.len(), 3, "{first}");
        // An admin archives a product the shopper has already seen.
        transition(&app, &admin, &id_of(&seen[0]), "archive").await;
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        pairs.push(("cursor", &cursor));
        let second = search(&app, None, &pairs).await;
        seen.extend(items(&second).iter().cloned());
        assert_each_once(&format!("{query:?}"), &seen, &expected);
    }
}
