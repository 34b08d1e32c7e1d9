//! Every link in every mail lands on a page that works: each link of each kind of mail
//! is followed on the running node (the mails name the public base URL; the test
//! points it at the node) and answers a 200 HTML page, and the forms on those pages do
//! what they say.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use crate::email::{email_settings, mail_with_subject, SmtpSink};
use crate::helpers::*;
use crate::orders::{act, place, product};

const BASE: &str = "http://shop.test";

/// Every link of a mail's text part, rewritten to the node under test.
fn links(app: &TestApp, mail: &Value) -> Vec<String> {
    let text = mail["text"].as_str().unwrap();
    let links: Vec<String> = text
        .split_whitespace()
        .filter(|word| word.starts_with(BASE))
        .map(|word| {
            word.trim_end_matches(['.', ',', ')'])
                .replacen(BASE, &app.address, 1)
        })
        .collect();
    assert!(!links.is_empty(), "no link in {text}");
    links
}

/// Opens a page as a browser would (following redirects) and checks it is a working,
/// unframeable HTML page; returns its text.
async fn open(url: &str) -> String {
    // A browser's client: it follows redirects (the test app's client does not).
    let response = crate::helpers::http_client().get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    let headers = response.headers().clone();
    let content_type = headers[reqwest::header::CONTENT_TYPE].to_str().unwrap();
    assert!(
        content_type.starts_with("text/html"),
        "{url}: {content_type}"
    );
    let policy = headers[reqwest::header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{url}: {policy}");
    assert!(
        headers.contains_key(reqwest::header::REFERRER_POLICY),
        "{url}"
    );
    response.text().await.unwrap()
}

/// Opens every link of a mail; returns the pages' text, joined.
async fn open_all(app: &TestApp, mail: &Value) -> String {
    let mut pages = String::new();
    for link in links(app, mail) {
        pages.push_str(&open(&link).await);
    }
    pages
}

/// Sends a page's form the way a browser does.
async fn submit(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let response = app
        .client
        .post(app.url(path))
        .form(fields)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/html"),
        "{path}: {content_type}"
    );
    (status, response.text().await.unwrap())
}

/// The `token` query value of a link.
fn token_of(link: &str) -> String {
    let url = reqwest::Url::parse(link).unwrap();
    url.query_pairs()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_else(|| panic!("no token in {link}"))
}

