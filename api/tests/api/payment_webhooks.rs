//! The payment provider's webhook over HTTP: the test double's asynchronous capture
//! and refund end to end, each event applied once, refunds bounded by the capture,
//! and every refused call refused with its code.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_actors::orders::webhook_signature::{WebhookSigner, SIGNATURE_HEADER};
use souk_api::config::Secret;
use souk_db::testing::TestBackend;

use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{act, place, product, stock};

on_both_backends!(the_test_double_confirms_a_payment_and_its_refund_through_the_webhook);

const SECRET: &str = "whsec-the-tests-share-with-the-server";
const WEBHOOK: &str = "/api/v1/payments/webhook";

async fn app_with_secret() -> TestApp {
    app_with_secret_on(TestBackend::Sqlite).await
}

async fn app_with_secret_on(backend: TestBackend) -> TestApp {
    spawn_app_with(backend, |config| {
        config.payments.webhook_secret = Some(Secret::new(SECRET));
    })
    .await
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Posts `body` as sent, with `signature` as the signature header (if any).
async fn post_raw(app: &TestApp, body: &[u8], signature: Option<String>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(WEBHOOK))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    request.send().await.unwrap()
}

/// Posts `event` signed with the shared secret.
async fn deliver(app: &TestApp, event: &Value) -> reqwest::Response {
    let body = serde_json::to_vec(event).unwrap();
    let signature = WebhookSigner::new(SECRET.as_bytes()).header(now(), &body);
    post_raw(app, &body, Some(signature)).await
}

/// Delivers `event` and returns the receipt's (outcome, duplicate).
async fn outcome_of(app: &TestApp, event: &Value) -> (String, bool) {
    let response = deliver(app, event).await;
    assert_eq!(response.status(), StatusCode::OK, "{event}");
    let receipt: Value = response.json().await.unwrap();
    assert_eq!(receipt["event_id"], event["id"]);
    (
        receipt["outcome"].as_str().unwrap().to_owned(),
        receipt["duplicate"].as_bool().unwrap(),
    )
}

fn event_id() -> String {
    format!("evt_{}", uuid::Uuid::now_v7().simple())
}

fn captured(order_id: &str, reference: &str, amount: i64) -> Value {
    json!({"id": event_id(), "type": "payment.captured", "order_id": order_id,
           "payment_reference": reference, "amount": amount, "currency": "EUR"})
}

fn refunded(order_id: &str, reference: &str, refund_id: &str, amount: i64) -> Value {
    json!({"id": event_id(), "type": "payment.refunded", "order_id": order_id,
           "payment_reference": reference, "amount": amount, "currency": "EUR",
           "refund_id": refund_id, "reason": "damaged in transit"})
}

async fn own_order(app: &TestApp, user: &Session, id: &str) -> Value {
    app.get_as(&format!("/api/v1/orders/{id}"), &user.access_token)
        .await
        .json()
        .await
        .unwrap()
}

async fn the_test_double_confirms_a_payment_and_its_refund_through_the_webhook(
    backend: TestBackend,
) {
    // No webhook secret configured: the test double and the webhook share the key
    // derived from the node's secret.
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("async-payer").await;
    product(&app, &admin, "ASYNC-1", 1250, 5).await;
    let placed = place(&app, &shopper, json!([{"sku": "ASYNC-1", "quantity": 2}])).await;
    let id = placed["id"].as_str().unwrap().to_owned();

    let accepted = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/pay"),
        json!({"payment_method": "test-card-async"}),
    )
    .await;
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let accepted: Value = accepted.json().await.unwrap();
    assert_eq!(accepted["status"], "pending_payment");

    within(
        std::time::Duration::from_secs(10),
        "the captured event pays the order",
        || async { own_order(&app, &shopper, &id).await["status"] == "paid" },
    )
    .await;
    let paid = own_order(&app, &shopper, &id).await;
    assert_eq!(paid["payment_status"], "captured");
    let reason = paid["history"].as_array().unwrap().last().unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.starts_with("payment captured (provider event evt_test_"),
        "{reason}"
    );
    assert_eq!(
        stock(&app, &admin, "ASYNC-1").await,
        (3, 0),
        "the payment sold the units"
    );

    // Cancelling the paid order refunds it; the provider confirms the refund, and the
    // order shows it.
    let cancelled = act(
        &app,
        &admin.access_token,
        &format!("/api/v1/admin/orders/{id}/cancel"),
        json!({"reason": "out of business"}),
    )
    .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    within(
        std::time::Duration::from_secs(10),
        "the refunded event is recorded",
        || async {
            !own_order(&app, &shopper, &id).await["refunds"]
                .as_array()
                .unwrap()
                .is_empty()
        },
    )
    .await;
    let refunds = own_order(&app, &shopper, &id).await["refunds"].clone();
    assert_eq!(refunds.as_array().unwrap().len(), 1, "{refunds}");
    assert_eq!(
        refunds[0]["amount"],
        json!({"amount": 2500, "currency": "EUR"})
    );
    assert_eq!(
        stock(&app, &admin, "ASYNC-1").await,
        (5, 0),
        "the units came back"
    );
}

