//! `SOUK_*` environment names, derived from the sections of [`Config`] rather than
//! listed by hand. Setting `field` of section `section` is read from
//! `SOUK_<SECTION>_<FIELD>` (its canonical name), and also from `SOUK_<FIELD>` when no
//! other section has a field of that name — which keeps the names of the flat
//! configuration Souk had before sections working (`SOUK_BCRYPT_COST`,
//! `SOUK_DATA_DIR`). Two older names are not derivable and are aliases:
//! `SOUK_WORKERS` (`http.workers`; `workers` is also an email setting) and
//! `SOUK_ORDER_RESERVATION_TTL_SECS`; the gRPC URLs' older `SOUK_<SERVICE>_GRPC_URL`
//! come from the list of services. A `SOUK_*` variable that names no setting is
//! ignored (a test harness's, say).

use std::collections::{BTreeMap, HashMap};

use figment::providers::{Env, Serialized};
use figment::value::Value;
use figment::{Figment, Provider};

use super::Config;
use crate::topology::Service;

/// Every setting as `(section, field)`, read off the defaults (absent values count:
/// they serialize as empty).
pub fn settings() -> Vec<(String, String)> {
    let data = Figment::from(Serialized::defaults(Config::default()))
        .data()
        .unwrap_or_default();
    let mut settings = Vec::new();
    for dict in data.values() {
        for (section, value) in dict {
            if let Value::Dict(_, fields) = value {
                settings.extend(fields.keys().map(|field| (section.clone(), field.clone())));
            }
        }
    }
    settings
}

/// The canonical environment name of `section.field`.
pub fn env_name(path: &str) -> String {
    format!("SOUK_{}", path.replace('.', "_").to_uppercase())
}

/// Lowercased name after `SOUK_` → dotted setting path.
fn index() -> HashMap<String, String> {
    let settings = settings();
    let mut field_count: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, field) in &settings {
        *field_count.entry(field).or_default() += 1;
    }
    let mut index = HashMap::new();
    for (section, field) in &settings {
        let path = format!("{section}.{field}");
        if field_count[field.as_str()] == 1 {
            index.insert(field.clone(), path.clone());
        }
        index.insert(format!("{section}_{field}"), path);
    }
    index.insert("workers".to_owned(), "http.workers".to_owned());
    index.insert(
        "order_reservation_ttl_secs".to_owned(),
        "orders.reservation_ttl_secs".to_owned(),
    );
    for service in Service::ALL {
        index.insert(format!("{service}_grpc_url"), format!("grpc.{service}_url"));
    }
    index
}

/// The environment layer: every `SOUK_*` variable that names a setting.
pub fn provider() -> Env {
    let index = index();
    Env::prefixed("SOUK_").filter_map(move |key| {
        index
            .get(&key.as_str().to_ascii_lowercase())
            .map(|path| path.clone().into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_has_its_canonical_name_and_the_old_flat_names_still_work() {
        let index = index();
        for (section, field) in settings() {
            assert_eq!(
                index.get(&format!("{section}_{field}")),
                Some(&format!("{section}.{field}"))
            );
        }
        for (old, path) in [
            ("http_addr", "http.addr"),
            ("ops_addr", "http.ops_addr"),
            ("http_ops_addr", "http.ops_addr"),
            ("data_dir", "node.data_dir"),
            ("services", "node.services"),
            ("cpus", "node.cpus"),
            ("database_url", "database.url"),
            ("database_max_connections", "database.max_connections"),
            ("jwt_secret", "jwt.secret"),
            ("jwt_secret_file", "jwt.secret_file"),
            ("access_token_ttl_secs", "jwt.access_token_ttl_secs"),
            ("bcrypt_cost", "auth.bcrypt_cost"),
            ("login_window_secs", "auth.login_window_secs"),
            ("max_body_bytes", "http.max_body_bytes"),
            ("workers", "http.workers"),
            ("public_base_url", "http.public_base_url"),
            ("grpc_deadline_ms", "grpc.deadline_ms"),
            ("inventory_grpc_url", "grpc.inventory_url"),
            ("order_reservation_ttl_secs", "orders.reservation_ttl_secs"),
            ("email_workers", "email.workers"),
            ("smtp_password_file", "smtp.password_file"),
            ("outbox_poll_ms", "outbox.poll_ms"),
            ("events_namespace", "events.namespace"),
            ("log_format", "log.format"),
            ("redis_key_prefix", "redis.key_prefix"),
        ] {
            assert_eq!(index.get(old).map(String::as_str), Some(path), "SOUK_{old}");
        }
        // Ambiguous short names are nobody's.
        assert!(!index.contains_key("url"));
        assert!(!index.contains_key("addr"));
        // Settings whose default is absent are still known.
        assert!(settings().contains(&("jwt".to_owned(), "secret".to_owned())));
        assert!(settings().contains(&("grpc".to_owned(), "user_url".to_owned())));
    }
}
