//! Routing a message to a SKU's actor in process: `LocalInventory` → supervisor → the
//! SKU's actor → reply, for a SKU already loaded (no database I/O per message; the
//! database is a temporary SQLite file, used once to load the SKU). The cluster's
//! consistent-hash ring does not exist yet; its lookup gets a benchmark with it.

use criterion::{criterion_group, criterion_main, Criterion};
use souk_actors::entity::HostSettings;
use souk_actors::inventory::InventoryRouter;
use souk_db::{Db, PoolSettings};

fn routing(criterion: &mut Criterion) {
    let directory = std::env::temp_dir().join(format!(
        "souk-bench-router-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&directory).expect("temporary directory");
    let url = format!("sqlite://{}?mode=rwc", directory.join("souk.db").display());
    let system = actix_rt::System::new();
    let router = system.block_on(async {
        let db = Db::connect(&url, &PoolSettings::default())
            .await
            .expect("open sqlite");
        db.migrate().await.expect("migrate");
        souk_actors::inventory::start_host(
            db,
            HostSettings {
                arbiters: 1,
                ..HostSettings::default()
            },
            None,
        )
    });
    system
        .block_on(router.stock("ROUTED".into()))
        .expect("load the sku once");
    criterion.bench_function("local_router_round_trip", |bench| {
        bench.iter(|| system.block_on(router.stock("ROUTED".into())))
    });
    let skus: Vec<String> = (0..64).map(|index| format!("SKU-{index}")).collect();
    for sku in &skus {
        system
            .block_on(router.stock(sku.clone()))
            .expect("load the skus once");
    }
    let mut next = 0;
    criterion.bench_function("local_router_round_trip_64_skus", |bench| {
        bench.iter(|| {
            next = (next + 1) % skus.len();
            system.block_on(router.stock(skus[next].clone()))
        })
    });
    drop(router);
    let _ = std::fs::remove_dir_all(&directory);
}

criterion_group!(benches, routing);
criterion_main!(benches);
