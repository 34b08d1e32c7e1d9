//! Souk's HTTP integration tests: one binary (one link) for every module.

mod helpers;

mod grpc;
mod grpc_edges;
mod inventory;
mod mail_links;
mod node_caches;

mod addresses;
mod admin;
mod auth;
mod cart;
mod catalog;
mod cli;
mod cluster;
mod console;
mod crash;
mod deploy;
mod email;
mod negative;
mod observability;
mod openapi;
mod ops;
mod orders;
mod payment_webhooks;
mod purchase_limits;
mod rate_limit;
mod readme;
mod returns;
mod search;
mod shipping;
mod shutdown;
mod slow_clients;
mod split;
mod tokens;
mod users;
mod variants;
mod verification;
