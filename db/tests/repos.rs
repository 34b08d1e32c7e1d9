//! The repositories of `souk-db` against both engines: every case below runs once on a
//! fresh SQLite file and once on a fresh MariaDB database (`SOUK_TEST_MYSQL_URL`).

use souk_db::clock::{self, Micros};
use souk_db::ids;
use souk_db::one_time_tokens::{self, OneTimeToken, TokenKind};
use souk_db::outbox::{self, OutboxEvent};
use souk_db::sessions::{self, RefreshTokenRecord};
use souk_db::testing::{fresh, TestBackend, TestDatabase};
use souk_db::users::{self, UserFilter, UserRecord};
use souk_db::{Backend, DbError};

souk_db::on_both_backends!(
    #[tokio::test]
    fresh_database_is_empty_and_on_the_right_engine,
    users_round_trip,
    users_duplicate_email_or_id_is_unique_violation,
    users_update_profile,
    users_update_password_status_role,
    users_delete,
    users_list_paginates_every_user_once_in_id_order,
    users_list_email_filter_matches_like_metacharacters_literally,
    users_list_role_filter,
    refresh_token_round_trip,
    refresh_token_marked_used_once,
    revoke_family_revokes_only_that_family,
    revoke_user_sessions_spares_kept_family,
    password_reset_round_trip_and_used_once,
    delete_user_tokens_removes_only_that_user,
    outbox_rolled_back_append_leaves_nothing,
);

// ---------------------------------------------------------------------------------------
// helpers

/// A fixed instant with non-zero microseconds and far beyond `i32`, to catch truncation.
const T0: Micros = 1_764_000_000_123_456;

async fn database(backend: TestBackend) -> TestDatabase {
    let test = fresh(backend).await;
    let expected = match backend {
        TestBackend::Sqlite => Backend::Sqlite,
        TestBackend::MySql => Backend::MySql,
    };
    assert_eq!(test.db.backend(), expected);
    test
}

fn user(email: &str) -> UserRecord {
    UserRecord {
        id: ids::new_id(),
        email: email.to_owned(),
        name: format!("Name of {email}"),
        password_hash: "$2b$12$abcdefghijklmnopqrstuuZ0123456789ABCDEFGHIJKLMNOPQRSTU".to_owned(),
        role: "customer".to_owned(),
        status: "active".to_owned(),
        email_verified_at: None,
        created_at: T0,
        updated_at: T0,
    }
}

async fn insert_users(test: &TestDatabase, records: &[UserRecord]) {
    for record in records {
        users::insert(test.db.pool(), record)
            .await
            .expect("insert user");
    }
}

async fn count(test: &TestDatabase, table: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(test.db.pool())
        .await
        .expect("count rows")
}

async fn get_user(test: &TestDatabase, id: &str) -> UserRecord {
    users::find_by_id(test.db.pool(), id)
        .await
        .expect("find user")
        .unwrap_or_else(|| panic!("user {id} should exist"))
}

fn ids_of(records: &[UserRecord]) -> Vec<String> {
    records.iter().map(|record| record.id.clone()).collect()
}

fn filter() -> UserFilter {
    UserFilter {
        limit: 100,
        ..UserFilter::default()
    }
}

async fn list(test: &TestDatabase, filter: &UserFilter) -> Vec<UserRecord> {
    users::list(test.db.pool(), filter)
        .await
        .expect("list users")
}

fn refresh_token(user_id: &str, family_id: &str) -> RefreshTokenRecord {
    let id = ids::new_id();
    RefreshTokenRecord {
        token_hash: hash_of(&id),
        id,
        family_id: family_id.to_owned(),
        user_id: user_id.to_owned(),
        issued_at: T0,
        expires_at: T0 + 30 * 86_400_000_000,
        used_at: None,
        revoked_at: None,
    }
}

fn password_reset(user_id: &str) -> OneTimeToken {
    let id = ids::new_id();
    OneTimeToken {
        token_hash: hash_of(&id),
        id,
        user_id: user_id.to_owned(),
        created_at: T0,
        expires_at: T0 + 3_600_000_000,
        used_at: None,
    }
}

/// A 64-hex-digit stand-in for a SHA-256 token hash, unique per seed.
fn hash_of(seed: &str) -> String {
    let hex: String = seed.chars().filter(char::is_ascii_hexdigit).collect();
    format!("{hex:0>64}")
}

async fn insert_tokens(test: &TestDatabase, tokens: &[RefreshTokenRecord]) {
    for token in tokens {
        sessions::insert_refresh_token(test.db.pool(), token)
            .await
            .expect("insert refresh token");
    }
}

