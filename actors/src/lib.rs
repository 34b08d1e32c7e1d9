//! Souk's supervised actor trees.
//!
//! - [`catalog`]: the embedded search index of the product catalog (tantivy).
//!
//! - [`inventory`]: one actor per SKU owns its stock; writes are group-committed and
//!   fenced on the row version; a supervisor restarts failed actors from the database
//!   with backoff and passivates idle ones.
//!
//! - [`orders`]: the order state machine (pure, property-tested); the per-order actor
//!   that runs it is still to come (issue #4).
//!
//! Email workers arrive with issue #5.

pub mod catalog;
pub mod inventory;
pub mod orders;
