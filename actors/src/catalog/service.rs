//! The product catalog: categories, products (with their variants, see `variants`),
//! search with facets, bulk import, all reads cached with invalidation on every write
//! (see `crate::cache`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use souk_db::catalog::{self, CategoryRecord, ProductRecord, ProductRow};
use souk_db::clock::{now_micros, to_datetime};
use souk_db::{Db, DbError};
use utoipa::ToSchema;

use crate::catalog::cache::Cache;
use crate::catalog::index::{Facets as IndexFacets, IndexedProduct, SearchRequest, Sort};
use crate::catalog::model::{
    parse_amount, parse_attributes, parse_images, parse_sku, parse_slug, parse_tags, parse_text,
    slugify, ProductStatus,
};
use crate::catalog::search::SearchEngine;
use crate::catalog::snapshots::Snapshots;
use crate::catalog::variants::{
    self, OptionInput, PriceRange, ProductOption, ValidVariants, VariantInput, VariantView,
};
use crate::error::{Error, ErrorCode, FieldError, FieldErrors};
use crate::money::Currency;
use crate::outbox::Topic;

const NAMESPACE: &str = "catalog";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Money {
    /// Integer minor units (cents for EUR, yen for JPY).
    pub amount: i64,
    /// ISO 4217 code.
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ProductView {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub category_id: Option<String>,
    pub tags: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub images: Vec<String>,
    /// The options its variants choose from, in display order; empty when the product
    /// is sold by its own SKU.
    pub options: Vec<ProductOption>,
    /// Each sold by its own SKU; empty when the product is sold by its own SKU.
    pub variants: Vec<VariantView>,
    /// Its own price, or the lowest and highest of its variants'.
    pub price_range: PriceRange,
    pub status: ProductStatus,
    /// Units that can be ordered now (`on_hand - reserved`; 0 when never stocked):
    /// of its own SKU, or summed over its variants. Read fresh on every request, never
    /// from the cache.
    #[serde(default)]
    pub available: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl From<ProductRow> for ProductView {
    fn from(row: ProductRow) -> Self {
        let product = row.product;
        let variants = variants::variant_views(&row.options, &row.variants, &product.currency);
        let price = Money {
            amount: product.price_amount,
            currency: product.currency,
        };
        Self {
            images: serde_json::from_str(&product.images).unwrap_or_default(),
            options: variants::option_views(&row.options),
            price_range: variants::price_range(&price, &variants),
            variants,
            status: ProductStatus::parse(&product.status).unwrap_or(ProductStatus::Draft),
            available: 0,
            created_at: to_datetime(product.created_at).to_rfc3339(),
            updated_at: to_datetime(product.updated_at).to_rfc3339(),
            price,
            id: product.id,
            sku: product.sku,
            name: product.name,
            description: product.description,
            category_id: product.category_id,
            tags: row.tags,
            attributes: row.attributes.into_iter().collect(),
        }
    }
}

impl From<IndexedProduct> for ProductView {
    fn from(product: IndexedProduct) -> Self {
        let price = product.prices.into_iter().next().map_or(
            Money {
                amount: 0,
                currency: String::new(),
            },
            |price| Money {
                amount: price.amount,
                currency: price.currency,
            },
        );
        let variants: Vec<VariantView> = product
            .variants
            .into_iter()
            .map(|variant| VariantView {
                sku: variant.sku,
                options: variant.options.into_iter().collect(),
                price: Money {
                    amount: variant.amount,
                    currency: price.currency.clone(),
                },
                images: variant.images,
                available: 0,
            })
            .collect();
        Self {
            options: product
                .options
                .into_iter()
                .map(|(name, values)| ProductOption { name, values })
                .collect(),
            price_range: variants::price_range(&price, &variants),
            variants,
            id: product.id,
            sku: product.sku,
            name: product.name,
            description: product.description,
            price,
            category_id: product.category_id,
            tags: product.tags,
            attributes: product.attributes.into_iter().collect(),
            images: product.images,
            status: ProductStatus::from_indexed(product.status),
            available: 0,
            created_at: to_datetime(product.created_at).to_rfc3339(),
            updated_at: to_datetime(product.updated_at).to_rfc3339(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CategoryView {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub slug: String,
    #[schema(no_recursion)]
    pub children: Vec<CategoryView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct CategoryCount {
    pub category_id: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ValueCount {
    pub value: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct AttributeFacet {
    pub name: String,
    pub values: Vec<ValueCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Facets {
    pub categories: Vec<CategoryCount>,
    pub attributes: Vec<AttributeFacet>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct SearchPage {
    pub items: Vec<ProductView>,
    pub next_cursor: Option<String>,
    /// Every product matching the query and filters (not only this page).
    pub total: i64,
    /// Counts over every match.
    pub facets: Facets,
}

/// A product as an admin submits it, before validation: the JSON body of create, a
/// row of a JSON import, or a parsed CSV line.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductInput {
    /// Letters, digits, `-`, `_`, `.`; 2 to 64 characters; upper-cased.
    #[schema(min_length = 2, max_length = 64)]
    pub sku: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 5000)]
    pub description: String,
    pub price: MoneyInput,
    /// Category id (create) — imports name the category by `category` slug instead.
    #[serde(default)]
    pub category_id: Option<String>,
    /// Category slug; only in imports.
    #[serde(default)]
    #[schema(ignore)]
    pub category: Option<String>,
    /// At most 20: letters, digits and `-`, 1 to 50 characters each.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
    /// At most 30: names of 1 to 50 letters, digits, `_` or `-`; values of 1 to 100
    /// characters.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// At most 10 http(s) URLs of at most 300 characters.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub images: Vec<String>,
    /// Default `draft`.
    #[serde(default)]
    pub status: Option<ProductStatus>,
    /// At most 3; given exactly when `variants` are.
    #[serde(default)]
    #[schema(max_items = 3)]
    pub options: Vec<OptionInput>,
    /// At most 100, each its own SKU with one value of every option.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub variants: Vec<VariantInput>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoneyInput {
    /// Integer minor units, 0 to 10^12.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(min_length = 3, max_length = 3)]
    pub currency: String,
}

/// Fields a PATCH may change; `None` leaves a field alone. The SKU never changes: stock
/// and order lines refer to it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductChanges {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 5000)]
    pub description: Option<String>,
    pub price: Option<MoneyInput>,
    /// `null` removes the product from its category.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub category_id: Option<Option<String>>,
    #[schema(max_items = 20)]
    pub tags: Option<Vec<String>>,
    pub attributes: Option<BTreeMap<String, String>>,
    #[schema(max_items = 10)]
    pub images: Option<Vec<String>>,
    pub status: Option<ProductStatus>,
    /// Replaces the options; send `variants` with them.
    #[schema(max_items = 3)]
    pub options: Option<Vec<OptionInput>>,
    /// Replaces the variants. A variant left out is no longer sold; its stock and
    /// orders stay under its SKU.
    #[schema(max_items = 100)]
    pub variants: Option<Vec<VariantInput>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryInput {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// Letters, digits and `-`, 1 to 100; derived from the name when absent.
    #[schema(min_length = 1, max_length = 100)]
    pub slug: Option<String>,
    pub parent_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryChanges {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub slug: Option<String>,
    /// `null` makes it a root category.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<String>>,
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// What the shopper (or admin) asked for; parsed from the query string by the route.
#[derive(Debug, Clone, Default)]
pub struct SearchParams {
    pub q: Option<String>,
    pub category_id: Option<String>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub currency: Option<String>,
    pub tags: Vec<String>,
    pub attributes: Vec<(String, String)>,
    /// Only admins may ask for anything but `active`.
    pub statuses: Option<Vec<ProductStatus>>,
    /// Only products with available stock.
    pub in_stock: bool,
    pub sort: Option<Sort>,
    pub cursor: Option<String>,
    pub limit: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportError {
    /// 1-based: the CSV line (the header is line 1) or the JSON array position.
    pub line: usize,
    pub sku: Option<String>,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub errors: Vec<ImportError>,
}

/// A validated product, ready to store.
struct ValidProduct {
    sku: String,
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

#[derive(Clone)]
pub struct CatalogService {
    db: Db,
    cache: Cache,
    search: SearchEngine,
    snapshots: Snapshots,
}

fn sku_taken(error: DbError) -> Error {
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
async fn refuse_skus_in_use(
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

fn slug_taken(error: DbError) -> Error {
    match error {
        DbError::UniqueViolation { .. } => Error::new(
            ErrorCode::SlugTaken,
            "another category already has that slug",
        ),
        other => other.into(),
    }
}

impl CatalogService {
    /// A catalog without checkout snapshots (see `with_snapshots`).
    pub fn new(db: Db, cache: Cache, search: SearchEngine) -> Self {
        Self {
            db,
            cache,
            search,
            snapshots: Snapshots::disabled(),
        }
    }

    /// The same catalog, pricing checkouts from `snapshots`.
    pub fn with_snapshots(self, snapshots: Snapshots) -> Self {
        Self { snapshots, ..self }
    }

    pub fn search_engine(&self) -> &SearchEngine {
        &self.search
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Makes this node's index show products this node just wrote. Other nodes learn
    /// of them from the `product.changed` event written with them. A failure leaves
    /// the database right and the index behind: it is logged, not returned.
    async fn reindex(&self, ids: &[String]) {
        for chunk in ids.chunks(1_000) {
            if let Err(error) = self.search.refresh_products(&self.db, chunk).await {
                metrics::counter!("souk_search_feed_errors_total").increment(1);
                tracing::warn!(%error, "search index update after a catalog write failed");
            }
        }
        if let Err(error) = self.search.commit().await {
            tracing::warn!(%error, "search index commit after a catalog write failed");
        }
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Serves `key` from the cache, or computes it with `load` and stores it.
    async fn cached<T, F, Fut>(&self, key: &str, load: F) -> Result<T, Error>
    where
        T: Serialize + for<'de> Deserialize<'de>,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, Error>>,
    {
        let Some(generation) = self.cache.generation(NAMESPACE).await else {
            return load().await;
        };
        let full_key = format!("{NAMESPACE}:{generation}:{key}");
        if let Some(hit) = self.cache.get(NAMESPACE, &full_key).await {
            if let Ok(value) = serde_json::from_str(&hit) {
                return Ok(value);
            }
        }
        let value = load().await?;
        if let Ok(text) = serde_json::to_string(&value) {
            self.cache.put(NAMESPACE, &full_key, text).await;
        }
        Ok(value)
    }

    /// Catalog rows changed on some node (its event arrived here): this node's own
    /// caches forget them — the in-process read cache wholesale, the checkout snapshots
    /// of `products`. A Redis cache was invalidated by the writing node already.
    pub fn forget_changed(&self, products: &[String]) {
        self.cache.invalidate_local(NAMESPACE);
        self.snapshots.forget_products(products);
    }

    async fn invalidate(&self) {
        self.snapshots.forget_all();
        self.cache.invalidate(NAMESPACE).await;
    }

    // ------------------------------------------------------------ categories

    pub async fn categories(&self) -> Result<Vec<CategoryRecord>, Error> {
        self.cached("categories", || async {
            let records = catalog::list_categories(self.db.pool()).await?;
            Ok(records
                .into_iter()
                .map(CachedCategory::from)
                .collect::<Vec<_>>())
        })
        .await
        .map(|cached: Vec<CachedCategory>| cached.into_iter().map(CategoryRecord::from).collect())
    }

    pub async fn category_tree(&self) -> Result<Vec<CategoryView>, Error> {
        Ok(build_tree(&self.categories().await?))
    }

    #[tracing::instrument(name = "create_category", skip_all)]
    pub async fn create_category(&self, input: CategoryInput) -> Result<CategoryView, Error> {
        let mut check = FieldErrors::default();
        let name = check.check("name", parse_text(&input.name, 100, false));
        let slug = match &input.slug {
            Some(slug) => check.check("slug", parse_slug(slug)),
            None => name
                .as_deref()
                .map(slugify)
                .filter(|slug| !slug.is_empty())
                .or_else(|| {
                    check.push("slug", "cannot be derived from the name; give one");
                    None
                }),
        };
        let categories = self.categories().await?;
        if let Some(parent) = &input.parent_id {
            if !categories.iter().any(|category| &category.id == parent) {
                check.push("parent_id", "no such category");
            }
        }
        check.finish()?;
        let (Some(name), Some(slug)) = (name, slug) else {
            return Err(Error::internal("validated fields missing"));
        };
        let now = now_micros();
        let record = CategoryRecord {
            id: souk_db::ids::new_id(),
            parent_id: input.parent_id,
            name,
            slug,
            created_at: now,
            updated_at: now,
        };
        catalog::insert_category(self.db.pool(), &record)
            .await
            .map_err(slug_taken)?;
        self.invalidate().await;
        Ok(category_view(&record))
    }

    #[tracing::instrument(name = "update_category", skip(self, changes))]
    pub async fn update_category(
        &self,
        id: &str,
        changes: CategoryChanges,
    ) -> Result<CategoryView, Error> {
        let categories = self.categories().await?;
        let mut record = categories
            .iter()
            .find(|category| category.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found("category"))?;
        let mut check = FieldErrors::default();
        if let Some(name) = &changes.name {
            if let Some(name) = check.check("name", parse_text(name, 100, false)) {
                record.name = name;
            }
        }
        if let Some(slug) = &changes.slug {
            if let Some(slug) = check.check("slug", parse_slug(slug)) {
                record.slug = slug;
            }
        }
        if let Some(parent) = changes.parent_id {
            if let Some(parent) = &parent {
                if !categories.iter().any(|category| &category.id == parent) {
                    check.push("parent_id", "no such category");
                } else if descendants(&categories, id).contains(parent.as_str()) {
                    return Err(Error::from_code(ErrorCode::CategoryCycle));
                }
            }
            record.parent_id = parent;
        }
        check.finish()?;
        record.updated_at = now_micros();
        let moved = categories
            .iter()
            .any(|category| category.id == id && category.parent_id != record.parent_id);
        let mut transaction = self.db.begin().await?;
        if !catalog::update_category(&mut *transaction, &record)
            .await
            .map_err(slug_taken)?
        {
            return Err(Error::not_found("category"));
        }
        if moved {
            let event =
                Topic::CategoryMoved.event(id, &serde_json::json!({ "category_id": id }))?;
            souk_db::outbox::append(&mut *transaction, &event).await?;
        }
        transaction.commit().await.map_err(DbError::from)?;
        self.invalidate().await;
        if moved {
            let refreshed = self
                .search
                .refresh_categories(&self.db, &[id.to_owned()])
                .await;
            if let Err(error) = refreshed.and(self.search.commit().await) {
                metrics::counter!("souk_search_feed_errors_total").increment(1);
                tracing::warn!(%error, "search index update after a category move failed");
            }
        }
        Ok(category_view(&record))
    }

    #[tracing::instrument(name = "delete_category", skip(self))]
    pub async fn delete_category(&self, id: &str) -> Result<(), Error> {
        let categories = self.categories().await?;
        if !categories.iter().any(|category| category.id == id) {
            return Err(Error::not_found("category"));
        }
        if categories
            .iter()
            .any(|category| category.parent_id.as_deref() == Some(id))
        {
            return Err(Error::new(
                ErrorCode::CategoryNotEmpty,
                "the category has sub-categories; move or delete them first",
            ));
        }
        if catalog::count_products_in_category(self.db.pool(), id).await? > 0 {
            return Err(Error::new(
                ErrorCode::CategoryNotEmpty,
                "the category has products; move them first",
            ));
        }
        catalog::delete_category(self.db.pool(), id).await?;
        self.invalidate().await;
        Ok(())
    }

    // ------------------------------------------------------------ products

    async fn validate(
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

    fn row_from(valid: ValidProduct, id: String, created_at: i64) -> ProductRow {
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

    #[tracing::instrument(name = "update_product", skip(self, changes))]
    pub async fn update_product(
        &self,
        id: &str,
        changes: ProductChanges,
    ) -> Result<ProductView, Error> {
        let current = self.load(id).await?;
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

    async fn store_update(
        &self,
        current: &ProductRow,
        input: ProductInput,
    ) -> Result<ProductView, Error> {
        let categories = self.categories().await?;
        let valid = self
            .validate(&input, &categories)
            .await
            .map_err(Error::validation)?;
        let row = Self::row_from(
            valid,
            current.product.id.clone(),
            current.product.created_at,
        );
        let mut transaction = self.db.begin().await?;
        refuse_skus_in_use(&mut transaction, &row).await?;
        if !catalog::update_product(&mut transaction, &row)
            .await
            .map_err(sku_taken)?
        {
            return Err(Error::not_found("product"));
        }
        announce_products(&mut transaction, std::slice::from_ref(&row.product.id)).await?;
        transaction.commit().await.map_err(DbError::from)?;
        self.invalidate().await;
        self.reindex(std::slice::from_ref(&row.product.id)).await;
        Ok(ProductView::from(row))
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

    /// Creates or updates each valid row by SKU; bad rows are reported with their line
    /// and skipped. Running the same import twice changes nothing the second time.
    #[tracing::instrument(name = "import_products", skip_all, fields(rows = rows.len()))]
    pub async fn import(
        &self,
        rows: Vec<(usize, Result<ProductInput, Vec<FieldError>>)>,
    ) -> Result<ImportReport, Error> {
        let categories = self.categories().await?;
        let mut report = ImportReport::default();
        let mut seen = HashSet::new();
        let mut written = Vec::new();
        for (line, parsed) in rows {
            let input = match parsed {
                Ok(input) => input,
                Err(errors) => {
                    report.failed += 1;
                    report.errors.push(ImportError {
                        line,
                        sku: None,
                        errors,
                    });
                    continue;
                }
            };
            let sku = parse_sku(&input.sku).ok();
            if let Some(sku) = &sku {
                if !seen.insert(sku.clone()) {
                    report.failed += 1;
                    report.errors.push(ImportError {
                        line,
                        sku: Some(sku.clone()),
                        errors: vec![FieldError::new("sku", "appears earlier in this import")],
                    });
                    continue;
                }
            }
            let valid = match self.validate(&input, &categories).await {
                Ok(valid) => valid,
                Err(errors) => {
                    report.failed += 1;
                    report.errors.push(ImportError { line, sku, errors });
                    continue;
                }
            };
            match self.upsert(valid).await {
                Ok(Upserted::Created(id)) => {
                    report.created += 1;
                    written.push(id);
                }
                Ok(Upserted::Updated(id)) => {
                    report.updated += 1;
                    written.push(id);
                }
                Ok(Upserted::Unchanged) => report.unchanged += 1,
                Err(error) => {
                    report.failed += 1;
                    report.errors.push(ImportError {
                        line,
                        sku,
                        errors: vec![FieldError::new("body", error.detail())],
                    });
                }
            }
        }
        if report.created + report.updated > 0 {
            self.invalidate().await;
            self.reindex(&written).await;
        }
        tracing::info!(
            created = report.created,
            updated = report.updated,
            failed = report.failed,
            "import finished"
        );
        Ok(report)
    }

    async fn upsert(&self, valid: ValidProduct) -> Result<Upserted, Error> {
        let mut transaction = self.db.begin().await?;
        // By the product's own SKU: a row naming a variant's SKU is another product,
        // refused below as a SKU in use.
        let existing = catalog::find_product_by_sku(&mut transaction, &valid.sku)
            .await?
            .filter(|current| current.product.sku == valid.sku);
        let (outcome, id) = match existing {
            None => {
                let row = Self::row_from(valid, souk_db::ids::new_id(), now_micros());
                refuse_skus_in_use(&mut transaction, &row).await?;
                catalog::insert_product(&mut transaction, &row)
                    .await
                    .map_err(sku_taken)?;
                (Upserted::Created(row.product.id.clone()), row.product.id)
            }
            Some(current) => {
                let row = Self::row_from(
                    valid,
                    current.product.id.clone(),
                    current.product.created_at,
                );
                if same_content(&current, &row) {
                    return Ok(Upserted::Unchanged);
                }
                refuse_skus_in_use(&mut transaction, &row).await?;
                catalog::update_product(&mut transaction, &row)
                    .await
                    .map_err(sku_taken)?;
                (Upserted::Updated(row.product.id.clone()), row.product.id)
            }
        };
        announce_products(&mut transaction, std::slice::from_ref(&id)).await?;
        transaction.commit().await.map_err(DbError::from)?;
        Ok(outcome)
    }
}

enum Upserted {
    Created(String),
    Updated(String),
    Unchanged,
}

/// Product ids per `product.changed` event: 200 ids of 36 characters stay well inside
/// an outbox payload's bound.
const IDS_PER_EVENT: usize = 200;

/// Writes the `product.changed` events of these products in the transaction that
/// changes them: how every node's search index learns of the change.
pub async fn announce_products(
    connection: &mut sqlx::AnyConnection,
    ids: &[String],
) -> Result<(), Error> {
    for chunk in ids.chunks(IDS_PER_EVENT) {
        let event = Topic::ProductChanged.event(&chunk[0], &serde_json::json!({ "ids": chunk }))?;
        souk_db::outbox::append(&mut *connection, &event).await?;
    }
    Ok(())
}

/// Whether an import row would change nothing. Side rows are compared sorted the same
/// way on both sides: the database returns them in its collation's order.
fn same_content(current: &ProductRow, candidate: &ProductRow) -> bool {
    let mut left = current.clone();
    let mut right = candidate.clone();
    for row in [&mut left, &mut right] {
        row.tags.sort();
        row.attributes.sort();
    }
    left.product.updated_at = 0;
    right.product.updated_at = 0;
    left == right
}

fn visible(product: Option<ProductView>, admin: bool) -> Result<ProductView, Error> {
    match product {
        Some(product) if admin || product.status == ProductStatus::Active => Ok(product),
        _ => Err(Error::not_found("product")),
    }
}

/// The category and everything below it.
/// A category and every category under it.
pub(crate) fn descendants<'a>(categories: &'a [CategoryRecord], root: &'a str) -> HashSet<&'a str> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for category in categories {
        if let Some(parent) = &category.parent_id {
            children
                .entry(parent.as_str())
                .or_default()
                .push(category.id.as_str());
        }
    }
    let mut found = HashSet::from([root]);
    let mut pending = vec![root];
    while let Some(next) = pending.pop() {
        for child in children.get(next).into_iter().flatten() {
            if found.insert(child) {
                pending.push(child);
            }
        }
    }
    found
}

fn category_view(record: &CategoryRecord) -> CategoryView {
    CategoryView {
        id: record.id.clone(),
        parent_id: record.parent_id.clone(),
        name: record.name.clone(),
        slug: record.slug.clone(),
        children: Vec::new(),
    }
}

fn build_tree(categories: &[CategoryRecord]) -> Vec<CategoryView> {
    fn attach(parent: &str, categories: &[CategoryRecord], depth: usize) -> Vec<CategoryView> {
        if depth > 64 {
            return Vec::new();
        }
        categories
            .iter()
            .filter(|category| category.parent_id.as_deref() == Some(parent))
            .map(|category| CategoryView {
                children: attach(&category.id, categories, depth + 1),
                ..category_view(category)
            })
            .collect()
    }
    let known: HashSet<&str> = categories
        .iter()
        .map(|category| category.id.as_str())
        .collect();
    categories
        .iter()
        .filter(|category| {
            category
                .parent_id
                .as_deref()
                .is_none_or(|parent| !known.contains(parent))
        })
        .map(|category| CategoryView {
            children: attach(&category.id, categories, 1),
            ..category_view(category)
        })
        .collect()
}

fn facets_view(facets: IndexFacets) -> Facets {
    let mut attributes: Vec<AttributeFacet> = Vec::new();
    for (name, value, count) in facets.attributes {
        let count = count as i64;
        match attributes.last_mut() {
            Some(last) if last.name == name => last.values.push(ValueCount { value, count }),
            _ => attributes.push(AttributeFacet {
                name,
                values: vec![ValueCount { value, count }],
            }),
        }
    }
    let categories = facets
        .categories
        .into_iter()
        .map(|(category_id, count)| CategoryCount {
            category_id,
            count: count as i64,
        })
        .collect();
    Facets {
        categories,
        attributes,
    }
}

/// Serializable stand-in for `CategoryRecord` in the cache.
#[derive(Serialize, Deserialize)]
struct CachedCategory {
    id: String,
    parent_id: Option<String>,
    name: String,
    slug: String,
    created_at: i64,
    updated_at: i64,
}

impl From<CategoryRecord> for CachedCategory {
    fn from(record: CategoryRecord) -> Self {
        Self {
            id: record.id,
            parent_id: record.parent_id,
            name: record.name,
            slug: record.slug,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

impl From<CachedCategory> for CategoryRecord {
    fn from(cached: CachedCategory) -> Self {
        Self {
            id: cached.id,
            parent_id: cached.parent_id,
            name: cached.name,
            slug: cached.slug,
            created_at: cached.created_at,
            updated_at: cached.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_cover_the_subtree_only() {
        let category = |id: &str, parent: Option<&str>| CategoryRecord {
            id: id.into(),
            parent_id: parent.map(Into::into),
            name: id.into(),
            slug: id.into(),
            created_at: 0,
            updated_at: 0,
        };
        let all = vec![
            category("a", None),
            category("b", Some("a")),
            category("c", Some("b")),
            category("d", None),
        ];
        let found = descendants(&all, "a");
        assert_eq!(found, HashSet::from(["a", "b", "c"]));
        let tree = build_tree(&all);
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].children[0].children[0].id, "c");
    }
}
