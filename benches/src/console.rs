//! `souk-bench console`: do open admin consoles slow checkout? A Souk node (in this
//! process, on its own MariaDB database) takes closed-loop checkouts of one unit of
//! one hot SKU over REST, first with no console open, then with `consoles` admin
//! consoles following that SKU's live stream (`GET /admin/live`, server-sent events),
//! alternating for `rounds` rounds, so the ratio compares phases of the same run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::contention::host::{bench_node_config, ActixHost, NodeDir};
use crate::contention::strategies::http::{customer_token, http_client};
use crate::stats::{summarise, Summary};

pub const HOT_SKU: &str = "CONSOLE-HOT";
const HOT_STOCK: i64 = 100_000_000;
const WARM_UP: Duration = Duration::from_secs(2);

pub struct Options {
    pub mysql_server_url: String,
    pub database: String,
    /// Concurrent checkout clients (closed loop).
    pub clients: usize,
    /// Live consoles open in the watched phases.
    pub consoles: usize,
    pub duration: Duration,
    pub rounds: usize,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub round: usize,
    pub consoles: usize,
    pub checkouts: Summary,
    pub failures: u64,
    /// `stock` events the consoles received during the phase (proof they were live).
    pub console_stock_events: u64,
    pub console_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_at: String,
    pub cores: usize,
    pub database_version: String,
    pub clients: usize,
    pub consoles: usize,
    pub duration_secs: f64,
    pub phases: Vec<Phase>,
    /// Mean checkouts/s without consoles, and with them.
    pub without_consoles_per_sec: f64,
    pub with_consoles_per_sec: f64,
    /// with / without.
    pub ratio: f64,
}

struct Node {
    base: String,
    _data_dir: NodeDir,
    _host: ActixHost,
}

const ADMIN_PASSWORD: &str = "bench admin password";

async fn recreate_database(server_url: &str, name: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut admin = sqlx::mysql::MySqlConnection::connect(server_url).await?;
    for statement in [
        format!("DROP DATABASE IF EXISTS `{name}`"),
        format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
    ] {
        sqlx::Executor::execute(&mut admin, statement.as_str()).await?;
    }
    admin.close().await?;
    Ok(())
}

