//! Route registration and the OpenAPI 3 document (`/swagger/doc.json`), with Swagger UI at
//! `/swagger/` (assets vendored into the binary; no network needed).
//!
//! Why one mechanism: the document is produced by registering the routes, so a route cannot
//! be served without being documented, nor documented without being served. Each handler
//! carries its `#[utoipa::path]` (path, parameters, request body, every status with the
//! shared error body) and is registered with [`utoipa_axum::routes!`] through [`Api::routes`],
//! which adds the handler to the axum router at exactly the documented path and method and
//! the operation to the document.
//!
//! Two kinds of route cannot be plain axum routes, and both are still registered here with
//! their documents:
//!
//! - A stream code (and so a recording id) may hold `/` (`live/events/a`), and an axum path
//!   parameter stops at `/`. [`coded`] serves a family of documented routes under one prefix
//!   (`/streams/{code}`, `/streams/{code}/restart`, ...) from one service nested at the
//!   prefix: it finds which documented route the path ends like, escapes the `/` inside the
//!   code as `%2F`, and hands the request to a router holding the documented routes, whose
//!   `Path` extractor decodes the code again. Swagger UI sends such a code escaped already,
//!   which passes as is.
//! - Live media (`/{code}/index.m3u8`, segments, ...) is the router's fallback, outside the
//!   API's layers (the hot path): its operations are documented on the functions the fallback
//!   dispatches to ([`crate::media::MediaDoc`]) and registered with it by [`Api::finish`].
//!
//! Adding a route: annotate the handler with `#[utoipa::path(...)]` (errors with
//! `body = crate::openapi::ErrorBody`; admin routes add `crate::openapi::AdminRefusal`, body
//! readers `crate::openapi::BadBody`), then register it in `crate::routes` with
//! `.routes(routes!(handler))` — one `routes!` per path, listing that path's handlers (a
//! second registration of a path and method panics at start-up). Under `/streams/{code}` or
//! `/recordings/{rid}` add it to that family's `Api` instead. The tests in `openapi_tests.rs`
//! then call it through the real router.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::uri::PathAndQuery;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tributary_engine::EngineHandle;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;

/// The document's fixed parts: its info and the schemas every error response shares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary",
        description = "High-availability live media server. Paths and JSON shapes follow open-streamer's. A stream code may contain '/': send it escaped (`live%2Fa`) or as is."
    ),
    components(schemas(ErrorBody, ErrorDetail, FieldDetail))
)]
struct ApiDoc;

/// `{"error": {...}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// One error.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
struct ErrorDetail {
    /// `UPPER_SNAKE` code (SPEC §API status table).
    code: String,
    /// Human-readable message.
    message: String,
    /// Failing fields (validation only).
    fields: Vec<FieldDetail>,
}

/// The admin gate's refusals, which every admin route may answer (SPEC §Security).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code, reason = "schema only")]
pub(crate) enum AdminRefusal {
    /// `UNAUTHORIZED`: no valid bearer token from a non-loopback peer
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a
    /// token) a `Host` that is not loopback or in `server.allowed_hosts`
    #[response(status = 403)]
    CrossSite(ErrorBody),
}

/// A body that is not JSON, on every route that reads one.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 400,
    description = "`EMPTY_BODY` / `INVALID_BODY`: not JSON (the syntax error's line and column named)"
)]
#[allow(dead_code, reason = "schema only")]
pub(crate) struct BadBody(ErrorBody);

/// `GET /sessions` (bare, as open-streamer's).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
pub(crate) struct SessionList {
    /// Active sessions (newest first), then closed ones (newest first), at most `limit`.
    sessions: Vec<tributary_engine::SessionView>,
    /// How many matched the filters.
    total_count: u64,
    /// Totals since start.
    stats: tributary_engine::SessionStats,
}

/// One failing field.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
struct FieldDetail {
    /// JSON path (`inputs[1].url`).
    path: String,
    /// Why it fails.
    message: String,
}

/// A set of documented routes: the axum router and the OpenAPI paths it serves, built
/// together.
pub(crate) struct Api(OpenApiRouter<EngineHandle>);

impl Api {
    pub(crate) fn new() -> Self {
        Self(OpenApiRouter::new())
    }

    /// Registers the handlers of one path (`routes!(a, b)`, each with its `#[utoipa::path]`
    /// for that path and its own method).
    ///
    /// # Panics
    /// When the handlers document more than one path: `utoipa_axum` would serve every
    /// handler on every one of them.
    pub(crate) fn routes(self, routes: UtoipaMethodRouter<EngineHandle>) -> Self {
        let paths: Vec<&String> = routes.1.paths.keys().collect();
        assert!(
            paths.len() == 1,
            "one routes!() per path, got {paths:?}: register each path separately"
        );
        Self(self.0.routes(routes))
    }

    /// Registers the handlers of one path whose last parameter takes the rest of the path,
    /// `/` included: documented as `/vod/{name}/raw/{path}`, served at axum's
    /// `/vod/{name}/raw/{*path}` (a plain parameter stops at `/`).
    ///
    /// # Panics
    /// When the handlers document more than one path, or a path that does not end in a
    /// parameter.
    pub(crate) fn tail_routes(
        self,
        (schemas, paths, method_router): UtoipaMethodRouter<EngineHandle>,
    ) -> Self {
        let documented: Vec<String> = paths.paths.keys().cloned().collect();
        let [path] = documented.as_slice() else {
            panic!("one tail_routes() per path, got {documented:?}");
        };
        let (head, last) = path
            .rsplit_once("/{")
            .filter(|(_, last)| last.ends_with('}') && !last.contains('/'))
            .unwrap_or_else(|| panic!("{path} does not end in a parameter"));
        let served = format!("{head}/{{*{last}");
        let mut document = utoipa::openapi::OpenApi::default();
        document.paths = paths;
        let mut components = utoipa::openapi::Components::new();
        components.schemas.extend(schemas);
        document.components = Some(components);
        Self(
            self.0
                .merge(OpenApiRouter::with_openapi(document).route(&served, method_router)),
        )
    }

