//! The admin console, in a real headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromedriver`, provisioned by `scripts/test-services`); `http` sends
//! it what a browser would never send; `stock_pages` reads its stock pages over plain
//! HTTP; `screenshots` makes the README's pictures.

mod http;
mod screenshots;
mod stock_pages;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------ the browser

fn tool(variable: &str, name: &str) -> String {
    if let Ok(path) = std::env::var(variable) {
        return path;
    }
    for directory in ["/usr/bin", "/usr/local/bin", "/usr/lib/chromium"] {
        let candidate = format!("{directory}/{name}");
        if std::path::Path::new(&candidate).exists() {
            return candidate;
        }
    }
    panic!("{name} not found: run scripts/test-services (it installs Debian's chromium and chromium-driver) or set {variable}");
}

/// A chromedriver of this test on a loopback port, and the browser it drives; both
/// are stopped when dropped.
struct Browser {
    client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    async fn start() -> Self {
        let port = dead_port();
        // A process group of its own holds chromedriver and the browser it starts, so a
        // failing test still stops both.
        let driver = Command::new(tool("SOUK_TEST_CHROMEDRIVER", "chromedriver"))
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = TempDir::new();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": tool("SOUK_TEST_CHROMIUM", "chromium"),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.0.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("open a chromium session");
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    async fn stop(self) {
        let _ = self.client.clone().close().await;
    }

    /// Ends chromedriver's process group: the driver and every browser process.
    fn kill_group(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.wait();
    }

    async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"))
            .text()
            .await
            .unwrap()
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} to click: {error}"))
            .click()
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Waits until `css` holds text satisfying `check`; the text it last saw otherwise.
    async fn wait_text(&self, css: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} still reads {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn sign_in(&self, app: &TestApp, email: &str, password: &str) {
        self.client.goto(&app.url("/admin/login")).await.unwrap();
        self.fill("input[name=email]", email).await;
        self.fill("input[name=password]", password).await;
        self.click("form.stacked button[type=submit]").await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill_group();
    }
}

// ------------------------------------------------------------------ the domain, over REST

async fn product(app: &TestApp, admin: &Session, sku: &str, name: &str) {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": name, "price": {"amount": 1250, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
}

async fn rest_stock(app: &TestApp, admin: &Session, sku: &str) -> (i64, i64) {
    let stock: Value = app
        .get_as(
            &format!("/api/v1/admin/inventory/{sku}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    (
        stock["on_hand"].as_i64().unwrap(),
        stock["reserved"].as_i64().unwrap(),
    )
}

async fn place_order(app: &TestApp, customer: &Session, sku: &str, quantity: i64) -> String {
    let response = app
        .post_json_as(
            "/api/v1/orders",
            &customer.access_token,
            &json!({"items": [{"sku": sku, "quantity": quantity}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let order: Value = response.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

// ------------------------------------------------------------------ in the browser

#[actix_web::test]
async fn an_admin_watches_and_runs_stock_in_the_browser() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer("shopper").await;
    product(&app, &admin, "CONSOLE-LAMP", "Brass desk lamp").await;
    product(&app, &admin, "CONSOLE-RUG", "Wool rug").await;
    let browser = Browser::start().await;

    // Signed out, the console sends the browser to its sign-in page.
    browser.client.goto(&app.url("/admin/stock")).await.unwrap();
    assert_eq!(browser.path().await, "/admin/login");
    browser.sign_in(&app, &admin.email, PASSWORD).await;
    browser.wait_text("h1", |text| text == "Stock").await;

    // Find the SKU and open it.
    browser.fill("input[name=q]", "lamp").await;
    browser.click("form.filters button[type=submit]").await;
    browser
        .wait_text("#stock-table tbody", |text| {
            text.contains("CONSOLE-LAMP") && !text.contains("CONSOLE-RUG")
        })
        .await;
    browser
        .click("#stock-table a[href='/admin/stock/CONSOLE-LAMP']")
        .await;
    browser
        .wait_text("h1", |text| text.starts_with("CONSOLE-LAMP"))
        .await;

    // Adjust it: ten delivered.
    browser.fill("#adjust input[name=amount]", "10").await;
    browser
        .fill("#adjust input[name=reason]", "delivery 42")
        .await;
    browser.click("#adjust button[type=submit]").await;
    browser
        .wait_text(".notice", |text| text.contains("committed"))
        .await;
    assert_eq!(browser.text("dd[data-field=on_hand]").await, "10");
    assert!(browser.text("#ledger").await.contains("delivery 42"));
    assert_eq!(rest_stock(&app, &admin, "CONSOLE-LAMP").await, (10, 0));

    // A reservation made through the REST API appears on the open page, without a
    // reload (the marker set on this page survives).
    browser
        .wait_text("#live-status", |text| text == "live")
        .await;
    browser
        .client
        .execute("window.soukMarker = 'same page'; return true;", vec![])
        .await
        .unwrap();
    let order_id = place_order(&app, &customer, "CONSOLE-LAMP", 3).await;
    browser
        .wait_text("dd[data-field=reserved]", |text| text == "3")
        .await;
    browser
        .wait_text("dd[data-field=available]", |text| text == "7")
        .await;
    browser
        .wait_text("#reservations", |text| text.contains(&order_id))
        .await;
    let marker = browser
        .client
        .execute("return window.soukMarker || null;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, json!("same page"), "the page was reloaded");

    // Setting on hand below what is reserved is refused by the actor, in plain words.
    browser.click("#adjust input[value=set]").await;
    browser.fill("#adjust input[name=amount]", "2").await;
    browser
        .fill("#adjust input[name=reason]", "count correction")
        .await;
    browser.click("#adjust button[type=submit]").await;
    let refusal = browser.wait_text(".problem", |text| !text.is_empty()).await;
    assert!(
        refusal.contains("this would leave 2 on hand, but 3 units are reserved"),
        "{refusal}"
    );
    assert_eq!(browser.text("dd[data-field=on_hand]").await, "10");
    assert_eq!(rest_stock(&app, &admin, "CONSOLE-LAMP").await, (10, 3));

    // The hot panel ranks the SKU by its reservations of the last minute.
    browser.client.goto(&app.url("/admin/stock")).await.unwrap();
    browser
        .wait_text("#hot-skus", |text| text.contains("CONSOLE-LAMP"))
        .await;
    assert_eq!(
        browser
            .text("#stock-table tr[data-sku=CONSOLE-LAMP] [data-field=available]")
            .await,
        "7"
    );

    // Paid, the order is shipped from its page.
    let paid = app
        .post_json_as(
            &format!("/api/v1/orders/{order_id}/pay"),
            &customer.access_token,
            &json!({"payment_method": "test-card-ok"}),
        )
        .await;
    assert_eq!(paid.status(), StatusCode::OK);
    browser
        .client
        .goto(&app.url("/admin/orders?status=paid"))
        .await
        .unwrap();
    browser
        .click(&format!("#orders-table a[href='/admin/orders/{order_id}']"))
        .await;
    browser
        .wait_text("#order-status", |text| text == "paid")
        .await;
    browser.click("#ship").await;
    browser
        .wait_text(".notice", |text| text.contains("shipped"))
        .await;
    assert_eq!(browser.text("#order-status").await, "shipped");
    assert!(browser.text("#history").await.contains("shipped"));
    let order: Value = app
        .get_as(
            &format!("/api/v1/admin/orders/{order_id}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "shipped");

    // A form stripped of its CSRF token is refused and changes nothing.
    browser
        .client
        .goto(&app.url("/admin/stock/CONSOLE-RUG"))
        .await
        .unwrap();
    browser.fill("#adjust input[name=amount]", "5").await;
    browser.fill("#adjust input[name=reason]", "forged").await;
    browser
        .client
        .execute(
            "document.querySelector('#adjust input[name=csrf]').remove(); return true;",
            vec![],
        )
        .await
        .unwrap();
    browser.click("#adjust button[type=submit]").await;
    let refused = browser.wait_text(".problem", |text| !text.is_empty()).await;
    assert!(refused.contains("security token"), "{refused}");
    assert_eq!(rest_stock(&app, &admin, "CONSOLE-RUG").await, (0, 0));

    // Signing out ends the session: the console is closed again.
    browser.client.goto(&app.url("/admin/stock")).await.unwrap();
    browser.click("form.signout button").await;
    browser.wait_text("h1", |text| text == "Souk admin").await;
    browser.client.goto(&app.url("/admin/stock")).await.unwrap();
    assert_eq!(browser.path().await, "/admin/login");

    // A customer's credentials do not open it.
    browser.sign_in(&app, &customer.email, PASSWORD).await;
    let refused = browser.wait_text(".problem", |text| !text.is_empty()).await;
    assert!(refused.contains("for admins only"), "{refused}");
    browser
        .client
        .goto(&app.url("/admin/orders"))
        .await
        .unwrap();
    assert_eq!(browser.path().await, "/admin/login");

    browser.stop().await;
}