async fn database_version(url: &str) -> String {
    use sqlx::Connection;
    let Ok(mut connection) = sqlx::mysql::MySqlConnection::connect(url).await else {
        return "unknown".to_owned();
    };
    sqlx::query_scalar::<_, String>("SELECT VERSION()")
        .fetch_one(&mut connection)
        .await
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// A node with an admin, the hot product and its stock, made inside its actix system.
async fn start_node(options: &Options, admin_email: String) -> anyhow::Result<Node> {
    let (mut config, data_dir) = bench_node_config(
        format!(
            "{}/{}",
            options.mysql_server_url.trim_end_matches('/'),
            options.database
        ),
        options.pool_size,
        format!(
            "{}{}",
            uuid::Uuid::now_v7().simple(),
            uuid::Uuid::now_v7().simple()
        ),
    )?;
    // The consoles' sign-ins and the customer's come from one address.
    config.auth.login_max_attempts_per_ip = 10_000;
    let (host, port) = ActixHost::start(move || async move {
        let application = souk_api::Application::build(config).await?;
        let state = application.state();
        let port = application.port();
        let registration = souk_actors::identity::users::Registration::parse(
            &admin_email,
            ADMIN_PASSWORD,
            "Bench Admin",
        )
        .map_err(|error| anyhow::anyhow!("bench admin: {error}"))?;
        let (admin, _) = state
            .users
            .create_or_promote_admin(registration)
            .await
            .map_err(|error| anyhow::anyhow!("cannot create the bench admin: {error}"))?;
        let input = serde_json::from_value(json!({
            "sku": HOT_SKU,
            "name": "Console bench hot item",
            "price": {"amount": 1999, "currency": "EUR"},
            "status": "active",
        }))?;
        state
            .catalog
            .create_product(input)
            .await
            .map_err(|error| anyhow::anyhow!("cannot create the hot product: {error}"))?;
        state
            .inventory
            .adjust(
                HOT_SKU,
                souk_actors::inventory::service::StockChange {
                    on_hand: souk_actors::inventory::service::OnHandChange::By(HOT_STOCK),
                    reason: "bench stock".to_owned(),
                    low_stock_threshold: None,
                    request_key: None,
                },
                &admin.id,
            )
            .await
            .map_err(|error| anyhow::anyhow!("cannot stock the hot product: {error}"))?;
        actix_rt::spawn(application.run_until_stopped());
        Ok(port)
    })
    .await?;
    Ok(Node {
        base: format!("http://127.0.0.1:{port}"),
        _data_dir: data_dir,
        _host: host,
    })
}

fn cookie_value(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|line| line.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(found, value)| *found == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// Signs in through the console's form, as a browser does; the session cookie.
async fn console_session(
    client: &reqwest::Client,
    base: &str,
    email: &str,
) -> anyhow::Result<String> {
    let page = client.get(format!("{base}/admin/login")).send().await?;
    let form_cookie = cookie_value(&page, "souk_console_signin")
        .ok_or_else(|| anyhow::anyhow!("the sign-in page set no cookie"))?;
    let html = page.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .ok_or_else(|| anyhow::anyhow!("the sign-in page has no csrf field"))?
        + marker.len();
    let csrf = html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned();
    let signed_in = client
        .post(format!("{base}/admin/login"))
        .header("cookie", format!("souk_console_signin={form_cookie}"))
        .form(&[
            ("email", email),
            ("password", ADMIN_PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await?;
    cookie_value(&signed_in, "souk_console")
        .ok_or_else(|| anyhow::anyhow!("console sign-in failed: {}", signed_in.status()))
}

#[derive(Default)]
struct ConsoleCounters {
    stock_events: AtomicU64,
    bytes: AtomicU64,
}

/// Opens `count` live streams following the hot SKU; they read until aborted.
async fn open_consoles(
    base: &str,
    session: &str,
    count: usize,
    counters: Arc<ConsoleCounters>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let client = http_client()?;
    let mut streams = Vec::with_capacity(count);
    for _ in 0..count {
        let response = client
            .get(format!("{base}/admin/live?skus={HOT_SKU}"))
            .header("cookie", format!("souk_console={session}"))
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == StatusCode::OK,
            "a console stream was refused: {}",
            response.status()
        );
        let counters = counters.clone();
        streams.push(tokio::spawn(async move {
            let mut response = response;
            while let Ok(Some(chunk)) = response.chunk().await {
                counters
                    .bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                let events = String::from_utf8_lossy(&chunk)
                    .matches("event: stock")
                    .count();
                counters
                    .stock_events
                    .fetch_add(events as u64, Ordering::Relaxed);
            }
        }));
    }
    Ok(streams)
}

/// Closed-loop checkouts for `duration`; latencies of the accepted ones and failures.
async fn checkouts(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    clients: usize,
    duration: Duration,
) -> (Vec<Duration>, u64, Duration) {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, base, token) = (client.clone(), base.to_owned(), token.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = client
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", uuid::Uuid::now_v7().simple().to_string())
                    .json(&json!({"items": [{"sku": HOT_SKU, "quantity": 1}]}))
                    .send()
                    .await;
                match response {
                    Ok(response) if response.status() == StatusCode::CREATED => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        if let Ok((mut own, own_failures)) = worker.await {
            latencies.append(&mut own);
            failures += own_failures;
        }
    }
    (latencies, failures, started.elapsed())
}

pub async fn bench(options: &Options) -> anyhow::Result<Report> {
    sqlx::any::install_default_drivers();
    let started_at = chrono::Utc::now().to_rfc3339();
    recreate_database(&options.mysql_server_url, &options.database).await?;
    let database_url = format!(
        "{}/{}",
        options.mysql_server_url.trim_end_matches('/'),
        options.database
    );
    let admin_email = format!("bench-admin-{}@example.com", uuid::Uuid::now_v7().simple());
    let node = start_node(options, admin_email.clone()).await?;
    let client = http_client()?;
    let token = customer_token(&client, &node.base).await?;
    // The session cookie comes with the sign-in's redirect, which must not be followed.
    let browser_like = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(souk_api::http::CLIENT_IDLE)
        .build()?;
    let session = console_session(&browser_like, &node.base, &admin_email).await?;
    let mut phases = Vec::new();
    for round in 1..=options.rounds {
        for consoles in [0, options.consoles] {
            let counters = Arc::new(ConsoleCounters::default());
            let streams = open_consoles(&node.base, &session, consoles, counters.clone()).await?;
            checkouts(&client, &node.base, &token, options.clients, WARM_UP).await;
            let events_before = counters.stock_events.load(Ordering::Relaxed);
            let bytes_before = counters.bytes.load(Ordering::Relaxed);
            let (latencies, failures, wall) = checkouts(
                &client,
                &node.base,
                &token,
                options.clients,
                options.duration,
            )
            .await;
            let phase = Phase {
                round,
                consoles,
                checkouts: summarise(latencies, wall),
                failures,
                console_stock_events: counters.stock_events.load(Ordering::Relaxed) - events_before,
                console_bytes: counters.bytes.load(Ordering::Relaxed) - bytes_before,
            };
            eprintln!(
                "round {round}, {consoles} consoles: {:.0} checkouts/s, p99 {:.1} ms, {} failures, {} stock events to consoles",
                phase.checkouts.throughput_per_sec, phase.checkouts.p99_ms, failures, phase.console_stock_events
            );
            for stream in streams {
                stream.abort();
            }
            phases.push(phase);
        }
    }
    let mean = |watched: bool| {
        let rates: Vec<f64> = phases
            .iter()
            .filter(|phase| (phase.consoles > 0) == watched)
            .map(|phase| phase.checkouts.throughput_per_sec)
            .collect();
        rates.iter().sum::<f64>() / rates.len().max(1) as f64
    };
    let without = mean(false);
    let with = mean(true);
    Ok(Report {
        started_at,
        cores: std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(1),
        database_version: database_version(&database_url).await,
        clients: options.clients,
        consoles: options.consoles,
        duration_secs: options.duration.as_secs_f64(),
        phases,
        without_consoles_per_sec: without,
        with_consoles_per_sec: with,
        ratio: if without > 0.0 { with / without } else { 0.0 },
    })
}

pub fn markdown(report: &Report, command: &str) -> String {
    let mut text = format!(
        "# Checkout with open admin consoles\n\n`{command}` — {} cores, {}; {} closed-loop \
         checkout clients on one hot SKU, {} s per phase after a 2 s warm-up; started {}.\n\n\
         | round | live consoles | checkouts/s | p50 ms | p99 ms | failures | stock events to consoles |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
        report.cores,
        report.database_version,
        report.clients,
        report.duration_secs,
        report.started_at
    );
    for phase in &report.phases {
        text.push_str(&format!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {} | {} |\n",
            phase.round,
            phase.consoles,
            phase.checkouts.throughput_per_sec,
            phase.checkouts.p50_ms,
            phase.checkouts.p99_ms,
            phase.failures,
            phase.console_stock_events
        ));
    }
    text.push_str(&format!(
        "\nMean: {:.0} checkouts/s without consoles, {:.0} with {} — ratio **{:.2}**.\n",
        report.without_consoles_per_sec,
        report.with_consoles_per_sec,
        report.consoles,
        report.ratio
    ));
    text
}
