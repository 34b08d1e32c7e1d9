//! Email end to end, against real servers: a real SMTP server (scripts/smtp-sink.py,
//! aiosmtpd) started per test, and NATS JetStream (the shared test server, or a private
//! nats-server that a test restarts). Mails are asserted as they arrive at the server:
//! recipient, subject, both parts and their rendered content. Here: that SMTP server and
//! the helpers the email tests share (several used by other modules too). The tests:
//! account mails (`accounts`), the mails an order sets off (`order_mails`), delivery
//! through refusals, dead letters and the file outbox (`delivery`), and the outbox relay
//! through NATS faults (`relay`).

mod accounts;
mod delivery;
mod order_mails;
mod relay;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use souk_api::config::Config;

use crate::helpers::*;

/// How long a test waits for mail before it fails; generous, never asserted on.
const PATIENCE: Duration = Duration::from_secs(60);

// --- the SMTP server -------------------------------------------------------------------

pub struct SmtpSink {
    pub port: u16,
    pub directory: TempDir,
    child: Child,
}

impl SmtpSink {
    pub fn start() -> Self {
        let python = std::env::var("SOUK_TEST_SMTP_PYTHON").unwrap_or_else(|_| {
            panic!("SOUK_TEST_SMTP_PYTHON is not set: run `eval \"$(scripts/test-services)\"` (it installs aiosmtpd)")
        });
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smtp-sink.py");
        let directory = TempDir::new();
        // The free port is picked before the sink binds it, so a test running beside
        // this one may take it first: the sink then exits without saying "ready", and
        // another port is tried.
        for _ in 0..5 {
            let port = dead_port();
            let mut child = Command::new(&python)
                .arg(&script)
                .arg(port.to_string())
                .arg(&directory.0)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap_or_else(|error| {
                    panic!("cannot start the SMTP sink with {python}: {error}")
                });
            let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
            if line.trim() == "ready" {
                return Self {
                    port,
                    directory,
                    child,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "the SMTP sink did not start on any of five ports (is aiosmtpd installed in {python}?)"
        );
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// While refusing, the server answers every recipient with a 451.
    pub fn refuse(&self, refusing: bool) {
        let flag = self.directory.0.join("refuse");
        if refusing {
            std::fs::write(flag, b"").unwrap();
        } else {
            let _ = std::fs::remove_file(flag);
        }
    }

    /// While holding, the server keeps every message `seconds` before accepting it.
    pub fn hold(&self, seconds: f64) {
        std::fs::write(self.directory.0.join("hold"), seconds.to_string()).unwrap();
    }

    /// The most messages the server held at once (0 before any was held).
    pub fn peak_held(&self) -> usize {
        std::fs::read_to_string(self.directory.0.join("peak"))
            .map(|peak| peak.trim().parse().unwrap())
            .unwrap_or(0)
    }

    /// Every mail accepted so far, in arrival order.
    pub fn mails(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.directory.0)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        names.sort_by_key(|path| {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let (time, count) = stem.split_once('-').unwrap();
            (time.parse::<u128>().unwrap(), count.parse::<u64>().unwrap())
        });
        names
            .into_iter()
            .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
            .collect()
    }

    /// Mails to `recipient`, waiting until at least `count` arrived.
    pub async fn wait_for(&self, recipient: &str, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mails = self.mails_to(recipient);
            if mails.len() >= count || Instant::now() > deadline {
                assert!(
                    mails.len() >= count,
                    "expected {count} mails to {recipient}, got {}: {mails:?}",
                    mails.len()
                );
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn mails_to(&self, recipient: &str) -> Vec<Value> {
        self.mails()
            .into_iter()
            .filter(|mail| {
                mail["rcpt_to"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|to| to == recipient)
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- helpers ------------------------------------------------------------------------------

pub(crate) fn email_settings(config: &mut Config, sink: &SmtpSink) {
    config.smtp.url = Some(sink.url());
    config.http.public_base_url = "http://shop.test".to_owned();
    config.email.from = "Souk Test <shop@shop.test>".to_owned();
    config.email.retry_base_ms = 20;
    config.email.retry_max_ms = 100;
    config.outbox.poll_ms = 50;
}

/// The value of `token=` in the first link of `text` that starts with `prefix`.
pub(crate) fn token_in(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no link {prefix} in {text}"));
    text[start + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Gives stray duplicate deliveries a chance to show up before a test counts mails.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// Registers `count` users tagged `tag`0, `tag`1, …; returns their addresses.
async fn register_many(app: &TestApp, tag: &str, count: usize) -> Vec<String> {
    let mut emails = Vec::with_capacity(count);
    for index in 0..count {
        emails.push(register(app, &format!("{tag}{index}")).await.1);
    }
    emails
}

/// Waits for a mail to each of `emails`, gives duplicates time to show, then checks
/// that each got exactly one.
async fn assert_one_mail_each(sink: &SmtpSink, emails: &[String]) {
    for email in emails {
        sink.wait_for(email, 1).await;
    }
    settle().await;
    for email in emails {
        assert_eq!(sink.mails_to(email).len(), 1, "one mail to {email}");
    }
}

async fn register(app: &TestApp, tag: &str) -> (String, String) {
    let email = unique_email(tag);
    let response = app.register(&email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let user: Value = response.json().await.unwrap();
    (user["id"].as_str().unwrap().to_owned(), email)
}

pub(crate) async fn mail_with_subject(sink: &SmtpSink, recipient: &str, subject: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(mail) = sink
            .mails_to(recipient)
            .into_iter()
            .find(|mail| mail["subject"] == subject)
        {
            return mail;
        }
        assert!(
            Instant::now() < deadline,
            "no mail {subject:?} to {recipient}: {:?}",
            sink.mails_to(recipient)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
