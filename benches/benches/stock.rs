//! SKU actor message handling in memory: the pure stock rules an actor applies to every
//! command, and the copy of the stock the actor takes for each batch it writes. No
//! database; the actor's I/O is what the contention harness measures.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use souk_actors::inventory::stock::{Changes, Recorded};
use souk_actors::inventory::{Command, Stock};

const NOW: i64 = 1_800_000_000_000_000;

/// A SKU holding `held` open reservations of one unit, with plenty left.
fn stock_holding(held: usize) -> Stock {
    let mut stock = Stock::empty("BENCH-SKU");
    let mut changes = Changes::default();
    stock
        .apply(
            &Command::Adjust {
                delta: 1_000_000_000,
                actor: "bench".into(),
                reason: "seed".into(),
            },
            NOW,
            Recorded::NOTHING,
            &mut changes,
        )
        .expect("seed stock");
    for index in 0..held {
        stock
            .apply(
                &reserve(&format!("order-{index:08}")),
                NOW,
                Recorded::NOTHING,
                &mut changes,
            )
            .expect("seed reservation");
    }
    stock
}

fn reserve(order_id: &str) -> Command {
    Command::Reserve {
        order_id: order_id.to_owned(),
        quantity: 1,
        ttl_ms: 900_000,
        actor: "bench".into(),
        holder: None,
        place: Default::default(),
    }
}

fn handling(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("sku_actor_in_memory");
    for held in [0_usize, 1_000, 100_000] {
        let stock = stock_holding(held);
        group.bench_function(format!("reserve_with_{held}_held"), |bench| {
            bench.iter_batched(
                || (stock.clone(), Changes::default()),
                // Stock and changes are returned so that dropping them is not timed.
                |(mut stock, mut changes)| {
                    let outcome =
                        stock.apply(&reserve("order-new"), NOW, Recorded::NOTHING, &mut changes);
                    (stock, changes, outcome)
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(format!("release_with_{held}_held"), |bench| {
            let release = Command::Release {
                order_id: "order-00000000".into(),
                actor: "bench".into(),
                reason: "bench".into(),
            };
            bench.iter_batched(
                || (stock.clone(), Changes::default()),
                |(mut stock, mut changes)| {
                    let outcome = stock.apply(&release, NOW, Recorded::NOTHING, &mut changes);
                    (stock, changes, outcome)
                },
                BatchSize::LargeInput,
            )
        });
        // After every batch the actor asks for the next expiry (an index lookup); a
        // snapshot copies the whole stock, which grows with the open reservations.
        group.bench_function(format!("next_expiry_with_{held}_held"), |bench| {
            bench.iter(|| stock.next_expiry())
        });
        group.bench_function(format!("stock_copy_with_{held}_held"), |bench| {
            bench.iter(|| stock.clone())
        });
    }
    group.finish();
}

criterion_group!(benches, handling);
criterion_main!(benches);