async fn get_token(test: &TestDatabase, token_hash: &str) -> RefreshTokenRecord {
    sessions::find_refresh_token(test.db.pool(), token_hash)
        .await
        .expect("find refresh token")
        .unwrap_or_else(|| panic!("refresh token {token_hash} should exist"))
}

// ---------------------------------------------------------------------------------------
// the database itself

async fn fresh_database_is_empty_and_on_the_right_engine(backend: TestBackend) {
    let test = database(backend).await;
    test.db.ping().await.expect("ping");
    for table in [
        "users",
        "refresh_tokens",
        "password_resets",
        "outbox_events",
    ] {
        assert_eq!(count(&test, table).await, 0, "{table} starts empty");
    }
    // Migrating again is a no-op, not an error.
    test.db.migrate().await.expect("second migrate");
}

// ---------------------------------------------------------------------------------------
// users

async fn users_round_trip(backend: TestBackend) {
    let test = database(backend).await;
    let mut alice = user("alice@example.test");
    alice.role = "admin".to_owned();
    alice.email_verified_at = Some(T0 + 7);
    alice.updated_at = T0 + 42;
    let bob = user("bob@example.test");
    insert_users(&test, &[alice.clone(), bob.clone()]).await;

    for expected in [&alice, &bob] {
        let by_id = users::find_by_id(test.db.pool(), &expected.id)
            .await
            .unwrap();
        assert_eq!(by_id.as_ref(), Some(expected));
        let by_email = users::find_by_email(test.db.pool(), &expected.email)
            .await
            .unwrap();
        assert_eq!(by_email.as_ref(), Some(expected));
    }

    assert_eq!(
        users::find_by_id(test.db.pool(), &ids::new_id())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        users::find_by_email(test.db.pool(), "carol@example.test")
            .await
            .unwrap(),
        None
    );
    // Also through a transaction, as the API does.
    let mut tx = test.db.begin().await.unwrap();
    assert_eq!(
        users::find_by_id(&mut *tx, &alice.id).await.unwrap(),
        Some(alice.clone())
    );
    tx.commit().await.unwrap();
}

async fn users_duplicate_email_or_id_is_unique_violation(backend: TestBackend) {
    let test = database(backend).await;
    let first = user("dup@example.test");
    insert_users(&test, std::slice::from_ref(&first)).await;

    let mut same_email = user("dup@example.test");
    same_email.name = "Someone else".to_owned();
    let error = users::insert(test.db.pool(), &same_email)
        .await
        .expect_err("duplicate email must be refused");
    assert!(
        matches!(error, DbError::UniqueViolation { .. }),
        "expected UniqueViolation, got {error:?}"
    );

    let mut same_id = user("other@example.test");
    same_id.id = first.id.clone();
    let error = users::insert(test.db.pool(), &same_id)
        .await
        .expect_err("duplicate id must be refused");
    assert!(
        matches!(error, DbError::UniqueViolation { .. }),
        "expected UniqueViolation, got {error:?}"
    );

    assert_eq!(count(&test, "users").await, 1);
    assert_eq!(get_user(&test, &first.id).await, first);
    assert_eq!(
        users::find_by_email(test.db.pool(), "other@example.test")
            .await
            .unwrap(),
        None
    );
}

