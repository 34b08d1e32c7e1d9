//! The inventory actors against real databases (SQLite and MariaDB): each guarantee of
//! DESIGN.md's inventory section has a test here that fails without it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use souk_actors::entity::host::{ActorOf, LiveEntities as LiveActors};
use souk_actors::entity::{Entity, EntityHost, EntityLink, HostError, HostSettings};
use souk_actors::inventory::actor::{InjectFault, ReservationExpired, SkuActor};
use souk_actors::inventory::stock::Holder;
use souk_actors::inventory::{
    Command, InventoryError, InventoryRouter, LocalInventory, Outcome, SkuDeps, StockError,
};
use souk_db::testing::{fresh, TestBackend};
use souk_db::{Db, PoolSettings};

/// The process-wide metrics recorder of this test binary, rendered as Prometheus text.
fn metrics_text() -> String {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).expect("one recorder per test binary");
            handle
        })
        .render()
}

fn settings() -> HostSettings {
    HostSettings {
        idle_timeout: Duration::from_secs(30),
        restart_backoff: Duration::from_millis(100),
        max_restart_backoff: Duration::from_secs(2),
        failure_memory: Duration::from_secs(30),
        arbiters: 2,
    }
}

fn start(
    db: &Db,
    settings: HostSettings,
    listener: Option<Recipient<ReservationExpired>>,
) -> LocalInventory {
    souk_actors::inventory::start_host(db.clone(), settings, listener)
}

fn adjust(delta: i64) -> Command {
    Command::Adjust {
        delta,
        actor: "admin:test".into(),
        reason: "restock".into(),
    }
}

fn reserve(order: &str, quantity: i64, ttl_ms: i64) -> Command {
    Command::Reserve {
        order_id: order.into(),
        quantity,
        ttl_ms,
        actor: format!("order:{order}"),
        holder: None,
        place: Default::default(),
    }
}

/// A reservation by `customer`, who may hold at most `cap` units of the SKU unpaid.
fn reserve_for(order: &str, quantity: i64, customer: &str, cap: i64) -> Command {
    Command::Reserve {
        order_id: order.into(),
        quantity,
        ttl_ms: 600_000,
        actor: format!("order:{order}"),
        holder: Some(Holder {
            customer_id: customer.into(),
            max_units: Some(cap),
        }),
        place: Default::default(),
    }
}

async fn scalar(db: &Db, sql: &str, sku: &str) -> i64 {
    let (value,): (i64,) = sqlx::query_as(sql)
        .bind(sku)
        .fetch_one(db.pool())
        .await
        .unwrap();
    value
}

/// on_hand and reserved recomputed from the ledger equal the item row.
async fn assert_ledger_balances(db: &Db, sku: &str) {
    let movements = souk_db::inventory::movements(db.pool(), sku).await.unwrap();
    let on_hand: i64 = movements.iter().map(|m| m.delta_on_hand).sum();
    let reserved: i64 = movements.iter().map(|m| m.delta_reserved).sum();
    assert_eq!(
        on_hand,
        scalar(db, "SELECT on_hand FROM inventory_items WHERE sku = ?", sku).await,
        "ledger on_hand"
    );
    assert_eq!(
        reserved,
        scalar(
            db,
            "SELECT reserved FROM inventory_items WHERE sku = ?",
            sku
        )
        .await,
        "ledger reserved"
    );
    let rows = scalar(db, "SELECT CAST(COALESCE(SUM(quantity), 0) AS SIGNED) FROM inventory_reservations WHERE sku = ?", sku).await;
    assert_eq!(reserved, rows, "reservation rows");
}

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

/// Collects expiry notifications (standing in for the order actors).
struct Listener(Arc<Mutex<Vec<ReservationExpired>>>);
impl Actor for Listener {
    type Context = Context<Self>;
}
impl Handler<ReservationExpired> for Listener {
    type Result = ();
    fn handle(&mut self, expired: ReservationExpired, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(expired);
    }
}

/// Guarantee 5: an unpaid reservation is released when its TTL passes, through the
/// batch path (a ledger row), and its order is told.
#[actix_rt::test]
async fn reservations_expire_and_the_order_is_told() {
    let database = fresh(TestBackend::Sqlite).await;
    let db = database.db.clone();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = Listener(seen.clone()).start();
    let inventory = start(&db, settings(), Some(listener.recipient()));
    inventory.execute("EXP".into(), adjust(3)).await.unwrap();
    inventory
        .execute("EXP".into(), reserve("short", 2, 200))
        .await
        .unwrap();
    inventory
        .execute("EXP".into(), reserve("long", 1, 600_000))
        .await
        .unwrap();
    for _ in 0..100 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        *seen.lock().unwrap(),
        vec![ReservationExpired {
            sku: "EXP".into(),
            order_id: "short".into()
        }]
    );
    let stock = inventory.stock("EXP".into()).await.unwrap();
    assert_eq!((stock.reserved, stock.available()), (1, 2));
    let kinds: Vec<String> = souk_db::inventory::movements(db.pool(), "EXP")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert!(kinds.contains(&"expiry".to_owned()), "{kinds:?}");
    assert_ledger_balances(&db, "EXP").await;
}

