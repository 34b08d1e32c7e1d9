//! The admin console: server-rendered pages under `/admin` on the REST port (askama
//! templates in `templates/console/`, one small script and one stylesheet served by
//! the binary). Admins sign in with a session cookie; every form carries a CSRF token;
//! every response carries a strict Content-Security-Policy. Stock and hot SKUs update
//! live over server-sent events fed by the inventory actors' committed batches.
//!
//! The console reaches the domain only through the services of [`AppState`]: `auth`
//! (sign-in, sessions), `users` (the principal), `inventory`, `catalog`, `orders` and
//! `order_router`.

pub mod assets;
pub mod csrf;
pub mod live;
pub mod orders;
pub mod page;
pub mod session;
pub mod signin;
pub mod stock;
pub mod system;

use actix_web::cookie::Key;
use actix_web::http::header;
use actix_web::middleware::DefaultHeaders;
use actix_web::web;
use sha2::{Digest, Sha512};

use crate::state::AppState;
use crate::topology::{Service, ServiceSet};

/// The console's policy: only this origin's script, style and event stream; no
/// framing, no inline code, forms post only here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console keeps for the life of the node: the cookie key and the live hub.
pub struct Console {
    key: Key,
    hub: live::Hub,
}

impl Console {
    /// The console of a node that runs what it shows (auth, users, catalog, inventory
    /// and orders); `None` on a node split from them.
    pub fn new(state: &web::Data<AppState>) -> anyhow::Result<Option<web::Data<Console>>> {
        if !Self::serves(&state.services) {
            return Ok(None);
        }
        let secret = crate::startup::jwt_secret(&state.config)?;
        Ok(Some(web::Data::new(Console {
            key: cookie_key(&secret),
            hub: live::Hub::new(),
        })))
    }

    fn serves(services: &ServiceSet) -> bool {
        [
            Service::Auth,
            Service::User,
            Service::Product,
            Service::Inventory,
            Service::Order,
        ]
        .into_iter()
        .all(|service| services.contains(service))
    }

    pub fn key(&self) -> &Key {
        &self.key
    }

    pub fn hub(&self) -> &live::Hub {
        &self.hub
    }
}

/// The cookie key: derived from the node's JWT secret (shared by every node of a
/// deployment), separated from its other uses by a label.
fn cookie_key(secret: &[u8]) -> Key {
    let mut hasher = Sha512::new();
    hasher.update(b"souk admin console cookie key v1\0");
    hasher.update(secret);
    Key::from(&hasher.finalize())
}

/// Mounts the console under `/admin` when this node has one.
pub fn configure(config: &mut web::ServiceConfig, console: &Option<web::Data<Console>>) {
    let Some(console) = console else {
        return;
    };
    config.service(
        web::scope("/admin")
            .app_data(console.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(16 * 1024)
                    .error_handler(|error, _| {
                        page::ConsoleError::BadForm(error.to_string()).into()
                    }),
            )
            .app_data(
                web::QueryConfig::default().error_handler(|error, _| {
                    page::ConsoleError::BadForm(error.to_string()).into()
                }),
            )
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                    .add((header::REFERRER_POLICY, "same-origin"))
                    .add(("Cross-Origin-Opener-Policy", "same-origin")),
            )
            .service(web::resource("").route(web::get().to(page::home)))
            .service(web::resource("/").route(web::get().to(page::home)))
            .service(
                web::resource("/login")
                    .route(web::get().to(signin::form))
                    .route(web::post().to(signin::sign_in)),
            )
            .service(web::resource("/logout").route(web::post().to(signin::sign_out)))
            .service(web::resource("/stock").route(web::get().to(stock::table)))
            .service(web::resource("/stock/{sku}").route(web::get().to(stock::sku_page)))
            .service(web::resource("/stock/{sku}/adjust").route(web::post().to(stock::adjust)))
            .service(
                web::resource("/stock/{sku}/reservations")
                    .route(web::get().to(stock::reservations_fragment)),
            )
            .service(web::resource("/orders").route(web::get().to(orders::list)))
            .service(web::resource("/orders/{id}").route(web::get().to(orders::order_page)))
            .service(
                web::resource("/orders/{id}/{action}")
                    .route(web::post().to(orders::transition_order)),
            )
            .service(web::resource("/system").route(web::get().to(system::system_page)))
            .service(web::resource("/cluster").route(web::get().to(system::cluster_page)))
            .service(web::resource("/live").route(web::get().to(live::events)))
            .service(web::resource("/assets/{name}").route(web::get().to(assets::asset)))
            .default_service(web::to(page::not_found)),
    );
}
