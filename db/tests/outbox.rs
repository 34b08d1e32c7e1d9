//! The outbox table against both engines: appending in transactions, listing what is
//! unpublished, and the leases relays take on events before publishing them. Every case
//! runs once on a fresh SQLite file and once on a fresh MariaDB database
//! (`SOUK_TEST_MYSQL_URL`).

use souk_db::clock::Micros;
use souk_db::ids;
use souk_db::outbox::{self, OutboxEvent, MAX_PAYLOAD_CHARS};
use souk_db::testing::{fresh, TestBackend, TestDatabase};
use souk_db::DbError;

souk_db::on_both_backends!(
    #[tokio::test]
    outbox_committed_events_unpublished_in_id_order,
    outbox_for_aggregate_filters_topic_and_aggregate,
    outbox_payload_limit,
    outbox_leases_go_to_one_relay_lapse_and_come_back,
    outbox_relays_claiming_at_once_share_the_events,
    outbox_events_published_but_not_handled_are_reopened,
);

// ---------------------------------------------------------------------------------------
// helpers

/// A fixed instant with non-zero microseconds and far beyond `i32`, to catch truncation.
const T0: Micros = 1_764_000_000_123_456;
/// The relays' lease in these tests.
const LEASE: Micros = 30_000_000;

async fn database(backend: TestBackend) -> TestDatabase {
    fresh(backend).await
}

async fn count(test: &TestDatabase, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(test.db.pool())
        .await
        .expect("count rows")
}

fn event(topic: &str, aggregate_id: &str, sequence: u32) -> OutboxEvent {
    OutboxEvent::new(
        topic,
        aggregate_id,
        &serde_json::json!({ "sequence": sequence, "aggregate": aggregate_id, "note": "héllo ✓" }),
    )
    .expect("serialise event payload")
}

async fn all_unpublished(test: &TestDatabase) -> Vec<OutboxEvent> {
    outbox::unpublished(test.db.pool(), 1_000)
        .await
        .expect("list unpublished events")
}

// ---------------------------------------------------------------------------------------
// outbox