#[actix_web::test]
async fn each_event_applies_once_and_refunds_stay_within_the_capture() {
    let app = app_with_secret().await;
    let admin = app.admin().await;
    let shopper = app.customer("webhook-payer").await;
    product(&app, &admin, "HOOK-1", 3000, 10).await;

    // A pending order is paid by a captured event of its amount, once.
    let pending = place(&app, &shopper, json!([{"sku": "HOOK-1", "quantity": 1}])).await;
    let pending_id = pending["id"].as_str().unwrap();
    let mismatch = captured(pending_id, "pay_short", 2999);
    assert_eq!(
        outcome_of(&app, &mismatch).await,
        ("refunded_amount_mismatch".into(), false)
    );
    assert_eq!(
        own_order(&app, &shopper, pending_id).await["status"],
        "pending_payment"
    );
    let capture = captured(pending_id, "pay_1", 3000);
    assert_eq!(
        outcome_of(&app, &capture).await,
        ("order_paid".into(), false)
    );
    assert_eq!(
        outcome_of(&app, &capture).await,
        ("order_paid".into(), true)
    );
    let again = captured(pending_id, "pay_1", 3000);
    assert_eq!(
        outcome_of(&app, &again).await,
        ("already_paid".into(), false)
    );
    let second_payment = captured(pending_id, "pay_2", 3000);
    assert_eq!(
        outcome_of(&app, &second_payment).await,
        ("refunded_not_payable".into(), false),
        "a second capture of a paid order goes back"
    );
    let paid = own_order(&app, &shopper, pending_id).await;
    assert_eq!(paid["status"], "paid");
    let paid_entries = paid["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["to"] == "paid")
        .count();
    assert_eq!(paid_entries, 1);

    // Refunds are recorded once each, never past what was captured, and only for the
    // order's own payment.
    let partial = refunded(pending_id, "pay_1", "re_1", 1000);
    assert_eq!(
        outcome_of(&app, &partial).await,
        ("refund_recorded".into(), false)
    );
    assert_eq!(
        outcome_of(&app, &partial).await,
        ("refund_recorded".into(), true)
    );
    let same_refund = refunded(pending_id, "pay_1", "re_1", 1000);
    assert_eq!(
        outcome_of(&app, &same_refund).await,
        ("refund_already_recorded".into(), false)
    );
    let too_much = refunded(pending_id, "pay_1", "re_2", 2001);
    assert_eq!(
        outcome_of(&app, &too_much).await,
        ("ignored_refund_exceeds_captured".into(), false)
    );
    let other_payment = refunded(pending_id, "pay_2", "re_3", 10);
    assert_eq!(
        outcome_of(&app, &other_payment).await,
        ("ignored_unknown_payment".into(), false)
    );
    let rest = refunded(pending_id, "pay_1", "re_4", 2000);
    assert_eq!(
        outcome_of(&app, &rest).await,
        ("refund_recorded".into(), false)
    );
    let refunds = own_order(&app, &shopper, pending_id).await["refunds"].clone();
    let amounts: Vec<i64> = refunds
        .as_array()
        .unwrap()
        .iter()
        .map(|refund| refund["amount"]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [1000, 2000]);
    assert_eq!(refunds[0]["reason"], "damaged in transit");

    // A capture for an order that can no longer be paid goes back.
    let cancelled = place(&app, &shopper, json!([{"sku": "HOOK-1", "quantity": 1}])).await;
    let cancelled_id = cancelled["id"].as_str().unwrap();
    let cancel = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{cancelled_id}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(cancel.status(), StatusCode::OK);
    let late = captured(cancelled_id, "pay_late", 3000);
    assert_eq!(
        outcome_of(&app, &late).await,
        ("refunded_not_payable".into(), false)
    );
    assert_eq!(
        own_order(&app, &shopper, cancelled_id).await["status"],
        "cancelled"
    );

    // A failure leaves the order payable; an unknown order is acknowledged, not retried.
    let open = place(&app, &shopper, json!([{"sku": "HOOK-1", "quantity": 1}])).await;
    let open_id = open["id"].as_str().unwrap();
    let failed = json!({"id": event_id(), "type": "payment.failed", "order_id": open_id,
                        "payment_reference": "pay_3", "reason": "insufficient funds"});
    assert_eq!(
        outcome_of(&app, &failed).await,
        ("failure_recorded".into(), false)
    );
    assert_eq!(
        own_order(&app, &shopper, open_id).await["status"],
        "pending_payment"
    );
    let stranger = captured(&souk_db::ids::new_id(), "pay_4", 100);
    assert_eq!(
        outcome_of(&app, &stranger).await,
        ("ignored_unknown_order".into(), false)
    );
    assert_eq!(
        stock(&app, &admin, "HOOK-1").await,
        (9, 1),
        "one sold, one reserved"
    );
}

#[actix_web::test]
async fn concurrent_deliveries_of_one_event_pay_the_order_once() {
    let app = app_with_secret().await;
    let admin = app.admin().await;
    let shopper = app.customer("raced-payer").await;
    product(&app, &admin, "RACE-1", 700, 3).await;
    let placed = place(&app, &shopper, json!([{"sku": "RACE-1", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();
    let event = captured(id, "pay_race", 700);
    let deliveries = (0..8).map(|_| deliver(&app, &event));
    let responses = futures_util::future::join_all(deliveries).await;
    let mut first = 0;
    for response in responses {
        match response.status() {
            StatusCode::OK => {
                let receipt: Value = response.json().await.unwrap();
                assert_eq!(receipt["outcome"], "order_paid");
                if receipt["duplicate"] == false {
                    first += 1;
                }
            }
            StatusCode::CONFLICT => {
                assert_problem(response, 409, "event_in_progress").await;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(first, 1, "exactly one delivery applied the event");
    // A retry after the race gets the outcome.
    assert_eq!(outcome_of(&app, &event).await, ("order_paid".into(), true));
    assert_eq!(stock(&app, &admin, "RACE-1").await, (2, 0));
}

#[actix_web::test]
async fn refused_calls_get_their_code_and_leave_no_trace() {
    let app = app_with_secret().await;
    let admin = app.admin().await;
    let shopper = app.customer("refused-payer").await;
    product(&app, &admin, "NEG-1", 500, 3).await;
    let placed = place(&app, &shopper, json!([{"sku": "NEG-1", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();
    let event = captured(id, "pay_neg", 500);
    let body = serde_json::to_vec(&event).unwrap();
    let signer = WebhookSigner::new(SECRET.as_bytes());

    let unsigned = post_raw(&app, &body, None).await;
    assert_problem(unsigned, 401, "invalid_signature").await;
    let wrong_key = WebhookSigner::new(b"not the secret").header(now(), &body);
    assert_problem(
        post_raw(&app, &body, Some(wrong_key)).await,
        401,
        "invalid_signature",
    )
    .await;
    let stale = signer.header(now() - 301, &body);
    assert_problem(
        post_raw(&app, &body, Some(stale)).await,
        401,
        "invalid_signature",
    )
    .await;
    let mut tampered = event.clone();
    tampered["amount"] = json!(1);
    let tampered_body = serde_json::to_vec(&tampered).unwrap();
    assert_problem(
        post_raw(&app, &tampered_body, Some(signer.header(now(), &body))).await,
        401,
        "invalid_signature",
    )
    .await;
    assert_problem(
        post_raw(&app, &body, Some("t=yesterday,v1=00".into())).await,
        401,
        "invalid_signature",
    )
    .await;
    let as_text = app
        .client
        .post(app.url(WEBHOOK))
        .header("content-type", "text/plain")
        .header(SIGNATURE_HEADER, signer.header(now(), &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_problem(as_text, 415, "unsupported_media_type").await;

    // Signed, but not a valid event.
    let not_json = b"{\"id\": ".to_vec();
    let response = post_raw(&app, &not_json, Some(signer.header(now(), &not_json))).await;
    assert_problem(response, 400, "malformed_json").await;
    let mut unknown_field = event.clone();
    unknown_field["surprise"] = json!(true);
    assert_problem(deliver(&app, &unknown_field).await, 400, "invalid_body").await;
    let mut no_amount = event.clone();
    no_amount.as_object_mut().unwrap().remove("amount");
    let problem = assert_problem(deliver(&app, &no_amount).await, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "amount", "{problem}");
    let mut unknown_type = event.clone();
    unknown_type["type"] = json!("payment.teleported");
    assert_problem(deliver(&app, &unknown_type).await, 422, "validation_failed").await;
    let mut bad_order = event.clone();
    bad_order["order_id"] = json!("../../etc/passwd");
    assert_problem(deliver(&app, &bad_order).await, 422, "validation_failed").await;
    let mut negative = event.clone();
    negative["amount"] = json!(-5);
    assert_problem(deliver(&app, &negative).await, 422, "validation_failed").await;

    // None of the refused calls claimed the event: its first valid delivery applies it.
    assert_eq!(outcome_of(&app, &event).await, ("order_paid".into(), false));
}

/// MariaDB refuses a value wider than its column (SQLite would store it): a payment
/// reference longer than `orders.payment_reference` is a validation error, never a
/// failed write that the provider retries forever.
#[actix_web::test]
async fn a_payment_reference_longer_than_its_column_is_refused_on_mysql() {
    let app = app_with_secret_on(TestBackend::MySql).await;
    let admin = app.admin().await;
    let shopper = app.customer("long-reference-payer").await;
    product(&app, &admin, "LONGREF-1", 800, 3).await;
    let placed = place(&app, &shopper, json!([{"sku": "LONGREF-1", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();

    let too_long = captured(id, &"r".repeat(101), 800);
    let problem = assert_problem(deliver(&app, &too_long).await, 422, "validation_failed").await;
    assert_eq!(
        problem["errors"][0]["field"], "payment_reference",
        "{problem}"
    );
    assert_eq!(
        own_order(&app, &shopper, id).await["status"],
        "pending_payment"
    );

    let longest = captured(id, &"r".repeat(100), 800);
    assert_eq!(
        outcome_of(&app, &longest).await,
        ("order_paid".into(), false)
    );
    assert_eq!(own_order(&app, &shopper, id).await["status"], "paid");
}

/// The provider's ids are compared exactly on MariaDB too: events and refunds whose ids
/// differ only in case are different ones, each applied.
#[actix_web::test]
async fn provider_ids_differing_only_in_case_are_different_on_mysql() {
    let app = app_with_secret_on(TestBackend::MySql).await;
    let admin = app.admin().await;
    let shopper = app.customer("case-payer").await;
    product(&app, &admin, "CASE-1", 800, 3).await;
    let placed = place(&app, &shopper, json!([{"sku": "CASE-1", "quantity": 1}])).await;
    let id = placed["id"].as_str().unwrap();

    let failed = json!({"id": "evt_Case_1", "type": "payment.failed", "order_id": id,
                        "payment_reference": "pay_case", "reason": "declined"});
    assert_eq!(
        outcome_of(&app, &failed).await,
        ("failure_recorded".into(), false)
    );
    let mut paid = captured(id, "pay_case", 800);
    paid["id"] = json!("evt_case_1");
    assert_eq!(outcome_of(&app, &paid).await, ("order_paid".into(), false));

    let mut first = refunded(id, "pay_case", "re_Case", 300);
    first["id"] = json!("evt_refund_1");
    let mut second = refunded(id, "pay_case", "re_case", 200);
    second["id"] = json!("evt_refund_2");
    for refund in [&first, &second] {
        assert_eq!(
            outcome_of(&app, refund).await,
            ("refund_recorded".into(), false)
        );
    }
    let order = own_order(&app, &shopper, id).await;
    assert_eq!(order["refunds"].as_array().unwrap().len(), 2, "{order}");
}
