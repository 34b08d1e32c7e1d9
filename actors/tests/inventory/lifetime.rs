//! An actor's life: reservations expiring on its timer or by the sweep of lapsed
//! reservations, restarts after failures, and passivation when idle.

use super::*;
use futures_util::future::BoxFuture;
use souk_actors::entity::EntityRouter;
use souk_actors::inventory::{Sku, SkuReply, SkuRequest};

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

/// Requests queued at the host while their SKU's actor crashes wait for the crash
/// report: the crash is counted and its backoff applies to them, rather than the first
/// of them starting a new actor at once and the report being dropped as an older
/// instance's (a crash loop under load would then reload at the rate of requests).
#[actix_rt::test]
async fn requests_queued_behind_a_crash_wait_out_its_backoff() {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use futures_util::FutureExt;
    use souk_actors::entity::host::Describe;

    let database = fresh(TestBackend::Sqlite).await;
    let inventory = start(&database.db, settings(), None);
    let host = inventory.host().clone();
    inventory.execute("SICK".into(), adjust(50)).await.unwrap();
    let restarts_before = host.send(Describe).await.unwrap().restarts;
    let actor = host.send(ActorOf::new("SICK")).await.unwrap().unwrap();
    // The requests reach the host's mailbox; then the actor is made to panic, and this
    // thread, which is also the host's, is held until the actor has died on its own
    // arbiter, so its report is queued behind them.
    let mut requests: FuturesUnordered<_> = (0..8)
        .map(|_| inventory.execute("SICK".into(), adjust(1)))
        .collect();
    assert!(requests.next().now_or_never().is_none(), "no answer yet");
    actor.do_send(InjectFault::Panic);
    let give_up = std::time::Instant::now() + Duration::from_secs(5);
    while actor.connected() && std::time::Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(!actor.connected(), "the injected panic stopped the actor");

    let mut answers = Vec::new();
    while let Some(answer) = requests.next().await {
        answers.push(answer);
    }
    for answer in &answers {
        assert!(
            matches!(answer, Err(InventoryError::Restarting { .. })),
            "a request behind the crash waits out its backoff: {answer:?}"
        );
    }
    let restarts_after = host.send(Describe).await.unwrap().restarts;
    assert_eq!(restarts_after, restarts_before + 1, "the crash is counted");
    assert_ledger_balances(&database.db, "SICK").await;
}

/// Stocks 5 units of each of `skus` and reserves 2 of them for 300 ms on a host that
/// then stops its SKUs, so that none of them is loaded when the reservations lapse.
async fn reserve_on_a_host_that_stops(db: &Db, skus: &[&str]) {
    use souk_actors::entity::host::Drain;

    let before_restart = start(db, settings(), None);
    for sku in skus {
        before_restart
            .execute((*sku).into(), adjust(5))
            .await
            .unwrap();
        before_restart
            .execute((*sku).into(), reserve("orphan", 2, 300))
            .await
            .unwrap();
    }
    let still_running = before_restart
        .host()
        .send(Drain {
            timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
    assert_eq!(still_running, 0, "the first host stopped its SKUs");
}

/// A reservation whose time runs out while its SKU is not loaded (here: the node that
/// held it stopped; on a cluster, also a shard that moved) is released by the sweep of
/// lapsed reservations, not left counted as reserved until something touches the SKU.
#[actix_rt::test]
async fn the_sweep_releases_lapsed_reservations_of_skus_not_loaded() {
    use souk_actors::inventory::lapsed::release_lapsed;

    let database = fresh(TestBackend::Sqlite).await;
    let db = database.db.clone();
    reserve_on_a_host_that_stops(&db, &["IDLE"]).await;

    // A new host on the same database: IDLE is not loaded, and its reservation lapses.
    let inventory = start(&db, settings(), None);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reserved = "SELECT reserved FROM inventory_items WHERE sku = ?";
    assert_eq!(
        scalar(&db, reserved, "IDLE").await,
        2,
        "held while not loaded"
    );
    assert_eq!(inventory.host().send(LiveActors).await.unwrap(), 0);

    assert_eq!(release_lapsed(&db, &inventory).await.unwrap(), 1);
    assert_eq!(
        scalar(&db, reserved, "IDLE").await,
        0,
        "released by the sweep"
    );
    let expiries = "SELECT COUNT(*) FROM inventory_movements WHERE sku = ? AND kind = 'expiry'";
    assert_eq!(scalar(&db, expiries, "IDLE").await, 1);
    assert_ledger_balances(&db, "IDLE").await;
    // Nothing is left for the next pass.
    assert_eq!(release_lapsed(&db, &inventory).await.unwrap(), 0);
}

/// A router that runs only the SKUs it names here, as a clustered node runs only the
/// SKUs of the shards it serves; it reaches every SKU through the host it wraps.
struct RunsOnly {
    inner: LocalInventory,
    here: Vec<String>,
}

impl EntityRouter<Sku> for RunsOnly {
    fn send(
        &self,
        key: String,
        request: SkuRequest,
    ) -> BoxFuture<'static, Result<SkuReply, InventoryError>> {
        EntityRouter::send(&self.inner, key, request)
    }

    fn serves_here(&self, key: &str) -> bool {
        self.here.iter().any(|here| here == key)
    }
}

/// Each node's sweep asks only the SKUs it runs: two nodes over one database do not
/// both ask every SKU holding a lapsed reservation.
#[actix_rt::test]
async fn the_sweep_asks_only_the_skus_this_node_runs() {
    use souk_actors::inventory::lapsed::release_lapsed;

    let database = fresh(TestBackend::Sqlite).await;
    let db = database.db.clone();
    reserve_on_a_host_that_stops(&db, &["MINE", "THEIRS"]).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    let this_node = RunsOnly {
        inner: start(&db, settings(), None),
        here: vec!["MINE".to_owned()],
    };
    assert_eq!(release_lapsed(&db, &this_node).await.unwrap(), 1);
    let reserved = "SELECT reserved FROM inventory_items WHERE sku = ?";
    assert_eq!(scalar(&db, reserved, "MINE").await, 0, "released here");
    assert_eq!(
        scalar(&db, reserved, "THEIRS").await,
        2,
        "left to the node that runs it"
    );

    let other_node = RunsOnly {
        inner: start(&db, settings(), None),
        here: vec!["THEIRS".to_owned()],
    };
    assert_eq!(release_lapsed(&db, &other_node).await.unwrap(), 1);
    assert_eq!(scalar(&db, reserved, "THEIRS").await, 0, "released there");
    assert_ledger_balances(&db, "MINE").await;
    assert_ledger_balances(&db, "THEIRS").await;
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
