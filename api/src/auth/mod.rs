//! Who is calling: the request extractors that authenticate a REST caller from its
//! bearer token (tokens themselves are issued and checked by the identity domain).

pub mod extractor;

pub use extractor::{authenticate, AdminUser, AuthUser, MaybeUser};