async fn users_update_profile(backend: TestBackend) {
    let test = database(backend).await;
    let original = user("before@example.test");
    let bystander = user("bystander@example.test");
    insert_users(&test, &[original.clone(), bystander.clone()]).await;

    let mut changed = original.clone();
    changed.email = "after@example.test".to_owned();
    changed.name = "New Name".to_owned();
    changed.email_verified_at = Some(T0 + 5);
    changed.updated_at = T0 + 10;
    // Fields update_profile must not write, even when the record carries other values.
    changed.password_hash = "not-written".to_owned();
    changed.role = "admin".to_owned();
    changed.status = "disabled".to_owned();
    changed.created_at = 1;
    assert!(users::update_profile(test.db.pool(), &changed)
        .await
        .unwrap());

    let stored = get_user(&test, &original.id).await;
    let expected = UserRecord {
        email: "after@example.test".to_owned(),
        name: "New Name".to_owned(),
        email_verified_at: Some(T0 + 5),
        updated_at: T0 + 10,
        ..original.clone()
    };
    assert_eq!(stored, expected);
    assert_eq!(
        users::find_by_email(test.db.pool(), "before@example.test")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        users::find_by_email(test.db.pool(), "after@example.test")
            .await
            .unwrap(),
        Some(expected.clone())
    );

    // Writing identical values still reports the row as matched (MySQL would otherwise
    // count it as unchanged).
    assert!(users::update_profile(test.db.pool(), &expected)
        .await
        .unwrap());

    // Clearing the verification time writes NULL.
    let unverified = UserRecord {
        email_verified_at: None,
        ..expected.clone()
    };
    assert!(users::update_profile(test.db.pool(), &unverified)
        .await
        .unwrap());
    assert_eq!(get_user(&test, &original.id).await, unverified);

    // Taking another user's email is a unique violation and changes nothing.
    let stealing = UserRecord {
        email: bystander.email.clone(),
        ..unverified.clone()
    };
    let error = users::update_profile(test.db.pool(), &stealing)
        .await
        .expect_err("email taken");
    assert!(
        matches!(error, DbError::UniqueViolation { .. }),
        "expected UniqueViolation, got {error:?}"
    );
    assert_eq!(get_user(&test, &original.id).await, unverified);
    assert_eq!(get_user(&test, &bystander.id).await, bystander);

    // A missing id matches nothing.
    let ghost = user("ghost@example.test");
    assert!(!users::update_profile(test.db.pool(), &ghost).await.unwrap());
    assert_eq!(count(&test, "users").await, 2);
}

async fn users_update_password_status_role(backend: TestBackend) {
    let test = database(backend).await;
    let original = user("target@example.test");
    let bystander = user("bystander@example.test");
    insert_users(&test, &[original.clone(), bystander.clone()]).await;
    let missing = ids::new_id();

    assert!(
        users::update_password(test.db.pool(), &original.id, "new-hash", T0 + 1)
            .await
            .unwrap()
    );
    let expected = UserRecord {
        password_hash: "new-hash".to_owned(),
        updated_at: T0 + 1,
        ..original.clone()
    };
    assert_eq!(get_user(&test, &original.id).await, expected);
    assert!(
        !users::update_password(test.db.pool(), &missing, "new-hash", T0 + 1)
            .await
            .unwrap()
    );

    assert!(
        users::set_status(test.db.pool(), &original.id, "disabled", T0 + 2)
            .await
            .unwrap()
    );
    let expected = UserRecord {
        status: "disabled".to_owned(),
        updated_at: T0 + 2,
        ..expected
    };
    assert_eq!(get_user(&test, &original.id).await, expected);
    // Same status again: the row still matches.
    assert!(
        users::set_status(test.db.pool(), &original.id, "disabled", T0 + 2)
            .await
            .unwrap()
    );
    assert!(
        !users::set_status(test.db.pool(), &missing, "disabled", T0 + 2)
            .await
            .unwrap()
    );

    assert!(
        users::set_role(test.db.pool(), &original.id, "admin", T0 + 3)
            .await
            .unwrap()
    );
    let expected = UserRecord {
        role: "admin".to_owned(),
        updated_at: T0 + 3,
        ..expected
    };
    assert_eq!(get_user(&test, &original.id).await, expected);
    assert!(
        users::set_role(test.db.pool(), &original.id, "admin", T0 + 3)
            .await
            .unwrap()
    );
    assert!(!users::set_role(test.db.pool(), &missing, "admin", T0 + 3)
        .await
        .unwrap());

    // A rolled-back change is not kept.
    let mut tx = test.db.begin().await.unwrap();
    assert!(users::set_role(&mut *tx, &original.id, "customer", T0 + 4)
        .await
        .unwrap());
    tx.rollback().await.unwrap();
    assert_eq!(get_user(&test, &original.id).await, expected);

    assert_eq!(get_user(&test, &bystander.id).await, bystander);
}

async fn users_delete(backend: TestBackend) {
    let test = database(backend).await;
    let doomed = user("doomed@example.test");
    let survivor = user("survivor@example.test");
    insert_users(&test, &[doomed.clone(), survivor.clone()]).await;

    assert!(users::delete(test.db.pool(), &doomed.id).await.unwrap());
    assert_eq!(
        users::find_by_id(test.db.pool(), &doomed.id).await.unwrap(),
        None
    );
    assert_eq!(
        users::find_by_email(test.db.pool(), &doomed.email)
            .await
            .unwrap(),
        None
    );
    assert!(!users::delete(test.db.pool(), &doomed.id).await.unwrap());
    assert!(!users::delete(test.db.pool(), &ids::new_id()).await.unwrap());
    assert_eq!(get_user(&test, &survivor.id).await, survivor);
    assert_eq!(count(&test, "users").await, 1);

    // The email is free again.
    let reborn = user("doomed@example.test");
    insert_users(&test, std::slice::from_ref(&reborn)).await;
    assert_eq!(get_user(&test, &reborn.id).await, reborn);
}

