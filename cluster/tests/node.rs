//! Clustered nodes (in one process, each with its own NATS connection) against the test
//! nats-server: every shard gets exactly one owner, a join moves about 1/N of the
//! shards and only to the joiner, graceful stops and kills hand shards over with higher
//! epochs, and a node cut off from NATS stops serving before its leases can expire.
//! A monitor checks throughout that no shard is ever served by two nodes at once.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use souk_cluster::{ClusterNode, ClusterSettings, ShardId, ShardState, ShardTable};
use support::{
    connect, drop_namespace, eventually, fresh_namespace, nats_url, settings, PrivateNats,
};
use tokio::sync::watch;

async fn start(url: &str, settings: ClusterSettings) -> ClusterNode {
    ClusterNode::start(connect(url).await, settings)
        .await
        .expect("start node")
}

/// Samples every node's table every 5 ms and fails on a shard served twice.
struct Monitor {
    stop: Arc<AtomicBool>,
    samples: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    fn start(tables: Vec<watch::Receiver<Arc<ShardTable>>>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(AtomicUsize::new(0));
        let task = {
            let stop = stop.clone();
            let samples = samples.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let snapshots: Vec<Arc<ShardTable>> =
                        tables.iter().map(|table| table.borrow().clone()).collect();
                    let mut servers: BTreeMap<ShardId, Vec<String>> = BTreeMap::new();
                    for table in &snapshots {
                        for shard in table.owned.keys() {
                            if table.serves(*shard) {
                                servers
                                    .entry(*shard)
                                    .or_default()
                                    .push(table.node.to_string());
                            }
                        }
                    }
                    for (shard, nodes) in servers {
                        assert!(
                            nodes.len() == 1,
                            "shard {shard} served by {nodes:?} at once"
                        );
                    }
                    samples.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        };
        Self {
            stop,
            samples,
            task,
        }
    }

    async fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("no shard was served twice");
        self.samples.load(Ordering::Relaxed)
    }
}

/// Every shard served by exactly the ring's owner, on every node's view.
fn settled(nodes: &[&ClusterNode]) -> bool {
    let tables: Vec<Arc<ShardTable>> = nodes.iter().map(|node| node.snapshot()).collect();
    let Some(first) = tables.first() else {
        return true;
    };
    let expected: BTreeSet<String> = nodes
        .iter()
        .map(|node| node.node_id().to_string())
        .collect();
    let members: BTreeSet<String> = first.ring.members().iter().map(|n| n.to_string()).collect();
    if members != expected {
        return false;
    }
    (0..first.shard_count()).map(ShardId).all(|shard| {
        let owner = first.ring.owner(shard).expect("members");
        let servers: Vec<&Arc<ShardTable>> =
            tables.iter().filter(|table| table.serves(shard)).collect();
        servers.len() == 1 && &servers[0].node == owner
    })
}

