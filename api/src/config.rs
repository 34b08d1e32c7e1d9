//! One typed configuration. Layers, later wins: built-in defaults < the optional TOML
//! file (`--config souk.toml`) < `SOUK_*` environment variables < command-line flags.
//! Secrets may come from files (`*_FILE`) so Kubernetes secrets or a Vault agent can
//! supply them; they never reach logs or `souk config`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize, Serializer};

/// Every key `Config` has, so `SOUK_*` variables that are not settings (a test
/// harness's, say) are ignored while typos in the file are refused.
pub const KEYS: &[&str] = &[
    "http_addr",
    "data_dir",
    "database_url",
    "database_max_connections",
    "redis_url",
    "redis_key_prefix",
    "nats_url",
    "jwt_secret",
    "jwt_secret_file",
    "jwt_issuer",
    "jwt_audience",
    "access_token_ttl_secs",
    "refresh_token_ttl_secs",
    "password_reset_ttl_secs",
    "order_reservation_ttl_secs",
    "bcrypt_cost",
    "log_format",
    "log_filter",
    "max_body_bytes",
    "login_max_failures_per_account",
    "login_max_attempts_per_ip",
    "login_window_secs",
    "trust_forwarded_for",
    "shutdown_timeout_secs",
    "workers",
    "grpc_addr",
    "services",
    "user_grpc_url",
    "auth_grpc_url",
    "email_grpc_url",
    "product_grpc_url",
    "order_grpc_url",
    "inventory_grpc_url",
    "grpc_deadline_ms",
    "public_base_url",
    "smtp_url",
    "smtp_password_file",
    "email_from",
    "email_workers",
    "email_max_attempts",
    "email_retry_base_ms",
    "email_retry_max_ms",
    "email_verification_ttl_secs",
    "outbox_relay",
    "outbox_poll_ms",
    "events_namespace",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

/// A string that must not be shown: `Debug` and `Serialize` print a placeholder.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the REST API listens.
    pub http_addr: SocketAddr,
    /// Embedded-mode data: the SQLite file and the generated JWT key.
    pub data_dir: PathBuf,
    /// `sqlite:` or `mysql:` URL; unset means the SQLite file in `data_dir`.
    #[serde(serialize_with = "redacted_url")]
    pub database_url: Option<String>,
    pub database_max_connections: u32,
    /// Unset means the in-process cache and rate limiter.
    #[serde(serialize_with = "redacted_url")]
    pub redis_url: Option<String>,
    /// Namespace for every Redis key, so several deployments can share one server.
    pub redis_key_prefix: String,
    /// Unset means the in-process bus.
    #[serde(serialize_with = "redacted_url")]
    pub nats_url: Option<String>,
    pub jwt_secret: Option<Secret>,
    pub jwt_secret_file: Option<PathBuf>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub password_reset_ttl_secs: u64,
    /// How long an unpaid order holds its stock.
    pub order_reservation_ttl_secs: u64,
    pub bcrypt_cost: u32,
    pub log_format: LogFormat,
    /// A `tracing` filter, e.g. `info,souk_api=debug`.
    pub log_filter: String,
    pub max_body_bytes: usize,
    pub login_max_failures_per_account: u32,
    pub login_max_attempts_per_ip: u32,
    pub login_window_secs: u64,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    pub shutdown_timeout_secs: u64,
    /// HTTP worker threads; unset means one per core.
    pub workers: Option<usize>,
    /// Where the gRPC API listens (its own port, started and stopped with REST).
    pub grpc_addr: SocketAddr,
    /// The services this node runs: a comma-separated subset of user, auth, email,
    /// product, order, inventory, or `all`.
    pub services: String,
    /// gRPC URLs of services this node does not run but calls (e.g. an order node
    /// without inventory needs `inventory_grpc_url`).
    pub user_grpc_url: Option<String>,
    pub auth_grpc_url: Option<String>,
    pub email_grpc_url: Option<String>,
    pub product_grpc_url: Option<String>,
    pub order_grpc_url: Option<String>,
    pub inventory_grpc_url: Option<String>,
    /// Deadline of every call to another service, retries included.
    pub grpc_deadline_ms: u64,
    /// The address users reach the site at; links in emails start with it.
    pub public_base_url: String,
    /// `smtp://[user@]host[:port]` (plain, or `?tls=required` for STARTTLS) or
    /// `smtps://…` (TLS); unset means the file outbox in `data_dir/outbox`.
    #[serde(serialize_with = "redacted_url")]
    pub smtp_url: Option<String>,
    /// The SMTP password, read from a file (a mounted secret).
    pub smtp_password_file: Option<PathBuf>,
    /// The sender of every email, e.g. `Souk <no-reply@example.com>`.
    pub email_from: String,
    /// Email worker actors per node.
    pub email_workers: usize,
    /// Deliveries of one event before it becomes a dead letter.
    pub email_max_attempts: u32,
    /// First retry delay; doubles per attempt, with jitter, up to `email_retry_max_ms`.
    pub email_retry_base_ms: u64,
    pub email_retry_max_ms: u64,
    pub email_verification_ttl_secs: u64,
    /// Run the outbox relay on this node (several nodes may run it at once).
    pub outbox_relay: bool,
    /// How often the relay looks for unpublished events.
    pub outbox_poll_ms: u64,
    /// Prefix of the NATS subjects, stream and consumer of the events, so deployments
    /// (or test runs) sharing one NATS server stay apart: `<ns>.events.order.placed`.
    pub events_namespace: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            database_max_connections: 10,
            redis_url: None,
            redis_key_prefix: "souk:".to_owned(),
            nats_url: None,
            jwt_secret: None,
            jwt_secret_file: None,
            jwt_issuer: "souk".to_owned(),
            jwt_audience: "souk-api".to_owned(),
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            password_reset_ttl_secs: 3600,
            order_reservation_ttl_secs: 15 * 60,
            bcrypt_cost: 12,
            log_format: LogFormat::Pretty,
            log_filter: "info,sqlx=warn,async_nats=warn".to_owned(),
            max_body_bytes: 64 * 1024,
            login_max_failures_per_account: 5,
            login_max_attempts_per_ip: 50,
            login_window_secs: 15 * 60,
            trust_forwarded_for: false,
            shutdown_timeout_secs: 30,
            workers: None,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            services: "all".to_owned(),
            user_grpc_url: None,
            auth_grpc_url: None,
            email_grpc_url: None,
            product_grpc_url: None,
            order_grpc_url: None,
            inventory_grpc_url: None,
            grpc_deadline_ms: 3000,
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            smtp_url: None,
            smtp_password_file: None,
            email_from: "Souk <no-reply@souk.localhost>".to_owned(),
            email_workers: 2,
            email_max_attempts: 5,
            email_retry_base_ms: 1000,
            email_retry_max_ms: 60_000,
            email_verification_ttl_secs: 48 * 3600,
            outbox_relay: true,
            outbox_poll_ms: 500,
            events_namespace: "souk".to_owned(),
        }
    }
}