async fn users_list_paginates_every_user_once_in_id_order(backend: TestBackend) {
    let test = database(backend).await;
    // Emails sort opposite to ids, so ordering by anything but id shows.
    let records: Vec<UserRecord> = (0..25)
        .map(|index| user(&format!("user{:02}@example.test", 24 - index)))
        .collect();
    insert_users(&test, &records).await;
    let mut expected = ids_of(&records);
    expected.sort();
    // UUIDv7 ids of one process are ordered by creation.
    assert_eq!(expected, ids_of(&records), "ids sort in creation order");

    let limit = 10;
    let mut visited: Vec<UserRecord> = Vec::new();
    let mut after: Option<String> = None;
    let mut raw_page_sizes = Vec::new();
    loop {
        let page_filter = UserFilter {
            after: after.clone(),
            limit,
            ..UserFilter::default()
        };
        let mut page = list(&test, &page_filter).await;
        raw_page_sizes.push(page.len());
        assert!(page.len() <= limit as usize + 1, "at most limit + 1 rows");
        let has_more = page.len() > limit as usize;
        page.truncate(limit as usize);
        if let Some(previous) = &after {
            assert!(
                page.iter().all(|record| &record.id > previous),
                "a page starts after the previous page's last id"
            );
        }
        visited.extend(page.iter().cloned());
        if !has_more {
            break;
        }
        after = Some(
            page.last()
                .expect("a non-final page is non-empty")
                .id
                .clone(),
        );
        assert!(raw_page_sizes.len() < 10, "pagination does not terminate");
    }

    assert_eq!(raw_page_sizes, vec![11, 11, 5]);
    assert_eq!(ids_of(&visited), expected, "each user once, in id order");
    // Whole records come back, not just ids.
    for (got, inserted) in visited.iter().zip(&records) {
        assert_eq!(got, inserted);
    }

    // A page after the last id is empty; a limit of exactly the total says "no more".
    let past_end = UserFilter {
        after: expected.last().cloned(),
        limit,
        ..UserFilter::default()
    };
    assert!(list(&test, &past_end).await.is_empty());
    let everything = UserFilter {
        limit: 25,
        ..UserFilter::default()
    };
    assert_eq!(ids_of(&list(&test, &everything).await), expected);
}

async fn users_list_email_filter_matches_like_metacharacters_literally(backend: TestBackend) {
    let test = database(backend).await;
    let underscore = user("a_b@example.test");
    let plain = user("axb@example.test");
    let bang = user("bang!x@example.test");
    let bang_like = user("bangyx@example.test");
    let percent = user("100%off@example.test");
    let other = user("zed@other.test");
    insert_users(&test, &[underscore, plain, bang, bang_like, percent, other]).await;

    let search = |needle: &str| UserFilter {
        email_contains: Some(needle.to_owned()),
        ..filter()
    };
    let found = |records: Vec<UserRecord>| {
        let mut emails: Vec<String> = records.into_iter().map(|record| record.email).collect();
        emails.sort();
        emails
    };

    // `_` is a literal underscore, not "any one character".
    assert_eq!(
        found(list(&test, &search("a_b")).await),
        vec!["a_b@example.test"]
    );
    assert_eq!(
        found(list(&test, &search("_")).await),
        vec!["a_b@example.test"]
    );
    // `%` is a literal percent sign, not "anything".
    assert_eq!(
        found(list(&test, &search("%")).await),
        vec!["100%off@example.test"]
    );
    assert_eq!(
        found(list(&test, &search("0%o")).await),
        vec!["100%off@example.test"]
    );
    assert!(list(&test, &search("%%")).await.is_empty());
    assert!(list(&test, &search("a%b")).await.is_empty());
    // The escape character itself is literal too.
    assert_eq!(
        found(list(&test, &search("g!x")).await),
        vec!["bang!x@example.test"]
    );
    assert_eq!(
        found(list(&test, &search("!")).await),
        vec!["bang!x@example.test"]
    );
    // An ordinary substring, anywhere in the address.
    assert_eq!(
        found(list(&test, &search("example.test")).await),
        vec![
            "100%off@example.test",
            "a_b@example.test",
            "axb@example.test",
            "bang!x@example.test",
            "bangyx@example.test",
        ]
    );
    assert_eq!(
        found(list(&test, &search("@other")).await),
        vec!["zed@other.test"]
    );
    assert!(list(&test, &search("nobody")).await.is_empty());
    // Both engines compare ASCII case-insensitively here.
    assert_eq!(
        found(list(&test, &search("A_B")).await),
        vec!["a_b@example.test"]
    );
    // No filter lists everyone.
    assert_eq!(list(&test, &filter()).await.len(), 6);

    // The filter composes with pagination.
    let first_page = list(
        &test,
        &UserFilter {
            limit: 1,
            ..search("example.test")
        },
    )
    .await;
    assert_eq!(first_page.len(), 2, "limit + 1 rows");
    let rest = list(
        &test,
        &UserFilter {
            after: Some(first_page[0].id.clone()),
            ..search("example.test")
        },
    )
    .await;
    assert_eq!(rest.len(), 4);
    assert!(rest.iter().all(|record| record.id > first_page[0].id));
}

