//! `souk.v1.EmailService`: the mail admin operations over gRPC, on the same email
//! service as REST.

use crate::wire::status::to_status;
use actix_web::web;
use souk_proto::v1 as pb;
use souk_proto::v1::email_service_server::EmailService;
use tonic::{Request, Response, Status};

use crate::grpc::{caller, given, given_limit};
use crate::state::AppState;
use souk_actors::email::service::{DeadLetterView, SendView};

pub struct EmailGrpc {
    pub state: web::Data<AppState>,
}

fn send_message(view: SendView) -> pb::EmailSend {
    pb::EmailSend {
        id: view.id,
        event_id: view.event_id,
        template: view.template,
        recipient: view.recipient,
        subject: view.subject,
        status: view.status,
        attempts: view.attempts,
        last_error: view.last_error.unwrap_or_default(),
        created_at: view.created_at,
        updated_at: view.updated_at,
    }
}

fn dead_letter_message(view: DeadLetterView) -> pb::DeadLetter {
    pb::DeadLetter {
        id: view.id,
        event_id: view.event_id,
        topic: view.topic,
        aggregate_id: view.aggregate_id,
        attempts: view.attempts,
        last_error: view.last_error,
        created_at: view.created_at,
        replayed_at: view.replayed_at.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl EmailService for EmailGrpc {
    async fn list_sends(
        &self,
        request: Request<pb::ListSendsRequest>,
    ) -> Result<Response<pb::ListSendsResponse>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.get_ref();
        let page = self
            .state
            .email
            .list_sends(given(&body.cursor), given_limit(body.limit))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListSendsResponse {
            items: page.items.into_iter().map(send_message).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let body = request.get_ref();
        let page = self
            .state
            .email
            .dead_letters(given(&body.cursor), given_limit(body.limit))
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            items: page.items.into_iter().map(dead_letter_message).collect(),
            next_cursor: page.next_cursor.unwrap_or_default(),
        }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Result<Response<pb::DeadLetter>, Status> {
        caller::admin(&self.state, request.metadata())
            .await
            .map_err(to_status)?;
        let letter = self
            .state
            .email
            .replay(&request.get_ref().id)
            .await
            .map_err(to_status)?;
        Ok(Response::new(dead_letter_message(letter)))
    }
}
