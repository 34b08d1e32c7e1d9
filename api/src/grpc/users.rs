//! `souk.v1.UserService`: the REST `/users` resources over gRPC, on the same service.

use actix_web::web;
use souk_proto::v1 as pb;
use souk_proto::v1::user_service_server::UserService;
use tonic::{Request, Response, Status};

use crate::grpc::caller;
use crate::routes::views::UserView;
use crate::services::users::{ProfileChanges, Registration};
use crate::state::AppState;

pub struct UserGrpc {
    pub state: web::Data<AppState>,
}

pub fn user_message(view: UserView) -> pb::User {
    pb::User {
        id: view.id,
        email: view.email,
        name: view.name,
        role: view.role.as_str().to_owned(),
        status: view.status.as_str().to_owned(),
        created_at: view.created_at,
        updated_at: view.updated_at,
        email_verified: view.email_verified,
    }
}

#[tonic::async_trait]
impl UserService for UserGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let body = request.into_inner();
        let registration = Registration::parse(&body.email, &body.password, &body.name)?;
        let user = self.state.users.register(registration).await?;
        Ok(Response::new(user_message(UserView::from(user))))
    }

    async fn get_me(
        &self,
        request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user = caller::user(&self.state, request.metadata()).await?;
        let record = self.state.users.get(&user.id).await?;
        Ok(Response::new(user_message(UserView::from(record))))
    }

    async fn update_me(
        &self,
        request: Request<pb::UpdateMeRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user = caller::user(&self.state, request.metadata()).await?;
        let body = request.into_inner();
        let changes = ProfileChanges::parse(body.email.as_deref(), body.name.as_deref())?;
        let record = self.state.users.update_profile(&user.id, changes).await?;
        Ok(Response::new(user_message(UserView::from(record))))
    }

    async fn delete_me(
        &self,
        request: Request<pb::DeleteMeRequest>,
    ) -> Result<Response<pb::DeleteMeResponse>, Status> {
        let user = caller::user(&self.state, request.metadata()).await?;
        self.state.users.delete(&user.id).await?;
        Ok(Response::new(pb::DeleteMeResponse {}))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        caller::admin(&self.state, request.metadata()).await?;
        let record = self.state.users.get(&request.get_ref().id).await?;
        Ok(Response::new(user_message(UserView::from(record))))
    }
}
