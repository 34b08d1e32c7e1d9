//! The cart service: read a cart (priced and checked now), set or remove a line, empty
//! it, merge a guest cart into the signed-in user's, and check it out through the
//! order service's idempotent create. Every change is a read-modify-write of the whole
//! cart, stored only if no other write came first (else read again and retried), so
//! concurrent sessions never lose each other's edits. Checkout takes out of the cart
//! exactly what the order bought, once, after the order exists.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use rand::Rng;
use serde::Serialize;
use souk_db::clock::{now_micros, to_datetime};
use utoipa::ToSchema;

use super::model::{Cart, CartLine, StoredCart, MAX_QUANTITY};
use super::store::CartStore;
use super::view::{cart_view, line_view, CartView};
use crate::catalog::model::parse_sku;
use crate::error::{Error, ErrorCode, FieldErrors};
use crate::identity::secret_token;
use crate::inventory::InventoryService;
use crate::orders::{CreateOrderInput, OrderItemInput, OrderService, OrderView};
use crate::ports::ProductLookup;

/// How often a change is tried again when another write to the same cart won.
const EDIT_ATTEMPTS: u32 = 50;

/// Whose cart: a signed-in user's (by user id) or a guest's (by the token it was given).
#[derive(Debug, Clone)]
pub enum CartOwner {
    User(String),
    Guest(String),
}

/// The store key of a user's cart.
pub fn user_key(user_id: &str) -> String {
    format!("user:{user_id}")
}

fn guest_key(token: &str) -> Result<String, Error> {
    if !secret_token::looks_valid(token) {
        return Err(cart_not_found());
    }
    Ok(format!("guest:{}", secret_token::hash(token)))
}

fn cart_not_found() -> Error {
    Error::not_found("cart")
}

/// A new guest cart: the token that reaches it (shown once; only its hash is stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GuestCart {
    /// Send as the `Souk-Cart-Token` header; 43 URL-safe characters.
    pub token: String,
    /// RFC 3339, UTC; every change of the cart pushes it back by `cart.guest_ttl_secs`.
    pub expires_at: String,
}

/// Checkout's choices besides the lines, which come from the cart.
#[derive(Debug, Clone, Default)]
pub struct CartCheckout {
    pub shipping_address_id: Option<String>,
    pub billing_address_id: Option<String>,
    /// The code of a shipping method serving the shipping address's country.
    pub shipping_method: Option<String>,
}

#[derive(Clone)]
pub struct CartService {
    store: Arc<dyn CartStore>,
    products: Arc<dyn ProductLookup>,
    inventory: InventoryService,
    orders: OrderService,
    guest_ttl: Duration,
}

impl CartService {
    pub fn new(
        store: Arc<dyn CartStore>,
        products: Arc<dyn ProductLookup>,
        inventory: InventoryService,
        orders: OrderService,
        guest_ttl: Duration,
    ) -> Self {
        Self {
            store,
            products,
            inventory,
            orders,
            guest_ttl: guest_ttl.max(Duration::from_secs(1)),
        }
    }

    fn key_and_ttl(&self, owner: &CartOwner) -> Result<(String, Option<Duration>), Error> {
        match owner {
            CartOwner::User(id) => Ok((user_key(id), None)),
            CartOwner::Guest(token) => Ok((guest_key(token)?, Some(self.guest_ttl))),
        }
    }

    /// The stored cart; a user without one has an empty cart, a guest token without
    /// one (unknown or expired) is `not_found`.
    async fn load(&self, owner: &CartOwner, key: &str) -> Result<StoredCart, Error> {
        match (self.store.load(key).await?, owner) {
            (Some(stored), _) => Ok(stored),
            (None, CartOwner::User(_)) => Ok(StoredCart::default()),
            (None, CartOwner::Guest(_)) => Err(cart_not_found()),
        }
    }