async fn users_list_role_filter(backend: TestBackend) {
    let test = database(backend).await;
    let records: Vec<UserRecord> = (0..9)
        .map(|index| {
            let mut record = user(&format!("member{index}@example.test"));
            if index % 3 == 0 {
                record.role = "admin".to_owned();
            }
            record
        })
        .collect();
    insert_users(&test, &records).await;
    let admins: Vec<String> = records
        .iter()
        .filter(|record| record.role == "admin")
        .map(|record| record.id.clone())
        .collect();
    let customers: Vec<String> = records
        .iter()
        .filter(|record| record.role == "customer")
        .map(|record| record.id.clone())
        .collect();
    assert_eq!((admins.len(), customers.len()), (3, 6));

    let by_role = |role: &str| UserFilter {
        role: Some(role.to_owned()),
        ..filter()
    };
    assert_eq!(ids_of(&list(&test, &by_role("admin")).await), admins);
    assert_eq!(ids_of(&list(&test, &by_role("customer")).await), customers);
    assert!(list(&test, &by_role("nobody")).await.is_empty());

    // Role and email filters together.
    let both = UserFilter {
        email_contains: Some("member3".to_owned()),
        ..by_role("admin")
    };
    assert_eq!(
        ids_of(&list(&test, &both).await),
        vec![records[3].id.clone()]
    );
    let neither = UserFilter {
        email_contains: Some("member3".to_owned()),
        ..by_role("customer")
    };
    assert!(list(&test, &neither).await.is_empty());

    // Role filter with keyset pagination.
    let page = list(
        &test,
        &UserFilter {
            limit: 1,
            ..by_role("admin")
        },
    )
    .await;
    assert_eq!(ids_of(&page), admins[..2].to_vec());
    let next = list(
        &test,
        &UserFilter {
            after: Some(admins[0].clone()),
            limit: 1,
            ..by_role("admin")
        },
    )
    .await;
    assert_eq!(ids_of(&next), admins[1..].to_vec());

    // A role change moves the user between listings.
    assert!(
        users::set_role(test.db.pool(), &customers[0], "admin", T0 + 1)
            .await
            .unwrap()
    );
    let mut new_admins = admins.clone();
    new_admins.push(customers[0].clone());
    new_admins.sort();
    assert_eq!(ids_of(&list(&test, &by_role("admin")).await), new_admins);
    assert_eq!(list(&test, &by_role("customer")).await.len(), 5);
}

// ---------------------------------------------------------------------------------------
// sessions

async fn refresh_token_round_trip(backend: TestBackend) {
    let test = database(backend).await;
    let user_id = ids::new_id();
    let family = ids::new_id();
    let first = refresh_token(&user_id, &family);
    let mut second = refresh_token(&user_id, &family);
    second.used_at = Some(T0 + 1);
    second.revoked_at = Some(T0 + 2);
    insert_tokens(&test, &[first.clone(), second.clone()]).await;

    assert_eq!(get_token(&test, &first.token_hash).await, first);
    assert_eq!(get_token(&test, &second.token_hash).await, second);
    assert_eq!(
        sessions::find_refresh_token(test.db.pool(), &hash_of("ffff"))
            .await
            .unwrap(),
        None
    );

    // Token hashes are unique.
    let mut clash = refresh_token(&user_id, &ids::new_id());
    clash.token_hash = first.token_hash.clone();
    let error = sessions::insert_refresh_token(test.db.pool(), &clash)
        .await
        .expect_err("duplicate token hash");
    assert!(
        matches!(error, DbError::UniqueViolation { .. }),
        "expected UniqueViolation, got {error:?}"
    );
    assert_eq!(count(&test, "refresh_tokens").await, 2);
}

