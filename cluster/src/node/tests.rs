//! The driver against the test nats-server (`SOUK_TEST_NATS_URL`) with what only the
//! crate's own tests can do: make one renewal's or one take's acknowledgement go
//! missing.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::ClusterNode;
use crate::ring::ShardId;
use crate::settings::ClusterSettings;

fn nats_url() -> String {
    std::env::var("SOUK_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:14222".to_owned())
}

/// Leases of 2 s renewed every 300 ms and served until 600 ms before they could
/// expire, in a namespace no other test uses.
fn settings(node: &str) -> ClusterSettings {
    let id = uuid::Uuid::now_v7().simple().to_string();
    ClusterSettings {
        node_id: node.to_owned(),
        shards: 64,
        namespace: format!("t{}", &id[id.len() - 12..]),
        lease_ttl_secs: 2,
        lease_renew_ms: 300,
        lease_margin_ms: 600,
        membership_ttl_secs: 2,
        membership_renew_ms: 300,
        kv_replicas: 1,
        handoff_timeout_ms: 500,
        ..ClusterSettings::default()
    }
}

/// A node of `settings(name)` started and ready, with its client, namespace and serving
/// window.
async fn ready_node(name: &str) -> (async_nats::Client, ClusterNode, String, Duration) {
    ready_node_of(settings(name)).await
}

/// A node of `settings` started and ready, as [`ready_node`].
async fn ready_node_of(
    settings: ClusterSettings,
) -> (async_nats::Client, ClusterNode, String, Duration) {
    let client = async_nats::connect(nats_url())
        .await
        .expect("the test nats-server (SOUK_TEST_NATS_URL)");
    let namespace = settings.namespace.clone();
    let serving_window = settings.lease_ttl() - settings.lease_margin();
    let node = ClusterNode::start(client.clone(), settings)
        .await
        .expect("start node");
    assert!(node.wait_ready(Duration::from_secs(10)).await);
    (client, node, namespace, serving_window)
}

/// Deletes the namespace's buckets, which no other test uses.
async fn forget_buckets(client: async_nats::Client, namespace: &str) {
    let jetstream = async_nats::jetstream::new(client);
    for bucket in ["members", "leases"] {
        let _ = jetstream
            .delete_key_value(format!("{namespace}_{bucket}"))
            .await;
    }
}

