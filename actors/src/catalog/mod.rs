//! Catalog: categories (a tree), products with prices, tags, attributes and images,
//! search with filters, facets and cursor paging, imports, the read cache shared by
//! nodes (Redis or in-process) and the deterministic demo seed.

pub mod cache;
pub mod model;
pub mod query;
pub mod seed;
pub mod service;

pub use service::CatalogService;
