//! What an email worker does with one event: decide which mails it causes, skip the
//! ones the send log says went out already (consumers see events at least once), render
//! and send the rest, and on failure ask for a retry with backoff or, after the last
//! attempt, park the event as a dead letter.

use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use rand::Rng;
use souk_db::clock::now_micros;
use souk_db::email::{self as repo, DeadLetterRecord, SendRecord};
use souk_db::one_time_tokens::{self, OneTimeToken, TokenKind};
use souk_db::{orders, outbox, users, Db};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};

use crate::email::templates::{
    format_money, mail_time, EmailChangeConfirm, EmailChangeNotice, LowStock, Mail, OrderCancelled,
    OrderConfirmation, OrderExpired, OrderShipped, PasswordReset, PaymentReceived, ReturnUpdate,
    VerifyReminder, Welcome,
};
use crate::email::transport::Transport;
use crate::identity::secret_token;
use crate::orders::placed::OrderPlaced;
use crate::orders::OrderLinks;
use crate::outbox::PublishedEvent;
use crate::outbox::Topic;

/// What the consumer does with the message after handling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every mail of the event is accepted (or there were none): acknowledge.
    Done,
    /// Deliver the event again after the delay.
    Retry(Duration),
    /// Given up; the dead-letter row has the last error: acknowledge.
    DeadLettered,
}

/// One mail an event causes, before rendering.
#[derive(Debug, Clone)]
struct Target {
    template: &'static str,
    recipient: String,
    name: String,
}

/// What the node's configuration decides for mail.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The sender of every email, e.g. `Souk <no-reply@example.com>`.
    pub from: String,
    /// Where users reach the site; every link in a mail starts with it.
    pub public_base_url: String,
    /// Deliveries of one event before it becomes a dead letter.
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub verification_ttl: Duration,
    /// `smtp://…`/`smtps://…`; `None` writes `.eml` files to `outbox_dir`.
    pub smtp_url: Option<String>,
    pub smtp_password_file: Option<std::path::PathBuf>,
    pub outbox_dir: std::path::PathBuf,
    /// Signs the order mails' links to the order's status page.
    pub order_links: OrderLinks,
}

pub struct Processor {
    db: Db,
    transport: Transport,
    from: Mailbox,
    base_url: String,
    max_attempts: u32,
    retry_base: Duration,
    retry_max: Duration,
    verification_ttl_secs: u64,
    order_links: OrderLinks,
}

impl Processor {
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn new(db: Db, transport: Transport, settings: &EmailSettings) -> anyhow::Result<Self> {
        Ok(Self {
            db,
            transport,
            from: settings
                .from
                .parse()
                .context("invalid configuration: email_from (SOUK_EMAIL_FROM)")?,
            base_url: settings.public_base_url.trim_end_matches('/').to_owned(),
            max_attempts: settings.max_attempts,
            retry_base: settings.retry_base,
            retry_max: settings.retry_max,
            verification_ttl_secs: settings.verification_ttl.as_secs(),
            order_links: settings.order_links.clone(),
        })
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    #[tracing::instrument(name = "email_handle", skip_all, fields(event_id = %event.id, topic = %event.topic, attempt))]
    pub async fn handle(&self, event: &PublishedEvent, attempt: u32) -> Outcome {
        let Err((target, error)) = self.send_all(event).await else {
            return Outcome::Done;
        };
        let error = repo::clip_error(&format!("{error:#}"));
        metrics::counter!("souk_emails_failed_total").increment(1);
        let now = now_micros();
        let dead = attempt >= self.max_attempts;
        if let Some(target) = &target {
            // The subject is known once a mail renders; until it is sent it stays empty.
            self.log_send(
                event,
                target,
                "",
                if dead { "dead_lettered" } else { "failed" },
                i64::from(attempt),
                Some(error.clone()),
            )
            .await;
        }
        if !dead {
            metrics::counter!("souk_emails_retried_total").increment(1);
            let delay = self.backoff(attempt);
            tracing::warn!(error = %super::redact::without_addresses(&error), delay_ms = delay.as_millis() as u64, "email failed; will retry");
            return Outcome::Retry(delay);
        }
        let letter = DeadLetterRecord {
            id: souk_db::ids::new_id(),
            event_id: event.id.clone(),
            topic: event.topic.clone(),
            aggregate_id: event.aggregate_id.clone(),
            payload: serde_json::to_string(&event.payload).unwrap_or_default(),
            attempts: i64::from(attempt),
            last_error: error.clone(),
            created_at: now,
            replayed_at: None,
        };
        if let Err(db_error) = repo::insert_dead_letter(self.db.mail_pool(), &letter).await {
            // Without the dead-letter row the event must not be dropped: try again later.
            tracing::error!(error = %db_error, "cannot store dead letter; will retry");
            return Outcome::Retry(self.retry_max);
        }
        metrics::counter!("souk_emails_dead_lettered_total").increment(1);
        tracing::error!(error = %super::redact::without_addresses(&error), attempts = attempt, dead_letter_id = %letter.id, "email dead-lettered");
        Outcome::DeadLettered
    }

    /// Exponential (base · 2^(attempt-1), capped) with jitter in [delay/2, delay], so
    /// retries of many events do not hit a recovering server at the same instant.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let delay = self
            .retry_base
            .saturating_mul(1 << exponent)
            .min(self.retry_max);
        let half = delay / 2;
        half + half.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }

