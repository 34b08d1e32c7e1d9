//! An order placed while the inventory process is down fails fast with
//! dependency_unavailable, creates no order and no reservation, and shows in the order
//! service's readiness; once the inventory is back on its address, the same
//! Idempotency-Key completes the order, once.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{six_processes, Deployment, Gateway, Node, Shopper};
use crate::email::SmtpSink;
use crate::helpers::*;

#[test]
fn an_order_while_inventory_is_down_fails_fast_and_completes_after() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database = runtime.block_on(souk_db::testing::fresh_mysql());
    let sink = SmtpSink::start();
    let deployment = Deployment::new(&database, &sink);
    deployment.create_admin("boss@down.example");
    let (mut nodes, gateway, inventory_port) = six_processes(&deployment);
    let shopper = Shopper::new();
    runtime.block_on(async {
        use reqwest::Method;
        let admin = shopper.login(&gateway, "boss@down.example").await;
        let (status, _) = shopper
            .send(&gateway, Method::POST, "/api/v1/admin/products", Some(&admin),
                Some(json!({"sku": "DOWN-1", "name": "Fragile", "price": {"amount": 500, "currency": "EUR"}, "status": "active"})), None)
            .await;
        assert_eq!(status, 201);
        let (status, _) = shopper
            .send(&gateway, Method::POST, "/api/v1/admin/inventory/DOWN-1/adjust", Some(&admin),
                Some(json!({"delta": 5, "reason": "stock"})), None)
            .await;
        assert_eq!(status, 200);
        let email = unique_email("down");
        let (status, _) = shopper
            .send(&gateway, Method::POST, "/api/v1/auth/register", None,
                Some(json!({"email": email, "password": PASSWORD, "name": "Dana Down"})), None)
            .await;
        assert_eq!(status, 201);
        let token = shopper.login(&gateway, &email).await;

        // The inventory process dies.
        let inventory = nodes.iter().position(|node| gateway.routes["inventory"] == node.http).unwrap();
        drop(nodes.remove(inventory));

        let started = Instant::now();
        let (status, problem) = shopper
            .send(&gateway, Method::POST, "/api/v1/orders", Some(&token),
                Some(json!({"items": [{"sku": "DOWN-1", "quantity": 2}]})), Some("while-down"))
            .await;
        let waited = started.elapsed();
        assert_eq!(status, 503, "{problem}");
        assert_eq!(problem["code"], "dependency_unavailable", "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("inventory"), "{problem}");
        // Within the configured 2 s deadline plus slack for a loaded machine, not a hang.
        assert!(waited < Duration::from_secs(15), "answered after {waited:?}");

        // Nothing half-created: no order, no reservation, no ledger entry beyond the stocking.
        let pool = database.db.pool();
        let count = |sql: &'static str| async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.unwrap();
            n
        };
        assert_eq!(count("SELECT COUNT(*) FROM orders").await, 0);
        assert_eq!(count("SELECT COUNT(*) FROM inventory_reservations").await, 0);

        // The order service says what it is missing.
        let (status, readiness) = shopper
            .send_raw_get(&format!("{}/readyz", gateway.routes["order"]))
            .await;
        assert_eq!(status, 503, "{readiness}");
        assert!(readiness["checks"]["souk.v1.InventoryService"].as_str().unwrap().starts_with("error"), "{readiness}");

        // The inventory comes back on its address; the same key completes the order.
        nodes.push(deployment.start("inventory", inventory_port, &[]));
        let mut outcome = (0, Value::Null);
        for _ in 0..40 {
            outcome = shopper
                .send(&gateway_with_inventory(&gateway, &nodes), Method::POST, "/api/v1/orders", Some(&token),
                    Some(json!({"items": [{"sku": "DOWN-1", "quantity": 2}]})), Some("while-down"))
                .await;
            if outcome.0 != 503 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(outcome.0, 201, "{}", outcome.1);
        assert_eq!(outcome.1["status"], "pending_payment");
        let again = shopper
            .send(&gateway_with_inventory(&gateway, &nodes), Method::POST, "/api/v1/orders", Some(&token),
                Some(json!({"items": [{"sku": "DOWN-1", "quantity": 2}]})), Some("while-down"))
            .await;
        assert_eq!(again.0, 200, "a retry with the same key is the same order");
        assert_eq!(again.1["id"], outcome.1["id"]);
        assert_eq!(count("SELECT COUNT(*) FROM orders").await, 1);
        let (status, stock) = shopper
            .send(&gateway_with_inventory(&gateway, &nodes), Method::GET, "/api/v1/admin/inventory/DOWN-1", Some(&admin), None, None)
            .await;
        assert_eq!(status, 200);
        assert_eq!((stock["on_hand"].as_i64(), stock["reserved"].as_i64()), (Some(5), Some(2)));
    });
}

/// The gateway with the restarted inventory's new HTTP address.
fn gateway_with_inventory(gateway: &Gateway, nodes: &[Node]) -> Gateway {
    let mut routes = gateway.routes.clone();
    routes.insert("inventory", nodes.last().unwrap().http.clone());
    Gateway { routes }
}

impl Shopper {
    async fn send_raw_get(&self, url: &str) -> (u16, Value) {
        let response = self.client.get(url).send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}
