//! Shipping methods and tax rates as the API takes and shows them, and their
//! validation: a method's code is a slug, its name plain text, its countries assigned
//! ISO 3166-1 alpha-2 codes (none listed: every country), its rate and free-above
//! threshold money in one ISO 4217 currency; a tax rate is 0 to 10 000 basis points.

use serde::{Deserialize, Serialize};
use souk_db::clock::to_datetime;
use souk_db::shipping::{ShippingMethodRecord, TaxRateRecord};
use utoipa::ToSchema;

use super::totals::WHOLE_BPS;
use crate::catalog::model::{parse_amount, parse_slug, parse_text};
use crate::catalog::service::{double_option, Money, MoneyInput};
use crate::error::{Error, FieldErrors};
use crate::money::Currency;

pub const MAX_NAME_CHARS: usize = 100;
/// A method lists at most this many countries (there are 249).
pub const MAX_COUNTRIES: usize = 250;

/// A new shipping method.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethodInput {
    /// Letters, digits and `-`, 1 to 100; stored lower case. Orders name the method by it.
    #[schema(min_length = 1, max_length = 100)]
    pub code: String,
    /// What shoppers see, 1 to 100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// ISO 3166-1 alpha-2 codes (either case) the method delivers to; empty or absent:
    /// every country.
    #[serde(default)]
    #[schema(max_items = 250)]
    pub countries: Vec<String>,
    /// The flat rate, as catalog prices: tax-inclusive when `orders.prices_include_tax`.
    pub rate: MoneyInput,
    /// Shipping is free when the subtotal reaches this (same currency as `rate`).
    #[serde(default)]
    pub free_above: Option<MoneyInput>,
    /// Offered at checkout; default true.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Fields a PATCH may change; absent fields stay. The code never changes: orders keep it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingMethodChanges {
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Empty: every country.
    #[schema(max_items = 250)]
    pub countries: Option<Vec<String>>,
    pub rate: Option<MoneyInput>,
    /// `null` removes the threshold (shipping is never free).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<MoneyInput>)]
    pub free_above: Option<Option<MoneyInput>>,
    pub active: Option<bool>,
}

/// A shipping method.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ShippingMethodView {
    pub code: String,
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case, sorted; empty: every country.
    pub countries: Vec<String>,
    pub rate: Money,
    /// Shipping is free when the subtotal reaches this; `null`: never.
    pub free_above: Option<Money>,
    pub active: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
}

impl From<ShippingMethodRecord> for ShippingMethodView {
    fn from(record: ShippingMethodRecord) -> Self {
        let money = |amount| Money {
            amount,
            currency: record.currency.clone(),
        };
        Self {
            countries: split_countries(&record.countries),
            rate: money(record.rate_amount),
            free_above: record.free_above_amount.map(money),
            active: record.active == 1,
            created_at: to_datetime(record.created_at).to_rfc3339(),
            updated_at: to_datetime(record.updated_at).to_rfc3339(),
            code: record.code,
            name: record.name,
        }
    }
}

