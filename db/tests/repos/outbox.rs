//! The outbox in a user's transaction, on both engines (the outbox alone: tests/outbox.rs):
//! an append rolled back, or dropped without commit, leaves nothing, and an event written
//! in the same transaction as a user vanishes with it.

use souk_db::ids;
use souk_db::outbox::{self, OutboxEvent};
use souk_db::testing::TestBackend;
use souk_db::users;

use super::{count, database, user};

souk_db::on_both_backends!(
    #[tokio::test]
    outbox_rolled_back_append_leaves_nothing,
);

fn event(topic: &str, aggregate_id: &str) -> OutboxEvent {
    OutboxEvent::new(
        topic,
        aggregate_id,
        &serde_json::json!({ "aggregate": aggregate_id }),
    )
    .expect("serialise event payload")
}

async fn outbox_rolled_back_append_leaves_nothing(backend: TestBackend) {
    let test = database(backend).await;
    let aggregate = ids::new_id();
    let first = event("user.registered", &aggregate);
    let second = event("user.email_changed", &aggregate);

    let mut tx = test.db.begin().await.unwrap();
    outbox::append(&mut *tx, &first).await.unwrap();
    outbox::append(&mut *tx, &second).await.unwrap();
    // Visible inside the transaction...
    assert_eq!(
        outbox::unpublished(&mut *tx, 10).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    tx.rollback().await.unwrap();

    // ...and gone after the rollback.
    assert!(outbox::unpublished(test.db.pool(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        outbox::for_aggregate(test.db.pool(), "user.registered", &aggregate)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(count(&test, "outbox_events").await, 0);

    // A transaction dropped without commit rolls back as well, and an event written in
    // the same transaction as a user vanishes with it.
    let registered = user("rolled.back@example.test");
    {
        let mut tx = test.db.begin().await.unwrap();
        users::insert(&mut *tx, &registered).await.unwrap();
        outbox::append(&mut *tx, &event("user.registered", &registered.id))
            .await
            .unwrap();
    }
    assert_eq!(count(&test, "outbox_events").await, 0);
    assert_eq!(
        users::find_by_id(test.db.pool(), &registered.id)
            .await
            .unwrap(),
        None
    );
}
