//! A node's in-memory cache of what it read from the database, for the hot path: each
//! entry lives at most a TTL, and is forgotten sooner when an event says it changed.
//!
//! A read takes a [`Ticket`] before going to the database and stores what it read with
//! it; a forget in between (the change was committed while the read was in flight)
//! makes the ticket stale and the value is dropped, so a forget is never undone by a
//! read older than it. With a zero TTL the cache keeps nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct NodeCache<K, V> {
    shared: Option<Arc<Shared<K, V>>>,
}

impl<K, V> Clone for NodeCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<K, V> {
    /// Names the cache in `souk_node_cache_requests_total{cache}`.
    name: &'static str,
    ttl: Duration,
    capacity: usize,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    /// Bumped by every forget.
    generation: u64,
    entries: HashMap<K, (Instant, V)>,
}

/// The cache's settings beside its locked state.
type Locked<'a, K, V> = (&'a Shared<K, V>, MutexGuard<'a, State<K, V>>);

/// Taken before a read; see the module's comment.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<K: Eq + Hash, V: Clone> NodeCache<K, V> {
    /// A cache of at most `capacity` entries, each kept at most `ttl`.
    pub fn new(name: &'static str, ttl: Duration, capacity: usize) -> Self {
        let shared = (!ttl.is_zero() && capacity > 0).then(|| {
            Arc::new(Shared {
                name,
                ttl,
                capacity,
                state: Mutex::new(State {
                    generation: 0,
                    entries: HashMap::new(),
                }),
            })
        });
        Self { shared }
    }

    /// A cache that keeps nothing.
    pub fn disabled() -> Self {
        Self { shared: None }
    }

    fn lock(&self) -> Option<Locked<'_, K, V>> {
        let shared = self.shared.as_deref()?;
        let state = shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some((shared, state))
    }

    /// The value stored for `key` within the TTL.
    pub fn get(&self, key: &K) -> Option<V> {
        let (shared, state) = self.lock()?;
        let found = state
            .entries
            .get(key)
            .filter(|(stored_at, _)| stored_at.elapsed() < shared.ttl)
            .map(|(_, value)| value.clone());
        metrics::counter!(
            "souk_node_cache_requests_total",
            "cache" => shared.name,
            "outcome" => if found.is_some() { "hit" } else { "miss" }
        )
        .increment(1);
        found
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().map_or(0, |(_, state)| state.generation))
    }

    /// Stores what a read found, unless something was forgotten since its ticket.
    pub fn put(&self, ticket: Ticket, key: K, value: V) {
        let Some((shared, mut state)) = self.lock() else {
            return;
        };
        if ticket.0 != state.generation {
            return;
        }
        if state.entries.len() >= shared.capacity && !state.entries.contains_key(&key) {
            state
                .entries
                .retain(|_, (stored_at, _)| stored_at.elapsed() < shared.ttl);
            if state.entries.len() >= shared.capacity {
                state.entries.clear();
            }
        }
        state.entries.insert(key, (Instant::now(), value));
    }

    /// Forgets the entries `changed` picks.
    pub fn forget_where(&self, changed: impl Fn(&K, &V) -> bool) {
        let Some((_, mut state)) = self.lock() else {
            return;
        };
        state.generation += 1;
        state.entries.retain(|key, (_, value)| !changed(key, value));
    }

    /// Forgets everything (events were missed, or a change touched too much to name).
    pub fn forget_all(&self) {
        let Some((_, mut state)) = self.lock() else {
            return;
        };
        state.generation += 1;
        state.entries.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().map_or(0, |(_, state)| state.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ttl: Duration, capacity: usize) -> NodeCache<&'static str, u32> {
        NodeCache::new("test", ttl, capacity)
    }

    #[test]
    fn a_value_is_served_until_forgotten() {
        let cache = cache(Duration::from_secs(60), 10);
        cache.put(cache.ticket(), "a", 1);
        cache.put(cache.ticket(), "b", 2);
        assert_eq!(cache.get(&"a"), Some(1));
        cache.forget_where(|key, _| *key == "a");
        assert_eq!(cache.get(&"a"), None);
        assert_eq!(cache.get(&"b"), Some(2), "only what changed is forgotten");
        cache.forget_all();
        assert_eq!(cache.get(&"b"), None);
    }

    #[test]
    fn a_read_that_began_before_a_forget_is_not_kept() {
        let cache = cache(Duration::from_secs(60), 10);
        let ticket = cache.ticket();
        // The change commits and is forgotten while the read is in flight.
        cache.forget_where(|key, _| *key == "a");
        cache.put(ticket, "a", 1);
        assert_eq!(cache.get(&"a"), None);
        cache.put(cache.ticket(), "a", 2);
        assert_eq!(cache.get(&"a"), Some(2));
    }

    #[test]
    fn entries_expire_with_the_ttl() {
        let cache = cache(Duration::from_millis(30), 10);
        cache.put(cache.ticket(), "a", 1);
        assert_eq!(cache.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&"a"), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let cache = cache(Duration::ZERO, 10);
        cache.put(cache.ticket(), "a", 1);
        assert_eq!(cache.get(&"a"), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = cache(Duration::from_secs(60), 2);
        for (key, value) in [("a", 1), ("b", 2), ("c", 3)] {
            cache.put(cache.ticket(), key, value);
            assert!(cache.len() <= 2);
        }
        assert_eq!(cache.get(&"c"), Some(3), "the newest entry is kept");
        cache.put(cache.ticket(), "c", 4);
        assert_eq!(cache.get(&"c"), Some(4), "replacing needs no room");
    }
}