/// Checks every 10 ms for `period` that the node serves every shard.
async fn serves_all(node: &ClusterNode, period: Duration) {
    let started = Instant::now();
    while started.elapsed() < period {
        let table = node.snapshot();
        for shard in (0..64).map(ShardId) {
            assert!(
                table.serves(shard),
                "shard {shard} not served {:?} into the watch",
                started.elapsed()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_renewal_whose_acknowledgement_is_lost_costs_no_shard_its_lease() {
    let (client, node, namespace, serving_window) = ready_node("slow").await;

    // One renewal lands but is answered only after far longer than the serving window
    // (and than the store's own write timeout).
    let slow = ShardId(5);
    node.leases
        .lose_next_renewal_ack(slow, Duration::from_secs(10));
    let before: BTreeMap<ShardId, Instant> = node
        .snapshot()
        .owned
        .iter()
        .map(|(shard, owned)| (*shard, owned.valid_until))
        .collect();

    // Every shard stays served throughout, renewed as usual; the slow one too: its
    // renewal found its own write in the bucket and made the next one from it.
    serves_all(&node, serving_window * 2).await;
    let after = node.snapshot();
    for (shard, valid_until) in &before {
        assert!(
            after.owned[shard].valid_until > *valid_until + serving_window,
            "shard {shard}'s deadline kept moving"
        );
    }

    drop(node);
    forget_buckets(client, &namespace).await;
}

/// A renewal whose first write and whose second (made from the first, found in the
/// bucket) both land but are answered only long after the lease's length: the renewal
/// gives up at the lease's deadline, the shard leaves the table, and the node takes its
/// own record back, continuing the same tenure, and renews it as before. No other shard
/// is touched meanwhile.
#[tokio::test]
async fn a_renewal_whose_two_writes_are_both_answered_late_gives_its_shard_up_and_takes_it_back() {
    let (client, node, namespace, serving_window) = ready_node("late").await;

    let slow = ShardId(5);
    // The renewal's first write and its second, made from the first.
    for _ in 0..2 {
        node.leases
            .lose_next_renewal_ack(slow, Duration::from_secs(10));
    }
    let held = node.snapshot().owned[&slow];
    let lost_at = Instant::now();

    // Until the slow shard is served again after a gap (or for four serving windows at
    // most), every other shard stays served.
    let mut gap_started = None;
    let served_again = loop {
        let table = node.snapshot();
        let now = Instant::now();
        for shard in (0..64).map(ShardId).filter(|shard| *shard != slow) {
            assert!(
                table.serves(shard),
                "shard {shard} not served {:?} after the slow renewal",
                lost_at.elapsed()
            );
        }
        match (table.serving_epoch(slow), gap_started) {
            (None, None) => gap_started = Some(now),
            (Some(served), Some(_)) => break Some(served),
            _ => {}
        }
        if lost_at.elapsed() > serving_window * 4 {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let (Some(served_again), Some(gap_started)) = (served_again, gap_started) else {
        panic!("shard {slow} was not given up and taken back within four serving windows");
    };
    assert_eq!(
        served_again, held.epoch,
        "its own record is taken back, same tenure"
    );
    // Served until the last deadline a renewal confirmed, not given up before it.
    assert!(
        gap_started >= held.valid_until,
        "given up {:?} before its confirmed deadline",
        held.valid_until - gap_started
    );
    // And renewed as usual from then on, though the late answers are still to come:
    // the renewal that waited for them ended at the lease's deadline.
    serves_all(&node, serving_window * 2).await;

    drop(node);
    forget_buckets(client, &namespace).await;
}

#[tokio::test]
async fn an_acquisition_whose_acknowledgement_is_lost_delays_no_other_shard() {
    let (client, node, namespace, serving_window) = ready_node("taker").await;

    // Eight leases vanish at once (as when they expired), so the driver takes them back
    // together; one take lands but is answered only long after a lease's length.
    let slow = ShardId(5);
    node.leases
        .lose_next_acquisition_ack(slow, Duration::from_secs(10));
    let jetstream = async_nats::jetstream::new(client.clone());
    let leases = jetstream
        .get_key_value(format!("{namespace}_leases"))
        .await
        .expect("the leases bucket");
    let lost: Vec<ShardId> = (0..8).map(ShardId).collect();
    let before = node.snapshot();
    let epoch_before = |shard: ShardId| before.owned[&shard].epoch;
    for shard in &lost {
        leases
            .delete(crate::lease::shard_key(*shard))
            .await
            .expect("delete a lease");
    }

    // The seven others are served again, under new tenures, within two serving windows
    // (a renewal's interval to notice the loss, one to take them back), long before the
    // slow answer would have come.
    let retaken = |shard: ShardId| {
        node.snapshot()
            .serving_epoch(shard)
            .is_some_and(|epoch| epoch > epoch_before(shard))
    };
    let started = Instant::now();
    tokio::time::timeout(serving_window * 2, async {
        loop {
            let others_served = lost
                .iter()
                .filter(|shard| **shard != slow)
                .all(|shard| retaken(*shard));
            if others_served {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "the other shards were not taken back in {:?}",
            started.elapsed()
        )
    });

    // The slow one: its take gave up after a lease's length; the record it wrote is
    // found as this node's own and continued.
    tokio::time::timeout(Duration::from_secs(6), async {
        while !retaken(slow) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the slow shard is served again");
    serves_all(&node, serving_window).await;

    drop(node);
    forget_buckets(client, &namespace).await;
}

/// Renewing every lease changes only how long each is valid: the driver folds a round
/// of renewals into a few tables instead of one per renewal, so the tasks watching the
/// table (the handoffs, every router) are not woken for each lease. The deadlines
/// still move on, and every shard stays served.
#[tokio::test]
async fn a_round_of_renewals_publishes_a_few_tables_not_one_per_lease() {
    let (client, node, namespace, serving_window) = ready_node_of(ClusterSettings {
        shards: 1024,
        ..settings("quiet")
    })
    .await;
    let before = node.snapshot();
    let renewal_interval = Duration::from_millis(300);
    let rounds = 6u32;

    serves_all(&node, renewal_interval * rounds).await;

    let after = node.snapshot();
    let published = after.version - before.version;
    assert!(
        published <= 3 * u64::from(rounds),
        "{published} tables in {rounds} rounds of 64 renewals"
    );
    for (shard, owned) in &before.owned {
        assert!(
            after.owned[shard].valid_until > owned.valid_until + serving_window / 2,
            "shard {shard}'s deadline kept moving"
        );
    }

    drop(node);
    forget_buckets(client, &namespace).await;
}
