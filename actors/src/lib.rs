//! Souk's domains, each a folder with its rules, its service and its supervised actors,
//! and nothing of HTTP or gRPC: the edges in `souk-api` translate to and from them.
//!
//! - [`identity`]: users, sessions, tokens, password hashing and login rate limits.
//! - [`catalog`]: categories, products, search, the read cache and the demo seed.
//! - [`inventory`]: one actor per SKU owns its stock, group-commits and fences writes.
//! - [`orders`]: one actor per order runs the order state machine; checkout.
//! - [`cart`]: carts of users and guests, in Redis or the database; checkout from them.
//! - [`shipping`]: shipping methods and tax rates, and the totals checkout charges.
//! - [`email`]: templates, transports and the supervised worker pool.
//! - [`outbox`]: domain events from the transactional outbox to the bus.
//! - [`entity`]: the generic host and router that SKU and order actors run under.
//! - [`node`]: the root that owns every domain's subtree, lists it and stops it in order.
//! - [`ports`]: what a domain reaches that may live elsewhere, as traits.

pub mod background;
pub mod cart;
pub mod catalog;
pub mod email;
pub mod entity;
pub mod error;
pub mod identity;
pub mod inventory;
pub mod money;
pub mod node;
pub mod node_cache;
pub mod orders;
pub mod outbox;
pub mod paging;
pub mod ports;
pub mod redis_store;
pub mod shipping;

pub use error::{Error, ErrorCode, FieldError, FieldErrors, WireError};
