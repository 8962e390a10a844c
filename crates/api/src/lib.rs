//! Tributary's REST API (SPEC §API): axum routes with open-streamer's paths and JSON shapes,
//! the OpenAPI document generated from the same registration as the routes (module `openapi`),
//! and Swagger UI.
//!
//! The API sees only [`EngineHandle`] and `domain` types (ARCHITECTURE.md §3 invariant 4).
//! Bodies are read with a size cap, parsed as JSON (syntax errors → 400 with line and column),
//! then decoded strictly by `domain::validate` (unknown field or bad value → 422 naming the
//! JSON path). `GET/PUT /config/yaml` (module `config_yaml`) carries the whole system as one
//! YAML document.
#![forbid(unsafe_code)]
#![forbid(clippy::print_stdout, clippy::print_stderr)]

mod auth;
mod config_yaml;
mod debug;
mod error;
mod events;
mod hooks;
mod media;
mod openapi;
mod recordings;
mod sessions;
mod streams;
mod system;
mod templates;
mod vod;
mod watermarks;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tributary_engine::EngineHandle;

use utoipa_axum::routes;

use crate::error::ApiError;
use crate::openapi::Api;

/// How much longer than the admin timeout the HTTP layer waits before it answers `BUSY`
/// itself: the engine's deadline starts a little later than the request (the body is read
/// first), and its answer names the stream.
const BACKSTOP_GRACE: Duration = Duration::from_secs(1);

/// JSON bodies above this are refused with 413 (SPEC §Security "Body caps").
pub const JSON_BODY_CAP: usize = 1 << 20;

/// YAML bodies (`PUT /config/yaml`) above this are refused with 413 (SPEC §Security "Body
/// caps").
pub const YAML_BODY_CAP: usize = 4 << 20;

/// The whole API. The server puts each request's TCP peer in its extensions as
/// `ConnectInfo<SocketAddr>` (admin authentication needs it; without it a request is not
/// loopback).
pub fn router(engine: EngineHandle) -> Router {
    let (api, public) = routes(&engine);
    let request_id = HeaderName::from_static("x-request-id");
    // The API's routes get a request id and an access-log line. Media (the fallback, added
    // after the layers so they do not wrap it) is the hot path a viewer hits every second or
    // two: it gets neither, which spares each playlist or segment request a UUID from the
    // kernel's random pool and three copies.
    api.merge(public)
        .finish()
        .layer(middleware::from_fn(access_log))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .fallback(media::serve)
        .with_state(engine)
}

/// Every API route, each registered once with its document ([`openapi`]): the admin and
/// recording routes behind their gates, and the public ones (`/metrics` among them, behind a
/// gate that asks for admin authentication unless `security.public_metrics` lets a Prometheus
/// on another host scrape it without a token).
fn routes(engine: &EngineHandle) -> (Api, Api) {
    let timeout = Duration::from_secs(engine.config().server.admin_timeout_sec.max(1));
    let streams = Api::new()
        .routes(routes!(streams::list))
        .routes(routes!(
            streams::get_one,
            streams::put,
            streams::post,
            streams::patch,
            streams::delete
        ))
        .routes(routes!(streams::restart))
        .routes(routes!(streams::switch))
        .routes(routes!(streams::sessions))
        .routes(routes!(streams::recordings));
    // A watermark upload reads up to 16 MiB (SPEC §Security "Body caps"), past axum's default.
    let watermark_upload =
        |(schemas, paths, method_router): utoipa_axum::router::UtoipaMethodRouter<EngineHandle>| {
            let limit = DefaultBodyLimit::max(tributary_engine::WATERMARK_REQUEST_CAP);
            (schemas, paths, method_router.layer(limit))
        };
    let admin = Api::new()
        .merge(openapi::coded(engine, "/streams", streams, |_| false))
        .routes(routes!(system::config, system::post_config))
        .routes(routes!(system::config_defaults))
        .routes(routes!(config_yaml::get_yaml, config_yaml::put_yaml))
        .routes(routes!(events::list))
        .routes(routes!(sessions::list))
        .routes(routes!(sessions::get_one, sessions::kick))
        .routes(routes!(templates::list))
        .routes(routes!(
            templates::get_one,
            templates::put,
            templates::delete
        ))
        .routes(routes!(hooks::list, hooks::create))
        .routes(routes!(hooks::get_one, hooks::put, hooks::delete))
        .routes(routes!(hooks::test))
        .routes(routes!(hooks::deliveries))
        .routes(routes!(system::probe_ffmpeg))
        .routes(watermark_upload(routes!(
            watermarks::list,
            watermarks::upload
        )))
        .routes(routes!(watermarks::get_one, watermarks::delete))
        .routes(routes!(watermarks::raw))
        .routes(routes!(debug::fault));
    // `/metrics` has its own gate, which reads `security.public_metrics` at each request, so
    // the config API turns public scraping on and off without a restart.
    let public = Api::new()
        .routes(routes!(system::metrics))
        .layer(middleware::from_fn_with_state(
            auth::AdminGate::new(engine.clone()),
            auth::metrics_gate,
        ))
        .layer(middleware::from_fn_with_state(timeout, admin_deadline));
    let admin = admin
        .layer(middleware::from_fn_with_state(
            auth::AdminGate::new(engine.clone()),
            auth::require_admin,
        ))
        .layer(middleware::from_fn_with_state(timeout, admin_deadline));
    let recordings = Api::new()
        .routes(routes!(recordings::recording))
        .routes(routes!(recordings::info))
        .routes(routes!(recordings::playlist))
        .routes(routes!(recordings::timeshift))
        .routes(routes!(recordings::segment))
        .routes(routes!(recordings::clip));
    let recordings =
        openapi::coded(engine, "/recordings", recordings, recordings::is_segment).layer(
            middleware::from_fn_with_state(auth::AdminGate::new(engine.clone()), recordings::gate),
        );
    // VOD: admin routes, and raw serving (a media route), behind their own gate and without
    // the admin deadline: an upload of up to 10 GiB is streamed to disk for as long as it
    // takes.
    let upload =
        |(schemas, paths, method_router): utoipa_axum::router::UtoipaMethodRouter<EngineHandle>| {
            let limit = DefaultBodyLimit::max(vod::UPLOAD_REQUEST_CAP);
            (schemas, paths, method_router.layer(limit))
        };
    let vod = Api::new()
        .routes(routes!(vod::list, vod::create))
        .routes(routes!(vod::get_one, vod::put, vod::delete))
        .routes(upload(routes!(vod::files, vod::upload_top)))
        .tail_routes(upload(routes!(vod::upload, vod::delete_file)))
        .tail_routes(routes!(vod::raw))
        .layer(middleware::from_fn_with_state(
            auth::AdminGate::new(engine.clone()),
            vod::gate,
        ));
    let public = public
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz));
    (admin.merge(recordings).merge(vod), public)
}

/// The OpenAPI document of [`router`]'s routes, as served at `/swagger/doc.json`.
pub fn document(engine: &EngineHandle) -> String {
    let (api, public) = routes(engine);
    api.merge(public)
        .document()
        .to_pretty_json()
        .unwrap_or_default()
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
