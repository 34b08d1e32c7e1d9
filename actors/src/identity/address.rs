//! A postal address as Souk keeps it, validated once from raw fields: every text field
//! trimmed and capped, no control characters; the country an assigned ISO 3166-1
//! alpha-2 code (any case in, upper case stored); a postal code required for the
//! countries of [`POSTAL_CODE_REQUIRED`], optional elsewhere; an optional phone number.
//! The same value is an address book entry's content and the snapshot an order keeps.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{Error, FieldErrors};
use crate::identity::PersonName;

/// Countries whose addresses need a postal code to be delivered to.
pub const POSTAL_CODE_REQUIRED: &[&str] = &["AU", "CA", "DE", "FR", "GB", "JP", "NL", "US"];

/// A postal code as [`PostalAddress::parse`] accepts it, as the API document's
/// `pattern` (with `maxLength` 12): letters, digits, spaces and hyphens, starting with
/// a letter or digit.
pub const POSTAL_CODE_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9 -]*$";

/// Every assigned ISO 3166-1 alpha-2 code, upper case (the API document's `enum`).
pub fn country_codes() -> impl Iterator<Item = &'static str> {
    isocountry::CountryCode::as_array()
        .iter()
        .map(|code| code.alpha2())
}

pub const MAX_LINE_CHARS: usize = 200;
pub const MAX_CITY_CHARS: usize = 100;
pub const MAX_REGION_CHARS: usize = 100;
pub const MAX_POSTAL_CODE_CHARS: usize = 12;
pub const MAX_PHONE_CHARS: usize = 32;

/// The raw fields of an address as a client sent them; `None` is "not given". Blank
/// optional fields are cleared.
#[derive(Debug, Clone, Default)]
pub struct AddressFields {
    pub name: Option<String>,
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
    pub phone: Option<String>,
}

impl AddressFields {
    /// These fields over `base`: what is given replaces, the rest stays.
    pub fn over(self, base: &PostalAddress) -> AddressFields {
        AddressFields {
            name: self.name.or_else(|| Some(base.name.clone())),
            line1: self.line1.or_else(|| Some(base.line1.clone())),
            line2: self.line2.or_else(|| base.line2.clone()),
            city: self.city.or_else(|| Some(base.city.clone())),
            region: self.region.or_else(|| base.region.clone()),
            postal_code: self.postal_code.or_else(|| base.postal_code.clone()),
            country: self.country.or_else(|| Some(base.country.clone())),
            phone: self.phone.or_else(|| base.phone.clone()),
        }
    }
}

/// A validated postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PostalAddress {
    /// The recipient.
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    /// State, province or county.
    pub region: Option<String>,
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    pub phone: Option<String>,
}

impl PostalAddress {
    /// Validates every field, naming each invalid one (`validation_failed`).
    pub fn parse(fields: &AddressFields) -> Result<Self, Error> {
        let mut errors = FieldErrors::default();
        let name = errors.check(
            "name",
            required(&fields.name)
                .and_then(|name| PersonName::parse(name).map(|name| name.as_str().to_owned())),
        );
        let line1 = errors.check(
            "line1",
            required(&fields.line1).and_then(|line| text(line, MAX_LINE_CHARS)),
        );
        let line2 = optional(&mut errors, "line2", &fields.line2, |line| {
            text(line, MAX_LINE_CHARS)
        });
        let city = errors.check(
            "city",
            required(&fields.city).and_then(|city| text(city, MAX_CITY_CHARS)),
        );
        let region = optional(&mut errors, "region", &fields.region, |region| {
            text(region, MAX_REGION_CHARS)
        });
        let country = errors.check("country", required(&fields.country).and_then(country));
        let postal_code = optional(&mut errors, "postal_code", &fields.postal_code, postal_code);
        if let (Some(country), None) = (&country, &postal_code) {
            let given_but_invalid = fields
                .postal_code
                .as_deref()
                .is_some_and(|raw| !raw.trim().is_empty());
            if POSTAL_CODE_REQUIRED.contains(&country.as_str()) && !given_but_invalid {
                errors.push(
                    "postal_code",
                    format!("is required for addresses in {country}"),
                );
            }
        }
        let phone = optional(&mut errors, "phone", &fields.phone, phone);
        errors.finish()?;
        match (name, line1, city, country) {
            (Some(name), Some(line1), Some(city), Some(country)) => Ok(Self {
                name,
                line1,
                line2,
                city,
                region,
                postal_code,
                country,
                phone,
            }),
            _ => Err(Error::internal("validated address fields missing")),
        }
    }
}

