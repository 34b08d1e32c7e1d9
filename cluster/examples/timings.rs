//! Measures the cluster's timings with the default settings (1024 shards, 4 s leases
//! renewed every second, 4 s membership records) against a real nats-server, with an
//! entity host stand-in that finishes every handoff at once:
//! three nodes starting together until all are ready, a fourth joining, a graceful
//! stop and a kill (dropping a node without leaving) until every shard is served again.
//! Then the lease-write rate one node reaches renewing 1024 leases, 128 writes in
//! flight. `cargo run -p souk-cluster --example timings [-- nats://127.0.0.1:14222]`
//! (default: `SOUK_TEST_NATS_URL`, else the test server's port). Uses a namespace of
//! its own and deletes its buckets at the end.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use souk_cluster::{Acquire, ClusterNode, ClusterSettings, Handoff, LeaseStore, ShardId};

async fn node(url: &str, name: &str, namespace: &str) -> ClusterNode {
    let client = async_nats::connect(url).await.expect("reach NATS");
    let settings = ClusterSettings {
        node_id: name.to_owned(),
        namespace: namespace.to_owned(),
        ..ClusterSettings::default()
    };
    let node = ClusterNode::start(client, settings)
        .await
        .expect("start node");
    instant_host(&node);
    node
}

/// Stands in for an entity host with nothing to flush: every shard that starts
/// draining is reported handed over at once.
fn instant_host(node: &ClusterNode) {
    let mut table = node.table();
    let handoffs = node.handoffs();
    tokio::spawn(async move {
        loop {
            let draining: Vec<Handoff> = table.borrow_and_update().draining().collect();
            for handoff in draining {
                handoffs.done(handoff);
            }
            if table.changed().await.is_err() {
                return;
            }
        }
    });
}

/// Waits until every shard is served by exactly one of `nodes`; returns how long.
async fn until_served(nodes: &[&ClusterNode]) -> Duration {
    let started = Instant::now();
    loop {
        let tables: Vec<_> = nodes.iter().map(|node| node.snapshot()).collect();
        let members = tables[0].ring.members().len();
        let all = (0..tables[0].shard_count())
            .map(ShardId)
            .all(|shard| tables.iter().filter(|table| table.serves(shard)).count() == 1);
        if all && members == nodes.len() {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never settled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::args().nth(1).unwrap_or_else(|| {
        std::env::var("SOUK_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".to_owned())
    });
    let namespace = format!("probe{}", std::process::id());
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        node(&url, "a", &namespace),
        node(&url, "b", &namespace),
        node(&url, "c", &namespace)
    );
    let settled = until_served(&[&a, &b, &c]).await;
    println!(
        "3 nodes started together: every shard served after {:?}",
        started.elapsed()
    );
    let _ = settled;

    let joined = Instant::now();
    let d = node(&url, "d", &namespace).await;
    until_served(&[&a, &b, &c, &d]).await;
    println!("a 4th node joined: settled after {:?}", joined.elapsed());

    let stopping = Instant::now();
    d.stop().await;
    until_served(&[&a, &b, &c]).await;
    println!(
        "graceful stop: every shard served again after {:?}",
        stopping.elapsed()
    );

    let killed = Instant::now();
    drop(c);
    until_served(&[&a, &b]).await;
    println!(
        "kill: every shard served again after {:?}",
        killed.elapsed()
    );

    a.stop().await;
    b.stop().await;

    renewal_rate(&url, &namespace).await;

    let client = async_nats::connect(&url).await.expect("reach NATS");
    let jetstream = async_nats::jetstream::new(client);
    for bucket in ["members", "leases"] {
        let _ = jetstream
            .delete_key_value(format!("{namespace}_{bucket}"))
            .await;
    }
}

/// Takes every shard with one lease store and renews them all a few times.
async fn renewal_rate(url: &str, namespace: &str) {
    let client = async_nats::connect(url).await.expect("reach NATS");
    let settings = ClusterSettings {
        node_id: "renewer".to_owned(),
        namespace: namespace.to_owned(),
        ..ClusterSettings::default()
    };
    let jetstream = async_nats::jetstream::new(client);
    let store = LeaseStore::open(&jetstream, &settings, "renewer-1")
        .await
        .expect("leases bucket");
    let mut leases = Vec::new();
    for shard in (0..settings.shards).map(ShardId) {
        // The other nodes released everything on their graceful stop.
        if let Ok(Acquire::Acquired(lease)) = store.try_acquire(shard).await {
            leases.push(lease);
        }
    }
    let rounds = 5;
    let started = Instant::now();
    for _ in 0..rounds {
        leases = futures_util::stream::iter(leases)
            .map(|mut lease| {
                let store = store.clone();
                async move {
                    store.renew(&mut lease).await.expect("renew");
                    lease
                }
            })
            .buffer_unordered(128)
            .collect()
            .await;
    }
    let elapsed = started.elapsed();
    let writes = leases.len() * rounds;
    println!(
        "renewed {} leases {rounds} times: {:.0} lease writes/s ({:?} per round)",
        leases.len(),
        writes as f64 / elapsed.as_secs_f64(),
        elapsed / rounds as u32
    );
    for lease in leases {
        let _ = store.release(lease).await;
    }
}
