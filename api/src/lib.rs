//! Souk's API crate: configuration, start-up, REST handlers, authentication and the
//! service layer of the stateless domains (users, auth). The `souk` binary is `main.rs`.

pub mod auth;
pub mod cache;
pub mod config;
pub mod console;
pub mod domain;
pub mod email;
pub mod error;
pub mod events;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod redis_store;
pub mod routes;
pub mod seed;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod topology;

pub use config::Config;
pub use startup::Application;