/// A country's tax rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaxRateView {
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// Basis points: 1900 is 19 %.
    pub rate_bps: i64,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl From<TaxRateRecord> for TaxRateView {
    fn from(record: TaxRateRecord) -> Self {
        Self {
            updated_at: to_datetime(record.updated_at).to_rfc3339(),
            country: record.country,
            rate_bps: record.rate_bps,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxRateInput {
    /// Basis points, 0 to 10000: 1900 is 19 %.
    #[schema(minimum = 0, maximum = 10000)]
    pub rate_bps: i64,
}

pub(crate) fn split_countries(stored: &str) -> Vec<String> {
    stored
        .split(' ')
        .filter(|code| !code.is_empty())
        .map(str::to_owned)
        .collect()
}

/// An assigned ISO 3166-1 alpha-2 code, upper case.
pub fn parse_country(raw: &str) -> Result<String, String> {
    let code = raw.trim().to_ascii_uppercase();
    isocountry::CountryCode::for_alpha2(&code)
        .map(|_| code)
        .map_err(|_| format!("{raw:?} is not an ISO 3166-1 alpha-2 country code"))
}

/// A country named in a path or query: `validation_failed` naming `field` when bad.
pub fn checked_country(field: &str, raw: &str) -> Result<String, Error> {
    let mut errors = FieldErrors::default();
    let country = errors.check(field, parse_country(raw));
    errors.finish()?;
    Ok(country.unwrap_or_default())
}

/// A tax rate in basis points, 0 to 10 000.
pub fn parse_rate_bps(rate_bps: i64) -> Result<i64, String> {
    if (0..=WHOLE_BPS).contains(&rate_bps) {
        Ok(rate_bps)
    } else {
        Err(format!("must be 0 to {WHOLE_BPS} basis points"))
    }
}

/// A shipping method code as checkout and the paths name it; `None` when it cannot be
/// one (so it is no method at all).
pub fn parse_code(raw: &str) -> Option<String> {
    parse_slug(raw).ok()
}

fn parse_countries(errors: &mut FieldErrors, raw: &[String]) -> Option<String> {
    if raw.len() > MAX_COUNTRIES {
        errors.push(
            "countries",
            format!("must list at most {MAX_COUNTRIES} countries"),
        );
        return None;
    }
    let mut codes = Vec::with_capacity(raw.len());
    for (index, code) in raw.iter().enumerate() {
        if let Some(code) = errors.check(&format!("countries[{index}]"), parse_country(code)) {
            codes.push(code);
        }
    }
    codes.sort();
    codes.dedup();
    Some(codes.join(" "))
}

fn parse_money(
    errors: &mut FieldErrors,
    field: &str,
    money: &MoneyInput,
) -> Option<(i64, &'static str)> {
    let amount = errors.check(&format!("{field}.amount"), parse_amount(money.amount));
    let currency = errors.check(
        &format!("{field}.currency"),
        Currency::parse(&money.currency).map(Currency::code),
    );
    amount.zip(currency)
}

/// Writes the fields given over `record` (all of them for a new method), validating
/// each, naming every invalid one at once.
pub(crate) fn apply(
    record: &mut ShippingMethodRecord,
    changes: ShippingMethodChanges,
) -> Result<(), Error> {
    let mut errors = FieldErrors::default();
    let old_currency = record.currency.clone();
    if let Some(name) = &changes.name {
        if let Some(name) = errors.check("name", parse_text(name, MAX_NAME_CHARS, false)) {
            record.name = name;
        }
    }
    if let Some(countries) = &changes.countries {
        if let Some(countries) = parse_countries(&mut errors, countries) {
            record.countries = countries;
        }
    }
    if let Some(rate) = &changes.rate {
        if let Some((amount, currency)) = parse_money(&mut errors, "rate", rate) {
            record.rate_amount = amount;
            record.currency = currency.to_owned();
        }
    }
    match &changes.free_above {
        Some(Some(threshold)) => {
            if let Some((amount, currency)) = parse_money(&mut errors, "free_above", threshold) {
                record.free_above_amount = Some(amount);
                // Compared only with a valid rate (a new method's rate may have failed).
                if !record.currency.is_empty() && currency != record.currency {
                    errors.push(
                        "free_above.currency",
                        format!("must be the rate's currency, {}", record.currency),
                    );
                }
            }
        }
        Some(None) => record.free_above_amount = None,
        None if record.free_above_amount.is_some() && record.currency != old_currency => {
            errors.push(
                "free_above",
                "must be given again when the rate's currency changes",
            );
        }
        None => {}
    }
    if let Some(active) = changes.active {
        record.active = i64::from(active);
    }
    errors.finish()
}

impl ShippingMethodInput {
    pub(crate) fn split(self) -> (String, ShippingMethodChanges) {
        (
            self.code,
            ShippingMethodChanges {
                name: Some(self.name),
                countries: Some(self.countries),
                rate: Some(self.rate),
                free_above: Some(self.free_above),
                active: Some(self.active),
            },
        )
    }
}
