//! Shopping carts: one per signed-in user, and guest carts reached by an opaque token
//! that merge into the user's cart. Lines are set, removed and capped as orders are;
//! the cart is shown priced and checked against the stock now, saying what changed
//! since each line was added; checkout places the order through the order service's
//! idempotent create and then takes exactly the ordered lines out.
//!
//! - [`model`]: the stored cart and its pure rules (set, merge, take out);
//! - [`store`]: where carts live (Redis when configured, else the database), written
//!   by compare-and-set on the cart's version;
//! - [`view`]: the cart as the API shows it;
//! - [`service`]: the operations, each a retried read-modify-write of one cart.

pub mod model;
pub mod service;
pub mod store;
pub mod view;

pub use model::{Cart, CartLine, StoredCart, MAX_LINES, MAX_QUANTITY};
pub use service::{user_key, CartCheckout, CartOwner, CartService, GuestCart};
pub use store::{CartStore, DbCartStore, RedisCartStore};
pub use view::{CartLineView, CartView, LineStatus};
