//! Souk's edges: REST (actix-web) and gRPC (tonic) handlers that translate to and from
//! the domains of `souk-actors`, the OpenAPI document, the problem and status mapping,
//! and configuration, start-up, shutdown and the CLI. The `souk` binary is `main.rs`.

pub mod account;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod console;
pub mod error;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod payments;
pub mod remote;
pub mod rest;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod topology;
pub mod wire;

pub use config::Config;
pub use startup::Application;

/// The allocator of every process that links a Souk node (the `souk` binary, the
/// benchmark harness, the integration tests): mimalloc, measured cheaper than glibc's
/// allocator per checkout (`docs/hot-sku.md`, "The allocator, measured").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
