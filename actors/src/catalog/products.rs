//! Products: validation, create, update and status changes, reads by id or SKU, and
//! search, each read with its live stock.

use std::collections::HashMap;

use souk_db::catalog::{self, CategoryRecord, ProductRecord, ProductRow};
use souk_db::clock::now_micros;
use souk_db::DbError;

/// Reads and writes one edit may take while other edits of the product land between.
const MAX_EDIT_ATTEMPTS: usize = 5;

use crate::catalog::import::announce_products;
use crate::catalog::index::{SearchRequest, Sort};
use crate::catalog::model::{
    parse_amount, parse_attributes, parse_images, parse_sku, parse_tags, parse_text, ProductStatus,
};
use crate::catalog::service::CatalogService;
use crate::catalog::variants::{self, ValidVariants};
use crate::catalog::views::{
    facets_view, MoneyInput, ProductChanges, ProductInput, ProductView, SearchPage, SearchParams,
};
use crate::error::{Error, ErrorCode, FieldError, FieldErrors};
use crate::money::Currency;

/// A validated product, ready to store.
pub(super) struct ValidProduct {
    pub(super) sku: String,
    name: String,
    description: String,
    amount: i64,
    currency: &'static str,
    category_id: Option<String>,
    tags: Vec<String>,
    attributes: Vec<(String, String)>,
    images: Vec<String>,
    status: ProductStatus,
    variants: ValidVariants,
}

fn parse_money(money: &MoneyInput) -> (Result<i64, String>, Result<&'static str, String>) {
    (
        parse_amount(money.amount),
        Currency::parse(&money.currency).map(Currency::code),
    )
}

pub(super) fn sku_taken(error: DbError) -> Error {
    match error {
        DbError::UniqueViolation { .. } => Error::new(
            ErrorCode::SkuTaken,
            "another product or variant already has that SKU",
        ),
        other => other.into(),
    }
}

/// Refuses a product whose own SKU or a variant's is already held by another product,
/// naming them; two writes racing past this check meet the key of `catalog_skus`.
pub(super) async fn refuse_skus_in_use(
    connection: &mut sqlx::AnyConnection,
    row: &ProductRow,
) -> Result<(), Error> {
    let skus: Vec<&str> = std::iter::once(row.product.sku.as_str())
        .chain(row.variants.iter().map(|variant| variant.sku.as_str()))
        .collect();
    let taken =
        souk_db::variants::skus_in_use_elsewhere(connection, &row.product.id, &skus).await?;
    if taken.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::SkuTaken,
        format!(
            "already used by another product or variant: {}",
            taken.join(", ")
        ),
    ))
}

impl CatalogService {
    pub(super) async fn validate(
        &self,
        input: &ProductInput,
        categories: &[CategoryRecord],
    ) -> Result<ValidProduct, Vec<FieldError>> {
        let mut check = FieldErrors::default();
        let sku = check.check("sku", parse_sku(&input.sku));
        let name = check.check("name", parse_text(&input.name, 200, false));
        let description = check.check("description", parse_text(&input.description, 5000, true));
        let (amount, currency) = parse_money(&input.price);
        let amount = check.check("price.amount", amount);
        let currency = check.check("price.currency", currency);
        let category_id = match (&input.category_id, &input.category) {
            (Some(id), _) => match categories.iter().find(|category| &category.id == id) {
                Some(category) => Some(category.id.clone()),
                None => {
                    check.push("category_id", "no such category");
                    None
                }
            },
            (None, Some(slug)) => match categories
                .iter()
                .find(|category| category.slug == slug.trim().to_lowercase())
            {
                Some(category) => Some(category.id.clone()),
                None => {
                    check.push("category", format!("no category with slug {slug:?}"));
                    None
                }
            },
            (None, None) => None,
        };
        let tags = check.check("tags", parse_tags(&input.tags));
        let attributes = check.check("attributes", parse_attributes(&input.attributes));
        let images = check.check("images", parse_images(&input.images));
        let valid_variants = variants::validate(
            &mut check,
            sku.as_deref(),
            amount,
            currency,
            &input.options,
            &input.variants,
        );
        if !check.is_empty() {
            return Err(check.into_vec());
        }
        match (
            sku,
            name,
            description,
            amount,
            currency,
            tags,
            attributes,
            images,
        ) {
            (
                Some(sku),
                Some(name),
                Some(description),
                Some(amount),
                Some(currency),
                Some(tags),
                Some(attributes),
                Some(images),
            ) => Ok(ValidProduct {
                sku,
                name,
                description,
                amount,
                currency,
                category_id,
                tags,
                attributes,
                images,
                status: input.status.unwrap_or(ProductStatus::Draft),
                variants: valid_variants,
            }),
            _ => Err(vec![FieldError::new("body", "invalid product")]),
        }
    }

