//! The catalog repository: categories, products with their tags, attributes, options
//! and variants (the last two in `crate::variants`). Search
//! is not here: the search index (`souk_actors::catalog::index`) answers it, built from
//! what this module reads.

use std::collections::HashMap;

use sqlx::{Any, AnyConnection, Executor, FromRow, QueryBuilder};

use crate::clock::Micros;
use crate::variants::{self, OptionRecord, VariantRecord};
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct CategoryRecord {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub slug: String,
    pub created_at: Micros,
    pub updated_at: Micros,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ProductRecord {
    pub id: String,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_amount: i64,
    pub currency: String,
    pub category_id: Option<String>,
    /// JSON array of URLs.
    pub images: String,
    pub status: String,
    pub created_at: Micros,
    pub updated_at: Micros,
}

/// A product with the rows of its side tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRow {
    pub product: ProductRecord,
    pub tags: Vec<String>,
    /// Sorted by name.
    pub attributes: Vec<(String, String)>,
    /// In display order; empty for a product sold by its own SKU.
    pub options: Vec<OptionRecord>,
    /// In display order; present exactly when `options` is.
    pub variants: Vec<VariantRecord>,
}

const PRODUCT_COLUMNS: &str =
    "p.id, p.sku, p.name, p.description, p.price_amount, p.currency, p.category_id, \
     p.images, p.status, p.created_at, p.updated_at";

// ---------------------------------------------------------------- categories

pub async fn insert_category<'e, E>(executor: E, category: &CategoryRecord) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO categories (id, parent_id, name, slug, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&category.id)
    .bind(&category.parent_id)
    .bind(&category.name)
    .bind(&category.slug)
    .bind(category.created_at)
    .bind(category.updated_at)
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn update_category<'e, E>(executor: E, category: &CategoryRecord) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE categories SET parent_id = ?, name = ?, slug = ?, updated_at = ? WHERE id = ?",
    )
    .bind(&category.parent_id)
    .bind(&category.name)
    .bind(&category.slug)
    .bind(category.updated_at)
    .bind(&category.id)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn delete_category<'e, E>(executor: E, id: &str) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("DELETE FROM categories WHERE id = ?")
        .bind(id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Every category; there are few, and callers build the tree in memory.
pub async fn list_categories<'e, E>(executor: E) -> Result<Vec<CategoryRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, CategoryRecord>(
        "SELECT id, parent_id, name, slug, created_at, updated_at FROM categories ORDER BY name, id",
    )
    .fetch_all(executor)
    .await?)
}

/// Takes the category tree's lock for the caller's transaction: changes of the tree
/// then run one at a time, each reading the tree as the one before left it.
pub async fn lock_categories(connection: &mut AnyConnection) -> Result<(), DbError> {
    sqlx::query("UPDATE catalog_locks SET version = version + 1 WHERE name = 'categories'")
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// Products (of any status) in a category, for refusing to delete a non-empty one.
pub async fn count_products_in_category<'e, E>(
    executor: E,
    category_id: &str,
) -> Result<i64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products WHERE category_id = ?")
        .bind(category_id)
        .fetch_one(executor)
        .await?;
    Ok(count)
}

// ---------------------------------------------------------------- products

