//! Login rate limits, in process and in real Redis.

use reqwest::StatusCode;
use souk_db::testing::TestBackend;

use crate::helpers::*;

async fn assert_limited(response: reqwest::Response) {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_problem(response, 429, "rate_limited").await;
}

#[actix_web::test]
async fn failures_per_account_are_limited_in_process() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.auth.login_max_failures_per_account = 3
    })
    .await;
    let user = app.customer("victim").await;
    for _ in 0..3 {
        assert_problem(
            app.login(&user.email, "guess guess guess").await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    // Now even the right password waits: the account is under attack.
    assert_limited(app.login(&user.email, PASSWORD).await).await;
    // Another account from the same address is not affected.
    let other = app.customer("bystander").await;
    assert_eq!(
        app.login(&other.email, PASSWORD).await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn attempts_per_address_are_limited() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.auth.login_max_attempts_per_ip = 4
    })
    .await;
    for _ in 0..4 {
        assert_problem(
            app.login(&unique_email("spray"), PASSWORD).await,
            401,
            "invalid_credentials",
        )
        .await;
    }
    assert_limited(app.login(&unique_email("spray"), PASSWORD).await).await;
}

/// Behind a trusted proxy the address is the right-most `X-Forwarded-For` entry, the one
/// the proxy appended: a client rotating `Forwarded: for=` or the entries it puts in
/// front of the proxy's does not get a fresh bucket.
#[actix_web::test]
async fn spoofed_forwarding_headers_share_the_proxys_address() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.auth.login_max_attempts_per_ip = 4;
        config.http.trust_forwarded_for = true;
    })
    .await;
    let login = |forwarded: String, forwarded_for: String| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("forwarded", forwarded)
            .header("x-forwarded-for", forwarded_for)
            .json(&serde_json::json!({"email": unique_email("rotate"), "password": PASSWORD}))
            .send()
    };
    for round in 0..4 {
        let response = login(
            format!("for=10.0.0.{round}"),
            format!("10.1.0.{round}, 203.0.113.7"),
        )
        .await
        .unwrap();
        assert_problem(response, 401, "invalid_credentials").await;
    }
    let limited = login("for=10.0.0.99".into(), "10.1.0.99, 203.0.113.7".into())
        .await
        .unwrap();
    assert_limited(limited).await;
    // Another client behind the proxy, and the proxy's own address, count apart.
    let neighbour = login("for=10.0.0.1".into(), "10.1.0.1, 203.0.113.8".into())
        .await
        .unwrap();
    assert_problem(neighbour, 401, "invalid_credentials").await;
    assert_problem(
        app.login(&unique_email("direct"), PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
}

/// Two nodes sharing a Redis count together: the limit holds across the cluster.
#[actix_web::test]
async fn redis_counts_across_nodes() {
    let prefix = own_redis_prefix();
    let configure = |config: &mut souk_api::Config| {
        config.redis.url = Some(redis_url());
        config.redis.key_prefix = prefix.clone();
        config.auth.login_max_failures_per_account = 3;
    };
    let first = spawn_app_with(TestBackend::MySql, configure).await;
    let second_node = spawn_app_with(TestBackend::MySql, configure).await;
    let email = unique_email("shared");
    // The account only needs to exist on the node it eventually logs in to.
    assert_eq!(
        second_node.register(&email, PASSWORD).await.status(),
        StatusCode::CREATED
    );
    // Right passwords are not counted: as many sign-ins as the limit leave it whole.
    for _ in 0..3 {
        assert_eq!(
            second_node.login(&email, PASSWORD).await.status(),
            StatusCode::OK
        );
    }
    for _ in 0..2 {
        assert_eq!(
            first.login(&email, "guess guess guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        second_node
            .login(&email, "guess guess guess")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_limited(second_node.login(&email, PASSWORD).await).await;

    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        keys.iter().any(|key| key.contains("login:account")),
        "{keys:?}"
    );
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// Redis down: login still works and is still limited, per node.
#[actix_web::test]
async fn redis_down_falls_back_to_local_counters() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.redis.url = Some(format!("redis://127.0.0.1:{}", dead_port()));
        config.auth.login_max_failures_per_account = 2;
    })
    .await;
    let user = app.customer("fallback").await;
    assert_eq!(
        app.login(&user.email, PASSWORD).await.status(),
        StatusCode::OK
    );
    for _ in 0..2 {
        assert_eq!(
            app.login(&user.email, "guess guess guess").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_limited(app.login(&user.email, PASSWORD).await).await;
}

/// Sign-ups count per client address, over REST and gRPC together: past the limit the
/// next is refused before its password is hashed, with when to retry.
#[actix_web::test]
async fn sign_ups_per_address_are_limited_over_rest_and_grpc() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.auth.register_max_per_ip = 3
    })
    .await;
    for _ in 0..2 {
        let response = app.register(&unique_email("flood"), PASSWORD).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let mut users =
        souk_proto::v1::user_service_client::UserServiceClient::connect(app.grpc_address.clone())
            .await
            .unwrap();
    let register = |email: String| souk_proto::v1::RegisterRequest {
        email,
        password: PASSWORD.to_owned(),
        name: "Flood".to_owned(),
    };
    users
        .register(register(unique_email("flood")))
        .await
        .expect("the third sign-up is within the limit");
    let refused = users
        .register(register(unique_email("flood")))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    let email = unique_email("flood");
    assert_limited(app.register(&email, PASSWORD).await).await;
    // Nothing was stored for the refused sign-ups.
    assert_eq!(
        app.login(&email, PASSWORD).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// Guesses sent at once are counted before their passwords are checked, so no more of
/// them are checked than the limit allows.
#[actix_web::test]
async fn guesses_sent_at_once_stay_within_the_account_limit() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.auth.login_max_failures_per_account = 3;
        // Slow enough hashing that the guesses overlap.
        config.auth.bcrypt_cost = 10;
    })
    .await;
    let user = app.customer("at-once").await;
    let guesses = (0..20).map(|_| app.login(&user.email, "guess guess guess"));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(guesses)
        .await
        .iter()
        .map(|response| response.status())
        .collect();
    let checked = statuses
        .iter()
        .filter(|status| **status == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|status| **status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (3, 17), "{statuses:?}");
}

