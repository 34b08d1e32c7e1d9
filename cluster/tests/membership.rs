//! Membership against the test nats-server: join, the live member set seen by every
//! node, a node that stops renewing drops out, a graceful leave, the pinned shard count
//! and entity kinds.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use souk_cluster::{ClusterError, Membership, NodeId};
use support::{connect, drop_namespace, fresh_namespace, nats_url, settings};

fn ids(names: &[&str]) -> BTreeSet<NodeId> {
    names
        .iter()
        .map(|name| NodeId::parse(name).unwrap())
        .collect()
}

#[tokio::test]
async fn members_see_joins_leaves_and_expiries() {
    let client = connect(&nats_url()).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let namespace = fresh_namespace();

    let a = Membership::join(&jetstream, &settings("a", &namespace))
        .await
        .unwrap();
    let mut view = a.members();
    tokio::time::timeout(
        Duration::from_secs(5),
        view.wait_for(|set| *set == ids(&["a"])),
    )
    .await
    .expect("a sees itself")
    .unwrap();

    let b = Membership::join(&jetstream, &settings("b", &namespace))
        .await
        .unwrap();
    let c = Membership::join(&jetstream, &settings("c", &namespace))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        view.wait_for(|set| *set == ids(&["a", "b", "c"])),
    )
    .await
    .expect("a sees b and c join")
    .unwrap();
    let mut view_of_b = b.members();
    tokio::time::timeout(
        Duration::from_secs(5),
        view_of_b.wait_for(|set| *set == ids(&["a", "b", "c"])),
    )
    .await
    .expect("b has the same view")
    .unwrap();

    // A graceful leave removes the record at once (well before its 2 s TTL).
    let left = Instant::now();
    b.leave().await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(1),
        view.wait_for(|set| *set == ids(&["a", "c"])),
    )
    .await
    .expect("a sees b leave within a second")
    .unwrap();
    assert!(left.elapsed() < Duration::from_secs(1));

    // A node that stops renewing (dropped: as if killed) drops out once its record's
    // 2 s TTL passes, through the server's expiry marker.
    let stopped = Instant::now();
    drop(c);
    tokio::time::timeout(
        Duration::from_secs(6),
        view.wait_for(|set| *set == ids(&["a"])),
    )
    .await
    .expect("a sees c expire")
    .unwrap();
    let expired_after = stopped.elapsed();
    assert!(
        expired_after >= Duration::from_millis(1_500),
        "c's record lived its TTL, not less: {expired_after:?}"
    );
    println!("a dead member dropped out after {expired_after:?} (ttl 2 s)");

    // A node that renews stays: a outlived several TTLs meanwhile.
    assert!(view.borrow().contains(&NodeId::parse("a").unwrap()));
    a.leave().await.unwrap();
    drop_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn a_node_with_another_shard_count_refuses_to_join() {
    let client = connect(&nats_url()).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let namespace = fresh_namespace();
    let first = Membership::join(&jetstream, &settings("a", &namespace))
        .await
        .unwrap();

    let mut other = settings("b", &namespace);
    other.shards = 128;
    let refused = Membership::join(&jetstream, &other).await;
    match refused {
        Err(
            error @ ClusterError::ShardCountMismatch {
                cluster: 64,
                configured: 128,
            },
        ) => {
            assert!(error.to_string().contains("64 shards"), "{error}");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a node with 128 shards joined a 64-shard cluster"),
    }
    // The record outlives every member: the count is the deployment's.
    first.leave().await.unwrap();
    let refused_later = Membership::join(&jetstream, &other).await;
    assert!(matches!(
        refused_later,
        Err(ClusterError::ShardCountMismatch { .. })
    ));
    let same = Membership::join(&jetstream, &settings("c", &namespace))
        .await
        .unwrap();
    same.leave().await.unwrap();
    drop_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn a_node_hosting_other_entity_kinds_refuses_to_join() {
    let client = connect(&nats_url()).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let namespace = fresh_namespace();
    let hosting = |node: &str, kinds: &[&str]| {
        let mut settings = settings(node, &namespace);
        settings.entity_kinds = kinds.iter().map(|kind| kind.to_string()).collect();
        settings
    };
    let first = Membership::join(&jetstream, &hosting("a", &["sku", "order"]))
        .await
        .unwrap();
    // The same kinds listed in another order are the same kinds.
    let same = Membership::join(&jetstream, &hosting("b", &["order", "sku"]))
        .await
        .unwrap();

    let refused = Membership::join(&jetstream, &hosting("c", &["order"])).await;
    match refused {
        Err(error @ ClusterError::EntityKindsMismatch { .. }) => {
            let message = error.to_string();
            assert!(message.contains("order,sku"), "{message}");
            assert!(message.contains("hosts order;"), "{message}");
            assert!(message.contains("cluster.namespace"), "{message}");
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a node hosting orders only joined a cluster hosting skus and orders"),
    }
    // The record outlives every member: the kinds are the deployment's.
    first.leave().await.unwrap();
    same.leave().await.unwrap();
    assert!(matches!(
        Membership::join(&jetstream, &hosting("c", &[])).await,
        Err(ClusterError::EntityKindsMismatch { .. })
    ));
    drop_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn a_second_process_with_the_same_node_id_displaces_the_first() {
    let client = connect(&nats_url()).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let namespace = fresh_namespace();
    let old = Membership::join(&jetstream, &settings("a", &namespace))
        .await
        .unwrap();
    let mut old_registered = old.registered();
    let new = Membership::join(&jetstream, &settings("a", &namespace))
        .await
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(3),
        old_registered.wait_for(|live| !*live),
    )
    .await
    .expect("the old process learns it was displaced")
    .unwrap();
    assert!(*new.registered().borrow());
    new.leave().await.unwrap();
    drop(old);
    drop_namespace(&client, &namespace).await;
}

#[tokio::test]
async fn invalid_settings_are_refused_before_touching_nats() {
    let client = connect(&nats_url()).await;
    let jetstream = async_nats::jetstream::new(client.clone());
    let mut bad = settings("node.with.dots", &fresh_namespace());
    bad.node_id = "node.with.dots".to_owned();
    let error = Membership::join(&jetstream, &bad)
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("node_id"), "{error}");
}
