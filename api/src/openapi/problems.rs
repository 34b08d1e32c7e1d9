//! The error responses operations share, documented in one place rather than on every
//! handler. What the extractors and middleware refuse follows from an operation's
//! shape — a JSON body, a bearer token, query or path parameters, an admin path — so
//! the responses are derived from that shape; a handler documents only the refusals
//! of its own (409 `sku_taken`, 422 `validation_failed`, …). Every error response,
//! derived or written by hand, is documented as `application/problem+json`, the
//! content type the server sends.

use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::Modify;

use crate::error::PROBLEM_CONTENT_TYPE;

const MALFORMED_BODY: &str = "malformed_json (the body is not JSON) or invalid_body (a field is missing, unknown or of the wrong type)";
const REQUEST_TIMEOUT: &str =
    "request_timeout: the body did not arrive within http.body_read_timeout_secs";
const PAYLOAD_TOO_LARGE: &str = "payload_too_large: the body exceeds the size limit";
const UNSUPPORTED_MEDIA_TYPE: &str =
    "unsupported_media_type: the body is not sent as application/json";
const INVALID_QUERY: &str =
    "invalid_query or invalid_cursor: a query parameter is malformed, out of range or unknown";
const UNAUTHENTICATED: &str =
    "missing_token, invalid_token (also once its session has ended) or token_expired";
const DISABLED: &str = "account_disabled";
const ADMINS_ONLY: &str = "forbidden (the caller is not an admin) or account_disabled";
const NOT_FOUND: &str = "not_found";
const UNAVAILABLE: &str = "service_unavailable: a dependency is down, or the entity's node is changing; retry after Retry-After";

/// What an operation looks like from the outside.
struct Shape {
    json_body: bool,
    bearer: bool,
    admin: bool,
    query: bool,
    path_parameters: bool,
    /// Under `/api/`: served with the database, the entities and the services behind.
    api: bool,
}

impl Shape {
    fn of(path: &str, operation: &Operation) -> Self {
        let parameters = operation.parameters.as_deref().unwrap_or_default();
        let has = |place: ParameterIn| parameters.iter().any(|p| p.parameter_in == place);
        Self {
            json_body: operation
                .request_body
                .as_ref()
                .is_some_and(|body| body.content.contains_key("application/json")),
            bearer: operation.security.as_ref().is_some_and(|requirements| {
                requirements
                    .iter()
                    .any(|requirement| *requirement != SecurityRequirement::default())
            }),
            admin: path.starts_with("/api/v1/admin/"),
            query: has(ParameterIn::Query),
            path_parameters: has(ParameterIn::Path),
            api: path.starts_with("/api/"),
        }
    }

    /// The refusals the shared extractors and middleware give an operation this shape.
    fn common_errors(&self) -> Vec<(u16, &'static str)> {
        let mut errors = Vec::new();
        if self.json_body {
            errors.extend([
                (400, MALFORMED_BODY),
                (408, REQUEST_TIMEOUT),
                (413, PAYLOAD_TOO_LARGE),
                (415, UNSUPPORTED_MEDIA_TYPE),
            ]);
        }
        if self.query {
            errors.push((400, INVALID_QUERY));
        }
        if self.bearer {
            errors.push((401, UNAUTHENTICATED));
            errors.push((403, if self.admin { ADMINS_ONLY } else { DISABLED }));
        }
        if self.path_parameters {
            errors.push((404, NOT_FOUND));
        }
        if self.api {
            errors.push((503, UNAVAILABLE));
        }
        errors
    }
}

/// Adds the shared error responses to every operation and serves every error as
/// problem+json.
pub struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in operations(item) {
                let shape = Shape::of(path, operation);
                let responses = &mut operation.responses.responses;
                for (status, description) in shape.common_errors() {
                    match responses.get_mut(&status.to_string()) {
                        Some(RefOr::T(existing)) => add_cause(status, existing, description),
                        Some(RefOr::Ref(_)) => {}
                        None => {
                            responses.insert(status.to_string(), problem(description).into());
                        }
                    }
                }
                for (status, response) in responses.iter_mut() {
                    let Ok(status) = status.parse::<u16>() else {
                        continue;
                    };
                    if let (true, RefOr::T(response)) = (status >= 400, response) {
                        serve_as_problem(status, response);
                    }
                }
            }
        }
    }
}

/// A handler's own 400 or 403 has more causes than it names: the shared refusals are
/// added to its description.
fn add_cause(status: u16, response: &mut Response, cause: &str) {
    if !matches!(status, 400 | 403) || response.description.contains(cause) {
        return;
    }
    response.description = if response.description.is_empty() {
        cause.to_owned()
    } else {
        format!("{}; or {cause}", response.description)
    };
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

fn problem_schema() -> RefOr<utoipa::openapi::schema::Schema> {
    RefOr::Ref(Ref::from_schema_name("Problem"))
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_CONTENT_TYPE,
            ContentBuilder::new().schema(Some(problem_schema())).build(),
        )
        .build()
}

/// What a status means when a handler does not say more.
fn default_description(status: u16) -> &'static str {
    match status {
        409 => "a conflict with the current state; `code` says which",
        422 => "validation_failed: `errors` names every invalid field",
        503 => "service_unavailable: a dependency is down; retry after Retry-After",
        _ => "`code` says why",
    }
}

/// An error response with a `Problem` body (or none) is problem+json; one with another
/// body (the readiness report of a 503) keeps its content type.
fn serve_as_problem(status: u16, response: &mut Response) {
    let is_problem = |content: &utoipa::openapi::Content| matches!(&content.schema, Some(RefOr::Ref(reference)) if reference.ref_location == "#/components/schemas/Problem");
    if response.description.is_empty() {
        response.description = default_description(status).to_owned();
    }
    if response.content.is_empty() {
        *response = problem(&response.description);
        return;
    }
    let Some(content) = response.content.get("application/json") else {
        return;
    };
    if !is_problem(content) {
        return;
    }
    if let Some(content) = response.content.shift_remove("application/json") {
        response
            .content
            .insert(PROBLEM_CONTENT_TYPE.to_owned(), content);
    }
}
