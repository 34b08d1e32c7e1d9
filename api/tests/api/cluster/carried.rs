//! A checkout sent to a member that does not own its SKU: the order crosses with the
//! reservation, and the owner's node writer writes both in one commit, the cap on the
//! customer's unpaid orders and the idempotency key included.

use serde_json::Value;

use super::*;

const TWO: [&str; 2] = ["node-a", "node-b"];

#[test]
fn a_forwarded_checkout_is_written_by_the_skus_owner_in_its_reservations_commit() {
    let runtime = runtime();
    runtime.block_on(async {
        let deployment = Deployment::new().await;
        deployment.create_admin();
        // The cap on one customer's unpaid orders that `souk serve` has by default (the
        // suite's processes run without it).
        let cap = [("SOUK_ORDERS_MAX_UNPAID_ORDERS", "5".to_owned())];
        let members = deployment.start_all_with(&TWO, &cap);
        let client = crate::helpers::http_client();
        for member in &members {
            wait_ready(&client, member).await;
        }
        let admin = admin_token(&client, &members[0].http).await;
        let holders = settled(&client, &members[0].http, &admin, &TWO).await;
        let sku = "CARRIED-1";
        let shard = u64::from(souk_cluster::shard_of(sku, SHARDS).0);
        let (owner, sender) = match holders[&shard] == members[0].id {
            true => (&members[0], &members[1]),
            false => (&members[1], &members[0]),
        };
        stock_sku(&client, &owner.http, &admin, sku, 20).await;
        let token = customers(&client, &sender.http, 1).await.remove(0);
        // Orders each member's node writer has written.
        let written = |member| counter(&client, member, "souk_order_batch_size_sum");
        let (owner_before, sender_before) = (written(owner).await, written(sender).await);

        // Five checkouts through the member that does not own the SKU: the cap.
        let mut ids = Vec::new();
        for index in 0..5 {
            let key = format!("carried-{index}");
            let response = checkout_one(&client, &sender.http, &token, &key, sku).await;
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
            let order: Value = response.json().await.unwrap();
            ids.push(order["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            written(owner).await - owner_before,
            5.0,
            "the owner wrote them"
        );
        assert_eq!(
            written(sender).await - sender_before,
            0.0,
            "the sender wrote none"
        );

        // A sixth is refused by the owner's commit, which counted the five; the unit it
        // reserved there is released.
        let response = checkout_one(&client, &sender.http, &token, "carried-5", sku).await;
        assert_problem(response, 409, "unpaid_order_limit").await;
        // The first, retried through the sender, is the order placed then.
        let response = checkout_one(&client, &sender.http, &token, "carried-0", sku).await;
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let replayed: Value = response.json().await.unwrap();
        assert_eq!(replayed["id"], ids[0].as_str());
        assert_eq!(
            written(sender).await - sender_before,
            0.0,
            "the sender wrote none"
        );
        for member in &members {
            let stock = stock_on(&client, &member.http, &admin, sku).await;
            assert_eq!(stock["reserved"], 5, "read on {}", member.id);
        }

        // Each order was stored whole, once, with its line and its `order.placed` event,
        // and reads the same through either member.
        let db = deployment.db().await;
        let (orders, lines, events): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_lines), \
             (SELECT COUNT(*) FROM outbox_events WHERE topic = 'order.placed')",
        )
        .fetch_one(db.pool())
        .await
        .unwrap();
        assert_eq!((orders, lines, events), (5, 5, 5));
        for member in &members {
            let response = client
                .get(format!("{}/api/v1/orders/{}", member.http, ids[4]))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "read on {}", member.id);
            let order: Value = response.json().await.unwrap();
            assert_eq!(order["status"], "pending_payment");
            assert_eq!(order["items"][0]["sku"], sku);
        }
        for member in members {
            member.stop();
        }
    });
}
