//! Sales and returns read the ledger: a sale owed past its reservation's time is made
//! from what is available, and only units sold come back.

use super::*;

souk_db::on_both_backends!(
    #[actix_rt::test]
    a_sale_owed_past_its_reservation_is_made_from_what_is_available,
    only_units_sold_come_back
);

/// Waits until the SKU's timer has released every reservation.
async fn until_nothing_reserved(inventory: &LocalInventory, sku: &str) {
    for _ in 0..100 {
        if inventory.stock(sku.into()).await.unwrap().reserved == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the reservations of {sku} never expired");
}

fn sale(order: &str, quantity: i64) -> Command {
    Command::Commit {
        order_id: order.into(),
        quantity,
        actor: format!("order:{order}"),
    }
}

fn give_back(id: &str, sale_order_id: &str, quantity: i64) -> Command {
    Command::Return {
        order_id: id.into(),
        sale_order_id: sale_order_id.into(),
        quantity,
        actor: "admin:test".into(),
        reason: format!("returned: {id}"),
    }
}

async fn a_sale_owed_past_its_reservation_is_made_from_what_is_available(backend: TestBackend) {
    let database = fresh(backend).await;
    let db = database.db.clone();
    let inventory = start(&db, settings(), None);
    inventory.execute("LATE".into(), adjust(3)).await.unwrap();
    inventory
        .execute("LATE".into(), reserve("paid", 2, 200))
        .await
        .unwrap();
    until_nothing_reserved(&inventory, "LATE").await;
    inventory
        .execute("LATE".into(), reserve("other", 2, 600_000))
        .await
        .unwrap();
    assert_eq!(
        inventory.execute("LATE".into(), sale("paid", 2)).await,
        Err(InventoryError::Stock(StockError::Insufficient {
            available: 1
        }))
    );
    inventory.execute("LATE".into(), adjust(1)).await.unwrap();
    assert_eq!(
        inventory.execute("LATE".into(), sale("paid", 2)).await,
        Ok(Outcome::Sold)
    );
    // Asked again (a retry, the sweeper): the ledger holds the sale.
    assert_eq!(
        inventory.execute("LATE".into(), sale("paid", 2)).await,
        Ok(Outcome::AlreadySold)
    );
    let stock = inventory.stock("LATE".into()).await.unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (2, 2, 0)
    );
    assert_ledger_balances(&db, "LATE").await;
}

async fn only_units_sold_come_back(backend: TestBackend) {
    let database = fresh(backend).await;
    let db = database.db.clone();
    let inventory = start(&db, settings(), None);
    inventory.execute("BACK".into(), adjust(5)).await.unwrap();
    // A paid order cancelled after its reservation lapsed unsold: nothing left.
    inventory
        .execute("BACK".into(), reserve("lapsed", 2, 200))
        .await
        .unwrap();
    until_nothing_reserved(&inventory, "BACK").await;
    assert_eq!(
        inventory
            .execute("BACK".into(), give_back("lapsed", "lapsed", 2))
            .await,
        Ok(Outcome::NotSold)
    );
    // A shopper's return of a sold order comes back once.
    inventory
        .execute("BACK".into(), reserve("sold", 2, 600_000))
        .await
        .unwrap();
    inventory
        .execute("BACK".into(), sale("sold", 2))
        .await
        .unwrap();
    assert_eq!(
        inventory
            .execute("BACK".into(), give_back("return-1", "sold", 1))
            .await,
        Ok(Outcome::Returned)
    );
    assert_eq!(
        inventory
            .execute("BACK".into(), give_back("return-1", "sold", 1))
            .await,
        Ok(Outcome::AlreadyReturned)
    );
    // A return naming an order never sold here gives nothing back.
    assert_eq!(
        inventory
            .execute("BACK".into(), give_back("return-2", "lapsed", 1))
            .await,
        Ok(Outcome::NotSold)
    );
    let stock = inventory.stock("BACK".into()).await.unwrap();
    assert_eq!((stock.on_hand, stock.reserved), (4, 0));
    assert_ledger_balances(&db, "BACK").await;
}
