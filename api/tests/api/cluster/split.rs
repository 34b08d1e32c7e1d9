//! A clustered service inside a split deployment: the inventory service as two
//! clustered members behind a third process that runs the shop's other services and
//! calls one of them over gRPC. Every SKU is served by its one owner whichever member
//! the call reaches; orders run only where the order service runs, even when a
//! reservation lapses while that service is down; and a node running other services is
//! refused by the inventory's cluster.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::*;

const STOCK: i64 = 20;
/// Long enough to pay an order placed just before; short enough to wait for.
const RESERVATION_TTL_SECS: u64 = 10;

impl Deployment {
    /// `souk serve --services <services>` as member `id`, once it listens.
    fn start_services(&self, id: &str, services: &str, extra: &[(&str, String)]) -> Member {
        let mut command = self.serve(id, extra);
        command.args(["--services", services]);
        listening(id.to_owned(), command.spawn().unwrap())
    }
}

/// Polls the order through the shop until it is expired.
async fn wait_expired(client: &reqwest::Client, shop: &Member, token: &str, id: &str) {
    let started = Instant::now();
    loop {
        let order: Value = client
            .get(format!("{}/api/v1/orders/{id}", shop.http))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if order["status"] == "expired" {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(RESERVATION_TTL_SECS + 30),
            "order {id} still {}",
            order["status"]
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn an_inventory_service_of_two_clustered_members_serves_a_split_shop() {
    let runtime = runtime();
    runtime.block_on(async {
        let deployment = Deployment::new().await;
        let inventory = [
            deployment.start_services("inv-0", "inventory", &[]),
            deployment.start_services("inv-1", "inventory", &[]),
        ];
        // The shop is not clustered: it reaches the inventory through one member.
        let start_shop = || {
            deployment.start_services(
                "shop",
                "user,auth,product,order",
                &[
                    ("SOUK_CLUSTER_ENABLED", "false".to_owned()),
                    ("SOUK_INVENTORY_GRPC_URL", inventory[0].grpc.clone()),
                    (
                        "SOUK_ORDER_RESERVATION_TTL_SECS",
                        RESERVATION_TTL_SECS.to_string(),
                    ),
                ],
            )
        };
        let shop = start_shop();
        let client = crate::helpers::http_client();
        for member in &inventory {
            wait_ready(&client, member).await;
        }
        wait_ready(&client, &shop).await;
        deployment.create_admin();
        let admin = admin_token(&client, &shop.http).await;
        let ids = ["inv-0", "inv-1"];
        let holders = settled(&client, &inventory[0].http, &admin, &ids).await;
        for id in ids {
            assert!(
                holders.values().any(|holder| holder == id),
                "{id} holds no shard"
            );
        }

        // Products through the shop, their stock through either inventory member.
        let skus: Vec<String> = (0..6).map(|index| format!("SPLIT-{index}")).collect();
        for (index, sku) in skus.iter().enumerate() {
            let created = client
                .post(format!("{}/api/v1/admin/products", shop.http))
                .bearer_auth(&admin)
                .json(&json!({"sku": sku, "name": format!("Split {sku}"),
                    "price": {"amount": 900, "currency": "EUR"}, "status": "active"}))
                .send()
                .await
                .unwrap();
            assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
            let member = &inventory[index % inventory.len()];
            let stocked = client
                .post(format!(
                    "{}/api/v1/admin/inventory/{sku}/adjust",
                    member.http
                ))
                .bearer_auth(&admin)
                .json(&json!({"delta": STOCK, "reason": "first delivery"}))
                .send()
                .await
                .unwrap();
            assert_eq!(stocked.status(), 200, "{}", stocked.text().await.unwrap());
        }

        // One unit of each SKU through the shop; every other order is paid at once.
        let token = customers(&client, &shop.http, 1).await.remove(0);
        let mut paid = Vec::new();
        let mut unpaid = Vec::new();
        for (index, sku) in skus.iter().enumerate() {
            let response =
                checkout_one(&client, &shop.http, &token, &format!("split-{index}"), sku).await;
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
            let order: Value = response.json().await.unwrap();
            let id = order["id"].as_str().unwrap().to_owned();
            if index % 2 == 1 {
                unpaid.push((sku.clone(), id));
                continue;
            }
            let response = client
                .post(format!("{}/api/v1/orders/{id}/pay", shop.http))
                .bearer_auth(&token)
                .json(&json!({"payment_method": "card"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            paid.push((sku.clone(), id));
        }
        // The member the shop calls forwarded the other member's SKUs to it.
        let forwarded = counter(
            &client,
            &inventory[0],
            "souk_cluster_forwarded_calls_total{kind=\"sku\"",
        )
        .await;
        let served = counter(
            &client,
            &inventory[1],
            "souk_cluster_served_calls_total{kind=\"sku\"",
        )
        .await;
        assert!(forwarded > 0.0, "inv-0 forwarded no sku call");
        assert!(served > 0.0, "inv-1 served no sku call for inv-0");

        // The unpaid orders expire through the order service; their units come back.
        for (_, id) in &unpaid {
            wait_expired(&client, &shop, &token, id).await;
        }
        // Both members read every SKU's committed stock.
        let expected: Vec<(&String, i64)> = paid
            .iter()
            .map(|(sku, _)| (sku, STOCK - 1))
            .chain(unpaid.iter().map(|(sku, _)| (sku, STOCK)))
            .collect();
        for (sku, on_hand) in expected {
            for member in &inventory {
                let stock = stock_on(&client, &member.http, &admin, sku).await;
                assert_eq!(stock["on_hand"], on_hand, "{sku} read on {}", member.id);
                assert_eq!(stock["reserved"], 0, "{sku} read on {}", member.id);
            }
        }
        // The order service down past an order's deadline and the grace its reservation
        // has beyond it: the reservation lapses on its owner, and the order is left to
        // the order service, whose sweeper expires it once it is back.
        let sku = &skus[0];
        let response = checkout_one(&client, &shop.http, &token, "split-lapse", sku).await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let order: Value = response.json().await.unwrap();
        let lapsing = order["id"].as_str().unwrap().to_owned();
        shop.stop();
        let started = Instant::now();
        while stock_on(&client, &inventory[1].http, &admin, sku).await["reserved"] != 0 {
            assert!(
                started.elapsed() < Duration::from_secs(RESERVATION_TTL_SECS + 90),
                "the reservation of {lapsing} did not lapse"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let db = deployment.db().await;
        let (status, owner_epoch): (String, i64) =
            sqlx::query_as("SELECT status, owner_epoch FROM orders WHERE id = ?")
                .bind(&lapsing)
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(
            (status.as_str(), owner_epoch),
            ("pending_payment", 0),
            "an inventory member ran order {lapsing}"
        );
        let shop = start_shop();
        wait_ready(&client, &shop).await;
        wait_expired(&client, &shop, &token, &lapsing).await;
        for member in &inventory {
            let stock = stock_on(&client, &member.http, &admin, sku).await;
            assert_eq!(stock["on_hand"], STOCK - 1, "{sku} read on {}", member.id);
            assert_eq!(stock["reserved"], 0, "{sku} read on {}", member.id);
        }
        // No order ran on an inventory member: none was claimed by the cluster's epochs.
        let (claimed,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM orders WHERE owner_epoch <> 0")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert_eq!(claimed, 0, "orders claimed by the inventory's cluster");

        // A node running the order service cannot join the inventory's cluster.
        let mut refused = deployment
            .serve(
                "orders-0",
                &[
                    ("SOUK_INVENTORY_GRPC_URL", inventory[0].grpc.clone()),
                    ("SOUK_PRODUCT_GRPC_URL", inventory[1].grpc.clone()),
                ],
            )
            .args(["--services", "order"])
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = refused.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = refused.kill();
                panic!("a node of the order service joined the inventory's cluster");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(!status.success());
        let mut output = String::new();
        if let Some(mut stderr) = refused.stderr.take() {
            stderr.read_to_string(&mut output).unwrap();
        }
        assert!(
            output.contains("hosts order;") && output.contains("cluster.namespace"),
            "{output}"
        );

        shop.stop();
        for member in inventory {
            member.stop();
        }
    });
}
