//! Product variants: a product's options (size, colour …) and its variants, each sold
//! by its own SKU at its own price with its own images and its own stock actor. What
//! an admin sends, how it is validated, how it is stored and shown, and the sellable
//! item a checkout prices for one SKU.
//!
//! A product without options has no variants and is sold by its own SKU. A product
//! with options lists its variants (at least one); its own SKU then names the product
//! and is not sold by itself.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use souk_db::variants::{OptionRecord, VariantRecord};
use utoipa::ToSchema;

use crate::catalog::model::{parse_amount, parse_images, parse_sku};
use crate::catalog::service::{Money, MoneyInput, ProductView};
use crate::error::{Error, FieldError, FieldErrors};
use crate::money::Currency;

pub const MAX_OPTIONS: usize = 3;
pub const MAX_OPTION_VALUES: usize = 50;
pub const MAX_VARIANTS: usize = 100;
/// The longest option value, in characters.
pub const MAX_OPTION_VALUE_CHARS: usize = 100;
/// The width of `product_options.choices`, which holds an option's values as a JSON
/// list: values heavy with `"` or `\` (each stored as two characters) may not fit.
pub const CHOICES_COLUMN_CHARS: usize = 6000;
/// The width of `product_variants.option_values`, a JSON list of one value per option.
pub const OPTION_VALUES_COLUMN_CHARS: usize = 1000;

/// An option as an admin declares it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OptionInput {
    /// 1 to 50 letters, digits, `_` or `-`; lower-cased. Distinct within the product.
    #[schema(min_length = 1, max_length = 50)]
    pub name: String,
    /// 1 to 50 distinct values of 1 to 100 characters, in display order; together at
    /// most 6 000 characters as a JSON list (a `"` or `\` counts twice).
    #[schema(min_items = 1, max_items = 50)]
    pub values: Vec<String>,
}

/// A variant as an admin declares it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantInput {
    /// Its own SKU (as a product's), used by no other product or variant.
    #[schema(min_length = 2, max_length = 64)]
    pub sku: String,
    /// One value for every option of the product, by option name.
    pub options: BTreeMap<String, String>,
    /// Default: the product's price. Its currency must be the product's.
    #[serde(default)]
    pub price: Option<MoneyInput>,
    /// At most 10 http(s) URLs; empty: the product's images apply.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct ProductOption {
    pub name: String,
    /// In display order.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct VariantView {
    pub sku: String,
    /// The variant's value of each option, by option name.
    pub options: BTreeMap<String, String>,
    pub price: Money,
    /// Its own images; empty when the product's apply.
    pub images: Vec<String>,
    /// Units of this SKU that can be ordered now; read fresh, as the product's.
    pub available: i64,
}

/// The lowest and highest price the product sells at: its own price, or over its
/// variants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct PriceRange {
    pub min: Money,
    pub max: Money,
}

/// Options and variants that passed validation, ready to store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidVariants {
    pub options: Vec<OptionRecord>,
    pub variants: Vec<VariantRecord>,
}

impl ValidVariants {
    /// Every SKU the variants use.
    pub fn skus(&self) -> impl Iterator<Item = &str> {
        self.variants.iter().map(|variant| variant.sku.as_str())
    }
}