async fn outbox_committed_events_unpublished_in_id_order(backend: TestBackend) {
    let test = database(backend).await;
    let aggregate = ids::new_id();
    let events: Vec<OutboxEvent> = (0..6)
        .map(|sequence| event("user.registered", &aggregate, sequence))
        .collect();

    // Two transactions (one after the other: SQLite has a single writer), the newer
    // events committed first, and each in reverse: the listing orders by id, not by
    // insertion.
    for batch in [&events[3..], &events[..3]] {
        let mut tx = test.db.begin().await.unwrap();
        for written in batch.iter().rev() {
            outbox::append(&mut *tx, written).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    // One already-published event is not listed.
    let mut published = event("user.registered", &aggregate, 99);
    published.published_at = Some(T0);
    outbox::append(test.db.pool(), &published).await.unwrap();
    assert!(published.id > events[5].id);

    let pending = all_unpublished(&test).await;
    assert_eq!(
        pending, events,
        "every committed event, whole, oldest first"
    );
    let mut sorted = pending.clone();
    sorted.sort_by(|left, right| left.id.cmp(&right.id));
    assert_eq!(pending, sorted, "in id order");
    for (index, stored) in pending.iter().enumerate() {
        let payload: serde_json::Value = serde_json::from_str(&stored.payload).unwrap();
        assert_eq!(payload["sequence"], index);
        assert_eq!(payload["note"], "héllo ✓");
    }

    // The limit takes the oldest.
    assert_eq!(
        outbox::unpublished(test.db.pool(), 2).await.unwrap(),
        events[..2].to_vec()
    );
    assert!(outbox::unpublished(test.db.pool(), 0)
        .await
        .unwrap()
        .is_empty());
    // for_aggregate lists published and unpublished alike.
    let mut everything = events.clone();
    everything.push(published);
    assert_eq!(
        outbox::for_aggregate(test.db.pool(), "user.registered", &aggregate)
            .await
            .unwrap(),
        everything
    );
}

async fn outbox_for_aggregate_filters_topic_and_aggregate(backend: TestBackend) {
    let test = database(backend).await;
    let alice = ids::new_id();
    let bob = ids::new_id();
    let written = vec![
        event("user.registered", &alice, 0),
        event("user.registered", &bob, 1),
        event("user.email_changed", &alice, 2),
        event("user.email_changed", &alice, 3),
        event("user.registered", &alice, 4),
        event("user.disabled", &bob, 5),
    ];
    let mut tx = test.db.begin().await.unwrap();
    for one in &written {
        outbox::append(&mut *tx, one).await.unwrap();
    }
    tx.commit().await.unwrap();

    let query = |topic: &'static str, aggregate: String| {
        let pool = test.db.pool().clone();
        async move {
            outbox::for_aggregate(&pool, topic, &aggregate)
                .await
                .expect("events for aggregate")
        }
    };
    assert_eq!(
        query("user.registered", alice.clone()).await,
        vec![written[0].clone(), written[4].clone()]
    );
    assert_eq!(
        query("user.email_changed", alice.clone()).await,
        vec![written[2].clone(), written[3].clone()]
    );
    assert_eq!(
        query("user.registered", bob.clone()).await,
        vec![written[1].clone()]
    );
    assert_eq!(
        query("user.disabled", bob.clone()).await,
        vec![written[5].clone()]
    );
    assert!(query("user.disabled", alice.clone()).await.is_empty());
    assert!(query("user.registered", ids::new_id()).await.is_empty());
    // Topics match exactly, not by prefix.
    assert!(query("user", alice.clone()).await.is_empty());
    assert_eq!(all_unpublished(&test).await, written);
}

async fn outbox_payload_limit(backend: TestBackend) {
    let test = database(backend).await;
    let aggregate = ids::new_id();
    // The limit counts characters, not bytes: 4-byte characters fill it on both engines.
    let at_limit =
        OutboxEvent::new("big.event", &aggregate, &"😀".repeat(MAX_PAYLOAD_CHARS - 2)).unwrap();
    assert_eq!(at_limit.payload.chars().count(), MAX_PAYLOAD_CHARS);
    outbox::append(test.db.pool(), &at_limit)
        .await
        .expect("a payload at the limit is stored");

    let over =
        OutboxEvent::new("big.event", &aggregate, &"😀".repeat(MAX_PAYLOAD_CHARS - 1)).unwrap();
    let error = outbox::append(test.db.pool(), &over)
        .await
        .expect_err("a payload over the limit is refused");
    assert!(
        matches!(error, DbError::Invalid(_)),
        "expected Invalid, got {error:?}"
    );

    assert_eq!(
        outbox::for_aggregate(test.db.pool(), "big.event", &aggregate)
            .await
            .unwrap(),
        vec![at_limit]
    );

    // Appending the same id twice is refused by the primary key.
    let duplicate = event("small.event", &aggregate, 1);
    outbox::append(test.db.pool(), &duplicate).await.unwrap();
    let error = outbox::append(test.db.pool(), &duplicate)
        .await
        .expect_err("duplicate event id");
    assert!(
        matches!(error, DbError::UniqueViolation { .. }),
        "expected UniqueViolation, got {error:?}"
    );
    assert_eq!(count(&test, "outbox_events").await, 2);
}

// ---------------------------------------------------------------------------------------
// relay leases

async fn append_events(test: &TestDatabase, count: u32) -> Vec<OutboxEvent> {
    let aggregate = ids::new_id();
    let events: Vec<OutboxEvent> = (0..count)
        .map(|sequence| event("order.placed", &aggregate, sequence))
        .collect();
    let mut tx = test.db.begin().await.unwrap();
    for one in &events {
        outbox::append(&mut *tx, one).await.unwrap();
    }
    tx.commit().await.unwrap();
    events
}

fn ids_of(events: &[OutboxEvent]) -> Vec<String> {
    events.iter().map(|event| event.id.clone()).collect()
}

async fn claimable_at(test: &TestDatabase, now: Micros) -> Vec<String> {
    outbox::claimable(test.db.pool(), now, 1_000).await.unwrap()
}

async fn outbox_leases_go_to_one_relay_lapse_and_come_back(backend: TestBackend) {
    let test = database(backend).await;
    let events = append_events(&test, 5).await;
    let mut published = event("order.placed", &ids::new_id(), 9);
    published.published_at = Some(T0 - 1);
    outbox::append(test.db.pool(), &published).await.unwrap();
    let pool = test.db.pool();
    assert_eq!(claimable_at(&test, T0).await, ids_of(&events));

    // Relay a wins the three it asks for, whole and oldest first (the ids asked in any
    // order).
    let asked = vec![
        events[2].id.clone(),
        events[0].id.clone(),
        events[1].id.clone(),
    ];
    let won_by_a = outbox::claim(pool, &asked, "a", T0, T0 + LEASE)
        .await
        .unwrap();
    assert_eq!(won_by_a, events[..3].to_vec());

    // Relay b asks for all of them and the published one: it wins only the two no lease
    // holds.
    let mut asked = ids_of(&events);
    asked.push(published.id.clone());
    let won_by_b = outbox::claim(pool, &asked, "b", T0 + 1, T0 + 1 + LEASE)
        .await
        .unwrap();
    assert_eq!(won_by_b, events[3..].to_vec());
    assert!(
        claimable_at(&test, T0 + 2).await.is_empty(),
        "every unpublished event is leased"
    );
    let again = outbox::claim(pool, &asked, "b", T0 + 2, T0 + 2 + LEASE)
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "a live lease is not taken again: {again:?}"
    );

    // Leases lapse: past them every unpublished event is claimable again, and another
    // relay may take one.
    assert_eq!(claimable_at(&test, T0 + LEASE + 2).await, ids_of(&events));
    let taken_over = outbox::claim(
        pool,
        &[events[0].id.clone()],
        "b",
        T0 + LEASE + 2,
        T0 + 2 * LEASE,
    )
    .await
    .unwrap();
    assert_eq!(taken_over, events[..1].to_vec());

    // a publishes two and marks them; marking again changes nothing.
    let marked = vec![events[1].id.clone(), events[2].id.clone()];
    outbox::mark_published(pool, &marked, T0 + 10, true)
        .await
        .unwrap();
    outbox::mark_published(pool, &marked, T0 + 11, true)
        .await
        .unwrap();
    let stored = outbox::for_aggregate(pool, "order.placed", &events[0].aggregate_id)
        .await
        .unwrap();
    let published_at: Vec<Option<Micros>> = stored.iter().map(|event| event.published_at).collect();
    assert_eq!(
        published_at,
        vec![None, Some(T0 + 10), Some(T0 + 10), None, None]
    );

    // b gives back what it could not publish; a cannot give back b's lease.
    outbox::release(pool, &[events[0].id.clone()], "a")
        .await
        .unwrap();
    outbox::release(pool, &ids_of(&events[3..]), "b")
        .await
        .unwrap();
    assert_eq!(
        claimable_at(&test, T0 + 12).await,
        ids_of(&events[3..]),
        "released now; the first still leased to b; two published"
    );

    // Nothing asked, nothing done.
    assert!(outbox::claim(pool, &[], "a", T0, T0 + LEASE)
        .await
        .unwrap()
        .is_empty());
    outbox::mark_published(pool, &[], T0, true).await.unwrap();
    outbox::release(pool, &[], "a").await.unwrap();
    assert_eq!(count(&test, "outbox_events").await, 6);
}

