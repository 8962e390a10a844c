//! `GET /events?since=<seq>` (SPEC §Events): follow the event bus by long-polling, without a
//! webhook receiver. Each answer carries `next_since` to pass back; an answer with no events
//! waited `timeout_sec` for one first.

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use tributary_engine::EngineHandle;

use crate::error::ApiError;

/// `GET /events`: `since` (default 0: every event kept), `limit` (1–1000, default 100) and
/// `timeout_sec` (0–60, default 25: how long to wait when nothing is newer than `since`).
/// `{data: [envelope], total, next_since, missed, reset}`.
#[utoipa::path(get, path = "/events", tag = "system",
    params(("since" = Option<u64>, Query, description = "return events with a larger `seq` (default 0: every event kept; the server keeps the newest 1024)"),
           ("limit" = Option<u32>, Query, description = "events per answer, 1–1000 (default 100)"),
           ("timeout_sec" = Option<u32>, Query, description = "when no event is newer than `since`, wait up to this long for one (long-poll), 0–60 (default 25)")),
    responses((status = 200, description = "`{data: [event], total, next_since, missed, reset}`. Each event is SPEC §Events' envelope `{id (UUIDv7), seq, type, stream_code, occurred_at, payload}`, oldest first, in `seq` order (a stream's events in the order they happened); `input.failover` carries `{from, to, reason, detail, gap_ms}`. Pass `next_since` back as `since`. `missed`: events after `since` no longer kept; `reset`: `since` was ahead of every event (the server restarted, numbering began again) and the page starts from the oldest kept."),
              (status = 400, description = "`INVALID_QUERY` naming the parameter", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn list(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let since = number(&query, "since", 0, u64::MAX)?;
    let limit = number(&query, "limit", DEFAULT_LIMIT, MAX_LIMIT)?.max(1);
    let wait = number(&query, "timeout_sec", DEFAULT_WAIT_SEC, MAX_WAIT_SEC)?;
    let page = engine
        .events_since(since, limit as usize, Duration::from_secs(wait))
        .await;
    let events: Vec<&tributary_engine::events::Event> =
        page.events.iter().map(AsRef::as_ref).collect();
    Ok(Json(json!({
        "data": events,
        "total": events.len(),
        "next_since": page.next_since,
        "missed": page.missed,
        "reset": page.reset,
    })))
}

/// Query parameter `name` as a number from 0 to `max` (`default` when absent or empty);
/// 400 `INVALID_QUERY` naming it otherwise.
pub(crate) fn number(
    query: &HashMap<String, String>,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, ApiError> {
    match query.get(name).map(String::as_str) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_QUERY",
                    format!("{name} must be a number from 0 to {max}, got {text:?}"),
                )
            }),
    }
}

/// Query parameter `name` parsed by `parse` (`None` when absent or empty); 400
/// `INVALID_QUERY` saying what it `must` be otherwise.
pub(crate) fn parsed<T>(
    query: &HashMap<String, String>,
    name: &str,
    must: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    match query.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(text) => parse(text).map(Some).ok_or_else(|| {
            ApiError::bad_request(
                "INVALID_QUERY",
                format!("{name} must be {must}, got {text:?}"),
            )
        }),
    }
}

/// Events per answer by default.
const DEFAULT_LIMIT: u64 = 100;
/// Events per answer at most.
const MAX_LIMIT: u64 = 1000;
/// How long an answer waits for an event by default: under common proxies' 30 s idle limit.
const DEFAULT_WAIT_SEC: u64 = 25;
/// How long an answer may be asked to wait.
const MAX_WAIT_SEC: u64 = 60;
