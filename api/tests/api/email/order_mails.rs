//! The mails an order sets off: the shopper's as the order is placed, paid, shipped,
//! cancelled (with the reason) and expired, relayed over JetStream on both engines, each
//! sent once and with product names escaped in HTML; the confirmation of an order whose
//! event a node of an earlier version wrote; and the admins' low-stock alert when an
//! order takes a SKU below its threshold.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{email_settings, mail_with_subject, settle, wait_until, SmtpSink};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(order_mails_follow_the_order);

async fn product(app: &TestApp, admin: &Session, sku: &str, name: &str, amount: i64) {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": name, "price": {"amount": amount, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let adjusted = app
        .post_json_as(
            &format!("/api/v1/admin/inventory/{sku}/adjust"),
            &admin.access_token,
            &json!({"delta": 50, "reason": "initial stock"}),
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);
}

async fn place(app: &TestApp, shopper: &Session, items: Value) -> String {
    let placed = app
        .post_json_as(
            "/api/v1/orders",
            &shopper.access_token,
            &json!({"items": items}),
        )
        .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let order: Value = placed.json().await.unwrap();
    order["id"].as_str().unwrap().to_owned()
}

/// Placed, paid, shipped, cancelled (with the reason) and expired, relayed over JetStream.
async fn order_mails_follow_the_order(backend: TestBackend) {
    let sink = SmtpSink::start();
    let app = spawn_app_with(backend, |config| {
        email_settings(config, &sink);
        config.nats.url = Some(nats_url());
    })
    .await;
    let admin = app.admin().await;
    let shopper = app.customer("buyer").await;
    product(&app, &admin, "MAIL-1", "<script>alert(1)</script>", 1999).await;
    product(&app, &admin, "MAIL-2", "Tea & biscuits", 250).await;

    let first = place(
        &app,
        &shopper,
        json!([{"sku": "MAIL-1", "quantity": 2}, {"sku": "MAIL-2", "quantity": 1}]),
    )
    .await;
    let placed = mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Order {first} received: awaiting payment"),
    )
    .await;
    let text = placed["text"].as_str().unwrap();
    let html = placed["html"].as_str().unwrap();
    assert!(
        text.contains("- 2 x <script>alert(1)</script> (MAIL-1) at EUR 19.99 = EUR 39.98"),
        "{text}"
    );
    assert!(
        text.contains("- 1 x Tea & biscuits (MAIL-2) at EUR 2.50 = EUR 2.50"),
        "{text}"
    );
    // No shipping method, no address: no shipping, no tax, the total is the subtotal.
    for total in [
        "Subtotal: EUR 42.48",
        "Shipping: EUR 0.00",
        "Tax (0%, included): EUR 0.00",
        "Total: EUR 42.48",
    ] {
        assert!(text.contains(total), "{text}");
    }
    assert!(
        text.contains(&format!("http://shop.test/account/orders/{first}?sig=")),
        "{text}"
    );
    assert!(
        !html.contains("<script>"),
        "the product name arrives as text: {html}"
    );
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("Tea &#38; biscuits") || html.contains("Tea &amp; biscuits"),
        "{html}"
    );
    assert!(html.contains("EUR 42.48"), "{html}");

    let paid = app
        .post_json_as(
            &format!("/api/v1/orders/{first}/pay"),
            &shopper.access_token,
            &json!({"payment_method": "test-card"}),
        )
        .await;
    assert_eq!(paid.status(), StatusCode::OK, "{:?}", paid.text().await);
    let receipt = mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Payment received for order {first}"),
    )
    .await;
    assert!(receipt["text"]
        .as_str()
        .unwrap()
        .contains("payment of EUR 42.48"));

    let shipped = app
        .post_json_as(
            &format!("/api/v1/admin/orders/{first}/ship"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(
        shipped.status(),
        StatusCode::OK,
        "{:?}",
        shipped.text().await
    );
    let shipping =
        mail_with_subject(&sink, &shopper.email, &format!("Order {first} shipped")).await;
    assert!(shipping["html"].as_str().unwrap().contains("is on its way"));

    let second = place(&app, &shopper, json!([{"sku": "MAIL-2", "quantity": 3}])).await;
    mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Order {second} received: awaiting payment"),
    )
    .await;
    let cancelled = app
        .post_json_as(
            &format!("/api/v1/orders/{second}/cancel"),
            &shopper.access_token,
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_eq!(
        cancelled.status(),
        StatusCode::OK,
        "{:?}",
        cancelled.text().await
    );
    let cancellation =
        mail_with_subject(&sink, &shopper.email, &format!("Order {second} cancelled")).await;
    assert!(
        cancellation["text"]
            .as_str()
            .unwrap()
            .contains("Reason: changed my mind"),
        "{cancellation}"
    );
    assert!(
        cancellation["html"]
            .as_str()
            .unwrap()
            .contains("Reason: changed my mind"),
        "{cancellation}"
    );

    let third = place(&app, &shopper, json!([{"sku": "MAIL-1", "quantity": 1}])).await;
    mail_with_subject(
        &sink,
        &shopper.email,
        &format!("Order {third} received: awaiting payment"),
    )
    .await;
    sqlx::query("UPDATE orders SET expires_at = 0 WHERE id = ?")
        .bind(&third)
        .execute(app.database.db.pool())
        .await
        .unwrap();
    let expiry = mail_with_subject(&sink, &shopper.email, &format!("Order {third} expired")).await;
    assert!(expiry["text"]
        .as_str()
        .unwrap()
        .contains("was not paid in time"));

    settle().await;
    let subjects: Vec<String> = sink
        .mails_to(&shopper.email)
        .iter()
        .map(|mail| mail["subject"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = subjects.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), subjects.len(), "no mail twice: {subjects:?}");
}

/// An `order.placed` written by a node of an earlier version carries neither the
/// reservations' deadline nor the tax rate: its confirmation is composed from the stored
/// order instead, and reads as the one composed from a current event's payload.
#[actix_web::test]
async fn an_earlier_versions_order_event_is_confirmed_from_the_stored_order() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| email_settings(config, &sink)).await;
    let admin = app.admin().await;
    let shopper = app.customer("upgraded").await;
    product(&app, &admin, "EARLIER-1", "Tea & biscuits", 250).await;
    product(&app, &admin, "EARLIER-2", "Kettle", 3999).await;
    let id = place(
        &app,
        &shopper,
        json!([{"sku": "EARLIER-1", "quantity": 3}, {"sku": "EARLIER-2", "quantity": 1}]),
    )
    .await;
    let subject = format!("Order {id} received: awaiting payment");
    let current = mail_with_subject(&sink, &shopper.email, &subject).await;

    let mut payload = app.events("order.placed", &id).await.remove(0);
    for field in ["expires_at", "tax_rate_bps"] {
        assert!(
            payload.as_object_mut().unwrap().remove(field).is_some(),
            "a current event carries {field}"
        );
    }
    let earlier = souk_db::outbox::OutboxEvent::new("order.placed", &id, &payload).unwrap();
    souk_db::outbox::append(app.database.db.pool(), &earlier)
        .await
        .unwrap();
    let confirmations = || {
        sink.mails_to(&shopper.email)
            .into_iter()
            .filter(|mail| mail["subject"] == subject)
            .collect::<Vec<_>>()
    };
    wait_until("the earlier event's confirmation", || {
        let count = confirmations().len();
        async move { count >= 2 }
    })
    .await;
    let from_stored = confirmations().remove(1);
    let text = from_stored["text"].as_str().unwrap();
    for expected in [
        "- 3 x Tea & biscuits (EARLIER-1) at EUR 2.50 = EUR 7.50",
        "- 1 x Kettle (EARLIER-2) at EUR 39.99 = EUR 39.99",
        "the items stay reserved for you until",
        "Total: EUR 47.49",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    assert_eq!(from_stored["text"], current["text"]);
    assert_eq!(from_stored["html"], current["html"]);
}

