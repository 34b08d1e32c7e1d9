//! Domain events on their way out: the relay reads the transactional outbox and
//! publishes to NATS JetStream (or, without NATS, to the in-process bus); consumers
//! such as the email workers read them at least once and de-duplicate by event id.

pub mod bus;
pub mod follow;
pub mod relay;
pub mod topic;

pub use topic::Topic;

use serde::{Deserialize, Serialize};
use souk_db::outbox::OutboxEvent;

/// Payload keys that never leave the database: consumers that need them read the
/// outbox row by event id (see docs/decisions.md, "Secrets in events").
const SECRET_KEYS: &[&str] = &["token"];

/// An event as published: the outbox row with its secrets removed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PublishedEvent {
    pub id: String,
    pub topic: String,
    pub aggregate_id: String,
    pub payload: serde_json::Value,
    pub created_at: i64,
}

impl PublishedEvent {
    pub fn from_outbox(event: &OutboxEvent) -> Self {
        let mut payload: serde_json::Value =
            serde_json::from_str(&event.payload).unwrap_or(serde_json::Value::Null);
        if let Some(object) = payload.as_object_mut() {
            for key in SECRET_KEYS {
                object.remove(*key);
            }
        }
        Self {
            id: event.id.clone(),
            topic: event.topic.clone(),
            aggregate_id: event.aggregate_id.clone(),
            payload,
            created_at: event.created_at,
        }
    }
}

/// Names on the NATS server, all derived from `events_namespace`.
#[derive(Debug, Clone)]
pub struct Names {
    namespace: String,
}

impl Names {
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    /// `order.placed` → `souk.events.order.placed`.
    pub fn subject(&self, topic: &str) -> String {
        format!("{}.events.{topic}", self.namespace)
    }

    pub fn all_subjects(&self) -> String {
        format!("{}.events.>", self.namespace)
    }

    pub fn stream(&self) -> String {
        format!("{}_EVENTS", self.namespace.to_ascii_uppercase())
    }

    /// The durable consumer every node's email workers share, so each message is
    /// handled by one node.
    pub fn email_consumer(&self) -> String {
        format!("{}_email", self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_published() {
        let event = OutboxEvent::new(
            "password.reset_requested",
            "u1",
            &serde_json::json!({"user_id": "u1", "token": "secret"}),
        )
        .unwrap();
        let published = PublishedEvent::from_outbox(&event);
        assert_eq!(published.payload, serde_json::json!({"user_id": "u1"}));
        assert_eq!(published.id, event.id);
    }

    #[test]
    fn names_follow_the_namespace() {
        let names = Names::new("souk");
        assert_eq!(names.subject("order.placed"), "souk.events.order.placed");
        assert_eq!(names.stream(), "SOUK_EVENTS");
        assert_eq!(names.email_consumer(), "souk_email");
    }
}
