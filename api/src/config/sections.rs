//! The sections of the configuration, each with its defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::{redacted_url, Secret};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// What this node is and runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    /// Embedded-mode data: the SQLite file, the generated JWT key, the mail outbox.
    pub data_dir: PathBuf,
    /// The services this node runs: a comma-separated subset of user, auth, email,
    /// product, order, inventory, or `all`.
    pub services: String,
    /// The cores this node sizes its threads to: HTTP workers (unless `http.workers`
    /// is set), SKU actor arbiters and the password-hashing pool's default. Unset
    /// means the cores the operating system grants the process (a cgroup CPU quota
    /// counts); set it where several nodes share one machine's cores.
    pub cpus: Option<usize>,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            services: "all".to_owned(),
            cpus: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info,souk_api=debug`.
    pub filter: String,
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            filter: "info,sqlx=warn,async_nats=warn".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Where the REST API listens.
    pub addr: SocketAddr,
    /// Where the operations endpoints listen (`/metrics`, `/healthz`, `/readyz`): what
    /// Prometheus scrapes and Kubernetes probes. Loopback by default, so a node never
    /// shows its metrics on the public port.
    pub ops_addr: SocketAddr,
    /// HTTP worker threads; unset means `node.cpus`.
    pub workers: Option<usize>,
    pub max_body_bytes: usize,
    /// How long reading a request's body may take, from the start of the request;
    /// slower bodies get 408 and their connection is closed.
    pub body_read_timeout_secs: u64,
    /// Grace period for in-flight requests (and then the node's children) on SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// Take the client address from the right-most `X-Forwarded-For` entry, the one the
    /// nearest proxy appended (`Forwarded` and the entries left of it are ignored: the
    /// client writes those). Only behind one trusted proxy.
    pub trust_forwarded_for: bool,
    /// The address users reach the site at; links in emails start with it.
    pub public_base_url: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ops_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            workers: None,
            max_body_bytes: 64 * 1024,
            body_read_timeout_secs: 10,
            shutdown_timeout_secs: 30,
            trust_forwarded_for: false,
            public_base_url: "http://127.0.0.1:8080".to_owned(),
        }
    }
}

/// The gRPC API, and the services this node calls but does not run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcSection {
    /// Where the gRPC API listens (its own port, started and stopped with REST).
    pub addr: SocketAddr,
    /// Deadline of every call to another service, retries included.
    pub deadline_ms: u64,
    pub user_url: Option<String>,
    pub auth_url: Option<String>,
    pub email_url: Option<String>,
    pub product_url: Option<String>,
    pub order_url: Option<String>,
    pub inventory_url: Option<String>,
}

impl Default for GrpcSection {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            deadline_ms: 3000,
            user_url: None,
            auth_url: None,
            email_url: None,
            product_url: None,
            order_url: None,
            inventory_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite:` or `mysql:` URL; unset means the SQLite file in `node.data_dir`.
    #[serde(serialize_with = "redacted_url")]
    pub url: Option<String>,
    /// A file holding the URL (a mounted secret, since the URL holds the password).
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
    /// MySQL/MariaDB connections beside `max_connections` kept for the SKU actors'
    /// batches, so a hot SKU's commit never queues behind ordinary requests (0: none).
    pub stock_connections: u32,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: 10,
            stock_connections: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSection {
    /// Unset means the in-process cache and rate limiter.
    #[serde(serialize_with = "redacted_url")]
    pub url: Option<String>,
    /// Namespace for every Redis key, so several deployments can share one server.
    pub key_prefix: String,
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "souk:".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSection {
    /// Unset means the in-process bus.
    #[serde(serialize_with = "redacted_url")]
    pub url: Option<String>,
}

/// Access tokens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtSection {
    /// HS256 signing key, at least 32 bytes.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            secret: None,
            secret_file: None,
            issuer: "souk".to_owned(),
            audience: "souk-api".to_owned(),
            access_token_ttl_secs: 15 * 60,
        }
    }
}

/// Sessions, passwords and sign-in limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    pub refresh_token_ttl_secs: u64,
    pub password_reset_ttl_secs: u64,
    pub bcrypt_cost: u32,
    pub login_max_failures_per_account: u32,
    pub login_max_attempts_per_ip: u32,
    pub login_window_secs: u64,
    /// Sign-ups per client address per `login_window_secs`.
    pub register_max_per_ip: u32,
    /// Verification mails one account may ask for per `login_window_secs`.
    pub verification_resend_max: u32,
    /// bcrypt operations running at once; 0 means half of `node.cpus` (at least one).
    pub hash_threads: u32,
    /// How long a node serves a live session from its cache at most; 0 reads the
    /// account and session for every request.
    pub access_cache_ttl_ms: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            refresh_token_ttl_secs: 30 * 24 * 3600,
            password_reset_ttl_secs: 3600,
            bcrypt_cost: 12,
            login_max_failures_per_account: 5,
            login_max_attempts_per_ip: 50,
            login_window_secs: 15 * 60,
            register_max_per_ip: 20,
            verification_resend_max: 3,
            hash_threads: 0,
            access_cache_ttl_ms: 5_000,
        }
    }
}

