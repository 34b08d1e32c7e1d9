//! Shard leases against the test nats-server: one holder at a time under contention,
//! takeover with a higher epoch when the holder stops renewing (and never before the
//! old holder's serving deadline), release (which never removes a tenure taken back
//! since), and a lost acknowledgement.

mod support;

use std::time::{Duration, Instant};

use souk_cluster::{Acquire, Lease, LeaseError, LeaseStore, ShardId};
use support::{connect, drop_namespace, fresh_namespace, nats_url, settings};

async fn store(node: &str, namespace: &str) -> LeaseStore {
    // One connection per contender, as on separate nodes.
    let client = connect(&nats_url()).await;
    let jetstream = async_nats::jetstream::new(client);
    LeaseStore::open(
        &jetstream,
        &settings(node, namespace),
        &format!("{node}-incarnation"),
    )
    .await
    .expect("open the leases bucket")
}

fn acquired(outcome: Acquire) -> Lease {
    match outcome {
        Acquire::Acquired(lease) => lease,
        Acquire::HeldBy(holder) => panic!("held by {holder:?}"),
    }
}

#[tokio::test]
async fn two_contenders_racing_for_free_shards_get_one_each_time() {
    let namespace = fresh_namespace();
    let a = store("a", &namespace).await;
    let b = store("b", &namespace).await;
    for shard in (0..16).map(ShardId) {
        let (left, right) = tokio::join!(a.try_acquire(shard), b.try_acquire(shard));
        let outcomes = [left.expect("a answered"), right.expect("b answered")];
        let winners: Vec<&Lease> = outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Acquire::Acquired(lease) => Some(lease),
                Acquire::HeldBy(_) => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "shard {shard}: {outcomes:?}");
        let loser_sees = outcomes.iter().find_map(|outcome| match outcome {
            Acquire::HeldBy(holder) => Some(holder.epoch),
            Acquire::Acquired(_) => None,
        });
        assert_eq!(
            loser_sees,
            Some(winners[0].epoch()),
            "the loser sees the winner's epoch"
        );
    }
    drop_namespace(&connect(&nats_url()).await, &namespace).await;
}

