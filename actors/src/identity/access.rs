//! The node's cache of live sessions: whose an access token's session is and the
//! account's role, so an authenticated request reads nothing from the database while
//! its entry is fresh.
//!
//! Only a live session of an active account is kept, for at most the configured TTL.
//! A change of access — a disabled, deleted or promoted account, a logout, a password
//! change or reset, a reused refresh token — forgets the account's entries at once on
//! the node that made it and, through `user.access_changed` (or `user.deleted`), on
//! every other node as soon as the event arrives. The TTL bounds what a lost event or a
//! refresh family's expiry can leave: a revoked session is refused within the TTL on
//! every node, whatever happens to the events.

use std::time::Duration;

use souk_db::outbox::{self, OutboxEvent};
use souk_db::{DbError, Transaction};
use tokio::sync::watch;

use crate::error::Error;
use crate::identity::users::Principal;
use crate::identity::Role;
use crate::node_cache::{NodeCache, Ticket};
use crate::outbox::follow::{Followed, Position};
use crate::outbox::relay::Publisher;
use crate::outbox::Topic;

/// The events that end or change an account's access.
pub const ACCESS_TOPICS: [Topic; 2] = [Topic::AccessChanged, Topic::UserDeleted];

/// Sessions kept at most.
const CAPACITY: usize = 100_000;

/// The event that makes every node forget what it cached of the account, written in
/// the transaction of the change.
fn access_changed(user_id: &str) -> Result<OutboxEvent, Error> {
    Topic::AccessChanged.event(user_id, &serde_json::json!({ "user_id": user_id }))
}

/// A per-node cache of live sessions, (account, session) → role; clones share it.
#[derive(Clone)]
pub struct AccessCache {
    sessions: NodeCache<(String, String), Role>,
}

impl AccessCache {
    /// Keeps each live session at most `ttl`; a zero TTL keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            sessions: NodeCache::new("sessions", ttl, CAPACITY),
        }
    }

    /// A cache that keeps nothing (every request reads the database).
    pub fn disabled() -> Self {
        Self {
            sessions: NodeCache::disabled(),
        }
    }

    /// The account behind a live session, if read within the TTL.
    pub fn get(&self, user_id: &str, session_id: &str) -> Option<Principal> {
        let role = self
            .sessions
            .get(&(user_id.to_owned(), session_id.to_owned()))?;
        Some(Principal {
            id: user_id.to_owned(),
            role,
        })
    }

    pub fn ticket(&self) -> Ticket {
        self.sessions.ticket()
    }

    /// Keeps a session read live after `ticket` was taken, unless access changed since.
    pub fn put(&self, ticket: Ticket, principal: &Principal, session_id: &str) {
        self.sessions.put(
            ticket,
            (principal.id.clone(), session_id.to_owned()),
            principal.role,
        );
    }

    /// Commits a transaction that changes the account's access, with the event that
    /// tells every node, then forgets the account here.
    pub(crate) async fn commit_change(
        &self,
        mut transaction: Transaction,
        user_id: &str,
    ) -> Result<(), Error> {
        outbox::append(&mut *transaction, &access_changed(user_id)?).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.forget_account(user_id);
        Ok(())
    }

    /// Forgets every session of the account.
    pub fn forget_account(&self, user_id: &str) {
        self.sessions
            .forget_where(|(account, _), _| account == user_id);
    }

    /// The node's task: forgets the accounts whose access changed, as their events
    /// arrive from every node. What was kept before the task (re)started is forgotten
    /// once it follows, so no event falls in a gap.
    pub async fn follow(
        self,
        publisher: Publisher,
        mut stopping: watch::Receiver<bool>,
    ) -> anyhow::Result<()> {
        let position = Position::now(&publisher).await?;
        self.sessions.forget_all();
        let mut follower = position.follow(&ACCESS_TOPICS, "access events").await?;
        loop {
            let followed = tokio::select! {
                followed = follower.next() => followed?,
                _ = stopping.wait_for(|stopped| *stopped) => return Ok(()),
            };
            match followed {
                Some(Followed::Event(event)) => match event.payload["user_id"].as_str() {
                    Some(user_id) => self.forget_account(user_id),
                    None => self.forget_account(&event.aggregate_id),
                },
                Some(Followed::Missed(missed)) => {
                    tracing::warn!(missed, "access events missed; forgetting every session");
                    self.sessions.forget_all();
                }
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(id: &str) -> Principal {
        Principal {
            id: id.to_owned(),
            role: Role::Customer,
        }
    }

    #[test]
    fn an_account_is_forgotten_with_all_its_sessions_and_no_other() {
        let cache = AccessCache::new(Duration::from_secs(60));
        for (user, session) in [("u1", "s1"), ("u1", "s2"), ("u2", "s3")] {
            cache.put(cache.ticket(), &customer(user), session);
        }
        assert_eq!(cache.get("u1", "s1").map(|p| p.id), Some("u1".to_owned()));
        assert!(cache.get("u2", "s1").is_none(), "another account's session");
        cache.forget_account("u1");
        assert!(cache.get("u1", "s1").is_none());
        assert!(cache.get("u1", "s2").is_none());
        assert!(cache.get("u2", "s3").is_some(), "other accounts stay");
    }

    #[test]
    fn a_disabled_cache_keeps_nothing() {
        let cache = AccessCache::disabled();
        cache.put(cache.ticket(), &customer("u1"), "s1");
        assert!(cache.get("u1", "s1").is_none());
    }
}
