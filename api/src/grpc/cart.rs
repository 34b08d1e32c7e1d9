//! `souk.v1.CartService`: the signed-in caller's cart over gRPC, as REST's
//! `/api/v1/cart` — thin calls into the same `CartService`. Guest carts are REST only.

use actix_web::web;
use souk_proto::v1 as pb;
use souk_proto::v1::cart_service_server::CartService;
use tonic::{Request, Response, Status};

use crate::grpc::orders::{money, order_message};
use crate::grpc::{caller, given};
use crate::state::AppState;
use crate::wire::status::to_status;
use souk_actors::cart::{CartCheckout, CartOwner, CartView, LineStatus};

pub struct CartGrpc {
    pub state: web::Data<AppState>,
}

fn status_name(status: LineStatus) -> &'static str {
    match status {
        LineStatus::Available => "available",
        LineStatus::InsufficientStock => "insufficient_stock",
        LineStatus::OutOfStock => "out_of_stock",
        LineStatus::Unavailable => "unavailable",
    }
}

fn cart_message(view: CartView) -> pb::Cart {
    pb::Cart {
        items: view
            .items
            .into_iter()
            .map(|line| pb::CartLine {
                sku: line.sku,
                name: line.name,
                quantity: line.quantity,
                unit_price: line.unit_price.and_then(money),
                line_total: line.line_total.and_then(money),
                price_when_added: money(line.price_when_added),
                price_changed: line.price_changed,
                available: line.available,
                status: status_name(line.status).to_owned(),
                added_at: line.added_at,
            })
            .collect(),
        total: view.total.and_then(money),
        item_count: view.item_count,
        version: view.version,
        updated_at: view.updated_at.unwrap_or_default(),
    }
}

impl CartGrpc {
    async fn owner<T>(&self, request: &Request<T>) -> Result<CartOwner, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        Ok(CartOwner::User(user.id))
    }
}

#[tonic::async_trait]
impl CartService for CartGrpc {
    async fn get_cart(
        &self,
        request: Request<pb::GetCartRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = self.owner(&request).await?;
        let cart = self.state.carts.get(&owner).await.map_err(to_status)?;
        Ok(Response::new(cart_message(cart)))
    }

    async fn set_cart_item(
        &self,
        request: Request<pb::SetCartItemRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = self.owner(&request).await?;
        let body = request.into_inner();
        let cart = self
            .state
            .carts
            .set_item(&owner, &body.sku, body.quantity)
            .await
            .map_err(to_status)?;
        Ok(Response::new(cart_message(cart)))
    }

    async fn remove_cart_item(
        &self,
        request: Request<pb::RemoveCartItemRequest>,
    ) -> Result<Response<pb::Cart>, Status> {
        let owner = self.owner(&request).await?;
        let cart = self
            .state
            .carts
            .remove_item(&owner, &request.get_ref().sku)
            .await
            .map_err(to_status)?;
        Ok(Response::new(cart_message(cart)))
    }

    async fn clear_cart(
        &self,
        request: Request<pb::ClearCartRequest>,
    ) -> Result<Response<pb::ClearCartResponse>, Status> {
        let owner = self.owner(&request).await?;
        self.state.carts.clear(&owner).await.map_err(to_status)?;
        Ok(Response::new(pb::ClearCartResponse {}))
    }

    async fn checkout_cart(
        &self,
        request: Request<pb::CheckoutCartRequest>,
    ) -> Result<Response<pb::CheckoutCartResponse>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let key = super::orders::idempotency_key(&body.idempotency_key)?;
        let choices = CartCheckout {
            shipping_address_id: given(&body.shipping_address_id).map(str::to_owned),
            billing_address_id: given(&body.billing_address_id).map(str::to_owned),
            shipping_method: given(&body.shipping_method).map(str::to_owned),
        };
        let (order, created) = self
            .state
            .carts
            .checkout(&user.id, choices, key)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CheckoutCartResponse {
            order: Some(order_message(order)),
            created,
        }))
    }
}
