//! The shipping and tax repository: the shipping methods an admin offers and the tax
//! rate of each country. Both tables are small and written rarely; checkout reads one
//! method by code and one rate by country, and only when it needs them.

use sqlx::{Any, Executor, FromRow};

use crate::clock::Micros;
use crate::DbError;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct ShippingMethodRecord {
    pub code: String,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes, upper case, sorted, space-separated; empty: every
    /// country.
    pub countries: String,
    pub rate_amount: i64,
    pub currency: String,
    pub free_above_amount: Option<i64>,
    /// 1 when offered at checkout.
    pub active: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

impl ShippingMethodRecord {
    /// Whether the method delivers to `country` (upper case).
    pub fn serves(&self, country: &str) -> bool {
        self.countries.is_empty() || self.countries.split(' ').any(|code| code == country)
    }
}

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct TaxRateRecord {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// Basis points: 1900 is 19 %.
    pub rate_bps: i64,
    pub updated_at: Micros,
}

const METHOD_COLUMNS: &str = "code, name, countries, rate_amount, currency, free_above_amount, \
     active, created_at, updated_at";

/// Every method (active or not), by code.
#[tracing::instrument(name = "shipping_methods_list", skip(executor))]
pub async fn list_methods<'e, E>(executor: E) -> Result<Vec<ShippingMethodRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, ShippingMethodRecord>(&format!(
        "SELECT {METHOD_COLUMNS} FROM shipping_methods ORDER BY code"
    ))
    .fetch_all(executor)
    .await?)
}

#[tracing::instrument(name = "shipping_methods_find", skip(executor))]
pub async fn find_method<'e, E>(
    executor: E,
    code: &str,
) -> Result<Option<ShippingMethodRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, ShippingMethodRecord>(&format!(
        "SELECT {METHOD_COLUMNS} FROM shipping_methods WHERE code = ?"
    ))
    .bind(code)
    .fetch_optional(executor)
    .await?)
}

/// A new method; a taken code is `UniqueViolation`.
#[tracing::instrument(name = "shipping_methods_insert", skip_all, fields(code = %method.code))]
pub async fn insert_method<'e, E>(executor: E, method: &ShippingMethodRecord) -> Result<(), DbError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(&format!(
        "INSERT INTO shipping_methods ({METHOD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&method.code)
    .bind(&method.name)
    .bind(&method.countries)
    .bind(method.rate_amount)
    .bind(&method.currency)
    .bind(method.free_above_amount)
    .bind(method.active)
    .bind(method.created_at)
    .bind(method.updated_at)
    .execute(executor)
    .await?;
    Ok(())
}

/// Writes every field of `method` if its row is still as of `expected_updated_at`
/// (the record carries the next one). Returns whether it was.
#[tracing::instrument(name = "shipping_methods_update", skip_all, fields(code = %method.code))]
pub async fn update_method<'e, E>(
    executor: E,
    method: &ShippingMethodRecord,
    expected_updated_at: Micros,
) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query(
        "UPDATE shipping_methods SET name = ?, countries = ?, rate_amount = ?, currency = ?, \
         free_above_amount = ?, active = ?, updated_at = ? WHERE code = ? AND updated_at = ?",
    )
    .bind(&method.name)
    .bind(&method.countries)
    .bind(method.rate_amount)
    .bind(&method.currency)
    .bind(method.free_above_amount)
    .bind(method.active)
    .bind(method.updated_at)
    .bind(&method.code)
    .bind(expected_updated_at)
    .execute(executor)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Returns whether there was such a method.
#[tracing::instrument(name = "shipping_methods_delete", skip(executor))]
pub async fn delete_method<'e, E>(executor: E, code: &str) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("DELETE FROM shipping_methods WHERE code = ?")
        .bind(code)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Every country's rate, by country.
#[tracing::instrument(name = "tax_rates_list", skip(executor))]
pub async fn list_tax_rates<'e, E>(executor: E) -> Result<Vec<TaxRateRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, TaxRateRecord>(
        "SELECT country, rate_bps, updated_at FROM tax_rates ORDER BY country",
    )
    .fetch_all(executor)
    .await?)
}

#[tracing::instrument(name = "tax_rates_find", skip(executor))]
pub async fn find_tax_rate<'e, E>(
    executor: E,
    country: &str,
) -> Result<Option<TaxRateRecord>, DbError>
where
    E: Executor<'e, Database = Any>,
{
    Ok(sqlx::query_as::<_, TaxRateRecord>(
        "SELECT country, rate_bps, updated_at FROM tax_rates WHERE country = ?",
    )
    .bind(country)
    .fetch_optional(executor)
    .await?)
}

/// Updates the country's rate, or inserts it when it has none. Returns whether it was
/// new. A concurrent first insert of the same country is `UniqueViolation` for the
/// loser, which the caller may retry (it then updates).
#[tracing::instrument(name = "tax_rates_put", skip_all, fields(country = %rate.country))]
pub async fn put_tax_rate<'e, E>(executor: E, rate: &TaxRateRecord) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any> + Copy,
{
    let updated =
        sqlx::query("UPDATE tax_rates SET rate_bps = ?, updated_at = ? WHERE country = ?")
            .bind(rate.rate_bps)
            .bind(rate.updated_at)
            .bind(&rate.country)
            .execute(executor)
            .await?;
    if updated.rows_affected() == 1 {
        return Ok(false);
    }
    sqlx::query("INSERT INTO tax_rates (country, rate_bps, updated_at) VALUES (?, ?, ?)")
        .bind(&rate.country)
        .bind(rate.rate_bps)
        .bind(rate.updated_at)
        .execute(executor)
        .await?;
    Ok(true)
}

/// Returns whether the country had a rate.
#[tracing::instrument(name = "tax_rates_delete", skip(executor))]
pub async fn delete_tax_rate<'e, E>(executor: E, country: &str) -> Result<bool, DbError>
where
    E: Executor<'e, Database = Any>,
{
    let result = sqlx::query("DELETE FROM tax_rates WHERE country = ?")
        .bind(country)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}
