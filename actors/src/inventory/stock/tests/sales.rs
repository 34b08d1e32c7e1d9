//! Tests of sales and returns: a replay's reservation under a sold order, returns of
//! units never sold here, sales whose reservation lapsed, and only units sold coming
//! back.

use super::*;

/// The same Idempotency-Key sent again after the payment reserves afresh under the
/// paid order's id until the checkout finds the order paid and releases it. A sale or
/// a return landing in between meets that reservation: neither may take it for the
/// order's own.
#[test]
fn a_replays_reservation_under_a_sold_order_is_neither_sold_nor_released_by_a_return() {
    let mut stock = Stock::empty("SKU");
    let apply = |stock: &mut Stock, command: Command, recorded: Recorded| {
        stock.apply(&command, 0, recorded, &mut Changes::default())
    };
    apply(&mut stock, adjust(5), Recorded::NOTHING).unwrap();
    let reserve = || reserve("o", 2);
    let commit = || Command::Commit {
        order_id: "o".into(),
        quantity: 2,
        actor: "t".into(),
    };
    apply(&mut stock, reserve(), Recorded::NOTHING).unwrap();
    assert_eq!(
        apply(&mut stock, commit(), Recorded::NOTHING),
        Ok(Outcome::Sold)
    );
    assert!(matches!(
        apply(&mut stock, reserve(), Recorded::NOTHING),
        Ok(Outcome::Reserved { .. })
    ));
    assert_eq!(
        (stock.on_hand, stock.reserved),
        (3, 2),
        "the replay's reservation"
    );

    // A settlement sent again (say, by the sweep) sells nothing more.
    assert_eq!(
        apply(&mut stock, commit(), Recorded::SOLD),
        Ok(Outcome::AlreadySold)
    );
    assert_eq!((stock.on_hand, stock.reserved), (3, 2));

    // The order cancelled after payment gets its sold units back; the replay's
    // reservation stays for the replay to release.
    let cancel_return = Command::Return {
        order_id: "o".into(),
        sale_order_id: String::new(),
        quantity: 2,
        actor: "t".into(),
        reason: String::new(),
    };
    assert_eq!(
        apply(&mut stock, cancel_return, Recorded::SOLD),
        Ok(Outcome::Returned)
    );
    assert_eq!((stock.on_hand, stock.reserved), (5, 2));
    assert_eq!(
        apply(
            &mut stock,
            Command::Release {
                order_id: "o".into(),
                actor: "t".into(),
                reason: "duplicate request".into(),
            },
            Recorded::NOTHING
        ),
        Ok(Outcome::Released)
    );
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (5, 0, 5)
    );
}

/// A paid order cancelled before its sale reached the SKU (the sale step failed and was
/// owed) gets its reservation released, not its units returned on top of it: on_hand
/// stays what was counted once the reservation's time is up.
#[test]
fn a_return_of_an_order_never_sold_here_releases_its_reservation() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    stock
        .apply(&adjust(10), 0, Recorded::NOTHING, &mut changes)
        .unwrap();
    stock
        .apply(&reserve("o", 3), 0, Recorded::NOTHING, &mut changes)
        .unwrap();
    let give_back = Command::Return {
        order_id: "o".into(),
        sale_order_id: String::new(),
        quantity: 3,
        actor: "t".into(),
        reason: String::new(),
    };
    assert_eq!(
        stock.apply(&give_back, 1, Recorded::NOTHING, &mut changes),
        Ok(Outcome::Released)
    );
    assert_eq!((stock.on_hand, stock.reserved), (10, 0));
    stock
        .apply(
            &Command::ExpireDue,
            5_000_000,
            Recorded::NOTHING,
            &mut changes,
        )
        .unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (10, 0, 10)
    );
    let ledger: i64 = changes.movements.iter().map(|m| m.delta_on_hand).sum();
    assert_eq!(ledger, 10, "the ledger recomputes on_hand");
}

