//! Catalog: categories (a tree), products with prices, tags, attributes and images,
//! search with filters, facets and cursor paging, imports, the read cache shared by
//! nodes (Redis or in-process), the deterministic demo seed, and the embedded search
//! index (tantivy; built and tested, not yet serving searches).

pub mod cache;
pub mod index;
pub mod model;
pub mod query;
pub mod seed;
pub mod service;

pub use service::CatalogService;