/// The current password asked by a password or email change counts with sign-ins: a
/// stolen access token does not make an unlimited guesser.
#[actix_web::test]
async fn current_password_checks_count_with_sign_ins() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.auth.login_max_failures_per_account = 3
    })
    .await;
    let user = app.customer("token-thief").await;
    let wrong_current = serde_json::json!({
        "current_password": "guess guess guess",
        "new_password": "a new password",
    });
    let change_password =
        || app.post_json_as("/api/v1/auth/password", &user.access_token, &wrong_current);
    let change_email = || {
        let request = app
            .client
            .patch(app.url("/api/v1/users/me"))
            .bearer_auth(&user.access_token)
            .json(&serde_json::json!({"email": unique_email("elsewhere"), "current_password": "guess guess guess"}));
        async move { request.send().await.unwrap() }
    };
    assert_problem(change_password().await, 403, "wrong_password").await;
    assert_problem(change_email().await, 403, "wrong_password").await;
    assert_problem(
        app.login(&user.email, "guess guess guess").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_limited(change_password().await).await;
    assert_limited(change_email().await).await;
    assert_limited(app.login(&user.email, PASSWORD).await).await;
}

/// Guest carts count per client address: past the limit the next is refused before
/// anything is stored, with when to retry.
#[actix_web::test]
async fn guest_carts_per_address_are_limited() {
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        config.cart.guest_max_per_ip = 2
    })
    .await;
    let create = || async {
        app.client
            .post(app.url("/api/v1/carts/guest"))
            .send()
            .await
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(create().await.status(), StatusCode::CREATED);
    }
    let carts = || async {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM carts")
            .fetch_one(app.database.db.pool())
            .await
            .unwrap();
        count
    };
    assert_eq!(carts().await, 2);
    assert_limited(create().await).await;
    assert_eq!(carts().await, 2, "nothing stored for the refused cart");
}
