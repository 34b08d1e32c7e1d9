//! Shipping and tax: the shipping methods an admin offers (code, name, the countries
//! served, a flat rate, free above a subtotal, active or not), the tax rate of each
//! country, what shoppers may choose for a country, and what checkout reads to price
//! an order's shipping and tax (`totals`). Both tables are read when needed, never
//! cached: checkout reads a method only when one is named and a rate only when the
//! order has a shipping address, so an admin's change applies to the next checkout on
//! every node.

pub mod model;
pub mod totals;

use souk_db::clock::now_micros;
use souk_db::shipping::{self, ShippingMethodRecord, TaxRateRecord};
use souk_db::{Db, DbError};

use crate::error::{Error, ErrorCode};
pub use model::{
    checked_country, parse_code, ShippingMethodChanges, ShippingMethodInput, ShippingMethodView,
    TaxRateInput, TaxRateView,
};
pub use totals::{shipping_cost, totals, Totals};

/// How often an edit is tried again when a concurrent edit of the same method won.
const EDIT_ATTEMPTS: usize = 5;

fn method_not_found() -> Error {
    Error::not_found("shipping method")
}

#[derive(Clone)]
pub struct Shipping {
    db: Db,
}

impl Shipping {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Every method, active or not, by code (admins).
    #[tracing::instrument(name = "list_shipping_methods", skip(self))]
    pub async fn list(&self) -> Result<Vec<ShippingMethodView>, Error> {
        Ok(shipping::list_methods(self.db.pool())
            .await?
            .into_iter()
            .map(ShippingMethodView::from)
            .collect())
    }

    /// The active methods, only those serving `country` when it is given (shoppers).
    #[tracing::instrument(name = "available_shipping_methods", skip(self))]
    pub async fn available(&self, country: Option<&str>) -> Result<Vec<ShippingMethodView>, Error> {
        let country = country
            .map(|raw| checked_country("country", raw))
            .transpose()?;
        Ok(shipping::list_methods(self.db.pool())
            .await?
            .into_iter()
            .filter(|method| method.active == 1)
            .filter(|method| {
                country
                    .as_deref()
                    .is_none_or(|country| method.serves(country))
            })
            .map(ShippingMethodView::from)
            .collect())
    }

    #[tracing::instrument(name = "create_shipping_method", skip(self, input), fields(code = %input.code))]
    pub async fn create(&self, input: ShippingMethodInput) -> Result<ShippingMethodView, Error> {
        let (raw_code, changes) = input.split();
        let mut errors = crate::error::FieldErrors::default();
        let code = errors.check("code", crate::catalog::model::parse_slug(&raw_code));
        let now = now_micros();
        let mut record = ShippingMethodRecord {
            code: code.unwrap_or_default(),
            name: String::new(),
            countries: String::new(),
            rate_amount: 0,
            currency: String::new(),
            free_above_amount: None,
            active: 1,
            created_at: now,
            updated_at: now,
        };
        let applied = model::apply(&mut record, changes);
        let mut fields = errors.into_vec();
        if let Err(error) = applied {
            fields.extend(error.field_errors().iter().cloned());
        }
        if !fields.is_empty() {
            return Err(Error::validation(fields));
        }
        match shipping::insert_method(self.db.pool(), &record).await {
            Ok(()) => {
                tracing::info!(code = %record.code, "shipping method created");
                Ok(record.into())
            }
            Err(DbError::UniqueViolation { .. }) => Err(Error::new(
                ErrorCode::ShippingMethodTaken,
                format!(
                    "another shipping method already has the code {}",
                    record.code
                ),
            )),
            Err(error) => Err(error.into()),
        }
    }

    async fn find(&self, code: &str) -> Result<ShippingMethodRecord, Error> {
        let code = parse_code(code).ok_or_else(method_not_found)?;
        shipping::find_method(self.db.pool(), &code)
            .await?
            .ok_or_else(method_not_found)
    }

