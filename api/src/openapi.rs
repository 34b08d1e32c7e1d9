//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Souk API", description = "Souk e-commerce backend. Errors are application/problem+json with a stable `code`; lists are cursor-paged; money is integer minor units."),
    paths(
        routes::ops::healthz,
        routes::ops::readyz,
        routes::ops::metrics,
        routes::auth::register,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::change_password,
        routes::auth::request_password_reset,
        routes::auth::confirm_password_reset,
        routes::auth::verify_email,
        routes::users::get_me,
        routes::users::update_me,
        routes::users::delete_me,
        routes::products::list,
        routes::products::get,
        routes::products::get_by_sku,
        routes::products::categories,
        routes::admin_catalog::create_product,
        routes::admin_catalog::update_product,
        routes::admin_catalog::archive_product,
        routes::admin_catalog::restore_product,
        routes::admin_catalog::import_products,
        routes::admin_catalog::create_category,
        routes::admin_catalog::update_category,
        routes::admin_catalog::delete_category,
        routes::orders::create,
        routes::orders::list_own,
        routes::orders::get_own,
        routes::orders::pay,
        routes::orders::cancel_own,
        routes::orders::admin_list,
        routes::orders::admin_get,
        routes::orders::ship,
        routes::orders::deliver,
        routes::orders::admin_cancel,
        routes::admin_inventory::list,
        routes::admin_inventory::get,
        routes::admin_inventory::adjust,
        routes::admin_inventory::movements,
        routes::admin_users::list,
        routes::admin_users::get,
        routes::admin_users::disable,
        routes::admin_users::enable,
        routes::admin_emails::list_sends,
        routes::admin_emails::dead_letters,
        routes::admin_emails::replay,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Registration, login, sessions and passwords"),
        (name = "users", description = "The caller's own account"),
        (name = "catalog", description = "Products and categories, as shoppers see them"),
        (name = "orders", description = "The caller's orders: checkout, payment, cancellation"),
        (name = "admin", description = "Administration (admins only)"),
        (name = "ops", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
