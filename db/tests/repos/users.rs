//! The users repository on both engines: records round-trip, a duplicate email or id is
//! a unique violation, profile, password, status and role updates, deletes, and the
//! list: every user once in id order across pages, the email filter matching LIKE
//! metacharacters literally, and the role filter.

use souk_db::ids;
use souk_db::testing::{TestBackend, TestDatabase};
use souk_db::users::{self, UserFilter, UserRecord};
use souk_db::DbError;

use super::{count, database, user, T0};

souk_db::on_both_backends!(
    #[tokio::test]
    users_round_trip,
    users_duplicate_email_or_id_is_unique_violation,
    users_update_profile,
    users_update_password_status_role,
    users_delete,
    users_list_paginates_every_user_once_in_id_order,
    users_list_email_filter_matches_like_metacharacters_literally,
    users_list_role_filter,
);

async fn insert_users(test: &TestDatabase, records: &[UserRecord]) {
    for record in records {
        users::insert(test.db.pool(), record)
            .await
            .expect("insert user");
    }
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

    // A rename writes the name alone; a move the address and its verification alone.
    assert!(
        users::rename(test.db.pool(), &original.id, "New Name", T0 + 10)
            .await
            .unwrap()
    );
    assert!(users::move_email(
        test.db.pool(),
        &original.id,
        "after@example.test",
        Some(T0 + 5),
        T0 + 11
    )
    .await
    .unwrap());
    let stored = get_user(&test, &original.id).await;
    let expected = UserRecord {
        email: "after@example.test".to_owned(),
        name: "New Name".to_owned(),
        email_verified_at: Some(T0 + 5),
        updated_at: T0 + 11,
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
    assert!(
        users::rename(test.db.pool(), &original.id, "New Name", T0 + 11)
            .await
            .unwrap()
    );
    assert!(users::move_email(
        test.db.pool(),
        &original.id,
        "after@example.test",
        Some(T0 + 5),
        T0 + 11
    )
    .await
    .unwrap());

    // Clearing the verification time writes NULL.
    assert!(users::move_email(
        test.db.pool(),
        &original.id,
        "after@example.test",
        None,
        T0 + 11
    )
    .await
    .unwrap());
    let unverified = UserRecord {
        email_verified_at: None,
        ..expected.clone()
    };
    assert_eq!(get_user(&test, &original.id).await, unverified);

    // Taking another user's email is a unique violation and changes nothing.
    let error = users::move_email(
        test.db.pool(),
        &original.id,
        &bystander.email,
        None,
        T0 + 12,
    )
    .await
    .expect_err("email taken");
    assert!(
        matches!(error, DbError::UniqueViolation { .. }),
        "expected UniqueViolation, got {error:?}"
    );
    assert_eq!(get_user(&test, &original.id).await, unverified);
    assert_eq!(get_user(&test, &bystander.id).await, bystander);

    // A missing id matches nothing.
    assert!(!users::rename(test.db.pool(), "ghost", "Ghost", T0)
        .await
        .unwrap());
    assert!(
        !users::move_email(test.db.pool(), "ghost", "ghost@example.test", None, T0)
            .await
            .unwrap()
    );
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
