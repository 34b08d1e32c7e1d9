//! Souk's per-SKU actors, in process: commands go through the same `LocalInventory`
//! router a node uses, each SKU's actor group-commits to MariaDB (its own bench database,
//! migrated with Souk's migrations), and a reservation counts only once its batch has
//! committed.

use souk_actors::entity::HostSettings;
use souk_actors::inventory::{
    Command, InventoryError, InventoryRouter, LocalInventory, Outcome, StockError,
};
use souk_db::{Db, PoolSettings};
use sqlx::mysql::MySqlPool;

use super::{mysql::seed_rows, Attempt, Cell, Strategy, Verification, QUANTITY};
use crate::contention::host::ActixHost;

/// Long enough that no reservation expires during a run.
const TTL_MS: i64 = 3_600_000;

pub struct SoukActor {
    inventory: LocalInventory,
    check: MySqlPool,
    _host: ActixHost,
}

impl SoukActor {
    pub async fn new(database_url: &str, pool_size: u32, check: MySqlPool) -> anyhow::Result<Self> {
        let url = database_url.to_owned();
        let (host, inventory) = ActixHost::start(move || async move {
            let db = Db::connect(
                &url,
                &PoolSettings {
                    max_connections: pool_size,
                    acquire_timeout: std::time::Duration::from_secs(120),
                    // Only the actors use this pool: nothing to keep a lane from.
                    stock_connections: 0,
                    mail_connections: 0,
                },
            )
            .await?;
            db.migrate().await?;
            Ok(souk_actors::inventory::start_host(
                db,
                HostSettings::default(),
                None,
            ))
        })
        .await?;
        Ok(Self {
            inventory,
            check,
            _host: host,
        })
    }
}

/// Seeds Souk inventory rows for fresh SKUs, before any actor has loaded them (an actor
/// loads its SKU on first use, so no fencing is involved).
pub async fn seed_souk_items(pool: &MySqlPool, cell: &Cell, on_hand: i64) -> anyhow::Result<()> {
    let now = chrono::Utc::now().timestamp_micros();
    seed_rows(
        pool,
        "inventory_items (sku, on_hand, reserved, low_stock_threshold, version, updated_at)",
        cell,
        |values, sku| {
            values
                .push_bind(sku)
                .push_bind(on_hand)
                .push_bind(0_i64)
                .push_bind(0_i64)
                .push_bind(1_i64)
                .push_bind(now);
        },
    )
    .await
}

/// Counts, from Souk's tables, the reservations of the SKUs matching `sku_like`, the
/// units reserved beyond on-hand stock, and SKUs whose counters disagree with their
/// reservation rows or whose on-hand moved from `initial`.
pub async fn check_souk_items(
    pool: &MySqlPool,
    sku_like: &str,
    initial: i64,
) -> anyhow::Result<Verification> {
    let (recorded,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM inventory_reservations WHERE sku LIKE ?")
            .bind(sku_like)
            .fetch_one(pool)
            .await?;
    let (oversold, inconsistent): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(GREATEST(i.reserved - i.on_hand, 0) + GREATEST(COALESCE(r.units, 0) - ?, 0)), 0) AS SIGNED), \
                CAST(COALESCE(SUM(i.reserved <> COALESCE(r.units, 0) OR i.on_hand <> ?), 0) AS SIGNED) \
         FROM inventory_items i LEFT JOIN \
           (SELECT sku, SUM(quantity) AS units FROM inventory_reservations WHERE sku LIKE ? GROUP BY sku) r \
         ON r.sku = i.sku WHERE i.sku LIKE ?",
    )
    .bind(initial)
    .bind(initial)
    .bind(sku_like)
    .bind(sku_like)
    .fetch_one(pool)
    .await?;
    Ok(Verification {
        recorded: recorded as u64,
        oversold_units: oversold,
        inconsistent_skus: inconsistent as u64,
    })
}

/// Maps an inventory answer to the harness's outcome; anything but stock running out is
/// an error of the run.
pub fn attempt(result: Result<Outcome, InventoryError>) -> anyhow::Result<Attempt> {
    match result {
        Ok(Outcome::Reserved { .. }) => Ok(Attempt::Reserved),
        Ok(other) => anyhow::bail!("unexpected outcome of a fresh reservation: {other:?}"),
        Err(InventoryError::Stock(StockError::Insufficient { .. })) => Ok(Attempt::OutOfStock),
        Err(error) => Err(error.into()),
    }
}

impl Strategy for SoukActor {
    fn name(&self) -> &'static str {
        "souk-actor"
    }

    async fn prepare(&self, cell: &Cell) -> anyhow::Result<()> {
        seed_souk_items(&self.check, cell, cell.stock_per_sku).await
    }

    async fn reserve(&self, cell: &Cell, sku: usize, order_id: String) -> anyhow::Result<Attempt> {
        attempt(
            self.inventory
                .execute(
                    cell.sku(sku),
                    Command::Reserve {
                        order_id,
                        quantity: QUANTITY,
                        ttl_ms: TTL_MS,
                        actor: "bench".to_owned(),
                        holder: None,
                        place: Default::default(),
                    },
                )
                .await,
        )
    }

    async fn verify(&self, cell: &Cell) -> anyhow::Result<Verification> {
        check_souk_items(&self.check, &cell.sku_prefix_like(), cell.stock_per_sku).await
    }
}
