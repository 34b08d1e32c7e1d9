//! Returns of delivered orders over REST and gRPC: requested within the window,
//! approved or rejected, received back into stock once, refunded within the payment;
//! racing requests and steps end consistent; every refusal has its code.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;
use souk_proto::v1 as pb;
use souk_proto::v1::order_service_client::OrderServiceClient;
use tonic::Code;

use crate::grpc_edges::channel;
use crate::helpers::*;
use crate::on_both_backends;
use crate::orders::{act, place, product, stock};

on_both_backends!(a_delivered_order_is_returned_received_and_refunded);

/// Places, pays, ships and delivers an order of `quantity` units of `sku`; its id.
async fn delivered(
    app: &TestApp,
    admin: &Session,
    shopper: &Session,
    sku: &str,
    quantity: i64,
) -> String {
    let placed = place(app, shopper, json!([{"sku": sku, "quantity": quantity}])).await;
    let id = placed["id"].as_str().unwrap().to_owned();
    pay_ship_deliver(app, admin, shopper, &id).await;
    id
}

/// Pays, ships and delivers the placed order `id`.
async fn pay_ship_deliver(app: &TestApp, admin: &Session, shopper: &Session, id: &str) {
    let steps = [
        (
            &shopper.access_token,
            format!("/api/v1/orders/{id}/pay"),
            json!({"payment_method": "test-card-ok"}),
        ),
        (
            &admin.access_token,
            format!("/api/v1/admin/orders/{id}/ship"),
            json!({}),
        ),
        (
            &admin.access_token,
            format!("/api/v1/admin/orders/{id}/deliver"),
            json!({}),
        ),
    ];
    for (token, path, body) in steps {
        let response = act(app, token, &path, body).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

async fn ask_return(
    app: &TestApp,
    shopper: &Session,
    order_id: &str,
    items: Value,
) -> reqwest::Response {
    act(
        app,
        &shopper.access_token,
        &format!("/api/v1/orders/{order_id}/returns"),
        json!({"items": items, "reason": "too big"}),
    )
    .await
}

/// Asks for a return that must be accepted; its id.
async fn requested_return(
    app: &TestApp,
    shopper: &Session,
    order_id: &str,
    items: Value,
) -> String {
    let response = ask_return(app, shopper, order_id, items).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let requested: Value = response.json().await.unwrap();
    requested["id"].as_str().unwrap().to_owned()
}

async fn step(
    app: &TestApp,
    admin: &Session,
    order_id: &str,
    return_id: &str,
    verb: &str,
    body: Value,
) -> reqwest::Response {
    act(
        app,
        &admin.access_token,
        &format!("/api/v1/admin/orders/{order_id}/returns/{return_id}/{verb}"),
        body,
    )
    .await
}

async fn order_of(app: &TestApp, shopper: &Session, id: &str) -> Value {
    app.get_as(&format!("/api/v1/orders/{id}"), &shopper.access_token)
        .await
        .json()
        .await
        .unwrap()
}

async fn a_delivered_order_is_returned_received_and_refunded(backend: TestBackend) {
    let app = spawn_app_on(backend).await;
    let admin = app.admin().await;
    let shopper = app.customer("returner").await;
    product(&app, &admin, "RET-1", 1000, 5).await;
    let id = delivered(&app, &admin, &shopper, "RET-1", 3).await;
    assert_eq!(stock(&app, &admin, "RET-1").await, (2, 0));

    let requested = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "ret-1", "quantity": 2}]),
    )
    .await;
    assert_eq!(requested.status(), StatusCode::CREATED);
    let requested: Value = requested.json().await.unwrap();
    let return_id = requested["id"].as_str().unwrap().to_owned();
    assert_eq!(requested["status"], "requested");
    assert_eq!(requested["reason"], "too big");
    assert_eq!(
        requested["items"],
        json!([{"sku": "RET-1", "quantity": 2, "unit_price": {"amount": 1000, "currency": "EUR"}}])
    );
    // Only one unit is left to return while this return is open.
    let too_many = ask_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-1", "quantity": 2}]),
    )
    .await;
    let problem = assert_problem(too_many, 422, "validation_failed").await;
    assert_eq!(
        problem["errors"][0]["field"], "items[0].quantity",
        "{problem}"
    );

    let approved = step(&app, &admin, &id, &return_id, "approve", json!({})).await;
    assert_eq!(approved.status(), StatusCode::OK);
    assert_eq!(
        approved.json::<Value>().await.unwrap()["status"],
        "approved"
    );
    let received = step(&app, &admin, &id, &return_id, "receive", json!({})).await;
    assert_eq!(received.status(), StatusCode::OK);
    assert_eq!(
        stock(&app, &admin, "RET-1").await,
        (4, 0),
        "the units are back"
    );
    let ledger: Value = app
        .get_as(
            "/api/v1/admin/inventory/RET-1/movements",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let returned: Vec<&Value> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|movement| movement["kind"] == "return")
        .collect();
    assert_eq!(returned.len(), 1, "{ledger}");
    assert_eq!(returned[0]["delta_on_hand"], 2);
    assert!(returned[0]["reason"].as_str().unwrap().contains(&return_id));

    let over = step(
        &app,
        &admin,
        &id,
        &return_id,
        "refund",
        json!({"amount": 2001}),
    )
    .await;
    let problem = assert_problem(over, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "amount");
    let refunded = step(&app, &admin, &id, &return_id, "refund", json!({})).await;
    assert_eq!(refunded.status(), StatusCode::OK);
    let refunded: Value = refunded.json().await.unwrap();
    assert_eq!(refunded["status"], "refunded");
    assert_eq!(
        refunded["refund"],
        json!({"amount": 2000, "currency": "EUR"})
    );
    let again = step(&app, &admin, &id, &return_id, "refund", json!({})).await;
    assert_problem(again, 409, "illegal_transition").await;

    // The provider's own event for the refund finds it recorded: one refund, not two.
    within(
        std::time::Duration::from_secs(5),
        "the order shows the refund",
        || async {
            order_of(&app, &shopper, &id).await["refunds"]
                .as_array()
                .unwrap()
                .len()
                == 1
        },
    )
    .await;
    let order = order_of(&app, &shopper, &id).await;
    assert_eq!(order["refunds"][0]["amount"]["amount"], 2000);
    assert_eq!(order["returns"][0]["status"], "refunded");
    assert_eq!(
        order["status"], "delivered",
        "a return does not change the order's status"
    );
    // One event (and so one mail) per step.
    let steps: Vec<String> = app
        .events("order.return_updated", &id)
        .await
        .iter()
        .map(|payload| payload["status"].as_str().unwrap_or("?").to_owned())
        .collect();
    assert_eq!(
        steps,
        ["requested", "approved", "received", "refunded"],
        "{steps:?}"
    );
}

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

