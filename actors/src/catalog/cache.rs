//! The read cache: Redis when configured (shared by all nodes), else in process.
//!
//! Invalidation is by generation: every cached key embeds the namespace's current
//! generation, and every write bumps it after its commit. A read that starts after a
//! write returned sees the new generation, so it can only hit entries stored by reads
//! that themselves started after the bump — never a value older than that write. Stale
//! entries are never read again and expire by TTL. An in-process cache is bumped for
//! another node's write when that write's catalog event arrives (`catalog::feeds`).
//!
//! Redis failures never fail a read: the caller falls back to the database, with a
//! warning and `souk_cache_requests_total{outcome="error"}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::redis_store::RedisStore;

/// How long an entry lives at most; bounds staleness if a bump could not reach Redis.
pub const ENTRY_TTL: Duration = Duration::from_secs(60);
const LOCAL_MAX_ENTRIES: usize = 10_000;

#[derive(Clone)]
pub struct Cache {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Redis(Arc<RedisStore>),
    Local(Arc<LocalCache>),
    /// Every read goes to the database: the baseline of the search benchmark.
    Disabled,
}

#[derive(Default)]
pub struct LocalCache {
    generations: Mutex<HashMap<String, u64>>,
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl Cache {
    pub fn new(redis: Option<Arc<RedisStore>>) -> Self {
        let backend = match redis {
            Some(redis) => Backend::Redis(redis),
            None => Backend::Local(Arc::new(LocalCache::default())),
        };
        Self { backend }
    }

    pub fn disabled() -> Self {
        Self {
            backend: Backend::Disabled,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Redis(_) => "redis",
            Backend::Local(_) => "local",
            Backend::Disabled => "disabled",
        }
    }

    /// The namespace's generation, or `None` when the cache cannot be used now.
    pub async fn generation(&self, namespace: &str) -> Option<u64> {
        match &self.backend {
            Backend::Disabled => None,
            Backend::Local(local) => Some(
                *local
                    .generations
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(namespace.to_owned())
                    .or_insert(0),
            ),
            Backend::Redis(redis) => {
                let key = redis.key(&format!("gen:{namespace}"));
                let answer = redis
                    .run(|mut connection| async move {
                        redis::cmd("GET")
                            .arg(&key)
                            .query_async::<Option<u64>>(&mut connection)
                            .await
                    })
                    .await;
                match answer {
                    Ok(generation) => Some(generation.unwrap_or(0)),
                    Err(error) => {
                        report_error(namespace, &error);
                        None
                    }
                }
            }
        }
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Option<String> {
        let value = match &self.backend {
            Backend::Disabled => None,
            Backend::Local(local) => {
                let entries = local.entries.lock().unwrap_or_else(|p| p.into_inner());
                entries
                    .get(key)
                    .filter(|(stored, _)| stored.elapsed() < ENTRY_TTL)
                    .map(|(_, value)| value.clone())
            }
            Backend::Redis(redis) => {
                let full_key = redis.key(key);
                match redis
                    .run(|mut connection| async move {
                        redis::cmd("GET")
                            .arg(&full_key)
                            .query_async::<Option<String>>(&mut connection)
                            .await
                    })
                    .await
                {
                    Ok(value) => value,
                    Err(error) => {
                        report_error(namespace, &error);
                        return None;
                    }
                }
            }
        };
        let outcome = if value.is_some() { "hit" } else { "miss" };
        metrics::counter!("souk_cache_requests_total", "cache" => namespace.to_owned(), "outcome" => outcome).increment(1);
        value
    }

    pub async fn put(&self, namespace: &str, key: &str, value: String) {
        match &self.backend {
            Backend::Disabled => {}
            Backend::Local(local) => {
                let mut entries = local.entries.lock().unwrap_or_else(|p| p.into_inner());
                if entries.len() >= LOCAL_MAX_ENTRIES {
                    entries.retain(|_, (stored, _)| stored.elapsed() < ENTRY_TTL);
                    if entries.len() >= LOCAL_MAX_ENTRIES {
                        entries.clear();
                    }
                }
                entries.insert(key.to_owned(), (Instant::now(), value));
            }
            Backend::Redis(redis) => {
                let full_key = redis.key(key);
                let ttl = ENTRY_TTL.as_secs();
                if let Err(error) = redis
                    .run(|mut connection| async move {
                        redis::cmd("SET")
                            .arg(&full_key)
                            .arg(value)
                            .arg("EX")
                            .arg(ttl)
                            .query_async::<()>(&mut connection)
                            .await
                    })
                    .await
                {
                    report_error(namespace, &error);
                }
            }
        }
    }

    /// Makes every entry of the namespace unreachable. Called after each write commits.
    pub async fn invalidate(&self, namespace: &str) {
        match &self.backend {
            Backend::Disabled => {}
            Backend::Local(local) => local.bump(namespace),
            Backend::Redis(redis) => {
                let key = redis.key(&format!("gen:{namespace}"));
                if let Err(error) = redis
                    .run(|mut connection| async move {
                        redis::cmd("INCR")
                            .arg(&key)
                            .query_async::<u64>(&mut connection)
                            .await
                    })
                    .await
                {
                    // Readers that reach Redis again may see entries up to ENTRY_TTL old.
                    tracing::warn!(%error, namespace, "cannot invalidate the cache in redis");
                    metrics::counter!("souk_cache_invalidation_failures_total", "cache" => namespace.to_owned()).increment(1);
                }
            }
        }
    }

    /// Makes every entry of the namespace unreachable if it is kept in this process:
    /// for a write another node committed, which that node invalidated in Redis.
    pub fn invalidate_local(&self, namespace: &str) {
        if let Backend::Local(local) = &self.backend {
            local.bump(namespace);
        }
    }
}

impl LocalCache {
    fn bump(&self, namespace: &str) {
        *self
            .generations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(namespace.to_owned())
            .or_insert(0) += 1;
    }
}

fn report_error(namespace: &str, error: &crate::redis_store::RedisError) {
    tracing::warn!(%error, namespace, "cache unavailable; reading from the database");
    metrics::counter!("souk_cache_requests_total", "cache" => namespace.to_owned(), "outcome" => "error").increment(1);
}
