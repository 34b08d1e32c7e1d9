//! An admin's orders over gRPC, as over REST: any order read by its id, every order
//! listed with filters and pages, any order cancelled (its stock released); a shopper
//! may call none of these, and a filter or cursor that is not valid is refused naming
//! the query's error.

use souk_proto::v1 as pb;
use souk_proto::v1::inventory_service_client::InventoryServiceClient;
use souk_proto::v1::order_service_client::OrderServiceClient;
use tonic::transport::Channel;
use tonic::Code;

use super::{active_product, order_request, souk_code};
use crate::grpc_edges::channel;
use crate::helpers::*;

/// `AdminListOrders` as `token`'s owner.
async fn list(
    orders: &mut OrderServiceClient<Channel>,
    query: pb::AdminListOrdersRequest,
    token: &str,
) -> Result<pb::ListOrdersResponse, tonic::Status> {
    orders
        .admin_list_orders(authorized(query, token))
        .await
        .map(tonic::Response::into_inner)
}

#[actix_web::test]
async fn admins_read_list_and_cancel_any_order_over_grpc() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("grpc-admin-orders").await;
    let other = app.customer("grpc-admin-other").await;
    active_product(&app, &admin, "GRPC-ADMIN", 10).await;
    let channel = channel(&app).await;
    let mut orders = OrderServiceClient::new(channel.clone());
    let mut placed = Vec::new();
    for quantity in [1, 2] {
        let order = orders
            .create_order(order_request(
                "GRPC-ADMIN",
                quantity,
                "",
                &shopper.access_token,
            ))
            .await
            .unwrap()
            .into_inner();
        placed.push(order.id);
    }
    orders
        .create_order(order_request("GRPC-ADMIN", 3, "", &other.access_token))
        .await
        .unwrap();

    // A shopper may not call the admin methods, not even on their own order.
    let shoppers = [
        orders
            .admin_get_order(authorized(
                pb::GetOrderRequest {
                    id: placed[0].clone(),
                },
                &shopper.access_token,
            ))
            .await
            .unwrap_err(),
        list(&mut orders, Default::default(), &shopper.access_token)
            .await
            .unwrap_err(),
        orders
            .admin_cancel_order(authorized(
                pb::CancelOrderRequest {
                    id: placed[0].clone(),
                    reason: String::new(),
                },
                &shopper.access_token,
            ))
            .await
            .unwrap_err(),
    ];
    for status in shoppers {
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }

    // Any order by its id; an unknown one is not found.
    let read = orders
        .admin_get_order(authorized(
            pb::GetOrderRequest {
                id: placed[1].clone(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (read.user_id.as_str(), read.items[0].quantity),
        (shopper.id.as_str(), 2)
    );
    let unknown = orders
        .admin_get_order(authorized(
            pb::GetOrderRequest {
                id: "0190a3c4-0000-7000-8000-000000000000".into(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    // Every order, newest first; one customer's, a page at a time.
    let all = list(&mut orders, Default::default(), &admin.access_token)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 3);
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = list(
            &mut orders,
            pb::AdminListOrdersRequest {
                user_id: shopper.id.clone(),
                status: "pending_payment".into(),
                limit: 1,
                cursor: cursor.clone(),
                ..Default::default()
            },
            &admin.access_token,
        )
        .await
        .unwrap();
        seen.extend(page.items.into_iter().map(|order| order.id));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen, [placed[1].clone(), placed[0].clone()]);
    let future = list(
        &mut orders,
        pb::AdminListOrdersRequest {
            from: "2999-01-01T00:00:00Z".into(),
            ..Default::default()
        },
        &admin.access_token,
    )
    .await
    .unwrap();
    assert!(future.items.is_empty());

    // A filter or cursor that is not valid is refused, naming the query's error.
    let refused = [
        (
            pb::AdminListOrdersRequest {
                status: "lost".into(),
                ..Default::default()
            },
            "invalid_query",
        ),
        (
            pb::AdminListOrdersRequest {
                from: "yesterday".into(),
                ..Default::default()
            },
            "invalid_query",
        ),
        (
            pb::AdminListOrdersRequest {
                cursor: "not-a-cursor".into(),
                ..Default::default()
            },
            "invalid_cursor",
        ),
        (
            pb::AdminListOrdersRequest {
                limit: 1_000,
                ..Default::default()
            },
            "invalid_query",
        ),
    ];
    for (query, code) in refused {
        let status = list(&mut orders, query.clone(), &admin.access_token)
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), souk_code(&status).as_str()),
            (Code::InvalidArgument, code),
            "{query:?}"
        );
    }

    // Any order cancelled, with the admin's reason; its units go back.
    let cancelled = orders
        .admin_cancel_order(authorized(
            pb::CancelOrderRequest {
                id: placed[1].clone(),
                reason: "fraud check".into(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.status, "cancelled");
    let last = cancelled.history.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.reason.as_str()),
        (format!("admin:{}", admin.id).as_str(), "fraud check")
    );
    let stock = InventoryServiceClient::new(channel)
        .get_stock(authorized(
            pb::GetStockRequest {
                sku: "GRPC-ADMIN".into(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (10, 4));
    // Cancelled twice: the second is an illegal transition, as over REST.
    let again = orders
        .admin_cancel_order(authorized(
            pb::CancelOrderRequest {
                id: placed[1].clone(),
                reason: String::new(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (again.code(), souk_code(&again).as_str()),
        (Code::FailedPrecondition, "illegal_transition")
    );
}
