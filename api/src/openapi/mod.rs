//! The OpenAPI 3 document, generated from the handlers' annotations.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::rest;

mod formats;
mod problems;

use formats::Formats;
use problems::ProblemResponses;

#[derive(OpenApi)]
#[openapi(
    info(title = "Souk API", description = "Souk e-commerce backend. Errors are application/problem+json with a stable `code`; lists are cursor-paged; money is integer minor units."),
    paths(
        rest::ops::healthz,
        rest::ops::readyz,
        rest::auth::register,
        rest::auth::login,
        rest::auth::refresh,
        rest::auth::logout,
        rest::auth::change_password,
        rest::auth::request_password_reset,
        rest::auth::confirm_password_reset,
        rest::auth::verify_email,
        rest::auth::resend_verification_email,
        rest::auth::confirm_email_change,
        rest::users::get_me,
        rest::users::update_me,
        rest::users::delete_me,
        rest::addresses::list,
        rest::addresses::create,
        rest::addresses::get,
        rest::addresses::update,
        rest::addresses::delete,
        rest::products::list,
        rest::products::get,
        rest::products::get_by_sku,
        rest::products::categories,
        rest::admin_catalog::create_product,
        rest::admin_catalog::update_product,
        rest::admin_catalog::archive_product,
        rest::admin_catalog::restore_product,
        rest::admin_catalog::import_products,
        rest::admin_catalog::create_category,
        rest::admin_catalog::update_category,
        rest::admin_catalog::delete_category,
        rest::orders::create,
        rest::orders::list_own,
        rest::orders::get_own,
        rest::orders::pay,
        rest::orders::cancel_own,
        rest::orders::admin_list,
        rest::orders::admin_get,
        rest::orders::ship,
        rest::orders::deliver,
        rest::orders::admin_cancel,
        rest::payments::webhook,
        rest::shipping::available,
        rest::shipping::admin_list,
        rest::shipping::create,
        rest::shipping::update,
        rest::shipping::delete,
        rest::shipping::tax_rates,
        rest::shipping::put_tax_rate,
        rest::shipping::delete_tax_rate,
        rest::returns::request,
        rest::returns::admin_list,
        rest::returns::approve,
        rest::returns::reject,
        rest::returns::receive,
        rest::returns::refund,
        rest::cart::create_guest,
        rest::cart::get,
        rest::cart::set_item,
        rest::cart::remove_item,
        rest::cart::clear,
        rest::cart::merge,
        rest::cart::checkout,
        rest::admin_inventory::list,
        rest::admin_inventory::get,
        rest::admin_inventory::adjust,
        rest::admin_inventory::movements,
        rest::admin_users::list,
        rest::admin_users::get,
        rest::admin_users::disable,
        rest::admin_users::enable,
        rest::admin_emails::list_sends,
        rest::admin_emails::dead_letters,
        rest::admin_emails::replay,
        rest::admin_system::tree,
        rest::admin_system::cluster,
        rest::admin_search::status,
        rest::admin_search::reindex,
    ),
    components(schemas(crate::error::Problem, crate::error::FieldError, rest::products::SortOrder)),
    modifiers(&BearerAuth, &ProblemResponses, &Formats),
    tags(
        (name = "auth", description = "Registration, login, sessions and passwords"),
        (name = "users", description = "The caller's own account and address book"),
        (name = "catalog", description = "Products and categories, as shoppers see them"),
        (name = "orders", description = "The caller's orders: checkout, payment, cancellation"),
        (name = "cart", description = "The caller's cart (signed in, or a guest's by its Souk-Cart-Token) and checkout from it"),
        (name = "payments", description = "The payment provider's webhook (signed, not a bearer token)"),
        (name = "admin", description = "Administration (admins only)"),
        (name = "ops", description = "Health and readiness (metrics are on the operations address, SOUK_OPS_ADDR)"),
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
        components.add_security_scheme(
            "cart_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Souk-Cart-Token",
                "a guest cart's token, from POST /api/v1/carts/guest",
            ))),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
