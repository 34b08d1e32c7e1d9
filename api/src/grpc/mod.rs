//! The gRPC API (tonic): one service per domain on its own port, thin handlers over the
//! same service layer as REST, with the standard health and reflection services; every
//! call is logged, counted and timed (`observe`).

pub mod addresses;
pub mod auth;
pub mod caller;
pub mod cart;
pub mod email;
pub mod inventory;
pub mod observe;
pub mod orders;
pub mod products;
pub mod returns;
pub mod shipping;
pub mod users;

use std::future::Future;

use actix_web::web;
use souk_proto::v1::auth_service_server::AuthServiceServer;
use souk_proto::v1::cart_service_server::CartServiceServer;
use souk_proto::v1::email_service_server::EmailServiceServer;
use souk_proto::v1::inventory_service_server::InventoryServiceServer;
use souk_proto::v1::order_service_server::OrderServiceServer;
use souk_proto::v1::product_service_server::ProductServiceServer;
use souk_proto::v1::shipping_service_server::ShippingServiceServer;
use souk_proto::v1::user_service_server::UserServiceServer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic_health::ServingStatus;

use crate::state::AppState;
use crate::topology::{Service, ServiceSet};

/// The peer address, for the per-address limits of sign-in and sign-up (as REST's
/// client IP).
pub(crate) fn peer<T>(request: &tonic::Request<T>) -> String {
    request
        .remote_addr()
        .map(|address| address.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A string field as an optional value: proto3's empty string means "not given", as an
/// absent query parameter does in REST.
pub(crate) fn given(text: &str) -> Option<&str> {
    Some(text).filter(|text| !text.is_empty())
}

/// A page limit field: 0 means "not given" (the default page size).
pub(crate) fn given_limit(limit: u32) -> Option<u32> {
    Some(limit).filter(|limit| *limit != 0)
}

/// Serves the gRPC services of `services` on `listener` until `shutdown` resolves;
/// in-flight calls finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: web::Data<AppState>,
    services: ServiceSet,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for service in Service::ALL {
        let status = if services.contains(service) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        health.set_service_status(service.grpc_name(), status).await;
        // Carts, shipping methods and tax rates are served with the orders.
        if service == Service::Order {
            for companion in ["souk.v1.CartService", "souk.v1.ShippingService"] {
                health.set_service_status(companion, status).await;
            }
        }
    }
    // Reflection in both versions: v1, and v1alpha for older grpcurl and Python clients.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(souk_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder()
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .expect("the embedded descriptor sets are valid");
    let local = |service| services.contains(service).then_some(());
    // No message larger than a REST body (tonic's own default is 4 MiB).
    let max_message = state.config.http.max_body_bytes;
    Server::builder()
        .layer(observe::ObserveLayer)
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_optional_service(local(Service::User).map(|()| {
            UserServiceServer::new(users::UserGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        .add_optional_service(local(Service::Auth).map(|()| {
            AuthServiceServer::new(auth::AuthGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        .add_optional_service(local(Service::Product).map(|()| {
            ProductServiceServer::new(products::ProductGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        .add_optional_service(local(Service::Inventory).map(|()| {
            InventoryServiceServer::new(inventory::InventoryGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        .add_optional_service(local(Service::Order).map(|()| {
            OrderServiceServer::new(orders::OrderGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        // Carts belong with the orders they become.
        .add_optional_service(local(Service::Order).map(|()| {
            CartServiceServer::new(cart::CartGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        // Shipping methods and tax rates price checkouts: served where orders are.
        .add_optional_service(local(Service::Order).map(|()| {
            ShippingServiceServer::new(shipping::ShippingGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        .add_optional_service(local(Service::Email).map(|()| {
            EmailServiceServer::new(email::EmailGrpc {
                state: state.clone(),
            })
            .max_decoding_message_size(max_message)
        }))
        // Without TCP_NODELAY small responses wait for the peer's delayed ACK (~40 ms).
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
