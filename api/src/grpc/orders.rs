//! `souk.v1.OrderService`: orders over gRPC. Commands go through the orders' actors
//! exactly as REST's do; a shopper only ever sees their own orders, an admin any.

use crate::wire::status::to_status;
use actix_web::web;
use souk_actors::orders::Event;
use souk_db::orders::OrderFilter;
use souk_proto::v1 as pb;
use souk_proto::v1::order_service_server::OrderService;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::grpc::addresses::postal_address_message;
use crate::grpc::{caller, given, given_limit, returns};
use crate::state::AppState;
use souk_actors::catalog::service::{Money, MoneyInput};
use souk_actors::orders::views::{
    checked_idempotency_key, checked_payment_method, checked_reason, decode_order_cursor,
    encode_order_cursor, AdminOrderQuery,
};
use souk_actors::orders::{Caller, CreateOrderInput, OrderItemInput, OrderView, ReturnCommand};
use souk_actors::paging::checked_limit;

pub struct OrderGrpc {
    pub state: web::Data<AppState>,
}

pub fn money(value: Money) -> Option<pb::Money> {
    Some(pb::Money {
        amount: value.amount,
        currency: value.currency,
    })
}

/// A request's money as the domains take it.
pub fn money_input(money: pb::Money) -> MoneyInput {
    MoneyInput {
        amount: money.amount,
        currency: money.currency,
    }
}

pub fn order_message(view: OrderView) -> pb::Order {
    pb::Order {
        id: view.id,
        user_id: view.user_id,
        status: view.status,
        payment_status: view.payment_status,
        fulfilment_status: view.fulfilment_status,
        items: view
            .items
            .into_iter()
            .map(|line| pb::OrderLine {
                sku: line.sku,
                product_id: line.product_id,
                name: line.name,
                unit_price: money(line.unit_price),
                quantity: line.quantity,
                line_total: money(line.line_total),
            })
            .collect(),
        total: money(view.total),
        expires_at: view.expires_at,
        created_at: view.created_at,
        updated_at: view.updated_at,
        history: view
            .history
            .into_iter()
            .map(|entry| pb::HistoryEntry {
                from: entry.from.unwrap_or_default(),
                to: entry.to,
                actor: entry.actor,
                reason: entry.reason,
                at: entry.at,
            })
            .collect(),
        returns: view
            .returns
            .into_iter()
            .map(returns::return_message)
            .collect(),
        refunds: view
            .refunds
            .into_iter()
            .map(|refund| pb::Refund {
                id: refund.id,
                amount: money(refund.amount),
                reason: refund.reason,
                at: refund.at,
            })
            .collect(),
        shipping_address: view.shipping_address.map(postal_address_message),
        billing_address: view.billing_address.map(postal_address_message),
        subtotal: money(view.subtotal),
        shipping: money(view.shipping),
        tax: money(view.tax),
        tax_rate_bps: view.tax_rate_bps,
        prices_include_tax: view.prices_include_tax,
        shipping_method: view.shipping_method.map(|method| pb::OrderShippingMethod {
            code: method.code,
            name: method.name,
        }),
    }
}

impl OrderGrpc {
    /// The order `id` if the caller may see it: its owner (`owner`), or an admin (`None`).
    async fn read(&self, id: &str, owner: Option<&str>) -> Result<Response<pb::Order>, Status> {
        let order = self.state.orders.get(id, owner).await.map_err(to_status)?;
        Ok(Response::new(order_message(order)))
    }

    /// One page of the orders `filter` selects, with the cursor of the next.
    async fn page(&self, filter: &OrderFilter) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let (items, next) = self.state.orders.list(filter).await.map_err(to_status)?;
        Ok(Response::new(pb::ListOrdersResponse {
            items: items.into_iter().map(order_message).collect(),
            next_cursor: encode_order_cursor(next).unwrap_or_default(),
        }))
    }

    /// Cancels an order as `caller`, with the request's reason or `default`.
    async fn cancel(
        &self,
        caller: Caller,
        body: pb::CancelOrderRequest,
        default: &str,
    ) -> Result<Response<pb::Order>, Status> {
        let order = self
            .state
            .orders
            .cancel(
                caller,
                &body.id,
                &checked_reason(Some(body.reason), default),
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(order_message(order)))
    }

    /// Ships or delivers an order: the admin's fulfilment steps.
    async fn fulfil(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        id: &str,
        event: Event,
    ) -> Result<Response<pb::Order>, Status> {
        let admin = caller::admin(&self.state, metadata)
            .await
            .map_err(to_status)?;
        let order = self
            .state
            .orders
            .fulfil(&admin.id, id, event)
            .await
            .map_err(to_status)?;
        Ok(Response::new(order_message(order)))
    }
}

/// The response metadata of `CreateOrder` that says whether the call placed the order
/// (`true`) or found the one an earlier call with its Idempotency-Key placed (`false`).
const CREATED_METADATA: &str = "souk-created";