fn required(raw: &Option<String>) -> Result<&str, String> {
    match raw.as_deref().map(str::trim) {
        None => Err("is required".into()),
        Some("") => Err("must not be empty".into()),
        Some(value) => Ok(value),
    }
}

/// A blank optional field is absent; a given one must pass `parse`.
fn optional(
    errors: &mut FieldErrors,
    field: &str,
    raw: &Option<String>,
    parse: impl FnOnce(&str) -> Result<String, String>,
) -> Option<String> {
    let value = raw
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())?;
    errors.check(field, parse(value))
}

/// One line of text: at most `max_chars` characters, no control characters.
fn text(value: &str, max_chars: usize) -> Result<String, String> {
    if value.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

/// An assigned ISO 3166-1 alpha-2 code, in either case; upper case out.
fn country(value: &str) -> Result<String, String> {
    let code = value.to_ascii_uppercase();
    let refused = || "must be an ISO 3166-1 alpha-2 country code, such as DE or US".to_owned();
    if code.len() != 2 || !code.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(refused());
    }
    isocountry::CountryCode::for_alpha2(&code)
        .map(|found| found.alpha2().to_owned())
        .map_err(|_| refused())
}

/// Letters, digits, spaces and hyphens, starting with a letter or digit; upper case out.
fn postal_code(value: &str) -> Result<String, String> {
    if value.chars().count() > MAX_POSTAL_CODE_CHARS {
        return Err(format!(
            "must be at most {MAX_POSTAL_CODE_CHARS} characters"
        ));
    }
    let plain = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
    if !plain {
        return Err("may hold only letters, digits, spaces and hyphens".into());
    }
    Ok(value.to_ascii_uppercase())
}