/// With prices excluding tax, a return refunds the units' tax share too (not shipping).
#[actix_web::test]
async fn a_return_refunds_the_tax_that_was_added() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.orders.prices_include_tax = false;
    })
    .await;
    let admin = app.admin().await;
    let shopper = app.customer("taxed-returner").await;
    product(&app, &admin, "RET-8", 1000, 5).await;
    let rate = app
        .client
        .put(app.url("/api/v1/admin/tax-rates/DE"))
        .bearer_auth(&admin.access_token)
        .json(&json!({"rate_bps": 1900}))
        .send()
        .await
        .unwrap();
    assert_eq!(rate.status(), StatusCode::CREATED);
    let address: Value = act(
        &app,
        &shopper.access_token,
        "/api/v1/users/me/addresses",
        json!({"name": "Ada", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "DE"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let placed = act(
        &app,
        &shopper.access_token,
        "/api/v1/orders",
        json!({"items": [{"sku": "RET-8", "quantity": 2}], "shipping_address_id": address["id"]}),
    )
    .await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed["total"]["amount"], 2380, "20.00 + 19 % tax");
    let id = placed["id"].as_str().unwrap().to_owned();
    pay_ship_deliver(&app, &admin, &shopper, &id).await;
    let return_id = requested_return(
        &app,
        &shopper,
        &id,
        json!([{"sku": "RET-8", "quantity": 1}]),
    )
    .await;
    for verb in ["approve", "receive"] {
        assert_eq!(
            step(&app, &admin, &id, &return_id, verb, json!({}))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let over = step(
        &app,
        &admin,
        &id,
        &return_id,
        "refund",
        json!({"amount": 1191}),
    )
    .await;
    assert_problem(over, 422, "validation_failed").await;
    let refunded: Value = step(&app, &admin, &id, &return_id, "refund", json!({}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        refunded["refund"],
        json!({"amount": 1190, "currency": "EUR"})
    );
}

#[actix_web::test]
async fn the_admins_queue_lists_returns_by_status() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("queued-returner").await;
    product(&app, &admin, "RET-7", 400, 9).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let order_id = delivered(&app, &admin, &shopper, "RET-7", 1).await;
        let return_id = requested_return(
            &app,
            &shopper,
            &order_id,
            json!([{"sku": "RET-7", "quantity": 1}]),
        )
        .await;
        ids.push((order_id, return_id));
    }
    let (first_order, first_return) = &ids[0];
    let approved = step(
        &app,
        &admin,
        first_order,
        first_return,
        "approve",
        json!({}),
    )
    .await;
    assert_eq!(approved.status(), StatusCode::OK);

    // Oldest first, page by page.
    let page: Value = app
        .get_as(
            "/api/v1/admin/returns?status=requested&limit=1",
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["id"], ids[1].1.as_str());
    assert_eq!(page["items"][0]["order_id"], ids[1].0.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get_as(
            &format!("/api/v1/admin/returns?status=requested&limit=1&cursor={cursor}"),
            &admin.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"][0]["id"], ids[2].1.as_str());
    assert!(next["next_cursor"].is_null());
    let all: Value = app
        .get_as("/api/v1/admin/returns", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 3);

    let bogus = app
        .get_as("/api/v1/admin/returns?status=lost", &admin.access_token)
        .await;
    assert_problem(bogus, 400, "invalid_query").await;
    let bad_cursor = app
        .get_as("/api/v1/admin/returns?cursor=abc", &admin.access_token)
        .await;
    assert_problem(bad_cursor, 400, "invalid_cursor").await;
    let by_shopper = app
        .get_as("/api/v1/admin/returns", &shopper.access_token)
        .await;
    assert_problem(by_shopper, 403, "forbidden").await;

    let mut orders = OrderServiceClient::new(channel(&app).await);
    let listed = orders
        .list_returns(authorized(
            pb::ListReturnsRequest {
                status: "approved".into(),
                ..Default::default()
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, *first_return);
    let refused = orders
        .list_returns(authorized(
            pb::ListReturnsRequest {
                status: "lost".into(),
                ..Default::default()
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
}

#[actix_web::test]
async fn returns_over_grpc() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("grpc-returner").await;
    let stranger = app.customer("grpc-stranger").await;
    product(&app, &admin, "RET-6", 700, 5).await;
    let id = delivered(&app, &admin, &shopper, "RET-6", 2).await;
    let mut orders = OrderServiceClient::new(channel(&app).await);
    let ask = |token: &str, quantity: i64| {
        authorized(
            pb::RequestReturnRequest {
                order_id: id.clone(),
                items: vec![pb::OrderItem {
                    sku: "RET-6".into(),
                    quantity,
                }],
                reason: "changed my mind".into(),
            },
            token,
        )
    };
    let foreign = orders
        .request_return(ask(&stranger.access_token, 1))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);
    let invalid = orders
        .request_return(ask(&shopper.access_token, 9))
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let requested = orders
        .request_return(ask(&shopper.access_token, 1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(requested.status, "requested");
    assert_eq!(requested.items[0].unit_price.as_ref().unwrap().amount, 700);
    let step_request = || pb::ReturnStepRequest {
        order_id: id.clone(),
        return_id: requested.id.clone(),
    };
    let by_shopper = orders
        .approve_return(authorized(step_request(), &shopper.access_token))
        .await
        .unwrap_err();
    assert_eq!(by_shopper.code(), Code::PermissionDenied);
    let approved = orders
        .approve_return(authorized(step_request(), &admin.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.status, "approved");
    orders
        .receive_return(authorized(step_request(), &admin.access_token))
        .await
        .unwrap();
    let refunded = orders
        .refund_return(authorized(
            pb::RefundReturnRequest {
                order_id: id.clone(),
                return_id: requested.id.clone(),
                amount: Some(300),
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(refunded.status, "refunded");
    assert_eq!(refunded.refund.unwrap().amount, 300);
    let order = orders
        .get_order(authorized(
            pb::GetOrderRequest { id: id.clone() },
            &shopper.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.returns.len(), 1);
    assert_eq!(order.refunds[0].amount.as_ref().unwrap().amount, 300);
    assert_eq!(stock(&app, &admin, "RET-6").await, (4, 0));
}
