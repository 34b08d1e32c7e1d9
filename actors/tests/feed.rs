//! The committed-stock feed against a real database: watchers see each committed
//! batch with the reservations it placed, and nothing for commands that changed nothing.

use std::time::Duration;

use souk_actors::entity::HostSettings;
use souk_actors::inventory::{new_feed, Command, InventoryRouter};
use souk_db::testing::{fresh, TestBackend};

fn reserve(order: &str, quantity: i64) -> Command {
    Command::Reserve {
        order_id: order.into(),
        quantity,
        ttl_ms: 60_000,
        actor: format!("order:{order}"),
        holder: None,
        place: Default::default(),
    }
}

#[actix_rt::test]
async fn watchers_see_every_committed_batch() {
    let database = fresh(TestBackend::Sqlite).await;
    let feed_sender = new_feed();
    let inventory = souk_actors::inventory::start_host_with_feed(
        database.db.clone(),
        HostSettings::default(),
        None,
        Some(feed_sender.clone()),
    );
    let mut feed = feed_sender.subscribe();

    inventory
        .execute(
            "FEED-1".into(),
            Command::Adjust {
                delta: 10,
                actor: "admin:test".into(),
                reason: "delivery".into(),
            },
        )
        .await
        .unwrap();
    let restocked = tokio::time::timeout(Duration::from_secs(5), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            restocked.sku.as_str(),
            restocked.on_hand,
            restocked.reserved,
            restocked.reservations
        ),
        ("FEED-1", 10, 0, 0)
    );

    inventory
        .execute("FEED-1".into(), reserve("order-a", 3))
        .await
        .unwrap();
    // The same reservation again is acknowledged but changes nothing: no batch announced.
    inventory
        .execute("FEED-1".into(), reserve("order-a", 3))
        .await
        .unwrap();
    // Refused: more than is available; nothing committed either.
    assert!(inventory
        .execute("FEED-1".into(), reserve("order-b", 50))
        .await
        .is_err());
    inventory
        .execute("FEED-1".into(), reserve("order-c", 2))
        .await
        .unwrap();

    let mut seen = Vec::new();
    while seen.iter().map(|(_, reserved, _)| *reserved).max() != Some(5) {
        let stock = tokio::time::timeout(Duration::from_secs(5), feed.recv())
            .await
            .expect("a batch within five seconds")
            .unwrap();
        assert!(stock.version > restocked.version);
        seen.push((stock.version, stock.reserved, stock.reservations));
    }
    let placed: u32 = seen.iter().map(|(_, _, reservations)| *reservations).sum();
    assert_eq!(placed, 2, "two reservations were placed: {seen:?}");
    assert!(
        feed.try_recv().is_err(),
        "nothing else was committed: {seen:?}"
    );
}
