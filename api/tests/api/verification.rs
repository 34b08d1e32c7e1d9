//! Asking for another verification mail, over REST and gRPC: the link it carries
//! verifies the address, a verified address is refused, and asking is rate limited.

use reqwest::StatusCode;
use serde_json::{json, Value};
use souk_db::testing::TestBackend;
use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_client::AuthServiceClient;
use tonic::{Code, Request};

use crate::email::{email_settings, token_in, SmtpSink};
use crate::grpc_edges::channel;
use crate::helpers::*;

const RESEND: &str = "/api/v1/auth/verify-email/resend";
const LINK: &str = "http://shop.test/account/verify-email?token=";
const SUBJECT: &str = "Reminder: please verify your email address";

/// The token of the verification mail asked for, among a user's mails.
fn resent_token(mails: &[serde_json::Value]) -> String {
    let resent = mails
        .iter()
        .find(|mail| mail["subject"] == SUBJECT)
        .expect("the verification mail asked for");
    token_in(resent["text"].as_str().unwrap(), LINK)
}

#[actix_web::test]
async fn a_new_verification_link_is_mailed_on_request_and_rate_limited() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| {
        email_settings(config, &sink);
        config.auth.verification_resend_max = 2;
    })
    .await;
    let user = app.customer("resend").await;
    sink.wait_for(&user.email, 1).await;

    assert_problem(
        app.post_json(RESEND, &json!({})).await,
        401,
        "missing_token",
    )
    .await;
    assert_problem(
        app.post_json_as(RESEND, "not-a-token", &json!({})).await,
        401,
        "invalid_token",
    )
    .await;

    let asked = app
        .post_json_as(RESEND, &user.access_token, &json!({}))
        .await;
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    let mails = sink.wait_for(&user.email, 2).await;
    let token = resent_token(&mails);

    // The second request of the window is accepted, the third is refused.
    let again = app
        .post_json_as(RESEND, &user.access_token, &json!({}))
        .await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let limited = app
        .post_json_as(RESEND, &user.access_token, &json!({}))
        .await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_problem(limited, 429, "rate_limited").await;

    // The mailed link verifies the address; after that, asking is refused.
    let verified = app
        .get(&format!("/api/v1/auth/verify-email?token={token}"))
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let me: Value = app
        .get_as("/api/v1/users/me", &user.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email_verified"], true, "{me}");
    assert_problem(
        app.post_json_as(RESEND, &user.access_token, &json!({}))
            .await,
        409,
        "already_verified",
    )
    .await;
}

#[actix_web::test]
async fn a_verification_mail_is_asked_for_over_grpc() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| email_settings(config, &sink)).await;
    let user = app.customer("grpc-resend").await;
    sink.wait_for(&user.email, 1).await;
    let mut auth = AuthServiceClient::new(channel(&app).await);
    let ask = |token: Option<&str>| {
        let mut request = Request::new(pb::ResendVerificationEmailRequest {});
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        request
    };
    let status = auth.resend_verification_email(ask(None)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    auth.resend_verification_email(ask(Some(&user.access_token)))
        .await
        .unwrap();
    let mails = sink.wait_for(&user.email, 2).await;
    let token = resent_token(&mails);
    auth.verify_email(pb::VerifyEmailRequest { token })
        .await
        .unwrap();
    let status = auth
        .resend_verification_email(ask(Some(&user.access_token)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}

/// A verification link outlives no account: once the account is deleted, its welcome
/// mail's link verifies nothing.
#[actix_web::test]
async fn a_deleted_accounts_verification_link_verifies_nothing() {
    let sink = SmtpSink::start();
    let app = spawn_app_with(TestBackend::Sqlite, |config| email_settings(config, &sink)).await;
    let user = app.customer("deleted-link").await;
    let mails = sink.wait_for(&user.email, 1).await;
    let token = token_in(mails[0]["text"].as_str().unwrap(), LINK);
    let deleted = app
        .client
        .delete(app.url("/api/v1/users/me"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get(&format!("/api/v1/auth/verify-email?token={token}"))
            .await,
        400,
        "invalid_verification_token",
    )
    .await;
}
