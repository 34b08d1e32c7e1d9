//! Public identifiers: UUIDv7 strings. They sort by creation time, so keyset
//! pagination can order by id alone, and they leak no row counts.

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// True when `candidate` is a canonical lowercase hyphenated UUID, the only form Souk
/// hands out. Anything else cannot name a row, so callers answer "not found" early.
pub fn is_well_formed(candidate: &str) -> bool {
    candidate.len() == 36
        && uuid::Uuid::parse_str(candidate)
            .map(|uuid| uuid.hyphenated().to_string() == candidate)
            .unwrap_or(false)
}