    /// Adds another set's routes and documents (axum panics on a route registered twice).
    pub(crate) fn merge(self, other: Self) -> Self {
        Self(self.0.merge(other.0))
    }

    /// Wraps every route registered so far (as [`axum::Router::layer`]).
    pub(crate) fn layer<L>(self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as tower::Service<Request>>::Error: Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<Request>>::Future: Send + 'static,
    {
        Self(self.0.layer(layer))
    }

    /// The document of the routes registered so far, with the media operations the fallback
    /// serves.
    pub(crate) fn document(&self) -> utoipa::openapi::OpenApi {
        let mut document = ApiDoc::openapi();
        document.merge(self.0.get_openapi().clone());
        document.merge(crate::media::MediaDoc::openapi());
        for (path, item) in &mut document.paths.paths {
            let operations = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    operation.operation_id = Some(operation_id(method, path));
                }
            }
        }
        document
    }

    /// The router: these routes and `/swagger/` serving their document (with the media
    /// operations). The API's layers go on after this; media, the fallback, after them.
    pub(crate) fn finish(self) -> Router<EngineHandle> {
        let document = self.document();
        let (router, _) = self.0.split_for_parts();
        router.merge(SwaggerUi::new("/swagger/").url("/swagger/doc.json", document))
    }
}

/// An operation's id from its method and path (`get_streams_code_sessions`): unique as they
/// are. utoipa would name it after the handler, and several handlers share a name (`list`,
/// `get_one`), which makes Swagger UI execute the wrong operation.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for word in path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        id.push('_');
        id.push_str(word);
    }
    id
}

/// One segment of a route after its code: a literal, or a parameter (`{segment}`).
#[derive(Debug)]
enum Part {
    Literal(String),
    Param,
}

/// Serves `routes`, documented under `prefix` as `{prefix}` and `{prefix}/{code}[/more]` with
/// a code that may hold `/`, from one nested service at `prefix` (see the module docs).
/// `leaf` says whether a path's last segment may fill a trailing parameter (a recording's
/// `{segment}`); literal endings are tried first, the longest first, and a path that ends like
/// no route is all code (`{prefix}/{code}`).
///
/// The routes are nested rather than served from a `{prefix}/{*rest}` route because axum adds
/// a route's parameters to those of the router it is nested in: the inner `Path` extractors
/// would see `rest` too.
///
/// # Panics
/// When a documented path is neither `prefix` nor under `{prefix}/{param}`.
pub(crate) fn coded(
    engine: &EngineHandle,
    prefix: &'static str,
    routes: Api,
    leaf: fn(&str) -> bool,
) -> Api {
    let (router, document) = routes.0.split_for_parts();
    let mut endings: Vec<Vec<Part>> = document
        .paths
        .paths
        .keys()
        .filter(|path| *path != prefix)
        .map(|path| {
            let rest = path
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix("/{"))
                .and_then(|rest| rest.split_once('}'))
                .unwrap_or_else(|| panic!("{path} is not under {prefix}/{{code}}"))
                .1;
            rest.split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.starts_with('{') {
                        Part::Param
                    } else {
                        Part::Literal(s.to_owned())
                    }
                })
                .collect()
        })
        .collect();
    let literals = |e: &Vec<Part>| e.iter().filter(|p| matches!(p, Part::Literal(_))).count();
    endings.sort_by_key(|e| std::cmp::Reverse((literals(e), e.len())));
    let endings = Arc::new(endings);
    let router = router
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(engine.clone());
    let service = tower::ServiceBuilder::new()
        .map_request(move |request| escape_code(request, prefix, &endings, leaf))
        .service(router);
    Api(OpenApiRouter::with_openapi(document).nest_service(prefix, service))
}

/// Gives back the prefix the nesting stripped, escaping the `/` inside the code:
/// `/a/b/restart` under `/streams` becomes `/streams/a%2Fb/restart` for [`coded`].
fn escape_code(
    mut request: Request,
    prefix: &str,
    endings: &[Vec<Part>],
    leaf: fn(&str) -> bool,
) -> Request {
    let rest = request.uri().path().trim_start_matches('/');
    let mut path = String::with_capacity(prefix.len() + 1 + rest.len() + 16);
    path.push_str(prefix);
    if !rest.is_empty() {
        let segments: Vec<&str> = rest.split('/').collect();
        let matches = |ending: &Vec<Part>| {
            ending.len() < segments.len()
                && ending
                    .iter()
                    .zip(&segments[segments.len() - ending.len()..])
                    .all(|(part, segment)| match part {
                        Part::Literal(literal) => literal == segment,
                        Part::Param => leaf(segment),
                    })
        };
        let tail = endings.iter().find(|e| matches(e)).map_or(0, Vec::len);
        let code_len = segments.len() - tail;
        path.push('/');
        path.push_str(&segments[..code_len].join("%2F"));
        for segment in &segments[code_len..] {
            path.push('/');
            path.push_str(segment);
        }
    }
    if let Some(query) = request.uri().query() {
        path.push('?');
        path.push_str(query);
    }
    let mut parts = request.uri().clone().into_parts();
    if let Ok(path_and_query) = PathAndQuery::try_from(path) {
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// A coded route asked with a method it does not serve (`GET /streams/{code}/restart`).
async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("{} is not served on this route", request.method()),
    )
    .into_response()
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
