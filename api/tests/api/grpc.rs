//! The gRPC API against a real node: the same flows, rules and errors as REST, on the
//! gRPC port, with health checking and reflection.

use serde_json::json;
use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_client::AuthServiceClient;
use souk_proto::v1::inventory_service_client::InventoryServiceClient;
use souk_proto::v1::order_service_client::OrderServiceClient;
use souk_proto::v1::product_service_client::ProductServiceClient;
use souk_proto::v1::user_service_client::UserServiceClient;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::grpc_edges::channel;
use crate::helpers::*;

/// `CreateOrder` for one line, as `token`'s owner; an empty key means none.
fn order_request(
    sku: &str,
    quantity: i64,
    idempotency_key: &str,
    token: &str,
) -> Request<pb::CreateOrderRequest> {
    authorized(
        pb::CreateOrderRequest {
            items: vec![pb::OrderItem {
                sku: sku.to_owned(),
                quantity,
            }],
            idempotency_key: idempotency_key.to_owned(),
            ..Default::default()
        },
        token,
    )
}

/// The stable Souk code a status carries in its `ErrorInfo`.
fn souk_code(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

async fn active_product(app: &TestApp, admin: &Session, sku: &str, stock: i64) {
    let created = app
        .post_json_as(
            "/api/v1/admin/products",
            &admin.access_token,
            &json!({"sku": sku, "name": format!("Item {sku}"), "price": {"amount": 1250, "currency": "EUR"}, "status": "active"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let adjusted = app
        .post_json_as(
            &format!("/api/v1/admin/inventory/{sku}/adjust"),
            &admin.access_token,
            &json!({"delta": stock, "reason": "initial stock"}),
        )
        .await;
    assert_eq!(adjusted.status(), 200);
}

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
        .unwrap()
        .into_inner();
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
        .unwrap()
        .into_inner();
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
                },
                &admin.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "delta {delta}");
    }

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
    let stock = inventory
        .get_stock(authorized(
            pb::GetStockRequest {
                sku: "GRPC-2".into(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stock.on_hand, stock.reserved), (5, 1));
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

#[actix_web::test]
async fn health_and_reflection_describe_the_services() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let app = spawn_app().await;
    let channel = channel(&app).await;
    let mut health = HealthClient::new(channel.clone());
    for service in [
        "souk.v1.UserService",
        "souk.v1.AuthService",
        "souk.v1.ProductService",
        "souk.v1.OrderService",
        "souk.v1.CartService",
        "souk.v1.InventoryService",
        "souk.v1.EmailService",
        "souk.v1.ShippingService",
    ] {
        let answer = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32, "{service}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "souk.v1.NoSuchService".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "souk.v1.OrderService",
        "souk.v1.CartService",
        "souk.v1.InventoryService",
        "souk.v1.ShippingService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&expected.to_owned()), "{names:?}");
    }

    // The older v1alpha reflection answers the same.
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
    let request = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let mut answers = AlphaClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(AlphaResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("expected a service list from v1alpha");
    };
    assert!(
        list.service
            .iter()
            .any(|service| service.name == "souk.v1.OrderService"),
        "{list:?}"
    );
}

#[actix_web::test]
async fn mail_admin_and_verification_over_grpc() {
    use souk_proto::v1::email_service_client::EmailServiceClient;

    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("grpc-mail").await;
    let channel = channel(&app).await;
    let mut email = EmailServiceClient::new(channel.clone());

    let sends = email
        .list_sends(authorized(
            pb::ListSendsRequest {
                cursor: String::new(),
                limit: 10,
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(sends.items.len() <= 10);
    let status = email
        .list_sends(authorized(
            pb::ListSendsRequest::default(),
            &shopper.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = email
        .list_dead_letters(pb::ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = email
        .list_dead_letters(authorized(
            pb::ListDeadLettersRequest {
                cursor: "not-a-cursor!".into(),
                limit: 0,
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::InvalidArgument, "invalid_cursor")
    );
    let status = email
        .list_sends(authorized(
            pb::ListSendsRequest {
                cursor: String::new(),
                limit: 1000,
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = email
        .replay_dead_letter(authorized(
            pb::ReplayDeadLetterRequest {
                id: "01890000-0000-7000-8000-000000000000".into(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::NotFound, "not_found")
    );

    let status = AuthServiceClient::new(channel)
        .verify_email(pb::VerifyEmailRequest {
            token: "forged-token-that-was-never-issued-by-souk0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::InvalidArgument, "invalid_verification_token")
    );
}
