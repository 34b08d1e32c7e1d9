//! Refresh tokens and password resets on both engines: tokens round-trip and are marked
//! used once, revoking a family or a user's sessions spares the others (and the kept
//! family), a password reset round-trips and is used once, and deleting a user's tokens
//! removes only theirs.

use souk_db::ids;
use souk_db::one_time_tokens::{self, OneTimeToken, TokenKind};
use souk_db::sessions::{self, RefreshTokenRecord};
use souk_db::testing::{TestBackend, TestDatabase};
use souk_db::DbError;

use super::{count, database, T0};

souk_db::on_both_backends!(
    #[tokio::test]
    refresh_token_round_trip,
    refresh_token_marked_used_once,
    revoke_family_revokes_only_that_family,
    revoke_user_sessions_spares_kept_family,
    password_reset_round_trip_and_used_once,
    delete_user_tokens_removes_only_that_user,
);

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
