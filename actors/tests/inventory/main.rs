//! The inventory actors against real databases (SQLite and MariaDB): each guarantee of
//! DESIGN.md's inventory section has a test here that fails without it. The helpers
//! are here; the tests are grouped by what they prove.

mod lifetime;
mod ownership;
mod sales;

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
