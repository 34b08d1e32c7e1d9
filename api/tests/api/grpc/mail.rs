//! The email service over gRPC: its admin methods (sends and dead letters listed,
//! replayed) refuse customers, missing tokens, bad cursors and limits, unknown ids;
//! and a forged verification token is refused.

use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_client::AuthServiceClient;
use tonic::Code;

use super::souk_code;
use crate::grpc_edges::channel;
use crate::helpers::*;

#[actix_web::test]
async fn mail_admin_and_verification_over_grpc() {
    use souk_proto::v1::email_service_client::EmailServiceClient;

    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.customer("grpc-mail").await;
    let channel = channel(&app).await;
    let mut email = EmailServiceClient::new(channel.clone());

    let sends = email
        .list_sends(authorized(
            pb::ListSendsRequest {
                cursor: String::new(),
                limit: 10,
            },
            &admin.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(sends.items.len() <= 10);
    let status = email
        .list_sends(authorized(
            pb::ListSendsRequest::default(),
            &shopper.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = email
        .list_dead_letters(pb::ListDeadLettersRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = email
        .list_dead_letters(authorized(
            pb::ListDeadLettersRequest {
                cursor: "not-a-cursor!".into(),
                limit: 0,
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::InvalidArgument, "invalid_cursor")
    );
    let status = email
        .list_sends(authorized(
            pb::ListSendsRequest {
                cursor: String::new(),
                limit: 1000,
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = email
        .replay_dead_letter(authorized(
            pb::ReplayDeadLetterRequest {
                id: "01890000-0000-7000-8000-000000000000".into(),
            },
            &admin.access_token,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::NotFound, "not_found")
    );

    let status = AuthServiceClient::new(channel)
        .verify_email(pb::VerifyEmailRequest {
            token: "forged-token-that-was-never-issued-by-souk0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), souk_code(&status).as_str()),
        (Code::InvalidArgument, "invalid_verification_token")
    );
}