    /// Applies the fields given; a concurrent edit that wins is read again and these
    /// changes applied over it.
    #[tracing::instrument(name = "update_shipping_method", skip(self, changes))]
    pub async fn update(
        &self,
        code: &str,
        changes: ShippingMethodChanges,
    ) -> Result<ShippingMethodView, Error> {
        for _ in 0..EDIT_ATTEMPTS {
            let mut record = self.find(code).await?;
            let expected = record.updated_at;
            model::apply(&mut record, changes.clone())?;
            // Strictly later, so the fence moves even within one microsecond.
            record.updated_at = now_micros().max(expected + 1);
            if shipping::update_method(self.db.pool(), &record, expected).await? {
                tracing::info!(code = %record.code, "shipping method updated");
                return Ok(record.into());
            }
        }
        Err(Error::unavailable_retry_after(
            ErrorCode::ServiceUnavailable,
            "the shipping method keeps changing; retry",
            1,
        ))
    }

    /// Orders placed with it keep its code and name.
    #[tracing::instrument(name = "delete_shipping_method", skip(self))]
    pub async fn delete(&self, code: &str) -> Result<(), Error> {
        let code = parse_code(code).ok_or_else(method_not_found)?;
        if !shipping::delete_method(self.db.pool(), &code).await? {
            return Err(method_not_found());
        }
        tracing::info!(code = %code, "shipping method deleted");
        Ok(())
    }

    /// Every country's rate, by country.
    #[tracing::instrument(name = "list_tax_rates", skip(self))]
    pub async fn tax_rates(&self) -> Result<Vec<TaxRateView>, Error> {
        Ok(shipping::list_tax_rates(self.db.pool())
            .await?
            .into_iter()
            .map(TaxRateView::from)
            .collect())
    }

    /// Sets the country's rate; returns it and whether the country had none before.
    #[tracing::instrument(name = "put_tax_rate", skip(self))]
    pub async fn put_tax_rate(
        &self,
        country: &str,
        rate_bps: i64,
    ) -> Result<(TaxRateView, bool), Error> {
        let mut errors = crate::error::FieldErrors::default();
        let country = errors.check("country", model::parse_country(country));
        let rate_bps = errors.check("rate_bps", model::parse_rate_bps(rate_bps));
        errors.finish()?;
        let record = TaxRateRecord {
            country: country.unwrap_or_default(),
            rate_bps: rate_bps.unwrap_or_default(),
            updated_at: now_micros(),
        };
        // A concurrent first put of the same country inserts once; the other updates.
        let created = match shipping::put_tax_rate(self.db.pool(), &record).await {
            Err(DbError::UniqueViolation { .. }) => {
                shipping::put_tax_rate(self.db.pool(), &record).await?
            }
            other => other?,
        };
        tracing::info!(country = %record.country, rate_bps = record.rate_bps, "tax rate set");
        Ok((record.into(), created))
    }

    #[tracing::instrument(name = "delete_tax_rate", skip(self))]
    pub async fn delete_tax_rate(&self, country: &str) -> Result<(), Error> {
        let country = checked_country("country", country)?;
        if !shipping::delete_tax_rate(self.db.pool(), &country).await? {
            return Err(Error::not_found("tax rate"));
        }
        tracing::info!(country = %country, "tax rate deleted");
        Ok(())
    }

    /// The active method `code` names, for checkout; `None` when there is none.
    #[tracing::instrument(name = "checkout_shipping_method", skip(self))]
    pub async fn active_method(&self, code: &str) -> Result<Option<ShippingMethodRecord>, Error> {
        let Some(code) = parse_code(code) else {
            return Ok(None);
        };
        Ok(shipping::find_method(self.db.pool(), &code)
            .await?
            .filter(|method| method.active == 1))
    }

    /// The rate of `country` (upper case) in basis points; 0 when none is set.
    #[tracing::instrument(name = "checkout_tax_rate", skip(self))]
    pub async fn tax_rate_bps(&self, country: &str) -> Result<i64, Error> {
        Ok(shipping::find_tax_rate(self.db.pool(), country)
            .await?
            .map_or(0, |rate| rate.rate_bps))
    }
}
