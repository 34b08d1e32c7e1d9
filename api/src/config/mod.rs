//! One typed configuration, in sections: `[node]`, `[log]`, `[http]`, `[grpc]`,
//! `[database]`, `[redis]`, `[nats]`, `[jwt]`, `[auth]`, `[users]`, `[orders]`,
//! `[cart]`, `[payments]`, `[email]`, `[smtp]`, `[outbox]`, `[events]`, `[search]`, `[cluster]`.
//! Layers, later wins: built-in defaults < the optional TOML file (`--config
//! souk.toml`) < `SOUK_*` environment variables (names derived from the sections, see
//! [`env`]) < command-line flags. Secrets may come from files (`*_file`) so Kubernetes
//! secrets or a Vault agent can supply them; they never reach logs or `souk config`. An unknown key in the file stops the start.

pub mod env;
mod secret;
mod sections;
mod validate;

use std::path::Path;
use std::sync::OnceLock;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub use secret::{redact_url_password, Secret};
pub use sections::*;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    pub log: LogSection,
    pub http: HttpSection,
    pub grpc: GrpcSection,
    pub database: DatabaseSection,
    pub redis: RedisSection,
    pub nats: NatsSection,
    pub jwt: JwtSection,
    pub auth: AuthSection,
    pub users: UsersSection,
    pub orders: OrdersSection,
    pub cart: CartSection,
    pub payments: PaymentsSection,
    pub email: EmailSection,
    pub smtp: SmtpSection,
    pub outbox: OutboxSection,
    pub events: EventsSection,
    pub search: SearchSection,
    /// Settings of `souk-cluster`, used as they are.
    pub cluster: souk_cluster::ClusterSettings,
}

/// Flags that override every other layer; `None` leaves the lower layers alone.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub http_addr: Option<String>,
    pub data_dir: Option<std::path::PathBuf>,
    pub database_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub grpc_addr: Option<String>,
    pub ops_addr: Option<String>,
    pub services: Option<String>,
}

impl Overrides {
    fn apply(&self, mut figment: Figment) -> Figment {
        if let Some(value) = &self.http_addr {
            figment = figment.merge(Serialized::default("http.addr", value));
        }
        if let Some(value) = &self.data_dir {
            figment = figment.merge(Serialized::default("node.data_dir", value));
        }
        if let Some(value) = &self.database_url {
            figment = figment.merge(Serialized::default("database.url", value));
        }
        if let Some(value) = &self.log_format {
            figment = figment.merge(Serialized::default("log.format", value));
        }
        if let Some(value) = &self.grpc_addr {
            figment = figment.merge(Serialized::default("grpc.addr", value));
        }
        if let Some(value) = &self.ops_addr {
            figment = figment.merge(Serialized::default("http.ops_addr", value));
        }
        if let Some(value) = &self.services {
            figment = figment.merge(Serialized::default("node.services", value));
        }
        figment
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// A problem with the setting at `path` (`auth.bcrypt_cost`), named as in the file
    /// and as its environment variable.
    pub(crate) fn setting(path: &str, problem: impl std::fmt::Display) -> Self {
        Self(format!("{path} ({}): {problem}", env::env_name(path)))
    }
}

/// A figment error as one line naming the setting and its environment variable.
fn describe(error: figment::Error) -> ConfigError {
    let path = error.path.join(".").to_ascii_lowercase();
    let source = error
        .metadata
        .as_ref()
        .map(|metadata| metadata.name.to_string())
        .unwrap_or_default();
    if path.is_empty() || source.is_empty() {
        return ConfigError(error.to_string().replace('\n', " "));
    }
    ConfigError::setting(&path, format!("{} (from {source})", error.kind))
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
        figment = overrides.apply(figment.merge(env::provider()));
        let config: Config = figment.extract().map_err(describe)?;
        config.normalised().validated()
    }

    /// Empty strings from the environment mean "unset".
    fn normalised(mut self) -> Self {
        for value in [
            &mut self.database.url,
            &mut self.redis.url,
            &mut self.nats.url,
            &mut self.grpc.user_url,
            &mut self.grpc.auth_url,
            &mut self.grpc.email_url,
            &mut self.grpc.product_url,
            &mut self.grpc.order_url,
            &mut self.grpc.inventory_url,
            &mut self.smtp.url,
            &mut self.payments.test_double_webhook_url,
        ] {
            if value.as_deref().is_some_and(|text| text.trim().is_empty()) {
                *value = None;
            }
        }
        if self
            .jwt
            .secret
            .as_ref()
            .is_some_and(|secret| secret.expose().is_empty())
        {
            self.jwt.secret = None;
        }
        if self
            .payments
            .webhook_secret
            .as_ref()
            .is_some_and(|secret| secret.expose().is_empty())
        {
            self.payments.webhook_secret = None;
        }
        self
    }

