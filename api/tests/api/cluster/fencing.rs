//! The last guard, on its own: two SKU hosts over one MariaDB database forced to believe
//! they both own a SKU (an ownership test double that answers a fixed epoch, as a
//! lease bug or a partition could). Only the later epoch can write; the earlier one's
//! actor is told `Fenced` and no write of it lands.

use std::sync::Arc;

use souk_actors::entity::{HostSettings, NotOwner, Ownership};
use souk_actors::inventory::stock::{Command, Outcome};
use souk_actors::inventory::{InventoryError, InventoryRouter, SkuDeps};

/// Test double of the shard table: believes it owns every SKU, under one epoch.
struct FixedEpochOwnership(u64);

impl Ownership for FixedEpochOwnership {
    fn epoch_of(&self, _key: &str) -> Result<u64, NotOwner> {
        Ok(self.0)
    }
}

/// Test double of a node that serves nothing.
struct NoOwnership;

impl Ownership for NoOwnership {
    fn epoch_of(&self, _key: &str) -> Result<u64, NotOwner> {
        Err(NotOwner)
    }
}

fn host(db: &souk_db::Db, ownership: Arc<dyn Ownership>) -> souk_actors::inventory::LocalInventory {
    souk_actors::inventory::start_host_with_ownership(
        SkuDeps {
            db: db.clone(),
            expiry_listener: None,
            feed: None,
        },
        HostSettings::default(),
        Some(ownership),
    )
}

fn reserve(order_id: &str) -> Command {
    Command::Reserve {
        order_id: order_id.to_owned(),
        quantity: 1,
        ttl_ms: 600_000,
        actor: format!("order:{order_id}"),
        holder: None,
        place: Default::default(),
    }
}

#[actix_web::test]
async fn two_hosts_that_both_believe_they_own_a_sku_cannot_both_write() {
    let database = souk_db::testing::fresh_mysql().await;
    let earlier = host(&database.db, Arc::new(FixedEpochOwnership(5)));
    let later = host(&database.db, Arc::new(FixedEpochOwnership(7)));
    let sku = "FENCE-1".to_owned();
    let stocked = earlier
        .execute(
            sku.clone(),
            Command::Adjust {
                delta: 10,
                actor: "admin".into(),
                reason: "stock".into(),
            },
        )
        .await;
    assert!(
        matches!(stocked, Ok(Outcome::Adjusted { on_hand: 10, .. })),
        "{stocked:?}"
    );
    assert!(earlier.execute(sku.clone(), reserve("o1")).await.is_ok());
    // The later owner loads (claiming the row with epoch 7) and writes.
    assert!(later.execute(sku.clone(), reserve("o2")).await.is_ok());
    // The earlier owner's actor still holds the SKU in memory: its next batch is fenced.
    assert_eq!(
        earlier.execute(sku.clone(), reserve("o3")).await,
        Err(InventoryError::Fenced)
    );
    // Its next actor cannot claim the row either.
    assert_eq!(
        earlier.execute(sku.clone(), reserve("o4")).await,
        Err(InventoryError::Fenced)
    );
    assert!(later.execute(sku.clone(), reserve("o5")).await.is_ok());

    let pool = database.db.pool();
    let (reserved, owner_epoch): (i64, i64) =
        sqlx::query_as("SELECT reserved, owner_epoch FROM inventory_items WHERE sku = ?")
            .bind(&sku)
            .fetch_one(pool)
            .await
            .unwrap();
    let held: Vec<(String,)> = sqlx::query_as(
        "SELECT order_id FROM inventory_reservations WHERE sku = ? ORDER BY order_id",
    )
    .bind(&sku)
    .fetch_all(pool)
    .await
    .unwrap();
    let held: Vec<&str> = held.iter().map(|(order,)| order.as_str()).collect();
    assert_eq!(
        held,
        ["o1", "o2", "o5"],
        "no write of the fenced owner landed"
    );
    assert_eq!((reserved, owner_epoch), (3, 7));
}

#[actix_web::test]
async fn a_host_runs_no_entity_of_a_shard_it_does_not_serve() {
    let database = souk_db::testing::fresh_mysql().await;
    let idle = host(&database.db, Arc::new(NoOwnership));
    let refused = idle.execute("FENCE-2".to_owned(), reserve("o1")).await;
    assert_eq!(refused, Err(InventoryError::Fenced));
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inventory_items")
        .fetch_one(database.db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0);
}
