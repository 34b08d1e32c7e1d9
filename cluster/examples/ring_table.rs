//! Prints the ring simulation's tables (what the `ring` bench prints before timing),
//! without building the release profile: `cargo run -p souk-cluster --example ring_table`.

use souk_cluster::simulation::{markdown_table, TABLE_NODE_COUNTS};

fn main() {
    for shards in [1024, 16_384] {
        println!(
            "\n{shards} shards (ring v{}):\n",
            souk_cluster::RING_VERSION
        );
        println!("{}", markdown_table(shards, &TABLE_NODE_COUNTS));
    }
}
