//! The console over plain HTTP: what a browser of an admin would never send (forged,
//! tampered, foreign and revoked cookies, forms without their token), customers, the
//! shared login rate limits, cookie attributes and the policy header.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{place_order, product, rest_stock};
use crate::helpers::*;

/// The `name=value` of each `Set-Cookie`, and the header lines themselves.
fn set_cookies(response: &reqwest::Response) -> Vec<(String, String, String)> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|line| {
            let pair = line.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_owned(), value.to_owned(), line.to_owned()))
        })
        .collect()
}

fn cookie_named(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    set_cookies(response)
        .into_iter()
        .find(|(found, value, _)| found == name && !value.is_empty())
        .map(|(_, value, line)| (value, line))
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    hidden_field(html, "csrf")
}

/// The value of the page's first hidden field `name`.
fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

struct SignInAttempt {
    status: StatusCode,
    location: Option<String>,
    /// The session cookie's value, when one was set.
    session: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

/// Signs in through the console's form, as a browser would.
async fn console_sign_in(
    app: &TestApp,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
) -> SignInAttempt {
    console_sign_in_to(app, email, password, headers, "/admin/stock").await
}

/// Signs in through the console's form with `next` as the page to go to after.
async fn console_sign_in_to(
    app: &TestApp,
    email: &str,
    password: &str,
    headers: &[(&str, &str)],
    next: &str,
) -> SignInAttempt {
    let page = app.get("/admin/login").await;
    assert_eq!(page.status(), StatusCode::OK);
    let (form_cookie, _) = cookie_named(&page, "souk_console_signin").expect("the sign-in cookie");
    let csrf = csrf_field(&page.text().await.unwrap());
    let mut request = app
        .client
        .post(app.url("/admin/login"))
        .header("cookie", format!("souk_console_signin={form_cookie}"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", &csrf),
            ("next", next),
        ]);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|value| value.to_str().unwrap().to_owned());
    let cookie = cookie_named(&response, "souk_console");
    SignInAttempt {
        status,
        location,
        session: cookie.as_ref().map(|(value, _)| value.clone()),
        set_cookie: cookie.map(|(_, line)| line),
        body: response.text().await.unwrap(),
    }
}

pub(super) async fn signed_in(app: &TestApp, email: &str) -> String {
    let attempt = console_sign_in(app, email, PASSWORD, &[]).await;
    assert_eq!(attempt.status, StatusCode::SEE_OTHER, "{}", attempt.body);
    attempt.session.expect("a session cookie")
}

pub(super) async fn get_with(app: &TestApp, path: &str, session: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("cookie", format!("souk_console={session}"))
        .send()
        .await
        .unwrap()
}

async fn post_with(
    app: &TestApp,
    path: &str,
    session: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("cookie", format!("souk_console={session}"))
        .form(form)
        .send()
        .await
        .unwrap()
}

fn to_sign_in(response: &reqwest::Response) -> bool {
    response.status() == StatusCode::SEE_OTHER
        && response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            == Some("/admin/login")
}

pub(super) fn assert_strict_csp(response: &reqwest::Response) {
    let policy = response
        .headers()
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("no CSP on {}", response.url()))
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe"), "{policy}");
    assert_eq!(response.headers().get("x-frame-options").unwrap(), "DENY");
}