#[actix_web::test]
async fn every_link_in_every_mail_opens_a_working_page() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        email_settings(config, &sink);
    })
    .await;
    let admin = app.admin().await;

    // Welcome: the link shows a form; sending it verifies the address, once.
    let shopper = app.customer("links").await;
    let welcome = mail_with_subject(
        &sink,
        &shopper.email,
        "Welcome to Souk: please verify your email address",
    )
    .await;
    open_all(&app, &welcome).await;
    let verify_link = &links(&app, &welcome)[0];
    let page = open(verify_link).await;
    assert!(page.contains("Confirm my email address"), "{page}");
    let token = token_of(verify_link);
    let (status, page) = submit(&app, "/account/verify-email", &[("token", &token)]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let me: Value = app
        .get_as("/api/v1/users/me", &shopper.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true);
    let (status, page) = submit(&app, "/account/verify-email", &[("token", &token)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a spent token: {page}");

    // Order mails link to the order's page, signed for that order.
    product(&app, &admin, "LINK-1", 1500, 0).await;
    let adjusted = app
        .post_json_as(
            "/api/v1/admin/inventory/LINK-1/adjust",
            &admin.access_token,
            &json!({"delta": 10, "reason": "delivery", "low_stock_threshold": 9}),
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);
    let order = place(&app, &shopper, json!([{"sku": "LINK-1", "quantity": 2}])).await;
    let id = order["id"].as_str().unwrap();
    let placed = mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Order {id} received: awaiting payment"),
    )
    .await;
    open_all(&app, &placed).await;
    let order_link = links(&app, &placed)
        .into_iter()
        .find(|link| link.contains("/account/orders/"))
        .expect("the order link");
    let page = open(&order_link).await;
    assert!(page.contains("Waiting for payment"), "{page}");
    assert!(page.contains("LINK-1"), "{page}");
    let forged = order_link.replace("sig=", "sig=00");
    assert_eq!(
        app.client.get(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let paid = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": "test-card-ok"}),
    )
    .await;
    assert_eq!(paid.status(), StatusCode::OK);
    let receipt = mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Payment received for order {id}"),
    )
    .await;
    assert!(open_all(&app, &receipt)
        .await
        .contains("Paid: we are preparing it"));
    let shipped = act(
        &app,
        &admin.access_token,
        &format!("/api/v1/admin/orders/{id}/ship"),
        json!({}),
    )
    .await;
    assert_eq!(shipped.status(), StatusCode::OK);
    let shipping = mail_with_subject(&sink, &shopper.email, &format!("Order {id} shipped")).await;
    assert!(open_all(&app, &shipping).await.contains("on its way"));

    // The low-stock alert links to the SKU's console page (via sign-in).
    let alert = mail_with_subject(&sink, &admin.email, "Low stock: LINK-1").await;
    open_all(&app, &alert).await;

    // Password reset: the link's form sets the password; a weak one is refused there.
    let requested = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"email": shopper.email}),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let reset = mail_with_subject(&sink, &shopper.email, "Reset your Souk password").await;
    open_all(&app, &reset).await;
    let reset_link = &links(&app, &reset)[0];
    let form = open(reset_link).await;
    assert!(form.contains("new_password"));
    let hint = format!(
        "At least {} characters",
        souk_actors::identity::Password::MIN_CHARS
    );
    assert!(form.contains(&hint), "{form}");
    let token = token_of(reset_link);
    let (status, page) = submit(
        &app,
        "/account/reset-password",
        &[("token", &token), ("new_password", "short")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    let new_password = "a much longer passphrase";
    let (status, page) = submit(
        &app,
        "/account/reset-password",
        &[("token", &token), ("new_password", new_password)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        app.login(&shopper.email, new_password).await.status(),
        StatusCode::OK
    );

    // An email change: the new address gets the confirmation, the old one the notice.
    let relogged: Value = app
        .login(&shopper.email, new_password)
        .await
        .json()
        .await
        .unwrap();
    let token_now = relogged["access_token"].as_str().unwrap();
    let new_email = unique_email("links-moved");
    let changed = app
        .client
        .patch(app.url("/api/v1/users/me"))
        .bearer_auth(token_now)
        .json(&json!({"email": new_email, "current_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    let notice = mail_with_subject(
        &sink,
        &shopper.email,
        "Your Souk email address is about to change",
    )
    .await;
    assert!(notice["text"].as_str().unwrap().contains(&new_email));
    assert!(open_all(&app, &notice).await.contains("Send me a link"));
    let (status, page) = submit(
        &app,
        "/account/forgot-password",
        &[("email", &shopper.email)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let confirm = mail_with_subject(&sink, &new_email, "Confirm your new email address").await;
    open_all(&app, &confirm).await;
    let confirm_link = &links(&app, &confirm)[0];
    assert!(open(confirm_link).await.contains("Use this address"));
    let (status, page) = submit(
        &app,
        "/account/confirm-email",
        &[("token", &token_of(confirm_link))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        app.login(&new_email, new_password).await.status(),
        StatusCode::OK
    );

    // An admin created by an operator starts verified and got no mail asking for it.
    let admin_me: Value = app
        .get_as("/api/v1/users/me", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(admin_me["email_verified"], true);
    assert!(
        sink.mails_to(&admin.email)
            .iter()
            .all(|mail| mail["subject"] == "Low stock: LINK-1"),
        "{:?}",
        sink.mails_to(&admin.email)
    );
}

#[actix_web::test]
async fn account_pages_refuse_bad_input_with_a_page() {
    let app = spawn_app().await;
    // A page opened without its token, a form without its fields, and no such page.
    for (path, status) in [
        ("/account/verify-email", StatusCode::BAD_REQUEST),
        ("/account/confirm-email", StatusCode::BAD_REQUEST),
        ("/account/reset-password", StatusCode::BAD_REQUEST),
        ("/account/orders/not-an-order?sig=00", StatusCode::NOT_FOUND),
        (
            "/account/orders/01890000-0000-7000-8000-000000000000",
            StatusCode::BAD_REQUEST,
        ),
        ("/account/nowhere", StatusCode::NOT_FOUND),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), status, "{path}");
        let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
    }
    let (status, _) = submit(&app, "/account/verify-email", &[("nothing", "here")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = submit(&app, "/account/confirm-email", &[("token", "forged")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = submit(
        &app,
        "/account/reset-password",
        &[
            ("token", "forged"),
            ("new_password", "a long enough password"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = submit(
        &app,
        "/account/forgot-password",
        &[("email", "not an address")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the same answer for any input");
}
