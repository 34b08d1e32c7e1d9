//! Checks of a loaded configuration: every problem names its setting as in the file
//! and as its environment variable, on one line.

use super::{Config, ConfigError};
use crate::topology::Service;

fn starts_with_any(url: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|prefix| url.starts_with(prefix))
}

fn positive(path: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(ConfigError::setting(path, "must be greater than 0"));
    }
    Ok(())
}

impl Config {
    pub(super) fn validated(self) -> Result<Self, ConfigError> {
        if !(4..=31).contains(&self.auth.bcrypt_cost) {
            return Err(ConfigError::setting(
                "auth.bcrypt_cost",
                "must be between 4 and 31",
            ));
        }
        if self.database.url.is_some() && self.database.url_file.is_some() {
            return Err(ConfigError::setting(
                "database.url",
                "set url or url_file, not both",
            ));
        }
        if let Some(path) = &self.database.url_file {
            if std::fs::read_to_string(path).is_err() {
                return Err(ConfigError::setting(
                    "database.url_file",
                    format!("cannot read {}", path.display()),
                ));
            }
        }
        if self.database.url.is_some() || self.database.url_file.is_some() {
            souk_db::Backend::from_url(&self.effective_database_url()).map_err(|_| {
                ConfigError::setting("database.url", "must start with sqlite: or mysql:")
            })?;
        }
        if let Some(url) = &self.redis.url {
            if !starts_with_any(url, &["redis://", "rediss://", "redis+unix://"]) {
                return Err(ConfigError::setting(
                    "redis.url",
                    "must start with redis:// or rediss://",
                ));
            }
        }
        self.validate_cluster()?;
        if let Some(url) = &self.nats.url {
            if !starts_with_any(url, &["nats://", "tls://"]) {
                return Err(ConfigError::setting(
                    "nats.url",
                    "must start with nats:// or tls://",
                ));
            }
        }
        if self.payments.webhook_secret.is_some() && self.payments.webhook_secret_file.is_some() {
            return Err(ConfigError::setting(
                "payments.webhook_secret",
                "set webhook_secret or webhook_secret_file, not both",
            ));
        }
        positive(
            "payments.webhook_tolerance_secs",
            self.payments.webhook_tolerance_secs,
        )?;
        if let Some(url) = &self.payments.test_double_webhook_url {
            if !starts_with_any(url, &["http://", "https://"]) {
                return Err(ConfigError::setting(
                    "payments.test_double_webhook_url",
                    "must start with http:// or https://",
                ));
            }
        }
        if self.jwt.secret.is_some() && self.jwt.secret_file.is_some() {
            return Err(ConfigError::setting(
                "jwt.secret",
                "set secret or secret_file, not both",
            ));
        }
        if self
            .jwt
            .secret
            .as_ref()
            .is_some_and(|secret| secret.expose().len() < 32)
        {
            return Err(ConfigError::setting(
                "jwt.secret",
                "must be at least 32 bytes",
            ));
        }
        if self.jwt.issuer.is_empty() || self.jwt.audience.is_empty() {
            return Err(ConfigError::setting(
                "jwt.issuer",
                "issuer and audience must not be empty",
            ));
        }
        positive("jwt.access_token_ttl_secs", self.jwt.access_token_ttl_secs)?;
        positive(
            "auth.refresh_token_ttl_secs",
            self.auth.refresh_token_ttl_secs,
        )?;
        positive(
            "auth.password_reset_ttl_secs",
            self.auth.password_reset_ttl_secs,
        )?;
        positive("auth.login_window_secs", self.auth.login_window_secs)?;
        positive(
            "auth.register_max_per_ip",
            u64::from(self.auth.register_max_per_ip),
        )?;
        positive(
            "cart.guest_max_per_ip",
            u64::from(self.cart.guest_max_per_ip),
        )?;
        positive(
            "auth.login_max_attempts_per_ip",
            u64::from(self.auth.login_max_attempts_per_ip),
        )?;
        positive(
            "auth.login_max_failures_per_account",
            u64::from(self.auth.login_max_failures_per_account),
        )?;
        positive(
            "orders.reservation_ttl_secs",
            self.orders.reservation_ttl_secs,
        )?;
        positive("orders.return_window_secs", self.orders.return_window_secs)?;
        if !(1..=90 * 24 * 3600).contains(&self.cart.guest_ttl_secs) {
            return Err(ConfigError::setting(
                "cart.guest_ttl_secs",
                "must be between 1 and 7776000 (90 days)",
            ));
        }
        if !(1..=1000).contains(&self.users.max_addresses) {
            return Err(ConfigError::setting(
                "users.max_addresses",
                "must be between 1 and 1000",
            ));
        }
        positive(
            "database.max_connections",
            u64::from(self.database.max_connections),
        )?;
        positive(
            "http.body_read_timeout_secs",
            self.http.body_read_timeout_secs,
        )?;
        if self.http.max_body_bytes < 1024 {
            return Err(ConfigError::setting(
                "http.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.node.cpus == Some(0) {
            return Err(ConfigError::setting("node.cpus", "must be greater than 0"));
        }
        if self.http.workers == Some(0) {
            return Err(ConfigError::setting(
                "http.workers",
                "must be greater than 0",
            ));
        }
        self.validate_email()?;
        self.validate_services()?;
        if !(100..=60_000).contains(&self.grpc.deadline_ms) {
            return Err(ConfigError::setting(
                "grpc.deadline_ms",
                "must be between 100 and 60000",
            ));
        }
        Ok(self)
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        if let Err(souk_cluster::ClusterError::InvalidSetting { setting, reason }) =
            self.cluster.validate()
        {
            return Err(ConfigError::setting(&format!("cluster.{setting}"), reason));
        }
        if !self.cluster.enabled {
            return Ok(());
        }
        if self.nats.url.is_none() {
            return Err(ConfigError::setting(
                "cluster.enabled",
                "a cluster needs nats.url (SOUK_NATS_URL): its nodes meet on NATS",
            ));
        }
        let url = self.effective_database_url();
        if !matches!(
            souk_db::Backend::from_url(&url),
            Ok(souk_db::Backend::MySql)
        ) {
            return Err(ConfigError::setting(
                "cluster.enabled",
                "the nodes of a cluster share one MySQL/MariaDB database (database.url = mysql://…)",
            ));
        }
        Ok(())
    }

    fn validate_services(&self) -> Result<(), ConfigError> {
        let services = self.service_set()?;
        for service in Service::ALL {
            let path = format!("grpc.{service}_url");
            match self.grpc_url(service) {
                Some(url) if !starts_with_any(url, &["http://", "https://"]) => {
                    return Err(ConfigError::setting(
                        &path,
                        "must start with http:// or https://",
                    ));
                }
                None if services.remote_dependencies().contains(&service) => {
                    return Err(ConfigError::setting(
                        &path,
                        format!("required: this node runs {services} but not {service}"),
                    ));
                }
                _ => {}
            }
        }
        if !services.is_all() && self.nats.url.is_none() {
            // The in-process bus cannot carry events from one process to another.
            return Err(ConfigError::setting(
                "nats.url",
                format!("required: this node runs only {services}, and split services exchange events over NATS"),
            ));
        }
        Ok(())
    }

    fn validate_email(&self) -> Result<(), ConfigError> {
        if !starts_with_any(&self.http.public_base_url, &["http://", "https://"]) {
            return Err(ConfigError::setting(
                "http.public_base_url",
                "must start with http:// or https://",
            ));
        }
        if let Some(url) = &self.smtp.url {
            if !starts_with_any(url, &["smtp://", "smtps://"]) {
                return Err(ConfigError::setting(
                    "smtp.url",
                    "must start with smtp:// or smtps://",
                ));
            }
        }
        if self.email.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::setting(
                "email.from",
                "must be an address such as `Souk <no-reply@example.com>`",
            ));
        }
        positive("email.workers", self.email.workers as u64)?;
        positive("email.in_flight", self.email.in_flight as u64)?;
        positive("email.max_attempts", u64::from(self.email.max_attempts))?;
        positive("email.retry_base_ms", self.email.retry_base_ms)?;
        positive(
            "email.verification_ttl_secs",
            self.email.verification_ttl_secs,
        )?;
        positive("outbox.poll_ms", self.outbox.poll_ms)?;
        let namespace = &self.events.namespace;
        if namespace.is_empty()
            || namespace.len() > 64
            || !namespace
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError::setting(
                "events.namespace",
                "must be 1 to 64 characters a-z, 0-9 or _",
            ));
        }
        if self.email.retry_max_ms < self.email.retry_base_ms {
            return Err(ConfigError::setting(
                "email.retry_max_ms",
                "must be at least email.retry_base_ms",
            ));
        }
        Ok(())
    }
}
