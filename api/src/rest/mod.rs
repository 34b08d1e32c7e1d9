//! REST handlers: thin translations between HTTP and the service layer.
//!
//! Every path is a `web::resource`, so a wrong method on a known path answers 405
//! (`method_not_allowed`) rather than falling through to 404.

pub mod addresses;
pub mod admin_catalog;
pub mod admin_emails;
pub mod admin_inventory;
pub mod admin_search;
pub mod admin_system;
pub mod admin_users;
pub mod auth;
pub mod cart;
pub mod docs;
pub mod headers;
pub mod import_csv;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod products;
pub mod returns;
pub mod shipping;
pub mod users;
pub mod views;

use actix_web::web;

use crate::topology::{Service, ServiceSet};

/// The routes of the services this node runs (all of them unless split with
/// `--services`); `startup` wraps them with the shared middleware.
pub fn configure(config: &mut web::ServiceConfig, services: &ServiceSet) {
    let mut api = web::scope("/api/v1")
        .service(web::resource("/openapi.json").route(web::get().to(docs::openapi_json)))
        .service(web::resource("/docs").route(web::get().to(docs::docs_page)));
    if services.contains(Service::Auth) {
        api = api.service(
            web::scope("/auth")
                .service(web::resource("/register").route(web::post().to(auth::register)))
                .service(web::resource("/login").route(web::post().to(auth::login)))
                .service(web::resource("/refresh").route(web::post().to(auth::refresh)))
                .service(web::resource("/logout").route(web::post().to(auth::logout)))
                .service(web::resource("/password").route(web::post().to(auth::change_password)))
                .service(
                    web::resource("/password-reset")
                        .route(web::post().to(auth::request_password_reset)),
                )
                .service(
                    web::resource("/password-reset/confirm")
                        .route(web::post().to(auth::confirm_password_reset)),
                )
                .service(web::resource("/verify-email").route(web::get().to(auth::verify_email)))
                .service(
                    web::resource("/verify-email/resend")
                        .route(web::post().to(auth::resend_verification_email)),
                )
                .service(
                    web::resource("/confirm-email-change")
                        .route(web::post().to(auth::confirm_email_change)),
                ),
        );
    }
    if services.contains(Service::User) {
        api = api
            .service(
                web::resource("/users/me")
                    .route(web::get().to(users::get_me))
                    .route(web::patch().to(users::update_me))
                    .route(web::delete().to(users::delete_me)),
            )
            .service(
                web::resource("/users/me/addresses")
                    .route(web::get().to(addresses::list))
                    .route(web::post().to(addresses::create)),
            )
            .service(
                web::resource("/users/me/addresses/{id}")
                    .route(web::get().to(addresses::get))
                    .route(web::patch().to(addresses::update))
                    .route(web::delete().to(addresses::delete)),
            )
            .service(
                web::scope("/admin/users")
                    .service(web::resource("").route(web::get().to(admin_users::list)))
                    .service(web::resource("/{id}").route(web::get().to(admin_users::get)))
                    .service(
                        web::resource("/{id}/disable").route(web::post().to(admin_users::disable)),
                    )
                    .service(
                        web::resource("/{id}/enable").route(web::post().to(admin_users::enable)),
                    ),
            );
    }
    if services.contains(Service::Product) {
        api = api
            .service(web::resource("/products").route(web::get().to(products::list)))
            .service(
                web::resource("/products/sku/{sku}").route(web::get().to(products::get_by_sku)),
            )
            .service(web::resource("/products/{id}").route(web::get().to(products::get)))
            .service(web::resource("/categories").route(web::get().to(products::categories)))
            .service(
                web::scope("/admin/products")
                    .service(web::resource("").route(web::post().to(admin_catalog::create_product)))
                    .service(
                        web::resource("/import")
                            .app_data(web::PayloadConfig::new(admin_catalog::IMPORT_MAX_BYTES))
                            .route(web::post().to(admin_catalog::import_products)),
                    )
                    .service(
                        web::resource("/{id}")
                            .route(web::patch().to(admin_catalog::update_product)),
                    )
                    .service(
                        web::resource("/{id}/archive")
                            .route(web::post().to(admin_catalog::archive_product)),
                    )
                    .service(
                        web::resource("/{id}/restore")
                            .route(web::post().to(admin_catalog::restore_product)),
                    ),
            )
            .service(
                web::scope("/admin/categories")
                    .service(
                        web::resource("").route(web::post().to(admin_catalog::create_category)),
                    )
                    .service(
                        web::resource("/{id}")
                            .route(web::patch().to(admin_catalog::update_category))
                            .route(web::delete().to(admin_catalog::delete_category)),
                    ),
            );
    }
    if services.contains(Service::Product) {
        api = api.service(
            web::scope("/admin/search")
                .service(web::resource("").route(web::get().to(admin_search::status)))
                .service(web::resource("/reindex").route(web::post().to(admin_search::reindex))),
        );
    }
    if services.contains(Service::Order) {
        api = api
            .service(
                web::scope("/orders")
                    .service(
                        web::resource("")
                            .route(web::post().to(orders::create))
                            .route(web::get().to(orders::list_own)),
                    )
                    .service(web::resource("/{id}").route(web::get().to(orders::get_own)))
                    .service(web::resource("/{id}/pay").route(web::post().to(orders::pay)))
                    .service(
                        web::resource("/{id}/cancel").route(web::post().to(orders::cancel_own)),
                    )
                    .service(
                        web::resource("/{id}/returns").route(web::post().to(returns::request)),
                    ),
            )
            .service(
                web::scope("/admin/orders")
                    .service(web::resource("").route(web::get().to(orders::admin_list)))
                    .service(web::resource("/{id}").route(web::get().to(orders::admin_get)))
                    .service(web::resource("/{id}/ship").route(web::post().to(orders::ship)))
                    .service(web::resource("/{id}/deliver").route(web::post().to(orders::deliver)))
                    .service(
                        web::resource("/{id}/cancel").route(web::post().to(orders::admin_cancel)),
                    )
                    .service(
                        web::scope("/{id}/returns/{return_id}")
                            .service(
                                web::resource("/approve").route(web::post().to(returns::approve)),
                            )
                            .service(
                                web::resource("/reject").route(web::post().to(returns::reject)),
                            )
                            .service(
                                web::resource("/receive").route(web::post().to(returns::receive)),
                            )
                            .service(
                                web::resource("/refund").route(web::post().to(returns::refund)),
                            ),
                    ),
            )
            .service(web::resource("/payments/webhook").route(web::post().to(payments::webhook)))
            .service(web::resource("/admin/returns").route(web::get().to(returns::admin_list)))
            // Carts belong with the orders they become.
            .service(web::resource("/carts/guest").route(web::post().to(cart::create_guest)))
            .service(
                web::resource("/cart")
                    .route(web::get().to(cart::get))
                    .route(web::delete().to(cart::clear)),
            )
            .service(
                web::resource("/cart/items/{sku}")
                    .route(web::put().to(cart::set_item))
                    .route(web::delete().to(cart::remove_item)),
            )
            .service(web::resource("/cart/merge").route(web::post().to(cart::merge)))
            .service(web::resource("/cart/checkout").route(web::post().to(cart::checkout)))
            .service(web::resource("/shipping-methods").route(web::get().to(shipping::available)))
            .service(
                web::scope("/admin/shipping-methods")
                    .service(
                        web::resource("")
                            .route(web::get().to(shipping::admin_list))
                            .route(web::post().to(shipping::create)),
                    )
                    .service(
                        web::resource("/{code}")
                            .route(web::patch().to(shipping::update))
                            .route(web::delete().to(shipping::delete)),
                    ),
            )
            .service(
                web::scope("/admin/tax-rates")
                    .service(web::resource("").route(web::get().to(shipping::tax_rates)))
                    .service(
                        web::resource("/{country}")
                            .route(web::put().to(shipping::put_tax_rate))
                            .route(web::delete().to(shipping::delete_tax_rate)),
                    ),
            );
    }
    if services.contains(Service::Inventory) {
        api = api.service(
            web::scope("/admin/inventory")
                .service(web::resource("").route(web::get().to(admin_inventory::list)))
                .service(web::resource("/{sku}").route(web::get().to(admin_inventory::get)))
                .service(
                    web::resource("/{sku}/adjust").route(web::post().to(admin_inventory::adjust)),
                )
                .service(
                    web::resource("/{sku}/movements")
                        .route(web::get().to(admin_inventory::movements)),
                ),
        );
    }
    if services.contains(Service::Email) {
        api = api.service(
            web::scope("/admin/emails")
                .service(web::resource("").route(web::get().to(admin_emails::list_sends)))
                .service(
                    web::resource("/dead-letters").route(web::get().to(admin_emails::dead_letters)),
                )
                .service(
                    web::resource("/dead-letters/{id}/replay")
                        .route(web::post().to(admin_emails::replay)),
                ),
        );
    }
    api = api
        .service(web::resource("/admin/system/tree").route(web::get().to(admin_system::tree)))
        .service(web::resource("/admin/cluster").route(web::get().to(admin_system::cluster)));
    // Probes stay on the public port too (load balancers use them); `/metrics` is only
    // on the operations address.
    config
        .service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(api);
}

/// The routes of the operations address (`http.ops_addr`): what Prometheus scrapes and
/// Kubernetes probes.
pub fn configure_ops(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/healthz").route(web::get().to(ops::healthz)))
        .service(web::resource("/readyz").route(web::get().to(ops::readyz)))
        .service(web::resource("/metrics").route(web::get().to(ops::metrics)));
}
