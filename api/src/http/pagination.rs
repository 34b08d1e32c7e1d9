//! Cursor pagination: `{"items": [...], "next_cursor": "…" | null}`. A cursor is the
//! opaque, URL-safe encoding of the last id of the page; ids are UUIDv7, ordered by
//! creation, so a page boundary stays put while rows are inserted concurrently.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
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

pub fn encode_cursor(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{last_id}"))
}

pub fn decode_cursor(cursor: &str) -> Result<String, Error> {
    let invalid = || {
        Error::new(
            ErrorCode::InvalidCursor,
            "the cursor is not one this API issued",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let id = text.strip_prefix("v1:").ok_or_else(invalid)?;
    if !souk_db::ids::is_well_formed(id) {
        return Err(invalid());
    }
    Ok(id.to_owned())
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
    fn limits_are_bounded() {
        assert_eq!(checked_limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(checked_limit(Some(100)).unwrap(), 100);
        assert!(checked_limit(Some(0)).is_err());
        assert!(checked_limit(Some(100_000)).is_err());
    }
}
