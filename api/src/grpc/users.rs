//! `souk.v1.UserService`: the REST `/users` resources over gRPC, on the same service;
//! the address book's methods are in `grpc::addresses`.

use crate::wire::status::to_status;
use actix_web::web;
use souk_proto::v1 as pb;
use souk_proto::v1::user_service_server::UserService;
use tonic::{Request, Response, Status};

use crate::grpc::{addresses, caller};
use crate::state::AppState;
use souk_actors::identity::users::{ProfileChanges, Registration};
use souk_actors::identity::views::UserView;

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
        let peer = super::peer(&request);
        let body = request.into_inner();
        let registration =
            Registration::parse(&body.email, &body.password, &body.name).map_err(to_status)?;
        self.state
            .auth
            .admit_registration(&peer)
            .await
            .map_err(to_status)?;
        let user = self
            .state
            .users
            .register(registration)
            .await
            .map_err(to_status)?;
        Ok(Response::new(user_message(
            UserView::try_from(user).map_err(to_status)?,
        )))
    }

    async fn get_me(
        &self,
        request: Request<pb::GetMeRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let record = self.state.users.get(&user.id).await.map_err(to_status)?;
        Ok(Response::new(user_message(
            UserView::try_from(record).map_err(to_status)?,
        )))
    }

    async fn update_me(
        &self,
        request: Request<pb::UpdateMeRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.into_inner();
        let changes = ProfileChanges::parse(
            body.email.as_deref(),
            body.name.as_deref(),
            body.current_password.as_deref(),
        )
        .map_err(to_status)?;
        let record = self
            .state
            .users
            .update_profile(&user.id, changes)
            .await
            .map_err(to_status)?;
        Ok(Response::new(user_message(
            UserView::try_from(record).map_err(to_status)?,
        )))
    }

    async fn delete_me(
        &self,
        request: Request<pb::DeleteMeRequest>,
    ) -> Result<Response<pb::DeleteMeResponse>, Status> {
        let user = caller::user(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        self.state.users.delete(&user.id).await.map_err(to_status)?;
        Ok(Response::new(pb::DeleteMeResponse {}))
    }

    async fn list_addresses(
        &self,
        request: Request<pb::ListAddressesRequest>,
    ) -> Result<Response<pb::ListAddressesResponse>, Status> {
        addresses::list(&self.state, request).await
    }

    async fn create_address(
        &self,
        request: Request<pb::CreateAddressRequest>,
    ) -> Result<Response<pb::Address>, Status> {
        addresses::create(&self.state, request).await
    }

    async fn get_address(
        &self,
        request: Request<pb::GetAddressRequest>,
    ) -> Result<Response<pb::Address>, Status> {
        addresses::get(&self.state, request).await
    }

    async fn update_address(
        &self,
        request: Request<pb::UpdateAddressRequest>,
    ) -> Result<Response<pb::Address>, Status> {
        addresses::update(&self.state, request).await
    }

    async fn delete_address(
        &self,
        request: Request<pb::DeleteAddressRequest>,
    ) -> Result<Response<pb::DeleteAddressResponse>, Status> {
        addresses::delete(&self.state, request).await
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let record = self
            .state
            .users
            .get(&request.get_ref().id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(user_message(
            UserView::try_from(record).map_err(to_status)?,
        )))
    }
}
