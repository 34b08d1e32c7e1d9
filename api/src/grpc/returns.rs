//! The return RPCs of `souk.v1.OrderService`: a shopper's request and an admin's
//! steps, through the order's actor exactly as REST's are, and the admins' list.

use actix_web::web;
use souk_actors::orders::views::{checked_reason, decode_return_cursor, encode_return_cursor};
use souk_actors::orders::{OrderItemInput, ReturnCommand, ReturnStatus, ReturnView};
use souk_actors::paging::checked_limit;
use souk_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::grpc::orders::money;
use crate::grpc::{caller, given, given_limit};
use crate::state::AppState;
use crate::wire::status::to_status;

pub fn return_message(returned: ReturnView) -> pb::Return {
    pb::Return {
        id: returned.id,
        order_id: returned.order_id,
        status: returned.status,
        reason: returned.reason,
        decision: returned.decision,
        items: returned
            .items
            .into_iter()
            .map(|line| pb::ReturnLine {
                sku: line.sku,
                quantity: line.quantity,
                unit_price: money(line.unit_price),
            })
            .collect(),
        refund: returned.refund.and_then(money),
        created_at: returned.created_at,
        updated_at: returned.updated_at,
    }
}

pub async fn request(
    state: &web::Data<AppState>,
    request: Request<pb::RequestReturnRequest>,
) -> Result<Response<pb::Return>, Status> {
    let user = caller::user(state, request.metadata())
        .await
        .map_err(to_status)?;
    let body = request.into_inner();
    let items = body
        .items
        .into_iter()
        .map(|item| OrderItemInput {
            sku: item.sku,
            quantity: item.quantity,
        })
        .collect();
    let reason = checked_reason(Some(body.reason), "not given");
    let returned = state
        .orders
        .request_return(&user.id, &body.order_id, items, &reason)
        .await
        .map_err(to_status)?;
    Ok(Response::new(return_message(returned)))
}

/// The order and return an admin step names.
pub trait ReturnTarget {
    fn ids(&self) -> (String, String);
}

macro_rules! return_target {
    ($($message:ty),*) => {
        $(impl ReturnTarget for $message {
            fn ids(&self) -> (String, String) {
                (self.order_id.clone(), self.return_id.clone())
            }
        })*
    };
}

return_target!(
    pb::ReturnStepRequest,
    pb::RejectReturnRequest,
    pb::RefundReturnRequest
);

/// One admin step: `command` is built from the request, the return's id and the
/// admin's id.
pub async fn step<T: ReturnTarget>(
    state: &web::Data<AppState>,
    request: Request<T>,
    command: impl FnOnce(T, String, String) -> ReturnCommand,
) -> Result<Response<pb::Return>, Status> {
    let admin = caller::admin(state, request.metadata())
        .await
        .map_err(to_status)?;
    let body = request.into_inner();
    let (order_id, return_id) = body.ids();
    let command = command(body, return_id.clone(), admin.id);
    let returned = state
        .orders
        .return_step(&order_id, &return_id, command)
        .await
        .map_err(to_status)?;
    Ok(Response::new(return_message(returned)))
}

pub async fn list(
    state: &web::Data<AppState>,
    request: Request<pb::ListReturnsRequest>,
) -> Result<Response<pb::ListReturnsResponse>, Status> {
    caller::admin(state, request.metadata())
        .await
        .map_err(to_status)?;
    let body = request.into_inner();
    let status = ReturnStatus::filter(given(&body.status)).map_err(to_status)?;
    let after = decode_return_cursor(given(&body.cursor)).map_err(to_status)?;
    let limit = checked_limit(given_limit(body.limit)).map_err(to_status)?;
    let (items, next) = state
        .orders
        .list_returns(status, after, limit)
        .await
        .map_err(to_status)?;
    Ok(Response::new(pb::ListReturnsResponse {
        items: items.into_iter().map(return_message).collect(),
        next_cursor: encode_return_cursor(next).unwrap_or_default(),
    }))
}