/// Inserts a product and its tags, attributes, options and variants.
pub async fn insert_product(
    connection: &mut AnyConnection,
    row: &ProductRow,
) -> Result<(), DbError> {
    let product = &row.product;
    sqlx::query(
        "INSERT INTO products (id, sku, name, description, price_amount, currency, category_id, images, \
         status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&product.id)
    .bind(&product.sku)
    .bind(&product.name)
    .bind(&product.description)
    .bind(product.price_amount)
    .bind(&product.currency)
    .bind(&product.category_id)
    .bind(&product.images)
    .bind(&product.status)
    .bind(product.created_at)
    .bind(product.updated_at)
    .execute(&mut *connection)
    .await?;
    insert_side_rows(connection, row).await?;
    variants::insert(
        connection,
        &product.id,
        &product.sku,
        &row.options,
        &row.variants,
    )
    .await
}

/// Rewrites a product and replaces its tags, attributes, options and variants. `false`
/// if it is gone, or if `read_at` is given and the product's `updated_at` is no longer
/// that (it changed since the caller read it).
pub async fn update_product(
    connection: &mut AnyConnection,
    row: &ProductRow,
    read_at: Option<Micros>,
) -> Result<bool, DbError> {
    let product = &row.product;
    let result = sqlx::query(
        "UPDATE products SET name = ?, description = ?, price_amount = ?, currency = ?, category_id = ?, \
         images = ?, status = ?, updated_at = ? WHERE id = ? AND (? IS NULL OR updated_at = ?)",
    )
    .bind(&product.name)
    .bind(&product.description)
    .bind(product.price_amount)
    .bind(&product.currency)
    .bind(&product.category_id)
    .bind(&product.images)
    .bind(&product.status)
    .bind(product.updated_at)
    .bind(&product.id)
    .bind(read_at)
    .bind(read_at)
    .execute(&mut *connection)
    .await?;
    if result.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM product_tags WHERE product_id = ?")
        .bind(&product.id)
        .execute(&mut *connection)
        .await?;
    sqlx::query("DELETE FROM product_attributes WHERE product_id = ?")
        .bind(&product.id)
        .execute(&mut *connection)
        .await?;
    insert_side_rows(connection, row).await?;
    variants::replace(
        connection,
        &product.id,
        &product.sku,
        &row.options,
        &row.variants,
    )
    .await?;
    Ok(true)
}

async fn insert_side_rows(connection: &mut AnyConnection, row: &ProductRow) -> Result<(), DbError> {
    if !row.tags.is_empty() {
        let mut builder = QueryBuilder::<Any>::new("INSERT INTO product_tags (product_id, tag) ");
        builder.push_values(&row.tags, |mut values, tag| {
            values
                .push_bind(row.product.id.clone())
                .push_bind(tag.clone());
        });
        builder.build().execute(&mut *connection).await?;
    }
    if !row.attributes.is_empty() {
        let mut builder = QueryBuilder::<Any>::new(
            "INSERT INTO product_attributes (product_id, name, value, status, category_id) ",
        );
        builder.push_values(&row.attributes, |mut values, (name, value)| {
            values
                .push_bind(row.product.id.clone())
                .push_bind(name.clone())
                .push_bind(value.clone())
                .push_bind(row.product.status.clone())
                .push_bind(row.product.category_id.clone());
        });
        builder.build().execute(&mut *connection).await?;
    }
    Ok(())
}

pub async fn find_product(
    connection: &mut AnyConnection,
    id: &str,
) -> Result<Option<ProductRow>, DbError> {
    find_product_where(connection, "p.id = ?", id).await
}

/// The product of `sku`: the one with that SKU, or the one with a variant of it.
pub async fn find_product_by_sku(
    connection: &mut AnyConnection,
    sku: &str,
) -> Result<Option<ProductRow>, DbError> {
    if let Some(product) = find_product_where(connection, "p.sku = ?", sku).await? {
        return Ok(Some(product));
    }
    match variants::product_of_sku(connection, sku).await? {
        Some(id) => find_product(connection, &id).await,
        None => Ok(None),
    }
}

async fn find_product_where(
    connection: &mut AnyConnection,
    condition: &str,
    value: &str,
) -> Result<Option<ProductRow>, DbError> {
    let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE {condition}");
    let Some(product) = sqlx::query_as::<_, ProductRecord>(&sql)
        .bind(value)
        .fetch_optional(&mut *connection)
        .await?
    else {
        return Ok(None);
    };
    Ok(with_side_rows(connection, vec![product]).await?.pop())
}

/// Attaches tags, attributes, options and variants to products, in at most four
/// queries per `MAX_IN_LIST` products.
pub async fn with_side_rows(
    connection: &mut AnyConnection,
    products: Vec<ProductRecord>,
) -> Result<Vec<ProductRow>, DbError> {
    let mut rows = Vec::with_capacity(products.len());
    let mut products = products.into_iter().peekable();
    while products.peek().is_some() {
        let piece: Vec<ProductRecord> = products.by_ref().take(crate::MAX_IN_LIST).collect();
        rows.extend(side_rows_of(connection, piece).await?);
    }
    Ok(rows)
}

/// `with_side_rows` for at most `MAX_IN_LIST` products.
async fn side_rows_of(
    connection: &mut AnyConnection,
    products: Vec<ProductRecord>,
) -> Result<Vec<ProductRow>, DbError> {
    let mut tags: HashMap<String, Vec<String>> = HashMap::new();
    let mut builder =
        QueryBuilder::<Any>::new("SELECT product_id, tag FROM product_tags WHERE product_id IN (");
    push_id_list(&mut builder, &products);
    builder.push(") ORDER BY product_id, tag");
    for (product_id, tag) in builder
        .build_query_as::<(String, String)>()
        .fetch_all(&mut *connection)
        .await?
    {
        tags.entry(product_id).or_default().push(tag);
    }
    let mut attributes: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut builder = QueryBuilder::<Any>::new(
        "SELECT product_id, name, value FROM product_attributes WHERE product_id IN (",
    );
    push_id_list(&mut builder, &products);
    builder.push(") ORDER BY product_id, name");
    for (product_id, name, value) in builder
        .build_query_as::<(String, String, String)>()
        .fetch_all(&mut *connection)
        .await?
    {
        attributes
            .entry(product_id)
            .or_default()
            .push((name, value));
    }
    let ids: Vec<&str> = products.iter().map(|product| product.id.as_str()).collect();
    let mut variants = variants::of_products(connection, &ids).await?;
    Ok(products
        .into_iter()
        .map(|product| {
            let (options, variants) = variants.remove(&product.id).unwrap_or_default();
            ProductRow {
                tags: tags.remove(&product.id).unwrap_or_default(),
                attributes: attributes.remove(&product.id).unwrap_or_default(),
                options,
                variants,
                product,
            }
        })
        .collect())
}

fn push_id_list(builder: &mut QueryBuilder<'_, Any>, products: &[ProductRecord]) {
    let mut separated = builder.separated(", ");
    for product in products {
        separated.push_bind(product.id.clone());
    }
}

// ---------------------------------------------------------------- reading many

/// Up to `limit` products after `after_id` in id order, with their side rows: how the
/// search index reads the whole catalog.
pub async fn products_after(
    connection: &mut AnyConnection,
    after_id: Option<&str>,
    limit: u32,
) -> Result<Vec<ProductRow>, DbError> {
    let sql =
        format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id > ? ORDER BY p.id LIMIT ?");
    let products = sqlx::query_as::<_, ProductRecord>(&sql)
        .bind(after_id.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *connection)
        .await?;
    with_side_rows(connection, products).await
}

/// The products with these ids that exist, with their side rows, in id order.
pub async fn find_products(
    connection: &mut AnyConnection,
    ids: &[String],
) -> Result<Vec<ProductRow>, DbError> {
    let select = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id IN (");
    let products: Vec<ProductRecord> =
        crate::rows_for_ids(&mut *connection, &select, ids, "p.id").await?;
    with_side_rows(connection, products).await
}

/// Ids of the products in any of these categories (not their sub-categories).
pub async fn product_ids_in_categories(
    connection: &mut AnyConnection,
    category_ids: &[String],
) -> Result<Vec<String>, DbError> {
    let select = "SELECT id FROM products WHERE category_id IN (";
    let ids: Vec<(String,)> = crate::rows_for_ids(connection, select, category_ids, "id").await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// Every product, whatever its status.
pub async fn count_products<'e, E>(executor: E) -> Result<i64, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM products")
        .fetch_one(executor)
        .await?;
    Ok(count)
}

/// Every SKU the catalog names (a product's own or a variant's) that starts with
/// `prefix`; `souk seed` fills in the numbers these leave free.
pub async fn skus_with_prefix<'e, E>(executor: E, prefix: &str) -> Result<Vec<String>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let pattern = format!("{}%", crate::users::escape_like(prefix));
    let skus: Vec<(String,)> =
        sqlx::query_as("SELECT sku FROM catalog_skus WHERE sku LIKE ? ESCAPE '!'")
            .bind(pattern)
            .fetch_all(executor)
            .await?;
    Ok(skus.into_iter().map(|(sku,)| sku).collect())
}
