//! Ids and the clock, engine-independent: new ids are well-formed UUIDv7s, unique and in
//! creation order, garbage is never well-formed, and the clock round-trips microseconds
//! (out of chrono's range: the epoch, not a panic).

use souk_db::{clock, ids};

use super::T0;

#[test]
fn new_ids_are_well_formed_unique_and_ordered() {
    let generated: Vec<String> = (0..2_000).map(|_| ids::new_id()).collect();
    for id in &generated {
        assert!(ids::is_well_formed(id), "{id} is well formed");
        assert_eq!(id.len(), 36);
        assert_eq!(
            uuid::Uuid::parse_str(id).unwrap().get_version_num(),
            7,
            "{id} is a UUIDv7"
        );
    }
    let mut sorted = generated.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, generated, "unique and in creation order");
}

#[test]
fn garbage_ids_are_not_well_formed() {
    let valid = ids::new_id();
    let garbage = [
        String::new(),
        "not-a-uuid".to_owned(),
        "x".repeat(36),
        valid.to_uppercase(),
        valid.replace('-', ""),
        format!("{{{valid}}}"),
        format!("urn:uuid:{valid}"),
        format!("{valid} "),
        format!(" {valid}"),
        valid[..35].to_owned(),
        format!("{}g", &valid[..35]),
        "1' OR '1'='1".to_owned(),
        "00000000-0000-0000-0000-00000000000".to_owned(),
    ];
    for candidate in &garbage {
        assert!(
            !ids::is_well_formed(candidate),
            "{candidate:?} must not be well formed"
        );
    }
    assert!(ids::is_well_formed(&valid));
    assert!(ids::is_well_formed("00000000-0000-0000-0000-000000000000"));
}

#[test]
fn clock_round_trips_microseconds() {
    let before = chrono::Utc::now().timestamp_micros();
    let now = clock::now_micros();
    let after = chrono::Utc::now().timestamp_micros();
    assert!(before <= now && now <= after);
    assert_eq!(clock::to_datetime(now).timestamp_micros(), now);
    assert_eq!(clock::to_datetime(T0).timestamp_micros(), T0);
    assert_eq!(
        clock::to_datetime(0),
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
    );
    // Out of chrono's range: the epoch, not a panic.
    assert_eq!(
        clock::to_datetime(i64::MAX),
        chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
    );
}
