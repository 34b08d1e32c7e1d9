//! Identity: accounts (registration, profiles, admin management), sessions with
//! rotating refresh tokens, access tokens (JWT), password hashing off the async
//! threads, single-use secret tokens and login rate limits; each user's address book;
//! and the validated values (email address, name, password, role, postal address)
//! parsed once at the edge.

pub mod access;
pub mod address;
pub mod addresses;
pub mod auth;
pub mod email_address;
pub mod hasher;
pub mod jwt;
pub mod name;
pub mod password;
pub mod rate_limit;
pub mod role;
pub mod secret_token;
pub mod users;
pub mod views;

pub use access::AccessCache;
pub use address::{AddressFields, PostalAddress};
pub use addresses::{AddressBook, AddressView};
pub use auth::{AuthService, AuthSettings, TokenPair};
pub use email_address::Email;
pub use hasher::PasswordHasher;
pub use jwt::{AccessClaims, JwtKeys};
pub use name::PersonName;
pub use password::Password;
pub use role::{Role, UserStatus};
pub use users::UserService;
