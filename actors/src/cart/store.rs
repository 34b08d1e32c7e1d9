//! Where carts live: [`CartStore`], with a Redis implementation (shared by every node,
//! guest carts expiring by Redis's own TTL) used when Redis is configured and a
//! database one otherwise. Both write a cart whole and only if its version is still
//! the one read (compare-and-set: a Lua script in Redis, a conditional `UPDATE` in the
//! database), so the service's read-modify-write retries instead of losing an edit.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use souk_db::carts::{self, CartRow};
use souk_db::clock::now_micros;
use souk_db::Db;

use super::model::{Cart, StoredCart};
use crate::error::{Error, ErrorCode};
use crate::redis_store::{RedisError, RedisStore};

pub trait CartStore: Send + Sync {
    /// The cart under `key`, if there is one (an expired guest cart is none).
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredCart>, Error>>;

    /// Stores `cart` as version `expected + 1` if the stored one is still at `expected`
    /// (0: none); `ttl` makes it expire (guests), `None` keeps it. `false`: another
    /// write won, nothing was written.
    fn save<'a>(
        &'a self,
        key: &'a str,
        expected: i64,
        cart: &'a Cart,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Deletes the cart if it is at `expected` (`None`: whatever its version); `false`
    /// when it was not (another write came first, or there was none).
    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<i64>,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Forgets expired carts where the store does not do it by itself.
    fn sweep(&self) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(async { Ok(0) })
    }
}

fn encode(cart: &Cart) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(cart).map_err(Error::internal)
}

fn decode(key: &str, bytes: &[u8]) -> Result<Cart, Error> {
    serde_json::from_slice(bytes)
        .map_err(|error| Error::internal(format!("cart {key} cannot be read: {error}")))
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis())
        .unwrap_or(i64::MAX / 1000)
        .max(1)
}

/// Carts in the `carts` table (both engines).
pub struct DbCartStore {
    db: Db,
}

impl DbCartStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

impl CartStore for DbCartStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredCart>, Error>> {
        Box::pin(async move {
            let Some(row) = carts::find(self.db.pool(), key, now_micros()).await? else {
                return Ok(None);
            };
            Ok(Some(StoredCart {
                version: row.version,
                cart: decode(key, &row.content)?,
            }))
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        expected: i64,
        cart: &'a Cart,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let now = now_micros();
            let row = CartRow {
                cart_key: key.to_owned(),
                version: expected + 1,
                content: encode(cart)?,
                expires_at: ttl.map(|ttl| now + millis(ttl) * 1000),
                updated_at: now,
            };
            Ok(carts::save(self.db.pool(), &row, expected, now).await?)
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<i64>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move { Ok(carts::delete(self.db.pool(), key, expected).await?) })
    }

    fn sweep(&self) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(async move { Ok(carts::delete_expired(self.db.pool(), now_micros()).await?) })
    }
}

/// Sets the hash `{v, doc}` if `v` is still ARGV[1] ('0': absent); a positive ARGV[4]
/// is the TTL in milliseconds, 0 keeps the cart without one.
const SAVE_SCRIPT: &str = r"
local version = redis.call('HGET', KEYS[1], 'v')
if not version then version = '0' end
if version ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
else
  redis.call('PERSIST', KEYS[1])
end
return 1
";

/// Deletes the hash if its `v` is ARGV[1]; an empty ARGV[1] deletes it whatever `v`.
const DELETE_SCRIPT: &str = r"
local version = redis.call('HGET', KEYS[1], 'v')
if not version then return 0 end
if ARGV[1] ~= '' and version ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
";

/// Carts as Redis hashes (`v`: version, `doc`: the JSON document) under
/// `<redis.key_prefix>cart:<key>`.
pub struct RedisCartStore {
    redis: Arc<RedisStore>,
    save: redis::Script,
    delete: redis::Script,
}

impl RedisCartStore {
    pub fn new(redis: Arc<RedisStore>) -> Self {
        Self {
            redis,
            save: redis::Script::new(SAVE_SCRIPT),
            delete: redis::Script::new(DELETE_SCRIPT),
        }
    }

    fn key(&self, key: &str) -> String {
        self.redis.key(&format!("cart:{key}"))
    }
}

fn unavailable(error: RedisError) -> Error {
    tracing::warn!(%error, "cart store unavailable");
    Error::unavailable_retry_after(
        ErrorCode::ServiceUnavailable,
        "the cart store is not answering",
        1,
    )
}

impl CartStore for RedisCartStore {
    fn load<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredCart>, Error>> {
        Box::pin(async move {
            let redis_key = self.key(key);
            let (version, doc): (Option<i64>, Option<Vec<u8>>) = self
                .redis
                .run(|mut connection| async move {
                    redis::cmd("HMGET")
                        .arg(&redis_key)
                        .arg("v")
                        .arg("doc")
                        .query_async(&mut connection)
                        .await
                })
                .await
                .map_err(unavailable)?;
            match (version, doc) {
                (Some(version), Some(doc)) => Ok(Some(StoredCart {
                    version,
                    cart: decode(key, &doc)?,
                })),
                _ => Ok(None),
            }
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a str,
        expected: i64,
        cart: &'a Cart,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let redis_key = self.key(key);
            let doc = encode(cart)?;
            let ttl_ms = ttl.map(millis).unwrap_or(0);
            let script = &self.save;
            let saved: i64 = self
                .redis
                .run(|mut connection| async move {
                    script
                        .key(redis_key)
                        .arg(expected)
                        .arg(expected + 1)
                        .arg(doc)
                        .arg(ttl_ms)
                        .invoke_async(&mut connection)
                        .await
                })
                .await
                .map_err(unavailable)?;
            Ok(saved == 1)
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<i64>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let redis_key = self.key(key);
            let expected = expected
                .map(|version| version.to_string())
                .unwrap_or_default();
            let script = &self.delete;
            let deleted: i64 = self
                .redis
                .run(|mut connection| async move {
                    script
                        .key(redis_key)
                        .arg(expected)
                        .invoke_async(&mut connection)
                        .await
                })
                .await
                .map_err(unavailable)?;
            Ok(deleted == 1)
        })
    }
}
