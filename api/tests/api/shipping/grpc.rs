//! `souk.v1.ShippingService` and CreateOrder with a shipping method, over gRPC: the
//! same rules as REST, refusals as INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND and
//! ALREADY_EXISTS.

use souk_proto::v1 as pb;
use souk_proto::v1::order_service_client::OrderServiceClient;
use souk_proto::v1::shipping_service_client::ShippingServiceClient;
use souk_proto::v1::user_service_client::UserServiceClient;
use tonic::{Code, Request};

use crate::grpc_edges::channel;
use crate::helpers::*;
use crate::orders::product;

fn authorized<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn eur(amount: i64) -> Option<pb::Money> {
    Some(pb::Money {
        amount,
        currency: "EUR".into(),
    })
}

#[actix_web::test]
async fn shipping_and_tax_over_grpc() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let ada = app.customer("grpc-shipping").await;
    product(&app, &admin, "GSHIP-1", 1000, 10).await;
    let channel = channel(&app).await;
    let mut shipping = ShippingServiceClient::new(channel.clone());
    let token = admin.access_token.as_str();
    let standard = pb::CreateShippingMethodRequest {
        code: "Standard".into(),
        name: "Standard post".into(),
        countries: vec!["de".into(), "at".into()],
        rate: eur(490),
        free_above: eur(5000),
        active: None,
    };

    // Admins only; the public list needs no token.
    let status = shipping
        .create_shipping_method(Request::new(standard.clone()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let status = shipping
        .create_shipping_method(authorized(standard.clone(), &ada.access_token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = shipping
        .put_tax_rate(authorized(
            pb::PutTaxRateRequest {
                country: "DE".into(),
                rate_bps: 1900,
            },
            &ada.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    let created = shipping
        .create_shipping_method(authorized(standard.clone(), token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.code, "standard");
    assert_eq!(created.countries, ["AT", "DE"]);
    assert!(created.active);
    assert_eq!(created.free_above, eur(5000));
    let status = shipping
        .create_shipping_method(authorized(standard.clone(), token))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    for bad in [
        pb::CreateShippingMethodRequest {
            code: "x y".into(),
            ..standard.clone()
        },
        pb::CreateShippingMethodRequest {
            countries: vec!["ZZ".into()],
            code: "zz".into(),
            ..standard.clone()
        },
        pb::CreateShippingMethodRequest {
            rate: None,
            code: "norate".into(),
            ..standard.clone()
        },
    ] {
        let status = shipping
            .create_shipping_method(authorized(bad, token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }

    // Update: only what is set; clearing the threshold; an unknown code.
    let updated = shipping
        .update_shipping_method(authorized(
            pb::UpdateShippingMethodRequest {
                code: "standard".into(),
                name: Some("Standard".into()),
                clear_free_above: true,
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.name.as_str(), updated.free_above.clone()),
        ("Standard", None)
    );
    assert_eq!(updated.rate, eur(490));
    let status = shipping
        .update_shipping_method(authorized(
            pb::UpdateShippingMethodRequest {
                code: "nothing".into(),
                active: Some(false),
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    // Lists: the public one by country, the admin one whole.
    let for_germany = shipping
        .list_shipping_methods(Request::new(pb::ListShippingMethodsRequest {
            country: "de".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(for_germany.items, vec![updated.clone()]);
    let for_france = shipping
        .list_shipping_methods(Request::new(pb::ListShippingMethodsRequest {
            country: "FR".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(for_france.items.is_empty());
    let status = shipping
        .list_shipping_methods(Request::new(pb::ListShippingMethodsRequest {
            country: "XX".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let all = shipping
        .admin_list_shipping_methods(authorized(pb::AdminListShippingMethodsRequest {}, token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.items.len(), 1);

    // Tax rates.
    let rate = shipping
        .put_tax_rate(authorized(
            pb::PutTaxRateRequest {
                country: "de".into(),
                rate_bps: 1900,
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((rate.country.as_str(), rate.rate_bps), ("DE", 1900));
    for (country, rate_bps) in [("DE", 10_001), ("DE", -5), ("QQ", 100)] {
        let status = shipping
            .put_tax_rate(authorized(
                pb::PutTaxRateRequest {
                    country: country.into(),
                    rate_bps,
                },
                token,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    let rates = shipping
        .list_tax_rates(authorized(pb::ListTaxRatesRequest {}, token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rates.items, vec![rate]);

    // CreateOrder with the method: the totals, and the refusals.
    let mut users = UserServiceClient::new(channel.clone());
    let berlin = users
        .create_address(authorized(
            pb::CreateAddressRequest {
                address: Some(pb::PostalAddress {
                    name: "Ada".into(),
                    line1: "Unter den Linden 1".into(),
                    city: "Berlin".into(),
                    postal_code: Some("10117".into()),
                    country: "DE".into(),
                    ..Default::default()
                }),
            },
            &ada.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut orders = OrderServiceClient::new(channel.clone());
    let request = pb::CreateOrderRequest {
        items: vec![pb::OrderItem {
            sku: "GSHIP-1".into(),
            quantity: 2,
        }],
        shipping_address_id: berlin.id.clone(),
        shipping_method: "standard".into(),
        ..Default::default()
    };
    let order = orders
        .create_order(authorized(request.clone(), &ada.access_token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (order.subtotal, order.shipping, order.tax, order.total),
        (eur(2000), eur(490), eur(398), eur(2490))
    );
    assert_eq!((order.tax_rate_bps, order.prices_include_tax), (1900, true));
    assert_eq!(
        order.shipping_method,
        Some(pb::OrderShippingMethod {
            code: "standard".into(),
            name: "Standard".into()
        })
    );
    for bad in [
        pb::CreateOrderRequest {
            shipping_address_id: String::new(),
            ..request.clone()
        },
        pb::CreateOrderRequest {
            shipping_method: "nothing".into(),
            ..request.clone()
        },
    ] {
        let status = orders
            .create_order(authorized(bad, &ada.access_token))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }

    // Deletes, then NOT_FOUND.
    shipping
        .delete_shipping_method(authorized(
            pb::DeleteShippingMethodRequest {
                code: "standard".into(),
            },
            token,
        ))
        .await
        .unwrap();
    let status = shipping
        .delete_shipping_method(authorized(
            pb::DeleteShippingMethodRequest {
                code: "standard".into(),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    shipping
        .delete_tax_rate(authorized(
            pb::DeleteTaxRateRequest {
                country: "DE".into(),
            },
            token,
        ))
        .await
        .unwrap();
    let status = shipping
        .delete_tax_rate(authorized(
            pb::DeleteTaxRateRequest {
                country: "DE".into(),
            },
            token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}