    pub(super) fn row_from(valid: ValidProduct, id: String, created_at: i64) -> ProductRow {
        ProductRow {
            product: ProductRecord {
                id,
                sku: valid.sku,
                name: valid.name,
                description: valid.description,
                price_amount: valid.amount,
                currency: valid.currency.to_owned(),
                category_id: valid.category_id,
                images: serde_json::to_string(&valid.images).unwrap_or_else(|_| "[]".to_owned()),
                status: valid.status.as_str().to_owned(),
                created_at,
                updated_at: now_micros(),
            },
            tags: valid.tags,
            attributes: valid.attributes,
            options: valid.variants.options,
            variants: valid.variants.variants,
        }
    }

    #[tracing::instrument(name = "create_product", skip_all)]
    pub async fn create_product(&self, input: ProductInput) -> Result<ProductView, Error> {
        let categories = self.categories().await?;
        let valid = self
            .validate(&input, &categories)
            .await
            .map_err(Error::validation)?;
        let row = Self::row_from(valid, souk_db::ids::new_id(), now_micros());
        let mut transaction = self.db.begin().await?;
        refuse_skus_in_use(&mut transaction, &row).await?;
        catalog::insert_product(&mut transaction, &row)
            .await
            .map_err(sku_taken)?;
        announce_products(&mut transaction, std::slice::from_ref(&row.product.id)).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.invalidate().await;
        self.reindex(std::slice::from_ref(&row.product.id)).await;
        tracing::info!(product_id = %row.product.id, sku = %row.product.sku, "product created");
        Ok(ProductView::from(row))
    }

    /// Applies `changes` to the product as it is: a write that finds the product
    /// changed since it was read (a concurrent edit) reads it again and applies them to
    /// that, so neither edit undoes the other.
    #[tracing::instrument(name = "update_product", skip(self, changes))]
    pub async fn update_product(
        &self,
        id: &str,
        changes: ProductChanges,
    ) -> Result<ProductView, Error> {
        for _ in 0..MAX_EDIT_ATTEMPTS {
            let current = self.load(id).await?;
            if let Some(updated) = self.apply_changes(current, changes.clone()).await? {
                return Ok(updated);
            }
        }
        Err(Error::unavailable_retry_after(
            ErrorCode::ServiceUnavailable,
            "the product kept changing while this edit was applied; retry",
            1,
        ))
    }

    /// `None` when the product changed since `current` was read.
    async fn apply_changes(
        &self,
        current: ProductRow,
        changes: ProductChanges,
    ) -> Result<Option<ProductView>, Error> {
        let view = ProductView::from(current.clone());
        let (options, variants) = variants::inputs_of(&view);
        let input = ProductInput {
            sku: view.sku.clone(),
            name: changes.name.unwrap_or(view.name),
            description: changes.description.unwrap_or(view.description),
            price: changes.price.unwrap_or(MoneyInput {
                amount: view.price.amount,
                currency: view.price.currency,
            }),
            category_id: changes.category_id.unwrap_or(view.category_id),
            category: None,
            tags: changes.tags.unwrap_or(view.tags),
            attributes: changes.attributes.unwrap_or(view.attributes),
            images: changes.images.unwrap_or(view.images),
            status: Some(changes.status.unwrap_or(view.status)),
            options: changes.options.unwrap_or(options),
            variants: changes.variants.unwrap_or(variants),
        };
        self.store_update(&current, input).await
    }

    /// Writes `input` over `current`; `None` when the product changed since `current`
    /// was read.
    async fn store_update(
        &self,
        current: &ProductRow,
        input: ProductInput,
    ) -> Result<Option<ProductView>, Error> {
        let categories = self.categories().await?;
        let valid = self
            .validate(&input, &categories)
            .await
            .map_err(Error::validation)?;
        let mut row = Self::row_from(
            valid,
            current.product.id.clone(),
            current.product.created_at,
        );
        // The write is conditional on the time it read: each write moves it on.
        row.product.updated_at = row.product.updated_at.max(current.product.updated_at + 1);
        let mut transaction = self.db.begin().await?;
        refuse_skus_in_use(&mut transaction, &row).await?;
        if !catalog::update_product(&mut transaction, &row, Some(current.product.updated_at))
            .await
            .map_err(sku_taken)?
        {
            // Gone (the next read says so) or changed meanwhile (the caller retries).
            return Ok(None);
        }
        announce_products(&mut transaction, std::slice::from_ref(&row.product.id)).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.invalidate().await;
        self.reindex(std::slice::from_ref(&row.product.id)).await;
        Ok(Some(ProductView::from(row)))
    }

    pub async fn set_status(&self, id: &str, status: ProductStatus) -> Result<ProductView, Error> {
        self.update_product(
            id,
            ProductChanges {
                status: Some(status),
                ..ProductChanges::default()
            },
        )
        .await
    }

