//! A node killed with SIGKILL in the middle of checkout load: after a restart every
//! acknowledged order and payment is there, nothing is oversold, and the stock agrees
//! with the orders; and mail it still had queued in memory goes out after the restart.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::{admin_create, souk, start_server, start_server_with};
use crate::helpers::*;

const STOCK: i64 = 40;

pub(crate) async fn login(
    client: &reqwest::Client,
    address: &str,
    email: &str,
    password: &str,
) -> String {
    let tokens: Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["access_token"].as_str().unwrap().to_owned()
}

/// Signs a customer up over REST with `PASSWORD`; it must be accepted.
pub(crate) async fn register(client: &reqwest::Client, address: &str, email: &str, name: &str) {
    let registered = client
        .post(format!("{address}/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
}

/// Creates an active product over REST and stocks it; both must be accepted.
pub(crate) async fn stocked_product(
    client: &reqwest::Client,
    address: &str,
    admin: &str,
    sku: &str,
    amount: i64,
    stock: i64,
) {
    let created = client
        .post(format!("{address}/api/v1/admin/products"))
        .bearer_auth(admin)
        .json(&json!({"sku": sku, "name": format!("Sale {sku}"), "price": {"amount": amount, "currency": "EUR"}, "status": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let stocked = client
        .post(format!("{address}/api/v1/admin/inventory/{sku}/adjust"))
        .bearer_auth(admin)
        .json(&json!({"delta": stock, "reason": "sale stock"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stocked.status(), 200);
}

#[test]
fn sigkill_under_checkout_load_loses_nothing_acknowledged() {
    let dir = TempDir::new();
    assert!(admin_create(souk(&dir.0), "boss@example.com", PASSWORD)
        .status
        .success());

    let (mut node, address, _) = start_server(&dir.0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let acknowledged_orders = Arc::new(Mutex::new(HashMap::<String, i64>::new()));
    let acknowledged_payments = Arc::new(Mutex::new(HashSet::<String>::new()));

    runtime.block_on(async {
        let client = crate::helpers::http_client();
        let admin = login(&client, &address, "boss@example.com", PASSWORD).await;
        stocked_product(&client, &address, &admin, "CRASH-1", 999, STOCK).await;
        let mut tokens = Vec::new();
        for index in 0..4 {
            let email = format!("crash{index}@example.com");
            register(&client, &address, &email, "Racer").await;
            tokens.push(login(&client, &address, &email, PASSWORD).await);
        }

        // Eight shoppers in closed loops: order, and pay every other order.
        let mut tasks = Vec::new();
        for worker in 0..8usize {
            let (client, address, token) = (
                client.clone(),
                address.clone(),
                tokens[worker % tokens.len()].clone(),
            );
            let (orders, payments) = (acknowledged_orders.clone(), acknowledged_payments.clone());
            tasks.push(tokio::spawn(async move {
                for round in 0..40usize {
                    let index = worker * 1000 + round;
                    let quantity = 1 + (index % 2) as i64;
                    let Ok(response) = client
                        .post(format!("{address}/api/v1/orders"))
                        .bearer_auth(&token)
                        .header("Idempotency-Key", format!("crash-{index}"))
                        .json(&json!({"items": [{"sku": "CRASH-1", "quantity": quantity}]}))
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
                    orders.lock().unwrap().insert(id.clone(), quantity);
                    if round % 2 == 0 {
                        let Ok(paid) = client
                            .post(format!("{address}/api/v1/orders/{id}/pay"))
                            .bearer_auth(&token)
                            .json(&json!({"payment_method": "card"}))
                            .send()
                            .await
                        else {
                            return;
                        };
                        if paid.status() == 200 {
                            payments.lock().unwrap().insert(id);
                        }
                    }
                }
            }));
        }
        // Kill the node once the load is well under way.
        for _ in 0..3000 {
            if acknowledged_orders.lock().unwrap().len() >= 12
                && acknowledged_payments.lock().unwrap().len() >= 4
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let killed = Command::new("kill")
            .args(["-KILL", &node.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let _ = node.wait();
        for task in tasks {
            let _ = task.await;
        }
    });
    let orders = acknowledged_orders.lock().unwrap().clone();
    let payments = acknowledged_payments.lock().unwrap().clone();
    assert!(
        !orders.is_empty(),
        "the load was acknowledged before the kill"
    );
    eprintln!(
        "killed with {} orders and {} payments acknowledged",
        orders.len(),
        payments.len()
    );

    let (mut node, address, _) = start_server(&dir.0);
    runtime.block_on(async {
        let client = crate::helpers::http_client();
        let admin = login(&client, &address, "boss@example.com", PASSWORD).await;
        // The sweeper finishes stock effects owed for more than five seconds.
        tokio::time::sleep(Duration::from_secs(7)).await;
        for id in orders.keys() {
            let order: Value = client
                .get(format!("{address}/api/v1/admin/orders/{id}"))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(order["id"] == id.as_str(), "acknowledged order {id} lost: {order}");
            if payments.contains(id) {
                assert_eq!(order["status"], "paid", "acknowledged payment of {id} lost");
            }
        }

        let url = format!("sqlite://{}?mode=rwc", dir.0.join("data/souk.db").display());
        let db = souk_db::Db::connect(&url, &souk_db::PoolSettings::default()).await.unwrap();
        let pool = db.pool();
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT o.id, o.status, CAST(SUM(l.quantity) AS SIGNED) FROM orders o JOIN order_lines l ON l.order_id = o.id GROUP BY o.id, o.status",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let sold: i64 = rows.iter().filter(|(_, status, _)| status == "paid").map(|(_, _, quantity)| quantity).sum();
        let pending: i64 = rows.iter().filter(|(_, status, _)| status == "pending_payment").map(|(_, _, quantity)| quantity).sum();
        let (on_hand, reserved): (i64, i64) = sqlx::query_as("SELECT on_hand, reserved FROM inventory_items WHERE sku = 'CRASH-1'")
            .fetch_one(pool)
            .await
            .unwrap();
        eprintln!("after restart: {} orders, {sold} units sold, {pending} pending, on_hand {on_hand}, reserved {reserved}", rows.len());
        assert!(sold <= STOCK, "oversold: {sold} of {STOCK}");
        assert_eq!(on_hand, STOCK - sold, "on_hand is the stock minus what paid orders bought");
        assert!(on_hand >= reserved, "available never below zero");
        // Reservations of orders whose creation the kill interrupted are not orders; their
        // TTL releases them. Every order that exists holds exactly what it should.
        assert!(reserved >= pending, "a pending order lost its reservation");
        let movements = souk_db::inventory::movements(pool, "CRASH-1").await.unwrap();
        assert_eq!(movements.iter().map(|m| m.delta_on_hand).sum::<i64>(), on_hand, "the ledger recomputes on_hand");
        for (id, status, _) in &rows {
            let sales = movements.iter().filter(|m| m.order_id.as_deref() == Some(id) && m.kind == "sale").count();
            assert_eq!(sales, usize::from(status == "paid"), "order {id} is {status} with {sales} sales");
        }
        let (owed,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM orders WHERE stock_settled = 0").fetch_one(pool).await.unwrap();
        assert_eq!(owed, 0, "every owed stock effect was finished after the restart");
    });
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();
}

/// Without NATS the relay publishes into the node's memory. A node killed with mail
/// still queued there (its SMTP server refusing, so the welcome mail waits for a retry)
/// publishes that event again when it restarts, and the mail goes out.
#[test]
fn mail_a_killed_node_had_queued_in_memory_goes_out_after_a_restart() {
    let dir = TempDir::new();
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut refusing = souk(&dir.0);
    refusing
        .env("SOUK_SMTP_URL", format!("smtp://127.0.0.1:{closed_port}"))
        .env("SOUK_EMAIL_MAX_ATTEMPTS", "1000")
        .env("SOUK_EMAIL_RETRY_BASE_MS", "60000");
    let (mut node, address, _) = start_server_with(refusing);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let email = "queued@example.com";
    let url = format!("sqlite://{}?mode=rwc", dir.0.join("data/souk.db").display());
    runtime.block_on(async {
        let client = crate::helpers::http_client();
        register(&client, &address, email, "Queued").await;
        // Published into the node's memory, where the worker keeps retrying it.
        let db = souk_db::Db::connect(&url, &souk_db::PoolSettings::default())
            .await
            .unwrap();
        let published = "SELECT COUNT(*) FROM outbox_events WHERE topic = 'user.registered' AND published_at IS NOT NULL";
        for _ in 0..100 {
            let (count,): (i64,) = sqlx::query_as(published).fetch_one(db.pool()).await.unwrap();
            if count == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (count,): (i64,) = sqlx::query_as(published).fetch_one(db.pool()).await.unwrap();
        assert_eq!(count, 1, "the event was published");
        db.close().await;
    });
    let killed = Command::new("kill")
        .args(["-KILL", &node.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let _ = node.wait();

    // Restarted with mail written to files: the welcome mail goes out.
    let (mut node, _, _) = start_server(&dir.0);
    let outbox = dir.0.join("data/outbox");
    let mailed = || {
        std::fs::read_dir(&outbox)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                std::fs::read_to_string(entry.path()).is_ok_and(|text| text.contains(email))
            })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !mailed() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &node.id().to_string()])
        .status();
    let _ = node.wait();
    assert!(
        mailed(),
        "the welcome mail queued before the kill was not sent"
    );
}
