//! `souk.v1.InventoryService`: stock over gRPC. The admin methods share the inventory
//! service with REST; `Execute` carries the stock commands of a remote order service
//! to this node's SKU actors, and its wire form (both directions) lives here so the
//! server and [`RemoteInventory`](crate::remote::RemoteInventory) agree.

use crate::wire::status::to_status;
use actix_web::web;
use souk_actors::inventory::InventoryRouter;
use souk_proto::v1 as pb;
use souk_proto::v1::inventory_service_server::InventoryService;
use tonic::{Request, Response, Status};

use crate::grpc::caller;
use crate::grpc::orders::idempotency_key;
use crate::state::AppState;
use crate::wire::inventory::{
    command_from_wire, inventory_error_to_status, outcome_to_wire, stock_message,
};
use souk_actors::inventory::service::{validate_adjustment, OnHandChange, StockChange};

pub struct InventoryGrpc {
    pub state: web::Data<AppState>,
}

#[tonic::async_trait]
impl InventoryService for InventoryGrpc {
    async fn get_stock(
        &self,
        request: Request<pb::GetStockRequest>,
    ) -> Result<Response<pb::Stock>, Status> {
        // Other services read stock too (with their service token).
        if caller::service(&self.state, request.metadata()).is_err() {
            caller::admin(&self.state, request.metadata())
                .await
                .map_err(to_status)?;
        }
        let sku = self
            .state
            .inventory
            .known_sku(&request.get_ref().sku)
            .await
            .map_err(to_status)?;
        let stock = self.state.inventory.stock(&sku).await.map_err(to_status)?;
        Ok(Response::new(stock_message(stock)))
    }

    async fn adjust_stock(
        &self,
        request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        let admin = caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let request_key = idempotency_key(&body.idempotency_key)?;
        let reason = validate_adjustment(body.delta, &body.reason, body.low_stock_threshold)
            .map_err(to_status)?;
        let sku = self
            .state
            .inventory
            .known_sku(&body.sku)
            .await
            .map_err(to_status)?;
        let stock = self
            .state
            .inventory
            .adjust(
                &sku,
                StockChange {
                    on_hand: OnHandChange::By(body.delta),
                    reason,
                    low_stock_threshold: body.low_stock_threshold,
                    request_key,
                },
                &admin.id,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::AdjustStockResponse {
            stock: Some(stock_message(stock)),
        }))
    }

    async fn execute(
        &self,
        request: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let service = caller::service(&self.state, request.metadata()).map_err(to_status)?;
        let (sku, command) = command_from_wire(request.into_inner()).map_err(to_status)?;
        tracing::debug!(%service, %sku, "stock command from another service");
        match self.state.inventory.router().execute(sku, command).await {
            Ok(outcome) => Ok(Response::new(outcome_to_wire(&outcome))),
            Err(error) => Err(inventory_error_to_status(&error)),
        }
    }
}
