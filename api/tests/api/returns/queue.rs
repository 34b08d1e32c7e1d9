//! The admin's queue of returns: by status, oldest first and page by page over REST,
//! by status over gRPC; an unknown status or a bad cursor is refused, and so is a
//! customer.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_proto::v1 as pb;
use souk_proto::v1::order_service_client::OrderServiceClient;
use tonic::Code;
use tonic_types::StatusExt;

use super::{delivered, requested_return, step};
use crate::grpc_edges::channel;
use crate::helpers::*;
use crate::orders::product;

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
    // The same refusal as over REST.
    assert_eq!(
        refused.get_details_error_info().map(|info| info.reason),
        Some("invalid_query".to_owned())
    );
}
