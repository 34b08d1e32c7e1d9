//! `souk.v1.AuthService`: sessions over gRPC, on the same auth service as REST.

use crate::wire::status::to_status;
use actix_web::web;
use souk_proto::v1 as pb;
use souk_proto::v1::auth_service_server::AuthService;
use tonic::{Request, Response, Status};

use crate::error::Error;
use crate::error::FieldErrors;
use crate::grpc::caller;
use crate::state::AppState;
use souk_actors::identity::Password;
use souk_actors::identity::TokenPair;

pub struct AuthGrpc {
    pub state: web::Data<AppState>,
}

fn token_pair(pair: TokenPair) -> pb::TokenPair {
    pb::TokenPair {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        expires_in: pair.expires_in,
        token_type: "Bearer".to_owned(),
    }
}

fn new_password(raw: &str) -> Result<Password, Error> {
    let mut errors = FieldErrors::default();
    let parsed = errors.check("new_password", Password::parse(raw));
    errors.finish()?;
    parsed.ok_or_else(|| Error::internal("validated fields missing"))
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let ip = super::peer(&request);
        let body = request.into_inner();
        let pair = self
            .state
            .auth
            .login(&body.email, &body.password, &ip)
            .await
            .map_err(to_status)?;
        Ok(Response::new(token_pair(pair)))
    }

    async fn refresh(
        &self,
        request: Request<pb::RefreshRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        let pair = self
            .state
            .auth
            .refresh(&request.get_ref().refresh_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(token_pair(pair)))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        self.state
            .auth
            .logout(&request.get_ref().refresh_token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let password = new_password(&body.new_password).map_err(to_status)?;
        self.state
            .auth
            .change_password(
                &user.id,
                &user.session_id,
                &body.current_password,
                &password,
            )
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        let ip = super::peer(&request);
        self.state
            .auth
            .request_password_reset(&request.get_ref().email, &ip)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn confirm_password_reset(
        &self,
        request: Request<pb::ConfirmPasswordResetRequest>,
    ) -> Result<Response<pb::ConfirmPasswordResetResponse>, Status> {
        let body = request.into_inner();
        let password = new_password(&body.new_password).map_err(to_status)?;
        self.state
            .auth
            .confirm_password_reset(&body.token, &password)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ConfirmPasswordResetResponse {}))
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Result<Response<pb::VerifyEmailResponse>, Status> {
        let user_id = self
            .state
            .email
            .verify_email(&request.get_ref().token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::VerifyEmailResponse { user_id }))
    }

    async fn resend_verification_email(
        &self,
        request: Request<pb::ResendVerificationEmailRequest>,
    ) -> Result<Response<pb::ResendVerificationEmailResponse>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        self.state
            .auth
            .resend_verification(&user.id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ResendVerificationEmailResponse {}))
    }

    async fn confirm_email_change(
        &self,
        request: Request<pb::ConfirmEmailChangeRequest>,
    ) -> Result<Response<pb::ConfirmEmailChangeResponse>, Status> {
        let user_id = self
            .state
            .email
            .confirm_email_change(&request.get_ref().token)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ConfirmEmailChangeResponse { user_id }))
    }
}
