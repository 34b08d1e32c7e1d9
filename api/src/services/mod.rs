//! The service layer: every business rule of the stateless domains, shared by the REST
//! handlers (and the gRPC ones to come), which only translate.

pub mod auth;
pub mod catalog;
pub mod inventory;
pub mod order_actors;
pub mod orders;
pub mod payments;
pub mod users;

pub use auth::{AuthService, TokenPair};
pub use catalog::CatalogService;
pub use users::UserService;
