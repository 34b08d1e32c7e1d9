//! The product catalog over HTTP: full-text relevance, filters, sorts, pagination under
//! concurrent writes, facets, imports, bad input, and the read cache (Redis, in
//! process, and Redis dying mid-test).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use base64::Engine;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;

// ---------------------------------------------------------------- helpers

/// Query-string pairs of a product search.
type Query<'a> = Vec<(&'a str, &'a str)>;

/// An active EUR product: the shape of a create body.
fn product(sku: &str, name: &str, amount: i64) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "price": {"amount": amount, "currency": "EUR"},
        "status": "active",
    })
}

/// `base` with the fields of `extra` set over it.
fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(fields), Value::Object(extra)) = (base.as_object_mut(), extra) {
        fields.extend(extra);
    }
    base
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.unwrap()
}

async fn create(app: &TestApp, admin: &Session, body: Value) -> Value {
    let response = app
        .post_json_as("/api/v1/admin/products", &admin.access_token, &body)
        .await;
    let status = response.status();
    let created: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "create {body}: {created}");
    created
}

async fn patch_product(app: &TestApp, admin: &Session, id: &str, body: Value) -> Response {
    send(
        app,
        Method::PATCH,
        &format!("/api/v1/admin/products/{id}"),
        Some(&admin.access_token),
        Some(&body),
    )
    .await
}

/// `archive` or `restore`, which must succeed; returns the product.
async fn transition(app: &TestApp, admin: &Session, id: &str, action: &str) -> Value {
    let response = app
        .post_json_as(
            &format!("/api/v1/admin/products/{id}/{action}"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{action} {id}");
    response.json().await.unwrap()
}

async fn create_category(
    app: &TestApp,
    admin: &Session,
    name: &str,
    parent_id: Option<&str>,
) -> Value {
    let response = app
        .post_json_as(
            "/api/v1/admin/categories",
            &admin.access_token,
            &json!({"name": name, "parent_id": parent_id}),
        )
        .await;
    let status = response.status();
    let created: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "category {name}: {created}");
    created
}

fn id_of(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

async fn search_response(app: &TestApp, token: Option<&str>, query: &[(&str, &str)]) -> Response {
    let mut request = app.client.get(app.url("/api/v1/products")).query(query);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// One page of `/api/v1/products`, which must answer 200.
async fn search(app: &TestApp, token: Option<&str>, query: &[(&str, &str)]) -> Value {
    let response = search_response(app, token, query).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{query:?}: {body}");
    body
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap()
}

/// Every page of a search, `limit` at a time. Each page has the same total and facets,
/// and no more than `limit` items. Returns the items and the first page.
async fn search_all(
    app: &TestApp,
    token: Option<&str>,
    query: &[(&str, &str)],
    limit: usize,
) -> (Vec<Value>, Value) {
    let limit_text = limit.to_string();
    let mut all = Vec::new();
    let mut first: Option<Value> = None;
    let mut cursor: Option<String> = None;
    for _ in 0..200 {
        let mut pairs: Vec<(&str, &str)> = query.to_vec();
        pairs.push(("limit", &limit_text));
        if let Some(cursor) = &cursor {
            pairs.push(("cursor", cursor.as_str()));
        }
        let page = search(app, token, &pairs).await;
        assert!(items(&page).len() <= limit, "{page}");
        if let Some(first) = &first {
            assert_eq!(page["total"], first["total"], "{query:?}: total per page");
            assert_eq!(
                page["facets"], first["facets"],
                "{query:?}: facets per page"
            );
        }
        all.extend(items(&page).iter().cloned());
        let next = page["next_cursor"].as_str().map(str::to_owned);
        if first.is_none() {
            first = Some(page);
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return (all, first.unwrap()),
        }
    }
    panic!("{query:?}: pagination does not end");
}

fn skus(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|item| item["sku"].as_str().unwrap().to_owned())
        .collect()
}

fn set(skus: &[&str]) -> BTreeSet<String> {
    skus.iter().map(|sku| (*sku).to_owned()).collect()
}

/// The SKUs every page of a search yields, checking no product comes twice.
async fn matching(app: &TestApp, token: Option<&str>, query: &[(&str, &str)]) -> BTreeSet<String> {
    let (all, first) = search_all(app, token, query, 2).await;
    let found = skus(&all);
    assert_eq!(found.len(), all.len(), "{query:?}: a product came twice");
    assert_eq!(
        first["total"].as_i64().unwrap(),
        all.len() as i64,
        "{query:?}: total"
    );
    found
}

async fn import(app: &TestApp, admin: &Session, content_type: &str, body: &str) -> Response {
    app.client
        .post(app.url("/api/v1/admin/products/import"))
        .bearer_auth(&admin.access_token)
        .header("content-type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn import_report(app: &TestApp, admin: &Session, content_type: &str, body: &str) -> Value {
    let response = import(app, admin, content_type, body).await;
    let status = response.status();
    let report: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "import: {report}");
    report
}

/// (created, updated, unchanged, failed) of an import report.
fn counts(report: &Value) -> (i64, i64, i64, i64) {
    (
        report["created"].as_i64().unwrap(),
        report["updated"].as_i64().unwrap(),
        report["unchanged"].as_i64().unwrap(),
        report["failed"].as_i64().unwrap(),
    )
}

fn error_lines(report: &Value) -> Vec<u64> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["line"].as_u64().unwrap())
        .collect()
}

async fn by_sku(app: &TestApp, token: Option<&str>, sku: &str) -> Response {
    let path = format!("/api/v1/products/sku/{sku}");
    match token {
        Some(token) => app.get_as(&path, token).await,
        None => app.get(&path).await,
    }
}

async fn by_id(app: &TestApp, token: Option<&str>, id: &str) -> Response {
    let path = format!("/api/v1/products/{id}");
    match token {
        Some(token) => app.get_as(&path, token).await,
        None => app.get(&path).await,
    }
}

