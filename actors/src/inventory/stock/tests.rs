//! Tests of the stock rules: invariants under random command sequences (proptest),
//! idempotent commands, rows written per batch and the per-customer cap.

use super::*;
use proptest::prelude::*;

const CUSTOMER_CAP: i64 = 7;

fn command() -> impl Strategy<Value = Command> {
    let order = (0..8u8).prop_map(|n| format!("order-{n}"));
    prop_oneof![
        (order.clone(), -2i64..6, 0i64..3, 0..3u8).prop_map(
            |(order_id, quantity, ttl, customer)| {
                Command::Reserve {
                    order_id,
                    quantity,
                    ttl_ms: ttl * 1000,
                    actor: "t".into(),
                    holder: Some(Holder {
                        customer_id: format!("customer-{customer}"),
                        max_units: Some(CUSTOMER_CAP),
                    }),
                    place: Default::default(),
                }
            }
        ),
        order.clone().prop_map(|order_id| Command::Release {
            order_id,
            actor: "t".into(),
            reason: "r".into()
        }),
        order.prop_map(|order_id| Command::Commit {
            order_id,
            actor: "t".into()
        }),
        (-10i64..15).prop_map(|delta| Command::Adjust {
            delta,
            actor: "t".into(),
            reason: "r".into()
        }),
        (0..8u8, 1i64..4).prop_map(|(n, quantity)| Command::Return {
            order_id: format!("order-{n}"),
            quantity,
            actor: "t".into(),
            reason: String::new(),
        }),
        Just(Command::ExpireDue),
    ]
}

proptest! {
    /// Whatever happens: nothing oversold, reserved equals the open reservations, and
    /// the ledger recomputes on_hand and reserved.
    #[test]
    fn invariants_hold_under_any_sequence(commands in proptest::collection::vec((command(), 0i64..4), 0..80)) {
        let mut stock = Stock::empty("SKU");
        let mut ledger_on_hand = 0;
        let mut ledger_reserved = 0;
        let mut now = 0;
        for (command, step) in commands {
            now += step * 1_000_000;
            let mut changes = Changes::default();
            let before = stock.clone();
            let result = stock.apply(&command, now, false, &mut changes);
            if result.is_err() {
                prop_assert_eq!(&stock, &before, "a refused command changes nothing");
                prop_assert!(changes.is_empty());
            }
            for movement in &changes.movements {
                ledger_on_hand += movement.delta_on_hand;
                ledger_reserved += movement.delta_reserved;
            }
            prop_assert!(stock.available() >= 0, "oversold: {:?}", stock);
            prop_assert!(stock.reserved >= 0 && stock.on_hand >= 0);
            prop_assert_eq!(stock.reserved, stock.reservations.values().map(|held| held.quantity).sum::<i64>());
            prop_assert_eq!(ledger_on_hand, stock.on_hand);
            prop_assert_eq!(ledger_reserved, stock.reserved);
            for customer in 0..3 {
                let held = stock.held_by(&format!("customer-{customer}"));
                prop_assert!(held <= CUSTOMER_CAP, "customer-{} holds {}", customer, held);
            }
        }
    }

    #[test]
    fn reserve_is_idempotent_by_order(quantity in 1i64..5) {
        let mut stock = Stock::empty("SKU");
        let mut changes = Changes::default();
        stock.apply(&Command::Adjust { delta: 10, actor: "t".into(), reason: "r".into() }, 0, false, &mut changes).unwrap();
        let reserve = Command::Reserve { order_id: "o".into(), quantity, ttl_ms: 1000, actor: "t".into(), holder: None, place: Default::default(), };
        let first = stock.apply(&reserve, 0, false, &mut changes);
        prop_assert!(matches!(first, Ok(Outcome::Reserved { .. })), "first reservation: {:?}", first);
        prop_assert_eq!(stock.apply(&reserve, 0, false, &mut changes), Ok(Outcome::AlreadyReserved));
        prop_assert_eq!(stock.reserved, quantity);
    }
}

#[test]
fn commit_twice_is_idempotent_and_unknown_commit_is_refused() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    stock
        .apply(
            &Command::Adjust {
                delta: 5,
                actor: "t".into(),
                reason: "r".into(),
            },
            0,
            false,
            &mut changes,
        )
        .unwrap();
    stock
        .apply(
            &Command::Reserve {
                order_id: "o".into(),
                quantity: 2,
                ttl_ms: 1000,
                actor: "t".into(),
                holder: None,
                place: Default::default(),
            },
            0,
            false,
            &mut changes,
        )
        .unwrap();
    let commit = Command::Commit {
        order_id: "o".into(),
        actor: "t".into(),
    };
    assert_eq!(
        stock.apply(&commit, 0, false, &mut changes),
        Ok(Outcome::Sold)
    );
    assert_eq!(
        stock.apply(&commit, 0, false, &mut changes),
        Ok(Outcome::AlreadySold)
    );
    assert_eq!(stock.on_hand, 3);
    let mut fresh = Changes::default();
    assert_eq!(
        stock.apply(
            &Command::Commit {
                order_id: "x".into(),
                actor: "t".into()
            },
            0,
            false,
            &mut fresh
        ),
        Err(StockError::NotReserved)
    );
    assert_eq!(
        stock.apply(
            &Command::Commit {
                order_id: "x".into(),
                actor: "t".into()
            },
            0,
            true,
            &mut fresh
        ),
        Ok(Outcome::AlreadySold)
    );
}

