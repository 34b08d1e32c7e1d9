//! The address book's UserService methods, and CreateOrder naming an address, over gRPC.

use souk_proto::v1 as pb;
use souk_proto::v1::order_service_client::OrderServiceClient;
use souk_proto::v1::user_service_client::UserServiceClient;
use tonic::{Code, Request};

use crate::grpc_edges::channel;
use crate::helpers::*;
use crate::orders::product;

#[actix_web::test]
async fn the_address_book_over_grpc() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ada = app.customer("grpc-addresses").await;
    let eve = app.customer("grpc-addresses-eve").await;
    product(&app, &admin, "GADDR-1", 700, 5).await;
    let channel = channel(&app).await;
    let mut users = UserServiceClient::new(channel.clone());
    let token = ada.access_token.as_str();
    let london = pb::PostalAddress {
        name: "Ada".into(),
        line1: "10 Downing Street".into(),
        city: "London".into(),
        postal_code: Some("sw1a 2aa".into()),
        country: "gb".into(),
        ..Default::default()
    };

    let status = users
        .list_addresses(Request::new(pb::ListAddressesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let created = users
        .create_address(authorized(
            pb::CreateAddressRequest {
                address: Some(london.clone()),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    let saved = created.address.clone().unwrap();
    assert_eq!(
        (saved.country.as_str(), saved.postal_code.as_deref()),
        ("GB", Some("SW1A 2AA"))
    );
    let listed = users
        .list_addresses(authorized(pb::ListAddressesRequest::default(), token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.items, vec![created.clone()]);
    assert_eq!(listed.next_cursor, "");
    let read = users
        .get_address(authorized(
            pb::GetAddressRequest {
                id: created.id.clone(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read, created);

    let updated = users
        .update_address(authorized(
            pb::UpdateAddressRequest {
                id: created.id.clone(),
                line2: Some("Flat 1".into()),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updated.address.as_ref().unwrap().line2.as_deref(),
        Some("Flat 1")
    );
    assert_eq!(updated.address.as_ref().unwrap().city, "London");

    // Invalid fields are INVALID_ARGUMENT; empty required fields count as missing.
    let mut bad = london.clone();
    bad.country = "XX".into();
    bad.name = String::new();
    let status = users
        .create_address(authorized(
            pb::CreateAddressRequest { address: Some(bad) },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = users
        .create_address(authorized(
            pb::CreateAddressRequest { address: None },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    // Another user's address is NOT_FOUND for every method.
    let theirs = |id: &str| {
        authorized(
            pb::GetAddressRequest { id: id.to_owned() },
            &eve.access_token,
        )
    };
    assert_eq!(
        users
            .get_address(theirs(&created.id))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let status = users
        .update_address(authorized(
            pb::UpdateAddressRequest {
                id: created.id.clone(),
                city: Some("x".into()),
                ..Default::default()
            },
            &eve.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = users
        .delete_address(authorized(
            pb::DeleteAddressRequest {
                id: created.id.clone(),
            },
            &eve.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    // CreateOrder copies the address; the copy outlives the address book entry.
    let mut orders = OrderServiceClient::new(channel);
    let placed = orders
        .create_order(authorized(
            pb::CreateOrderRequest {
                items: vec![pb::OrderItem {
                    sku: "GADDR-1".into(),
                    quantity: 1,
                }],
                shipping_address_id: created.id.clone(),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(placed.shipping_address, updated.address);
    assert_eq!(placed.billing_address, updated.address);
    let status = orders
        .create_order(authorized(
            pb::CreateOrderRequest {
                items: vec![pb::OrderItem {
                    sku: "GADDR-1".into(),
                    quantity: 1,
                }],
                billing_address_id: created.id.clone(),
                ..Default::default()
            },
            &eve.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    users
        .delete_address(authorized(
            pb::DeleteAddressRequest {
                id: created.id.clone(),
            },
            token,
        ))
        .await
        .unwrap();
    let status = users
        .get_address(authorized(
            pb::GetAddressRequest {
                id: created.id.clone(),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let stored = orders
        .get_order(authorized(
            pb::GetOrderRequest {
                id: placed.id.clone(),
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.shipping_address, updated.address);
    let none = orders
        .create_order(authorized(
            pb::CreateOrderRequest {
                items: vec![pb::OrderItem {
                    sku: "GADDR-1".into(),
                    quantity: 1,
                }],
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((none.shipping_address, none.billing_address), (None, None));
}