#[actix_web::test]
async fn forged_tampered_foreign_and_signed_out_cookies_get_nothing() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    product(&app, &admin, "SECRET-SKU", "Guarded item").await;

    let nothing = app.get("/admin/stock").await;
    assert!(to_sign_in(&nothing));
    assert!(to_sign_in(&app.get("/admin/live").await));
    assert!(to_sign_in(&app.get("/admin/stock/SECRET-SKU").await));

    for forged in ["forged", "eyJ1IjoiYWRtaW4ifQ", "%00%00"] {
        let response = get_with(&app, "/admin/stock", forged).await;
        assert!(to_sign_in(&response), "cookie {forged}");
        assert!(!response.text().await.unwrap().contains("SECRET-SKU"));
    }

    let session = signed_in(&app, &admin.email).await;
    let page = get_with(&app, "/admin/stock", &session).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_strict_csp(&page);
    assert!(page.text().await.unwrap().contains("SECRET-SKU"));

    // The other sections open too: the system page's supervision tree, the cluster's
    // single node.
    let system = get_with(&app, "/admin/system", &session).await;
    assert_eq!(system.status(), StatusCode::OK);
    let system = system.text().await.unwrap();
    assert!(
        system.contains("Supervision tree")
            && system.contains("sku actors")
            && system.contains("outbox-relay"),
        "{system}"
    );
    let cluster = get_with(&app, "/admin/cluster", &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(cluster.contains("Single node."));

    // One character changed, and the cookie no longer authenticates.
    let mut tampered = session.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(to_sign_in(&get_with(&app, "/admin/stock", &tampered).await));

    // A genuine cookie of a node with another key is a forgery here.
    let other = spawn_app_with(souk_db::testing::TestBackend::Sqlite, |config| {
        config.jwt.secret = Some(souk_api::config::Secret::new(
            "another-secret-0123456789abcdef0123456789",
        ));
    })
    .await;
    let other_admin = other.admin().await;
    let foreign = signed_in(&other, &other_admin.email).await;
    assert_eq!(
        get_with(&other, "/admin/stock", &foreign).await.status(),
        StatusCode::OK
    );
    assert!(to_sign_in(&get_with(&app, "/admin/stock", &foreign).await));

    // Signing out ends the session on the server: the old cookie, replayed, is refused.
    let stock = get_with(&app, "/admin/stock", &session).await;
    let csrf = csrf_field(&stock.text().await.unwrap());
    let out = post_with(&app, "/admin/logout", &session, &[("csrf", &csrf)]).await;
    assert!(to_sign_in(&out));
    assert!(to_sign_in(&get_with(&app, "/admin/stock", &session).await));

    // A password change through the API ends the admin's other sessions, the
    // console's among them.
    let again = signed_in(&app, &admin.email).await;
    assert_eq!(
        get_with(&app, "/admin/orders", &again).await.status(),
        StatusCode::OK
    );
    let changed = app
        .post_json_as(
            "/api/v1/auth/password",
            &admin.access_token,
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert!(to_sign_in(&get_with(&app, "/admin/orders", &again).await));

    // A disabled admin is out at once, whatever the cookie says.
    let boss = app.admin().await;
    let boss_console = signed_in(&app, &boss.email).await;
    let deputy = app.admin().await;
    let deputy_console = signed_in(&app, &deputy.email).await;
    app.state
        .users
        .set_status(
            &boss.id,
            &deputy.id,
            souk_actors::identity::UserStatus::Disabled,
        )
        .await
        .unwrap();
    assert!(to_sign_in(
        &get_with(&app, "/admin/orders", &deputy_console).await
    ));
    assert_eq!(
        get_with(&app, "/admin/orders", &boss_console)
            .await
            .status(),
        StatusCode::OK
    );
}

/// A `next` with a control character (or anything else a `Location` cannot carry) is
/// not followed: the redirect goes to the stock page, never a 500.
#[actix_web::test]
async fn a_next_page_that_cannot_be_a_location_falls_back_to_the_stock_page() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    for next in [
        "/admin/a\nb",
        "/admin/a\rb",
        "/admin/a\u{7f}b",
        "/admin/caf\u{e9}",
    ] {
        let attempt = console_sign_in_to(&app, &admin.email, PASSWORD, &[], next).await;
        assert_eq!(
            attempt.status,
            StatusCode::SEE_OTHER,
            "{next:?}: {}",
            attempt.body
        );
        assert_eq!(
            attempt.location.as_deref(),
            Some("/admin/stock"),
            "{next:?}"
        );
    }
    let session = signed_in(&app, &admin.email).await;
    for query in [
        "/admin/a%0Ab",
        "/admin/a%0D%0ASet-Cookie:%20x=1",
        "/admin/a%00b",
        "/admin/a%7Fb",
    ] {
        let response = get_with(&app, &format!("/admin/login?next={query}"), &session).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{query}");
        assert_eq!(
            response.headers().get("location").unwrap(),
            "/admin/stock",
            "{query}"
        );
    }
    let followed = get_with(&app, "/admin/login?next=/admin/orders", &session).await;
    assert_eq!(followed.headers().get("location").unwrap(), "/admin/orders");
}

