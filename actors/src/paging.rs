//! Cursor pagination: `{"items": [...], "next_cursor": "…" | null}`, page bounds, and
//! the one cursor codec. A cursor is the opaque, URL-safe encoding of a tag naming the
//! list's order and the position of the last item of the page (its id, or its sort
//! key and id), so a page boundary stays put while rows are inserted concurrently; a
//! cursor of another list, or forged, is refused as `invalid_cursor`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, ErrorCode};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

fn invalid_cursor() -> Error {
    Error::new(
        ErrorCode::InvalidCursor,
        "the cursor is not one this API issued",
    )
}

/// Encodes the position of a page's last item under `tag` (the list and its order).
pub fn encode_position<T: Serialize>(tag: &str, position: &T) -> String {
    let json = serde_json::to_string(position).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{tag}:{json}"))
}

/// Decodes a cursor made by [`encode_position`] with the same tag; anything else is
/// `invalid_cursor`. Callers still validate the parts (ids, SKUs) they get back.
pub fn decode_position<T: DeserializeOwned>(tag: &str, cursor: &str) -> Result<T, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| invalid_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid_cursor())?;
    let json = text
        .strip_prefix(tag)
        .and_then(|rest| rest.strip_prefix(':'))
        .ok_or_else(invalid_cursor)?;
    serde_json::from_str(json).map_err(|_| invalid_cursor())
}

/// The cursor of a list ordered by id (UUIDv7, so by creation).
pub fn encode_cursor(last_id: &str) -> String {
    encode_position("id", &last_id)
}

pub fn decode_cursor(cursor: &str) -> Result<String, Error> {
    let id: String = decode_position("id", cursor)?;
    if !souk_db::ids::is_well_formed(&id) {
        return Err(invalid_cursor());
    }
    Ok(id)
}

/// The cursor as an optional query parameter: absent is the first page.
pub fn decode_optional<T: DeserializeOwned>(
    tag: &str,
    cursor: Option<&str>,
) -> Result<Option<T>, Error> {
    cursor
        .map(|cursor| decode_position(tag, cursor))
        .transpose()
}

pub fn checked_limit(limit: Option<u32>) -> Result<u32, Error> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(Error::new(
            ErrorCode::InvalidQuery,
            format!("limit must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// Cuts the extra row a repository fetched (`limit + 1`) and turns it into a cursor.
pub fn paginate<R, T>(
    mut rows: Vec<R>,
    limit: u32,
    id_of: impl Fn(&R) -> &str,
    view: impl Fn(R) -> T,
) -> Page<T> {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|row| encode_cursor(id_of(row)))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(view).collect(),
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let id = souk_db::ids::new_id();
        assert_eq!(decode_cursor(&encode_cursor(&id)).unwrap(), id);
    }

    #[test]
    fn forged_cursors_are_refused() {
        for forged in [
            "",
            "!!!",
            "djE6bm90LWFuLWlk",
            &encode_position("sku", &"SKU-1"),
            &URL_SAFE_NO_PAD.encode("v1:' OR 1=1 --"),
        ] {
            assert_eq!(
                decode_cursor(forged).unwrap_err().code(),
                ErrorCode::InvalidCursor,
                "{forged}"
            );
        }
    }

    #[test]
    fn positions_round_trip_under_their_tag_only() {
        let cursor = encode_position("o1", &(1_700_000_000_i64, "abc"));
        let back: (i64, String) = decode_position("o1", &cursor).unwrap();
        assert_eq!(back, (1_700_000_000, "abc".to_owned()));
        assert!(decode_position::<(i64, String)>("o2", &cursor).is_err());
        assert!(decode_position::<String>("o1", &cursor).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(checked_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(checked_limit(Some(100)).unwrap(), 100);
        assert!(checked_limit(Some(0)).is_err());
        assert!(checked_limit(Some(100_000)).is_err());
    }
}