/// Flags that override every other layer; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    fn setting(key: &str, problem: impl fmt::Display) -> Self {
        Self(format!("{} (SOUK_{}): {problem}", key, key.to_uppercase()))
    }
}

impl Config {
    /// Loads the layers. `file` must exist when given; environment comes from the process.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment
            .merge(Env::prefixed("SOUK_").only(KEYS))
            .merge(Serialized::defaults(overrides));
        let config: Config = figment
            .extract()
            .map_err(|error| ConfigError(one_line(&error)))?;
        config.normalised().validated()
    }

    /// Empty strings from the environment mean "unset".
    fn normalised(mut self) -> Self {
        for value in [
            &mut self.database_url,
            &mut self.redis_url,
            &mut self.nats_url,
            &mut self.user_grpc_url,
            &mut self.auth_grpc_url,
            &mut self.email_grpc_url,
            &mut self.product_grpc_url,
            &mut self.order_grpc_url,
            &mut self.inventory_grpc_url,
            &mut self.smtp_url,
        ] {
            if value.as_deref().is_some_and(|text| text.trim().is_empty()) {
                *value = None;
            }
        }
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|secret| secret.expose().is_empty())
        {
            self.jwt_secret = None;
        }
        self
    }

    fn validated(self) -> Result<Self, ConfigError> {
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(ConfigError::setting(
                "bcrypt_cost",
                "must be between 4 and 31",
            ));
        }
        if let Some(url) = &self.database_url {
            souk_db::Backend::from_url(url).map_err(|_| {
                ConfigError::setting("database_url", "must start with sqlite: or mysql:")
            })?;
        }
        if let Some(url) = &self.redis_url {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://"))
            {
                return Err(ConfigError::setting(
                    "redis_url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        if let Some(url) = &self.nats_url {
            if !(url.starts_with("nats://") || url.starts_with("tls://")) {
                return Err(ConfigError::setting(
                    "nats_url",
                    "must start with nats:// or tls://",
                ));
            }
        }
        if self.jwt_secret.is_some() && self.jwt_secret_file.is_some() {
            return Err(ConfigError::setting(
                "jwt_secret",
                "set jwt_secret or jwt_secret_file, not both",
            ));
        }
        if self
            .jwt_secret
            .as_ref()
            .is_some_and(|secret| secret.expose().len() < 32)
        {
            return Err(ConfigError::setting(
                "jwt_secret",
                "must be at least 32 bytes",
            ));
        }
        for (key, value) in [
            ("access_token_ttl_secs", self.access_token_ttl_secs),
            ("refresh_token_ttl_secs", self.refresh_token_ttl_secs),
            ("password_reset_ttl_secs", self.password_reset_ttl_secs),
            (
                "order_reservation_ttl_secs",
                self.order_reservation_ttl_secs,
            ),
            ("login_window_secs", self.login_window_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::setting(key, "must be greater than 0"));
            }
        }
        if self.database_max_connections == 0 {
            return Err(ConfigError::setting(
                "database_max_connections",
                "must be greater than 0",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::setting(
                "max_body_bytes",
                "must be at least 1024",
            ));
        }
        self.validate_email()?;
        if self.workers == Some(0) {
            return Err(ConfigError::setting("workers", "must be greater than 0"));
        }
        let services = self.service_set()?;
        for service in crate::topology::Service::ALL {
            let key = format!("{service}_grpc_url");
            match self.grpc_url(service) {
                Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                    return Err(ConfigError::setting(
                        &key,
                        "must start with http:// or https://",
                    ));
                }
                None if services.remote_dependencies().contains(&service) => {
                    return Err(ConfigError::setting(
                        &key,
                        format!("required: this node runs {services} but not {service}"),
                    ));
                }
                _ => {}
            }
        }
        if !services.is_all() && self.nats_url.is_none() {
            // The in-process bus cannot carry events from one process to another.
            return Err(ConfigError::setting(
                "nats_url",
                format!("required: this node runs only {services}, and split services exchange events over NATS"),
            ));
        }
        if !(100..=60_000).contains(&self.grpc_deadline_ms) {
            return Err(ConfigError::setting(
                "grpc_deadline_ms",
                "must be between 100 and 60000",
            ));
        }
        if self.jwt_issuer.is_empty() || self.jwt_audience.is_empty() {
            return Err(ConfigError::setting(
                "jwt_issuer",
                "issuer and audience must not be empty",
            ));
        }
        Ok(self)
    }

    /// The services this node runs.
    pub fn service_set(&self) -> Result<crate::topology::ServiceSet, ConfigError> {
        crate::topology::ServiceSet::parse(&self.services)
            .map_err(|problem| ConfigError::setting("services", problem))
    }

    /// The configured gRPC URL of a service.
    pub fn grpc_url(&self, service: crate::topology::Service) -> Option<&str> {
        use crate::topology::Service;
        match service {
            Service::User => self.user_grpc_url.as_deref(),
            Service::Auth => self.auth_grpc_url.as_deref(),
            Service::Email => self.email_grpc_url.as_deref(),
            Service::Product => self.product_grpc_url.as_deref(),
            Service::Order => self.order_grpc_url.as_deref(),
            Service::Inventory => self.inventory_grpc_url.as_deref(),
        }
    }

    fn validate_email(&self) -> Result<(), ConfigError> {
        if !(self.public_base_url.starts_with("http://")
            || self.public_base_url.starts_with("https://"))
        {
            return Err(ConfigError::setting(
                "public_base_url",
                "must start with http:// or https://",
            ));
        }
        if let Some(url) = &self.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(ConfigError::setting(
                    "smtp_url",
                    "must start with smtp:// or smtps://",
                ));
            }
        }
        if self.email_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::setting(
                "email_from",
                "must be an address such as `Souk <no-reply@example.com>`",
            ));
        }
        for (key, value) in [
            ("email_workers", self.email_workers as u64),
            ("email_max_attempts", u64::from(self.email_max_attempts)),
            ("email_retry_base_ms", self.email_retry_base_ms),
            (
                "email_verification_ttl_secs",
                self.email_verification_ttl_secs,
            ),
            ("outbox_poll_ms", self.outbox_poll_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::setting(key, "must be greater than 0"));
            }
        }
        if self.events_namespace.is_empty()
            || self.events_namespace.len() > 64
            || !self
                .events_namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError::setting(
                "events_namespace",
                "must be 1 to 64 characters a-z, 0-9 or _",
            ));
        }
        if self.email_retry_max_ms < self.email_retry_base_ms {
            return Err(ConfigError::setting(
                "email_retry_max_ms",
                "must be at least email_retry_base_ms",
            ));
        }
        Ok(())
    }

    /// The public base URL without a trailing slash, ready for `{base}/path`.
    /// The name of this node in its tree and logs: the host name (the pod name in a
    /// StatefulSet), or `souk` when it cannot be read.
    pub fn node_name(&self) -> String {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|name| name.trim().to_owned())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| "souk".to_owned())
    }

    /// The identity domain's part of the configuration.
    pub fn auth_settings(&self) -> souk_actors::identity::AuthSettings {
        souk_actors::identity::AuthSettings {
            limits: souk_actors::identity::auth::LoginLimits {
                max_failures_per_account: self.login_max_failures_per_account,
                max_attempts_per_ip: self.login_max_attempts_per_ip,
                window: std::time::Duration::from_secs(self.login_window_secs),
            },
            refresh_token_ttl: std::time::Duration::from_secs(self.refresh_token_ttl_secs),
            password_reset_ttl: std::time::Duration::from_secs(self.password_reset_ttl_secs),
        }
    }

    /// The email domain's part of the configuration.
    pub fn email_settings(&self) -> souk_actors::email::EmailSettings {
        souk_actors::email::EmailSettings {
            from: self.email_from.clone(),
            public_base_url: self.public_base().to_owned(),
            max_attempts: self.email_max_attempts,
            retry_base: std::time::Duration::from_millis(self.email_retry_base_ms),
            retry_max: std::time::Duration::from_millis(self.email_retry_max_ms),
            verification_ttl: std::time::Duration::from_secs(self.email_verification_ttl_secs),
            smtp_url: self.smtp_url.clone(),
            smtp_password_file: self.smtp_password_file.clone(),
            outbox_dir: self.data_dir.join("outbox"),
        }
    }

    pub fn public_base(&self) -> &str {
        self.public_base_url.trim_end_matches('/')
    }

    /// The database URL in effect: the configured one, or the embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("souk.db").display()
            ),
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.effective_database_url().starts_with("sqlite:")
    }

    /// The effective configuration as TOML with every secret redacted: `souk config`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|error| format!("# cannot render config: {error}\n"))
    }
}

