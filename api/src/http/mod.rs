//! HTTP plumbing shared by every route: the JSON extractor, query/path error mapping,
//! the request observer (request ids, logs, metrics), the body read deadline and
//! client addresses.

pub mod body_deadline;
pub mod client_ip;
pub mod json;
pub mod observe;
