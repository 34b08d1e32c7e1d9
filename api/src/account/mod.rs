//! The shopper's pages that mail links land on, server-rendered: the account's home
//! (`/account`, what every mail's footer links to), confirm an email
//! address (`/account/verify-email`), confirm a new one (`/account/confirm-email`),
//! choose a new password (`/account/reset-password`, and `/account/forgot-password` to
//! ask for the link), and an order's status (`/account/orders/{id}`, opened by a link
//! signed for that order). A page opened from a link only shows a form; the token is
//! spent when the form is sent, so a mail scanner that fetches links spends nothing.

mod forms;
mod order;
mod page;

use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use souk_actors::orders::OrderLinks;

use crate::state::AppState;
use crate::topology::{Service, ServiceSet};

/// No script, styles only from here, forms post only here, never framed, and no
/// referrer: the pages' URLs carry tokens.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the pages keep for the life of the node: the key of the order links.
pub struct Account {
    order_links: OrderLinks,
}

impl Account {
    /// The pages of a node that runs what they use (auth, users, email and orders);
    /// `None` on a node split from them.
    pub fn new(state: &web::Data<AppState>) -> anyhow::Result<Option<web::Data<Account>>> {
        if !Self::serves(&state.services) {
            return Ok(None);
        }
        let secret = crate::startup::jwt_secret(&state.config)?;
        Ok(Some(web::Data::new(Account {
            order_links: OrderLinks::new(&secret),
        })))
    }

    fn serves(services: &ServiceSet) -> bool {
        [Service::Auth, Service::User, Service::Email, Service::Order]
            .into_iter()
            .all(|service| services.contains(service))
    }
}

pub fn configure(routes: &mut web::ServiceConfig, account: &Option<web::Data<Account>>) {
    let Some(account) = account else {
        return;
    };
    routes.service(
        web::scope("/account")
            .app_data(account.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(8 * 1024)
                    .error_handler(|error, _| page::PageError::BadForm(error.to_string()).into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|error, _| page::PageError::BadForm(error.to_string()).into()),
            )
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "no-referrer"))
                    .add((header::CACHE_CONTROL, "no-store")),
            )
            .service(web::resource("").route(web::get().to(forms::home)))
            .service(web::resource("/").route(web::get().to(forms::home)))
            .service(
                web::resource("/verify-email")
                    .route(web::get().to(forms::verify_email_form))
                    .route(web::post().to(forms::verify_email)),
            )
            .service(
                web::resource("/confirm-email")
                    .route(web::get().to(forms::confirm_email_form))
                    .route(web::post().to(forms::confirm_email)),
            )
            .service(
                web::resource("/reset-password")
                    .route(web::get().to(forms::reset_password_form))
                    .route(web::post().to(forms::reset_password)),
            )
            .service(
                web::resource("/forgot-password")
                    .route(web::get().to(forms::forgot_password_form))
                    .route(web::post().to(forms::forgot_password)),
            )
            .service(web::resource("/orders/{id}").route(web::get().to(order::order_status)))
            .service(web::resource("/account.css").route(web::get().to(page::stylesheet)))
            .default_service(web::to(page::not_found)),
    );
}