/// The `idempotency_key` field of a checkout: empty means none.
pub(crate) fn idempotency_key(raw: &str) -> Result<Option<String>, Status> {
    given(raw)
        .map(|key| checked_idempotency_key("idempotency_key", key))
        .transpose()
        .map_err(to_status)
}

#[tonic::async_trait]
impl OrderService for OrderGrpc {
    async fn create_order(
        &self,
        request: Request<pb::CreateOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let key = idempotency_key(&body.idempotency_key)?;
        let input = CreateOrderInput {
            items: body
                .items
                .into_iter()
                .map(|item| OrderItemInput {
                    sku: item.sku,
                    quantity: item.quantity,
                })
                .collect(),
            shipping_address_id: given(&body.shipping_address_id).map(str::to_owned),
            billing_address_id: given(&body.billing_address_id).map(str::to_owned),
            shipping_method: given(&body.shipping_method).map(str::to_owned),
        };
        let (order, created) = self
            .state
            .orders
            .create(&user.id, input, key)
            .await
            .map_err(to_status)?;
        let mut response = Response::new(order_message(order));
        // REST's 201 or 200: whether this call placed the order, or a retry with the
        // same Idempotency-Key found it.
        response.metadata_mut().insert(
            CREATED_METADATA,
            MetadataValue::from_static(if created { "true" } else { "false" }),
        );
        Ok(response)
    }

    async fn get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        self.read(&request.get_ref().id, Some(&user.id)).await
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let filter = OrderFilter {
            user_id: Some(user.id),
            before: decode_order_cursor(given(&body.cursor)).map_err(to_status)?,
            limit: checked_limit(given_limit(body.limit)).map_err(to_status)?,
            ..OrderFilter::default()
        };
        self.page(&filter).await
    }

    async fn admin_get_order(
        &self,
        request: Request<pb::GetOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        self.read(&request.get_ref().id, None).await
    }

    async fn admin_list_orders(
        &self,
        request: Request<pb::AdminListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let filter = AdminOrderQuery {
            status: given(&body.status),
            user_id: given(&body.user_id),
            from: given(&body.from),
            to: given(&body.to),
            cursor: given(&body.cursor),
            limit: given_limit(body.limit),
        }
        .filter()
        .map_err(to_status)?;
        self.page(&filter).await
    }

    async fn admin_cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let admin = caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        self.cancel(Caller::Admin(admin.id), body, "cancelled by an admin")
            .await
    }

    async fn pay_order(
        &self,
        request: Request<pb::PayOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let method = checked_payment_method(&body.payment_method).map_err(to_status)?;
        let order = self
            .state
            .orders
            .pay(&user.id, &body.id, &method)
            .await
            .map_err(to_status)?;
        Ok(Response::new(order_message(order)))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        self.cancel(Caller::Shopper(user.id), body, "cancelled by the shopper")
            .await
    }

    async fn ship_order(
        &self,
        request: Request<pb::ShipOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let id = request.get_ref().id.clone();
        self.fulfil(request.metadata(), &id, Event::Ship).await
    }

    async fn deliver_order(
        &self,
        request: Request<pb::DeliverOrderRequest>,
    ) -> Result<Response<pb::Order>, Status> {
        let id = request.get_ref().id.clone();
        self.fulfil(request.metadata(), &id, Event::Deliver).await
    }

    async fn list_returns(
        &self,
        request: Request<pb::ListReturnsRequest>,
    ) -> Result<Response<pb::ListReturnsResponse>, Status> {
        returns::list(&self.state, request).await
    }

    async fn request_return(
        &self,
        request: Request<pb::RequestReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        returns::request(&self.state, request).await
    }

    async fn approve_return(
        &self,
        request: Request<pb::ReturnStepRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        returns::step(&self.state, request, |_, return_id, admin_id| {
            ReturnCommand::Approve {
                return_id,
                admin_id,
            }
        })
        .await
    }

    async fn reject_return(
        &self,
        request: Request<pb::RejectReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        returns::step(&self.state, request, |body, return_id, admin_id| {
            ReturnCommand::Reject {
                return_id,
                admin_id,
                reason: checked_reason(Some(body.reason), "not given"),
            }
        })
        .await
    }

    async fn receive_return(
        &self,
        request: Request<pb::ReturnStepRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        returns::step(&self.state, request, |_, return_id, admin_id| {
            ReturnCommand::Receive {
                return_id,
                admin_id,
            }
        })
        .await
    }

    async fn refund_return(
        &self,
        request: Request<pb::RefundReturnRequest>,
    ) -> Result<Response<pb::Return>, Status> {
        returns::step(&self.state, request, |body, return_id, admin_id| {
            ReturnCommand::Refund {
                return_id,
                admin_id,
                amount: body.amount,
            }
        })
        .await
    }
}