/// Checks options and variants against each other and the product (its SKU, price and
/// currency as validated, `None` where those failed), recording every problem in
/// `check` under `options[i]…` and `variants[i]…`.
pub fn validate(
    check: &mut FieldErrors,
    product_sku: Option<&str>,
    product_amount: Option<i64>,
    product_currency: Option<&str>,
    options: &[OptionInput],
    variants: &[VariantInput],
) -> ValidVariants {
    let mut valid = ValidVariants::default();
    if options.len() > MAX_OPTIONS {
        check.push("options", format!("at most {MAX_OPTIONS} options"));
        return valid;
    }
    if options.is_empty() {
        if !variants.is_empty() {
            check.push("variants", "variants need options: declare them in options");
        }
        return valid;
    }
    if variants.is_empty() {
        check.push(
            "variants",
            "a product with options needs at least one variant",
        );
        return valid;
    }
    if variants.len() > MAX_VARIANTS {
        check.push("variants", format!("at most {MAX_VARIANTS} variants"));
        return valid;
    }
    // Variants are checked against the options only when those are sound: a broken
    // option would make every variant look wrong.
    let mut options_sound = true;
    let mut names: Vec<String> = Vec::with_capacity(options.len());
    let mut choices: Vec<Vec<String>> = Vec::with_capacity(options.len());
    for (index, option) in options.iter().enumerate() {
        let name = check.check(
            &format!("options[{index}].name"),
            parse_option_name(&option.name),
        );
        let values = check.check(
            &format!("options[{index}].values"),
            parse_option_values(&option.values),
        );
        if let Some(name) = &name {
            if names.contains(name) {
                check.push(
                    format!("options[{index}].name"),
                    format!("option {name:?} is declared twice"),
                );
                options_sound = false;
            }
        }
        options_sound &= name.is_some() && values.is_some();
        names.push(name.unwrap_or_default());
        choices.push(values.unwrap_or_default());
    }
    let mut skus = HashSet::new();
    let mut combinations: Vec<Vec<String>> = Vec::with_capacity(variants.len());
    for (index, variant) in variants.iter().enumerate() {
        let field = |name: &str| format!("variants[{index}].{name}");
        let sku = check.check(&field("sku"), parse_sku(&variant.sku));
        if let Some(sku) = &sku {
            if Some(sku.as_str()) == product_sku {
                check.push(field("sku"), "must differ from the product's own SKU");
            } else if !skus.insert(sku.clone()) {
                check.push(field("sku"), format!("{sku} is used by an earlier variant"));
            }
        }
        let values = if options_sound {
            variant_values(check, &field("options"), &names, &choices, &variant.options)
        } else {
            None
        };
        if let Some(values) = &values {
            if let Some(earlier) = combinations.iter().position(|other| other == values) {
                check.push(
                    field("options"),
                    format!("the same options as variants[{earlier}]"),
                );
            }
            combinations.push(values.clone());
        }
        let amount = match &variant.price {
            None => product_amount,
            Some(price) => {
                let amount = check.check(&field("price.amount"), parse_amount(price.amount));
                let currency = check.check(
                    &field("price.currency"),
                    Currency::parse(&price.currency).map(Currency::code),
                );
                if let (Some(currency), Some(expected)) = (currency, product_currency) {
                    if currency != expected {
                        check.push(
                            field("price.currency"),
                            format!("must be the product's currency, {expected}"),
                        );
                    }
                }
                amount
            }
        };
        let images = check.check(&field("images"), parse_images(&variant.images));
        if let (Some(sku), Some(values), Some(amount), Some(images)) = (sku, values, amount, images)
        {
            valid.variants.push(VariantRecord {
                sku,
                option_values: to_json(&values),
                price_amount: amount,
                images: to_json(&images),
            });
        }
    }
    valid.options = names
        .into_iter()
        .zip(choices)
        .map(|(name, values)| OptionRecord {
            name,
            choices: to_json(&values),
        })
        .collect();
    valid
}

/// The variant's value of each option, in the options' order; `None` after recording
/// what is missing, unknown or not among an option's values.
fn variant_values(
    check: &mut FieldErrors,
    field: &str,
    names: &[String],
    choices: &[Vec<String>],
    given: &BTreeMap<String, String>,
) -> Option<Vec<String>> {
    let given: BTreeMap<String, &str> = given
        .iter()
        .map(|(name, value)| (name.trim().to_lowercase(), value.trim()))
        .collect();
    let mut ok = true;
    for name in given.keys() {
        if !names.contains(name) {
            check.push(field, format!("the product has no option {name:?}"));
            ok = false;
        }
    }
    let mut values = Vec::with_capacity(names.len());
    for (name, allowed) in names.iter().zip(choices) {
        match given.get(name) {
            None => {
                check.push(field, format!("needs a value for option {name:?}"));
                ok = false;
            }
            Some(value) if !allowed.iter().any(|choice| choice == value) => {
                check.push(
                    field,
                    format!("{value:?} is not a value of option {name:?}"),
                );
                ok = false;
            }
            Some(value) => values.push((*value).to_owned()),
        }
    }
    ok.then_some(values)
}

fn parse_option_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_lowercase();
    let well_formed = (1..=50).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if well_formed {
        Ok(name)
    } else {
        Err("must be 1 to 50 letters, digits, '_' or '-'".into())
    }
}

