//! Catalog search over HTTP: full-text relevance (name matches first, drafts for admins
//! only), every filter alone and combined, every sort across pages, and search text that
//! is never SQL or a wildcard, on both engines; bad search parameters and cursors are
//! client errors (SQLite).

use std::collections::BTreeSet;

use base64::Engine;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    create, filler, id_of, items, matching, product, search, search_all, search_response, seed,
    set, skus, with,
};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    relevance_ranks_name_matches_first,
    filters_alone_and_combined,
    sorts_order_every_page,
    search_text_is_never_sql_or_a_wildcard,
);

/// Query-string pairs of a product search.
type Query<'a> = Vec<(&'a str, &'a str)>;

async fn relevance_ranks_name_matches_first(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    filler(&app, &admin, 10).await;
    let in_name = create(
        &app,
        &admin,
        with(
            product("Q-NAME", "Quokka Lantern", 2500),
            json!({"description": "Bright camping lantern with a long battery life."}),
        ),
    )
    .await;
    let in_description = create(
        &app,
        &admin,
        with(
            product("Q-DESC", "Camping Lantern", 2400),
            json!({"description": "Bright lantern painted with a smiling quokka."}),
        ),
    )
    .await;
    let in_tags = create(
        &app,
        &admin,
        with(
            product("Q-TAG", "Trail Stove", 4000),
            json!({"description": "Compact stove for long hikes.", "tags": ["quokka", "hiking"]}),
        ),
    )
    .await;
    let draft = create(
        &app,
        &admin,
        with(
            product("Q-DRAFT", "Quokka Tent", 9000),
            json!({"description": "Not for sale yet.", "status": "draft"}),
        ),
    )
    .await;

    for q in ["quokka", "QUOKKA", "  quokka!  "] {
        let page = search(&app, None, &[("q", q)]).await;
        let ids: Vec<String> = items(&page).iter().map(id_of).collect();
        assert_eq!(ids.len(), 3, "{q}: {page}");
        assert_eq!(page["total"], 3);
        assert_eq!(ids[0], id_of(&in_name), "{q}: the name match ranks first");
        assert!(ids.contains(&id_of(&in_description)), "{q}");
        assert!(ids.contains(&id_of(&in_tags)), "{q}");
        assert!(
            !ids.contains(&id_of(&draft)),
            "{q}: drafts are not for shoppers"
        );
        let explicit = search(&app, None, &[("q", q), ("sort", "relevance")]).await;
        assert_eq!(
            explicit["items"], page["items"],
            "relevance is the default with q"
        );
    }

    // Admins see the draft, and it ranks with the name matches, above the others.
    let page = search(&app, Some(&admin.access_token), &[("q", "quokka")]).await;
    let ids: Vec<String> = items(&page).iter().map(id_of).collect();
    assert_eq!(ids.len(), 4, "{page}");
    let position = |id: &str| ids.iter().position(|found| found == id).unwrap();
    for name_match in [id_of(&in_name), id_of(&draft)] {
        assert!(position(&name_match) < position(&id_of(&in_description)));
        assert!(position(&name_match) < position(&id_of(&in_tags)));
    }

    // Another sort over the same matches.
    let by_price = search(&app, None, &[("q", "quokka"), ("sort", "price_asc")]).await;
    let prices: Vec<i64> = items(&by_price)
        .iter()
        .map(|item| item["price"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(prices, [2400, 2500, 4000]);

    // A word nobody has matches nothing; a word only a filler has matches only it.
    let none = search(&app, None, &[("q", "platypus")]).await;
    assert!(items(&none).is_empty());
    assert_eq!(none["total"], 0);
    let hammock = search(&app, None, &[("q", "hammock")]).await;
    assert_eq!(skus(items(&hammock)), set(&["FILL-9"]));
}

async fn filters_alone_and_combined(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let seeded = seed(&app, &admin).await;
    let customer = app.customer("shopper").await;
    let unknown_category = souk_db::ids::new_id();
    let unknown_category = unknown_category.as_str();
    let (apparel, shoes, running, kitchen) = (
        seeded.apparel.as_str(),
        seeded.shoes.as_str(),
        seeded.running.as_str(),
        seeded.kitchen.as_str(),
    );

    let cases: Vec<(Query, BTreeSet<String>)> = vec![
        (
            vec![],
            set(&["SHIRT", "SHOE", "RACER", "PAN", "KNIFE", "MUG"]),
        ),
        // A category includes its sub-categories, all the way down.
        (
            vec![("category", apparel)],
            set(&["SHIRT", "SHOE", "RACER"]),
        ),
        (vec![("category", shoes)], set(&["SHOE", "RACER"])),
        (vec![("category", running)], set(&["RACER"])),
        (vec![("category", kitchen)], set(&["PAN", "KNIFE"])),
        (vec![("category", unknown_category)], set(&[])),
        (vec![("category", "not-an-id")], set(&[])),
        // Price bounds are inclusive.
        (
            vec![("price_min", "4500"), ("price_max", "9000")],
            set(&["SHOE", "PAN", "KNIFE"]),
        ),
        (
            vec![("price_min", "9000")],
            set(&["SHOE", "KNIFE", "RACER"]),
        ),
        (vec![("price_max", "900")], set(&["MUG"])),
        (vec![("price_min", "12001")], set(&[])),
        // Currency in any case.
        (vec![("currency", "usd")], set(&["PAN", "KNIFE"])),
        (vec![("currency", "EUR")], set(&["SHIRT", "SHOE", "RACER"])),
        (vec![("currency", "JPY")], set(&[])),
        // Every tag must be present; tags match in any case.
        (vec![("tag", "summer")], set(&["SHIRT", "SHOE", "KNIFE"])),
        (vec![("tag", "summer"), ("tag", "outdoor")], set(&["SHOE"])),
        (vec![("tag", "OUTDOOR")], set(&["SHOE", "RACER"])),
        (vec![("tag", "outdoor"), ("tag", "linen")], set(&[])),
        (vec![("tag", "nonexistent")], set(&[])),
        // Every attribute must match; names in any case.
        (vec![("attr", "color:white")], set(&["SHIRT", "RACER"])),
        (vec![("attr", "Color: white")], set(&["SHIRT", "RACER"])),
        (
            vec![("attr", "size:42"), ("attr", "color:black")],
            set(&["SHOE"]),
        ),
        (vec![("attr", "size:42"), ("attr", "color:green")], set(&[])),
        (vec![("attr", "material:iron")], set(&["PAN"])),
        // Combined.
        (
            vec![
                ("category", apparel),
                ("price_max", "10000"),
                ("tag", "outdoor"),
                ("currency", "EUR"),
            ],
            set(&["SHOE"]),
        ),
        (
            vec![
                ("category", apparel),
                ("attr", "color:white"),
                ("price_min", "5000"),
            ],
            set(&["RACER"]),
        ),
        (
            vec![
                ("tag", "summer"),
                ("currency", "USD"),
                ("price_max", "9000"),
            ],
            set(&["KNIFE"]),
        ),
        (
            vec![("q", "everyday"), ("category", apparel)],
            set(&["SHIRT", "RACER"]),
        ),
        (
            vec![("q", "everyday"), ("tag", "summer")],
            set(&["SHIRT", "KNIFE"]),
        ),
        // Shoppers may ask for active products explicitly.
        (
            vec![("status", "active"), ("category", shoes)],
            set(&["SHOE", "RACER"]),
        ),
    ];
    for (query, expected) in &cases {
        assert_eq!(&matching(&app, None, query).await, expected, "{query:?}");
        assert_eq!(
            &matching(&app, Some(&customer.access_token), query).await,
            expected,
            "{query:?} as a customer"
        );
    }

    // Admins see every status, and can filter on it alone or with the others.
    let admin_cases: Vec<(Query, BTreeSet<String>)> = vec![
        (
            vec![],
            set(&[
                "SHIRT", "SHOE", "RACER", "PAN", "KNIFE", "MUG", "JACKET", "BOOT",
            ]),
        ),
        (vec![("status", "draft")], set(&["JACKET"])),
        (vec![("status", "archived")], set(&["BOOT"])),
        (vec![("status", "draft,archived")], set(&["JACKET", "BOOT"])),
        (
            vec![("status", "active")],
            set(&["SHIRT", "SHOE", "RACER", "PAN", "KNIFE", "MUG"]),
        ),
        (vec![("category", shoes)], set(&["SHOE", "RACER", "BOOT"])),
        (
            vec![("status", "draft,archived"), ("category", apparel)],
            set(&["JACKET", "BOOT"]),
        ),
        (
            vec![("status", "archived"), ("attr", "color:white")],
            set(&[]),
        ),
        (
            vec![("tag", "summer")],
            set(&["SHIRT", "SHOE", "KNIFE", "JACKET"]),
        ),
        (
            vec![("q", "everyday"), ("status", "draft")],
            set(&["JACKET"]),
        ),
    ];
    for (query, expected) in &admin_cases {
        assert_eq!(
            &matching(&app, Some(&admin.access_token), query).await,
            expected,
            "{query:?} as an admin"
        );
    }
}

async fn sorts_order_every_page(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    // Ties in price and in name, so the keyset's tie-breaker is crossed by page limits.
    let rows = [
        ("S-1", "Delta Lamp", 2500),
        ("S-2", "Alpha Chair", 4000),
        ("S-3", "Charlie Desk", 2500),
        ("S-4", "Bravo Shelf", 9900),
        ("S-5", "Echo Stool", 100),
        ("S-6", "Alpha Chair", 2500),
        ("S-7", "Foxtrot Rug", 4000),
        ("S-8", "Bravo Shelf", 100),
        ("S-9", "Golf Mirror", 2500),
    ];
    let mut created = Vec::new();
    for (sku, name, amount) in rows {
        created.push(create(&app, &admin, product(sku, name, amount)).await);
    }
    create(
        &app,
        &admin,
        with(
            product("S-DRAFT", "Aardvark Draft", 1),
            json!({"status": "draft"}),
        ),
    )
    .await;

    let key = |item: &Value| {
        (
            item["price"]["amount"].as_i64().unwrap(),
            item["name"].as_str().unwrap().to_owned(),
            id_of(item),
        )
    };
    let mut price_asc = created.clone();
    price_asc.sort_by_key(|item| {
        let (price, _, id) = key(item);
        (price, id)
    });
    let mut price_desc = price_asc.clone();
    price_desc.reverse();
    let mut by_name = created.clone();
    by_name.sort_by_key(|item| {
        let (_, name, id) = key(item);
        (name, id)
    });
    let mut newest = created.clone();
    newest.reverse();

    for (sort, expected) in [
        ("price_asc", &price_asc),
        ("price_desc", &price_desc),
        ("name", &by_name),
        ("newest", &newest),
    ] {
        let expected_ids: Vec<String> = expected.iter().map(id_of).collect();
        for limit in [2, 4, 100] {
            let (all, _) = search_all(&app, None, &[("sort", sort)], limit).await;
            let ids: Vec<String> = all.iter().map(id_of).collect();
            assert_eq!(ids, expected_ids, "sort={sort} limit={limit}");
        }
    }
    // Without q the default is newest, and newest means latest created first.
    let (all, _) = search_all(&app, None, &[], 3).await;
    assert_eq!(
        all.iter().map(id_of).collect::<Vec<_>>(),
        newest.iter().map(id_of).collect::<Vec<_>>()
    );
    let created_at: Vec<&str> = all
        .iter()
        .map(|item| item["created_at"].as_str().unwrap())
        .collect();
    let parsed: Vec<chrono::DateTime<chrono::FixedOffset>> = created_at
        .iter()
        .map(|at| chrono::DateTime::parse_from_rfc3339(at).unwrap())
        .collect();
    assert!(
        parsed.windows(2).all(|pair| pair[0] >= pair[1]),
        "{created_at:?}"
    );
}

async fn search_text_is_never_sql_or_a_wildcard(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    for (sku, name) in [
        ("K-1", "Blue Samovar"),
        ("K-2", "Green Teapot"),
        ("K-3", "Steel Saucepan"),
    ] {
        create(
            &app,
            &admin,
            with(
                product(sku, name, 1500),
                json!({"description": "Kitchenware."}),
            ),
        )
        .await;
    }
    filler(&app, &admin, 6).await;
    let everything = matching(&app, None, &[]).await;
    assert_eq!(everything.len(), 9);
    for q in [
        "%",
        "%%",
        "_",
        "'",
        "\"",
        "*",
        "--",
        "' OR 1=1 --",
        "\" OR \"\"=\"",
        "OR 1=1",
        "') OR ('1'='1",
        "*)",
        // Neither `%`, `_` nor `*` is a wildcard: they split words.
        "sa%ar",
        "s_movar",
        "sam*var",
        "; DROP TABLE products; --",
        "\\",
        "NEAR(",
    ] {
        let page = search(&app, None, &[("q", q)]).await;
        assert!(items(&page).is_empty(), "q={q:?}: {page}");
        assert_eq!(page["total"], 0, "q={q:?}");
        let page = search(&app, Some(&admin.access_token), &[("q", q)]).await;
        assert!(items(&page).is_empty(), "q={q:?} as an admin: {page}");
    }
    // A word being typed finds by prefix (type-ahead), whatever follows it.
    for q in ["samo", "samo%", "samo*", "samo_"] {
        let page = search(&app, None, &[("q", q)]).await;
        assert_eq!(items(&page).len(), 1, "q={q:?}: {page}");
        assert_eq!(items(&page)[0]["name"], "Blue Samovar", "q={q:?}");
    }
    // Punctuation around a real word leaves the word.
    for q in [
        "samovar'",
        "'samovar",
        "samovar%",
        "\"samovar\"",
        "samovar*",
        "samovar --",
    ] {
        assert_eq!(
            matching(&app, None, &[("q", q)]).await,
            set(&["K-1"]),
            "q={q:?}"
        );
    }
    // Still all there.
    assert_eq!(matching(&app, None, &[]).await, everything);
}

#[actix_web::test]
async fn bad_search_parameters_are_client_errors() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for index in 0..3 {
        create(
            &app,
            &admin,
            product(&format!("C-{index}"), &format!("Cup {index}"), 100 * index),
        )
        .await;
    }
    let page = search(&app, None, &[("sort", "price_asc"), ("limit", "1")]).await;
    let price_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let page = search(&app, None, &[("q", "cup"), ("limit", "1")]).await;
    let relevance_cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let forge = |raw: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let forged_sql = forge(r#"{"s":"newest","i":"' OR 1=1 --"}"#);
    let forged_offset = forge(r#"{"s":"relevance","r":5.0}"#);
    let forged_snapshot = forge(r#"{"s":"relevance","r":5.0,"i":"x' OR 1=1"}"#);
    let long_q = "q".repeat(201);
    let (long_q, forged_sql, forged_offset, forged_snapshot) = (
        long_q.as_str(),
        forged_sql.as_str(),
        forged_offset.as_str(),
        forged_snapshot.as_str(),
    );
    let (price_cursor, relevance_cursor) = (price_cursor.as_str(), relevance_cursor.as_str());
    let cases: Vec<(Query, u16, &str)> = vec![
        (vec![("limit", "100000")], 400, "invalid_query"),
        (vec![("limit", "0")], 400, "invalid_query"),
        (vec![("limit", "-1")], 400, "invalid_query"),
        (vec![("limit", "ten")], 400, "invalid_query"),
        (vec![("sort", "popularity")], 400, "invalid_query"),
        (vec![("sort", "PRICE_ASC")], 400, "invalid_query"),
        (vec![("sort", "relevance")], 400, "invalid_query"),
        (vec![("colour", "red")], 400, "invalid_query"),
        (vec![("q", "a"), ("q", "b")], 400, "invalid_query"),
        (vec![("q", long_q)], 400, "invalid_query"),
        (vec![("price_min", "-1")], 400, "invalid_query"),
        (vec![("price_max", "cheap")], 400, "invalid_query"),
        (
            vec![("price_min", "10"), ("price_max", "5")],
            400,
            "invalid_query",
        ),
        (vec![("currency", "XYZ")], 400, "invalid_query"),
        (vec![("status", "deleted")], 400, "invalid_query"),
        (vec![("attr", "colour")], 400, "invalid_query"),
        (vec![("in_stock", "yes")], 400, "invalid_query"),
        (vec![("cursor", "not-a-cursor")], 400, "invalid_cursor"),
        (vec![("cursor", "%%%")], 400, "invalid_cursor"),
        (vec![("cursor", forged_sql)], 400, "invalid_cursor"),
        (
            vec![("q", "cup"), ("cursor", forged_offset)],
            400,
            "invalid_cursor",
        ),
        (
            vec![("q", "cup"), ("cursor", forged_snapshot)],
            400,
            "invalid_cursor",
        ),
        // A cursor belongs to its sort order.
        (
            vec![("sort", "name"), ("cursor", price_cursor)],
            400,
            "invalid_cursor",
        ),
        (vec![("cursor", price_cursor)], 400, "invalid_cursor"),
        (
            vec![("sort", "price_desc"), ("cursor", price_cursor)],
            400,
            "invalid_cursor",
        ),
        (
            vec![("sort", "newest"), ("cursor", relevance_cursor)],
            400,
            "invalid_cursor",
        ),
        (
            vec![
                ("q", "cup"),
                ("sort", "price_asc"),
                ("cursor", relevance_cursor),
            ],
            400,
            "invalid_cursor",
        ),
    ];
    for (query, status, code) in cases {
        let response = search_response(&app, None, &query).await;
        let problem = assert_problem(response, status, code).await;
        assert!(
            !problem.to_string().contains("SELECT"),
            "{query:?}: {problem}"
        );
    }
    let too_many_tags: Vec<(&str, &str)> = (0..11).map(|_| ("tag", "t")).collect();
    assert_problem(
        search_response(&app, None, &too_many_tags).await,
        400,
        "invalid_query",
    )
    .await;
    // The cursors work where they belong.
    let next = search(
        &app,
        None,
        &[("sort", "price_asc"), ("cursor", price_cursor)],
    )
    .await;
    assert_eq!(skus(items(&next)), set(&["C-1", "C-2"]));
    let next = search(&app, None, &[("q", "cup"), ("cursor", relevance_cursor)]).await;
    assert_eq!(items(&next).len(), 2);
    // A bad token on a public endpoint is still refused.
    assert_problem(
        search_response(&app, Some("not-a-token"), &[]).await,
        401,
        "invalid_token",
    )
    .await;
}