/// Guarantee 6: an error and a panic in one SKU's actor, mid-load: it is restarted from
/// the database, its sibling is untouched, nothing acknowledged is lost, and a crash
/// loop backs off.
#[actix_rt::test]
async fn failed_actors_restart_from_the_database_with_backoff() {
    metrics_text();
    let database = fresh(TestBackend::Sqlite).await;
    let db = database.db.clone();
    let inventory = start(&db, settings(), None);
    let supervisor = inventory.host().clone();
    inventory.execute("SICK".into(), adjust(50)).await.unwrap();
    inventory.execute("WELL".into(), adjust(50)).await.unwrap();
    let sibling = supervisor
        .send(ActorOf::new("WELL"))
        .await
        .unwrap()
        .unwrap();

    // Load on both SKUs while the faults land.
    let load = {
        let inventory = inventory.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for index in 0..40 {
                for sku in ["SICK", "WELL"] {
                    let order = format!("{sku}-{index}");
                    for _attempt in 0..50 {
                        match inventory
                            .execute(sku.into(), reserve(&order, 1, 600_000))
                            .await
                        {
                            Ok(_) => {
                                acknowledged.push((sku, order.clone()));
                                break;
                            }
                            Err(error) if error.is_retryable() => {
                                tokio::time::sleep(Duration::from_millis(20)).await
                            }
                            Err(error) => panic!("{error}"),
                        }
                    }
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let sick = supervisor
        .send(ActorOf::new("SICK"))
        .await
        .unwrap()
        .unwrap();
    sick.do_send(InjectFault::FailNextBatch);
    tokio::time::sleep(Duration::from_millis(150)).await;
    if let Ok(sick) = supervisor.send(ActorOf::new("SICK")).await.unwrap() {
        sick.do_send(InjectFault::Panic);
    }
    let acknowledged = load.await.unwrap();
    assert_eq!(
        acknowledged.len(),
        80,
        "every reservation eventually acknowledged"
    );

    // Every acknowledged reservation is in the reloaded state.
    // The injected panic may still be restarting the actor (with backoff): a read
    // meanwhile is refused as retryable, so retry it as a caller would.
    let mut sick_stock = inventory.stock("SICK".into()).await;
    for _ in 0..200 {
        match &sick_stock {
            Err(error) if error.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(25)).await;
                sick_stock = inventory.stock("SICK".into()).await;
            }
            _ => break,
        }
    }
    let sick_stock = sick_stock.unwrap();
    for (sku, order) in &acknowledged {
        if *sku == "SICK" {
            assert!(sick_stock.reservations.contains_key(order), "{order} lost");
        }
    }
    assert_eq!(sick_stock.reserved, 40);
    let sibling_now = supervisor
        .send(ActorOf::new("WELL"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        sibling == sibling_now && sibling.connected(),
        "the sibling was never restarted"
    );
    assert_ledger_balances(&db, "SICK").await;

    // A crash loop: each panic makes the next restart wait longer.
    let mut waits = Vec::new();
    for _ in 0..3 {
        let actor = loop {
            match supervisor.send(ActorOf::new("SICK")).await.unwrap() {
                Ok(actor) => break actor,
                Err(HostError::Restarting { .. }) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(other) => panic!("{other}"),
            }
        };
        let _ = actor.send(souk_actors::inventory::actor::Snapshot).await;
        actor.do_send(InjectFault::Panic);
        tokio::time::sleep(Duration::from_millis(20)).await;
        match inventory.execute("SICK".into(), adjust(1)).await {
            Err(InventoryError::Restarting { retry_after_ms }) => waits.push(retry_after_ms),
            other => panic!("expected a backoff, got {other:?}"),
        }
    }
    assert!(
        waits.windows(2).all(|pair| pair[1] > pair[0]),
        "backoff grows: {waits:?}"
    );

    // Restarts are counted by reason, and batch sizes recorded, for /metrics.
    let text = metrics_text();
    let counter = |reason: &str| -> f64 {
        text.lines()
            .find(|line| {
                line.starts_with("souk_entity_restarts_total")
                    && line.contains("kind=\"sku\"")
                    && line.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(counter("panic") >= 4.0, "{text}");
    assert!(counter("error") >= 1.0, "{text}");
    assert!(text.contains("souk_inventory_batch_size_count"), "{text}");
}

/// Guarantee 7: idle actors stop; touching many SKUs once leaves none resident.
#[actix_rt::test]
async fn idle_actors_passivate() {
    let database = fresh(TestBackend::Sqlite).await;
    let db = database.db.clone();
    let inventory = start(
        &db,
        HostSettings {
            idle_timeout: Duration::from_millis(200),
            ..settings()
        },
        None,
    );
    let supervisor = inventory.host().clone();
    let total = 100_000;
    let mut most_alive = 0;
    for chunk in 0..(total / 1000) {
        let mut batch = Vec::new();
        for index in 0..1000 {
            let inventory = inventory.clone();
            batch.push(tokio::spawn(async move {
                inventory.stock(format!("IDLE-{chunk}-{index}")).await
            }));
        }
        for task in batch {
            task.await.unwrap().unwrap();
        }
        most_alive = most_alive.max(supervisor.send(LiveActors).await.unwrap());
    }
    let mut alive = usize::MAX;
    for _ in 0..100 {
        alive = supervisor.send(LiveActors).await.unwrap();
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(alive, 0, "every idle actor stopped");
    assert!(
        most_alive < total,
        "actors were passivated while others were touched ({most_alive} of {total} alive at once)"
    );
    let distinct: HashSet<usize> = HashSet::from([most_alive]);
    assert!(!distinct.is_empty());
}
