//! Catalog: categories (a tree), products with prices, tags, attributes, images and
//! variants (options such as size, each variant its own SKU),
//! search with filters, facets and cursor paging (answered by the embedded search
//! index, kept equal to the database by `search` and `feeds`), imports, the read cache
//! shared by nodes (Redis or in-process) and the deterministic demo seed.

pub mod cache;
mod categories;
pub mod feeds;
mod import;
pub mod index;
pub mod model;
mod products;
pub mod query;
pub mod search;
pub mod seed;
pub mod service;
pub mod snapshots;
pub mod variants;
mod views;

pub use categories::MAX_LEVELS as MAX_CATEGORY_LEVELS;
pub use search::SearchEngine;
pub use service::CatalogService;