fn parse_option_values(raw: &[String]) -> Result<Vec<String>, String> {
    if raw.is_empty() || raw.len() > MAX_OPTION_VALUES {
        return Err(format!("must hold 1 to {MAX_OPTION_VALUES} values"));
    }
    let mut values: Vec<String> = Vec::with_capacity(raw.len());
    for value in raw {
        let value = value.trim();
        if value.is_empty()
            || value.chars().count() > MAX_OPTION_VALUE_CHARS
            || value.chars().any(char::is_control)
        {
            return Err(format!(
                "each value must be 1 to {MAX_OPTION_VALUE_CHARS} characters without control characters"
            ));
        }
        if values.iter().any(|earlier| earlier == value) {
            return Err(format!("{value:?} appears twice"));
        }
        values.push(value.to_owned());
    }
    let stored = to_json(&values).chars().count();
    if stored > CHOICES_COLUMN_CHARS {
        return Err(format!(
            "the values take {stored} characters as a JSON list (a '\"' or '\\' counts twice); at most {CHOICES_COLUMN_CHARS}"
        ));
    }
    Ok(values)
}

fn to_json(values: &[String]) -> String {
    serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned())
}

fn from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// The options of stored rows, as shown.
pub fn option_views(options: &[OptionRecord]) -> Vec<ProductOption> {
    options
        .iter()
        .map(|option| ProductOption {
            name: option.name.clone(),
            values: from_json(&option.choices),
        })
        .collect()
}

/// The variants of stored rows, as shown (with `available` left at 0).
pub fn variant_views(
    options: &[OptionRecord],
    variants: &[VariantRecord],
    currency: &str,
) -> Vec<VariantView> {
    variants
        .iter()
        .map(|variant| VariantView {
            sku: variant.sku.clone(),
            options: options
                .iter()
                .map(|option| option.name.clone())
                .zip(from_json(&variant.option_values))
                .collect(),
            price: Money {
                amount: variant.price_amount,
                currency: currency.to_owned(),
            },
            images: from_json(&variant.images),
            available: 0,
        })
        .collect()
}

/// The product's price range: its own price without variants, else over them.
pub fn price_range(price: &Money, variants: &[VariantView]) -> PriceRange {
    let amounts = variants.iter().map(|variant| variant.price.amount);
    let (min, max) = match (amounts.clone().min(), amounts.max()) {
        (Some(min), Some(max)) => (min, max),
        _ => (price.amount, price.amount),
    };
    let money = |amount| Money {
        amount,
        currency: price.currency.clone(),
    };
    PriceRange {
        min: money(min),
        max: money(max),
    }
}

/// The options and variants of a product view, as an admin would send them again:
/// what a PATCH keeps when it does not replace them.
pub fn inputs_of(product: &ProductView) -> (Vec<OptionInput>, Vec<VariantInput>) {
    let options = product
        .options
        .iter()
        .map(|option| OptionInput {
            name: option.name.clone(),
            values: option.values.clone(),
        })
        .collect();
    let variants = product
        .variants
        .iter()
        .map(|variant| VariantInput {
            sku: variant.sku.clone(),
            options: variant.options.clone(),
            price: Some(MoneyInput {
                amount: variant.price.amount,
                currency: variant.price.currency.clone(),
            }),
            images: variant.images.clone(),
        })
        .collect();
    (options, variants)
}