/// Two relays claim the same candidates at the same moment: each event goes to one.
async fn outbox_relays_claiming_at_once_share_the_events(backend: TestBackend) {
    let test = database(backend).await;
    let events = append_events(&test, 40).await;
    let candidates = claimable_at(&test, T0).await;
    assert_eq!(candidates, ids_of(&events));
    let pool = test.db.pool();
    let (first, second) = tokio::join!(
        outbox::claim(pool, &candidates, "first", T0, T0 + LEASE),
        outbox::claim(pool, &candidates, "second", T0, T0 + LEASE + 1),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut together = ids_of(&first);
    together.extend(ids_of(&second));
    together.sort();
    assert_eq!(
        together,
        ids_of(&events),
        "every event won once: {} and {}",
        first.len(),
        second.len()
    );
}

/// Published into a process's memory, an event is handled only once a worker is done
/// with it: what was published but not handled (the process died with it queued) is
/// made unpublished again, free of leases; what was handled, or stored by JetStream
/// (published and handled at once), stays.
async fn outbox_events_published_but_not_handled_are_reopened(backend: TestBackend) {
    let test = database(backend).await;
    let pool = test.db.pool();
    let events = append_events(&test, 3).await;
    let ids = ids_of(&events);
    let claimed = outbox::claim(pool, &ids, "a", T0, T0 + LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    outbox::mark_published(pool, &ids[..2], T0 + 1, false)
        .await
        .unwrap();
    outbox::mark_published(pool, &ids[2..], T0 + 1, true)
        .await
        .unwrap();
    outbox::mark_handled(pool, &ids[0], T0 + 2).await.unwrap();
    assert!(claimable_at(&test, T0 + 3).await.is_empty());

    assert_eq!(outbox::reopen_unhandled(pool).await.unwrap(), 1);
    assert_eq!(claimable_at(&test, T0 + 3).await, [ids[1].clone()]);
    assert_eq!(outbox::reopen_unhandled(pool).await.unwrap(), 0);
}
