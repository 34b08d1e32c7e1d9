//! `souk.v1.ProductService`: the catalog over gRPC, on the same catalog service as REST.

use crate::wire::status::to_status;
use actix_web::web;
use souk_proto::v1 as pb;
use souk_proto::v1::product_service_server::ProductService;
use tonic::{Request, Response, Status};

use crate::error::{Error, FieldError};
use crate::grpc::caller;
use crate::grpc::orders::{money, money_input};
use crate::state::AppState;
use souk_actors::catalog::model::{parse_sku, ProductStatus};
use souk_actors::catalog::query::parse_search_params;
use souk_actors::catalog::service::{CategoryView, MoneyInput, ProductInput, ProductView};
use souk_actors::catalog::variants::{OptionInput, VariantInput};
use souk_actors::identity::Role;

pub struct ProductGrpc {
    pub state: web::Data<AppState>,
}

pub fn product_message(view: ProductView) -> pb::Product {
    pb::Product {
        options: view
            .options
            .into_iter()
            .map(|option| pb::ProductOption {
                name: option.name,
                values: option.values,
            })
            .collect(),
        variants: view
            .variants
            .into_iter()
            .map(|variant| pb::ProductVariant {
                sku: variant.sku,
                options: variant.options.into_iter().collect(),
                price: money(variant.price),
                images: variant.images,
                available: variant.available,
            })
            .collect(),
        price_range: Some(pb::PriceRange {
            min: money(view.price_range.min),
            max: money(view.price_range.max),
        }),
        id: view.id,
        sku: view.sku,
        name: view.name,
        description: view.description,
        price: money(view.price),
        category_id: view.category_id.unwrap_or_default(),
        tags: view.tags,
        attributes: view.attributes.into_iter().collect(),
        images: view.images,
        status: view.status.as_str().to_owned(),
        available: view.available,
        created_at: view.created_at,
        updated_at: view.updated_at,
    }
}

fn category_message(view: CategoryView) -> pb::Category {
    pb::Category {
        id: view.id,
        parent_id: view.parent_id.unwrap_or_default(),
        name: view.name,
        slug: view.slug,
        children: view.children.into_iter().map(category_message).collect(),
    }
}

/// The search request as the REST query pairs, so both go through one parser.
fn search_pairs(request: pb::SearchProductsRequest) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut text = |key: &str, value: String| {
        if !value.is_empty() {
            pairs.push((key.to_owned(), value));
        }
    };
    text("q", request.q);
    text("category", request.category_id);
    text("currency", request.currency);
    text("sort", request.sort);
    text("cursor", request.cursor);
    if let Some(amount) = request.price_min {
        pairs.push(("price_min".into(), amount.to_string()));
    }
    if let Some(amount) = request.price_max {
        pairs.push(("price_max".into(), amount.to_string()));
    }
    if request.limit != 0 {
        pairs.push(("limit".into(), request.limit.to_string()));
    }
    if request.in_stock {
        pairs.push(("in_stock".into(), "true".into()));
    }
    pairs.extend(request.tags.into_iter().map(|tag| ("tag".to_owned(), tag)));
    let mut attributes: Vec<_> = request.attributes.into_iter().collect();
    attributes.sort();
    pairs.extend(
        attributes
            .into_iter()
            .map(|(name, value)| ("attr".to_owned(), format!("{name}:{value}"))),
    );
    pairs
}

async fn is_admin(
    state: &AppState,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<bool, Error> {
    Ok(caller::maybe_user(state, metadata)
        .await?
        .is_some_and(|user| user.role == Role::Admin))
}

#[tonic::async_trait]
impl ProductService for ProductGrpc {
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let admin = is_admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let product = self
            .state
            .catalog
            .get_product(&request.get_ref().id, admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(product_message(product)))
    }

    async fn get_product_by_sku(
        &self,
        request: Request<pb::GetProductBySkuRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        let admin = is_admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let sku = &request.get_ref().sku;
        if parse_sku(sku).is_err() {
            return Err(to_status(Error::not_found("product")));
        }
        let product = self
            .state
            .catalog
            .get_product_by_sku(sku, admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(product_message(product)))
    }

    async fn search_products(
        &self,
        request: Request<pb::SearchProductsRequest>,
    ) -> Result<Response<pb::SearchProductsResponse>, Status> {
        let admin = is_admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let params = parse_search_params(&search_pairs(request.into_inner())).map_err(to_status)?;
        let page = self
            .state
            .catalog
            .search(params, admin)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::SearchProductsResponse {
            items: page.items.into_iter().map(product_message).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
            total: page.total,
        }))
    }

    async fn list_categories(
        &self,
        _request: Request<pb::ListCategoriesRequest>,
    ) -> Result<Response<pb::ListCategoriesResponse>, Status> {
        let tree = self
            .state
            .catalog
            .category_tree()
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListCategoriesResponse {
            items: tree.into_iter().map(category_message).collect(),
        }))
    }

    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let Some(price) = body.price else {
            return Err(to_status(Error::validation(vec![FieldError::new(
                "price",
                "is required",
            )])));
        };
        let status = match body.status.as_str() {
            "" => None,
            raw => Some(
                ProductStatus::parse(raw)
                    .ok_or_else(|| {
                        Error::validation(vec![FieldError::new(
                            "status",
                            "must be draft, active or archived",
                        )])
                    })
                    .map_err(to_status)?,
            ),
        };
        let input = ProductInput {
            sku: body.sku,
            name: body.name,
            description: body.description,
            price: MoneyInput {
                amount: price.amount,
                currency: price.currency,
            },
            category_id: Some(body.category_id).filter(|id| !id.is_empty()),
            category: None,
            tags: body.tags,
            attributes: body.attributes.into_iter().collect(),
            images: body.images,
            status,
            options: body
                .options
                .into_iter()
                .map(|option| OptionInput {
                    name: option.name,
                    values: option.values,
                })
                .collect(),
            variants: body
                .variants
                .into_iter()
                .map(|variant| VariantInput {
                    sku: variant.sku,
                    options: variant.options.into_iter().collect(),
                    price: variant.price.map(money_input),
                    images: variant.images,
                })
                .collect(),
        };
        let product = self
            .state
            .catalog
            .create_product(input)
            .await
            .map_err(to_status)?;
        Ok(Response::new(product_message(product)))
    }

    async fn archive_product(
        &self,
        request: Request<pb::ArchiveProductRequest>,
    ) -> Result<Response<pb::Product>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let product = self
            .state
            .catalog
            .set_status(&request.get_ref().id, ProductStatus::Archived)
            .await
            .map_err(to_status)?;
        Ok(Response::new(product_message(product)))
    }
}
