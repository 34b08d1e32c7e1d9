//! The variant side tables of the catalog: a product's options and its variants, each
//! variant sold by its own SKU, and `catalog_skus`, the key that keeps every SKU (a
//! product's own or a variant's) to one product. Written with the product they belong
//! to (replaced whole), read with it (see `catalog::with_side_rows`).

use std::collections::HashMap;

use sqlx::{Any, AnyConnection, FromRow, QueryBuilder};

use crate::DbError;

/// One option of a product, at its position.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct OptionRecord {
    pub name: String,
    /// JSON array of the values, in display order.
    pub choices: String,
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct VariantRecord {
    pub sku: String,
    /// JSON array: the value of each option, in the options' order.
    pub option_values: String,
    /// In the product's currency.
    pub price_amount: i64,
    /// JSON array of URLs; empty means the product's images.
    pub images: String,
}

/// Replaces the options and variants of `product_id` with these (in this order), and
/// the SKUs it holds with its own and theirs: a SKU another product holds is a
/// `UniqueViolation`.
pub async fn replace(
    connection: &mut AnyConnection,
    product_id: &str,
    product_sku: &str,
    options: &[OptionRecord],
    variants: &[VariantRecord],
) -> Result<(), DbError> {
    for table in ["catalog_skus", "product_options", "product_variants"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE product_id = ?"))
            .bind(product_id)
            .execute(&mut *connection)
            .await?;
    }
    insert(connection, product_id, product_sku, options, variants).await
}

/// Writes the options, variants and SKUs of a product that has none yet. (No delete
/// first: on MySQL a delete's gap locks would make two creations deadlock.)
pub async fn insert(
    connection: &mut AnyConnection,
    product_id: &str,
    product_sku: &str,
    options: &[OptionRecord],
    variants: &[VariantRecord],
) -> Result<(), DbError> {
    let skus =
        std::iter::once(product_sku).chain(variants.iter().map(|variant| variant.sku.as_str()));
    let mut builder = QueryBuilder::<Any>::new("INSERT INTO catalog_skus (sku, product_id) ");
    builder.push_values(skus, |mut values, sku| {
        values
            .push_bind(sku.to_owned())
            .push_bind(product_id.to_owned());
    });
    builder.build().execute(&mut *connection).await?;
    if !options.is_empty() {
        let mut builder = QueryBuilder::<Any>::new(
            "INSERT INTO product_options (product_id, position, name, choices) ",
        );
        builder.push_values(
            options.iter().enumerate(),
            |mut values, (position, option)| {
                values
                    .push_bind(product_id.to_owned())
                    .push_bind(position as i64)
                    .push_bind(option.name.clone())
                    .push_bind(option.choices.clone());
            },
        );
        builder.build().execute(&mut *connection).await?;
    }
    if !variants.is_empty() {
        let mut builder = QueryBuilder::<Any>::new(
            "INSERT INTO product_variants (sku, product_id, position, option_values, price_amount, images) ",
        );
        builder.push_values(
            variants.iter().enumerate(),
            |mut values, (position, variant)| {
                values
                    .push_bind(variant.sku.clone())
                    .push_bind(product_id.to_owned())
                    .push_bind(position as i64)
                    .push_bind(variant.option_values.clone())
                    .push_bind(variant.price_amount)
                    .push_bind(variant.images.clone());
            },
        );
        builder.build().execute(&mut *connection).await?;
    }
    Ok(())
}

/// The options and variants of these products, each in position order.
pub async fn of_products(
    connection: &mut AnyConnection,
    product_ids: &[&str],
) -> Result<HashMap<String, (Vec<OptionRecord>, Vec<VariantRecord>)>, DbError> {
    let mut found: HashMap<String, (Vec<OptionRecord>, Vec<VariantRecord>)> = HashMap::new();
    if product_ids.is_empty() {
        return Ok(found);
    }
    let mut builder = QueryBuilder::<Any>::new(
        "SELECT product_id, name, choices FROM product_options WHERE product_id IN (",
    );
    push_list(&mut builder, product_ids);
    builder.push(") ORDER BY product_id, position");
    for (product_id, name, choices) in builder
        .build_query_as::<(String, String, String)>()
        .fetch_all(&mut *connection)
        .await?
    {
        found
            .entry(product_id)
            .or_default()
            .0
            .push(OptionRecord { name, choices });
    }
    if found.is_empty() {
        // Variants are written only with options: none of these products has any.
        return Ok(found);
    }
    let with_options: Vec<&str> = found.keys().map(String::as_str).collect();
    let mut builder = QueryBuilder::<Any>::new(
        "SELECT product_id, sku, option_values, price_amount, images FROM product_variants \
         WHERE product_id IN (",
    );
    push_list(&mut builder, &with_options);
    builder.push(") ORDER BY product_id, position");
    let rows = builder
        .build_query_as::<(String, String, String, i64, String)>()
        .fetch_all(&mut *connection)
        .await?;
    for (product_id, sku, option_values, price_amount, images) in rows {
        if let Some(entry) = found.get_mut(&product_id) {
            entry.1.push(VariantRecord {
                sku,
                option_values,
                price_amount,
                images,
            });
        }
    }
    Ok(found)
}

/// The product a variant SKU belongs to.
pub async fn product_of_sku(
    connection: &mut AnyConnection,
    sku: &str,
) -> Result<Option<String>, DbError> {
    Ok(
        sqlx::query_as::<_, (String,)>("SELECT product_id FROM product_variants WHERE sku = ?")
            .bind(sku)
            .fetch_optional(connection)
            .await?
            .map(|(id,)| id),
    )
}

/// Which of `skus` some other product already holds, as its own SKU or a variant's:
/// named in the catalog's refusal (the key of `catalog_skus` enforces it).
pub async fn skus_in_use_elsewhere(
    connection: &mut AnyConnection,
    product_id: &str,
    skus: &[&str],
) -> Result<Vec<String>, DbError> {
    if skus.is_empty() {
        return Ok(Vec::new());
    }
    let mut builder = QueryBuilder::<Any>::new("SELECT sku FROM catalog_skus WHERE product_id <> ");
    builder.push_bind(product_id.to_owned());
    builder.push(" AND sku IN (");
    push_list(&mut builder, skus);
    builder.push(")");
    let mut taken: Vec<String> = builder
        .build_query_as::<(String,)>()
        .fetch_all(connection)
        .await?
        .into_iter()
        .map(|(sku,)| sku)
        .collect();
    taken.sort();
    Ok(taken)
}

fn push_list(builder: &mut QueryBuilder<'_, Any>, values: &[&str]) {
    let mut separated = builder.separated(", ");
    for value in values {
        separated.push_bind((*value).to_owned());
    }
}