async fn ok_json(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The sum of `souk_cache_requests_total{cache="catalog",outcome=…}` in `/metrics`.
/// The recorder is process-global, so callers compare deltas (other tests only add).
async fn cache_requests(app: &TestApp, outcome: &str) -> f64 {
    let text = app.metrics().await;
    let outcome_label = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|line| {
            line.starts_with("souk_cache_requests_total{")
                && line.contains("cache=\"catalog\"")
                && line.contains(&outcome_label)
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

// ---------------------------------------------------------------- a shared catalog

/// Categories: Apparel > Shoes > Running, and Kitchen. Products, all active unless said:
///
/// | sku     | category | price     | tags            | attributes          |
/// |---------|----------|-----------|-----------------|---------------------|
/// | SHIRT   | Apparel  | 3000 EUR  | summer, linen   | color=white, size=m |
/// | SHOE    | Shoes    | 9000 EUR  | outdoor, summer | color=black, size=42|
/// | RACER   | Running  | 12000 EUR | outdoor, racing | color=white, size=42|
/// | PAN     | Kitchen  | 4500 USD  | iron            | material=iron       |
/// | KNIFE   | Kitchen  | 9000 USD  | steel, summer   | material=steel      |
/// | MUG     | —        | 900 GBP   |                 |                     |
/// | JACKET  | Apparel  | 5000 EUR  | summer (draft)  | color=white         |
/// | BOOT    | Shoes    | 7000 EUR  | outdoor (archived) | color=black      |
struct Seeded {
    apparel: String,
    shoes: String,
    running: String,
    kitchen: String,
    ids: HashMap<&'static str, String>,
}

async fn seed(app: &TestApp, admin: &Session) -> Seeded {
    let apparel = id_of(&create_category(app, admin, "Apparel", None).await);
    let shoes = id_of(&create_category(app, admin, "Shoes", Some(&apparel)).await);
    let running = id_of(&create_category(app, admin, "Running", Some(&shoes)).await);
    let kitchen = id_of(&create_category(app, admin, "Kitchen", None).await);
    let rows: Vec<(&'static str, Value)> = vec![
        (
            "SHIRT",
            json!({"name": "Linen Shirt", "description": "An everyday shirt for warm days.",
                   "price": {"amount": 3000, "currency": "EUR"}, "category_id": apparel,
                   "tags": ["summer", "linen"], "attributes": {"color": "white", "size": "m"}}),
        ),
        (
            "SHOE",
            json!({"name": "Trail Shoe", "description": "Grippy soles for muddy paths.",
                   "price": {"amount": 9000, "currency": "EUR"}, "category_id": shoes,
                   "tags": ["outdoor", "summer"], "attributes": {"color": "black", "size": "42"}}),
        ),
        (
            "RACER",
            json!({"name": "Racing Flat", "description": "An everyday trainer that races too.",
                   "price": {"amount": 12000, "currency": "EUR"}, "category_id": running,
                   "tags": ["outdoor", "racing"], "attributes": {"color": "white", "size": "42"}}),
        ),
        (
            "PAN",
            json!({"name": "Cast Pan", "description": "Heavy iron that lasts forever.",
                   "price": {"amount": 4500, "currency": "USD"}, "category_id": kitchen,
                   "tags": ["iron"], "attributes": {"material": "iron"}}),
        ),
        (
            "KNIFE",
            json!({"name": "Chef Knife", "description": "Everyday steel blade for the kitchen.",
                   "price": {"amount": 9000, "currency": "USD"}, "category_id": kitchen,
                   "tags": ["steel", "summer"], "attributes": {"material": "steel"}}),
        ),
        (
            "MUG",
            json!({"name": "Plain Mug", "description": "Holds tea.",
                   "price": {"amount": 900, "currency": "GBP"}}),
        ),
        (
            "JACKET",
            json!({"name": "Draft Jacket", "description": "An everyday jacket, not ready.",
                   "price": {"amount": 5000, "currency": "EUR"}, "category_id": apparel,
                   "tags": ["summer"], "attributes": {"color": "white"}, "status": "draft"}),
        ),
        (
            "BOOT",
            json!({"name": "Old Boot", "description": "Discontinued winter boot.",
                   "price": {"amount": 7000, "currency": "EUR"}, "category_id": shoes,
                   "tags": ["outdoor"], "attributes": {"color": "black"}}),
        ),
    ];
    let mut ids = HashMap::new();
    for (sku, body) in rows {
        let body = with(json!({"sku": sku, "status": "active"}), body);
        let created = create(app, admin, body).await;
        ids.insert(sku, id_of(&created));
    }
    let archived = transition(app, admin, &ids["BOOT"], "archive").await;
    assert_eq!(archived["status"], "archived");
    Seeded {
        apparel,
        shoes,
        running,
        kitchen,
        ids,
    }
}

// ---------------------------------------------------------------- both backends

on_both_backends!(
    relevance_ranks_name_matches_first,
    filters_alone_and_combined,
    statuses_hide_drafts_and_archives_from_shoppers,
    sorts_order_every_page,
    pagination_survives_concurrent_inserts,
    relevance_pages_survive_archiving_a_seen_product,
    facets_and_totals_count_every_match,
    csv_and_json_imports_are_idempotent_by_sku,
    reimport_of_accented_tags_is_unchanged,
    tags_differing_only_by_accents,
    facet_values_are_the_stored_values,
    search_text_is_never_sql_or_a_wildcard,
    browse_facets_follow_status_and_category_changes,
);

/// Unrelated products, so that on MariaDB a searched word is not in every row (InnoDB
/// gives such a word an IDF of 0, and a score of 0 is no match).
async fn filler(app: &TestApp, admin: &Session, count: usize) {
    let names = [
        "Garden Gnome",
        "Copper Kettle",
        "Wool Blanket",
        "Oak Bookshelf",
        "Brass Candlestick",
        "Velvet Cushion",
        "Bamboo Steamer",
        "Marble Coaster",
        "Ceramic Planter",
        "Cotton Hammock",
    ];
    for index in 0..count {
        let name = names[index % names.len()];
        let body = with(
            product(&format!("FILL-{index}"), name, 500 + index as i64),
            json!({"description": format!("{name} made by hand in small batches.")}),
        );
        create(app, admin, body).await;
    }
}

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

async fn statuses_hide_drafts_and_archives_from_shoppers(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let seeded = seed(&app, &admin).await;
    let customer = app.customer("shopper").await;
    let shoppers = [None, Some(customer.access_token.as_str())];

    for token in shoppers {
        // Non-active statuses are for admins only.
        for status in ["draft", "archived", "active,draft", "draft,archived"] {
            assert_problem(
                search_response(&app, token, &[("status", status)]).await,
                403,
                "forbidden",
            )
            .await;
        }
        // Hidden by id and by SKU.
        for sku in ["JACKET", "BOOT"] {
            assert_problem(by_id(&app, token, &seeded.ids[sku]).await, 404, "not_found").await;
            assert_problem(by_sku(&app, token, sku).await, 404, "not_found").await;
            assert_problem(
                by_sku(&app, token, &sku.to_lowercase()).await,
                404,
                "not_found",
            )
            .await;
        }
        // Active products by id and by SKU in any case.
        let shirt = ok_json(by_id(&app, token, &seeded.ids["SHIRT"]).await).await;
        assert_eq!(shirt["sku"], "SHIRT");
        assert_eq!(shirt["status"], "active");
        assert_eq!(shirt["category_id"], seeded.apparel.as_str());
        assert_eq!(shirt["tags"], json!(["linen", "summer"]));
        assert_eq!(shirt["attributes"], json!({"color": "white", "size": "m"}));
        assert_eq!(shirt["price"], json!({"amount": 3000, "currency": "EUR"}));
        let by_lower_sku = ok_json(by_sku(&app, token, "shirt").await).await;
        assert_eq!(by_lower_sku, shirt);
    }

    // Admins read every status.
    for sku in ["JACKET", "BOOT"] {
        let found = ok_json(by_id(&app, Some(&admin.access_token), &seeded.ids[sku]).await).await;
        assert_eq!(found["sku"], sku);
        let found = ok_json(by_sku(&app, Some(&admin.access_token), sku).await).await;
        assert_eq!(found["sku"], sku);
    }

    // Restoring makes a draft: still hidden. Activating shows it again, everywhere.
    let boot = &seeded.ids["BOOT"];
    let restored = transition(&app, &admin, boot, "restore").await;
    assert_eq!(restored["status"], "draft");
    assert_problem(by_id(&app, None, boot).await, 404, "not_found").await;
    assert!(!matching(&app, None, &[]).await.contains("BOOT"));
    let activated = patch_product(&app, &admin, boot, json!({"status": "active"})).await;
    assert_eq!(activated.status(), StatusCode::OK);
    assert_eq!(
        ok_json(by_id(&app, None, boot).await).await["status"],
        "active"
    );
    assert_eq!(
        ok_json(by_sku(&app, None, "BOOT").await).await["id"],
        boot.as_str()
    );
    assert!(matching(&app, None, &[]).await.contains("BOOT"));
    assert!(matching(&app, None, &[("category", seeded.shoes.as_str())])
        .await
        .contains("BOOT"));

    // Archiving an active product hides it at once.
    let shirt = &seeded.ids["SHIRT"];
    transition(&app, &admin, shirt, "archive").await;
    assert_problem(by_id(&app, None, shirt).await, 404, "not_found").await;
    assert_problem(by_sku(&app, None, "SHIRT").await, 404, "not_found").await;
    assert!(!matching(&app, None, &[]).await.contains("SHIRT"));
    assert!(!matching(&app, None, &[("q", "linen")])
        .await
        .contains("SHIRT"));
    assert_eq!(
        matching(&app, Some(&admin.access_token), &[("status", "archived")]).await,
        set(&["SHIRT"])
    );
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

/// The imported products as an admin reads them, by SKU.
async fn imported(app: &TestApp, admin: &Session) -> BTreeMap<&'static str, Value> {
    let mut products = BTreeMap::new();
    for sku in ["IMP-1", "IMP-4", "IMP-7", "JS-1", "JS-5"] {
        let response = by_sku(app, Some(&admin.access_token), sku).await;
        if response.status() == StatusCode::OK {
            products.insert(sku, response.json::<Value>().await.unwrap());
        }
    }
    products
}

const CSV_HEADER: &str =
    "sku,name,description,price_amount,currency,category,tags,attributes,images,status";

async fn csv_and_json_imports_are_idempotent_by_sku(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let garden = create_category(&app, &admin, "Garden Tools", None).await;
    assert_eq!(garden["slug"], "garden-tools");

    let csv_rows = [
        "IMP-1,Rake Deluxe,A wide rake,1500,EUR,garden-tools,garden|tools,material=steel|length=150cm,https://img.example.com/rake.jpg,active",
        "IMP-2,Bad Price,,abc,EUR,,,,,",
        "IMP-3,Shovel,,2500,XYZ,,,,,",
        "IMP-4,Hoe,\"Two\nlines\",900,eur,garden-tools,,,,draft",
        "IMP-5,Trowel,,-5,EUR,,,,,",
        "IMP-6,Pruner,,1200,EUR,no-such-slug,,,,",
        "imp-1,Duplicate Rake,,100,EUR,,,,,",
        "IMP-7,Gloves,,800,EUR,,,color=green,,active",
        "IMP-8,Bad Attribute,,800,EUR,,,colour,,",
    ];
    let csv = format!("{CSV_HEADER}\n{}\n", csv_rows.join("\n"));
    let report = import_report(&app, &admin, "text/csv", &csv).await;
    assert_eq!(counts(&report), (3, 0, 0, 6), "{report}");
    // IMP-4's description spans lines 5 and 6, so the rows after it are a line later.
    assert_eq!(error_lines(&report), [3, 4, 7, 8, 9, 11], "{report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors[1]["sku"], "IMP-3");
    assert!(errors[1]["errors"].to_string().contains("price.currency"));
    assert!(errors[3]["errors"].to_string().contains("category"));
    assert!(errors[4]["errors"].to_string().contains("earlier"));

    let rake = ok_json(by_sku(&app, None, "IMP-1").await).await;
    assert_eq!(rake["name"], "Rake Deluxe");
    assert_eq!(rake["category_id"], garden["id"]);
    assert_eq!(rake["tags"], json!(["garden", "tools"]));
    assert_eq!(
        rake["attributes"],
        json!({"length": "150cm", "material": "steel"})
    );
    assert_eq!(rake["images"], json!(["https://img.example.com/rake.jpg"]));
    assert_eq!(rake["price"], json!({"amount": 1500, "currency": "EUR"}));
    assert_problem(by_sku(&app, None, "IMP-4").await, 404, "not_found").await;
    let hoe = ok_json(by_sku(&app, Some(&admin.access_token), "IMP-4").await).await;
    assert_eq!(hoe["status"], "draft");
    assert_eq!(hoe["description"], "Two\nlines");
    assert_eq!(hoe["price"]["currency"], "EUR");
    for missing in ["IMP-2", "IMP-3", "IMP-5", "IMP-6", "IMP-8"] {
        assert_problem(
            by_sku(&app, Some(&admin.access_token), missing).await,
            404,
            "not_found",
        )
        .await;
    }

    // The same import again changes nothing and says so.
    let snapshot = |app| imported(app, &admin);
    let before = snapshot(&app).await;
    let again = import_report(&app, &admin, "text/csv", &csv).await;
    assert_eq!(counts(&again), (0, 0, 3, 6), "{again}");
    assert_eq!(error_lines(&again), error_lines(&report));
    assert_eq!(snapshot(&app).await, before, "a re-import changes nothing");

    // One changed row is updated; the others stay unchanged.
    let changed = csv.replace(
        "Rake Deluxe,A wide rake,1500",
        "Rake Deluxe,A wide rake,1600",
    );
    let update = import_report(&app, &admin, "text/csv", &changed).await;
    assert_eq!(counts(&update), (0, 1, 2, 6), "{update}");
    let rake_after = ok_json(by_sku(&app, None, "IMP-1").await).await;
    assert_eq!(rake_after["price"]["amount"], 1600);
    assert_eq!(rake_after["id"], rake["id"], "updated in place, by SKU");
    assert_eq!(rake_after["created_at"], rake["created_at"]);
    let search_rake = matching(&app, None, &[("q", "rake")]).await;
    assert_eq!(search_rake, set(&["IMP-1"]));

    // JSON: positions are 1-based; bad rows are reported, good rows kept.
    let rows = json!([
        {"sku": "JS-1", "name": "Watering Can", "description": "Ten litres.",
         "price": {"amount": 1999, "currency": "EUR"}, "category": "garden-tools",
         "tags": ["water", "Garden"], "attributes": {"volume": "10l"}, "status": "active"},
        {"sku": "JS-2", "name": "", "price": {"amount": 100, "currency": "EUR"}},
        {"sku": "JS-3", "name": "Hose", "price": {"amount": 100}},
        {"sku": "JS-4", "name": "Sprinkler", "price": {"amount": 100, "currency": "EUR"}, "colour": "red"},
        {"sku": "js-5", "name": "Flower Pot", "price": {"amount": 500, "currency": "eur"}, "status": "active"},
        {"sku": "JS-6", "name": "Seed Tray", "price": {"amount": 1_000_000_000_001_i64, "currency": "EUR"}},
    ]);
    let json_body = rows.to_string();
    let report = import_report(&app, &admin, "application/json", &json_body).await;
    assert_eq!(counts(&report), (2, 0, 0, 4), "{report}");
    assert_eq!(error_lines(&report), [2, 3, 4, 6], "{report}");
    assert_eq!(report["errors"][0]["sku"], "JS-2");
    assert!(report["errors"][0]["errors"].to_string().contains("name"));
    assert!(report["errors"][2]["errors"].to_string().contains("colour"));
    let can = ok_json(by_sku(&app, None, "JS-1").await).await;
    assert_eq!(can["category_id"], garden["id"]);
    assert_eq!(can["tags"], json!(["garden", "water"]));
    let pot = ok_json(by_sku(&app, None, "JS-5").await).await;
    assert_eq!(pot["sku"], "JS-5");
    assert_eq!(pot["price"], json!({"amount": 500, "currency": "EUR"}));

    let before = snapshot(&app).await;
    let again = import_report(&app, &admin, "application/json; charset=utf-8", &json_body).await;
    assert_eq!(counts(&again), (0, 0, 2, 4), "{again}");
    assert_eq!(snapshot(&app).await, before, "a re-import changes nothing");

    let changed = json_body.replace("Flower Pot", "Flower Pot XL");
    let update = import_report(&app, &admin, "application/json", &changed).await;
    assert_eq!(counts(&update), (0, 1, 1, 4), "{update}");
    assert_eq!(
        ok_json(by_sku(&app, None, "JS-5").await).await["name"],
        "Flower Pot XL"
    );
    assert_eq!(
        ok_json(by_sku(&app, None, "JS-1").await).await,
        before["JS-1"]
    );
    // The category facet knows the imported products.
    let in_garden = matching(&app, None, &[("category", garden["id"].as_str().unwrap())]).await;
    assert_eq!(in_garden, set(&["IMP-1", "JS-1"]));
}

/// Tags may hold any letter and attribute names `_` and digits. Re-importing a product
/// whose tags or attribute names sort differently under the database's collation than
/// in byte order must still be "unchanged" (and change nothing).
async fn reimport_of_accented_tags_is_unchanged(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let rows = [
        (
            "accented tags",
            json!({"sku": "FR-1", "name": "Chapeau de paille", "price": {"amount": 2500, "currency": "EUR"},
                   "tags": ["été", "plage"], "status": "active"}),
        ),
        (
            "attribute names with _ and digits",
            json!({"sku": "FR-2", "name": "Parasol", "price": {"amount": 4500, "currency": "EUR"},
                   "tags": ["sun"], "attributes": {"size_eu": "40", "size2": "L"}, "status": "active"}),
        ),
        (
            "plain",
            json!({"sku": "FR-3", "name": "Towel", "price": {"amount": 1500, "currency": "EUR"},
                   "tags": ["beach", "cotton"], "attributes": {"color": "blue"}, "status": "active"}),
        ),
    ];
    let mut problems = Vec::new();
    for (label, row) in rows {
        let body = json!([row]).to_string();
        let first = import_report(&app, &admin, "application/json", &body).await;
        assert_eq!(counts(&first), (1, 0, 0, 0), "{label}: {first}");
        let sku = row["sku"].as_str().unwrap();
        let stored = ok_json(by_sku(&app, None, sku).await).await;
        let again = import_report(&app, &admin, "application/json", &body).await;
        if counts(&again) != (0, 0, 1, 0) {
            problems.push(format!("{label}: re-import reported {again}"));
        }
        let after = ok_json(by_sku(&app, None, sku).await).await;
        if after != stored {
            problems.push(format!("{label}: re-import changed {stored} to {after}"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        matching(&app, None, &[("tag", "été")]).await,
        set(&["FR-1"])
    );
}

/// Two tags that differ only by an accent are two tags (validation keeps both). They are
/// either stored as given or refused as invalid tags: never a SKU conflict or a 500.
async fn tags_differing_only_by_accents(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let mut problems = Vec::new();
    let body = with(
        product("CAFE-1", "Coffee Grinder", 3000),
        json!({"tags": ["cafe", "café"]}),
    );
    let response = app
        .post_json_as("/api/v1/admin/products", &admin.access_token, &body)
        .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    match status {
        StatusCode::CREATED => {
            assert_eq!(answer["tags"], json!(["cafe", "café"]));
            let stored = ok_json(by_sku(&app, None, "CAFE-1").await).await;
            assert_eq!(stored["tags"], json!(["cafe", "café"]));
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert_eq!(answer["errors"][0]["field"], "tags", "{answer}")
        }
        other => problems.push(format!("create with tags cafe, café: {other} {answer}")),
    }

    let plain = create(
        &app,
        &admin,
        with(
            product("CREME-1", "Custard", 500),
            json!({"tags": ["creme"]}),
        ),
    )
    .await;
    let response = patch_product(
        &app,
        &admin,
        &id_of(&plain),
        json!({"tags": ["creme", "crème"]}),
    )
    .await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    match status {
        StatusCode::OK => assert_eq!(answer["tags"], json!(["creme", "crème"])),
        StatusCode::UNPROCESSABLE_ENTITY => {
            assert_eq!(answer["errors"][0]["field"], "tags", "{answer}")
        }
        other => problems.push(format!("patch to tags creme, crème: {other} {answer}")),
    }
    // A refused change leaves the product as it was.
    let stored = ok_json(by_id(&app, None, &id_of(&plain)).await).await;
    if stored["tags"] != json!(["creme"]) && stored["tags"] != json!(["creme", "crème"]) {
        problems.push(format!("after the patch: {stored}"));
    }
    assert!(problems.is_empty(), "{problems:#?}");
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

// ---------------------------------------------------------------- bad input (SQLite)

#[actix_web::test]
async fn invalid_products_are_refused_with_the_field() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();
    let post = |body: Value| {
        let request = app
            .client
            .post(app.url("/api/v1/admin/products"))
            .bearer_auth(token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    for (body, field) in [
        (
            json!({"sku": "N-1", "name": "Neg", "price": {"amount": -1, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"sku": "N-2", "name": "Huge", "price": {"amount": 1_000_000_000_001_i64, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"sku": "N-3", "name": "Unknown", "price": {"amount": 1, "currency": "XYZ"}}),
            "price.currency",
        ),
        (
            json!({"sku": "N-4", "name": "Euro sign", "price": {"amount": 1, "currency": "€"}}),
            "price.currency",
        ),
        (
            json!({"sku": "N-5", "name": "x".repeat(201), "price": {"amount": 1, "currency": "EUR"}}),
            "name",
        ),
        (
            json!({"sku": "N-6", "name": "   ", "price": {"amount": 1, "currency": "EUR"}}),
            "name",
        ),
        (
            json!({"sku": "N-7", "name": "Long", "description": "d".repeat(5001), "price": {"amount": 1, "currency": "EUR"}}),
            "description",
        ),
        (
            json!({"sku": "N 8", "name": "Space", "price": {"amount": 1, "currency": "EUR"}}),
            "sku",
        ),
        (
            json!({"sku": "N-9", "name": "Tagged", "price": {"amount": 1, "currency": "EUR"}, "tags": ["two words"]}),
            "tags",
        ),
        (
            json!({"sku": "N-10", "name": "Pictured", "price": {"amount": 1, "currency": "EUR"}, "images": ["javascript:alert(1)"]}),
            "images",
        ),
        (
            json!({"sku": "N-11", "name": "Lost", "price": {"amount": 1, "currency": "EUR"}, "category_id": souk_db::ids::new_id()}),
            "category_id",
        ),
        (
            json!({"sku": "N-12", "name": "Slugged", "price": {"amount": 1, "currency": "EUR"}, "category": "garden"}),
            "category",
        ),
    ] {
        let problem = assert_problem(post(body.clone()).await, 422, "validation_failed").await;
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|error| error["field"] == field),
            "{field}: {problem}"
        );
    }
    // At the limits: accepted.
    let at_limit = post(
        json!({"sku": "L-1", "name": "n".repeat(200), "description": "d".repeat(5000),
        "price": {"amount": 0, "currency": "jpy"}}),
    )
    .await;
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    let location = at_limit.headers()["location"].to_str().unwrap().to_owned();
    let at_limit: Value = at_limit.json().await.unwrap();
    assert_eq!(location, format!("/api/v1/products/{}", id_of(&at_limit)));
    assert_eq!(at_limit["status"], "draft", "draft by default");
    assert_eq!(at_limit["price"]["currency"], "JPY");

    // SKUs are upper-cased, so another case is the same SKU.
    let first = post(product("abc-1", "First", 100)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["sku"], "ABC-1");
    for sku in ["ABC-1", "abc-1", " Abc-1 "] {
        assert_problem(post(product(sku, "Second", 200)).await, 409, "sku_taken").await;
    }
    assert_eq!(
        matching(&app, Some(token), &[]).await,
        set(&["L-1", "ABC-1"]),
        "nothing refused was stored"
    );

    // Malformed and wrongly shaped bodies.
    let raw = |content_type: &'static str, body: &'static str| {
        let request = app
            .client
            .post(app.url("/api/v1/admin/products"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        async move { request.send().await.unwrap() }
    };
    assert_problem(
        raw("application/json", "{\"sku\": ").await,
        400,
        "malformed_json",
    )
    .await;
    assert_problem(raw("application/json", "").await, 400, "malformed_json").await;
    assert_problem(raw("application/json", "[]").await, 400, "invalid_body").await;
    assert_problem(
        raw("text/plain", "{\"sku\": \"T-1\"}").await,
        415,
        "unsupported_media_type",
    )
    .await;
    let unknown = assert_problem(
        post(with(product("U-1", "Unknown", 1), json!({"colour": "red"}))).await,
        400,
        "invalid_body",
    )
    .await;
    assert!(unknown["detail"].as_str().unwrap().contains("colour"));
    let wrong_type = assert_problem(
        post(json!({"sku": "W-1", "name": "Float", "price": {"amount": 10.5, "currency": "EUR"}}))
            .await,
        400,
        "invalid_body",
    )
    .await;
    assert!(wrong_type["detail"].as_str().unwrap().contains("amount"));
}

#[actix_web::test]
async fn patches_validate_and_skus_are_immutable() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let created = create(
        &app,
        &admin,
        with(
            product("PATCH-1", "Patched Lamp", 1000),
            json!({"tags": ["lamp"]}),
        ),
    )
    .await;
    let id = id_of(&created);
    for body in [
        json!({"sku": "OTHER-1"}),
        json!({"sku": "PATCH-1"}),
        json!({"name": "Fine", "id": souk_db::ids::new_id()}),
        json!({"created_at": "2020-01-01T00:00:00Z"}),
        json!({"price": {"amount": 5}}),
        json!({"price": {"amount": 5, "currency": "EUR", "vat": 1}}),
        json!({"status": "deleted"}),
    ] {
        assert_problem(
            patch_product(&app, &admin, &id, body).await,
            400,
            "invalid_body",
        )
        .await;
    }
    let sku_refused = assert_problem(
        patch_product(&app, &admin, &id, json!({"sku": "OTHER-1"})).await,
        400,
        "invalid_body",
    )
    .await;
    assert!(sku_refused["detail"].as_str().unwrap().contains("sku"));
    for (body, field) in [
        (
            json!({"price": {"amount": -5, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"price": {"amount": 5, "currency": "ZZZ"}}),
            "price.currency",
        ),
        (json!({"name": "y".repeat(201)}), "name"),
        (json!({"description": "z".repeat(5001)}), "description"),
        (
            json!({"category_id": souk_db::ids::new_id()}),
            "category_id",
        ),
    ] {
        let problem = assert_problem(
            patch_product(&app, &admin, &id, body).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // None of the refused changes happened.
    let unchanged = ok_json(by_id(&app, Some(&admin.access_token), &id).await).await;
    assert_eq!(unchanged, created);

    // A good patch changes only what it names; null takes the product out of its category.
    let category = create_category(&app, &admin, "Lighting", None).await;
    let moved = ok_json(
        patch_product(
            &app,
            &admin,
            &id,
            json!({"category_id": category["id"], "price": {"amount": 1200, "currency": "usd"}}),
        )
        .await,
    )
    .await;
    assert_eq!(moved["category_id"], category["id"]);
    assert_eq!(moved["price"], json!({"amount": 1200, "currency": "USD"}));
    assert_eq!(moved["sku"], "PATCH-1");
    assert_eq!(moved["name"], "Patched Lamp");
    assert_eq!(moved["tags"], json!(["lamp"]));
    let out = ok_json(patch_product(&app, &admin, &id, json!({"category_id": null})).await).await;
    assert_eq!(out["category_id"], Value::Null);
    assert_eq!(out["price"]["amount"], 1200);
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

#[actix_web::test]
async fn unknown_and_malformed_ids_are_not_found() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();
    let real = create(&app, &admin, product("REAL-1", "Real Thing", 100)).await;
    let unknown = souk_db::ids::new_id();
    let upper = id_of(&real).to_uppercase();
    for id in [
        unknown.as_str(),
        "not-an-id",
        "1",
        "%27%20OR%201%3D1",
        upper.as_str(),
        "00000000-0000-0000-0000-000000000000",
    ] {
        for token in [None, Some(token)] {
            assert_problem(by_id(&app, token, id).await, 404, "not_found").await;
        }
        assert_problem(
            patch_product(&app, &admin, id, json!({"name": "Nope"})).await,
            404,
            "not_found",
        )
        .await;
        for action in ["archive", "restore"] {
            let response = app
                .post_json_as(
                    &format!("/api/v1/admin/products/{id}/{action}"),
                    token,
                    &json!({}),
                )
                .await;
            assert_problem(response, 404, "not_found").await;
        }
        assert_problem(
            send(
                &app,
                Method::PATCH,
                &format!("/api/v1/admin/categories/{id}"),
                Some(token),
                Some(&json!({"name": "Nope"})),
            )
            .await,
            404,
            "not_found",
        )
        .await;
        assert_problem(
            send(
                &app,
                Method::DELETE,
                &format!("/api/v1/admin/categories/{id}"),
                Some(token),
                None,
            )
            .await,
            404,
            "not_found",
        )
        .await;
    }
    for sku in [
        "NOPE-1",
        "x",
        "%25",
        "A%20B",
        "%27%20OR%20%271%27%3D%271",
        "-AB",
    ] {
        assert_problem(by_sku(&app, Some(token), sku).await, 404, "not_found").await;
    }
    // The real one is untouched.
    assert_eq!(
        ok_json(by_id(&app, Some(token), &id_of(&real)).await).await,
        real
    );
}

#[actix_web::test]
async fn admin_catalog_paths_need_an_admin() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer("nosy").await;
    let product_id = id_of(&create(&app, &admin, product("MINE-1", "Mine", 100)).await);
    let category_id = id_of(&create_category(&app, &admin, "Guarded", None).await);
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/v1/admin/products".to_owned(),
            Some(product("THEIRS-1", "Theirs", 1)),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/products/{product_id}"),
            Some(json!({"name": "Hijacked"})),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/products/{product_id}/archive"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/api/v1/admin/products/{product_id}/restore"),
            Some(json!({})),
        ),
        (
            Method::POST,
            "/api/v1/admin/products/import".to_owned(),
            Some(json!([product("THEIRS-2", "Theirs", 1)])),
        ),
        (
            Method::POST,
            "/api/v1/admin/categories".to_owned(),
            Some(json!({"name": "Theirs"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/admin/categories/{category_id}"),
            Some(json!({"name": "Hijacked"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin/categories/{category_id}"),
            None,
        ),
    ];
    for (method, path, body) in &calls {
        let anonymous = send(&app, method.clone(), path, None, body.as_ref()).await;
        assert_problem(anonymous, 401, "missing_token").await;
        let as_customer = send(
            &app,
            method.clone(),
            path,
            Some(&customer.access_token),
            body.as_ref(),
        )
        .await;
        assert_problem(as_customer, 403, "forbidden").await;
        let bad_token = send(&app, method.clone(), path, Some("garbage"), body.as_ref()).await;
        assert_problem(bad_token, 401, "invalid_token").await;
    }
    // CSV imports are refused before their body is read.
    let csv = app
        .client
        .post(app.url("/api/v1/admin/products/import"))
        .bearer_auth(&customer.access_token)
        .header("content-type", "text/csv")
        .body(format!("{CSV_HEADER}\nTHEIRS-3,Theirs,,1,EUR,,,,,active\n"))
        .send()
        .await
        .unwrap();
    assert_problem(csv, 403, "forbidden").await;

    // Nothing changed.
    let mine = ok_json(by_id(&app, None, &product_id).await).await;
    assert_eq!(mine["name"], "Mine");
    assert_eq!(mine["status"], "active");
    assert_eq!(
        matching(&app, Some(&admin.access_token), &[]).await,
        set(&["MINE-1"])
    );
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree["items"].as_array().unwrap().len(), 1);
    assert_eq!(tree["items"][0]["name"], "Guarded");
}

#[actix_web::test]
async fn categories_refuse_cycles_taken_slugs_and_non_empty_deletes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();
    let outdoor = create_category(&app, &admin, "Outdoor & Camping", None).await;
    assert_eq!(outdoor["slug"], "outdoor-camping");
    let tents = create_category(&app, &admin, "Tents", Some(outdoor["id"].as_str().unwrap())).await;
    let domes = create_category(
        &app,
        &admin,
        "Dome Tents",
        Some(tents["id"].as_str().unwrap()),
    )
    .await;
    let patch_category = |id: &Value, body: Value| {
        let request = app
            .client
            .patch(app.url(&format!(
                "/api/v1/admin/categories/{}",
                id.as_str().unwrap()
            )))
            .bearer_auth(token)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let delete_category = |id: &Value| {
        let request = app
            .client
            .delete(app.url(&format!(
                "/api/v1/admin/categories/{}",
                id.as_str().unwrap()
            )))
            .bearer_auth(token);
        async move { request.send().await.unwrap() }
    };

    // Cycles: under itself, its child, its grandchild.
    for parent in [&outdoor["id"], &tents["id"], &domes["id"]] {
        assert_problem(
            patch_category(&outdoor["id"], json!({"parent_id": parent})).await,
            409,
            "category_cycle",
        )
        .await;
    }
    assert_problem(
        patch_category(&tents["id"], json!({"parent_id": domes["id"]})).await,
        409,
        "category_cycle",
    )
    .await;
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree["items"].as_array().unwrap().len(), 1, "{tree}");
    assert_eq!(tree["items"][0]["id"], outdoor["id"]);
    assert_eq!(tree["items"][0]["children"][0]["id"], tents["id"]);
    assert_eq!(
        tree["items"][0]["children"][0]["children"][0]["id"],
        domes["id"]
    );

    // Slugs are unique, whatever their case.
    for body in [
        json!({"name": "Outdoor & Camping"}),
        json!({"name": "Other", "slug": "outdoor-camping"}),
        json!({"name": "Other", "slug": "OUTDOOR-CAMPING"}),
    ] {
        assert_problem(
            app.post_json_as("/api/v1/admin/categories", token, &body)
                .await,
            409,
            "slug_taken",
        )
        .await;
    }
    assert_problem(
        patch_category(&tents["id"], json!({"slug": "outdoor-camping"})).await,
        409,
        "slug_taken",
    )
    .await;
    for (body, field) in [
        (json!({"name": "Bad", "slug": "no spaces"}), "slug"),
        (json!({"name": "!!!"}), "slug"),
        (json!({"name": ""}), "name"),
        (
            json!({"name": "Orphan", "parent_id": souk_db::ids::new_id()}),
            "parent_id",
        ),
    ] {
        let problem = assert_problem(
            app.post_json_as("/api/v1/admin/categories", token, &body)
                .await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    assert_problem(
        app.post_json_as(
            "/api/v1/admin/categories",
            token,
            &json!({"name": "X", "icon": "x"}),
        )
        .await,
        400,
        "invalid_body",
    )
    .await;

    // Not empty: a child, then a product.
    assert_problem(
        delete_category(&tents["id"]).await,
        409,
        "category_not_empty",
    )
    .await;
    let tent = create(
        &app,
        &admin,
        with(
            product("TENT-1", "Dome Tent", 20000),
            json!({"category_id": domes["id"]}),
        ),
    )
    .await;
    assert_problem(
        delete_category(&domes["id"]).await,
        409,
        "category_not_empty",
    )
    .await;
    // Archived products still count.
    transition(&app, &admin, &id_of(&tent), "archive").await;
    assert_problem(
        delete_category(&domes["id"]).await,
        409,
        "category_not_empty",
    )
    .await;
    let moved = patch_product(
        &app,
        &admin,
        &id_of(&tent),
        json!({"category_id": tents["id"]}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_eq!(
        delete_category(&domes["id"]).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(delete_category(&domes["id"]).await, 404, "not_found").await;
    assert_problem(
        delete_category(&tents["id"]).await,
        409,
        "category_not_empty",
    )
    .await;

    // A legal move: Tents becomes a root; renaming keeps the slug unless given.
    let moved = patch_category(
        &tents["id"],
        json!({"parent_id": null, "name": "All Tents"}),
    )
    .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let moved: Value = moved.json().await.unwrap();
    assert_eq!(moved["parent_id"], Value::Null);
    assert_eq!(moved["slug"], "tents");
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    let roots: BTreeSet<String> = tree["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|root| root["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roots, set(&["All Tents", "Outdoor & Camping"]));
    // Now Outdoor may go under Tents.
    let under = patch_category(&outdoor["id"], json!({"parent_id": tents["id"]})).await;
    assert_eq!(under.status(), StatusCode::OK);
}

#[actix_web::test]
async fn imports_need_json_or_csv() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let csv = format!("{CSV_HEADER}\nCT-1,Thing,,100,EUR,,,,,active\n");
    for content_type in [
        "text/plain",
        "application/xml",
        "multipart/form-data",
        "text/html",
    ] {
        assert_problem(
            import(&app, &admin, content_type, &csv).await,
            415,
            "unsupported_media_type",
        )
        .await;
    }
    let no_type = app
        .client
        .post(app.url("/api/v1/admin/products/import"))
        .bearer_auth(&admin.access_token)
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_problem(no_type, 415, "unsupported_media_type").await;
    assert_problem(
        import(
            &app,
            &admin,
            "text/csv",
            "sku,name,currency\nA-1,Thing,EUR\n",
        )
        .await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        import(&app, &admin, "application/json", "{\"sku\": \"A-1\"}").await,
        400,
        "invalid_body",
    )
    .await;
    assert_problem(
        import(&app, &admin, "application/json", "[{\"sku\": ").await,
        400,
        "malformed_json",
    )
    .await;
    assert!(matching(&app, Some(&admin.access_token), &[])
        .await
        .is_empty());
    // The right type, with parameters and in any case, is accepted.
    let report = import_report(&app, &admin, "Text/CSV; charset=utf-8", &csv).await;
    assert_eq!(counts(&report), (1, 0, 0, 0), "{report}");
}

/// A row the CSV reader itself rejects (wrong number of fields) is reported with its
/// line in the file, like every other bad row, even after a quoted multi-line field.
#[actix_web::test]
async fn csv_errors_name_the_line_of_the_file() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let csv = "sku,name,description,price_amount,currency\n\
               ML-1,Kettle,\"Two\nlines\",1000,EUR\n\
               ML-2,Broken,row,with,too,many,fields\n\
               ML-3,Priced,,abc,EUR\n\
               ML-4,Fine,,100,EUR\n";
    let report = import_report(&app, &admin, "text/csv", csv).await;
    assert_eq!(counts(&report), (2, 0, 0, 2), "{report}");
    assert_eq!(error_lines(&report), [4, 5], "{report}");
}

// ---------------------------------------------------------------- the cache

/// Reads twice (the second from the cache), writes through the admin API, and checks
/// the very next read shows the write: by id, by SKU (cached), in searches (the index,
/// not cached) and in the tree.
async fn reads_are_never_stale(app: &TestApp) {
    let admin = app.admin().await;
    let lamp = create(
        app,
        &admin,
        with(
            product("CACHE-1", "Cached Lamp", 1000),
            json!({"tags": ["light"]}),
        ),
    )
    .await;
    let id = id_of(&lamp);
    let hits_before = cache_requests(app, "hit").await;
    for _ in 0..2 {
        assert_eq!(
            ok_json(by_id(app, None, &id).await).await["price"]["amount"],
            1000
        );
        assert_eq!(
            ok_json(by_sku(app, None, "CACHE-1").await).await["id"],
            id.as_str()
        );
        let page = search(app, None, &[("tag", "light")]).await;
        assert_eq!(items(&page)[0]["price"]["amount"], 1000);
    }
    let hits = cache_requests(app, "hit").await - hits_before;
    assert!(hits >= 2.0, "the second reads were cache hits ({hits})");

    // Update: the next read of each shows it.
    let updated = patch_product(
        app,
        &admin,
        &id,
        json!({"price": {"amount": 1500, "currency": "EUR"}}),
    )
    .await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(
        ok_json(by_id(app, None, &id).await).await["price"]["amount"],
        1500
    );
    assert_eq!(
        ok_json(by_sku(app, None, "CACHE-1").await).await["price"]["amount"],
        1500
    );
    let page = search(app, None, &[("tag", "light")]).await;
    assert_eq!(items(&page)[0]["price"]["amount"], 1500);
    assert_eq!(page["total"], 1);

    // Read again (cached), then archive: gone at once for shoppers, visible to admins.
    assert_eq!(
        ok_json(by_id(app, None, &id).await).await["status"],
        "active"
    );
    search(app, None, &[("tag", "light")]).await;
    transition(app, &admin, &id, "archive").await;
    assert_problem(by_id(app, None, &id).await, 404, "not_found").await;
    assert_problem(by_sku(app, None, "CACHE-1").await, 404, "not_found").await;
    let page = search(app, None, &[("tag", "light")]).await;
    assert!(items(&page).is_empty(), "{page}");
    assert_eq!(page["total"], 0);
    assert_eq!(
        ok_json(by_id(app, Some(&admin.access_token), &id).await).await["status"],
        "archived"
    );
    // The admin's read is cached; a shopper still may not see it.
    assert_problem(by_id(app, None, &id).await, 404, "not_found").await;

    // Restore + activate: back at once.
    transition(app, &admin, &id, "restore").await;
    assert_problem(by_id(app, None, &id).await, 404, "not_found").await;
    patch_product(app, &admin, &id, json!({"status": "active"})).await;
    assert_eq!(
        ok_json(by_id(app, None, &id).await).await["status"],
        "active"
    );
    assert_eq!(
        items(&search(app, None, &[("tag", "light")]).await).len(),
        1
    );

    // A new product shows in a search that was cached.
    search(app, None, &[("sort", "price_asc")]).await;
    create(app, &admin, product("CACHE-2", "Cheap Candle", 10)).await;
    let page = search(app, None, &[("sort", "price_asc")]).await;
    assert_eq!(items(&page)[0]["sku"], "CACHE-2");
    // A SKU looked up before it existed is found once it does.
    assert_problem(by_sku(app, None, "CACHE-3").await, 404, "not_found").await;
    create(app, &admin, product("CACHE-3", "Late Lantern", 10)).await;
    assert_eq!(
        ok_json(by_sku(app, None, "CACHE-3").await).await["name"],
        "Late Lantern"
    );

    // Imports invalidate too.
    let csv = format!("{CSV_HEADER}\nCACHE-3,Late Lantern,,20,EUR,,,,,active\n");
    let report = import_report(app, &admin, "text/csv", &csv).await;
    assert_eq!(counts(&report), (0, 1, 0, 0), "{report}");
    assert_eq!(
        ok_json(by_sku(app, None, "CACHE-3").await).await["price"]["amount"],
        20
    );

    // Categories: tree and filter.
    let category = create_category(app, &admin, "Lights", None).await;
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree["items"][0]["name"], "Lights");
    let renamed = send(
        app,
        Method::PATCH,
        &format!("/api/v1/admin/categories/{}", id_of(&category)),
        Some(&admin.access_token),
        Some(&json!({"name": "Lamps"})),
    )
    .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree["items"][0]["name"], "Lamps");
    assert!(matching(app, None, &[("category", &id_of(&category))])
        .await
        .is_empty());
    patch_product(app, &admin, &id, json!({"category_id": id_of(&category)})).await;
    assert_eq!(
        matching(app, None, &[("category", &id_of(&category))]).await,
        set(&["CACHE-1"])
    );
}

#[actix_web::test]
async fn redis_cache_is_never_stale() {
    let prefix = own_redis_prefix();
    let configured = prefix.clone();
    let app = spawn_app_with_redis(move |config| config.redis.key_prefix = configured).await;
    assert_eq!(app.state.catalog.cache().kind(), "redis");
    reads_are_never_stale(&app).await;

    // The entries and the generation live in Redis, under the app's prefix.
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}catalog:*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(!keys.is_empty(), "cached entries are in redis");
    let generation: Option<u64> = redis::cmd("GET")
        .arg(format!("{prefix}gen:catalog"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        generation.unwrap_or(0) >= 5,
        "every write bumped the generation: {generation:?}"
    );
}

#[actix_web::test]
async fn in_process_cache_is_never_stale() {
    let app = spawn_app().await;
    assert_eq!(app.state.catalog.cache().kind(), "local");
    reads_are_never_stale(&app).await;
}

/// A private redis-server, killed when dropped.
struct RedisServer {
    child: std::process::Child,
    port: u16,
}

impl RedisServer {
    async fn start() -> Self {
        let port = dead_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = Self { child, port };
        // Wait until it answers PING.
        let client = redis::Client::open(server.url()).unwrap();
        for _ in 0..200 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                let pong: Result<String, _> = redis::cmd("PING").query_async(&mut connection).await;
                if pong.is_ok() {
                    return server;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} did not start");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

#[actix_web::test]
async fn reads_and_writes_survive_redis_dying() {
    let mut redis_server = RedisServer::start().await;
    let url = redis_server.url();
    let app = spawn_app_with(TestBackend::Sqlite, move |config| {
        config.redis.url = Some(url);
    })
    .await;
    let admin = app.admin().await;
    let lamp = create(
        &app,
        &admin,
        with(
            product("DIE-1", "Sturdy Lamp", 1000),
            json!({"tags": ["sturdy"]}),
        ),
    )
    .await;
    let id = id_of(&lamp);

    // Warm the cache.
    let hits_before = cache_requests(&app, "hit").await;
    for _ in 0..2 {
        assert_eq!(ok_json(by_id(&app, None, &id).await).await, lamp);
        assert_eq!(
            ok_json(by_sku(&app, None, "DIE-1").await).await["id"],
            id.as_str()
        );
        assert_eq!(
            items(&search(&app, None, &[("tag", "sturdy")]).await).len(),
            1
        );
    }
    assert!(cache_requests(&app, "hit").await - hits_before >= 2.0);
    let client = redis::Client::open(redis_server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let size: u64 = redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(size > 0, "the cache is warm in redis");
    drop(connection);

    redis_server.kill();
    let errors_before = cache_requests(&app, "error").await;

    // Reads: from the database, correct.
    assert_eq!(ok_json(by_id(&app, None, &id).await).await, lamp);
    assert_eq!(ok_json(by_sku(&app, None, "DIE-1").await).await, lamp);
    let page = search(&app, None, &[("tag", "sturdy")]).await;
    assert_eq!(items(&page).len(), 1);
    assert_eq!(items(&page)[0], lamp);
    let tree = app.get("/api/v1/categories").await;
    assert_eq!(tree.status(), StatusCode::OK);

    // Writes succeed, and the next reads show them.
    let updated = ok_json(
        patch_product(
            &app,
            &admin,
            &id,
            json!({"price": {"amount": 1750, "currency": "EUR"}}),
        )
        .await,
    )
    .await;
    assert_eq!(updated["price"]["amount"], 1750);
    assert_eq!(
        ok_json(by_id(&app, None, &id).await).await["price"]["amount"],
        1750
    );
    let page = search(&app, None, &[("tag", "sturdy")]).await;
    assert_eq!(items(&page)[0]["price"]["amount"], 1750);
    let second = create(
        &app,
        &admin,
        with(
            product("DIE-2", "Second Lamp", 900),
            json!({"tags": ["sturdy"]}),
        ),
    )
    .await;
    assert_eq!(
        ok_json(by_id(&app, None, &id_of(&second)).await).await,
        second
    );
    assert_eq!(
        matching(&app, None, &[("tag", "sturdy")]).await,
        set(&["DIE-1", "DIE-2"])
    );
    transition(&app, &admin, &id, "archive").await;
    assert_problem(by_id(&app, None, &id).await, 404, "not_found").await;
    let category = create_category(&app, &admin, "Survivors", None).await;
    let tree: Value = app.get("/api/v1/categories").await.json().await.unwrap();
    assert_eq!(tree["items"][0]["id"], category["id"]);

    assert!(
        cache_requests(&app, "error").await - errors_before >= 1.0,
        "the failures are counted"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
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
