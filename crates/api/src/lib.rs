//! Tributary's REST API (SPEC §API): axum routes with open-streamer's paths and JSON shapes,
//! the OpenAPI document generated from the same types, and Swagger UI.
//!
//! The API sees only [`EngineHandle`] and `domain` types (ARCHITECTURE.md §3 invariant 4).
//! Bodies are read with a size cap, parsed as JSON (syntax errors → 400 with line and column),
//! then decoded strictly by `domain::validate` (unknown field or bad value → 422 naming the
//! JSON path).
#![forbid(unsafe_code)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod auth;
mod error;
mod events;
mod hooks;
mod media;
pub mod openapi;
mod recordings;
mod sessions;
mod streams;
mod system;
mod templates;
mod vod;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tributary_engine::EngineHandle;

use crate::error::ApiError;

/// How much longer than the admin timeout the HTTP layer waits before it answers `BUSY`
/// itself: the engine's deadline starts a little later than the request (the body is read
/// first), and its answer names the stream.
const BACKSTOP_GRACE: Duration = Duration::from_secs(1);

/// JSON bodies above this are refused with 413 (SPEC §Security "Body caps").
pub const JSON_BODY_CAP: usize = 1 << 20;

/// The whole API. The server puts each request's TCP peer in its extensions as
/// `ConnectInfo<SocketAddr>` (admin authentication needs it; without it a request is not
/// loopback).
pub fn router(engine: EngineHandle) -> Router {
    let timeout = Duration::from_secs(engine.config().server.admin_timeout_sec.max(1));
    let admin = Router::new()
        .route("/streams", get(streams::list))
        .route(
            "/streams/{*rest}",
            get(streams::get_one)
                .put(streams::put)
                .post(streams::post)
                .patch(streams::patch)
                .delete(streams::delete),
        )
        .route("/config", get(system::config))
        .route("/events", get(events::list))
        .route("/sessions", get(sessions::list))
        .route(
            "/sessions/{id}",
            get(sessions::get_one).delete(sessions::kick),
        )
        .route("/templates", get(templates::list))
        .route(
            "/templates/{code}",
            get(templates::get_one)
                .put(templates::put)
                .post(templates::put)
                .delete(templates::delete),
        )
        .route("/hooks", get(hooks::list).post(hooks::create))
        .route(
            "/hooks/{hid}",
            get(hooks::get_one).put(hooks::put).delete(hooks::delete),
        )
        .route("/hooks/{hid}/test", post(hooks::test))
        .route("/hooks/{hid}/deliveries", get(hooks::deliveries))
        .route("/config/transcoder/probe", post(system::probe_ffmpeg));
    // `GET /metrics` is an admin route unless `security.public_metrics` lets a Prometheus on
    // another host scrape it without a token.
    let public_metrics = engine.config().security.public_metrics == Some(true);
    let metrics = Router::new().route("/metrics", get(system::metrics));
    let (admin, public) = if public_metrics {
        (admin, metrics)
    } else {
        (admin.merge(metrics), Router::new())
    };
    let admin = admin
        .layer(middleware::from_fn_with_state(
            auth::AdminGate::new(engine.clone()),
            auth::require_admin,
        ))
        .layer(middleware::from_fn_with_state(timeout, admin_deadline));
    let recordings = Router::new()
        .route("/recordings/{*rest}", get(recordings::serve))
        .layer(middleware::from_fn_with_state(
            auth::AdminGate::new(engine.clone()),
            recordings::gate,
        ));
    // VOD: admin routes but raw serving (a media route), without the admin deadline: an
    // upload of up to 10 GiB is streamed to disk for as long as it takes.
    let vod = Router::new()
        .route("/vod", get(vod::list).post(vod::create))
        .route(
            "/vod/{name}",
            get(vod::get_one).put(vod::put).delete(vod::delete),
        )
        .route(
            "/vod/{name}/files",
            get(vod::files)
                .post(vod::upload_top)
                .layer(DefaultBodyLimit::max(vod::UPLOAD_REQUEST_CAP)),
        )
        .route(
            "/vod/{name}/files/{*path}",
            post(vod::upload)
                .delete(vod::delete_file)
                .layer(DefaultBodyLimit::max(vod::UPLOAD_REQUEST_CAP)),
        )
        .route("/vod/{name}/raw/{*path}", get(vod::raw))
        .layer(middleware::from_fn_with_state(
            auth::AdminGate::new(engine.clone()),
            vod::gate,
        ));
    let public = public
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .merge(openapi::routes());
    let request_id = HeaderName::from_static("x-request-id");
    // The API's routes get a request id and an access-log line. Media (the fallback, added
    // after the layers so they do not wrap it) is the hot path a viewer hits every second or
    // two: it gets neither, which spares each playlist or segment request a UUID from the
    // kernel's random pool and three copies.
    Router::new()
        .merge(admin)
        .merge(recordings)
        .merge(vod)
        .merge(public)
        .layer(middleware::from_fn(access_log))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .fallback(media::serve)
        .with_state(engine)
}

/// The HTTP layer's backstop for the admin request timeout: a request that has not answered
/// [`BACKSTOP_GRACE`] after the engine's own deadline (which answers `BUSY` naming the stream)
/// gets the same JSON `BUSY` error, never an empty 503 (SPEC §API status table).
async fn admin_deadline(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let deadline = timeout + BACKSTOP_GRACE;
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "BUSY",
            format!(
                "the server is busy: the request did not complete within {} s",
                timeout.as_secs()
            ),
        )
        .into_response(),
    }
}

/// One INFO line per API request (SPEC §API conventions; live media is not wrapped).
async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        request_id = id,
        "http"
    );
    response
}

/// Locks a mutex, taking the data of a poisoned one: the API's critical sections leave their
/// data consistent before anything that could panic.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}
