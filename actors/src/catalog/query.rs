//! The search query of the product list, parsed from its key/value pairs (a REST query
//! string, or a gRPC request turned into the same pairs), so both edges accept and
//! refuse exactly the same searches.

use crate::catalog::index::Sort;
use crate::catalog::model::ProductStatus;
use crate::catalog::service::SearchParams;
use crate::error::{Error, ErrorCode};
use crate::money::Currency;
use crate::paging::checked_limit;

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidQuery, detail)
}

fn one<'a>(seen: &mut Vec<&'a str>, key: &'a str) -> Result<(), Error> {
    if seen.contains(&key) {
        return Err(invalid(format!("{key} may be given once")));
    }
    seen.push(key);
    Ok(())
}

fn parse_price(key: &str, value: &str) -> Result<i64, Error> {
    value
        .parse::<i64>()
        .ok()
        .filter(|amount| *amount >= 0)
        .ok_or_else(|| {
            invalid(format!(
                "{key} must be a non-negative integer amount in minor units"
            ))
        })
}

/// Parses every pair; an unknown key, a repeated single-valued key or a bad value is
/// `invalid_query`.
pub fn parse_search_params(pairs: &[(String, String)]) -> Result<SearchParams, Error> {
    let mut params = SearchParams::default();
    let mut seen = Vec::new();
    let mut limit = None;
    for (key, value) in pairs {
        match key.as_str() {
            "q" => {
                one(&mut seen, "q")?;
                if value.chars().count() > 200 {
                    return Err(invalid("q must be at most 200 characters"));
                }
                params.q = Some(value.clone());
            }
            "category" => {
                one(&mut seen, "category")?;
                params.category_id = Some(value.clone());
            }
            "price_min" => {
                one(&mut seen, "price_min")?;
                params.price_min = Some(parse_price(key, value)?);
            }
            "price_max" => {
                one(&mut seen, "price_max")?;
                params.price_max = Some(parse_price(key, value)?);
            }
            "currency" => {
                one(&mut seen, "currency")?;
                params.currency = Some(Currency::parse(value).map_err(invalid)?.code().to_owned());
            }
            "tag" => {
                if params.tags.len() >= 10 {
                    return Err(invalid("at most 10 tag filters"));
                }
                params.tags.push(value.trim().to_lowercase());
            }
            "attr" => {
                let (name, attribute_value) = value
                    .split_once(':')
                    .ok_or_else(|| invalid("attr must be name:value"))?;
                if params.attributes.len() >= 10 {
                    return Err(invalid("at most 10 attr filters"));
                }
                params.attributes.push((
                    name.trim().to_lowercase(),
                    attribute_value.trim().to_owned(),
                ));
            }
            "status" => {
                one(&mut seen, "status")?;
                let statuses = value
                    .split(',')
                    .map(|status| {
                        ProductStatus::parse(status.trim())
                            .ok_or_else(|| invalid(format!("unknown status {status:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                params.statuses = Some(statuses);
            }
            "sort" => {
                one(&mut seen, "sort")?;
                params.sort = Some(Sort::parse(value).ok_or_else(|| {
                    invalid(format!("unknown sort {value:?}; use relevance, newest, price_asc, price_desc or name"))
                })?);
            }
            "limit" => {
                one(&mut seen, "limit")?;
                limit = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| invalid("limit must be between 1 and 100"))?,
                );
            }
            "cursor" => {
                one(&mut seen, "cursor")?;
                params.cursor = Some(value.clone());
            }
            "in_stock" => {
                one(&mut seen, "in_stock")?;
                params.in_stock = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid("in_stock must be true or false")),
                };
            }
            other => return Err(invalid(format!("unknown parameter {other:?}"))),
        }
    }
    if let (Some(minimum), Some(maximum)) = (params.price_min, params.price_max) {
        if minimum > maximum {
            return Err(invalid("price_min must not exceed price_max"));
        }
    }
    params.limit = checked_limit(limit)?;
    Ok(params)
}
