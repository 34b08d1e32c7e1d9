//! Transactional email: askama templates, lettre transports, the worker pool that
//! consumes domain events, and the service behind the admin endpoints.

pub mod processor;
pub mod redact;
pub mod service;
pub mod templates;
pub mod transport;
pub mod worker;

pub use processor::EmailSettings;
pub use service::EmailService;
