//! Clients that send their headers and then trickle the body: each is cut off once
//! `http.body_read_timeout_secs` has passed since the request started.

use std::time::{Duration, Instant};

use souk_db::testing::TestBackend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const BODY: &[u8] = br#"{"email": "slow@example.com", "password": "correct horse battery"}"#;

/// The head of a login request; `extra` is more header lines, each ending in CRLF.
fn request_head(extra: &str) -> String {
    format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}\r\n",
        BODY.len()
    )
}

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://").to_owned();
    TcpStream::connect(address)
        .await
        .expect("connect to the REST port")
}

/// Everything the server sends until it closes the connection (or `limit` passes,
/// which fails the test: the server did not close).
async fn read_until_closed(reader: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(limit, reader.read_to_end(&mut received))
        .await
        .expect("the server closes the connection")
        .expect("read the answer");
    String::from_utf8_lossy(&received).into_owned()
}

#[actix_web::test]
async fn a_body_trickled_at_one_byte_a_second_is_cut_off() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.http.body_read_timeout_secs = 2;
    })
    .await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    let started = Instant::now();
    // A keep-alive request: closing the connection is the server's own decision.
    writer.write_all(request_head("").as_bytes()).await.unwrap();
    // One byte a second: the whole body would take over a minute.
    let trickle = actix_web::rt::spawn(async move {
        for byte in BODY {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let answer = read_until_closed(&mut reader, Duration::from_secs(15)).await;
    let elapsed = started.elapsed();
    trickle.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(lower.contains("connection: close"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(6),
        "cut off after {elapsed:?}"
    );
}

#[actix_web::test]
async fn a_body_that_arrives_within_the_deadline_is_served() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.http.body_read_timeout_secs = 2;
    })
    .await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    writer
        .write_all(request_head("Connection: close\r\n").as_bytes())
        .await
        .unwrap();
    // Two halves, a little apart: slow, but well within the deadline.
    let (first, second) = BODY.split_at(BODY.len() / 2);
    writer.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    writer.write_all(second).await.unwrap();
    let answer = read_until_closed(&mut reader, Duration::from_secs(10)).await;
    // The login itself is refused (no such account), which proves the body was read.
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.contains(r#""code":"invalid_credentials""#),
        "{answer}"
    );
}
