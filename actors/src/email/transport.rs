//! Where mails go: an SMTP server (lettre, STARTTLS or TLS per the URL, credentials
//! from the URL's user and a password file), or — embedded mode — `.eml` files in
//! `data_dir/outbox` that a new user can open with any mail program.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::email::processor::EmailSettings;
use crate::email::templates::Rendered;

const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

impl Transport {
    pub fn from_settings(settings: &EmailSettings) -> anyhow::Result<Self> {
        let Some(url) = &settings.smtp_url else {
            let directory = settings.outbox_dir.clone();
            std::fs::create_dir_all(&directory).with_context(|| {
                format!("cannot create the email outbox {}", directory.display())
            })?;
            return Ok(Transport::File(
                AsyncFileTransport::<Tokio1Executor>::new(&directory),
                directory,
            ));
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("invalid configuration: smtp_url (SOUK_SMTP_URL)")?
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(path) = &settings.smtp_password_file {
            let password = std::fs::read_to_string(path).with_context(|| {
                format!(
                    "cannot read smtp_password_file (SOUK_SMTP_PASSWORD_FILE) {}",
                    path.display()
                )
            })?;
            let user = smtp_user(url).context(
                "invalid configuration: smtp_url (SOUK_SMTP_URL): a password file needs a user in the URL, smtp://user@host",
            )?;
            builder = builder.credentials(Credentials::new(user, password.trim().to_owned()));
        }
        Ok(Transport::Smtp(builder.build()))
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp(_) => "smtp".to_owned(),
            Transport::File(_, directory) => format!("file outbox {}", directory.display()),
        }
    }

    /// Hands one mail to the server (or writes it); `Ok` means accepted.
    pub async fn send(&self, from: &Mailbox, to: &str, mail: &Rendered) -> Result<(), SendError> {
        let to: Mailbox = to
            .parse()
            .map_err(|error| SendError::Permanent(format!("bad recipient {to:?}: {error}")))?;
        // Providers reject or penalise mail without a Message-ID and a Date; the id is
        // unique and in the sender's domain.
        let message_id = format!(
            "<{}@{}>",
            uuid::Uuid::now_v7().simple(),
            from.email.domain()
        );
        let message = Message::builder()
            .message_id(Some(message_id))
            .date_now()
            .from(from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|error| SendError::Permanent(format!("cannot build the message: {error}")))?;
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|error| {
                if error.is_permanent() {
                    SendError::Permanent(format!("smtp: {error}"))
                } else {
                    SendError::Transient(format!("smtp: {error}"))
                }
            }),
            Transport::File(file, _) => file
                .send(message)
                .await
                .map(|_| ())
                .map_err(|error| SendError::Transient(format!("file outbox: {error}"))),
        }
    }
}

/// The user part of `smtp://user@host`, percent-decoding left to lettre's own parser.
fn smtp_user(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let (userinfo, _) = rest.split_once('@')?;
    let user = userinfo.split(':').next()?;
    (!user.is_empty()).then(|| user.to_owned())
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth retrying: the server is down, busy or said 4xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying the same mail will not help (5xx, a malformed address); still retried up
    /// to the attempt limit, because a misconfigured server is often fixed meanwhile.
    #[error("{0}")]
    Permanent(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_user_comes_from_the_url() {
        assert_eq!(
            smtp_user("smtp://mailer@mx.example:587").as_deref(),
            Some("mailer")
        );
        assert_eq!(smtp_user("smtps://a:b@mx.example").as_deref(), Some("a"));
        assert_eq!(smtp_user("smtp://mx.example"), None);
    }
}
