//! The cart repository on both engines: a cart is written only at the version read
//! (the first write of a key inserts, a second "first" write loses), a stale version
//! writes nothing, an expired guest cart reads as gone and is swept.

use souk_db::carts::{self, CartRow};
use souk_db::clock::now_micros;
use souk_db::testing::{fresh, TestBackend};

souk_db::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    carts_are_written_only_at_the_version_read,
    expired_carts_read_as_gone_and_are_swept,
);

fn row(key: &str, version: i64, content: &str, expires_at: Option<i64>) -> CartRow {
    CartRow {
        cart_key: key.to_owned(),
        version,
        content: content.as_bytes().to_vec(),
        expires_at,
        updated_at: now_micros(),
    }
}

async fn carts_are_written_only_at_the_version_read(backend: TestBackend) {
    let test = fresh(backend).await;
    let pool = test.db.pool();
    let now = now_micros();
    assert_eq!(carts::find(pool, "user:a", now).await.unwrap(), None);
    assert!(
        carts::save(pool, &row("user:a", 1, "{\"n\":1}", None), 0, now)
            .await
            .unwrap()
    );
    // A second first write of the key loses: it did not see the first.
    assert!(
        !carts::save(pool, &row("user:a", 1, "{\"n\":2}", None), 0, now)
            .await
            .unwrap()
    );
    // A write at a stale version loses; at the version read it wins.
    assert!(
        carts::save(pool, &row("user:a", 2, "{\"n\":3}", None), 1, now)
            .await
            .unwrap()
    );
    assert!(
        !carts::save(pool, &row("user:a", 2, "{\"n\":4}", None), 1, now)
            .await
            .unwrap()
    );
    let found = carts::find(pool, "user:a", now).await.unwrap().unwrap();
    assert_eq!((found.version, found.content), (2, b"{\"n\":3}".to_vec()));
    // Big documents fit (a full cart with long names).
    let big = "x".repeat(60_000);
    assert!(carts::save(pool, &row("user:a", 3, &big, None), 2, now)
        .await
        .unwrap());
    let found = carts::find(pool, "user:a", now).await.unwrap().unwrap();
    assert_eq!(found.content.len(), 60_000);
    // Concurrent writers at one version: exactly one wins.
    let writers: Vec<_> = (0..8)
        .map(|n| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mine = row("user:a", 4, &format!("{{\"w\":{n}}}"), None);
                carts::save(&pool, &mine, 3, now).await.unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for writer in writers {
        wins += usize::from(writer.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert!(carts::delete(pool, "user:a", None).await.unwrap());
    assert_eq!(carts::find(pool, "user:a", now).await.unwrap(), None);
}

async fn expired_carts_read_as_gone_and_are_swept(backend: TestBackend) {
    let test = fresh(backend).await;
    let pool = test.db.pool();
    let now = now_micros();
    assert!(
        carts::save(pool, &row("guest:old", 1, "{}", Some(now - 1)), 0, now - 10)
            .await
            .unwrap()
    );
    assert!(carts::save(
        pool,
        &row("guest:new", 1, "{}", Some(now + 60_000_000)),
        0,
        now
    )
    .await
    .unwrap());
    assert_eq!(carts::find(pool, "guest:old", now).await.unwrap(), None);
    // An expired cart takes no write at its old version.
    assert!(
        !carts::save(pool, &row("guest:old", 2, "{}", Some(now + 1)), 1, now)
            .await
            .unwrap()
    );
    assert!(carts::find(pool, "guest:new", now).await.unwrap().is_some());
    assert_eq!(carts::delete_expired(pool, now).await.unwrap(), 1);
    assert!(carts::find(pool, "guest:new", now).await.unwrap().is_some());
    // The key of an expired cart may start again.
    assert!(carts::save(
        pool,
        &row("guest:old", 1, "{}", Some(now + 1_000_000)),
        0,
        now
    )
    .await
    .unwrap());
}
