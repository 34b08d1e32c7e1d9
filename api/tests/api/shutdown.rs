//! SIGTERM under checkout load: the node stops accepting, finishes what it took,
//! flushes the SKU actors' open batches, stops its workers and exits within its grace
//! period, and every order it acknowledged is there with its reservation.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{admin_create, souk, start_server_with};
use crate::crash::{login, stocked_product};
use crate::helpers::*;

const STOCK: i64 = 10_000;
const GRACE_SECS: u64 = 5;

#[test]
fn sigterm_under_load_loses_nothing_acknowledged_and_exits_within_the_grace_period() {
    let dir = TempDir::new();
    assert!(admin_create(souk(&dir.0), "boss@example.com", PASSWORD)
        .status
        .success());
    let mut command = souk(&dir.0);
    command.env("SOUK_SHUTDOWN_TIMEOUT_SECS", GRACE_SECS.to_string());
    let (mut node, address, lines) = start_server_with(command);
    // Drain the log while the node runs, so a full pipe never blocks it.
    let log = std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .filter_map(|entry| entry["fields"]["message"].as_str().map(str::to_owned))
            .collect::<Vec<String>>()
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(HashMap::<String, i64>::new()));

    let stopped_after = runtime.block_on(async {
        let client = crate::helpers::http_client();
        let admin = login(&client, &address, "boss@example.com", PASSWORD).await;
        stocked_product(&client, &address, &admin, "TERM-1", 500, STOCK).await;
        let registered = client
            .post(format!("{address}/api/v1/auth/register"))
            .json(&json!({"email": "term@example.com", "password": PASSWORD, "name": "Late"}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 201);
        let token = login(&client, &address, "term@example.com", PASSWORD).await;

        // Eight shoppers in closed loops until the node stops answering.
        let mut tasks = Vec::new();
        for worker in 0..8usize {
            let (client, address, token) = (client.clone(), address.clone(), token.clone());
            let orders = acknowledged.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..10_000usize {
                    let quantity = 1 + (round % 3) as i64;
                    let Ok(response) = client
                        .post(format!("{address}/api/v1/orders"))
                        .bearer_auth(&token)
                        .header("Idempotency-Key", format!("term-{worker}-{round}"))
                        .json(&json!({"items": [{"sku": "TERM-1", "quantity": quantity}]}))
                        .send()
                        .await
                    else {
                        return;
                    };
                    if response.status() != 201 {
                        continue;
                    }
                    let Ok(order) = response.json::<Value>().await else {
                        return;
                    };
                    let id = order["id"].as_str().unwrap().to_owned();
                    orders.lock().unwrap().insert(id, quantity);
                }
            }));
        }
        for _ in 0..3000 {
            if acknowledged.lock().unwrap().len() >= 40 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let signalled = Instant::now();
        let sent = Command::new("kill")
            .args(["-TERM", &node.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::task::spawn_blocking(move || node.wait().unwrap())
            .await
            .unwrap();
        let stopped_after = signalled.elapsed();
        assert!(status.success(), "a graceful stop exits 0: {status}");
        for task in tasks {
            let _ = task.await;
        }
        stopped_after
    });
    assert!(
        stopped_after < Duration::from_secs(GRACE_SECS + 5),
        "exited {stopped_after:?} after SIGTERM; grace is {GRACE_SECS} s"
    );
    // The node logged its children stopping in order, then closed its connections.
    let messages = log.join().unwrap();
    let position = |message: &str| {
        messages
            .iter()
            .position(|logged| logged == message)
            .unwrap_or_else(|| panic!("no {message:?} in the log: {messages:?}"))
    };
    assert!(position("order actors stopped") < position("sku actors flushed and stopped"));
    assert!(position("sku actors flushed and stopped") < position("node children stopped"));
    assert!(position("node children stopped") < position("souk stopped; closing connections"));

    let orders = acknowledged.lock().unwrap().clone();
    assert!(
        orders.len() >= 40,
        "the load was acknowledged before the stop"
    );
    runtime.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.0.join("data/souk.db").display());
        let db = souk_db::Db::connect(&url, &souk_db::PoolSettings::default()).await.unwrap();
        let pool = db.pool();
        for (id, quantity) in &orders {
            let (status,): (String,) = sqlx::query_as("SELECT status FROM orders WHERE id = ?")
                .bind(id)
                .fetch_one(pool)
                .await
                .unwrap_or_else(|_| panic!("acknowledged order {id} lost"));
            assert_eq!(status, "pending_payment");
            let (held,): (i64,) = sqlx::query_as(
                "SELECT quantity FROM inventory_reservations WHERE sku = 'TERM-1' AND order_id = ?",
            )
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap_or_else(|_| panic!("acknowledged order {id} lost its reservation"));
            assert_eq!(held, *quantity);
        }
        let (on_hand, reserved): (i64, i64) =
            sqlx::query_as("SELECT on_hand, reserved FROM inventory_items WHERE sku = 'TERM-1'")
                .fetch_one(pool)
                .await
                .unwrap();
        let (held,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM inventory_reservations WHERE sku = 'TERM-1'",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(on_hand, STOCK);
        assert_eq!(reserved, held, "the item row agrees with its reservations");
        db.close().await;
    });
}
