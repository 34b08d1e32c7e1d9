//! What gRPC refuses, as REST does and with the same Souk codes: another customer's
//! order, a missing, forged or malformed token, admin and service methods called by
//! those not allowed them, out-of-range adjustments (leaving the order and its stock as
//! they were) beside a keyed one applied once and a threshold changed alone; invalid
//! arguments that name their fields, unknown ids, wrong credentials.

use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_client::AuthServiceClient;
use souk_proto::v1::inventory_service_client::InventoryServiceClient;
use souk_proto::v1::order_service_client::OrderServiceClient;
use souk_proto::v1::product_service_client::ProductServiceClient;
use souk_proto::v1::user_service_client::UserServiceClient;
use tonic::{Code, Request};
use tonic_types::StatusExt;

use super::{active_product, order_request, souk_code};
use crate::grpc_edges::channel;
use crate::helpers::*;

#[actix_web::test]
async fn tokens_and_ownership_are_enforced_as_in_rest() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    active_product(&app, &admin, "GRPC-2", 5).await;
    let owner = app.customer("grpc-owner").await;
    let stranger = app.customer("grpc-stranger").await;
    let channel = channel(&app).await;
    let mut orders = OrderServiceClient::new(channel.clone());
    let placed = orders
        .create_order(order_request("GRPC-2", 1, "", &owner.access_token))
        .await
        .unwrap()
        .into_inner();

    // Another customer's order does not exist for them, over gRPC as over REST.
    let status = orders
        .get_order(authorized(
            pb::GetOrderRequest {
                id: placed.id.clone(),
            },
            &stranger.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::NotFound, "not_found")
    );
    let status = orders
        .cancel_order(authorized(
            pb::CancelOrderRequest {
                id: placed.id.clone(),
                reason: String::new(),
            },
            &stranger.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // No token, a forged one, a malformed header.
    let status = orders
        .get_order(pb::GetOrderRequest {
            id: placed.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::Unauthenticated, "missing_token")
    );
    let forged = format!("{}x", &owner.access_token[..owner.access_token.len() - 1]);
    let status = orders
        .get_order(authorized(
            pb::GetOrderRequest {
                id: placed.id.clone(),
            },
            &forged,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::Unauthenticated, "invalid_token")
    );
    let mut malformed = Request::new(pb::GetOrderRequest {
        id: placed.id.clone(),
    });
    malformed
        .metadata_mut()
        .insert("authorization", "Basic abc".parse().unwrap());
    assert_eq!(
        orders.get_order(malformed).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // Admin methods refuse customers; service methods refuse users, admins included.
    let status = orders
        .ship_order(authorized(
            pb::ShipOrderRequest {
                id: placed.id.clone(),
            },
            &owner.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::PermissionDenied, "forbidden")
    );
    let mut inventory = InventoryServiceClient::new(channel.clone());
    let steal = pb::ExecuteRequest {
        sku: "GRPC-2".into(),
        actor: "order:fake".into(),
        command: Some(pb::execute_request::Command::Release(
            pb::execute_request::Release {
                order_id: placed.id.clone(),
                reason: "not mine".into(),
            },
        )),
    };
    let status = inventory
        .execute(authorized(steal.clone(), &admin.access_token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        inventory.execute(steal).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let status = inventory
        .adjust_stock(authorized(
            pb::AdjustStockRequest {
                sku: "GRPC-2".into(),
                delta: 5,
                reason: "gift".into(),
                idempotency_key: String::new(),
                low_stock_threshold: None,
            },
            &owner.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    // An admin's adjustment at the extremes of i64 is refused as invalid, as over REST.
    for delta in [i64::MIN, i64::MAX] {
        let status = inventory
            .adjust_stock(authorized(
                pb::AdjustStockRequest {
                    sku: "GRPC-2".into(),
                    delta,
                    reason: "overflow".into(),
                    idempotency_key: String::new(),
                    low_stock_threshold: None,
                },
                &admin.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "delta {delta}");
    }
    // So is a malformed idempotency key, before anything is applied.
    let status = inventory
        .adjust_stock(authorized(
            pb::AdjustStockRequest {
                sku: "GRPC-2".into(),
                delta: 5,
                reason: "delivery".into(),
                idempotency_key: "a key with spaces".into(),
                low_stock_threshold: None,
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Nothing of that changed the order or its stock.
    let order = orders
        .get_order(authorized(
            pb::GetOrderRequest {
                id: placed.id.clone(),
            },
            &owner.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(order.status, "pending_payment");
    let stock_request = || {
        authorized(
            pb::GetStockRequest {
                sku: "GRPC-2".into(),
            },
            &admin.access_token,
        )
    };
    let stock = inventory
        .get_stock(stock_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (5, 1));

    // An adjustment sent again with its idempotency key (its answer lost) is applied
    // once.
    for _ in 0..2 {
        let adjusted = inventory
            .adjust_stock(authorized(
                pb::AdjustStockRequest {
                    sku: "GRPC-2".into(),
                    delta: 3,
                    reason: "delivery".into(),
                    idempotency_key: "grpc-delivery-1".into(),
                    low_stock_threshold: None,
                },
                &admin.access_token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(adjusted.stock.unwrap().on_hand, 8);
    }

    // A threshold alone (delta 0) changes the threshold and nothing else; a delta of 0
    // without one, or a threshold below 0, is refused as invalid.
    let threshold = |delta: i64, low_stock_threshold: Option<i64>| {
        authorized(
            pb::AdjustStockRequest {
                sku: "GRPC-2".into(),
                delta,
                reason: "reorder point".into(),
                idempotency_key: String::new(),
                low_stock_threshold,
            },
            &admin.access_token,
        )
    };
    let stock = inventory
        .adjust_stock(threshold(0, Some(4)))
        .await
        .unwrap()
        .into_inner()
        .stock
        .unwrap();
    assert_eq!((stock.on_hand, stock.low_stock_threshold), (8, 4));
    for (delta, low_stock_threshold) in [(0, None), (1, Some(-1))] {
        let status = inventory
            .adjust_stock(threshold(delta, low_stock_threshold))
            .await
            .unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{delta} {low_stock_threshold:?}"
        );
    }
    let stock = inventory
        .get_stock(stock_request())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stock.on_hand, stock.low_stock_threshold), (8, 4));
}

#[actix_web::test]
async fn invalid_arguments_name_their_fields_and_unknown_ids_are_not_found() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("grpc-bad").await;
    let channel = channel(&app).await;

    let status = OrderServiceClient::new(channel.clone())
        .create_order(order_request("bad sku!", 0, "", &shopper.access_token))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::InvalidArgument, "validation_failed")
    );
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("field violations")
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect();
    assert!(fields.contains(&"items[0].sku".to_owned()), "{fields:?}");
    assert!(
        fields.contains(&"items[0].quantity".to_owned()),
        "{fields:?}"
    );

    let status = UserServiceClient::new(channel.clone())
        .register(pb::RegisterRequest {
            email: "not-an-email".into(),
            password: "short".into(),
            name: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .len(),
        3
    );

    let status = ProductServiceClient::new(channel.clone())
        .create_product(authorized(
            pb::CreateProductRequest {
                sku: "OK-1".into(),
                name: "No price".into(),
                ..Default::default()
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = ProductServiceClient::new(channel.clone())
        .search_products(pb::SearchProductsRequest {
            sort: "sideways".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::InvalidArgument, "invalid_query")
    );

    let unknown = "01890000-0000-7000-8000-000000000000".to_owned();
    for status in [
        OrderServiceClient::new(channel.clone())
            .get_order(authorized(
                pb::GetOrderRequest {
                    id: unknown.clone(),
                },
                &shopper.access_token,
            ))
            .await
            .unwrap_err(),
        ProductServiceClient::new(channel.clone())
            .get_product(pb::GetProductRequest {
                id: unknown.clone(),
            })
            .await
            .unwrap_err(),
        ProductServiceClient::new(channel.clone())
            .get_product_by_sku(pb::GetProductBySkuRequest {
                sku: "NOPE-404".into(),
            })
            .await
            .unwrap_err(),
        UserServiceClient::new(channel.clone())
            .get_user(authorized(
                pb::GetUserRequest {
                    id: unknown.clone(),
                },
                &admin.access_token,
            ))
            .await
            .unwrap_err(),
        InventoryServiceClient::new(channel.clone())
            .get_stock(authorized(
                pb::GetStockRequest {
                    sku: "NOPE-404".into(),
                },
                &admin.access_token,
            ))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(
            (status.code(), souk_code(&status).as_str()),
            (Code::NotFound, "not_found"),
            "{status:?}"
        );
    }

    let status = AuthServiceClient::new(channel.clone())
        .login(pb::LoginRequest {
            email: shopper.email.clone(),
            password: "wrong password".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::Unauthenticated, "invalid_credentials")
    );
}
