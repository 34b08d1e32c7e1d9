//! The opaque page cursor: where the previous page ended, in the terms of its sort
//! (the sort key of its last product and that product's id). Keyset paging: a product
//! whose sort key does not change is returned exactly once, whatever is written
//! between pages, because relevance scores depend only on the product and the words.

use serde::{Deserialize, Serialize};

use crate::paging::{decode_position, encode_position};

use super::model::{IndexError, Result, Sort};
use super::schema;

/// The last product of a page, as its sort sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    pub sort: Sort,
    pub key: AfterKey,
    /// The id as a number (orders like its text).
    pub id: u128,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterKey {
    /// An order-preserving number: score bits, amount, or biased creation time.
    Number(u64),
    /// The lower-case name.
    Name(String),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    s: Sort,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    i: String,
}

/// Longest name a cursor may carry (names are at most 200 characters).
const MAX_NAME_BYTES: usize = 1_000;

/// What the shared cursor codec tags a search cursor with.
const CURSOR_TAG: &str = "search";

pub fn encode(after: &After) -> String {
    let (k, n) = match &after.key {
        AfterKey::Number(number) => (Some(*number), None),
        AfterKey::Name(name) => (None, Some(name.clone())),
    };
    let wire = Wire {
        s: after.sort,
        k,
        n,
        i: schema::id_from_value(after.id),
    };
    encode_position(CURSOR_TAG, &wire)
}

/// Decodes a cursor of `expected` sort; anything this index did not issue is refused.
pub fn decode(raw: &str, expected: Sort) -> Result<After> {
    let invalid = |why: &str| IndexError::InvalidCursor(why.to_owned());
    let wire: Wire =
        decode_position(CURSOR_TAG, raw).map_err(|_| invalid("not one this index issued"))?;
    if wire.s != expected {
        return Err(invalid("it belongs to another sort order"));
    }
    let (high, low) = schema::id_halves(&wire.i).ok_or_else(|| invalid("bad id"))?;
    let key = match (wire.s, wire.k, wire.n) {
        (Sort::Name, None, Some(name)) if name.len() <= MAX_NAME_BYTES => AfterKey::Name(name),
        (Sort::Name, _, _) => return Err(invalid("missing name")),
        (_, Some(number), None) => AfterKey::Number(number),
        _ => return Err(invalid("missing sort key")),
    };
    Ok(After {
        sort: wire.s,
        key,
        id: (u128::from(high) << 64) | u128::from(low),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_other_sorts_and_forgeries() {
        let after = After {
            sort: Sort::PriceAsc,
            key: AfterKey::Number(1999),
            id: 0x0189_0a5d_ac96_774b_bcce_b302_099a_8057,
        };
        let encoded = encode(&after);
        assert_eq!(decode(&encoded, Sort::PriceAsc).unwrap(), after);
        assert!(decode(&encoded, Sort::Newest).is_err());
        assert!(decode("garbage", Sort::Newest).is_err());
        let forged = encode_position(
            CURSOR_TAG,
            &serde_json::json!({"s": "newest", "k": 1, "i": "' OR 1=1"}),
        );
        assert!(decode(&forged, Sort::Newest).is_err());
        let nameless = encode_position(
            CURSOR_TAG,
            &serde_json::json!({"s": "name", "k": 1, "i": "01890a5d-ac96-774b-bcce-b302099a8057"}),
        );
        assert!(decode(&nameless, Sort::Name).is_err());
        let untagged = encode_position(
            "id",
            &serde_json::json!({"s": "newest", "k": 1, "i": "01890a5d-ac96-774b-bcce-b302099a8057"}),
        );
        assert!(decode(&untagged, Sort::Newest).is_err());
        let named = After {
            sort: Sort::Name,
            key: AfterKey::Name("linen shirt".into()),
            id: 7,
        };
        assert_eq!(decode(&encode(&named), Sort::Name).unwrap(), named);
    }
}
