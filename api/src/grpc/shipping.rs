//! `souk.v1.ShippingService`: shipping methods and tax rates over gRPC, thin calls into
//! the same `Shipping` service as REST's `/shipping-methods` and `/admin/tax-rates`.

use actix_web::web;
use souk_actors::shipping::{
    ShippingMethodChanges, ShippingMethodInput, ShippingMethodView, TaxRateView,
};
use souk_actors::{Error, FieldError};
use souk_proto::v1 as pb;
use souk_proto::v1::shipping_service_server::ShippingService;
use tonic::{Request, Response, Status};

use crate::grpc::orders::{money, money_input};
use crate::grpc::{caller, given};
use crate::state::AppState;
use crate::wire::status::to_status;

pub struct ShippingGrpc {
    pub state: web::Data<AppState>,
}

fn method_message(view: ShippingMethodView) -> pb::ShippingMethod {
    pb::ShippingMethod {
        code: view.code,
        name: view.name,
        countries: view.countries,
        rate: money(view.rate),
        free_above: view.free_above.and_then(money),
        active: view.active,
        created_at: view.created_at,
        updated_at: view.updated_at,
    }
}

fn tax_rate_message(view: TaxRateView) -> pb::TaxRate {
    pb::TaxRate {
        country: view.country,
        rate_bps: view.rate_bps,
        updated_at: view.updated_at,
    }
}

fn methods(items: Vec<ShippingMethodView>) -> Response<pb::ListShippingMethodsResponse> {
    Response::new(pb::ListShippingMethodsResponse {
        items: items.into_iter().map(method_message).collect(),
    })
}

#[tonic::async_trait]
impl ShippingService for ShippingGrpc {
    async fn list_shipping_methods(
        &self,
        request: Request<pb::ListShippingMethodsRequest>,
    ) -> Result<Response<pb::ListShippingMethodsResponse>, Status> {
        let items = self
            .state
            .shipping
            .available(given(&request.get_ref().country))
            .await
            .map_err(to_status)?;
        Ok(methods(items))
    }

    async fn admin_list_shipping_methods(
        &self,
        request: Request<pb::AdminListShippingMethodsRequest>,
    ) -> Result<Response<pb::ListShippingMethodsResponse>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let items = self.state.shipping.list().await.map_err(to_status)?;
        Ok(methods(items))
    }

    async fn create_shipping_method(
        &self,
        request: Request<pb::CreateShippingMethodRequest>,
    ) -> Result<Response<pb::ShippingMethod>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let Some(rate) = body.rate else {
            return Err(to_status(Error::validation(vec![FieldError::new(
                "rate",
                "is required",
            )])));
        };
        let input = ShippingMethodInput {
            code: body.code,
            name: body.name,
            countries: body.countries,
            rate: money_input(rate),
            free_above: body.free_above.map(money_input),
            active: body.active.unwrap_or(true),
        };
        let method = self.state.shipping.create(input).await.map_err(to_status)?;
        Ok(Response::new(method_message(method)))
    }

    async fn update_shipping_method(
        &self,
        request: Request<pb::UpdateShippingMethodRequest>,
    ) -> Result<Response<pb::ShippingMethod>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        if body.clear_free_above && body.free_above.is_some() {
            return Err(to_status(Error::validation(vec![FieldError::new(
                "clear_free_above",
                "cannot be set with free_above",
            )])));
        }
        let changes = ShippingMethodChanges {
            name: body.name,
            countries: body.countries.map(|list| list.codes),
            rate: body.rate.map(money_input),
            free_above: if body.clear_free_above {
                Some(None)
            } else {
                body.free_above
                    .map(|threshold| Some(money_input(threshold)))
            },
            active: body.active,
        };
        let method = self
            .state
            .shipping
            .update(&body.code, changes)
            .await
            .map_err(to_status)?;
        Ok(Response::new(method_message(method)))
    }

    async fn delete_shipping_method(
        &self,
        request: Request<pb::DeleteShippingMethodRequest>,
    ) -> Result<Response<pb::DeleteShippingMethodResponse>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        self.state
            .shipping
            .delete(&request.get_ref().code)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::DeleteShippingMethodResponse {}))
    }

    async fn list_tax_rates(
        &self,
        request: Request<pb::ListTaxRatesRequest>,
    ) -> Result<Response<pb::ListTaxRatesResponse>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let items = self.state.shipping.tax_rates().await.map_err(to_status)?;
        Ok(Response::new(pb::ListTaxRatesResponse {
            items: items.into_iter().map(tax_rate_message).collect(),
        }))
    }

    async fn put_tax_rate(
        &self,
        request: Request<pb::PutTaxRateRequest>,
    ) -> Result<Response<pb::TaxRate>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let (rate, _created) = self
            .state
            .shipping
            .put_tax_rate(&body.country, body.rate_bps)
            .await
            .map_err(to_status)?;
        Ok(Response::new(tax_rate_message(rate)))
    }

    async fn delete_tax_rate(
        &self,
        request: Request<pb::DeleteTaxRateRequest>,
    ) -> Result<Response<pb::DeleteTaxRateResponse>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        self.state
            .shipping
            .delete_tax_rate(&request.get_ref().country)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::DeleteTaxRateResponse {}))
    }
}