#[actix_web::test]
async fn admins_get_low_stock_alerts() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| email_settings(config, &sink)).await;
    let admin = app.admin().await;
    let shopper = app.customer("hoarder").await;
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": "LOW-1", "name": "Scarce", "price": {"amount": 500, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let adjusted = app
        .post_json_as(
            "/api/v1/admin/inventory/LOW-1/adjust",
            &admin.access_token,
            &json!({"delta": 10, "low_stock_threshold": 5, "reason": "initial stock"}),
        )
        .await;
    assert_eq!(adjusted.status(), StatusCode::OK);
    place(&app, &shopper, json!([{"sku": "LOW-1", "quantity": 6}])).await;
    let alert = mail_with_subject(&sink, &admin.email, "Low stock: LOW-1").await;
    let text = alert["text"].as_str().unwrap();
    assert!(
        text.contains("Stock of LOW-1 fell below its threshold: 4 available, threshold 5."),
        "{text}"
    );
    assert!(
        text.contains("http://shop.test/admin/stock/LOW-1"),
        "{text}"
    );
    assert!(alert["html"]
        .as_str()
        .unwrap()
        .contains("<strong>LOW-1</strong>"));
    assert!(sink
        .mails_to(&shopper.email)
        .iter()
        .all(|mail| mail["subject"] != "Low stock: LOW-1"));
}
