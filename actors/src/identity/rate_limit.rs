//! Fixed-window counters for login attempts: in Redis when configured, so every node
//! counts together, else in process. If Redis fails the limiter falls back to its local
//! counters with a warning: attackers keep being limited, per node. `AccountGuesses`
//! bounds the checks of one account's password, wherever they come from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::redis_store::RedisStore;

/// Over the limit: how long until the window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after: Duration,
}

const GIVE_BACK_SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
";

const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
";

#[derive(Clone)]
pub struct RateLimiter {
    redis: Option<Arc<RedisStore>>,
    local: Arc<Mutex<LocalWindows>>,
}

#[derive(Default)]
struct LocalWindows {
    windows: HashMap<String, (Instant, u32)>,
}

impl LocalWindows {
    fn hit(&mut self, key: &str, window: Duration, increment: u32) -> (u32, Duration) {
        let now = Instant::now();
        // Forget finished windows now and then, so memory stays bounded by the number
        // of keys active within one window.
        if self.windows.len() > 10_000 {
            self.windows
                .retain(|_, (started, _)| now.duration_since(*started) < window);
        }
        let entry = self.windows.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 += increment;
        (entry.1, window.saturating_sub(now.duration_since(entry.0)))
    }

    fn give_back(&mut self, key: &str) {
        if let Some(entry) = self.windows.get_mut(key) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}

impl RateLimiter {
    pub fn new(redis: Option<Arc<RedisStore>>) -> Self {
        Self {
            redis,
            local: Arc::new(Mutex::new(LocalWindows::default())),
        }
    }

    /// Counts one event against `key` and says whether the count is now over `limit`.
    pub async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<(), Limited> {
        self.count(key, limit, window, 1).await
    }

    /// Says whether `key` is already over `limit`, without counting.
    pub async fn peek(&self, key: &str, limit: u32, window: Duration) -> Result<(), Limited> {
        self.count(key, limit, window, 0).await
    }

    /// Takes back one event counted against `key` in its current window.
    pub async fn give_back(&self, key: &str) {
        if let Some(redis) = &self.redis {
            let full_key = redis.key(&format!("rl:{key}"));
            let answer = redis
                .run(|mut connection| {
                    let full_key = full_key.clone();
                    async move {
                        let _: i64 = redis::Script::new(GIVE_BACK_SCRIPT)
                            .key(&full_key)
                            .invoke_async(&mut connection)
                            .await?;
                        Ok(())
                    }
                })
                .await;
            match answer {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "rate limiter cannot reach redis; counting in process");
                    metrics::counter!("souk_redis_fallbacks_total", "use" => "rate_limit")
                        .increment(1);
                }
            }
        }
        self.local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .give_back(key);
    }

    async fn count(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        increment: u32,
    ) -> Result<(), Limited> {
        let (count, remaining) = match self.redis_count(key, window, increment).await {
            Some(answer) => answer,
            None => self
                .local
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .hit(key, window, increment),
        };
        // Counting, this event is refused once it goes past the limit; peeking, the
        // next event would be refused once the limit is reached.
        let over = if increment == 0 {
            count >= limit
        } else {
            count > limit
        };
        if over {
            return Err(Limited {
                retry_after: remaining.max(Duration::from_secs(1)),
            });
        }
        Ok(())
    }

    async fn redis_count(
        &self,
        key: &str,
        window: Duration,
        increment: u32,
    ) -> Option<(u32, Duration)> {
        let redis = self.redis.as_ref()?;
        let full_key = redis.key(&format!("rl:{key}"));
        let window_ms = window.as_millis() as u64;
        let answer = if increment == 0 {
            redis
                .run(|mut connection| {
                    let full_key = full_key.clone();
                    async move {
                        let (count, ttl): (Option<u32>, i64) = redis::pipe()
                            .get(&full_key)
                            .pttl(&full_key)
                            .query_async(&mut connection)
                            .await?;
                        Ok((count.unwrap_or(0), ttl.max(0) as u64))
                    }
                })
                .await
        } else {
            redis
                .run(|mut connection| {
                    let full_key = full_key.clone();
                    async move {
                        let (count, ttl): (u32, i64) = redis::Script::new(HIT_SCRIPT)
                            .key(&full_key)
                            .arg(window_ms)
                            .invoke_async(&mut connection)
                            .await?;
                        Ok((count, ttl.max(0) as u64))
                    }
                })
                .await
        };
        match answer {
            Ok((count, ttl_ms)) => Some((count, Duration::from_millis(ttl_ms))),
            Err(error) => {
                tracing::warn!(%error, "rate limiter cannot reach redis; counting in process");
                metrics::counter!("souk_redis_fallbacks_total", "use" => "rate_limit").increment(1);
                None
            }
        }
    }
}

/// Checks of one account's password (signing in, changing the password or the email
/// address): each counts against the account before the hash is checked, and a right
/// password gives its count back, so only wrong guesses stay counted, and guesses sent
/// at once cannot all slip under the limit.
#[derive(Clone)]
pub struct AccountGuesses {
    limiter: RateLimiter,
    max_failures: u32,
    window: Duration,
}

impl AccountGuesses {
    pub fn new(limiter: RateLimiter, max_failures: u32, window: Duration) -> Self {
        Self {
            limiter,
            max_failures,
            window,
        }
    }

    /// Runs `check` (true: the password is right) as a guess at `email`'s password;
    /// `rate_limited` without running it once the account has had too many wrong ones.
    pub async fn check<F>(&self, email: &str, check: F) -> Result<bool, Error>
    where
        F: std::future::Future<Output = Result<bool, Error>>,
    {
        let key = format!("login:account:{email}");
        self.limiter
            .hit(&key, self.max_failures, self.window)
            .await
            .map_err(|limited| Error::rate_limited(limited.retry_after.as_secs()))?;
        let right = check.await?;
        if right {
            self.limiter.give_back(&key).await;
        }
        Ok(right)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_windows_limit_and_reset() {
        let limiter = RateLimiter::new(None);
        let window = Duration::from_millis(200);
        for _ in 0..3 {
            assert!(limiter.hit("k", 3, window).await.is_ok());
        }
        let limited = limiter.hit("k", 3, window).await.unwrap_err();
        assert!(limited.retry_after >= Duration::from_secs(1));
        assert!(limiter.peek("other", 3, window).await.is_ok());
        tokio::time::sleep(window).await;
        assert!(limiter.hit("k", 3, window).await.is_ok());
    }

    #[tokio::test]
    async fn only_wrong_guesses_stay_counted() {
        let guesses = AccountGuesses::new(RateLimiter::new(None), 2, Duration::from_secs(60));
        for _ in 0..5 {
            assert!(guesses.check("a@x", async { Ok(true) }).await.unwrap());
        }
        for _ in 0..2 {
            assert!(!guesses.check("a@x", async { Ok(false) }).await.unwrap());
        }
        let refused = guesses.check("a@x", async { panic!("not checked") }).await;
        assert_eq!(
            refused.unwrap_err().code(),
            crate::error::ErrorCode::RateLimited
        );
        assert!(!guesses.check("b@x", async { Ok(false) }).await.unwrap());
    }
}