/// The adjust form carries an idempotency key given when the page is shown: the same
/// form sent twice (a double click, a resend) changes the stock once; the form of a
/// page shown again is a change of its own.
#[actix_web::test]
async fn an_adjust_form_sent_twice_changes_the_stock_once() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    product(&app, &admin, "TWICE-SKU", "Twice item").await;
    let session = signed_in(&app, &admin.email).await;
    let adjust = "/admin/stock/TWICE-SKU/adjust";
    let form_of = |html: &str| {
        vec![
            ("mode", "delta".to_owned()),
            ("amount", "5".to_owned()),
            ("reason", "delivery".to_owned()),
            ("csrf", csrf_field(html)),
            ("request", hidden_field(html, "request")),
        ]
    };
    let page = get_with(&app, "/admin/stock/TWICE-SKU", &session).await;
    let form = form_of(&page.text().await.unwrap());
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        let sent = post_with(&app, adjust, &session, &fields).await;
        assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(rest_stock(&app, &admin, "TWICE-SKU").await, (5, 0));

    let again = get_with(&app, "/admin/stock/TWICE-SKU", &session).await;
    let form = form_of(&again.text().await.unwrap());
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sent = post_with(&app, adjust, &session, &fields).await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);
    assert_eq!(rest_stock(&app, &admin, "TWICE-SKU").await, (10, 0));

    // A key that is not one the page gave is refused in words; nothing changes.
    let forged: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (*k, if *k == "request" { "not a key" } else { *v }))
        .collect();
    let refused = post_with(&app, adjust, &session, &forged).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("out of date"));
    assert_eq!(rest_stock(&app, &admin, "TWICE-SKU").await, (10, 0));
}