fn epochs(node: &ClusterNode) -> BTreeMap<ShardId, u64> {
    node.snapshot()
        .owned
        .iter()
        .map(|(shard, owned)| (*shard, owned.epoch))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_every_shard_once_through_joins_stops_and_kills() {
    let url = nats_url();
    let namespace = fresh_namespace();

    // Three nodes started at the same moment.
    let (a, b, c) = tokio::join!(
        start(&url, settings("a", &namespace)),
        start(&url, settings("b", &namespace)),
        start(&url, settings("c", &namespace)),
    );
    let monitor = Monitor::start(vec![a.table(), b.table(), c.table()]);
    for node in [&a, &b, &c] {
        assert!(
            node.wait_ready(Duration::from_secs(10)).await,
            "{} ready",
            node.node_id()
        );
    }
    eventually(Duration::from_secs(5), "3 nodes settle", || async {
        settled(&[&a, &b, &c])
    })
    .await;
    let before: BTreeMap<ShardId, String> = (0..64)
        .map(|shard| {
            let shard = ShardId(shard);
            (shard, a.snapshot().owner(shard).unwrap().to_string())
        })
        .collect();

    // A fourth joins: about a quarter of the shards move, all of them to it.
    let d = start(&url, settings("d", &namespace)).await;
    let monitor_d = Monitor::start(vec![a.table(), b.table(), c.table(), d.table()]);
    let joined = Instant::now();
    eventually(Duration::from_secs(10), "4 nodes settle", || async {
        settled(&[&a, &b, &c, &d])
    })
    .await;
    println!("join settled in {:?}", joined.elapsed());
    let after = a.snapshot();
    let moved: Vec<ShardId> = before
        .iter()
        .filter(|(shard, owner)| after.owner(**shard).unwrap().as_str() != owner.as_str())
        .map(|(shard, _)| *shard)
        .collect();
    assert!(moved
        .iter()
        .all(|shard| after.owner(*shard).unwrap().as_str() == "d"));
    assert_eq!(moved.len(), after.ring.shards_of(d.node_id()).len());
    assert!(
        (8..=26).contains(&moved.len()),
        "about 16 of 64 moved: {}",
        moved.len()
    );

    // A graceful stop hands b's shards over at once, each with a higher epoch.
    let epochs_of_b = epochs(&b);
    let stopping = Instant::now();
    b.stop().await;
    eventually(Duration::from_secs(10), "b's shards taken over", || async {
        settled(&[&a, &c, &d])
    })
    .await;
    let handover = stopping.elapsed();
    println!("graceful stop: shards served again after {handover:?}");
    for (shard, old_epoch) in &epochs_of_b {
        let new_epoch = [&a, &c, &d]
            .iter()
            .find_map(|node| node.snapshot().serving_epoch(*shard))
            .expect("served");
        assert!(
            new_epoch > *old_epoch,
            "shard {shard}: {new_epoch} > {old_epoch}"
        );
    }

    // A killed node (dropped: no leave, no release) loses its shards when its records
    // expire, within membership ttl + lease ttl and a renew interval.
    let killed = Instant::now();
    drop(c);
    eventually(Duration::from_secs(10), "c's shards taken over", || async {
        settled(&[&a, &d])
    })
    .await;
    let failover = killed.elapsed();
    println!("kill: shards served again after {failover:?}");
    assert!(
        failover < Duration::from_secs(6),
        "failover took {failover:?}"
    );

    let samples = monitor.finish().await + monitor_d.finish().await;
    println!("{samples} samples of all tables, no shard served twice");
    a.stop().await;
    d.stop().await;
    drop_namespace(&connect(&url).await, &namespace).await;
}

/// The test settings with a handoff timeout far longer than any test waits: a draining
/// shard is released only when its handoff is reported done.
fn slow_handoff(node: &str, namespace: &str) -> ClusterSettings {
    ClusterSettings {
        handoff_timeout_ms: 30_000,
        ..settings(node, namespace)
    }
}

#[tokio::test]
async fn a_draining_shard_is_released_as_soon_as_the_host_is_done() {
    let url = nats_url();
    let namespace = fresh_namespace();
    let a = start(&url, slow_handoff("a", &namespace)).await;
    assert!(a.wait_ready(Duration::from_secs(10)).await);
    let b = start(&url, slow_handoff("b", &namespace)).await;

    // a sees shards draining; as the entity host would after flushing, it says done.
    let mut table = a.table();
    let draining = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let draining: Vec<ShardId> = table
                .borrow_and_update()
                .draining()
                .map(|handoff| handoff.shard)
                .collect();
            if !draining.is_empty() {
                break draining;
            }
            table.changed().await.unwrap();
        }
    })
    .await
    .expect("a starts handing shards to b");
    assert!(draining
        .iter()
        .all(|shard| matches!(a.snapshot().owned[shard].state, ShardState::Draining { .. })));
    assert!(draining.iter().all(|shard| !a.snapshot().serves(*shard)));
    let handed = Instant::now();
    let expected = a.snapshot().ring.shards_of(b.node_id());
    for handoff in a.snapshot().draining() {
        if expected.contains(&handoff.shard) {
            a.handoff_done(handoff);
        }
    }
    assert!(
        b.wait_ready(Duration::from_secs(5)).await,
        "b holds its shards"
    );
    let took = handed.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "far below the 30 s handoff timeout: {took:?}"
    );
    drop(a);
    drop(b);
    drop_namespace(&connect(&url).await, &namespace).await;
}

