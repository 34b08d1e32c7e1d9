//! One owner per SKU: no oversell, acknowledgements only after commit, fencing of a
//! second owner, and a restart that keeps what was acknowledged.

use super::*;

souk_db::on_both_backends!(
    #[actix_rt::test]
    no_oversell_and_replies_only_after_commit,
    fencing_stops_the_second_owner,
    restart_keeps_every_acknowledged_reservation
);

/// Guarantees 1, 2, 3 and 8: 500 concurrent reservations of a stock of 100.
async fn no_oversell_and_replies_only_after_commit(backend: TestBackend) {
    let database = fresh(backend).await;
    let db = database.db.clone();
    let inventory = start(&db, settings(), None);
    inventory.execute("HOT".into(), adjust(100)).await.unwrap();

    let mut tasks = Vec::new();
    for index in 0..500 {
        let inventory = inventory.clone();
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let order = format!("order-{index}");
            let outcome = inventory.execute("HOT".into(), reserve(&order, 1, 600_000)).await;
            if let Ok(Outcome::Reserved { .. }) = outcome {
                // Acknowledged means committed: the row is there, seen from another connection.
                let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inventory_reservations WHERE sku = 'HOT' AND order_id = ?")
                    .bind(&order)
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
                assert_eq!(count, 1, "{order} acknowledged before its commit");
            }
            outcome
        }));
    }
    let mut reserved = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(Outcome::Reserved { .. }) => reserved += 1,
            Err(InventoryError::Stock(StockError::Insufficient { .. })) => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(reserved, 100);
    assert_eq!(refused, 400);
    let stock = inventory.stock("HOT".into()).await.unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (100, 100, 0)
    );
    assert_ledger_balances(&db, "HOT").await;

    // Group commit: far fewer transactions (item versions) than reservations.
    let versions = scalar(&db, "SELECT COUNT(DISTINCT version) FROM inventory_movements WHERE sku = ? AND kind = 'reservation'", "HOT").await;
    assert!(
        versions < 100,
        "100 reservations in {versions} transactions: no batching"
    );
}

/// Guarantee 4: two actors own one SKU; only one can ever write, the other stops.
async fn fencing_stops_the_second_owner(backend: TestBackend) {
    let database = fresh(backend).await;
    let db = database.db.clone();
    let inventory = start(&db, settings(), None);
    inventory.execute("FENCE".into(), adjust(10)).await.unwrap();
    let host = inventory.host().clone();
    let deps = SkuDeps {
        db: db.clone(),
        expiry_listener: None,
        feed: None,
    };
    let link = |instance| {
        EntityLink::new(
            "FENCE".into(),
            instance,
            host.clone().recipient(),
            Duration::from_secs(30),
        )
    };
    let first = SkuActor::for_key("FENCE".into(), deps.clone(), link(1001)).start();
    let second = SkuActor::for_key("FENCE".into(), deps, link(1002)).start();
    use souk_actors::inventory::actor::Execute;
    // Both loaded version 1; the first write wins.
    let _ = first
        .send(souk_actors::inventory::actor::Snapshot)
        .await
        .unwrap()
        .unwrap();
    let _ = second
        .send(souk_actors::inventory::actor::Snapshot)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        first.send(Execute(adjust(5))).await.unwrap(),
        Ok(Outcome::Adjusted { on_hand: 15, .. })
    ));
    assert_eq!(
        second.send(Execute(adjust(3))).await.unwrap(),
        Err(InventoryError::Fenced)
    );
    for _ in 0..100 {
        if !second.connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!second.connected(), "the fenced owner stops");
    assert_eq!(
        scalar(
            &db,
            "SELECT on_hand FROM inventory_items WHERE sku = ?",
            "FENCE"
        )
        .await,
        15
    );
    // The supervisor's own actor was also fenced out by `first`; routing reloads it.
    let mut outcome = inventory.execute("FENCE".into(), adjust(1)).await;
    if outcome == Err(InventoryError::Fenced) {
        outcome = inventory.execute("FENCE".into(), adjust(1)).await;
    }
    assert!(
        matches!(outcome, Ok(Outcome::Adjusted { on_hand: 16, .. })),
        "{outcome:?}"
    );
    assert_ledger_balances(&db, "FENCE").await;
}

/// A new supervisor over the same database (a restarted process) sees everything
/// acknowledged before, and order commands stay idempotent across it.
async fn restart_keeps_every_acknowledged_reservation(backend: TestBackend) {
    let database = fresh(backend).await;
    let db = database.db.clone();
    // The process before the restart has a pool of its own, as a real one would: a
    // connection its actors opened belongs to their arbiters' runtimes, which stop
    // with it, and must not be handed to the process after.
    let before_db = Db::connect(&database.url, &PoolSettings::default())
        .await
        .unwrap();
    let before = start(&before_db, settings(), None);
    before.execute("KEEP".into(), adjust(5)).await.unwrap();
    before
        .execute("KEEP".into(), reserve_for("a", 2, "alice", 3))
        .await
        .unwrap();
    before
        .execute("KEEP".into(), reserve("b", 1, 600_000))
        .await
        .unwrap();
    before
        .execute(
            "KEEP".into(),
            Command::Commit {
                order_id: "b".into(),
                quantity: 0,
                actor: "order:b".into(),
            },
        )
        .await
        .unwrap();
    before.host().do_send(StopSupervisor);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let after = start(&db, settings(), None);
    // A fresh node may answer a retryable error while it loads; callers retry those.
    let mut stock = after.stock("KEEP".into()).await;
    for _ in 0..20 {
        match &stock {
            Err(error) if error.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                stock = after.stock("KEEP".into()).await;
            }
            _ => break,
        }
    }
    let stock = stock.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (4, 2));
    assert!(stock.reservations.contains_key("a"));
    assert_eq!(
        after
            .execute("KEEP".into(), reserve_for("a", 2, "alice", 3))
            .await,
        Ok(Outcome::AlreadyReserved)
    );
    // The restarted actor still knows whose the units are: alice's cap counts them.
    assert_eq!(
        after
            .execute("KEEP".into(), reserve_for("c", 2, "alice", 3))
            .await,
        Err(InventoryError::Stock(StockError::CustomerLimit {
            limit: 3,
            allowed: 1
        }))
    );
    assert_eq!(
        after
            .execute(
                "KEEP".into(),
                Command::Commit {
                    order_id: "b".into(),
                    quantity: 0,
                    actor: "order:b".into()
                }
            )
            .await,
        Ok(Outcome::AlreadySold)
    );
    assert_eq!(
        after
            .execute(
                "KEEP".into(),
                Command::Commit {
                    order_id: "zzz".into(),
                    quantity: 0,
                    actor: "x".into()
                }
            )
            .await,
        Err(InventoryError::Stock(StockError::NotReserved))
    );
    assert_ledger_balances(&db, "KEEP").await;
}

#[derive(Message)]
#[rtype(result = "()")]
struct StopSupervisor;

impl Handler<StopSupervisor> for EntityHost<SkuActor> {
    type Result = ();
    fn handle(&mut self, _: StopSupervisor, context: &mut Context<Self>) {
        context.stop();
    }
}
