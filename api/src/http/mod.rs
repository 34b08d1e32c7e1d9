//! HTTP plumbing shared by every route: the JSON extractor, query/path error mapping,
//! the request observer (request ids, logs, metrics), the body read deadline, client
//! addresses, and how long an idle connection is kept.

use std::time::Duration;

pub mod body_deadline;
pub mod client_ip;
pub mod json;
pub mod observe;

/// How long the REST and operations servers keep an idle connection open (actix-web's
/// default, stated so that clients can stay under it).
pub const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// How long a pooling client of these servers (the tests', the benchmark harness's)
/// keeps an idle connection: under [`KEEP_ALIVE`], so it never reuses one at the moment
/// the server closes it for idleness ("connection closed before message completed").
pub const CLIENT_IDLE: Duration = Duration::from_secs(2);

const _: () = assert!(CLIENT_IDLE.as_millis() < KEEP_ALIVE.as_millis());
