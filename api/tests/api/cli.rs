//! The `souk` binary itself: config layering, clear config errors, admin creation from
//! standard input, migrations, and serve with graceful shutdown.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

pub(crate) fn souk(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_souk"));
    command.current_dir(data_dir);
    // Isolate from whatever SOUK_* the developer's shell has.
    for (key, _) in std::env::vars() {
        if key.starts_with("SOUK_") {
            command.env_remove(key);
        }
    }
    command
        .env("SOUK_DATA_DIR", data_dir.join("data"))
        .env("SOUK_BCRYPT_COST", "4")
        // Tests place many orders as one customer; the purchase limits have their own
        // test.
        .env("SOUK_ORDERS_MAX_UNPAID_ORDERS", "0")
        .env("SOUK_ORDERS_MAX_UNITS_PER_SKU", "0")
        // Many nodes run at once here: none may take the default operations port.
        .env("SOUK_OPS_ADDR", "127.0.0.1:0")
        .env_remove("RUST_LOG");
    command
}

/// Runs `souk admin create --email <email> --password-stdin` with `command`'s
/// environment, writing `password` to its standard input.
pub(crate) fn admin_create(
    mut command: Command,
    email: &str,
    password: &str,
) -> std::process::Output {
    let mut child = command
        .args(["admin", "create", "--email", email, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn config_layers_flags_over_environment_over_file() {
    let dir = TempDir::new();
    std::fs::write(
        dir.0.join("souk.toml"),
        "[http]\naddr = \"127.0.0.1:7001\"\n[auth]\nbcrypt_cost = 10\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let show = |extra_env: &[(&str, &str)], flags: &[&str]| {
        let output = souk(&dir.0)
            .args(["--config", "souk.toml"])
            .args(flags)
            .arg("config")
            .envs(extra_env.iter().copied())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        text.parse::<toml::Table>().unwrap()
    };
    let from_file = show(&[], &[]);
    assert_eq!(from_file["http"]["addr"].as_str(), Some("127.0.0.1:7001"));
    assert_eq!(
        from_file["auth"]["bcrypt_cost"].as_integer(),
        Some(4),
        "environment beats the file"
    );
    assert_eq!(from_file["log"]["format"].as_str(), Some("json"));
    let from_env = show(&[("SOUK_HTTP_ADDR", "127.0.0.1:7002")], &[]);
    assert_eq!(from_env["http"]["addr"].as_str(), Some("127.0.0.1:7002"));
    let from_flag = show(
        &[("SOUK_HTTP_ADDR", "127.0.0.1:7002")],
        &["--http-addr", "127.0.0.1:7003"],
    );
    assert_eq!(from_flag["http"]["addr"].as_str(), Some("127.0.0.1:7003"));
    // Defaults fill the rest.
    assert_eq!(from_file["jwt"]["issuer"].as_str(), Some("souk"));
}

#[test]
fn config_never_prints_secrets() {
    let dir = TempDir::new();
    let output = souk(&dir.0)
        .arg("config")
        .env(
            "SOUK_JWT_SECRET",
            "a-very-secret-signing-key-0123456789abcdef",
        )
        .env(
            "SOUK_DATABASE_URL",
            "mysql://souk:hunter2@db.internal:3306/souk",
        )
        .env("SOUK_REDIS_URL", "redis://:redispass@cache:6379")
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("secret = \"[redacted]\""), "{text}");
    assert!(
        text.contains("mysql://souk:[redacted]@db.internal:3306/souk"),
        "{text}"
    );
    for secret in ["a-very-secret", "hunter2", "redispass"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[test]
fn bad_config_fails_with_one_line_naming_the_setting() {
    let dir = TempDir::new();
    for (key, value, expected) in [
        // An old flat name is read as its setting; errors give the canonical name.
        (
            "SOUK_BCRYPT_COST",
            "lots",
            "auth.bcrypt_cost (SOUK_AUTH_BCRYPT_COST)",
        ),
        (
            "SOUK_BCRYPT_COST",
            "99",
            "auth.bcrypt_cost (SOUK_AUTH_BCRYPT_COST)",
        ),
        (
            "SOUK_HTTP_ADDR",
            "not-an-address",
            "http.addr (SOUK_HTTP_ADDR)",
        ),
        (
            "SOUK_DATABASE_URL",
            "postgres://x",
            "database.url (SOUK_DATABASE_URL)",
        ),
        ("SOUK_LOG_FORMAT", "xml", "log.format (SOUK_LOG_FORMAT)"),
        ("SOUK_JWT_SECRET", "short", "jwt.secret (SOUK_JWT_SECRET)"),
        ("SOUK_WORKERS", "0", "http.workers (SOUK_HTTP_WORKERS)"),
        ("SOUK_CPUS", "0", "node.cpus (SOUK_NODE_CPUS)"),
        ("SOUK_NODE_CPUS", "two", "node.cpus (SOUK_NODE_CPUS)"),
        (
            "SOUK_AUTH_LOGIN_MAX_ATTEMPTS_PER_IP",
            "0",
            "auth.login_max_attempts_per_ip (SOUK_AUTH_LOGIN_MAX_ATTEMPTS_PER_IP)",
        ),
        (
            "SOUK_AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT",
            "0",
            "auth.login_max_failures_per_account (SOUK_AUTH_LOGIN_MAX_FAILURES_PER_ACCOUNT)",
        ),
    ] {
        let output = souk(&dir.0).arg("serve").env(key, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{key}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(expected), "{key}={value}: {stderr}");
    }
    std::fs::write(dir.0.join("typo.toml"), "http_adr = \"127.0.0.1:1\"\n").unwrap();
    let output = souk(&dir.0)
        .args(["--config", "typo.toml", "config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("http_adr"));
    // Inside a section too.
    std::fs::write(dir.0.join("typo.toml"), "[http]\nadr = \"127.0.0.1:1\"\n").unwrap();
    let output = souk(&dir.0)
        .args(["--config", "typo.toml", "config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("adr"));
    // A command's flag out of its range is refused like a setting, not overflowed.
    let output = souk(&dir.0)
        .args(["email", "remind-unverified", "--older-than-hours"])
        .arg(u64::MAX.to_string())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--older-than-hours"));

    // Production mode refuses to invent a signing key.
    let output = souk(&dir.0)
        .arg("migrate")
        .env(
            "SOUK_DATABASE_URL",
            format!("{}/nonexistent", souk_db::testing::mysql_server_url()),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
}

#[test]
fn migrate_then_admin_create_reads_the_password_from_stdin() {
    let dir = TempDir::new();
    let migrated = souk(&dir.0).arg("migrate").output().unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(String::from_utf8_lossy(&migrated.stdout).contains("migrations applied (sqlite)"));
    assert!(dir.0.join("data/souk.db").exists());

    let create = |password: &str| admin_create(souk(&dir.0), "Root@Example.com", password);
    let too_short = create("short");
    assert!(!too_short.status.success());
    assert!(String::from_utf8_lossy(&too_short.stderr).contains("password"));

    let created = create("admin password 1");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(String::from_utf8_lossy(&created.stdout).contains("created admin root@example.com"));
    let promoted = create("another password");
    assert!(promoted.status.success());
    assert!(String::from_utf8_lossy(&promoted.stdout).contains("password is unchanged"));

    let help = souk(&dir.0)
        .args(["admin", "create", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("standard input"));
    let without_flag = souk(&dir.0)
        .args(["admin", "create", "--email", "x@example.com"])
        .output()
        .unwrap();
    assert!(
        !without_flag.status.success(),
        "--password-stdin is required"
    );
}

#[test]
fn serve_logs_its_address_serves_and_stops_on_sigterm() {
    let dir = TempDir::new();
    let (mut child, address, lines) = start_server(&dir.0);
    assert!(
        !address.ends_with(":0"),
        "the real port is logged: {address}"
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body: Value = runtime.block_on(async {
        let client = crate::helpers::http_client();
        let registered = client
            .post(format!("{address}/api/v1/auth/register"))
            .json(&serde_json::json!({"email": "cli@example.com", "password": PASSWORD, "name": "Cli"}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 201);
        // Serving starts before the search index's first build ends, and readiness
        // waits for it (longer on a loaded machine): poll as a readiness probe does.
        let readiness = || async {
            let body: Value = client
                .get(format!("{address}/readyz"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body
        };
        within(Duration::from_secs(30), "node ready", || async {
            let body = readiness().await;
            let ready = body["status"] == "ready";
            if !ready {
                eprintln!("not ready yet: {body}");
            }
            ready
        })
        .await;
        readiness().await
    });
    assert_eq!(body["status"], "ready", "{body}");
    assert!(
        dir.0.join("data/jwt-secret").exists(),
        "embedded mode keeps its generated key"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "graceful exit, got {status}");
            break;
        }
        assert!(Instant::now() < deadline, "souk did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|line| line.contains("souk stopped")),
        "{rest:?}"
    );
}

#[test]
fn seed_creates_a_searchable_catalog_and_is_resumable() {
    let dir = TempDir::new();
    let first = souk(&dir.0)
        .args(["seed", "--products", "40"])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("added 40 products"));
    let again = souk(&dir.0)
        .args(["seed", "--products", "60"])
        .output()
        .unwrap();
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("added 20 products"),
        "only the missing ones"
    );
    let same = souk(&dir.0)
        .args(["seed", "--products", "60"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&same.stdout).contains("added 0 products"));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.0.join("data/souk.db").display());
        let db = souk_db::Db::connect(&url, &souk_db::PoolSettings::default())
            .await
            .unwrap();
        let mut connection = db.pool().acquire().await.unwrap();
        let all = souk_db::catalog::products_after(&mut connection, None, 100)
            .await
            .unwrap();
        assert_eq!(all.len(), 60);
        assert!(all.iter().all(|row| row.product.sku.starts_with("SEED-")
            && row.product.price_amount > 0
            && row.product.category_id.is_some()));
        assert!(all
            .iter()
            .any(|row| row.attributes.iter().any(|(name, _)| name == "colour")));
        let categories = souk_db::catalog::list_categories(db.pool()).await.unwrap();
        assert_eq!(categories.len(), 13);
        // Every seeded batch announces its products to the nodes' search indexes.
        let announced: Vec<(String,)> =
            sqlx::query_as("SELECT payload FROM outbox_events WHERE topic = 'product.changed'")
                .fetch_all(db.pool())
                .await
                .unwrap();
        let announced_ids: usize = announced
            .iter()
            .map(|(payload,)| {
                serde_json::from_str::<serde_json::Value>(payload).unwrap()["ids"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(announced_ids, 60);
    });
}

pub(crate) type OutputLines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// Starts `souk serve` on a free port with JSON logs; returns the child, the address it
/// logged, and the rest of its output.
pub(crate) fn start_server(dir: &std::path::Path) -> (std::process::Child, String, OutputLines) {
    start_server_with(souk(dir))
}

/// `souk serve` on free ports with `command`'s environment, once it listens.
pub(crate) fn start_server_with(command: Command) -> (std::process::Child, String, OutputLines) {
    let (child, entry, lines) = start_server_logging(command);
    let address = entry["fields"]["address"].as_str().unwrap().to_owned();
    (child, address, lines)
}

/// `souk serve` on free ports with `command`'s environment and JSON logs, once it
/// listens; returns its `souk listening` entry (fields `address`, `grpc`, `ops`).
pub(crate) fn start_server_logging(
    mut command: Command,
) -> (std::process::Child, Value, OutputLines) {
    let mut child = command
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    if let Some(entry) = listening_entry(&mut lines) {
        return (child, entry, lines);
    }
    let _ = child.wait();
    panic!("souk exited without logging the address it listens on");
}

/// Waits until `child` (a `souk serve` spawned with piped stdout and stderr) logs that it
/// listens and returns that entry; keeps draining both pipes afterwards, so the process
/// never blocks on a full one. Panics with its stderr if it exits first.
pub(crate) fn wait_listening(mut child: Child, what: &str) -> (Child, Value) {
    let mut errors = child.stderr.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    if let Some(entry) = listening_entry(&mut lines) {
        std::thread::spawn(move || lines.for_each(drop));
        std::thread::spawn(move || std::io::copy(&mut errors, &mut std::io::sink()));
        return (child, entry);
    }
    let status = child.wait();
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut errors, &mut stderr);
    panic!("{what} exited without listening: {status:?}: {stderr}");
}

/// Reads a `souk serve` JSON log up to its `souk listening` entry; `None` if the
/// process ended first.
pub(crate) fn listening_entry(lines: &mut OutputLines) -> Option<Value> {
    lines
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
        .find(|entry| entry["fields"]["message"] == "souk listening")
}

/// Pretty logs are coloured only on a terminal: written to a pipe or a file they carry
/// no ANSI escape codes.
#[test]
fn pretty_logs_to_a_pipe_carry_no_colour_codes() {
    let dir = TempDir::new();
    let output = souk(&dir.0)
        .args(["migrate", "--log-format", "pretty"])
        .env("SOUK_LOG_FILTER", "debug")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains("db_migrate"),
        "the migration logs something: {logs}"
    );
    assert!(
        !logs.contains('\u{1b}'),
        "escape codes in piped logs: {logs:?}"
    );
}