    async fn send_all(
        &self,
        event: &PublishedEvent,
    ) -> Result<(), (Option<Target>, anyhow::Error)> {
        // An event's reads run on one pooled connection (one pool round trip, not one
        // per statement), which goes back to the pool while a mail is being sent: an
        // SMTP server may take seconds.
        let mut connection = self.connection().await.map_err(|error| (None, error))?;
        let targets = self
            .targets(&mut connection, event)
            .await
            .map_err(|error| (None, error))?;
        let mut held = Some(connection);
        for target in targets {
            let mut connection = match held.take() {
                Some(connection) => connection,
                None => self
                    .connection()
                    .await
                    .map_err(|error| (Some(target.clone()), error))?,
            };
            let existing = repo::find_send(
                &mut *connection,
                &event.id,
                target.template,
                &target.recipient,
            )
            .await
            .map_err(|error| (Some(target.clone()), error.into()))?;
            if existing.as_ref().is_some_and(|send| send.status == "sent") {
                tracing::debug!(
                    template = target.template,
                    "already sent; skipping duplicate delivery"
                );
                held = Some(connection);
                continue;
            }
            let attempts = existing.map(|send| send.attempts).unwrap_or(0) + 1;
            let composed = self.compose(&mut connection, event, &target).await;
            drop(connection);
            let sent = match composed {
                Ok(mail) => self.send_one(mail, &target).await,
                Err(error) => Err(error),
            };
            match sent {
                Ok(subject) => {
                    metrics::counter!("souk_emails_sent_total", "template" => target.template)
                        .increment(1);
                    self.log_send(event, &target, &subject, "sent", attempts, None)
                        .await;
                    tracing::info!(template = target.template, "email sent");
                }
                Err(error) => return Err((Some(target), error)),
            }
        }
        Ok(())
    }

    async fn connection(&self) -> anyhow::Result<PoolConnection<Any>> {
        Ok(self.db.mail_pool().acquire().await?)
    }

    /// Renders a composed mail and sends it; returns its subject for the send log.
    async fn send_one(&self, mail: Mail, target: &Target) -> anyhow::Result<String> {
        let rendered = mail.render().context("cannot render the template")?;
        self.transport
            .send(&self.from, &target.recipient, &rendered)
            .await?;
        Ok(rendered.subject)
    }

    async fn log_send(
        &self,
        event: &PublishedEvent,
        target: &Target,
        subject: &str,
        status: &str,
        attempts: i64,
        last_error: Option<String>,
    ) {
        let now = now_micros();
        let record = SendRecord {
            id: souk_db::ids::new_id(),
            event_id: event.id.clone(),
            template: target.template.to_owned(),
            recipient: target.recipient.clone(),
            subject: subject.to_owned(),
            status: status.to_owned(),
            attempts,
            last_error,
            created_at: now,
            updated_at: now,
        };
        if let Err(error) = repo::record_send(self.db.mail_pool(), &record).await {
            tracing::warn!(%error, "cannot record the email send");
        }
    }

