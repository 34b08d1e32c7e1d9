//! HTTP plumbing shared by every route: the JSON extractor, query/path error mapping,
//! the request observer (request ids, logs, metrics) and client addresses.

pub mod client_ip;
pub mod json;
pub mod observe;