/// A shard can drain, be kept after all (its next owner left before taking it) and
/// drain again; the entity host's report of the first handoff, arriving late, does not
/// release the shard in the middle of the second.
#[tokio::test]
async fn a_late_report_of_an_earlier_handoff_does_not_release_the_next_one() {
    let url = nats_url();
    let namespace = fresh_namespace();
    let a = start(&url, slow_handoff("a", &namespace)).await;
    assert!(a.wait_ready(Duration::from_secs(10)).await);
    let handoff_of = |shard: ShardId| a.snapshot().draining().find(|h| h.shard == shard);
    let patience = Duration::from_secs(10);

    let b = start(&url, slow_handoff("b", &namespace)).await;
    let shard = a.snapshot().ring.shards_of(b.node_id())[0];
    eventually(patience, "a hands a shard to b", || async {
        handoff_of(shard).is_some()
    })
    .await;
    let first = handoff_of(shard).unwrap();
    b.stop().await;
    eventually(patience, "a keeps the shard once b left", || async {
        a.snapshot().serves(shard)
    })
    .await;

    let b = start(&url, slow_handoff("b", &namespace)).await;
    eventually(patience, "a hands the shard to b again", || async {
        handoff_of(shard).is_some_and(|handoff| handoff != first)
    })
    .await;
    let second = handoff_of(shard).unwrap();
    a.handoff_done(first);
    // The driver handles a report as soon as it comes; this is ample time.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handoff_of(shard),
        Some(second),
        "the late report left the second handoff draining"
    );

    a.handoff_done(second);
    eventually(
        patience,
        "b serves the shard once its handoff is reported",
        || async { b.snapshot().serves(shard) },
    )
    .await;
    drop(a);
    drop(b);
    drop_namespace(&connect(&url).await, &namespace).await;
}

#[tokio::test]
async fn a_node_cut_off_from_nats_stops_serving_before_its_leases_can_expire() {
    let mut nats = PrivateNats::start();
    let namespace = fresh_namespace();
    let config = settings("lonely", &namespace);
    let serving_window = config.lease_ttl() - config.lease_margin();
    let node = start(&nats.url(), config).await;
    assert!(node.wait_ready(Duration::from_secs(10)).await);
    assert_eq!(node.snapshot().owned.len(), 64);

    let mut table = node.table();
    nats.stop();
    let cut = Instant::now();
    // Every renewal that counts was sent before the cut, so every deadline the node
    // holds or will publish lies within the serving window of the cut ...
    let bound = cut + serving_window;
    let in_bound =
        |table: &ShardTable| table.owned.values().all(|owned| owned.valid_until <= bound);
    assert!(in_bound(&node.snapshot()));
    // ... and past it the table serves nothing, checked at the query, whatever the
    // scheduler does with the driver's timer.
    tokio::time::sleep_until((bound + Duration::from_millis(1)).into()).await;
    let table_at_bound = node.snapshot();
    assert!(in_bound(&table_at_bound));
    assert!((0..64).all(|shard| !table_at_bound.serves(ShardId(shard))));
    // The driver also publishes the empty table, promptly.
    tokio::time::timeout(
        Duration::from_secs(5),
        table.wait_for(|table| table.owned.is_empty()),
    )
    .await
    .expect("the node reports it serves nothing")
    .unwrap();
    let reported = cut.elapsed();
    assert!(
        reported <= serving_window + Duration::from_secs(1),
        "published {reported:?} after the cut; bound {serving_window:?}"
    );
    println!(
        "cut off: serving ended within {serving_window:?} of the cut; published after {reported:?}"
    );
    drop(node);
}
