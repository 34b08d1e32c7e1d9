//! Returns over gRPC: requested by the order's owner only and within what was
//! delivered, approved by an admin only, received and refunded in part; the order and
//! the stock show it.

use souk_proto::v1 as pb;
use souk_proto::v1::order_service_client::OrderServiceClient;
use tonic::Code;

use super::delivered;
use crate::grpc_edges::channel;
use crate::helpers::*;
use crate::orders::{product, stock};

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