#[tokio::test]
async fn a_holder_that_stops_renewing_is_replaced_with_a_higher_epoch_after_its_deadline() {
    let namespace = fresh_namespace();
    let a = store("a", &namespace).await;
    let b = store("b", &namespace).await;
    let shard = ShardId(7);

    let mut lease_a = acquired(a.try_acquire(shard).await.unwrap());
    let first_epoch = lease_a.epoch();
    // Renewing keeps the epoch and pushes the deadline; b keeps finding it held.
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = lease_a.valid_until();
        a.renew(&mut lease_a).await.expect("renew");
        assert_eq!(lease_a.epoch(), first_epoch);
        assert!(lease_a.valid_until() > before);
        match b.try_acquire(shard).await.unwrap() {
            Acquire::HeldBy(holder) => {
                assert_eq!(holder.node.as_str(), "a");
                assert_eq!(holder.epoch, first_epoch);
            }
            Acquire::Acquired(lease) => panic!("b took a renewed lease: {lease:?}"),
        }
    }

    // a stops renewing (frozen, partitioned): b polls until it gets the shard.
    let a_stops_serving = lease_a.valid_until();
    let stopped = Instant::now();
    let lease_b = loop {
        match b.try_acquire(shard).await.unwrap() {
            Acquire::Acquired(lease) => break lease,
            Acquire::HeldBy(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    };
    let taken = Instant::now();
    assert!(
        taken > a_stops_serving,
        "b serves only after a's serving deadline ({:?} after it)",
        taken.duration_since(a_stops_serving)
    );
    assert!(
        lease_b.epoch() > first_epoch,
        "a new tenure has a higher epoch"
    );
    let takeover = taken.duration_since(stopped);
    assert!(
        takeover < Duration::from_secs(5),
        "takeover took {takeover:?}"
    );
    println!(
        "takeover {takeover:?} after the last renewal; gap after a's deadline {:?}",
        taken.duration_since(a_stops_serving)
    );

    // a learns it lost the lease, and who has it.
    match a.renew(&mut lease_a).await {
        Err(LeaseError::Lost {
            holder: Some(holder),
        }) => {
            assert_eq!(holder.node.as_str(), "b");
            assert_eq!(holder.epoch, lease_b.epoch());
        }
        other => panic!("a still renews a lease b took: {other:?}"),
    }

    // A released lease is free at once, for a higher epoch again.
    let released_epoch = lease_b.epoch();
    b.release(lease_b).await.unwrap();
    let lease_a = acquired(a.try_acquire(shard).await.unwrap());
    assert!(lease_a.epoch() > released_epoch);
    drop_namespace(&connect(&nats_url()).await, &namespace).await;
}

#[tokio::test]
async fn releasing_a_lease_the_holder_took_back_since_leaves_the_new_tenure_alone() {
    let namespace = fresh_namespace();
    let a = store("a", &namespace).await;
    let b = store("b", &namespace).await;
    let shard = ShardId(11);

    // a gives the shard up (a handoff) while it takes it back (the ring flipped
    // back): the second take finds a's own record and continues its tenure.
    let given_up = acquired(a.try_acquire(shard).await.unwrap());
    let mut taken_back = acquired(a.try_acquire(shard).await.unwrap());
    let epoch = given_up.epoch();
    assert_eq!(taken_back.epoch(), epoch);
    a.release(given_up).await.expect("release answered");

    // The record a serves under is still there: nobody else can take the shard,
    // and a's tenure goes on past the ttl the released write had.
    match a.holder(shard).await.unwrap() {
        Some(holder) => assert_eq!(holder.node.as_str(), "a"),
        None => panic!("the release removed the lease a serves under"),
    }
    for _ in 0..8 {
        match b.try_acquire(shard).await.unwrap() {
            Acquire::HeldBy(holder) => assert_eq!(holder.node.as_str(), "a"),
            Acquire::Acquired(lease) => panic!("b took a shard a serves: {lease:?}"),
        }
        a.renew(&mut taken_back).await.expect("a renews its tenure");
        assert_eq!(taken_back.epoch(), epoch);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop_namespace(&connect(&nats_url()).await, &namespace).await;
}

/// When each contender considered itself the holder, on one clock.
#[derive(Debug, Clone, Copy)]
struct Tenure {
    holder: &'static str,
    epoch: u64,
    start: Instant,
    end: Instant,
}

/// A contender that serves while its lease is valid and renews every 100 ms, but now
/// and then stops renewing for longer than the TTL (a GC pause, a frozen process);
/// after losing the lease it waits 400 ms before contending again.
async fn contend(
    holder: &'static str,
    store: LeaseStore,
    shard: ShardId,
    until: Instant,
    seed: u64,
) -> Vec<Tenure> {
    let mut tenures = Vec::new();
    let mut held: Option<(Lease, Instant)> = None;
    let mut step = seed;
    while Instant::now() < until {
        step = step
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if let Some((mut lease, start)) = held.take() {
            if (step >> 40) % 8 == 0 {
                tokio::time::sleep(Duration::from_millis(2_100 + (step >> 33) % 700)).await;
            }
            let outcome = if lease.is_valid() {
                store.renew(&mut lease).await
            } else {
                Err(LeaseError::Lost { holder: None })
            };
            match outcome {
                Ok(()) if lease.is_valid() => held = Some((lease, start)),
                _ => {
                    tenures.push(Tenure {
                        holder,
                        epoch: lease.epoch(),
                        start,
                        // It served no later than its deadline, or than now if it
                        // noticed the loss earlier.
                        end: lease.valid_until().min(Instant::now()),
                    });
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
            }
        } else if let Ok(Acquire::Acquired(lease)) = store.try_acquire(shard).await {
            held = Some((lease, Instant::now()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some((lease, start)) = held {
        tenures.push(Tenure {
            holder,
            epoch: lease.epoch(),
            start,
            end: lease.valid_until().min(Instant::now()),
        });
        let _ = store.release(lease).await;
    }
    tenures
}

#[tokio::test]
async fn under_pauses_and_takeovers_the_tenures_never_overlap() {
    let namespace = fresh_namespace();
    let a = store("a", &namespace).await;
    let b = store("b", &namespace).await;
    let shard = ShardId(3);
    let until = Instant::now() + Duration::from_secs(12);
    let (left, right) = tokio::join!(
        contend("a", a, shard, until, 11),
        contend("b", b, shard, until, 97)
    );
    let mut tenures: Vec<Tenure> = left.into_iter().chain(right).collect();
    tenures.sort_by_key(|tenure| tenure.start);
    let handovers = tenures
        .windows(2)
        .filter(|pair| pair[0].holder != pair[1].holder)
        .count();
    let epochs: std::collections::BTreeSet<u64> = tenures.iter().map(|t| t.epoch).collect();
    assert!(
        handovers >= 1 && epochs.len() >= 3,
        "the pauses caused takeovers: {tenures:?}"
    );
    for pair in tenures.windows(2) {
        assert!(
            pair[0].end <= pair[1].start,
            "overlapping tenures: {pair:?}"
        );
        // A holder may resume its own tenure (its record had not expired yet);
        // another holder always starts a higher epoch.
        if pair[0].holder == pair[1].holder {
            assert!(
                pair[0].epoch <= pair[1].epoch,
                "epochs never go back: {pair:?}"
            );
        } else {
            assert!(
                pair[0].epoch < pair[1].epoch,
                "a new holder, a higher epoch: {pair:?}"
            );
        }
    }
    println!(
        "{} tenures, {handovers} handovers, none overlapping",
        tenures.len()
    );
    drop_namespace(&connect(&nats_url()).await, &namespace).await;
}
