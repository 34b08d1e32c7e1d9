//! The outbox relay to NATS JetStream: one pass puts its events on the stream in the
//! outbox's order; and through faults: an event survives its relay dying between commit
//! and publish (another node's relay publishes it, and a duplicate publish sends
//! nothing), two relays publish each event once, and no event is lost while a private
//! nats-server restarts.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::web;
use souk_api::config::Config;
use souk_api::state::AppState;
use souk_api::Application;
use souk_db::testing::TestBackend;

use super::{
    assert_one_mail_each, email_settings, register, register_many, settle, wait_until, SmtpSink,
    PATIENCE,
};
use crate::helpers::*;

/// A second node on another app's database (another process, as far as the node knows).
struct Node {
    address: String,
    state: web::Data<AppState>,
    handle: actix_web::dev::ServerHandle,
    _data_dir: TempDir,
}

impl Node {
    async fn start(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> Self {
        let data_dir = TempDir::new();
        let mut config = test_config(&app.database, &data_dir.0);
        config.events.namespace = app.state.config.events.namespace.clone();
        config.nats.url = app.state.config.nats.url.clone();
        tweak(&mut config);
        let application = Application::build(config)
            .await
            .expect("build a second node");
        let address = format!("http://127.0.0.1:{}", application.port());
        let state = application.state();
        let handle = application.handle();
        actix_web::rt::spawn(application.run_until_stopped());
        Self {
            address,
            state,
            handle,
            _data_dir: data_dir,
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A pass sends its events without waiting and awaits their acknowledgements after:
/// the stream still holds them in the outbox's order, each once, and all are marked.
#[actix_web::test]
async fn a_pass_publishes_its_events_in_the_outbox_order() {
    let app = spawn_app_with(TestBackend::MySql, |config| {
        config.nats.url = Some(nats_url());
        config.outbox.relay = false;
    })
    .await;
    register_many(&app, "ordered", 30).await;
    let pool = app.database.db.pool();
    let unpublished = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM outbox_events WHERE published_at IS NULL ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    };
    let outbox_order = unpublished().await;
    assert!(outbox_order.len() >= 30, "{outbox_order:?}");

    let publisher = app.state.email.publisher().clone();
    publisher.ensure_stream().await.unwrap();
    let relay = souk_actors::outbox::relay::Relay::new(app.state.db.clone(), publisher.clone());
    assert_eq!(relay.run_once().await.unwrap(), outbox_order.len());
    assert!(
        unpublished().await.is_empty(),
        "every event marked published"
    );

    let souk_actors::outbox::relay::Publisher::JetStream { context, names } = &publisher else {
        panic!("this node publishes to JetStream");
    };
    let stream = context.get_stream(names.stream()).await.unwrap();
    let mut stream_order = Vec::new();
    for sequence in 1..=outbox_order.len() as u64 {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let event: souk_actors::outbox::PublishedEvent =
            serde_json::from_slice(&message.payload).unwrap();
        stream_order.push(event.id);
    }
    assert_eq!(stream_order, outbox_order);
    let mut stream = stream;
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        outbox_order.len() as u64,
        "each event on the stream once"
    );
}

/// The relay dies after the commit, before publishing: another node's relay publishes
/// the event later and the mail arrives, once. And a relay that published but died
/// before marking publishes again: JetStream and the send log drop the duplicate.
#[actix_web::test]
async fn events_survive_a_relay_dying_between_commit_and_publish() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::MySql, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats_url());
        config.outbox.relay = false;
    })
    .await;
    let (user_id, email) = register(&app, "orphan").await;
    let unpublished =
        souk_db::outbox::for_aggregate(app.database.db.pool(), "user.registered", &user_id)
            .await
            .unwrap();
    assert_eq!(unpublished.len(), 1);
    assert!(
        unpublished[0].published_at.is_none(),
        "nothing relays on this node"
    );

    // Published, but the node died before marking it: the row still says unpublished.
    let publisher = app.state.email.publisher();
    publisher.ensure_stream().await.unwrap();
    publisher
        .publish(
            &souk_actors::outbox::PublishedEvent::from_outbox(&unpublished[0]),
            &unpublished[0].id,
        )
        .await
        .unwrap();
    sink.wait_for(&email, 1).await;

    // A node with a relay picks the event up and publishes it (again).
    let relay_node = Node::start(&app, |config| {
        email_settings(config, &sink);
    })
    .await;
    wait_until("the event marked published", || async {
        souk_db::outbox::for_aggregate(relay_node.state.db.pool(), "user.registered", &user_id)
            .await
            .unwrap()[0]
            .published_at
            .is_some()
    })
    .await;
    // And a second user registered while no relay ran on the first node.
    let (_, later) = register(&app, "later").await;
    sink.wait_for(&later, 1).await;
    settle().await;
    assert_eq!(
        sink.mails_to(&email).len(),
        1,
        "the duplicate publish sent nothing"
    );
    assert_eq!(sink.mails_to(&later).len(), 1);
    assert!(relay_node.address.starts_with("http://"));
}

/// Two nodes relay the same outbox at once: every event reaches the stream once.
#[actix_web::test]
async fn two_relays_publish_each_event_once() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::MySql, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats_url());
        config.outbox.poll_ms = 10;
    })
    .await;
    let _second = Node::start(&app, |config| {
        email_settings(config, &sink);
        config.outbox.poll_ms = 10;
    })
    .await;
    let emails = register_many(&app, "pair", 12).await;
    assert_one_mail_each(&sink, &emails).await;
    let souk_actors::outbox::relay::Publisher::JetStream { context, names } =
        app.state.email.publisher()
    else {
        panic!("this node publishes to JetStream");
    };
    let mut stream = context.get_stream(names.stream()).await.unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, 12, "each event on the stream once");
}

/// A private NATS server, restarted mid-stream: no event is lost.
struct PrivateNats {
    port: u16,
    store: TempDir,
    child: Option<Child>,
}

impl PrivateNats {
    fn start() -> Self {
        let mut nats = Self {
            port: dead_port(),
            store: TempDir::new(),
            child: None,
        };
        nats.launch();
        nats
    }

    fn launch(&mut self) {
        let binary = std::env::var("SOUK_TEST_NATS_BIN").unwrap_or_else(|_| {
            panic!("SOUK_TEST_NATS_BIN is not set: run `eval \"$(scripts/test-services)\"`")
        });
        let child = Command::new(&binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {binary}: {error}"));
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

#[actix_web::test]
async fn no_event_is_lost_when_nats_restarts() {
    let mut nats = PrivateNats::start();
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats.url());
    })
    .await;
    let mut emails = register_many(&app, "before", 3).await;
    for email in &emails {
        sink.wait_for(email, 1).await;
    }
    nats.stop();
    // Written while NATS is down: they wait in the outbox.
    emails.extend(register_many(&app, "during", 3).await);
    nats.launch();
    emails.extend(register_many(&app, "after", 3).await);
    assert_one_mail_each(&sink, &emails).await;
}
