//! The product catalog over HTTP: what its tests share — requests for products,
//! categories, searches (walked page by page) and imports, reads by id and by SKU — and
//! the seeded catalog several of them start from. The tests, by responsibility:
//! relevance, filters, sorts and search parameters (`search`), pagination under
//! concurrent writes (`pagination`), facets and totals (`facets`), who sees and may
//! change what (`access`), product validation (`validation`), the category tree's
//! refusals (`categories`), CSV and JSON imports (`imports`), and the read cache: Redis,
//! in process, and Redis dying mid-test (`cache`).

mod access;
mod cache;
mod categories;
mod facets;
mod imports;
mod pagination;
mod search;
mod validation;

use std::collections::{BTreeSet, HashMap};

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

// ---------------------------------------------------------------- helpers

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

const CSV_HEADER: &str =
    "sku,name,description,price_amount,currency,category,tags,attributes,images,status";
