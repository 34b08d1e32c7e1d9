//! Time as the database stores it: microseconds since the Unix epoch, UTC.

use chrono::{DateTime, TimeZone, Utc};

/// Microseconds since the Unix epoch, UTC, the unit of every `*_at` column.
pub type Micros = i64;

pub fn now_micros() -> Micros {
    Utc::now().timestamp_micros()
}

pub fn to_datetime(micros: Micros) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}
