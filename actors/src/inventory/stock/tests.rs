//! Tests of the stock rules: invariants under random command sequences (proptest),
//! idempotent commands, rows written per batch, the per-customer cap and counts; sales
//! and returns in `sales`.

use super::*;
use proptest::prelude::*;

mod sales;

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
        (order.clone(), 0i64..4).prop_map(|(order_id, quantity)| Command::Commit {
            order_id,
            quantity,
            actor: "t".into()
        }),
        (0i64..15).prop_map(|on_hand| Command::SetOnHand {
            on_hand,
            actor: "t".into(),
            reason: "count".into(),
        }),
        (-10i64..15).prop_map(|delta| Command::Adjust {
            delta,
            actor: "t".into(),
            reason: "r".into(),
        }),
        (0..8u8, 1i64..4).prop_map(|(n, quantity)| Command::Return {
            order_id: format!("order-{n}"),
            sale_order_id: String::new(),
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
        // What the ledger holds, as the actor reads it before a sale or a return.
        let mut sold = std::collections::HashSet::new();
        let mut returned = std::collections::HashSet::new();
        for (command, step) in commands {
            now += step * 1_000_000;
            let mut changes = Changes::default();
            let before = stock.clone();
            let recorded = match &command {
                Command::Commit { order_id, .. } => Recorded { sold: sold.contains(order_id), ..Recorded::NOTHING },
                Command::Return { order_id, .. } => Recorded { sold: sold.contains(order_id), returned: returned.contains(order_id), ..Recorded::NOTHING },
                _ => Recorded::NOTHING,
            };
            let result = stock.apply(&command, now, recorded, &mut changes);
            for movement in &changes.movements {
                let order_id = movement.order_id.clone().unwrap_or_default();
                match movement.kind.as_str() {
                    "sale" => prop_assert!(sold.insert(order_id), "sold twice"),
                    "return" => prop_assert!(returned.insert(order_id), "returned twice"),
                    _ => {}
                }
            }
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
        stock.apply(&Command::Adjust { delta: 10, actor: "t".into(), reason: "r".into() }, 0, Recorded::NOTHING, &mut changes).unwrap();
        let reserve = Command::Reserve { order_id: "o".into(), quantity, ttl_ms: 1000, actor: "t".into(), holder: None, place: Default::default(), };
        let first = stock.apply(&reserve, 0, Recorded::NOTHING, &mut changes);
        prop_assert!(matches!(first, Ok(Outcome::Reserved { .. })), "first reservation: {:?}", first);
        prop_assert_eq!(stock.apply(&reserve, 0, Recorded::NOTHING, &mut changes), Ok(Outcome::AlreadyReserved));
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
            Recorded::NOTHING,
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
            Recorded::NOTHING,
            &mut changes,
        )
        .unwrap();
    let commit = Command::Commit {
        order_id: "o".into(),
        quantity: 0,
        actor: "t".into(),
    };
    assert_eq!(
        stock.apply(&commit, 0, Recorded::NOTHING, &mut changes),
        Ok(Outcome::Sold)
    );
    assert_eq!(
        stock.apply(&commit, 0, Recorded::NOTHING, &mut changes),
        Ok(Outcome::AlreadySold)
    );
    assert_eq!(stock.on_hand, 3);
    let mut fresh = Changes::default();
    assert_eq!(
        stock.apply(
            &Command::Commit {
                order_id: "x".into(),
                quantity: 0,
                actor: "t".into()
            },
            0,
            Recorded::NOTHING,
            &mut fresh
        ),
        Err(StockError::NotReserved)
    );
    assert_eq!(
        stock.apply(
            &Command::Commit {
                order_id: "x".into(),
                quantity: 0,
                actor: "t".into()
            },
            0,
            Recorded::SOLD,
            &mut fresh
        ),
        Ok(Outcome::AlreadySold)
    );
}

/// An admin's change sent with a request key is applied once: sent again in the same
/// batch, or later (the ledger holds its movement), it changes nothing; a count that
/// changed nothing is recorded all the same, so that a resend after a sale does not
/// put the sold units back.
#[test]
fn a_keyed_change_is_applied_once() {
    let mut stock = Stock::empty("SKU");
    let restock = Command::KeyedChange {
        request_key: "delivery-1".into(),
        on_hand: OnHandChange::By(10),
        actor: "admin".into(),
        reason: "delivery".into(),
    };
    let mut changes = Changes::default();
    for _ in 0..2 {
        assert_eq!(
            stock.apply(&restock, 0, Recorded::NOTHING, &mut changes),
            Ok(Outcome::Adjusted {
                on_hand: 10,
                available: 10
            })
        );
    }
    assert_eq!(changes.movements.len(), 1);
    assert_eq!(
        changes.movements[0].request_key.as_deref(),
        Some("delivery-1")
    );
    let applied = Recorded {
        requested: true,
        ..Recorded::NOTHING
    };
    let mut later = Changes::default();
    assert!(stock.apply(&restock, 0, applied, &mut later).is_ok());
    assert_eq!((stock.on_hand, later.movements.len()), (10, 0));

    let count = Command::KeyedChange {
        request_key: "count-1".into(),
        on_hand: OnHandChange::To(10),
        actor: "admin".into(),
        reason: "count".into(),
    };
    let mut counted = Changes::default();
    assert!(stock
        .apply(&count, 0, Recorded::NOTHING, &mut counted)
        .is_ok());
    assert_eq!(
        counted.movements.len(),
        1,
        "recorded though it changed nothing"
    );
    assert_eq!(counted.movements[0].delta_on_hand, 0);
    // Four units sold meanwhile.
    let mut sale = Changes::default();
    stock
        .apply(&reserve("o", 4), 0, Recorded::NOTHING, &mut sale)
        .unwrap();
    let commit = Command::Commit {
        order_id: "o".into(),
        quantity: 4,
        actor: "t".into(),
    };
    assert_eq!(
        stock.apply(&commit, 0, Recorded::NOTHING, &mut sale),
        Ok(Outcome::Sold)
    );
    assert!(stock
        .apply(&count, 0, applied, &mut Changes::default())
        .is_ok());
    assert_eq!(stock.on_hand, 6, "the resent count puts nothing back");

    // Without a key every request is a change.
    let unkeyed = Command::Adjust {
        delta: 10,
        actor: "admin".into(),
        reason: "delivery".into(),
    };
    stock
        .apply(&unkeyed, 0, Recorded::NOTHING, &mut Changes::default())
        .unwrap();
    stock
        .apply(&unkeyed, 0, Recorded::NOTHING, &mut Changes::default())
        .unwrap();
    assert_eq!(stock.on_hand, 26);
}

/// Between nodes, a keyed change travels under a name of its own, which a node of the
/// previous version cannot read (it refuses the call rather than apply the change
/// without its key), while the commands it knows are written as they always were.
#[test]
fn a_keyed_change_travels_under_its_own_name() {
    let keyed = serde_json::to_value(Command::KeyedChange {
        request_key: "k".into(),
        on_hand: OnHandChange::By(5),
        actor: "t".into(),
        reason: "r".into(),
    })
    .unwrap();
    assert_eq!(
        keyed,
        serde_json::json!({"KeyedChange": {"request_key": "k", "on_hand": {"By": 5}, "actor": "t", "reason": "r"}})
    );
    assert_eq!(
        serde_json::to_value(adjust(5)).unwrap(),
        serde_json::json!({"Adjust": {"delta": 5, "actor": "t", "reason": "r"}})
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
            Recorded::NOTHING,
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
            Recorded::NOTHING,
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
            Recorded::NOTHING,
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
    stock
        .apply(&adjust, 0, Recorded::NOTHING, &mut changes)
        .unwrap();
    stock
        .apply(
            &reserve("o1", "alice", 3),
            0,
            Recorded::NOTHING,
            &mut changes,
        )
        .unwrap();
    assert_eq!(
        stock.apply(
            &reserve("o2", "alice", 3),
            0,
            Recorded::NOTHING,
            &mut changes
        ),
        Err(StockError::CustomerLimit {
            limit: 5,
            allowed: 2
        })
    );
    // Another customer is not affected, and the same order asked again is a replay.
    stock
        .apply(&reserve("o3", "bob", 5), 0, Recorded::NOTHING, &mut changes)
        .unwrap();
    assert_eq!(
        stock.apply(
            &reserve("o1", "alice", 3),
            0,
            Recorded::NOTHING,
            &mut changes
        ),
        Ok(Outcome::AlreadyReserved)
    );
    stock
        .apply(
            &reserve("o2", "alice", 2),
            0,
            Recorded::NOTHING,
            &mut changes,
        )
        .unwrap();
    assert_eq!(stock.held_by("alice"), 5);
    // A paid order's units are no longer held unpaid, so they free the cap.
    stock
        .apply(
            &Command::Commit {
                order_id: "o1".into(),
                quantity: 0,
                actor: "t".into(),
            },
            0,
            Recorded::NOTHING,
            &mut changes,
        )
        .unwrap();
    assert_eq!(stock.held_by("alice"), 2);
    stock
        .apply(
            &reserve("o4", "alice", 3),
            0,
            Recorded::NOTHING,
            &mut changes,
        )
        .unwrap();
    // The reservation rows carry the customer, so a restarted actor counts them too.
    assert!(changes
        .new_reservations
        .iter()
        .all(|row| row.customer_id.is_some()));
}

/// An adjustment of on_hand by `delta`.
fn adjust(delta: i64) -> Command {
    Command::Adjust {
        delta,
        actor: "t".into(),
        reason: "r".into(),
    }
}

/// A reservation of `quantity` units for `order_id`, held for a second.
fn reserve(order_id: &str, quantity: i64) -> Command {
    Command::Reserve {
        order_id: order_id.into(),
        quantity,
        ttl_ms: 1000,
        actor: "t".into(),
        holder: None,
        place: Default::default(),
    }
}

/// A count sets on_hand to what was counted whatever happened since it was read: two
/// counts of 50 leave 50, a sale between read and count does not make it miss, and a
/// count below what is reserved is refused.
#[test]
fn a_count_sets_on_hand_to_what_was_counted() {
    let mut stock = Stock::empty("SKU");
    let mut changes = Changes::default();
    let nothing = Recorded::NOTHING;
    let count = |on_hand| Command::SetOnHand {
        on_hand,
        actor: "admin".into(),
        reason: "count".into(),
    };
    stock.apply(&count(40), 0, nothing, &mut changes).unwrap();
    stock.apply(&count(50), 0, nothing, &mut changes).unwrap();
    assert_eq!(
        stock.apply(&count(50), 0, nothing, &mut changes),
        Ok(Outcome::Adjusted {
            on_hand: 50,
            available: 50
        })
    );
    stock
        .apply(&reserve("o", 3), 0, nothing, &mut changes)
        .unwrap();
    assert_eq!(
        stock.apply(&count(2), 0, nothing, &mut changes),
        Err(StockError::BelowReserved { reserved: 3 })
    );
    let ledger: Vec<i64> = changes
        .movements
        .iter()
        .filter(|m| m.kind == "adjustment")
        .map(|m| m.delta_on_hand)
        .collect();
    assert_eq!(
        ledger,
        [40, 10],
        "a count that changes nothing writes no row"
    );
}
