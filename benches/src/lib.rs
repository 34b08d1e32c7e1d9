//! Souk's benchmarks. `souk-bench search` measures catalog search on MariaDB with and
//! without the cache, side by side in one run. The stock-contention harness arrives
//! with the benchmark issue (#7).

pub mod search;
pub mod stats;
