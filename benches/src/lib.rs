//! Souk's benchmarks. `souk-bench search` measures catalog search on MariaDB with and
//! without the cache, side by side in one run; `souk-bench search-index` measures it on
//! the embedded search index; `souk-bench contention` measures
//! oversell-free stock reservations per second, Souk's actors against the usual
//! alternatives, side by side in one run; `souk-bench console` measures checkout on a
//! hot SKU with and without open live admin consoles.

pub mod console;
pub mod contention;
pub mod search;
pub mod search_index;
pub mod search_sql;
pub mod stats;
