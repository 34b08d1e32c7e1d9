//! The formats the validators enforce, written into the document's schemas in one
//! place: email addresses, SKUs, slugs, catalog names and descriptions, tags,
//! attributes, image URLs, person names, one-time tokens, currency and country codes
//! (also a shipping method's countries), shipping method codes and postal codes. Each pattern is the validator's own constant (`souk_actors`), whose
//! tests generate values from it and check that the validator accepts every one, so a
//! request valid by the document is never refused for its format.

use serde_json::{json, Value};
use souk_actors::catalog::model::{
    ATTRIBUTE_NAME_PATTERN, ATTRIBUTE_VALUE_PATTERN, IMAGE_URL_PATTERN, REQUIRED_TEXT_PATTERN,
    SKU_PATTERN, SLUG_PATTERN, TAG_PATTERN, TEXT_PATTERN,
};
use souk_actors::identity::address::{country_codes, POSTAL_CODE_PATTERN};
use souk_actors::identity::email_address::EMAIL_PATTERN;
use souk_actors::identity::name::NAME_PATTERN;
use souk_actors::identity::secret_token::TOKEN_PATTERN;
use souk_actors::money::Currency;
use utoipa::openapi::OpenApi;
use utoipa::Modify;

/// A request schema's property and the keywords it gets.
fn properties() -> Vec<(&'static str, &'static str, Value)> {
    let email = json!({"pattern": EMAIL_PATTERN, "maxLength": 254});
    let sku = json!({"pattern": SKU_PATTERN, "minLength": 2, "maxLength": 64});
    let slug = json!({"pattern": SLUG_PATTERN, "minLength": 1, "maxLength": 100});
    let tags = json!({"items": {"type": "string", "pattern": TAG_PATTERN, "minLength": 1, "maxLength": 50}});
    let attributes = json!({
        "propertyNames": {"type": "string", "pattern": ATTRIBUTE_NAME_PATTERN},
        "additionalProperties": {
            "type": "string", "pattern": ATTRIBUTE_VALUE_PATTERN, "minLength": 1, "maxLength": 100,
        },
        "maxProperties": 30,
    });
    let images =
        json!({"items": {"type": "string", "pattern": IMAGE_URL_PATTERN, "maxLength": 300}});
    let required_text = json!({"pattern": REQUIRED_TEXT_PATTERN});
    let text = json!({"pattern": TEXT_PATTERN});
    let token = json!({"pattern": TOKEN_PATTERN, "minLength": 43, "maxLength": 43});
    let name = json!({"pattern": NAME_PATTERN});
    let currencies: Vec<&str> = Currency::codes().collect();
    let country = json!({
        "enum": country_codes().collect::<Vec<_>>(),
        "description": "ISO 3166-1 alpha-2 code (lower case is accepted too).",
    });
    let postal_code = json!({"pattern": POSTAL_CODE_PATTERN});
    let countries =
        json!({"items": {"type": "string", "enum": country_codes().collect::<Vec<_>>()}});
    vec![
        ("ShippingMethodInput", "countries", countries.clone()),
        ("ShippingMethodChanges", "countries", countries),
        ("AddressInput", "name", name.clone()),
        ("AddressChanges", "name", name.clone()),
        ("AddressInput", "country", country.clone()),
        ("AddressChanges", "country", country),
        ("AddressInput", "postal_code", postal_code.clone()),
        ("AddressChanges", "postal_code", postal_code),
        ("RegisterRequest", "email", email.clone()),
        ("RegisterRequest", "name", name.clone()),
        ("UpdateProfileRequest", "name", name),
        ("UpdateProfileRequest", "email", email),
        ("ProductInput", "sku", sku.clone()),
        ("OrderItemInput", "sku", sku),
        ("CategoryInput", "slug", slug.clone()),
        ("ShippingMethodInput", "code", slug.clone()),
        ("CreateOrderInput", "shipping_method", slug.clone()),
        ("CategoryChanges", "slug", slug),
        ("ProductInput", "tags", tags.clone()),
        ("ProductChanges", "tags", tags),
        ("ProductInput", "attributes", attributes.clone()),
        ("ProductChanges", "attributes", attributes),
        ("ProductInput", "images", images.clone()),
        ("ProductChanges", "images", images),
        ("ProductInput", "name", required_text.clone()),
        ("ProductChanges", "name", required_text.clone()),
        ("CategoryInput", "name", required_text.clone()),
        ("ShippingMethodInput", "name", required_text.clone()),
        ("ShippingMethodChanges", "name", required_text.clone()),
        ("CategoryChanges", "name", required_text),
        ("ProductInput", "description", text.clone()),
        ("ProductChanges", "description", text),
        ("PasswordResetConfirmRequest", "token", token.clone()),
        ("ConfirmEmailChangeRequest", "token", token),
        (
            "MoneyInput",
            "currency",
            json!({"enum": currencies, "description": "ISO 4217 code, upper case."}),
        ),
    ]
}