impl ProductView {
    /// The item a checkout sells for `sku`: this product itself when it has no
    /// variants, else the variant of that SKU with its price and images (the product's
    /// when it has none) and its option values in the name, `Tee (M / Red)`. The
    /// product's own SKU, when it has variants, is a validation error of the field
    /// `sku` naming the variants to order instead.
    pub fn sold_as(&self, sku: &str) -> Result<ProductView, Error> {
        if self.variants.is_empty() {
            return if self.sku == sku {
                Ok(self.clone())
            } else {
                Err(Error::not_found("product"))
            };
        }
        let Some(variant) = self.variants.iter().find(|variant| variant.sku == sku) else {
            let skus: Vec<&str> = self
                .variants
                .iter()
                .map(|variant| variant.sku.as_str())
                .collect();
            return Err(Error::validation(vec![FieldError::new(
                "sku",
                format!("{sku} has variants; order one of them: {}", skus.join(", ")),
            )]));
        };
        let values: Vec<&str> = self
            .options
            .iter()
            .filter_map(|option| variant.options.get(&option.name).map(String::as_str))
            .collect();
        let mut item = self.clone();
        item.sku = variant.sku.clone();
        item.name = format!("{} ({})", self.name, values.join(" / "));
        item.price = variant.price.clone();
        if !variant.images.is_empty() {
            item.images = variant.images.clone();
        }
        item.available = variant.available;
        Ok(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(name: &str, values: &[&str]) -> OptionInput {
        OptionInput {
            name: name.into(),
            values: values.iter().map(|value| (*value).to_owned()).collect(),
        }
    }

    fn variant(sku: &str, options: &[(&str, &str)]) -> VariantInput {
        VariantInput {
            sku: sku.into(),
            options: options
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            price: None,
            images: Vec::new(),
        }
    }

    fn fields(check: FieldErrors) -> Vec<String> {
        check
            .into_vec()
            .into_iter()
            .map(|error| error.field)
            .collect()
    }

    #[test]
    fn valid_variants_keep_the_option_order() {
        let mut check = FieldErrors::default();
        let valid = validate(
            &mut check,
            Some("TEE"),
            Some(1500),
            Some("EUR"),
            &[option("Size", &["S", "M"]), option("colour", &["Red"])],
            &[variant("tee-s", &[("colour", "Red"), ("size", "S")])],
        );
        assert!(check.is_empty());
        assert_eq!(valid.options[0].name, "size");
        assert_eq!(valid.variants[0].sku, "TEE-S");
        assert_eq!(valid.variants[0].option_values, r#"["S","Red"]"#);
        assert_eq!(valid.variants[0].price_amount, 1500);
    }

    #[test]
    fn broken_options_are_named_once() {
        let mut check = FieldErrors::default();
        validate(
            &mut check,
            Some("TEE"),
            Some(1500),
            Some("EUR"),
            &[option("size", &["S", "S"]), option("size", &["M"])],
            &[variant("TEE", &[("size", "M")])],
        );
        assert_eq!(
            fields(check),
            ["options[0].values", "options[1].name", "variants[0].sku"]
        );
    }

    #[test]
    fn every_variant_mistake_is_named() {
        let mut check = FieldErrors::default();
        validate(
            &mut check,
            Some("TEE"),
            Some(1500),
            Some("EUR"),
            &[option("size", &["S", "M"])],
            &[
                variant("TEE-X", &[("size", "XL"), ("fit", "slim")]),
                VariantInput {
                    price: Some(MoneyInput {
                        amount: 100,
                        currency: "USD".into(),
                    }),
                    ..variant("TEE-Y", &[])
                },
            ],
        );
        assert_eq!(
            fields(check),
            [
                "variants[0].options",
                "variants[0].options",
                "variants[1].options",
                "variants[1].price.currency",
            ]
        );
    }

    /// Values whose JSON list would overflow `product_options.choices` are refused; the
    /// most values of the longest plain values fit, and so does any variant's list of
    /// one accepted value per option in `product_variants.option_values`.
    #[test]
    fn stored_values_fit_their_columns() {
        let longest = |fill: &str, index: usize| {
            let tail = format!("{index:02}");
            fill.repeat(MAX_OPTION_VALUE_CHARS - tail.len()) + &tail
        };
        let plain: Vec<String> = (0..MAX_OPTION_VALUES).map(|i| longest("a", i)).collect();
        let accepted = parse_option_values(&plain).unwrap();
        assert!(to_json(&accepted).chars().count() <= CHOICES_COLUMN_CHARS);
        for fill in ["\"", "\\"] {
            let escaped: Vec<String> = (0..MAX_OPTION_VALUES).map(|i| longest(fill, i)).collect();
            assert!(to_json(&escaped).chars().count() > CHOICES_COLUMN_CHARS);
            assert!(parse_option_values(&escaped).is_err(), "{fill}");
            // As many as fit are accepted, and their list fits.
            let fitting: Vec<String> = escaped.into_iter().take(29).collect();
            let accepted = parse_option_values(&fitting).unwrap();
            assert!(to_json(&accepted).chars().count() <= CHOICES_COLUMN_CHARS);
        }
        let worst_variant = vec![longest("\"", 0); MAX_OPTIONS];
        assert!(to_json(&worst_variant).chars().count() <= OPTION_VALUES_COLUMN_CHARS);
    }

    #[test]
    fn options_and_variants_come_together() {
        let mut check = FieldErrors::default();
        validate(&mut check, None, None, None, &[], &[variant("A-1", &[])]);
        validate(&mut check, None, None, None, &[option("size", &["S"])], &[]);
        assert_eq!(fields(check), ["variants", "variants"]);
    }

    #[test]
    fn two_variants_may_not_share_options_or_skus() {
        let mut check = FieldErrors::default();
        validate(
            &mut check,
            Some("TEE"),
            Some(1),
            Some("EUR"),
            &[option("size", &["S", "M"])],
            &[
                variant("TEE-S", &[("size", "S")]),
                variant("tee-s", &[("size", "M")]),
                variant("TEE-M", &[("size", "S")]),
            ],
        );
        assert_eq!(fields(check), ["variants[1].sku", "variants[2].options"]);
    }
}