/// What a user may keep in their account.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersSection {
    /// Addresses one user's address book may hold (1 to 1000).
    pub max_addresses: u32,
}

impl Default for UsersSection {
    fn default() -> Self {
        Self { max_addresses: 20 }
    }
}

/// Shopping carts. Signed-in users' carts do not expire; guest carts do.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartSection {
    /// How long a guest cart lives after its last change (1 s to 90 days).
    pub guest_ttl_secs: u64,
    /// Guest carts one client address may create per `auth.login_window_secs`.
    pub guest_max_per_ip: u32,
}

impl Default for CartSection {
    fn default() -> Self {
        Self {
            guest_ttl_secs: 7 * 24 * 3600,
            guest_max_per_ip: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersSection {
    /// How long an unpaid order holds its stock.
    pub reservation_ttl_secs: u64,
    /// How many unpaid orders one customer may have open; 0 lifts the cap.
    pub max_unpaid_orders: u32,
    /// How many units of one SKU one customer may hold across unpaid orders; 0 lifts
    /// the cap.
    pub max_units_per_sku: u32,
    /// How long a node's checkouts may price a product from a snapshot read earlier;
    /// 0 reads the catalog for every checkout.
    pub product_snapshot_ttl_ms: u64,
    /// How long after delivery a shopper may ask for a return.
    pub return_window_secs: u64,
    /// Whether catalog prices and shipping rates include tax (VAT-style: the order's
    /// tax is the part of its total that is tax); false adds tax on top.
    pub prices_include_tax: bool,
}

impl Default for OrdersSection {
    fn default() -> Self {
        Self {
            reservation_ttl_secs: 15 * 60,
            max_unpaid_orders: 5,
            max_units_per_sku: 20,
            product_snapshot_ttl_ms: 5_000,
            return_window_secs: 30 * 86_400,
            prices_include_tax: true,
        }
    }
}

impl OrdersSection {
    pub fn purchase_limits(&self) -> souk_actors::orders::PurchaseLimits {
        souk_actors::orders::PurchaseLimits {
            max_unpaid_orders: (self.max_unpaid_orders > 0).then_some(self.max_unpaid_orders),
            max_units_per_sku: (self.max_units_per_sku > 0)
                .then_some(i64::from(self.max_units_per_sku)),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSection {
    /// The secret shared with the payment provider, which signs its webhook calls.
    /// Unset: a key derived from the JWT secret, which the built-in test double uses.
    pub webhook_secret: Option<Secret>,
    pub webhook_secret_file: Option<PathBuf>,
    /// How far a webhook call's signed timestamp may be from this node's clock.
    pub webhook_tolerance_secs: u64,
    /// Where the built-in test double posts its webhook calls. Unset: this node's own
    /// HTTP address.
    pub test_double_webhook_url: Option<String>,
}

impl Default for PaymentsSection {
    fn default() -> Self {
        Self {
            webhook_secret: None,
            webhook_secret_file: None,
            webhook_tolerance_secs: 300,
            test_double_webhook_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSection {
    /// The sender of every email, e.g. `Souk <no-reply@example.com>`.
    pub from: String,
    /// Email worker tasks per node.
    pub workers: usize,
    /// Events one email worker handles at once (reading the order, rendering, sending
    /// and logging each), on database connections of the workers' own (one per event
    /// in flight). Their work shares the node's cores with checkouts, at a lower
    /// priority: more keeps mail closer behind a flash sale's orders, at the checkouts'
    /// expense, so 1 by default; more suits a node that runs only the email service.
    pub in_flight: usize,
    /// Deliveries of one event before it becomes a dead letter.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter, up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub verification_ttl_secs: u64,
}

impl Default for EmailSection {
    fn default() -> Self {
        Self {
            from: "Souk <no-reply@souk.localhost>".to_owned(),
            workers: 2,
            in_flight: 1,
            max_attempts: 5,
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            verification_ttl_secs: 48 * 3600,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSection {
    /// `smtp://[user@]host[:port]` (plain, or `?tls=required` for STARTTLS) or
    /// `smtps://…` (TLS); unset means the file outbox in `node.data_dir/outbox`.
    #[serde(serialize_with = "redacted_url")]
    pub url: Option<String>,
    /// The SMTP password, read from a file (a mounted secret).
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxSection {
    /// Run the outbox relay on this node (several nodes may run it at once).
    pub relay: bool,
    /// How often the relay looks for unpublished events.
    pub poll_ms: u64,
}

impl Default for OutboxSection {
    fn default() -> Self {
        Self {
            relay: true,
            poll_ms: 500,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSection {
    /// Prefix of the NATS subjects, stream and consumer of the events, so deployments
    /// (or test runs) sharing one NATS server stay apart: `<ns>.events.order.placed`.
    pub namespace: String,
}

impl Default for EventsSection {
    fn default() -> Self {
        Self {
            namespace: "souk".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSection {
    /// Where the node keeps its search index (memory-mapped files); unset keeps it in
    /// memory. Either way the node rebuilds it from the database at start.
    pub index_dir: Option<PathBuf>,
}
