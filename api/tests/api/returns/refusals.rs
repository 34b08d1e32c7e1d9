//! What returns refuse, each with its code: an order not yet delivered, someone else's
//! order, no token, malformed requests, steps out of order or by a customer, unknown
//! returns; a rejected return frees its units for another request; a return past the
//! window is refused; and of racing requests and racing steps exactly one applies.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;

use super::{
    approve_and_receive, ask_return, delivered, order_of, pay_ship_deliver, requested_return, step,
};
use crate::helpers::*;
use crate::orders::{act, place, product};

#[actix_web::test]
async fn refused_returns_and_steps_get_their_codes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("refused-returner").await;
    let stranger = app.customer("stranger").await;
    product(&app, &admin, "RET-2", 500, 10).await;
    product(&app, &admin, "RET-3", 500, 10).await;
    let id = delivered(&app, &admin, &shopper, "RET-2", 2).await;

    // Not delivered yet.
    let paid = place(&app, &shopper, json!([{"sku": "RET-2", "quantity": 1}])).await;
    let paid_id = paid["id"].as_str().unwrap();
    let pay = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{paid_id}/pay"),
        json!({"payment_method": "test-card-ok"}),
    )
    .await;
    assert_eq!(pay.status(), StatusCode::OK);
    let early = ask_return(
        &app,
        &shopper,
        paid_id,
        json!([{"sku": "RET-2", "quantity": 1}]),
    )
    .await;
    assert_problem(early, 409, "illegal_transition").await;

    // Someone else's order is not found; no token is 401.
    let foreign = ask_return(
        &app,
        &stranger,
        &id,
        json!([{"sku": "RET-2", "quantity": 1}]),
    )
    .await;
    assert_problem(foreign, 404, "not_found").await;
    let anonymous = app
        .client
        .post(app.url(&format!("/api/v1/orders/{id}/returns")))
        .json(&json!({"items": [{"sku": "RET-2", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, 401, "missing_token").await;

    // Malformed requests.
    let not_in_order = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-3", "quantity": 1}]),
    )
    .await;
    let problem = assert_problem(not_in_order, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "items[0].sku");
    let zero = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-2", "quantity": 0}]),
    )
    .await;
    assert_problem(zero, 422, "validation_failed").await;
    let none = ask_return(&app, &shopper, &id, json!([])).await;
    assert_problem(none, 422, "validation_failed").await;
    let unknown_field = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/orders/{id}/returns"),
        json!({"items": [{"sku": "RET-2", "quantity": 1}], "refund_to": "me"}),
    )
    .await;
    assert_problem(unknown_field, 400, "invalid_body").await;
    let malformed = app
        .client
        .post(app.url(&format!("/api/v1/orders/{id}/returns")))
        .bearer_auth(&shopper.access_token)
        .header("content-type", "application/json")
        .body("{\"items\": [")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, 400, "malformed_json").await;

    let return_id = requested_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-2", "quantity": 2}]),
    )
    .await;
    // Steps are the admin's, in order.
    let by_shopper = act(
        &app,
        &shopper.access_token,
        &format!("/api/v1/admin/orders/{id}/returns/{return_id}/approve"),
        json!({}),
    )
    .await;
    assert_problem(by_shopper, 403, "forbidden").await;
    for verb in ["receive", "refund"] {
        let early = step(&app, &admin, &id, &return_id, verb, json!({})).await;
        assert_problem(early, 409, "illegal_transition").await;
    }
    let unknown = step(
        &app,
        &admin,
        &id,
        &souk_db::ids::new_id(),
        "approve",
        json!({}),
    )
    .await;
    assert_problem(unknown, 404, "not_found").await;
    let garbage = step(&app, &admin, &id, "not-an-id", "approve", json!({})).await;
    assert_problem(garbage, 404, "not_found").await;
    let negative = step(
        &app,
        &admin,
        &id,
        &return_id,
        "refund",
        json!({"amount": "lots"}),
    )
    .await;
    assert_problem(negative, 400, "invalid_body").await;

    // A rejected return frees its units for another request.
    let rejected = step(
        &app,
        &admin,
        &id,
        &return_id,
        "reject",
        json!({"reason": "worn"}),
    )
    .await;
    assert_eq!(rejected.status(), StatusCode::OK);
    let rejected: Value = rejected.json().await.unwrap();
    assert_eq!(
        (rejected["status"].as_str(), rejected["decision"].as_str()),
        (Some("rejected"), Some("worn"))
    );
    let approve_rejected = step(&app, &admin, &id, &return_id, "approve", json!({})).await;
    assert_problem(approve_rejected, 409, "illegal_transition").await;
    let again = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-2", "quantity": 2}]),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn a_return_past_the_window_is_refused() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.orders.return_window_secs = 1;
    })
    .await;
    let admin = app.admin().await;
    let shopper = app.customer("late-returner").await;
    product(&app, &admin, "RET-4", 500, 3).await;
    let id = delivered(&app, &admin, &shopper, "RET-4", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let late = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-4", "quantity": 1}]),
    )
    .await;
    let problem = assert_problem(late, 409, "return_window_closed").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("1 seconds"),
        "{problem}"
    );
}

