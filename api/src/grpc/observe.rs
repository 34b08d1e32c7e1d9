//! Wraps every gRPC call as `http::observe` wraps REST requests: keeps a sane incoming
//! `x-request-id` metadata value or makes one, echoes it in the response metadata, runs
//! the handler inside a span carrying it, logs one line per call, and counts and times
//! the call by service, method and status code. Service and method become labels only
//! when they name a method Souk serves; any other path is `unknown`, so no label takes
//! a client's raw path.
//!
//! The code is read from the response headers: a handler's error is a trailers-only
//! response carrying `grpc-status` there; a response without it is `OK` (for a server
//! stream, whatever its trailers say later, and its time is the time to its headers).

use std::collections::HashSet;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use prost::Message;
use tonic::codegen::http::{HeaderValue, Request, Response};
use tonic::codegen::Service;
use tonic::Code;
use tracing::Instrument;

use crate::http::observe::{latency_ms, sane_request_id};

pub const REQUEST_ID_METADATA: &str = "x-request-id";

/// The label of every path that is not a served method.
const UNKNOWN: &str = "unknown";

/// The layer tonic's server is built with.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> tower_layer::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (service, method) = method_labels(request.uri().path());
        let request_id = request
            .headers()
            .get(REQUEST_ID_METADATA)
            .and_then(|value| value.to_str().ok())
            .and_then(sane_request_id)
            .unwrap_or_else(souk_db::ids::new_id);
        let span = tracing::info_span!("grpc_request", request_id = %request_id, service, method);
        Box::pin(async move {
            let started = Instant::now();
            let result = inner.call(request).instrument(span.clone()).await;
            let elapsed = started.elapsed();
            let latency_ms = latency_ms(elapsed);
            let mut response = match result {
                Ok(response) => response,
                Err(error) => {
                    crate::metrics::record_grpc_call(service, method, "INTERNAL", elapsed);
                    span.in_scope(|| tracing::error!(code = "INTERNAL", latency_ms, "call failed"));
                    return Err(error);
                }
            };
            let code = response_code(&response);
            let name = code_name(code);
            crate::metrics::record_grpc_call(service, method, name, elapsed);
            span.in_scope(|| {
                if matches!(code, Code::Internal | Code::Unknown | Code::DataLoss) {
                    tracing::error!(code = name, latency_ms, "call failed");
                } else {
                    tracing::info!(code = name, latency_ms, "call served");
                }
            });
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response.headers_mut().insert(REQUEST_ID_METADATA, value);
            }
            Ok(response)
        })
    }
}

/// `/package.Service/Method` → (`package.Service`, `Method`) when the node's contract
/// (Souk's services, health, reflection) has that method; (`unknown`, `unknown`)
/// otherwise.
fn method_labels(path: &str) -> (&'static str, &'static str) {
    let served = served_methods();
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .and_then(|(service, method)| served.get(&(service.to_owned(), method.to_owned())))
        .map(|(service, method)| (service.as_str(), method.as_str()))
        .unwrap_or((UNKNOWN, UNKNOWN))
}

/// Every (service, method) of the descriptor sets the server registers.
fn served_methods() -> &'static HashSet<(String, String)> {
    static SERVED: OnceLock<HashSet<(String, String)>> = OnceLock::new();
    SERVED.get_or_init(|| {
        let sets = [
            souk_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut served = HashSet::new();
        for encoded in sets {
            let set = prost_types::FileDescriptorSet::decode(encoded)
                .expect("the embedded descriptor sets are valid");
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    let service_name = if package.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    for method in &service.method {
                        served.insert((service_name.clone(), method.name().to_owned()));
                    }
                }
            }
        }
        served
    })
}

fn response_code<B>(response: &Response<B>) -> Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
        .unwrap_or(Code::Ok)
}

/// The canonical name of a status code, as gRPC's documentation spells it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_served_methods_become_labels() {
        assert_eq!(
            method_labels("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(
            method_labels("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").1,
            "ServerReflectionInfo"
        );
        for path in [
            "/souk.v1.Made/Up",
            "/grpc.health.v1.Health/Nope",
            "/",
            "",
            "/x",
        ] {
            assert_eq!(method_labels(path), (UNKNOWN, UNKNOWN), "{path}");
        }
        assert!(served_methods()
            .iter()
            .any(|(service, _)| service.starts_with("souk.v1.")));
    }
}