/// Digits with the usual separators (spaces, `-`, `.`, `/`, parentheses) and an
/// optional leading `+`; 4 to 15 digits (E.164 has at most 15).
fn phone(value: &str) -> Result<String, String> {
    if value.chars().count() > MAX_PHONE_CHARS {
        return Err(format!("must be at most {MAX_PHONE_CHARS} characters"));
    }
    let body = value.strip_prefix('+').unwrap_or(value);
    let plain = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '/' | '(' | ')'));
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !plain || !(4..=15).contains(&digits) {
        return Err("must be a phone number: 4 to 15 digits, an optional leading +, and spaces, hyphens, dots, slashes or parentheses".into());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(country: &str, postal_code: Option<&str>) -> AddressFields {
        AddressFields {
            name: Some(" Ada Lovelace ".into()),
            line1: Some("1 Main Street".into()),
            city: Some("Springfield".into()),
            country: Some(country.into()),
            postal_code: postal_code.map(Into::into),
            ..AddressFields::default()
        }
    }

    fn failed_fields(fields: &AddressFields) -> Vec<String> {
        PostalAddress::parse(fields)
            .unwrap_err()
            .field_errors()
            .iter()
            .map(|error| error.field.clone())
            .collect()
    }

    #[test]
    fn a_valid_address_is_trimmed_and_normalised() {
        let mut given = fields(" us ", Some(" 12345-6789 "));
        given.line2 = Some("   ".into());
        given.phone = Some("+1 (555) 010-0000".into());
        let address = PostalAddress::parse(&given).unwrap();
        assert_eq!(address.name, "Ada Lovelace");
        assert_eq!(address.country, "US");
        assert_eq!(address.postal_code.as_deref(), Some("12345-6789"));
        assert_eq!(address.line2, None, "blank optional fields are absent");
        assert_eq!(address.phone.as_deref(), Some("+1 (555) 010-0000"));
        let british = PostalAddress::parse(&fields("gb", Some("sw1a 1aa"))).unwrap();
        assert_eq!(british.postal_code.as_deref(), Some("SW1A 1AA"));
    }

    #[test]
    fn postal_codes_are_required_only_where_listed() {
        for country in POSTAL_CODE_REQUIRED {
            assert_eq!(failed_fields(&fields(country, None)), ["postal_code"]);
            assert_eq!(failed_fields(&fields(country, Some(" "))), ["postal_code"]);
        }
        // Hong Kong and Ireland's rural addresses have none.
        assert!(PostalAddress::parse(&fields("HK", None)).is_ok());
        assert!(PostalAddress::parse(&fields("IE", None)).is_ok());
    }

    #[test]
    fn countries_must_be_assigned_alpha_2_codes() {
        for refused in ["XX", "USA", "U", "1A", "ÜS", "", "ZZ"] {
            assert_eq!(
                failed_fields(&fields(refused, Some("1"))),
                ["country"],
                "{refused}"
            );
        }
        for accepted in ["de", "SS", "cw", "JP"] {
            assert!(
                PostalAddress::parse(&fields(accepted, Some("100-0001"))).is_ok(),
                "{accepted}"
            );
        }
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let given = AddressFields {
            name: Some("\u{200B}".into()),
            line1: Some("x".repeat(MAX_LINE_CHARS + 1)),
            line2: Some("a\nb".into()),
            city: None,
            region: Some("r".repeat(MAX_REGION_CHARS + 1)),
            postal_code: Some("<script>".into()),
            country: Some("DE".into()),
            phone: Some("call me".into()),
        };
        assert_eq!(
            failed_fields(&given),
            [
                "name",
                "line1",
                "line2",
                "city",
                "region",
                "postal_code",
                "phone"
            ]
        );
        let error = PostalAddress::parse(&AddressFields::default()).unwrap_err();
        assert_eq!(error.code(), crate::error::ErrorCode::ValidationFailed);
        assert_eq!(error.field_errors().len(), 4, "{error}");
    }

    #[test]
    fn changes_apply_over_an_address() {
        let base = PostalAddress::parse(&fields("DE", Some("10115"))).unwrap();
        let changes = AddressFields {
            city: Some("Berlin".into()),
            ..AddressFields::default()
        };
        let changed = PostalAddress::parse(&changes.over(&base)).unwrap();
        assert_eq!(changed.city, "Berlin");
        assert_eq!(changed.postal_code.as_deref(), Some("10115"));
        // Moving to a listed country without a postal code is refused; clearing one too.
        let to_us = AddressFields {
            country: Some("US".into()),
            postal_code: Some(String::new()),
            ..AddressFields::default()
        };
        assert_eq!(failed_fields(&to_us.over(&base)), ["postal_code"]);
    }

    proptest::proptest! {
        /// Every postal code the document's pattern allows is one the validator accepts.
        #[test]
        fn postal_codes_the_pattern_allows_are_accepted(
            raw in POSTAL_CODE_PATTERN.trim_start_matches('^').trim_end_matches('$')
        ) {
            proptest::prop_assume!(raw.chars().count() <= MAX_POSTAL_CODE_CHARS);
            proptest::prop_assert!(postal_code(raw.trim()).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn every_listed_country_code_is_accepted() {
        let codes: Vec<&str> = country_codes().collect();
        assert_eq!(codes.len(), 249);
        for code in codes {
            assert_eq!(country(code).unwrap(), code);
        }
    }

    #[test]
    fn phone_numbers() {
        for accepted in ["+49 30 1234567", "030/1234567", "(555) 010.0000", "1234"] {
            assert!(phone(accepted).is_ok(), "{accepted}");
        }
        for refused in ["123", "+", "12a34", "++4930123", &"1".repeat(16)] {
            assert!(phone(refused).is_err(), "{refused}");
        }
    }
}