async fn refresh_token_marked_used_once(backend: TestBackend) {
    let test = database(backend).await;
    let user_id = ids::new_id();
    let family = ids::new_id();
    let live = refresh_token(&user_id, &family);
    let sibling = refresh_token(&user_id, &family);
    let mut revoked = refresh_token(&user_id, &family);
    revoked.revoked_at = Some(T0);
    insert_tokens(&test, &[live.clone(), sibling.clone(), revoked.clone()]).await;

    assert!(
        sessions::mark_refresh_token_used(test.db.pool(), &live.id, T0 + 10)
            .await
            .unwrap()
    );
    assert!(
        !sessions::mark_refresh_token_used(test.db.pool(), &live.id, T0 + 20)
            .await
            .unwrap(),
        "a spent token cannot be spent again"
    );
    let stored = get_token(&test, &live.token_hash).await;
    assert_eq!(stored.used_at, Some(T0 + 10), "the first use is kept");
    assert_eq!(stored.revoked_at, None);
    assert_eq!(
        get_token(&test, &sibling.token_hash).await,
        sibling,
        "siblings untouched"
    );

    // A revoked token cannot be spent.
    assert!(
        !sessions::mark_refresh_token_used(test.db.pool(), &revoked.id, T0 + 10)
            .await
            .unwrap()
    );
    assert_eq!(get_token(&test, &revoked.token_hash).await, revoked);
    // Nor can a token that does not exist.
    assert!(
        !sessions::mark_refresh_token_used(test.db.pool(), &ids::new_id(), T0)
            .await
            .unwrap()
    );

    // Inside a transaction that rolls back, the use is undone.
    let mut tx = test.db.begin().await.unwrap();
    assert!(
        sessions::mark_refresh_token_used(&mut *tx, &sibling.id, T0 + 30)
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();
    assert_eq!(get_token(&test, &sibling.token_hash).await.used_at, None);
    assert!(
        sessions::mark_refresh_token_used(test.db.pool(), &sibling.id, T0 + 40)
            .await
            .unwrap()
    );
}

async fn revoke_family_revokes_only_that_family(backend: TestBackend) {
    let test = database(backend).await;
    let user_id = ids::new_id();
    let family_a = ids::new_id();
    let family_b = ids::new_id();
    let a1 = refresh_token(&user_id, &family_a);
    let mut a2 = refresh_token(&user_id, &family_a);
    a2.used_at = Some(T0 + 1);
    let mut a3 = refresh_token(&user_id, &family_a);
    a3.revoked_at = Some(T0 + 2);
    let b1 = refresh_token(&user_id, &family_b);
    let other_user = refresh_token(&ids::new_id(), &ids::new_id());
    insert_tokens(
        &test,
        &[
            a1.clone(),
            a2.clone(),
            a3.clone(),
            b1.clone(),
            other_user.clone(),
        ],
    )
    .await;

    let now = T0 + 100;
    assert_eq!(
        sessions::revoke_family(test.db.pool(), &family_a, now)
            .await
            .unwrap(),
        2,
        "the two live tokens of the family"
    );
    assert_eq!(get_token(&test, &a1.token_hash).await.revoked_at, Some(now));
    let stored_a2 = get_token(&test, &a2.token_hash).await;
    assert_eq!(stored_a2.revoked_at, Some(now));
    assert_eq!(stored_a2.used_at, Some(T0 + 1));
    assert_eq!(
        get_token(&test, &a3.token_hash).await.revoked_at,
        Some(T0 + 2),
        "an earlier revocation time is kept"
    );
    assert_eq!(get_token(&test, &b1.token_hash).await, b1);
    assert_eq!(get_token(&test, &other_user.token_hash).await, other_user);

    // Revoked tokens cannot be spent; revoking again changes nothing.
    assert!(
        !sessions::mark_refresh_token_used(test.db.pool(), &a1.id, now + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        sessions::revoke_family(test.db.pool(), &family_a, now + 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(get_token(&test, &a1.token_hash).await.revoked_at, Some(now));
    assert_eq!(
        sessions::revoke_family(test.db.pool(), &ids::new_id(), now)
            .await
            .unwrap(),
        0
    );
}

async fn revoke_user_sessions_spares_kept_family(backend: TestBackend) {
    let test = database(backend).await;
    let user_id = ids::new_id();
    let other_user_id = ids::new_id();
    let family_keep = ids::new_id();
    let family_b = ids::new_id();
    let family_c = ids::new_id();
    let keep1 = refresh_token(&user_id, &family_keep);
    let keep2 = refresh_token(&user_id, &family_keep);
    let b1 = refresh_token(&user_id, &family_b);
    let b2 = refresh_token(&user_id, &family_b);
    let c1 = refresh_token(&user_id, &family_c);
    let mut c_old = refresh_token(&user_id, &family_c);
    c_old.revoked_at = Some(T0 + 1);
    let stranger = refresh_token(&other_user_id, &ids::new_id());
    insert_tokens(
        &test,
        &[
            keep1.clone(),
            keep2.clone(),
            b1.clone(),
            b2.clone(),
            c1.clone(),
            c_old.clone(),
            stranger.clone(),
        ],
    )
    .await;

    let now = T0 + 100;
    assert_eq!(
        sessions::revoke_user_sessions(test.db.pool(), &user_id, Some(&family_keep), now)
            .await
            .unwrap(),
        3
    );
    for token in [&b1, &b2, &c1] {
        assert_eq!(
            get_token(&test, &token.token_hash).await.revoked_at,
            Some(now)
        );
    }
    assert_eq!(
        get_token(&test, &c_old.token_hash).await.revoked_at,
        Some(T0 + 1)
    );
    assert_eq!(get_token(&test, &keep1.token_hash).await, keep1);
    assert_eq!(get_token(&test, &keep2.token_hash).await, keep2);
    assert_eq!(get_token(&test, &stranger.token_hash).await, stranger);

    // Without `keep`, the remaining family goes too.
    assert_eq!(
        sessions::revoke_user_sessions(test.db.pool(), &user_id, None, now + 1)
            .await
            .unwrap(),
        2
    );
    for token in [&keep1, &keep2] {
        assert_eq!(
            get_token(&test, &token.token_hash).await.revoked_at,
            Some(now + 1)
        );
    }
    assert_eq!(get_token(&test, &b1.token_hash).await.revoked_at, Some(now));
    assert_eq!(get_token(&test, &stranger.token_hash).await, stranger);
    assert_eq!(
        sessions::revoke_user_sessions(test.db.pool(), &user_id, None, now + 2)
            .await
            .unwrap(),
        0
    );
}

async fn password_reset_round_trip_and_used_once(backend: TestBackend) {
    let test = database(backend).await;
    let user_id = ids::new_id();
    let reset = password_reset(&user_id);
    let other = password_reset(&user_id);
    for record in [&reset, &other] {
        one_time_tokens::insert(test.db.pool(), TokenKind::PasswordReset, record)
            .await
            .unwrap();
    }
    let find = |hash: String| {
        let pool = test.db.pool().clone();
        async move {
            one_time_tokens::find(&pool, TokenKind::PasswordReset, &hash)
                .await
                .expect("find password reset")
        }
    };

    assert_eq!(find(reset.token_hash.clone()).await, Some(reset.clone()));
    assert_eq!(find(hash_of("abc")).await, None);

    assert!(one_time_tokens::mark_used(
        test.db.pool(),
        TokenKind::PasswordReset,
        &reset.id,
        T0 + 5
    )
    .await
    .unwrap());
    assert!(
        !one_time_tokens::mark_used(test.db.pool(), TokenKind::PasswordReset, &reset.id, T0 + 6)
            .await
            .unwrap(),
        "a reset token is spent once"
    );
    assert_eq!(
        find(reset.token_hash.clone()).await,
        Some(OneTimeToken {
            used_at: Some(T0 + 5),
            ..reset.clone()
        })
    );
    assert_eq!(find(other.token_hash.clone()).await, Some(other.clone()));
    assert!(!one_time_tokens::mark_used(
        test.db.pool(),
        TokenKind::PasswordReset,
        &ids::new_id(),
        T0
    )
    .await
    .unwrap());

    // Token hashes are unique.
    let mut clash = password_reset(&user_id);
    clash.token_hash = reset.token_hash.clone();
    let error = one_time_tokens::insert(test.db.pool(), TokenKind::PasswordReset, &clash)
        .await
        .expect_err("duplicate reset hash");
    assert!(
        matches!(error, DbError::UniqueViolation { .. }),
        "expected UniqueViolation, got {error:?}"
    );
}

async fn delete_user_tokens_removes_only_that_user(backend: TestBackend) {
    let test = database(backend).await;
    let doomed = ids::new_id();
    let kept = ids::new_id();
    let doomed_tokens = [
        refresh_token(&doomed, &ids::new_id()),
        refresh_token(&doomed, &ids::new_id()),
    ];
    let kept_token = refresh_token(&kept, &ids::new_id());
    insert_tokens(&test, &doomed_tokens).await;
    insert_tokens(&test, std::slice::from_ref(&kept_token)).await;
    let doomed_reset = password_reset(&doomed);
    let kept_reset = password_reset(&kept);
    for record in [&doomed_reset, &kept_reset] {
        one_time_tokens::insert(test.db.pool(), TokenKind::PasswordReset, record)
            .await
            .unwrap();
    }

    // Rolled back: nothing is deleted.
    let mut tx = test.db.begin().await.unwrap();
    sessions::delete_user_tokens(&mut tx, &doomed)
        .await
        .expect("delete in transaction");
    assert_eq!(
        sessions::find_refresh_token(&mut *tx, &doomed_tokens[0].token_hash)
            .await
            .unwrap(),
        None,
        "deleted inside the transaction"
    );
    tx.rollback().await.unwrap();
    assert_eq!(count(&test, "refresh_tokens").await, 3);
    assert_eq!(count(&test, "password_resets").await, 2);

    // Committed.
    let mut tx = test.db.begin().await.unwrap();
    sessions::delete_user_tokens(&mut tx, &doomed)
        .await
        .expect("delete in transaction");
    tx.commit().await.unwrap();
    for token in &doomed_tokens {
        assert_eq!(
            sessions::find_refresh_token(test.db.pool(), &token.token_hash)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        one_time_tokens::find(
            test.db.pool(),
            TokenKind::PasswordReset,
            &doomed_reset.token_hash
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(get_token(&test, &kept_token.token_hash).await, kept_token);
    assert_eq!(
        one_time_tokens::find(
            test.db.pool(),
            TokenKind::PasswordReset,
            &kept_reset.token_hash
        )
        .await
        .unwrap(),
        Some(kept_reset)
    );
    assert_eq!(count(&test, "refresh_tokens").await, 1);
    assert_eq!(count(&test, "password_resets").await, 1);

    // On a plain pooled connection; deleting for a user with nothing left is fine.
    let mut connection = test.db.pool().acquire().await.unwrap();
    sessions::delete_user_tokens(&mut connection, &doomed)
        .await
        .expect("delete again");
    sessions::delete_user_tokens(&mut connection, &kept)
        .await
        .expect("delete on a connection");
    drop(connection);
    assert_eq!(count(&test, "refresh_tokens").await, 0);
    assert_eq!(count(&test, "password_resets").await, 0);
}

// ---------------------------------------------------------------------------------------
// the outbox in a user's transaction (the outbox alone: tests/outbox.rs)

fn event(topic: &str, aggregate_id: &str) -> OutboxEvent {
    OutboxEvent::new(
        topic,
        aggregate_id,
        &serde_json::json!({ "aggregate": aggregate_id }),
    )
    .expect("serialise event payload")
}

async fn outbox_rolled_back_append_leaves_nothing(backend: TestBackend) {
    let test = database(backend).await;
    let aggregate = ids::new_id();
    let first = event("user.registered", &aggregate);
    let second = event("user.email_changed", &aggregate);

    let mut tx = test.db.begin().await.unwrap();
    outbox::append(&mut *tx, &first).await.unwrap();
    outbox::append(&mut *tx, &second).await.unwrap();
    // Visible inside the transaction...
    assert_eq!(
        outbox::unpublished(&mut *tx, 10).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    tx.rollback().await.unwrap();

    // ...and gone after the rollback.
    assert!(outbox::unpublished(test.db.pool(), 10)
        .await
        .unwrap()
        .is_empty());
    assert!(
        outbox::for_aggregate(test.db.pool(), "user.registered", &aggregate)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(count(&test, "outbox_events").await, 0);

    // A transaction dropped without commit rolls back as well, and an event written in
    // the same transaction as a user vanishes with it.
    let registered = user("rolled.back@example.test");
    {
        let mut tx = test.db.begin().await.unwrap();
        users::insert(&mut *tx, &registered).await.unwrap();
        outbox::append(&mut *tx, &event("user.registered", &registered.id))
            .await
            .unwrap();
    }
    assert_eq!(count(&test, "outbox_events").await, 0);
    assert_eq!(
        users::find_by_id(test.db.pool(), &registered.id)
            .await
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------
// ids and clock (engine-independent)

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
