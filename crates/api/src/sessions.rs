//! Play sessions (SPEC §Sessions, §API): `GET /sessions`, `GET /streams/{code}/sessions`,
//! `GET /sessions/{id}` and the kick, `DELETE /sessions/{id}`. Bodies are bare (no `data`
//! envelope), as open-streamer's were.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tributary_domain::StreamCode;
use tributary_engine::{EngineHandle, SessionProto};

use crate::error::ApiError;
use crate::events::{number, parsed};

/// `GET /sessions[?stream&proto&status&limit]`: `{sessions, total_count, stats}`.
#[utoipa::path(get, path = "/sessions", tag = "sessions",
    params(("stream" = Option<String>, Query, description = "only this stream's sessions"),
           ("proto" = Option<String>, Query, description = "hls | dash | rtmp | rtsp | srt | mpegts"),
           ("status" = Option<String>, Query, description = "active | closed (default both; closed sessions are kept 10 min, the last 1000)"),
           ("limit" = Option<u32>, Query, description = "1–1000 (default 100)")),
    responses((status = 200, description = "Bare `{sessions, total_count, stats{active, opened_total, closed_total, idle_closed_total, kicked_total}}`. HLS/DASH viewers are one session per fingerprint (stream, IP, user agent, `?token=`); RTMP, RTSP, SRT and HTTP-TS plays one per connection, never reaped while connected.", body = crate::openapi::SessionList),
              (status = 400, description = "`INVALID_QUERY` naming the parameter", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn list(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let stream = parsed(&query, "stream", "a stream code", |text| {
        StreamCode::parse(text).ok()
    })?;
    page(&engine, stream, &query)
}

/// `GET /streams/{code}/sessions[?proto&status&limit]`: as `/sessions`, for one stream.
pub(crate) fn of_stream(
    engine: &EngineHandle,
    code: StreamCode,
    query: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    page(engine, Some(code), query)
}

/// `GET /sessions/{id}`: the bare session, active or closed in the last 10 minutes.
#[utoipa::path(get, path = "/sessions/{id}", tag = "sessions",
    params(("id" = String, Path)),
    responses((status = 200, description = "the bare session, active or closed in the last 10 minutes", body = tributary_engine::SessionView),
              (status = 404, body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn get_one(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = engine
        .session(&id)
        .ok_or_else(|| ApiError::not_found(format!("session {id:?} not found")))?;
    Ok(Json(json!(session)))
}

/// `DELETE /sessions/{id}`: closes it as `kicked` (a connection is disconnected, an HTTP
/// fingerprint refused for `kick_ban_sec`); 204, or 404 if unknown or already closed.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions",
    params(("id" = String, Path)),
    responses((status = 204, description = "kicked: closed as `kicked`; a connection (RTMP, RTSP, SRT, HTTP-TS) is disconnected at once, an HLS/DASH fingerprint gets 403 on its requests for `sessions.kick_ban_sec` (60 s)"),
              (status = 404, description = "unknown or already closed", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn kick(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if engine.kick_session(&id) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!(
            "no active session {id:?} (unknown or already closed)"
        )))
    }
}

fn page(
    engine: &EngineHandle,
    stream: Option<StreamCode>,
    query: &HashMap<String, String>,
) -> Result<Json<Value>, ApiError> {
    let proto = parsed(
        query,
        "proto",
        "hls, dash, rtmp, rtsp, srt or mpegts",
        SessionProto::parse,
    )?;
    let active = parsed(query, "status", "active or closed", |text| match text {
        "active" => Some(true),
        "closed" => Some(false),
        _ => None,
    })?;
    let limit = number(query, "limit", DEFAULT_LIMIT, MAX_LIMIT)?.max(1);
    let (sessions, total, stats) = engine.sessions(stream, proto, active, limit as usize);
    Ok(Json(json!({
        "sessions": sessions,
        "total_count": total,
        "stats": stats,
    })))
}

/// Sessions per answer by default (SPEC §Defaults).
const DEFAULT_LIMIT: u64 = 100;
/// Sessions per answer at most.
const MAX_LIMIT: u64 = 1000;