    /// Applies `change` to the cart as stored now and writes it if no other write came
    /// first; otherwise reads again and applies it again.
    async fn update<T>(
        &self,
        owner: &CartOwner,
        mut change: impl FnMut(&mut Cart) -> Result<T, Error>,
    ) -> Result<(StoredCart, T), Error> {
        let (key, ttl) = self.key_and_ttl(owner)?;
        for attempt in 0..EDIT_ATTEMPTS {
            let stored = self.load(owner, &key).await?;
            let mut cart = stored.cart.clone();
            let outcome = change(&mut cart)?;
            let now = now_micros();
            cart.updated_at = now;
            cart.expires_at =
                ttl.map(|ttl| now + i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 4));
            if self.store.save(&key, stored.version, &cart, ttl).await? {
                let saved = StoredCart {
                    version: stored.version + 1,
                    cart,
                };
                return Ok((saved, outcome));
            }
            // Another session wrote first: back off a little, at random, and retry.
            let pause = rand::thread_rng().gen_range(0..=(attempt + 1).min(10) * 2);
            tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
        }
        Err(Error::unavailable_retry_after(
            ErrorCode::ServiceUnavailable,
            "the cart keeps changing; retry",
            1,
        ))
    }

    /// Prices every line now and reads its stock.
    async fn view_of(&self, stored: &StoredCart) -> Result<CartView, Error> {
        let lines = try_join_all(stored.cart.lines.iter().map(|line| async move {
            let product = match self.products.active_by_sku(line.sku.clone()).await {
                Ok(product) => Some(product),
                // Gone, or no longer sold by this SKU (its product gained variants).
                Err(error)
                    if matches!(
                        error.code(),
                        ErrorCode::NotFound | ErrorCode::ValidationFailed
                    ) =>
                {
                    None
                }
                Err(error) => return Err(error),
            };
            let available = match &product {
                Some(_) => self.inventory.stock(&line.sku).await?.available,
                None => 0,
            };
            Ok(line_view(line, product.as_ref(), available))
        }))
        .await?;
        Ok(cart_view(stored, lines))
    }

    /// A new, empty guest cart and its token.
    #[tracing::instrument(name = "create_guest_cart", skip(self))]
    pub async fn create_guest(&self) -> Result<GuestCart, Error> {
        // Expired guest carts go when new ones come (Redis forgets them by itself).
        if let Err(error) = self.store.sweep().await {
            tracing::warn!(%error, "cannot sweep expired carts");
        }
        let token = secret_token::generate();
        let (stored, ()) = self.update_new(&token).await?;
        Ok(GuestCart {
            token,
            expires_at: stored
                .cart
                .expires_at
                .map(|at| to_datetime(at).to_rfc3339())
                .unwrap_or_default(),
        })
    }

    async fn update_new(&self, token: &str) -> Result<(StoredCart, ()), Error> {
        let key = guest_key(token)?;
        let now = now_micros();
        let cart = Cart {
            updated_at: now,
            expires_at: Some(
                now + i64::try_from(self.guest_ttl.as_micros()).unwrap_or(i64::MAX / 4),
            ),
            ..Cart::default()
        };
        if !self
            .store
            .save(&key, 0, &cart, Some(self.guest_ttl))
            .await?
        {
            return Err(Error::internal("a new guest cart's key was taken"));
        }
        Ok((StoredCart { version: 1, cart }, ()))
    }

    #[tracing::instrument(name = "get_cart", skip(self, owner))]
    pub async fn get(&self, owner: &CartOwner) -> Result<CartView, Error> {
        let (key, _) = self.key_and_ttl(owner)?;
        let stored = self.load(owner, &key).await?;
        self.view_of(&stored).await
    }

    /// Sets the line of `sku` to `quantity` (0 removes it). `validation_failed` names
    /// `sku` (malformed, or not an active product) and `quantity` (0 to 100); a new
    /// line past 50 is `cart_limit`.
    #[tracing::instrument(name = "set_cart_item", skip(self, owner))]
    pub async fn set_item(
        &self,
        owner: &CartOwner,
        sku: &str,
        quantity: i64,
    ) -> Result<CartView, Error> {
        let mut errors = FieldErrors::default();
        let sku = errors.check("sku", parse_sku(sku));
        if !(0..=MAX_QUANTITY).contains(&quantity) {
            errors.push(
                "quantity",
                format!("must be 0 to {MAX_QUANTITY} (0 removes the line)"),
            );
        }
        errors.finish()?;
        let sku = sku.unwrap_or_default();
        if quantity == 0 {
            let (stored, _) = self.update(owner, |cart| Ok(cart.remove(&sku))).await?;
            return self.view_of(&stored).await;
        }
        let product = match self.products.active_by_sku(sku.clone()).await {
            Ok(product) => product,
            Err(error) if error.code() == ErrorCode::NotFound => {
                let mut errors = FieldErrors::default();
                errors.push("sku", format!("{sku} is not an active product"));
                return Err(errors.finish().unwrap_err());
            }
            // A product's own SKU when it has variants: refused on the field `sku`.
            Err(error) => return Err(error),
        };
        let (stored, ()) = self
            .update(owner, |cart| {
                cart.set(CartLine {
                    sku: sku.clone(),
                    quantity,
                    name: product.name.clone(),
                    price_when_added: product.price.clone(),
                    added_at: now_micros(),
                })
            })
            .await?;
        self.view_of(&stored).await
    }

    /// Removes the line of `sku`; `not_found` when the cart has none.
    #[tracing::instrument(name = "remove_cart_item", skip(self, owner))]
    pub async fn remove_item(&self, owner: &CartOwner, sku: &str) -> Result<CartView, Error> {
        let sku = parse_sku(sku).map_err(|_| Error::not_found("cart line"))?;
        let (stored, ()) = self
            .update(owner, |cart| {
                if cart.remove(&sku) {
                    Ok(())
                } else {
                    Err(Error::not_found("cart line"))
                }
            })
            .await?;
        self.view_of(&stored).await
    }

    /// Removes every line (a guest's token stays valid).
    #[tracing::instrument(name = "clear_cart", skip(self, owner))]
    pub async fn clear(&self, owner: &CartOwner) -> Result<(), Error> {
        self.update(owner, |cart| {
            cart.lines.clear();
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Moves the guest cart of `token` into `user_id`'s: quantities of a SKU in both add
    /// up (at most 100), lines past 50 are dropped. The guest cart is first taken (deleted
    /// if still at the version read), so an edit racing the merge is either merged or
    /// finds the cart gone, never lost; if the user's cart cannot be written, the guest
    /// cart is put back.
    #[tracing::instrument(name = "merge_cart", skip(self, token))]
    pub async fn merge(&self, user_id: &str, token: &str) -> Result<CartView, Error> {
        let guest_owner = CartOwner::Guest(token.to_owned());
        let (key, ttl) = self.key_and_ttl(&guest_owner)?;
        for attempt in 0..EDIT_ATTEMPTS {
            let guest = self.load(&guest_owner, &key).await?;
            if !self.store.delete(&key, Some(guest.version)).await? {
                // A guest edit came between: merge what it left.
                let pause = rand::thread_rng().gen_range(0..=(attempt + 1).min(10) * 2);
                tokio::time::sleep(Duration::from_millis(u64::from(pause))).await;
                continue;
            }
            let operation = format!("merge:{key}:{}", guest.version);
            let merged = self
                .update(&CartOwner::User(user_id.to_owned()), |cart| {
                    Ok(cart.merge(operation.clone(), &guest.cart))
                })
                .await;
            let (stored, dropped) = match merged {
                Ok(merged) => merged,
                Err(error) => {
                    if let Err(restore) = self.store.save(&key, 0, &guest.cart, ttl).await {
                        tracing::error!(%restore, user_id, "a guest cart taken for a failed merge could not be put back");
                    }
                    return Err(error);
                }
            };
            tracing::info!(
                user_id,
                lines = guest.cart.lines.len(),
                dropped,
                "guest cart merged"
            );
            return self.view_of(&stored).await;
        }
        Err(Error::unavailable_retry_after(
            ErrorCode::ServiceUnavailable,
            "the guest cart keeps changing; retry",
            1,
        ))
    }

    /// Places an order for the cart's lines through the order service (with `key`,
    /// idempotently: a retry answers the same order, `false`), then takes out of the
    /// cart exactly what the order bought. An empty cart is `cart_empty`.
    #[tracing::instrument(name = "checkout_cart", skip(self, choices, key), fields(idempotent = key.is_some()))]
    pub async fn checkout(
        &self,
        user_id: &str,
        choices: CartCheckout,
        key: Option<String>,
    ) -> Result<(OrderView, bool), Error> {
        // A namespace of its own, so a key used with POST /orders never collides.
        let order_key = key.map(|key| format!("cart:{}", secret_token::hash(&key)));
        if let Some(order_key) = &order_key {
            if let Some(order) = self
                .orders
                .find_by_idempotency_key(user_id, order_key)
                .await?
            {
                self.take_out(user_id, &order).await;
                return Ok((order, false));
            }
        }
        let owner = CartOwner::User(user_id.to_owned());
        let stored = self.load(&owner, &user_key(user_id)).await?;
        if stored.cart.lines.is_empty() {
            return Err(Error::new(
                ErrorCode::CartEmpty,
                "the cart is empty; add items before checking out",
            ));
        }
        let input = CreateOrderInput {
            items: stored
                .cart
                .lines
                .iter()
                .map(|line| OrderItemInput {
                    sku: line.sku.clone(),
                    quantity: line.quantity,
                })
                .collect(),
            shipping_address_id: choices.shipping_address_id,
            billing_address_id: choices.billing_address_id,
            shipping_method: choices.shipping_method,
        };
        let (order, created) = self.orders.create(user_id, input, order_key).await?;
        self.take_out(user_id, &order).await;
        Ok((order, created))
    }

    /// Takes the order's lines out of the user's cart, once per order. The order
    /// exists whatever happens here: a failure is logged, and a retry with the same
    /// key takes them out then.
    async fn take_out(&self, user_id: &str, order: &OrderView) {
        let ordered: Vec<(String, i64)> = order
            .items
            .iter()
            .map(|line| (line.sku.clone(), line.quantity))
            .collect();
        let taken = self
            .update(&CartOwner::User(user_id.to_owned()), |cart| {
                cart.take_ordered(&order.id, &ordered);
                Ok(())
            })
            .await;
        if let Err(error) = taken {
            tracing::warn!(user_id, order_id = %order.id, %error, "cannot take the ordered lines out of the cart");
        }
    }
}