    async fn load(&self, id: &str) -> Result<ProductRow, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(Error::not_found("product"));
        }
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        catalog::find_product(&mut connection, id)
            .await?
            .ok_or_else(|| Error::not_found("product"))
    }

    /// A product by id; shoppers see only active products, admins every status.
    pub async fn get_product(&self, id: &str, admin: bool) -> Result<ProductView, Error> {
        if !souk_db::ids::is_well_formed(id) {
            return Err(Error::not_found("product"));
        }
        let product: Option<ProductView> = self
            .cached(&format!("product:{id}"), || async {
                let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
                Ok(catalog::find_product(&mut connection, id)
                    .await?
                    .map(ProductView::from))
            })
            .await?;
        let mut product = visible(product, admin)?;
        self.attach_availability(std::slice::from_mut(&mut product))
            .await?;
        Ok(product)
    }

    pub async fn get_product_by_sku(
        &self,
        raw_sku: &str,
        admin: bool,
    ) -> Result<ProductView, Error> {
        let mut product = self.product_by_sku_without_stock(raw_sku, admin).await?;
        self.attach_availability(std::slice::from_mut(&mut product))
            .await?;
        Ok(product)
    }

    /// The product of `raw_sku` from the cache, with `available` left at 0: what a
    /// checkout snapshots (the SKU's actor, not this read, decides the stock).
    pub async fn product_by_sku_without_stock(
        &self,
        raw_sku: &str,
        admin: bool,
    ) -> Result<ProductView, Error> {
        let Ok(sku) = parse_sku(raw_sku) else {
            return Err(Error::not_found("product"));
        };
        let product: Option<ProductView> = self
            .cached(&format!("sku:{sku}"), || async {
                let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
                Ok(catalog::find_product_by_sku(&mut connection, &sku)
                    .await?
                    .map(ProductView::from))
            })
            .await?;
        visible(product, admin)
    }

    /// One page of products matching `params`, from the search index; `available` is
    /// read live from the stock rows. Shoppers see active products only.
    #[tracing::instrument(name = "search_products", skip_all)]
    pub async fn search(&self, params: SearchParams, admin: bool) -> Result<SearchPage, Error> {
        let has_text = params.q.as_deref().is_some_and(|q| !q.trim().is_empty());
        if params.sort == Some(Sort::Relevance) && !has_text {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                "sort=relevance needs a search text in q",
            ));
        }
        let statuses = match (&params.statuses, admin) {
            (None, false) => vec![ProductStatus::Active],
            (None, true) => vec![
                ProductStatus::Draft,
                ProductStatus::Active,
                ProductStatus::Archived,
            ],
            (Some(statuses), false)
                if statuses
                    .iter()
                    .any(|status| *status != ProductStatus::Active) =>
            {
                return Err(Error::new(
                    ErrorCode::Forbidden,
                    "only admins can list products that are not active",
                ));
            }
            (Some(statuses), _) => statuses.clone(),
        };
        let request = SearchRequest {
            text: params.q.clone(),
            category_id: params.category_id.clone(),
            price_min: params.price_min,
            price_max: params.price_max,
            currency: params.currency.clone(),
            tags: params.tags.clone(),
            attributes: params.attributes.clone(),
            statuses: statuses.iter().map(|status| status.indexed()).collect(),
            in_stock: params.in_stock,
            sort: params.sort,
            limit: params.limit as usize,
            cursor: params.cursor.clone(),
        };
        let hits = self.search.search(request).await?;
        let mut items: Vec<ProductView> =
            hits.products.into_iter().map(ProductView::from).collect();
        self.attach_availability(&mut items).await?;
        Ok(SearchPage {
            items,
            next_cursor: hits.next_cursor,
            total: hits.total as i64,
            facets: facets_view(hits.facets),
        })
    }

    /// Sets `available` from the stock rows, which only the SKU actors write and which
    /// hold only committed stock.
    async fn attach_availability(&self, products: &mut [ProductView]) -> Result<(), Error> {
        if products.is_empty() {
            return Ok(());
        }
        let skus: Vec<String> = products
            .iter()
            .flat_map(|product| {
                std::iter::once(product.sku.clone())
                    .chain(product.variants.iter().map(|variant| variant.sku.clone()))
            })
            .collect();
        let mut connection = self.db.pool().acquire().await.map_err(DbError::from)?;
        let available: HashMap<String, i64> =
            souk_db::inventory::available_for(&mut connection, &skus)
                .await?
                .into_iter()
                .collect();
        let of = |sku: &str| available.get(sku).copied().unwrap_or(0);
        for product in products {
            for variant in &mut product.variants {
                variant.available = of(&variant.sku);
            }
            product.available = if product.variants.is_empty() {
                of(&product.sku)
            } else {
                product
                    .variants
                    .iter()
                    .map(|variant| variant.available)
                    .sum()
            };
        }
        Ok(())
    }
}

fn visible(product: Option<ProductView>, admin: bool) -> Result<ProductView, Error> {
    match product {
        Some(product) if admin || product.status == ProductStatus::Active => Ok(product),
        _ => Err(Error::not_found("product")),
    }
}