#[test]
fn a_reservation_made_and_released_in_one_batch_writes_no_row() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    stock
        .apply(
            &Command::Adjust {
                delta: 5,
                actor: "t".into(),
                reason: "r".into(),
            },
            0,
            false,
            &mut changes,
        )
        .unwrap();
    stock
        .apply(
            &Command::Reserve {
                order_id: "o".into(),
                quantity: 2,
                ttl_ms: 1000,
                actor: "t".into(),
                holder: None,
                place: Default::default(),
            },
            0,
            false,
            &mut changes,
        )
        .unwrap();
    stock
        .apply(
            &Command::Release {
                order_id: "o".into(),
                actor: "t".into(),
                reason: "r".into(),
            },
            0,
            false,
            &mut changes,
        )
        .unwrap();
    assert!(changes.new_reservations.is_empty());
    assert!(changes.removed_reservations.is_empty());
    assert_eq!(changes.movements.len(), 3);
}

#[test]
fn a_customer_holds_at_most_the_cap_across_unpaid_orders() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    let reserve = |order: &str, customer: &str, quantity: i64| Command::Reserve {
        order_id: order.into(),
        quantity,
        ttl_ms: 60_000,
        actor: "t".into(),
        holder: Some(Holder {
            customer_id: customer.into(),
            max_units: Some(5),
        }),
        place: Default::default(),
    };
    let adjust = Command::Adjust {
        delta: 100,
        actor: "t".into(),
        reason: "r".into(),
    };
    stock.apply(&adjust, 0, false, &mut changes).unwrap();
    stock
        .apply(&reserve("o1", "alice", 3), 0, false, &mut changes)
        .unwrap();
    assert_eq!(
        stock.apply(&reserve("o2", "alice", 3), 0, false, &mut changes),
        Err(StockError::CustomerLimit {
            limit: 5,
            allowed: 2
        })
    );
    // Another customer is not affected, and the same order asked again is a replay.
    stock
        .apply(&reserve("o3", "bob", 5), 0, false, &mut changes)
        .unwrap();
    assert_eq!(
        stock.apply(&reserve("o1", "alice", 3), 0, false, &mut changes),
        Ok(Outcome::AlreadyReserved)
    );
    stock
        .apply(&reserve("o2", "alice", 2), 0, false, &mut changes)
        .unwrap();
    assert_eq!(stock.held_by("alice"), 5);
    // A paid order's units are no longer held unpaid, so they free the cap.
    stock
        .apply(
            &Command::Commit {
                order_id: "o1".into(),
                actor: "t".into(),
            },
            0,
            false,
            &mut changes,
        )
        .unwrap();
    assert_eq!(stock.held_by("alice"), 2);
    stock
        .apply(&reserve("o4", "alice", 3), 0, false, &mut changes)
        .unwrap();
    // The reservation rows carry the customer, so a restarted actor counts them too.
    assert!(changes
        .new_reservations
        .iter()
        .all(|row| row.customer_id.is_some()));
}

/// A paid order cancelled before its sale reached the SKU (the sale step failed and was
/// owed) gets its reservation released, not its units returned on top of it: on_hand
/// stays what was counted once the reservation's time is up.
#[test]
fn a_return_of_an_order_never_sold_here_releases_its_reservation() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    let adjust = Command::Adjust {
        delta: 10,
        actor: "t".into(),
        reason: "r".into(),
    };
    stock.apply(&adjust, 0, false, &mut changes).unwrap();
    let reserve = Command::Reserve {
        order_id: "o".into(),
        quantity: 3,
        ttl_ms: 1000,
        actor: "t".into(),
        holder: None,
        place: Default::default(),
    };
    stock.apply(&reserve, 0, false, &mut changes).unwrap();
    let give_back = Command::Return {
        order_id: "o".into(),
        quantity: 3,
        actor: "t".into(),
        reason: String::new(),
    };
    assert_eq!(
        stock.apply(&give_back, 1, false, &mut changes),
        Ok(Outcome::Released)
    );
    assert_eq!((stock.on_hand, stock.reserved), (10, 0));
    stock
        .apply(&Command::ExpireDue, 5_000_000, false, &mut changes)
        .unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available()),
        (10, 0, 10)
    );
    let ledger: i64 = changes.movements.iter().map(|m| m.delta_on_hand).sum();
    assert_eq!(ledger, 10, "the ledger recomputes on_hand");
}