#[actix_web::test]
async fn racing_requests_and_steps_end_consistent() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("racing-returner").await;
    product(&app, &admin, "RET-5", 500, 5).await;
    let id = delivered(&app, &admin, &shopper, "RET-5", 3).await;

    // Two requests for every unit at once: the order's actor takes one, refuses the other.
    let (first, second) = tokio::join!(
        ask_return(
            &app,
            &shopper,
            &id,
            json!([{"sku": "RET-5", "quantity": 3}])
        ),
        ask_return(
            &app,
            &shopper,
            &id,
            json!([{"sku": "RET-5", "quantity": 3}])
        ),
    );
    let mut statuses = [first.status().as_u16(), second.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [201, 422]);
    let order = order_of(&app, &shopper, &id).await;
    assert_eq!(order["returns"].as_array().unwrap().len(), 1);
    let return_id = order["returns"][0]["id"].as_str().unwrap().to_owned();

    // An approval racing a rejection: exactly one applies, and the return shows it.
    let (approve, reject) = tokio::join!(
        step(&app, &admin, &id, &return_id, "approve", json!({})),
        step(
            &app,
            &admin,
            &id,
            &return_id,
            "reject",
            json!({"reason": "late"})
        ),
    );
    let outcomes = [approve.status().as_u16(), reject.status().as_u16()];
    assert!(
        outcomes == [200, 409] || outcomes == [409, 200],
        "{outcomes:?}"
    );
    let status = order_of(&app, &shopper, &id).await["returns"][0]["status"].clone();
    let expected = if outcomes[0] == 200 {
        "approved"
    } else {
        "rejected"
    };
    assert_eq!(status, expected);
}

/// A return of units that cost nothing has nothing to give back: its refund completes
/// with 0 and asks the provider nothing, where it used to be refused forever.
#[actix_web::test]
async fn a_return_of_free_units_is_refunded_nothing_and_done() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("gift-returner").await;
    product(&app, &admin, "GIFT-0", 0, 5).await;
    product(&app, &admin, "PAID-0", 1000, 5).await;
    let placed = place(
        &app,
        &shopper,
        json!([{"sku": "GIFT-0", "quantity": 1}, {"sku": "PAID-0", "quantity": 1}]),
    )
    .await;
    let id = placed["id"].as_str().unwrap().to_owned();
    pay_ship_deliver(&app, &admin, &shopper, &id).await;
    let return_id = requested_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "GIFT-0", "quantity": 1}]),
    )
    .await;
    approve_and_receive(&app, &admin, &id, &return_id).await;
    let asked_too_much = step(
        &app,
        &admin,
        &id,
        &return_id,
        "refund",
        json!({"amount": 1}),
    )
    .await;
    assert_problem(asked_too_much, 422, "validation_failed").await;
    let done = step(&app, &admin, &id, &return_id, "refund", json!({})).await;
    assert_eq!(done.status(), StatusCode::OK);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["status"], "refunded", "{done}");
    assert_eq!(done["refund"]["amount"], 0, "{done}");
    assert!(order_of(&app, &shopper, &id).await["refunds"]
        .as_array()
        .unwrap()
        .is_empty());
}