    /// The mails an event causes; events no mail is about give none.
    async fn targets(
        &self,
        connection: &mut AnyConnection,
        event: &PublishedEvent,
    ) -> anyhow::Result<Vec<Target>> {
        let text = |key: &str| {
            event.payload[key]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("event {} has no {key}", event.topic))
        };
        let Some(topic) = Topic::parse(&event.topic) else {
            return Ok(Vec::new());
        };
        let template = match topic {
            // An admin created by an operator (`souk admin create`) starts verified.
            Topic::UserRegistered if event.payload["role"] == "admin" => return Ok(Vec::new()),
            Topic::UserRegistered => "welcome",
            Topic::UserVerificationReminder => "verify_reminder",
            Topic::PasswordResetRequested => "password_reset",
            Topic::EmailChangeRequested => {
                // The new address confirms; the current one is told, so its owner can
                // act if the request was not theirs.
                let name = text("name")?;
                return Ok(vec![
                    Target {
                        template: "email_change_confirm",
                        recipient: text("new_email")?,
                        name: name.clone(),
                    },
                    Target {
                        template: "email_change_notice",
                        recipient: text("email")?,
                        name,
                    },
                ]);
            }
            Topic::OrderPlaced => "order_confirmation",
            Topic::OrderPaid => "payment_received",
            Topic::OrderShipped => "order_shipped",
            Topic::OrderCancelled => "order_cancelled",
            Topic::OrderExpired => "order_expired",
            Topic::ReturnUpdated => "return_update",
            Topic::StockLow => {
                let admins = repo::admin_emails(&mut *connection).await?;
                return Ok(admins
                    .into_iter()
                    .map(|recipient| Target {
                        template: "low_stock",
                        name: String::new(),
                        recipient,
                    })
                    .collect());
            }
            Topic::UserDeleted
            | Topic::AccessChanged
            | Topic::OrderDelivered
            | Topic::StockAvailability
            | Topic::ProductChanged
            | Topic::CategoryMoved
            | Topic::CategoryChanged
            | Topic::SearchReindex => return Ok(Vec::new()),
        };
        if matches!(template, "welcome" | "verify_reminder" | "password_reset") {
            return Ok(vec![Target {
                template,
                recipient: text("email")?,
                name: text("name")?,
            }]);
        }
        // Order mails go to the order's owner as the account is now; a deleted account
        // gets none.
        let user_id = text("user_id")?;
        Ok(users::find_by_id(&mut *connection, &user_id)
            .await?
            .map(|user| Target {
                template,
                recipient: user.email,
                name: user.name,
            })
            .into_iter()
            .collect())
    }

    async fn compose(
        &self,
        connection: &mut AnyConnection,
        event: &PublishedEvent,
        target: &Target,
    ) -> anyhow::Result<Mail> {
        let base_url = self.base_url.clone();
        let name = target.name.clone();
        match target.template {
            "welcome" => {
                let token = self
                    .new_verification_token(connection, &event.aggregate_id)
                    .await?;
                Ok(Mail::Welcome(Welcome {
                    verify_url: format!("{base_url}/account/verify-email?token={token}"),
                    valid_hours: self.verification_ttl_secs.div_ceil(3600),
                    base_url,
                    name,
                }))
            }
            "verify_reminder" => {
                let token = self
                    .new_verification_token(connection, &event.aggregate_id)
                    .await?;
                Ok(Mail::VerifyReminder(VerifyReminder {
                    verify_url: format!("{base_url}/account/verify-email?token={token}"),
                    valid_hours: self.verification_ttl_secs.div_ceil(3600),
                    base_url,
                    name,
                }))
            }
            "password_reset" => {
                let payload = self.stored_payload(connection, event).await?;
                let token = payload["token"]
                    .as_str()
                    .context("the reset event has no token")?;
                let expires_at = payload["expires_at"]
                    .as_str()
                    .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                    .map(|at| mail_time(at.timestamp_micros()))
                    .unwrap_or_else(|| "soon".to_owned());
                Ok(Mail::PasswordReset(PasswordReset {
                    reset_url: format!("{base_url}/account/reset-password?token={token}"),
                    expires_at,
                    base_url,
                    name,
                }))
            }
            "email_change_confirm" | "email_change_notice" => {
                let payload = self.stored_payload(connection, event).await?;
                let new_email = payload["new_email"]
                    .as_str()
                    .context("the email change event has no new_email")?
                    .to_owned();
                let expires_at = mail_time(payload["expires_at"].as_i64().unwrap_or_default());
                if target.template == "email_change_notice" {
                    return Ok(Mail::EmailChangeNotice(EmailChangeNotice {
                        account_url: format!("{base_url}/account/forgot-password"),
                        base_url,
                        name,
                        new_email,
                        expires_at,
                    }));
                }
                let token = payload["token"]
                    .as_str()
                    .context("the email change event has no token")?;
                Ok(Mail::EmailChangeConfirm(EmailChangeConfirm {
                    confirm_url: format!("{base_url}/account/confirm-email?token={token}"),
                    base_url,
                    name,
                    new_email,
                    expires_at,
                }))
            }
            "low_stock" => Ok(Mail::LowStock(LowStock {
                sku: event.payload["sku"].as_str().unwrap_or_default().to_owned(),
                available: event.payload["available"].as_i64().unwrap_or_default(),
                threshold: event.payload["threshold"].as_i64().unwrap_or_default(),
                inventory_url: format!(
                    "{base_url}/admin/stock/{}",
                    event.payload["sku"].as_str().unwrap_or_default()
                ),
                base_url,
            })),
            template => {
                self.compose_order(connection, event, template, base_url, name)
                    .await
            }
        }
    }

    async fn compose_order(
        &self,
        connection: &mut AnyConnection,
        event: &PublishedEvent,
        template: &str,
        base_url: String,
        name: String,
    ) -> anyhow::Result<Mail> {
        let order_id = event.aggregate_id.clone();
        let order_url = format!("{base_url}{}", self.order_links.path(&order_id));
        if template == "order_confirmation" {
            // The order as placed is in the event; an event of an earlier version's
            // node lacks part of it, and the stored order answers instead.
            let placed = match OrderPlaced::from_payload(&event.payload) {
                Some(placed) => placed,
                None => {
                    let order = find_order(connection, &order_id).await?;
                    let lines = orders::lines(&mut *connection, &order_id).await?;
                    OrderPlaced::of(&order, &lines)
                }
            };
            return Ok(Mail::OrderConfirmation(OrderConfirmation::of(
                placed, base_url, name, order_url,
            )));
        }
        let order = find_order(connection, &order_id).await?;
        let total = format_money(order.total_amount, &order.currency);
        Ok(match template {
            "payment_received" => Mail::PaymentReceived(PaymentReceived {
                base_url,
                name,
                order_id,
                order_url,
                total,
            }),
            "order_shipped" => Mail::OrderShipped(OrderShipped {
                base_url,
                name,
                order_id,
                order_url,
            }),
            "order_cancelled" => Mail::OrderCancelled(OrderCancelled {
                reason: event.payload["reason"]
                    .as_str()
                    .filter(|reason| !reason.is_empty())
                    .unwrap_or("not given")
                    .to_owned(),
                refunded: order.was_paid == 1,
                base_url,
                name,
                order_id,
                order_url,
                total,
            }),
            "return_update" => {
                let field = |name: &str| event.payload[name].as_str().unwrap_or("").to_owned();
                Mail::ReturnUpdate(ReturnUpdate {
                    return_id: field("return_id"),
                    status: field("status"),
                    decision: field("decision"),
                    refund: event.payload["refund_amount"]
                        .as_i64()
                        .map(|amount| format_money(amount, &order.currency))
                        .unwrap_or_default(),
                    base_url,
                    name,
                    order_id,
                    order_url,
                })
            }
            _ => Mail::OrderExpired(OrderExpired {
                base_url,
                name,
                order_id,
                order_url,
            }),
        })
    }

    /// An event's payload as the outbox row holds it: tokens are kept out of published
    /// events, so a mail that carries one reads it here.
    async fn stored_payload(
        &self,
        connection: &mut AnyConnection,
        event: &PublishedEvent,
    ) -> anyhow::Result<serde_json::Value> {
        let row = outbox::find(&mut *connection, &event.id)
            .await?
            .with_context(|| format!("event {} is not in the outbox", event.id))?;
        Ok(serde_json::from_str(&row.payload)?)
    }

    /// A fresh single-use token, stored hashed. A retried welcome mail gets a new one;
    /// the earlier ones stay valid until they expire, whichever link the user opens.
    async fn new_verification_token(
        &self,
        connection: &mut AnyConnection,
        user_id: &str,
    ) -> anyhow::Result<String> {
        let token = secret_token::generate();
        let now = now_micros();
        let record = OneTimeToken {
            id: souk_db::ids::new_id(),
            token_hash: secret_token::hash(&token),
            user_id: user_id.to_owned(),
            created_at: now,
            expires_at: now + (self.verification_ttl_secs as i64) * 1_000_000,
            used_at: None,
        };
        one_time_tokens::insert(&mut *connection, TokenKind::EmailVerification, &record).await?;
        Ok(token)
    }
}

async fn find_order(
    connection: &mut AnyConnection,
    order_id: &str,
) -> anyhow::Result<orders::OrderRecord> {
    orders::find(&mut *connection, order_id)
        .await?
        .with_context(|| format!("order {order_id} not found"))
}