/// Figment errors can chain several; the first names the key and its source.
fn one_line(error: &figment::Error) -> String {
    error.to_string().replace('\n', " ")
}

fn redacted_url<S: Serializer>(url: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    match url {
        None => serializer.serialize_none(),
        Some(url) => serializer.serialize_str(&redact_url_password(url)),
    }
}

/// `mysql://user:pw@host/db` → `mysql://user:[redacted]@host/db`.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_list_every_field() {
        let rendered = toml::to_string(&Config {
            database_url: Some("sqlite://x".into()),
            redis_url: Some("redis://x".into()),
            nats_url: Some("nats://x".into()),
            jwt_secret: Some(Secret::new("x")),
            jwt_secret_file: Some("x".into()),
            workers: Some(1),
            user_grpc_url: Some("http://x".into()),
            auth_grpc_url: Some("http://x".into()),
            email_grpc_url: Some("http://x".into()),
            product_grpc_url: Some("http://x".into()),
            order_grpc_url: Some("http://x".into()),
            inventory_grpc_url: Some("http://x".into()),
            smtp_url: Some("smtp://x".into()),
            smtp_password_file: Some("x".into()),
            ..Config::default()
        })
        .unwrap();
        let table: toml::Table = rendered.parse().unwrap();
        let mut fields: Vec<&str> = table.keys().map(String::as_str).collect();
        let mut keys = KEYS.to_vec();
        fields.sort_unstable();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url_password("mysql://souk:hunter2@db:3306/souk"),
            "mysql://souk:[redacted]@db:3306/souk"
        );
        assert_eq!(
            redact_url_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn secrets_never_render() {
        let config = Config {
            jwt_secret: Some(Secret::new("super-secret-value-that-is-long-enough")),
            database_url: Some("mysql://u:pw@h/db".into()),
            ..Config::default()
        };
        let rendered = config.to_redacted_toml();
        assert!(!rendered.contains("super-secret"), "{rendered}");
        assert!(!rendered.contains(":pw@"), "{rendered}");
        assert!(!format!("{config:?}").contains("super-secret"));
    }
}