/// A paid order whose reservation lapsed before its sale reached the SKU (the sale was
/// owed past the reservation's time) is sold from what is available when enough is,
/// refused while not, and sold once.
#[test]
fn a_sale_whose_reservation_lapsed_is_made_from_what_is_available() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    let nothing = Recorded::NOTHING;
    stock.apply(&adjust(3), 0, nothing, &mut changes).unwrap();
    stock
        .apply(&reserve("paid", 2), 0, nothing, &mut changes)
        .unwrap();
    stock
        .apply(&Command::ExpireDue, 2_000_000, nothing, &mut changes)
        .unwrap();
    stock
        .apply(&reserve("other", 2), 2_000_000, nothing, &mut changes)
        .unwrap();
    let sale = Command::Commit {
        order_id: "paid".into(),
        quantity: 2,
        actor: "t".into(),
    };
    assert_eq!(
        stock.apply(&sale, 2_000_000, nothing, &mut changes),
        Err(StockError::Insufficient { available: 1 })
    );
    stock
        .apply(&adjust(1), 2_000_000, nothing, &mut changes)
        .unwrap();
    assert_eq!(
        stock.apply(&sale, 2_000_000, nothing, &mut changes),
        Ok(Outcome::Sold)
    );
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (2, 2, 0)
    );
    // Asked again in the batch, or in a later one that reads the sale in the ledger.
    assert_eq!(
        stock.apply(&sale, 2_000_000, nothing, &mut changes),
        Ok(Outcome::AlreadySold)
    );
    let mut later = Changes::default();
    assert_eq!(
        stock.apply(&sale, 3_000_000, Recorded::SOLD, &mut later),
        Ok(Outcome::AlreadySold)
    );
    assert!(later.is_empty());
    let ledger: i64 = changes.movements.iter().map(|m| m.delta_on_hand).sum();
    assert_eq!(ledger, stock.on_hand, "the ledger recomputes on_hand");
}

/// Units come back only if they were sold: a paid order cancelled after its
/// reservation lapsed unsold gives nothing back, and a shopper's return gives back
/// units of the order it names.
#[test]
fn only_units_sold_come_back() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    let nothing = Recorded::NOTHING;
    stock.apply(&adjust(5), 0, nothing, &mut changes).unwrap();
    stock
        .apply(&reserve("lapsed", 2), 0, nothing, &mut changes)
        .unwrap();
    stock
        .apply(&Command::ExpireDue, 2_000_000, nothing, &mut changes)
        .unwrap();
    let cancelled = Command::Return {
        order_id: "lapsed".into(),
        sale_order_id: "lapsed".into(),
        quantity: 2,
        actor: "t".into(),
        reason: String::new(),
    };
    assert_eq!(
        stock.apply(&cancelled, 2_000_000, nothing, &mut changes),
        Ok(Outcome::NotSold)
    );
    assert_eq!((stock.on_hand, stock.reserved), (5, 0));
    // A shopper's return of a sold order: its id is the return's, its sale the order's.
    let received = Command::Return {
        order_id: "return-1".into(),
        sale_order_id: "sold".into(),
        quantity: 1,
        actor: "t".into(),
        reason: "returned".into(),
    };
    let mut later = Changes::default();
    assert_eq!(
        stock.apply(&received, 3_000_000, nothing, &mut later),
        Ok(Outcome::NotSold)
    );
    assert_eq!(
        stock.apply(&received, 3_000_000, Recorded::SOLD, &mut later),
        Ok(Outcome::Returned)
    );
    assert_eq!(stock.on_hand, 6);
    let returned_before = Recorded {
        sold: true,
        returned: true,
        ..Recorded::NOTHING
    };
    assert_eq!(
        stock.apply(
            &received,
            4_000_000,
            returned_before,
            &mut Changes::default()
        ),
        Ok(Outcome::AlreadyReturned)
    );
}