/// A query parameter of an operation and the keywords its schema gets.
fn query_parameters() -> Vec<(&'static str, &'static str, &'static str, Value)> {
    let token = json!({"pattern": TOKEN_PATTERN, "minLength": 43, "maxLength": 43});
    vec![("/api/v1/auth/verify-email", "get", "token", token)]
}

fn merge(target: &mut Value, keywords: &Value) -> bool {
    let (Some(target), Some(keywords)) = (target.as_object_mut(), keywords.as_object()) else {
        return false;
    };
    for (key, value) in keywords {
        target.insert(key.clone(), value.clone());
    }
    true
}

/// Writes the formats into `document`; returns what it could not find (a renamed
/// schema, property or parameter), which a test keeps empty.
pub(crate) fn apply(document: &mut Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (schema, property, keywords) in properties() {
        let pointer = format!("/components/schemas/{schema}/properties/{property}");
        let found = document
            .pointer_mut(&pointer)
            .is_some_and(|target| merge(target, &keywords));
        if !found {
            missing.push(pointer);
        }
    }
    for (path, method, name, keywords) in query_parameters() {
        let pointer = format!("/paths/{}/{method}/parameters", path.replace('/', "~1"));
        let found = document
            .pointer_mut(&pointer)
            .and_then(Value::as_array_mut)
            .and_then(|parameters| {
                parameters
                    .iter_mut()
                    .find(|parameter| parameter["name"] == name && parameter["in"] == "query")
            })
            .and_then(|parameter| parameter.get_mut("schema"))
            .is_some_and(|schema| merge(schema, &keywords));
        if !found {
            missing.push(format!("{pointer} ({name})"));
        }
    }
    missing
}

pub struct Formats;

impl Modify for Formats {
    fn modify(&self, openapi: &mut OpenApi) {
        let Ok(mut document) = serde_json::to_value(&*openapi) else {
            return;
        };
        let missing = apply(&mut document);
        debug_assert!(
            missing.is_empty(),
            "formats for missing places: {missing:?}"
        );
        if let Ok(modified) = serde_json::from_value(document) {
            *openapi = modified;
        }
    }
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;

    use super::*;

    /// The served document carries every keyword (the modifier ran, and nothing was lost
    /// on the way through utoipa's types).
    #[test]
    fn every_format_lands_in_the_document() {
        let mut document = serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap();
        for (schema, property, keywords) in properties() {
            let found = &document["components"]["schemas"][schema]["properties"][property];
            for (key, value) in keywords.as_object().unwrap() {
                assert_eq!(&found[key], value, "{schema}.{property}: {key}");
            }
        }
        for (path, method, name, keywords) in query_parameters() {
            let parameters = document["paths"][path][method]["parameters"]
                .as_array()
                .unwrap();
            let parameter = parameters
                .iter()
                .find(|parameter| parameter["name"] == name)
                .unwrap();
            for (key, value) in keywords.as_object().unwrap() {
                assert_eq!(&parameter["schema"][key], value, "{path} {name}: {key}");
            }
        }
        assert_eq!(apply(&mut document), Vec::<String>::new());
    }
}
