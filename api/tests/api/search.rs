//! The search index as a node serves it: built at start (readiness waits for it), fed by
//! the node's own writes at once and by stock and catalog events within the documented
//! bound, checked and rebuilt through the admin API and `souk search reindex`, and kept
//! current on a second `souk` process sharing MariaDB and NATS.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::email::SmtpSink;
use crate::helpers::*;
use crate::split::Deployment;

/// What the README documents for a write made on another node (or a stock change) to
/// become searchable with the default `outbox.poll_ms` of 500 ms.
const FRESHNESS_BOUND: Duration = Duration::from_secs(1);

fn active(sku: &str, name: &str) -> Value {
    json!({
        "sku": sku,
        "name": name,
        "price": {"amount": 1500, "currency": "EUR"},
        "status": "active",
    })
}

/// Creates an active product over the admin API; returns its id.
async fn create_active(app: &TestApp, admin: &Session, sku: &str, name: &str) -> String {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &active(sku, name),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn search_skus(app: &TestApp, query: &str) -> Vec<String> {
    let response = app.get(&format!("/api/v1/products?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "search {query}");
    let page: Value = response.json().await.unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sku"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn the_writing_node_searches_its_writes_at_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let id = create_active(&app, &admin, "QUOKKA-1", "Quokka Lantern").await;
    // No waiting: the write refreshed this node's index before it answered.
    assert_eq!(search_skus(&app, "q=quokka").await, ["QUOKKA-1"]);
    let renamed = app
        .client
        .patch(app.url(&format!("/api/v1/admin/products/{id}")))
        .bearer_auth(&admin.access_token)
        .json(&json!({"name": "Wombat Lantern"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::OK);
    assert!(search_skus(&app, "q=quokka").await.is_empty());
    assert_eq!(search_skus(&app, "q=wombat").await, ["QUOKKA-1"]);
    // Typed as shoppers type: a prefix of the last word, a typo in a long word.
    assert_eq!(search_skus(&app, "q=womb").await, ["QUOKKA-1"]);
    assert_eq!(search_skus(&app, "q=lantren").await, ["QUOKKA-1"]);
    let events = app.events("product.changed", &id).await;
    assert_eq!(
        events.len(),
        2,
        "create and rename are announced: {events:?}"
    );
    assert_eq!(events[0]["ids"], json!([id]));
}

#[actix_web::test]
async fn the_stock_flag_follows_stock_crossing_zero() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    create_active(&app, &admin, "FLAG-1", "Flag Kettle").await;
    assert!(search_skus(&app, "in_stock=true").await.is_empty());
    assert_eq!(search_skus(&app, "q=kettle").await, ["FLAG-1"]);

    let adjust = |delta: i64| {
        let app = &app;
        let token = admin.access_token.clone();
        async move {
            let response = app
                .post_json_as(
                    "/api/v1/admin/inventory/FLAG-1/adjust",
                    &token,
                    &json!({"delta": delta, "reason": "count"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    adjust(3).await;
    within(FRESHNESS_BOUND * 3, "in stock after +3", || async {
        search_skus(&app, "in_stock=true").await == ["FLAG-1"]
    })
    .await;
    adjust(-3).await;
    within(FRESHNESS_BOUND * 3, "out of stock after -3", || async {
        search_skus(&app, "in_stock=true").await.is_empty()
    })
    .await;
    let crossings = app.events("stock.availability", "FLAG-1").await;
    assert_eq!(crossings.len(), 2, "{crossings:?}");
}

#[actix_web::test]
async fn admins_see_the_index_agree_and_rebuild_it() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for position in 0..5 {
        create_active(
            &app,
            &admin,
            &format!("CHECK-{position}"),
            &format!("Check item {position}"),
        )
        .await;
    }
    let status: Value = app
        .get_as("/api/v1/admin/search?sample=3", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(status["indexed"], 5);
    assert_eq!(status["in_database"], 5);
    assert_eq!(status["sampled"], 3);
    assert_eq!(status["agrees"], true, "{status}");

    let rebuilt = app
        .client
        .post(app.url("/api/v1/admin/search/reindex"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(rebuilt.status(), StatusCode::OK);
    let report: Value = rebuilt.json().await.unwrap();
    assert_eq!(report["products"], 5);

    let ready: Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["checks"]["search"], "ok", "{ready}");

    // Refusals: a sample too large, a shopper, no token.
    let too_large = app
        .get_as("/api/v1/admin/search?sample=5000", &admin.access_token)
        .await;
    assert_problem(too_large, 400, "invalid_query").await;
    let unknown = app
        .get_as("/api/v1/admin/search?samples=5", &admin.access_token)
        .await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    let shopper = app.customer("search").await;
    let forbidden = app
        .get_as("/api/v1/admin/search", &shopper.access_token)
        .await;
    assert_problem(forbidden, 403, "forbidden").await;
    let anonymous = app.get("/api/v1/admin/search").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let anonymous_reindex = app
        .client
        .post(app.url("/api/v1/admin/search/reindex"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous_reindex.status(), StatusCode::UNAUTHORIZED);
}

/// What a node starting on an existing catalog does: a new index, built from the
/// database alone, holds what the serving node's index holds.
#[actix_web::test]
async fn an_index_built_from_the_database_agrees_with_it() {
    let app = spawn_app_on(TestBackend::MySql).await;
    let admin = app.admin().await;
    for position in 0..3 {
        create_active(&app, &admin, &format!("BUILT-{position}"), "Built Teapot").await;
    }
    let fresh = souk_actors::catalog::SearchEngine::open(None).unwrap();
    assert!(!fresh.is_ready());
    let report = fresh.rebuild(&app.database.db).await.unwrap();
    assert_eq!(report.products, 3);
    let status = fresh.status(&app.database.db, 10).await.unwrap();
    assert!(status.agrees, "{status:?}");
    assert_eq!(status.sampled, 3);
    let served = app.state.catalog.search_engine();
    let request = souk_actors::catalog::index::SearchRequest {
        text: Some("teapot".into()),
        statuses: vec![souk_actors::catalog::index::Status::Active],
        limit: 10,
        ..Default::default()
    };
    let from_scratch = fresh.search(request.clone()).await.unwrap();
    let from_writes = served.search(request).await.unwrap();
    assert_eq!(from_scratch.ids.len(), 3);
    assert_eq!(from_scratch, from_writes);
}

/// Two `souk` processes over one MariaDB and NATS: what an admin writes on one is
/// searchable on the other within the bound; `souk search reindex` rebuilds both.
#[test]
fn writes_on_one_node_reach_the_other_nodes_search() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(souk_db::testing::fresh_mysql());
    let sink = SmtpSink::start();
    let deployment = Deployment::new(&database, &sink);
    deployment.create_admin("boss@search.example");
    let writer = deployment.start("all", 0, &[]);
    let reader = deployment.start("all", 0, &[]);
    runtime.block_on(async {
        let client = crate::helpers::http_client();
        for node in [&writer.http, &reader.http] {
            within(Duration::from_secs(20), "node ready", || async {
                client
                    .get(format!("{node}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|response| response.status() == StatusCode::OK)
            })
            .await;
        }
        let tokens: Value = client
            .post(format!("{}/api/v1/auth/login", writer.http))
            .json(&json!({"email": "boss@search.example", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        let found = |query: &'static str| {
            let client = client.clone();
            let url = format!("{}/api/v1/products?{query}", reader.http);
            async move {
                let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|item| item["sku"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            }
        };

        let created: Value = client
            .post(format!("{}/api/v1/admin/products", writer.http))
            .bearer_auth(&token)
            .json(&active("FRESH-1", "Quokka Lantern"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        let lag = within(
            FRESHNESS_BOUND,
            "created product on the other node",
            || async { found("q=quokka").await == ["FRESH-1"] },
        )
        .await;
        eprintln!("created: searchable on the other node after {lag:?}");

        let renamed = client
            .patch(format!("{}/api/v1/admin/products/{id}", writer.http))
            .bearer_auth(&token)
            .json(&json!({"name": "Wombat Lantern"}))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), StatusCode::OK);
        within(
            FRESHNESS_BOUND,
            "renamed product on the other node",
            || async {
                found("q=wombat").await == ["FRESH-1"] && found("q=quokka").await.is_empty()
            },
        )
        .await;

        let stocked = client
            .post(format!(
                "{}/api/v1/admin/inventory/FRESH-1/adjust",
                writer.http
            ))
            .bearer_auth(&token)
            .json(&json!({"delta": 2, "reason": "count"}))
            .send()
            .await
            .unwrap();
        assert_eq!(stocked.status(), StatusCode::OK);
        within(FRESHNESS_BOUND, "stock flag on the other node", || async {
            found("in_stock=true").await == ["FRESH-1"]
        })
        .await;

        let archived = client
            .patch(format!("{}/api/v1/admin/products/{id}", writer.http))
            .bearer_auth(&token)
            .json(&json!({"status": "archived"}))
            .send()
            .await
            .unwrap();
        assert_eq!(archived.status(), StatusCode::OK);
        within(
            FRESHNESS_BOUND,
            "archived product gone on the other node",
            || async { found("q=wombat").await.is_empty() },
        )
        .await;

        // `souk search reindex` reaches both nodes through the outbox and NATS.
        let last_build = |node: String| {
            let client = client.clone();
            let token = token.clone();
            async move {
                let status: Value = client
                    .get(format!("{node}/api/v1/admin/search"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert_eq!(status["agrees"], true, "{status}");
                status["last_build"]["finished_at"].clone()
            }
        };
        let before = [
            last_build(writer.http.clone()).await,
            last_build(reader.http.clone()).await,
        ];
        let output = deployment
            .command()
            .args(["search", "reindex"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("reindex requested"));
        for (node, before) in [&writer.http, &reader.http].into_iter().zip(before) {
            within(
                Duration::from_secs(10),
                "rebuilt after souk search reindex",
                || async { last_build(node.clone()).await != before },
            )
            .await;
        }
    });
    drop(writer);
    drop(reader);
}

/// A seed batch of 500 products is announced in events that each fit an outbox payload,
/// and every seeded product reaches the running node's index.
#[actix_web::test]
async fn a_large_seed_batch_is_announced_in_bounded_events() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let added =
        souk_actors::catalog::seed::seed(&app.state.catalog, &app.database.db, 450, |_, _| {})
            .await
            .unwrap();
    assert_eq!(added, 450);
    let payloads: Vec<(String,)> =
        sqlx::query_as("SELECT payload FROM outbox_events WHERE topic = 'product.changed'")
            .fetch_all(app.database.db.pool())
            .await
            .unwrap();
    let sizes: Vec<usize> = payloads
        .iter()
        .map(|(payload,)| {
            assert!(payload.len() <= souk_db::outbox::MAX_PAYLOAD_CHARS);
            serde_json::from_str::<Value>(payload).unwrap()["ids"]
                .as_array()
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 450, "{sizes:?}");
    assert!(sizes.iter().all(|size| *size <= 200), "{sizes:?}");
    // The node learns of them from the events alone (the seed wrote no index).
    within(
        Duration::from_secs(5),
        "seeded products searchable",
        || async {
            let status: Value = app
                .get_as("/api/v1/admin/search?sample=20", &admin.access_token)
                .await
                .json()
                .await
                .unwrap();
            status["indexed"] == 450 && status["agrees"] == true
        },
    )
    .await;
}

/// The seed adds only the numbers no product or variant names yet: an admin's product
/// named `SEED-000002` and a variant named `SEED-000004` are left as they are, and the
/// seed fills in 1, 3 and 5 (counting the seeded SKUs it found would have made it
/// insert `SEED-000003` and on, and stop on the first SKU already taken).
#[actix_web::test]
async fn a_seed_fills_in_the_numbers_no_product_or_variant_names_yet() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let own = create_active(&app, &admin, "SEED-000002", "An admin's own product").await;
    let mut tee = active("TEE-SEED", "Tee");
    tee["options"] = json!([{"name": "Size", "values": ["S"]}]);
    tee["variants"] = json!([{"sku": "SEED-000004", "options": {"size": "S"}}]);
    let created = app
        .post_json_as("/api/v1/admin/products", &admin.access_token, &tee)
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    let seed = |target| {
        souk_actors::catalog::seed::seed(&app.state.catalog, &app.database.db, target, |_, _| {})
    };
    assert_eq!(seed(5).await.unwrap(), 3);
    assert_eq!(seed(5).await.unwrap(), 0, "nothing left to add");
    assert_eq!(seed(6).await.unwrap(), 1);

    let products: Vec<(String,)> =
        sqlx::query_as("SELECT sku FROM products WHERE sku LIKE 'SEED-%' ORDER BY sku")
            .fetch_all(app.database.db.pool())
            .await
            .unwrap();
    let products: Vec<&str> = products.iter().map(|(sku,)| sku.as_str()).collect();
    assert_eq!(
        products,
        [
            "SEED-000001",
            "SEED-000002",
            "SEED-000003",
            "SEED-000005",
            "SEED-000006"
        ],
        "SEED-000004 stays the tee's variant"
    );
    let kept: Value = app
        .get(&format!("/api/v1/products/{own}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["name"], "An admin's own product");
}
