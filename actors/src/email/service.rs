//! The email service behind the REST handlers (and, later, gRPC): email verification,
//! the send log, dead letters and their replay.

use serde::Serialize;
use souk_db::clock::{now_micros, to_datetime};
use souk_db::email::{self as repo, DeadLetterRecord, SendRecord};
use souk_db::one_time_tokens::{self, TokenKind};
use souk_db::outbox::{self};
use souk_db::users;
use souk_db::{Db, DbError};
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};
use crate::identity::secret_token;
use crate::outbox::relay::Publisher;
use crate::outbox::PublishedEvent;
use crate::outbox::Topic;
use crate::paging::{checked_limit, decode_cursor, paginate, Page};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SendView {
    pub id: String,
    pub event_id: String,
    pub template: String,
    pub recipient: String,
    /// Empty until the mail was sent.
    pub subject: String,
    /// `sent`, `failed` (will be retried) or `dead_lettered`.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SendRecord> for SendView {
    fn from(send: SendRecord) -> Self {
        Self {
            id: send.id,
            event_id: send.event_id,
            template: send.template,
            recipient: send.recipient,
            subject: send.subject,
            status: send.status,
            attempts: send.attempts,
            last_error: send.last_error,
            created_at: to_datetime(send.created_at).to_rfc3339(),
            updated_at: to_datetime(send.updated_at).to_rfc3339(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterView {
    pub id: String,
    pub event_id: String,
    pub topic: String,
    /// What the event is about: a user, an order or a SKU.
    pub aggregate_id: String,
    pub attempts: i64,
    pub last_error: String,
    pub created_at: String,
    /// When an admin replayed it; `null` until then.
    pub replayed_at: Option<String>,
}

impl From<DeadLetterRecord> for DeadLetterView {
    fn from(letter: DeadLetterRecord) -> Self {
        Self {
            id: letter.id,
            event_id: letter.event_id,
            topic: letter.topic,
            aggregate_id: letter.aggregate_id,
            attempts: letter.attempts,
            last_error: letter.last_error,
            created_at: to_datetime(letter.created_at).to_rfc3339(),
            replayed_at: letter.replayed_at.map(|at| to_datetime(at).to_rfc3339()),
        }
    }
}

fn page_bounds(cursor: Option<&str>, limit: Option<u32>) -> Result<(Option<String>, u32), Error> {
    Ok((
        cursor.map(decode_cursor).transpose()?,
        checked_limit(limit)?,
    ))
}

#[derive(Clone)]
pub struct EmailService {
    db: Db,
    publisher: Publisher,
}

impl EmailService {
    pub fn new(db: Db, publisher: Publisher) -> Self {
        Self { db, publisher }
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    /// Spends a verification token (single use, expiring) and marks the address verified.
    #[tracing::instrument(name = "verify_email", skip_all)]
    pub async fn verify_email(&self, presented: &str) -> Result<String, Error> {
        const INVALID: ErrorCode = ErrorCode::InvalidVerificationToken;
        let kind = TokenKind::EmailVerification;
        let now = now_micros();
        let record = secret_token::find_live(&self.db, kind, presented, now, INVALID).await?;
        let mut transaction = self.db.begin().await?;
        secret_token::spend(&mut *transaction, kind, &record, now, INVALID).await?;
        // A token outliving its account (a welcome mail sent after the deletion) verifies
        // nothing.
        if !repo::mark_user_verified(&mut *transaction, &record.user_id, now).await? {
            return Err(Error::from_code(INVALID));
        }
        transaction.commit().await.map_err(DbError::from)?;
        tracing::info!(user_id = %record.user_id, "email verified");
        Ok(record.user_id)
    }

    /// Spends an email-change token (single use, expiring) and moves the account to the
    /// address it was mailed to, which is verified by that. Returns the user's id.
    #[tracing::instrument(name = "confirm_email_change", skip_all)]
    pub async fn confirm_email_change(&self, presented: &str) -> Result<String, Error> {
        const INVALID: ErrorCode = ErrorCode::InvalidVerificationToken;
        let invalid = || Error::from_code(INVALID);
        let kind = TokenKind::EmailChange;
        let now = now_micros();
        let record = secret_token::find_live(&self.db, kind, presented, now, INVALID).await?;
        let mut transaction = self.db.begin().await?;
        secret_token::spend(&mut *transaction, kind, &record, now, INVALID).await?;
        let new_email = one_time_tokens::email_change_target(&mut *transaction, &record.id)
            .await?
            .ok_or_else(invalid)?;
        let user_id = record.user_id;
        match users::move_email(&mut *transaction, &user_id, &new_email, Some(now), now).await {
            Ok(true) => {}
            Ok(false) => return Err(invalid()),
            Err(DbError::UniqueViolation { .. }) => {
                return Err(Error::new(
                    ErrorCode::EmailTaken,
                    "that email address was registered meanwhile",
                ))
            }
            Err(error) => return Err(error.into()),
        }
        transaction.commit().await.map_err(DbError::from)?;
        tracing::info!(user_id = %user_id, "email address changed");
        Ok(user_id)
    }

    /// Queues one verification reminder (`user.verification_reminder`, in the same
    /// transaction as the mark) for every unverified account older than `older_than`
    /// that has had none; returns how many were queued.
    #[tracing::instrument(name = "remind_unverified", skip(self))]
    pub async fn remind_unverified(&self, older_than: std::time::Duration) -> Result<usize, Error> {
        let now = now_micros();
        let cutoff = now - i64::try_from(older_than.as_micros()).unwrap_or(i64::MAX);
        let mut queued = 0;
        loop {
            let batch = repo::unverified_unreminded(self.db.pool(), cutoff, 200).await?;
            if batch.is_empty() {
                break;
            }
            for (user_id, email, name) in batch {
                let event = Topic::UserVerificationReminder.event(
                    &user_id,
                    &serde_json::json!({"user_id": user_id, "email": email, "name": name}),
                )?;
                let mut transaction = self.db.begin().await?;
                if repo::mark_reminded(&mut *transaction, &user_id, now).await? {
                    outbox::append(&mut *transaction, &event).await?;
                    queued += 1;
                }
                transaction.commit().await.map_err(DbError::from)?;
            }
        }
        tracing::info!(queued, "verification reminders queued");
        Ok(queued)
    }

    /// A page of sends, newest first. `cursor` and `limit` are as the client sent them
    /// (REST query or gRPC fields) and are validated here.
    pub async fn list_sends(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<SendView>, Error> {
        let (before, limit) = page_bounds(cursor, limit)?;
        let rows = repo::recent_sends(self.db.pool(), before.as_deref(), limit + 1).await?;
        Ok(paginate(rows, limit, |send| &send.id, SendView::from))
    }

    /// A page of dead letters, newest first.
    pub async fn dead_letters(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<DeadLetterView>, Error> {
        let (before, limit) = page_bounds(cursor, limit)?;
        let rows = repo::dead_letters(self.db.pool(), before.as_deref(), limit + 1).await?;
        Ok(paginate(
            rows,
            limit,
            |letter| &letter.id,
            DeadLetterView::from,
        ))
    }

    /// Publishes the dead letter's event again, once; the workers then send whatever
    /// mail of it has not gone out, with a fresh attempt budget.
    #[tracing::instrument(name = "replay_dead_letter", skip(self))]
    pub async fn replay(&self, id: &str) -> Result<DeadLetterView, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(Error::not_found("dead letter"));
        }
        let letter = repo::find_dead_letter(self.db.pool(), id)
            .await?
            .ok_or_else(|| Error::not_found("dead letter"))?;
        let now = now_micros();
        if !repo::mark_replayed(self.db.pool(), id, now).await? {
            return Err(Error::from_code(ErrorCode::AlreadyReplayed));
        }
        let event = PublishedEvent {
            id: letter.event_id.clone(),
            topic: letter.topic.clone(),
            aggregate_id: letter.aggregate_id.clone(),
            payload: serde_json::from_str(&letter.payload).unwrap_or(serde_json::Value::Null),
            created_at: now,
        };
        // A message id of its own: JetStream would drop the event id as a duplicate.
        let message_id = format!("{}.replay.{}", letter.event_id, letter.id);
        // Published, or the mark undone, on a task of its own: a caller that gives up
        // (a deadline, a reset stream) must not leave the letter marked but unsent.
        let (publisher, db, letter_id) = (self.publisher.clone(), self.db.clone(), id.to_owned());
        let published = tokio::spawn(async move {
            let Err(error) = publisher.publish(&event, &message_id).await else {
                return Ok(());
            };
            // Undo the mark, so the admin can try again once the bus is back.
            repo::unmark_replayed(db.pool(), &letter_id).await?;
            Err(Error::new(
                ErrorCode::ServiceUnavailable,
                format!("cannot publish the event again: {error}"),
            ))
        });
        published.await.map_err(Error::internal)??;
        tracing::info!(dead_letter_id = %id, event_id = %letter.event_id, "dead letter replayed");
        let mut replayed = letter;
        replayed.replayed_at = Some(now);
        Ok(replayed.into())
    }
}
