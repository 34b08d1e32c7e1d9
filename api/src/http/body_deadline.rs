//! A deadline on reading a request's body. A client that sends its headers and then
//! trickles the body (or stops sending) would hold its connection and the handler
//! waiting on it for as long as it likes; actix bounds only the time to the headers.
//! From the start of the request, reading the body may take `http.body_read_timeout_secs`;
//! past that the read fails, the request is answered `408 request_timeout` and the
//! connection is closed.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;

use crate::error::{ApiError, ErrorCode};

/// How long reading a body may take, registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

impl Default for BodyReadTimeout {
    fn default() -> Self {
        Self(Duration::from_secs(10))
    }
}

pub async fn body_deadline(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let timeout = request
        .app_data::<web::Data<BodyReadTimeout>>()
        .map(|timeout| timeout.0)
        .unwrap_or_default();
    let expired = Rc::new(Cell::new(false));
    match request.take_payload() {
        Payload::None => {}
        payload => request.set_payload(Payload::Stream {
            payload: Box::pin(Deadline {
                payload,
                timer: Box::pin(tokio::time::sleep(timeout)),
                expired: expired.clone(),
                finished: false,
            }),
        }),
    }
    let response = next.call(request).await?.map_into_boxed_body();
    if !expired.get() {
        return Ok(response);
    }
    Ok(timed_out(response, timeout))
}

/// Whatever the handler made of the failed read becomes the 408, and the connection
/// closes: the rest of the body may still be on its way.
fn timed_out(response: ServiceResponse<BoxBody>, timeout: Duration) -> ServiceResponse<BoxBody> {
    let mut problem = ApiError::new(
        ErrorCode::RequestTimeout,
        format!(
            "the body was not received within {} s; send it at once",
            timeout.as_secs()
        ),
    )
    .error_response();
    problem
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    let (request, _) = response.into_parts();
    ServiceResponse::new(request, problem)
}

/// The request's payload, failing once the timer has fired while a chunk is awaited.
struct Deadline {
    payload: Payload,
    timer: Pin<Box<tokio::time::Sleep>>,
    expired: Rc<Cell<bool>>,
    finished: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.payload).poll_next(context) {
            this.finished = !matches!(item, Some(Ok(_)));
            return Poll::Ready(item);
        }
        if this.timer.as_mut().poll(context).is_pending() {
            return Poll::Pending;
        }
        this.expired.set(true);
        this.finished = true;
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the body read timed out",
        )))))
    }
}
