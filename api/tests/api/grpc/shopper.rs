//! A shopper over gRPC alone: registers, logs in, reads themself and a product, places
//! an order (a retry under the same idempotency key is the same order) and pays it;
//! stock and the order over REST show what gRPC did.

use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_client::AuthServiceClient;
use souk_proto::v1::inventory_service_client::InventoryServiceClient;
use souk_proto::v1::order_service_client::OrderServiceClient;
use souk_proto::v1::product_service_client::ProductServiceClient;
use souk_proto::v1::user_service_client::UserServiceClient;

use super::{active_product, order_request};
use crate::grpc_edges::channel;
use crate::helpers::*;

#[actix_web::test]
async fn a_shopper_registers_logs_in_orders_and_pays_over_grpc() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    active_product(&app, &admin, "GRPC-1", 5).await;
    let channel = channel(&app).await;
    let email = unique_email("grpc");

    let user = UserServiceClient::new(channel.clone())
        .register(pb::RegisterRequest {
            email: email.clone(),
            password: PASSWORD.to_owned(),
            name: "Grace".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (user.email.as_str(), user.role.as_str()),
        (email.as_str(), "customer")
    );

    let tokens = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            email: email.clone(),
            password: PASSWORD.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(tokens.token_type, "Bearer");

    let me = UserServiceClient::new(channel.clone())
        .get_me(authorized(pb::GetMeRequest {}, &tokens.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(me.id, user.id);

    let product = ProductServiceClient::new(channel.clone())
        .get_product_by_sku(pb::GetProductBySkuRequest {
            sku: "GRPC-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (product.available, product.price.unwrap().amount),
        (5, 1250)
    );

    let mut orders = OrderServiceClient::new(channel.clone());
    let placed = orders
        .create_order(order_request(
            "GRPC-1",
            2,
            "grpc-checkout-1",
            &tokens.access_token,
        ))
        .await
        .unwrap();
    assert_eq!(placed.metadata().get("souk-created").unwrap(), "true");
    let placed = placed.into_inner();
    assert_eq!(placed.status, "pending_payment");
    assert_eq!(placed.total.as_ref().unwrap().amount, 2500);
    let retried = orders
        .create_order(order_request(
            "GRPC-1",
            2,
            "grpc-checkout-1",
            &tokens.access_token,
        ))
        .await
        .unwrap();
    assert_eq!(
        retried.metadata().get("souk-created").unwrap(),
        "false",
        "a retry finds the order placed before"
    );
    let retried = retried.into_inner();
    assert_eq!(retried.id, placed.id, "the same key gives the same order");

    let paid = orders
        .pay_order(authorized(
            pb::PayOrderRequest {
                id: placed.id.clone(),
                payment_method: "card".into(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (paid.status.as_str(), paid.payment_status.as_str()),
        ("paid", "captured")
    );

    // REST sees what gRPC did: one service layer under both.
    let stock = InventoryServiceClient::new(channel.clone())
        .get_stock(authorized(
            pb::GetStockRequest {
                sku: "GRPC-1".into(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (3, 0, 3));
    let over_rest: serde_json::Value = app
        .get_as(
            &format!("/api/v1/orders/{}", placed.id),
            &tokens.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(over_rest["status"], "paid");
}