#[actix_web::test]
async fn every_form_needs_its_csrf_token() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let customer = app.customer("buyer").await;
    product(&app, &admin, "TOKEN-SKU", "Token item").await;
    let session = signed_in(&app, &admin.email).await;
    let page = get_with(&app, "/admin/stock/TOKEN-SKU", &session).await;
    let csrf = csrf_field(&page.text().await.unwrap());
    let adjust = "/admin/stock/TOKEN-SKU/adjust";
    let fields = [("mode", "delta"), ("amount", "4"), ("reason", "delivery")];

    let missing = post_with(&app, adjust, &session, &fields).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert_strict_csp(&missing);
    let forged_token = "x".repeat(43);
    let wrong = [fields.as_slice(), &[("csrf", forged_token.as_str())]].concat();
    assert_eq!(
        post_with(&app, adjust, &session, &wrong).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(rest_stock(&app, &admin, "TOKEN-SKU").await, (0, 0));

    // The same form with its token goes through.
    let right = [fields.as_slice(), &[("csrf", csrf.as_str())]].concat();
    let done = post_with(&app, adjust, &session, &right).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(rest_stock(&app, &admin, "TOKEN-SKU").await, (4, 0));

    // Order transitions and sign-out need it too.
    let order_id = place_order(&app, &customer, "TOKEN-SKU", 1).await;
    let cancel = format!("/admin/orders/{order_id}/cancel");
    let refused = post_with(&app, &cancel, &session, &[("reason", "no token")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let order: Value = app
        .get_as(
            &format!("/api/v1/admin/orders/{order_id}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "pending_payment");
    // With it, an illegal transition is refused in words, a legal one goes through.
    let ship = format!("/admin/orders/{order_id}/ship");
    let illegal = post_with(&app, &ship, &session, &[("csrf", csrf.as_str())]).await;
    assert_eq!(illegal.status(), StatusCode::CONFLICT);
    assert!(illegal.text().await.unwrap().contains("Refused:"));
    let cancelled = post_with(
        &app,
        &cancel,
        &session,
        &[("csrf", csrf.as_str()), ("reason", "customer asked")],
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    let order: Value = app
        .get_as(
            &format!("/api/v1/admin/orders/{order_id}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["history"][1]["reason"], "customer asked");
    assert_eq!(rest_stock(&app, &admin, "TOKEN-SKU").await, (4, 0));
    assert_eq!(
        post_with(&app, "/admin/logout", &session, &[])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get_with(&app, "/admin/stock", &session).await.status(),
        StatusCode::OK
    );

    // The sign-in form: its token must match the cookie its page set.
    let login_page = app.get("/admin/login").await;
    let (form_cookie, _) = cookie_named(&login_page, "souk_console_signin").unwrap();
    let login_csrf = csrf_field(&login_page.text().await.unwrap());
    let credentials = [("email", admin.email.as_str()), ("password", PASSWORD)];
    let without_token = app
        .client
        .post(app.url("/admin/login"))
        .header("cookie", format!("souk_console_signin={form_cookie}"))
        .form(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), StatusCode::FORBIDDEN);
    assert!(cookie_named(&without_token, "souk_console").is_none());
    let without_cookie = app
        .client
        .post(app.url("/admin/login"))
        .form(&[credentials.as_slice(), &[("csrf", login_csrf.as_str())]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(without_cookie.status(), StatusCode::FORBIDDEN);
    assert!(cookie_named(&without_cookie, "souk_console").is_none());
}

#[actix_web::test]
async fn customers_are_refused_and_sign_in_shares_the_api_rate_limits() {
    let app = spawn_app_with(souk_db::testing::TestBackend::Sqlite, |config| {
        config.auth.login_max_failures_per_account = 2;
    })
    .await;
    let admin = app.admin().await;
    let customer = app.customer("visitor").await;

    let refused = console_sign_in(&app, &customer.email, PASSWORD, &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.session.is_none());
    assert!(refused.body.contains("for admins only"));
    // A customer's API token opens nothing either: the console reads only its cookie.
    let bearer = app
        .client
        .get(app.url("/admin/stock"))
        .bearer_auth(&customer.access_token)
        .send()
        .await
        .unwrap();
    assert!(to_sign_in(&bearer));

    // The admin's cookie: HttpOnly, SameSite=Strict, scoped to /admin; Secure over TLS.
    let plain = console_sign_in(&app, &admin.email, PASSWORD, &[]).await;
    let line = plain.set_cookie.unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "{line}");
    assert_eq!(plain.location.as_deref(), Some("/admin/stock"));
    let tls = console_sign_in(
        &app,
        &admin.email,
        PASSWORD,
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert!(tls.set_cookie.unwrap().contains("Secure"));

    // Wrong passwords count against the account as API logins do, on both doors.
    for _ in 0..2 {
        let wrong = console_sign_in(&app, &admin.email, "not the password", &[]).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(wrong.body.contains("Wrong email or password"));
    }
    let limited = console_sign_in(&app, &admin.email, PASSWORD, &[]).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.session.is_none());
    assert_problem(app.login(&admin.email, PASSWORD).await, 429, "rate_limited").await;

    // Every console answer carries the policy, error pages and the sign-in page too.
    assert_strict_csp(&app.get("/admin/login").await);
    let missing = app.get("/admin/no-such-page").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_strict_csp(&missing);
    assert_strict_csp(&app.get("/admin/assets/console.js").await);
}
