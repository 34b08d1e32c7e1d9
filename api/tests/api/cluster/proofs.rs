//! The cluster's guarantees, each shown with real member processes: starting together
//! on an empty database, a member killed, a rolling restart, a frozen member, and a
//! scale-out — under checkout load, with nothing acknowledged lost and nothing
//! oversold.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

/// Units of every SKU: more than any load here reserves.
const STOCK: i64 = 5_000;

/// A hot SKU and a spread of others, each stocked through a different member.
async fn stock_skus(client: &reqwest::Client, members: &[Member], admin: &str) -> Vec<String> {
    let mut skus = vec!["HOT-1".to_owned()];
    skus.extend((0..11).map(|index| format!("SKU-{index:02}")));
    for (index, sku) in skus.iter().enumerate() {
        stock_sku(
            client,
            &members[index % members.len()].http,
            admin,
            sku,
            STOCK,
        )
        .await;
    }
    // The hot SKU takes every other checkout.
    let mut weighted = Vec::new();
    for sku in skus.iter().skip(1) {
        weighted.push(skus[0].clone());
        weighted.push(sku.clone());
    }
    weighted
}

/// The value of cookie `name` set by `response`.
fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

/// The console's cluster page, signed in through the form as the admin.
async fn console_cluster_page(address: &str) -> String {
    let client = crate::helpers::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{address}/admin/login"))
        .send()
        .await
        .unwrap();
    let form_cookie = cookie(&form, "souk_console_signin");
    let page = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a csrf field") + marker.len();
    let csrf = page[start..].split('"').next().unwrap().to_owned();
    let signed_in = client
        .post(format!("{address}/admin/login"))
        .header("cookie", format!("souk_console_signin={form_cookie}"))
        .form(&[
            ("email", "boss@example.com"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "console sign-in");
    let session = cookie(&signed_in, "souk_console");
    client
        .get(format!("{address}/admin/cluster"))
        .header("cookie", format!("souk_console={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn addresses(members: &[Member]) -> Vec<String> {
    members.iter().map(|member| member.http.clone()).collect()
}

/// Three members serving their settled shards under a checkout load.
struct UnderLoad {
    members: Vec<Member>,
    client: reqwest::Client,
    admin: String,
    /// Shard → holder once the three had settled, before the load.
    before: BTreeMap<u64, String>,
    skus: Vec<String>,
    load: Load,
}

const THREE: [&str; 3] = ["node-a", "node-b", "node-c"];

impl UnderLoad {
    /// Starts node-a, node-b and node-c, stocks the SKUs and runs the load until
    /// `warm_up` checkouts are acknowledged.
    async fn start(deployment: &Deployment, warm_up: usize) -> Self {
        deployment.create_admin();
        let members = deployment.start_all(&THREE);
        let client = crate::helpers::http_client();
        for member in &members {
            wait_ready(&client, member).await;
        }
        let admin = admin_token(&client, &members[0].http).await;
        let before = settled(&client, &members[0].http, &admin, &THREE).await;
        let skus = stock_skus(&client, &members, &admin).await;
        let tokens = customers(&client, &members[0].http, 4).await;
        let load = Load::start(addresses(&members), &tokens, &skus);
        load.wait_for(warm_up).await;
        Self {
            members,
            client,
            admin,
            before,
            skus,
            load,
        }
    }
}

#[test]
fn members_started_together_on_an_empty_database_all_serve_with_one_owner_per_shard() {
    let runtime = runtime();
    runtime.block_on(async {
        let deployment = Deployment::new().await;
        // Three processes at once race for the migrations of an empty database.
        let members = deployment.start_all(&THREE);
        let client = crate::helpers::http_client();
        for member in &members {
            wait_ready(&client, member).await;
        }
        deployment.create_admin();
        let admin = admin_token(&client, &members[0].http).await;
        let ids = THREE;
        let first = settled(&client, &members[0].http, &admin, &ids).await;
        for member in &members[1..] {
            // Every member sees the same single holder of every shard.
            assert_eq!(settled(&client, &member.http, &admin, &ids).await, first);
        }
        for id in ids {
            let held = first.values().filter(|holder| *holder == id).count();
            assert!(
                (8..=40).contains(&held),
                "{id} holds {held} of {SHARDS} shards"
            );
        }
        let view = cluster_view(&client, &members[1].http, &admin).await;
        assert_eq!(view["enabled"], true);
        assert_eq!(view["ready"], true);
        // The console's cluster page shows the same members.
        let page = console_cluster_page(&members[1].http).await;
        for id in ids {
            assert!(
                page.contains(id),
                "{id} missing from the console page: {page}"
            );
        }
        assert!(page.contains("Clustered."), "{page}");
        assert_eq!(view["node_id"], "node-b");
        assert_eq!(view["shard_count"], SHARDS);

        // Any member takes any request; every member reads the committed stock.
        let skus = stock_skus(&client, &members, &admin).await;
        let tokens = customers(&client, &members[2].http, 2).await;
        let mut placed = BTreeMap::<String, i64>::new();
        for (index, sku) in skus.iter().take(9).enumerate() {
            let member = &members[index % members.len()];
            let token = &tokens[index % tokens.len()];
            let key = format!("together-{index}");
            let response = checkout_one(&client, &member.http, token, &key, sku).await;
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
            let order: Value = response.json().await.unwrap();
            *placed.entry(sku.clone()).or_default() += 1;
            // The same checkout retried through the next member answers the order placed
            // first and reserves nothing more (the stock is checked below).
            let retry = &members[(index + 1) % members.len()];
            let response = checkout_one(&client, &retry.http, token, &key, sku).await;
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
            let replayed: Value = response.json().await.unwrap();
            assert_eq!(replayed["id"], order["id"], "retried on {}", retry.id);
        }
        for (sku, reserved) in &placed {
            for member in &members {
                let stock = stock_on(&client, &member.http, &admin, sku).await;
                assert_eq!(stock["reserved"], *reserved, "{sku} read on {}", member.id);
                assert_eq!(stock["on_hand"], STOCK, "{sku} read on {}", member.id);
            }
        }
        let db = deployment.db().await;
        let (migrations,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(db.pool())
            .await
            .unwrap();
        let expected = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../db/migrations/mysql"
        ))
        .unwrap()
        .count() as i64;
        assert_eq!(migrations, expected, "each migration applied once");
        for member in members {
            member.stop();
        }
    });
}

#[test]
fn a_member_killed_under_load_loses_nothing_and_its_shards_are_served_again_in_seconds() {
    let runtime = runtime();
    runtime.block_on(async {
        let deployment = Deployment::new().await;
        let UnderLoad {
            mut members,
            client,
            admin,
            before,
            load,
            ..
        } = UnderLoad::start(&deployment, 150).await;

        let victim = members.pop().unwrap();
        let orphaned: Vec<u64> = before
            .iter()
            .filter(|(_, holder)| *holder == &victim.id)
            .map(|(shard, _)| *shard)
            .collect();
        let killed_at = Instant::now();
        victim.kill();
        // Each orphaned shard: how long until another member holds it.
        let mut recovered: BTreeMap<u64, u128> = BTreeMap::new();
        while recovered.len() < orphaned.len() {
            assert!(
                killed_at.elapsed() < Duration::from_secs(20),
                "shards not taken over"
            );
            let holders = holders(&cluster_view(&client, &members[0].http, &admin).await);
            for shard in &orphaned {
                if holders.get(shard).is_some_and(|holder| holder != "node-c") {
                    recovered
                        .entry(*shard)
                        .or_insert_with(|| killed_at.elapsed().as_millis());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Shoppers stop sending to the dead member, as a load balancer would.
        *load.addresses.write().unwrap() = addresses(&members);
        load.wait_for(150).await;
        let (acknowledged, statuses) = load.finish().await;
        let (p50, max) = p50_and_max(recovered.values().copied().collect());
        eprintln!(
            "SIGKILL: {} of {SHARDS} shards served again after p50 {p50} ms, max {max} ms; \
             {} checkouts acknowledged; statuses {statuses:?}",
            orphaned.len(),
            acknowledged.len()
        );
        assert!(
            max <= 5_000,
            "shards of the killed member served again after {max} ms"
        );
        settled(&client, &members[0].http, &admin, &["node-a", "node-b"]).await;
        assert_nothing_lost(&deployment.db().await, &acknowledged, &statuses, STOCK).await;
    });
}

#[test]
fn a_rolling_restart_under_load_loses_nothing() {
    let runtime = runtime();
    runtime.block_on(async {
        let deployment = Deployment::new().await;
        let UnderLoad {
            mut members,
            client,
            admin,
            load,
            ..
        } = UnderLoad::start(&deployment, 100).await;
        let ids = THREE;
        for index in 0..members.len() {
            // Out of the load balancer first, then SIGTERM; back in once ready.
            let others: Vec<String> = members
                .iter()
                .enumerate()
                .filter(|(other, _)| *other != index)
                .map(|(_, member)| member.http.clone())
                .collect();
            *load.addresses.write().unwrap() = others.clone();
            let id = members[index].id.clone();
            let stopping = members.remove(index);
            let stopped_at = Instant::now();
            stopping.stop();
            eprintln!(
                "rolling restart: {id} left and stopped in {} ms",
                stopped_at.elapsed().as_millis()
            );
            load.wait_for(50).await;
            let restarted = deployment.start(&id);
            wait_ready(&client, &restarted).await;
            members.insert(index, restarted);
            *load.addresses.write().unwrap() = addresses(&members);
            settled(&client, &others[0], &admin, &ids).await;
            load.wait_for(50).await;
        }
        let (acknowledged, statuses) = load.finish().await;
        eprintln!(
            "rolling restart: {} checkouts acknowledged; statuses {statuses:?}",
            acknowledged.len()
        );
        assert_nothing_lost(&deployment.db().await, &acknowledged, &statuses, STOCK).await;
    });
}

#[test]
fn a_frozen_member_loses_its_shards_and_serves_none_of_them_after_it_resumes() {
    let runtime = runtime();
    runtime.block_on(async {
        let deployment = Deployment::new().await;
        let UnderLoad {
            members,
            client,
            admin,
            before,
            skus,
            load,
        } = UnderLoad::start(&deployment, 100).await;
        // The frozen member's own SKUs are loaded in its memory when it freezes.
        let frozen = &members[2];
        let its_skus: Vec<&String> = skus
            .iter()
            .filter(|sku| before[&u64::from(souk_cluster::shard_of(sku, SHARDS).0)] == frozen.id)
            .collect();

        frozen.signal("STOP");
        let frozen_at = Instant::now();
        // The others stop sending to it; they take its shards once its leases lapse.
        *load.addresses.write().unwrap() = addresses(&members[..2]);
        loop {
            let holders = holders(&cluster_view(&client, &members[0].http, &admin).await);
            if holders.len() == SHARDS as usize && holders.values().all(|holder| holder != "node-c") {
                break;
            }
            assert!(frozen_at.elapsed() < Duration::from_secs(20), "shards stayed with the frozen member");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("frozen: its shards moved after {} ms", frozen_at.elapsed().as_millis());
        load.wait_for(100).await;
        let before_resume = load.acknowledged_count();

        // Resumed with its old actors still in memory: it notices at once that its
        // leases lapsed, and requests sent to it reach the new owners.
        frozen.signal("CONT");
        *load.addresses.write().unwrap() = addresses(&members);
        load.wait_for(150).await;
        let (acknowledged, statuses) = load.finish().await;
        assert!(acknowledged.len() > before_resume);
        let expired = counter(&client, frozen, "souk_cluster_lease_expired_total").await;
        assert!(expired >= 1.0, "the resumed member did not stop serving its lapsed shards");
        let view = cluster_view(&client, &frozen.http, &admin).await;
        eprintln!(
            "resumed: serves {} shards; {} checkouts acknowledged; {} of its SKUs; statuses {statuses:?}",
            view["serving_shards"],
            acknowledged.len(),
            its_skus.len()
        );
        assert_nothing_lost(&deployment.db().await, &acknowledged, &statuses, STOCK).await;
        // Every SKU's row was last written by the owner of the latest epoch.
        let epochs: Vec<(String, i64)> = sqlx::query_as("SELECT sku, owner_epoch FROM inventory_items")
            .fetch_all(deployment.db().await.pool())
            .await
            .unwrap();
        assert!(epochs.iter().all(|(_, epoch)| *epoch > 0), "clustered writes carry an epoch: {epochs:?}");
        drop(members);
    });
}

#[test]
fn scaling_out_moves_about_a_quarter_of_the_shards_and_loses_nothing() {
    let runtime = runtime();
    runtime.block_on(async {
        let deployment = Deployment::new().await;
        let UnderLoad {
            mut members,
            client,
            admin,
            before,
            load,
            ..
        } = UnderLoad::start(&deployment, 100).await;

        let joined_at = Instant::now();
        let fourth = deployment.start("node-d");
        wait_ready(&client, &fourth).await;
        members.push(fourth);
        let after = settled(
            &client,
            &members[0].http,
            &admin,
            &["node-a", "node-b", "node-c", "node-d"],
        )
        .await;
        let settled_ms = joined_at.elapsed().as_millis();
        *load.addresses.write().unwrap() = addresses(&members);
        load.wait_for(150).await;
        let (acknowledged, statuses) = load.finish().await;
        let moved = before
            .iter()
            .filter(|(shard, holder)| after[shard] != **holder)
            .count();
        assert!(
            after
                .iter()
                .filter(|(_, holder)| *holder == "node-d")
                .count()
                == moved,
            "only shards given to the new member moved"
        );
        eprintln!(
            "scale 3 -> 4: {moved} of {SHARDS} shards moved in {settled_ms} ms (start included); \
             {} checkouts acknowledged; statuses {statuses:?}",
            acknowledged.len()
        );
        // A quarter of 64 is 16; rendezvous hashing varies around it.
        assert!((8..=26).contains(&moved), "{moved} shards moved");
        assert_nothing_lost(&deployment.db().await, &acknowledged, &statuses, STOCK).await;
    });
}
