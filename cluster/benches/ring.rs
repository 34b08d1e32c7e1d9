//! The ring simulation's table (balance and shards moved on join/leave for 3 to 128
//! nodes, at 1024 and at 16384 shards), then criterion timings of a key's lookup and of
//! recomputing the whole ring. `cargo bench -p souk-cluster --bench ring`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use souk_cluster::ring::{shard_of, Ring};
use souk_cluster::simulation::{markdown_table, pod_id, TABLE_NODE_COUNTS};

fn print_tables() {
    for shards in [1024, 16_384] {
        println!(
            "\nring simulation, {shards} shards (ring v{}):\n",
            souk_cluster::RING_VERSION
        );
        println!("{}", markdown_table(shards, &TABLE_NODE_COUNTS));
    }
}

fn lookups(criterion: &mut Criterion) {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs each timing once
    // and needs no tables.
    if std::env::args().any(|argument| argument == "--bench") {
        print_tables();
    }
    let keys: Vec<String> = (0..1024).map(|index| format!("SEED-{index:06}")).collect();
    criterion.bench_function("ring/shard_of (1024 shards)", |bencher| {
        let mut index = 0;
        bencher.iter(|| {
            index = (index + 1) % keys.len();
            black_box(shard_of(&keys[index], 1024))
        })
    });
    for nodes in [3, 128] {
        let ring = Ring::new(1024, (0..nodes).map(pod_id));
        criterion.bench_function(&format!("ring/owner_of_key ({nodes} nodes)"), |bencher| {
            let mut index = 0;
            bencher.iter(|| {
                index = (index + 1) % keys.len();
                black_box(ring.owner_of_key(&keys[index]))
            })
        });
        criterion.bench_function(
            &format!("ring/rebuild 1024 shards ({nodes} nodes)"),
            |bencher| bencher.iter(|| black_box(Ring::new(1024, (0..nodes).map(pod_id)))),
        );
    }
}

criterion_group!(benches, lookups);
criterion_main!(benches);