    /// The cores this node sizes its threads to (`node.cpus`, or what the operating
    /// system grants the process).
    pub fn cpus(&self) -> usize {
        self.node.cpus.unwrap_or_else(granted_cores)
    }

    /// bcrypt hashes running at once: `auth.hash_threads`, or when 0 half of
    /// [`Config::cpus`] (at least one).
    pub fn hash_threads(&self) -> usize {
        match self.auth.hash_threads {
            0 => (self.cpus() / 2).max(1),
            threads => threads as usize,
        }
    }

    /// The services this node runs.
    pub fn service_set(&self) -> Result<crate::topology::ServiceSet, ConfigError> {
        crate::topology::ServiceSet::parse(&self.node.services)
            .map_err(|problem| ConfigError::setting("node.services", problem))
    }

    /// The configured gRPC URL of a service.
    pub fn grpc_url(&self, service: crate::topology::Service) -> Option<&str> {
        use crate::topology::Service;
        match service {
            Service::User => self.grpc.user_url.as_deref(),
            Service::Auth => self.grpc.auth_url.as_deref(),
            Service::Email => self.grpc.email_url.as_deref(),
            Service::Product => self.grpc.product_url.as_deref(),
            Service::Order => self.grpc.order_url.as_deref(),
            Service::Inventory => self.grpc.inventory_url.as_deref(),
        }
    }

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
        use std::time::Duration;
        souk_actors::identity::AuthSettings {
            limits: souk_actors::identity::auth::LoginLimits {
                max_failures_per_account: self.auth.login_max_failures_per_account,
                max_attempts_per_ip: self.auth.login_max_attempts_per_ip,
                max_registrations_per_ip: self.auth.register_max_per_ip,
                max_guest_carts_per_ip: self.cart.guest_max_per_ip,
                max_verification_resends: self.auth.verification_resend_max,
                window: Duration::from_secs(self.auth.login_window_secs),
            },
            refresh_token_ttl: Duration::from_secs(self.auth.refresh_token_ttl_secs),
            password_reset_ttl: Duration::from_secs(self.auth.password_reset_ttl_secs),
        }
    }

    /// The email domain's part of the configuration.
    pub fn email_settings(
        &self,
        order_links: souk_actors::orders::OrderLinks,
    ) -> souk_actors::email::EmailSettings {
        use std::time::Duration;
        souk_actors::email::EmailSettings {
            from: self.email.from.clone(),
            public_base_url: self.public_base().to_owned(),
            max_attempts: self.email.max_attempts,
            retry_base: Duration::from_millis(self.email.retry_base_ms),
            retry_max: Duration::from_millis(self.email.retry_max_ms),
            verification_ttl: Duration::from_secs(self.email.verification_ttl_secs),
            smtp_url: self.smtp.url.clone(),
            smtp_password_file: self.smtp.password_file.clone(),
            outbox_dir: self.node.data_dir.join("outbox"),
            order_links,
        }
    }

    /// The public base URL without a trailing slash, ready for `{base}/path`.
    pub fn public_base(&self) -> &str {
        self.http.public_base_url.trim_end_matches('/')
    }

    /// The database URL in effect: configured, read from `database.url_file`, or the
    /// embedded SQLite file.
    pub fn effective_database_url(&self) -> String {
        if let Some(url) = &self.database.url {
            return url.clone();
        }
        if let Some(path) = &self.database.url_file {
            if let Ok(url) = std::fs::read_to_string(path) {
                return url.trim().to_owned();
            }
        }
        format!(
            "sqlite://{}?mode=rwc",
            self.node.data_dir.join("souk.db").display()
        )
    }

    pub fn is_embedded(&self) -> bool {
        self.effective_database_url().starts_with("sqlite:")
    }

    /// The effective configuration as sectioned TOML with every secret redacted:
    /// `souk config`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|error| format!("# cannot render config: {error}\n"))
    }
}

/// The cores the operating system grants the process (a cgroup CPU quota counts), read
/// once: the answer comes from the cgroup files.
fn granted_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |cores| cores.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_render() {
        let mut config = Config::default();
        config.jwt.secret = Some(Secret::new("super-secret-value-that-is-long-enough"));
        config.database.url = Some("mysql://u:pw@h/db".into());
        let rendered = config.to_redacted_toml();
        assert!(!rendered.contains("super-secret"), "{rendered}");
        assert!(!rendered.contains(":pw@"), "{rendered}");
        assert!(rendered.contains("[http]"), "sections: {rendered}");
        assert!(!format!("{config:?}").contains("super-secret"));
    }

    #[test]
    fn the_rendered_defaults_load_back() {
        let rendered = Config::default().to_redacted_toml();
        let parsed: Config = toml::from_str(&rendered).unwrap();
        assert_eq!(parsed.http.addr, Config::default().http.addr);
    }
}
