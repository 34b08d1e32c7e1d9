//! The sweep of lapsed reservations. A loaded SKU's actor releases each reservation when
//! its time runs out, and an actor holding reservations is not passivated for being
//! idle; but a SKU not loaded (its node restarted, or its shard moved to a node that has
//! not touched it yet) holds them, counted as reserved, until something loads it. The
//! sweep asks each SKU holding a lapsed reservation to release what is due, through the
//! router. Each node asks only the SKUs it runs (on a cluster, those of the shards it
//! serves), so every SKU is asked once, by its owner.

use souk_db::clock::now_micros;
use souk_db::Db;

use super::stock::Command;
use super::{InventoryError, InventoryRouter, Sku};
use crate::entity::EntityRouter;

/// SKUs asked in one pass at most; the next pass takes the rest.
const SKUS_PER_PASS: u32 = 100;

/// One pass: of the SKUs holding a reservation past its time (the first
/// [`SKUS_PER_PASS`]), asks those this node runs to release what is due; answers how
/// many were asked. A SKU that cannot be reached now is asked again at the next pass.
#[tracing::instrument(name = "release_lapsed_reservations", skip_all)]
pub async fn release_lapsed<R: EntityRouter<Sku> + ?Sized>(
    db: &Db,
    router: &R,
) -> Result<usize, InventoryError> {
    let skus =
        souk_db::inventory::skus_with_lapsed_reservations(db.pool(), now_micros(), SKUS_PER_PASS)
            .await
            .map_err(|error| InventoryError::Unavailable(error.to_string()))?;
    let mut asked = 0;
    for sku in skus.into_iter().filter(|sku| router.serves_here(sku)) {
        asked += 1;
        if let Err(error) = router.execute(sku.clone(), Command::ExpireDue).await {
            tracing::warn!(%sku, %error, "cannot release the lapsed reservations of a sku");
        }
    }
    Ok(asked)
}
