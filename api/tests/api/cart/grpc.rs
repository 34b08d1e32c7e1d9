//! `souk.v1.CartService`: the signed-in caller's cart over gRPC — the same rules and
//! refusals as REST, and checkout from it, idempotent with a key.

use souk_proto::v1 as pb;
use souk_proto::v1::cart_service_client::CartServiceClient;
use tonic::{Code, Request};

use super::product;
use crate::grpc_edges::channel;
use crate::helpers::*;

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[actix_web::test]
async fn the_cart_over_grpc() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ada = app.customer("grpc-cart").await;
    let eve = app.customer("grpc-cart-eve").await;
    product(&app, &admin, "GCART-1", 700, 5).await;
    product(&app, &admin, "GCART-2", 300, 0).await;
    let mut carts = CartServiceClient::new(channel(&app).await);
    let token = ada.access_token.as_str();
    let set = |sku: &str, quantity: i64| pb::SetCartItemRequest {
        sku: sku.into(),
        quantity,
    };

    let status = carts
        .get_cart(Request::new(pb::GetCartRequest {}))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = carts
        .checkout_cart(Request::new(pb::CheckoutCartRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let cart = carts
        .set_cart_item(authorized(set("gcart-1", 2), token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cart.items.len(), 1);
    let line = &cart.items[0];
    assert_eq!((line.sku.as_str(), line.quantity), ("GCART-1", 2));
    assert_eq!(line.line_total.as_ref().unwrap().amount, 1400);
    assert_eq!((line.status.as_str(), line.available), ("available", 5));
    let cart = carts
        .set_cart_item(authorized(set("GCART-2", 1), token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cart.items[1].status, "out_of_stock");
    assert_eq!(cart.total.as_ref().unwrap().amount, 1700);

    for (request, code) in [
        (set("GCART-1", 101), Code::InvalidArgument),
        (set("NOPE-1", 1), Code::InvalidArgument),
        (set("", 1), Code::InvalidArgument),
    ] {
        let status = carts
            .set_cart_item(authorized(request, token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "{status:?}");
    }
    let status = carts
        .remove_cart_item(authorized(
            pb::RemoveCartItemRequest {
                sku: "GCART-1".into(),
            },
            &eve.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "another user's line");
    let cart = carts
        .remove_cart_item(authorized(
            pb::RemoveCartItemRequest {
                sku: "GCART-2".into(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cart.items.len(), 1);

    let checkout = |key: &str| {
        authorized(
            pb::CheckoutCartRequest {
                idempotency_key: key.into(),
                ..Default::default()
            },
            token,
        )
    };
    let placed = carts
        .checkout_cart(checkout("g1"))
        .await
        .unwrap()
        .into_inner();
    assert!(placed.created);
    let order = placed.order.unwrap();
    assert_eq!(order.items[0].quantity, 2);
    let cart = carts
        .get_cart(authorized(pb::GetCartRequest {}, token))
        .await
        .unwrap()
        .into_inner();
    assert!(cart.items.is_empty());
    let again = carts
        .checkout_cart(checkout("g1"))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.created);
    assert_eq!(again.order.unwrap().id, order.id);
    let status = carts.checkout_cart(checkout("g2")).await.unwrap_err();
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "an empty cart: {status:?}"
    );

    carts
        .set_cart_item(authorized(set("GCART-1", 1), token))
        .await
        .unwrap();
    carts
        .clear_cart(authorized(pb::ClearCartRequest {}, token))
        .await
        .unwrap();
    let cart = carts
        .get_cart(authorized(pb::GetCartRequest {}, token))
        .await
        .unwrap()
        .into_inner();
    assert!(cart.items.is_empty());
}
