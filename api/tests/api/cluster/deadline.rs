//! A clustered node's call to an entity it serves itself keeps the call's deadline, as
//! a call to another node does: with the database held up (another session holds a
//! lock on the SKU's row), the caller gets a retryable 503 once `call_timeout_ms` has
//! passed, not whenever the lock goes.

use std::time::{Duration, Instant};

use serde_json::json;
use souk_db::testing::TestBackend;
use sqlx::{Connection, Executor};

use crate::helpers::*;

const CALL_TIMEOUT: Duration = Duration::from_millis(1_000);
/// Beyond the call's deadline, for a loaded machine; well under MariaDB's 50 s wait
/// for a row lock, which is when the held-up write would give up by itself.
const SLACK: Duration = Duration::from_secs(4);

#[actix_web::test]
async fn a_local_entity_held_up_by_the_database_answers_503_at_the_call_deadline() {
    let namespace = format!("d{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let app = spawn_app_with(TestBackend::MySql, |config| {
        config.nats.url = Some(nats_url());
        config.cluster.enabled = true;
        config.cluster.node_id = "deadline-0".to_owned();
        config.cluster.namespace = namespace;
        config.cluster.shards = 8;
        config.cluster.call_timeout_ms = CALL_TIMEOUT.as_millis() as u64;
    })
    .await;
    within(
        Duration::from_secs(30),
        "the node holds its shards",
        || async { app.ops_get("/readyz").await.status() == reqwest::StatusCode::OK },
    )
    .await;
    let admin = app.admin().await;
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": "SLOW-1", "name": "Slow", "price": {"amount": 1000, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let body = json!({"delta": 5, "reason": "delivery"});
    let adjust = || {
        app.post_json_as(
            "/api/v1/admin/inventory/SLOW-1/adjust",
            &admin.access_token,
            &body,
        )
    };
    assert_eq!(adjust().await.status(), reqwest::StatusCode::OK);

    // Another session locks the SKU's row: the next batch's write waits for it.
    let mut locker = sqlx::AnyConnection::connect(&app.database.url)
        .await
        .unwrap();
    locker.execute("BEGIN").await.unwrap();
    locker
        .execute("SELECT on_hand FROM inventory_items WHERE sku = 'SLOW-1' FOR UPDATE")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(CALL_TIMEOUT + SLACK, adjust()).await;
    let took = started.elapsed();
    locker.execute("ROLLBACK").await.unwrap();

    let refused = answer.unwrap_or_else(|_| {
        panic!(
            "no answer within {:?} of a {CALL_TIMEOUT:?} call deadline",
            CALL_TIMEOUT + SLACK
        )
    });
    let retry_after = refused.headers().get("retry-after").cloned();
    assert_problem(refused, 503, "service_unavailable").await;
    assert!(retry_after.is_some(), "a retryable 503 says when to retry");
    assert!(
        took >= CALL_TIMEOUT,
        "answered after {took:?}, before the deadline"
    );
}
