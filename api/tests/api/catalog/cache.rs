//! The catalog's read cache (on SQLite): no read is stale after any write, with the cache
//! in Redis and in process; and with Redis killed mid-test, reads and writes still
//! succeed from the database, the failures are counted and the node reports not ready.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    by_id, by_sku, counts, create, create_category, id_of, import_report, items, matching, ok_json,
    patch_product, product, search, send, set, transition, with, CSV_HEADER,
};
use crate::helpers::*;

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

/// An import moves the shared cache on with each row it writes, not once at its end:
/// each row's event reaches the other nodes while the import goes on, and they must
/// not be answered the product as it was before the row.
#[actix_web::test]
async fn each_imported_row_moves_the_shared_cache_on() {
    let prefix = own_redis_prefix();
    let configured = prefix.clone();
    let app = spawn_app_with_redis(move |config| config.redis.key_prefix = configured).await;
    let admin = app.admin().await;
    create(&app, &admin, product("ROW-1", "Row one", 1000)).await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let generation_key = format!("{prefix}gen:catalog");
    let before: Option<u64> = redis::cmd("GET")
        .arg(&generation_key)
        .query_async(&mut connection)
        .await
        .unwrap();
    let rows = json!([
        {"sku": "ROW-1", "name": "Row one", "price": {"amount": 2000, "currency": "EUR"}, "status": "active"},
        {"sku": "ROW-2", "name": "Row two", "price": {"amount": 100, "currency": "EUR"}, "status": "active"},
        {"sku": "ROW-3", "name": "Row three", "price": {"amount": 100, "currency": "EUR"}, "status": "active"},
    ]);
    let report = import_report(&app, &admin, "application/json", &rows.to_string()).await;
    assert_eq!(counts(&report), (2, 1, 0, 0), "{report}");
    let after: Option<u64> = redis::cmd("GET")
        .arg(&generation_key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        after.unwrap_or(0) >= before.unwrap_or(0) + 3,
        "one move per written row: {before:?} then {after:?}"
    );
}
