//! Validated values, parsed once at the edge so the service layer never sees a bad one.

pub mod email;
pub mod name;
pub mod password;
pub mod role;

pub use email::Email;
pub use name::PersonName;
pub use password::Password;
pub use role::{Role, UserStatus};
pub mod catalog;
pub mod currency;

pub use currency::Currency;
