//! `/streams` and `/streams/{code}[/restart|/inputs/switch|/sessions|/recordings]` (SPEC §API
//! "Endpoints"). A stream code may hold `/`; [`crate::openapi::coded`] routes such paths here
//! with the code as one (decoded) path parameter.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tributary_domain::event::StreamStatus;
use tributary_domain::redact::{mask_stream, restore_secrets};
use tributary_domain::spec::StreamSpec;
use tributary_domain::validate::{
    ErrorCode, FieldError, ValidationErrors, check_push_profiles, check_write, decode_record,
};
use tributary_domain::{Stream, StreamCode};
use tributary_engine::{
    CoordError, EngineHandle, Precondition, PutResult, StreamRecord, SwitchError, SwitchOutcome,
};

use crate::error::ApiError;
use crate::{JSON_BODY_CAP, header_value};

/// The `{code}` of a `/streams/{code}…` route (decoded: it may hold `/`, see
/// [`crate::openapi::coded`]).
fn stream_code(code: &str) -> Result<StreamCode, ApiError> {
    StreamCode::parse(code).map_err(|e| {
        ApiError::validation(ValidationErrors(vec![FieldError::new(
            "code",
            ErrorCode::InvalidCode,
            e.to_string(),
        )]))
    })
}

/// The `{code}` of a read: one that is not a stream code names no stream (404).
fn found_code(code: &str) -> Result<StreamCode, ApiError> {
    stream_code(code).map_err(|_| ApiError::not_found(format!("stream {code:?} not found")))
}

pub(crate) fn flag(query: &HashMap<String, String>, name: &str) -> Result<bool, ApiError> {
    match query.get(name).map(String::as_str) {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("{name} must be true or false, got {other:?}"),
        )),
    }
}

fn etag(revision: u64) -> String {
    format!("\"r{revision}\"")
}

fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(Precondition::None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(Precondition::None);
    }
    let revision = text
        .trim_start_matches("W/")
        .trim_matches('"')
        .strip_prefix('r')
        .and_then(|r| r.parse().ok());
    revision.map(Precondition::Revision).ok_or_else(|| {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION_FAILED",
            format!("If-Match {text:?} does not match the stored ETag"),
        )
    })
}

/// The stored record as served: secrets masked unless revealed, plus `source` and, when
/// given, `runtime`.
fn record_json(record: &StreamRecord, runtime: Option<Value>, reveal: bool) -> Value {
    stream_json(&record.stream, "config", runtime, reveal)
}

/// A record as served with its `source` (`config`: stored; `runtime`: auto-published).
fn stream_json(stream: &Stream, source: &str, runtime: Option<Value>, reveal: bool) -> Value {
    let stream = if reveal {
        stream.clone()
    } else {
        mask_stream(stream)
    };
    let mut value = serde_json::to_value(&stream).unwrap_or_else(|_| json!({}));
    value["source"] = json!(source);
    if let Some(runtime) = runtime {
        value["runtime"] = runtime;
    }
    value
}

fn runtime_json(engine: &EngineHandle, code: &StreamCode) -> Value {
    serde_json::to_value(engine.runtime(code)).unwrap_or(Value::Null)
}

#[utoipa::path(get, path = "/streams", tag = "streams",
    params(("status" = Option<String>, Query, description = "active | degraded | stopped"),
           ("template" = Option<String>, Query), ("source" = Option<String>, Query, description = "config | runtime"),
           ("reveal" = Option<bool>, Query, description = "show secrets"),
           ("limit" = Option<u32>, Query, description = "page size, 1 to 1000 (default 1000)"),
           ("cursor" = Option<String>, Query, description = "the `next_cursor` of the previous page: streams after this code")),
    responses((status = 200, description = "`{data: [stream + runtime], total, next_cursor}` sorted by code; `total` counts this page, `next_cursor` (a code, or null on the last page) asks for the next; auto-published streams (`source: \"runtime\"`, not stored, their record empty but for `template`) follow the last page of stored ones"),
              (status = 400, description = "`INVALID_QUERY`: bad status, source, limit or cursor", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn list(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let status = crate::events::parsed(
        &query,
        "status",
        "active, degraded or stopped",
        StreamStatus::parse,
    )?;
    let source = query.get("source").map(String::as_str).unwrap_or("");
    if !matches!(source, "" | "config" | "runtime") {
        return Err(ApiError::bad_request(
            "INVALID_QUERY",
            format!("source must be config or runtime, got {source:?}"),
        ));
    }
    let template = query.get("template").filter(|t| !t.is_empty());
    let template_filter = template;
    let reveal = flag(&query, "reveal")?;
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => PAGE_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "INVALID_QUERY",
                    format!("limit must be a number from 1 to {PAGE_LIMIT}, got {text:?}"),
                )
            })?,
    };
    let cursor = match query.get("cursor").map(String::as_str) {
        None | Some("") => None,
        Some(text) => Some(StreamCode::parse(text).map_err(|_| {
            ApiError::bad_request(
                "INVALID_QUERY",
                format!("cursor must be a stream code (the next_cursor of a page), got {text:?}"),
            )
        })?),
    };
    let records = engine.list_streams_page(cursor, limit).await?;
    // A full page may have a successor; its cursor is the last code of this one.
    let next_cursor = if records.len() == limit {
        records.last().map(|r| r.stream.code.to_string())
    } else {
        None
    };
    let data: Vec<Value> = records
        .iter()
        .filter(|_| source != "runtime")
        .filter(|r| template.is_none() || r.stream.template.as_ref() == template)
        .filter_map(|r| {
            let runtime = engine.runtime(&r.stream.code);
            if status.is_some_and(|s| s != runtime.status) {
                return None;
            }
            let runtime = serde_json::to_value(runtime).unwrap_or(Value::Null);
            Some(record_json(r, Some(runtime), reveal))
        })
        .collect();
    let mut data = data;
    // Runtime (auto-published) streams are not stored: they follow the last page of stored
    // ones.
    if next_cursor.is_none() && source != "config" {
        for (code, template) in engine.runtime_streams() {
            if template_filter.is_some_and(|t| *t != template) {
                continue;
            }
            let runtime = engine.runtime(&code);
            if status.is_some_and(|s| s != runtime.status) {
                continue;
            }
            let runtime = serde_json::to_value(runtime).unwrap_or(Value::Null);
            data.push(stream_json(
                &runtime_record(code, template),
                "runtime",
                Some(runtime),
                reveal,
            ));
        }
    }
    let total = data.len();
    Ok(Json(json!({"data": data, "total": total, "next_cursor": next_cursor})).into_response())
}

/// `GET /streams` page size: the default and the most `?limit` may ask (SPEC §Security
/// "Field caps").
const PAGE_LIMIT: usize = 1000;

/// The most streams the store may hold (SPEC §Security "Field caps").
const MAX_STREAMS: u64 = 10_000;

#[utoipa::path(get, path = "/streams/{code}", tag = "streams",
    params(("code" = String, Path, description = "stream code; may contain '/'")),
    responses((status = 200, description = "`{data: stream + source + runtime}` with an ETag", body = Stream),
              (status = 404, body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn get_one(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let code = found_code(&code)?;
    let reveal = flag(&query, "reveal")?;
    let Some(record) = engine.get_stream(&code).await? else {
        let Some((code, template)) = engine
            .runtime_streams()
            .into_iter()
            .find(|(c, _)| *c == code)
        else {
            return Err(ApiError::not_found(format!("stream {code} not found")));
        };
        let runtime = runtime_json(&engine, &code);
        let body = stream_json(
            &runtime_record(code, template),
            "runtime",
            Some(runtime),
            reveal,
        );
        return Ok(Json(json!({"data": body})).into_response());
    };
    let body = record_json(&record, Some(runtime_json(&engine, &code)), reveal);
    let mut response = Json(json!({"data": body})).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, header_value(&etag(record.revision)));
    Ok(response)
}

#[utoipa::path(post, path = "/streams/{code}", tag = "streams", request_body = Stream,
    params(("code" = String, Path), ("dry_run" = Option<bool>, Query)),
    responses((status = 200, description = "replaced"), (status = 201, description = "created"),
              crate::openapi::BadBody, (status = 422, description = "invalid values, each naming its field; `INVALID_COPY_SHAPE` / `INVALID_MIXER_SHAPE` for a `copy://` or `mixer://` input that references its own stream, closes a cycle through the stored streams' `copy://` and `mixer://` references (the message names the path, `a → b → a`), or mixes (or ABR-copies, ABR-mixes) beside other inputs; `TEMPLATE_NOT_FOUND` naming `template` for an unknown template (a stream naming one is validated resolved over it: inputs, transcoder, protocols, ... it leaves empty come from the template)", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn post(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let code = stream_code(&code)?;
    write(engine, code, query, headers, body).await
}

/// `POST /streams/{code}/restart`: stop and start (an auto-published stream is only stopped).
#[utoipa::path(post, path = "/streams/{code}/restart", tag = "streams", params(("code" = String, Path)),
    responses((status = 200, description = "`{data: {status: \"started\"}}`; an auto-published (runtime) stream is stopped instead, and its encoder's reconnect creates it again"), (status = 404, body = crate::openapi::ErrorBody),
              (status = 409, description = "`STREAM_DISABLED`", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_CODE`: not a stream code", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn restart(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let code = stream_code(&code)?;
    engine.restart_stream(&code).await?;
    Ok(Json(json!({"data": {"status": "started"}})).into_response())
}

/// `GET /streams/{code}/sessions`: the stream's play sessions, as `GET /sessions`.
#[utoipa::path(get, path = "/streams/{code}/sessions", tag = "sessions",
    params(("code" = String, Path, description = "stream code; may contain '/'"),
           ("proto" = Option<String>, Query), ("status" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "as `GET /sessions`, for this stream", body = crate::openapi::SessionList),
              (status = 400, description = "`INVALID_QUERY` naming the parameter", body = crate::openapi::ErrorBody), (status = 404, description = "no such stream", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn sessions(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let code = found_code(&code)?;
    if engine.get_stream(&code).await?.is_none() {
        return Err(ApiError::not_found(format!("stream {code} not found")));
    }
    crate::sessions::of_stream(&engine, code, &query).map(IntoResponse::into_response)
}

/// `GET /streams/{code}/recordings`: the stream's recording (one: its id is the stream code),
/// `[]` when it has none.
#[utoipa::path(get, path = "/streams/{code}/recordings", tag = "dvr",
    params(("code" = String, Path, description = "stream code; may contain '/'")),
    responses((status = 200, description = "`{data: [Recording], total}`: the stream's recording (its id is the stream code) — `id`, `stream_code`, `started_at`, `stopped_at` (when stopped), `status` (`recording`, `stopped`, `failed`), `segment_dir` — or `[]`", body = Object),
              (status = 404, description = "no such stream", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn recordings(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let code = found_code(&code)?;
    let recordings = engine
        .recordings(&code)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("stream {code} not found")))?;
    let total = recordings.len();
    Ok(Json(json!({"data": recordings, "total": total})).into_response())
}

/// `POST /streams/{code}/inputs/switch` with `{"priority": N}` (pin) or `{"priority": null}`
/// (clear): 200 once the intake committed, 202 if not within [`SWITCH_WAIT`].
#[utoipa::path(post, path = "/streams/{code}/inputs/switch", tag = "streams", params(("code" = String, Path)),
    request_body(content = Object, description = "`{\"priority\": N}` pins a manual override; `{\"priority\": null}` clears it"),
    responses((status = 200, description = "`{data: {status: \"switched\"}}` once the new input's first keyframe is on air"),
              (status = 202, description = "`{data: {status: \"pending\"}}`: not committed within 5 s; see `runtime.switches`"),
              crate::openapi::BadBody,
              (status = 404, description = "unknown stream", body = crate::openapi::ErrorBody),
              (status = 409, description = "`SWITCH_FAILED`: not running, or the input is degraded, stopped or waiting for its publisher", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_INPUT_PRIORITY`: no such input; `INVALID_FIELD`/`UNKNOWN_FIELD`: bad body", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn switch(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let code = stream_code(&code)?;
    let body = read_json(body).await?;
    let priority = switch_priority(&body)?;
    if engine.get_stream(&code).await?.is_none() {
        return Err(ApiError::not_found(format!("stream {code} not found")));
    }
    let outcome = engine
        .switch_input(&code, priority, SWITCH_WAIT)
        .await
        .map_err(|e| match e {
            SwitchError::UnknownPriority(priority) => {
                ApiError::validation(ValidationErrors(vec![FieldError::new(
                    "priority",
                    ErrorCode::InvalidInputPriority,
                    format!("stream {code} has no input with priority {priority}"),
                )]))
            }
            other => ApiError::new(
                StatusCode::CONFLICT,
                "SWITCH_FAILED",
                format!("stream {code}: switch refused: {other}"),
            ),
        })?;
    Ok(match outcome {
        SwitchOutcome::Switched => Json(json!({"data": {"status": "switched"}})).into_response(),
        _ => (
            StatusCode::ACCEPTED,
            Json(json!({"data": {"status": "pending"}})),
        )
            .into_response(),
    })
}

/// The `priority` of a switch body: a non-negative integer or `null`; nothing else may be in
/// the object.
fn switch_priority(body: &Value) -> Result<Option<u32>, ApiError> {
    let invalid = |path: &str, code: ErrorCode, message: String| {
        ApiError::validation(ValidationErrors(vec![FieldError::new(path, code, message)]))
    };
    match only_field(body, "priority", "{\"priority\": N | null}")? {
        None => Err(invalid(
            "priority",
            ErrorCode::InvalidField,
            "missing field `priority` (a number, or null to clear the override)".into(),
        )),
        Some(value) => optional_priority(value),
    }
}

/// An input `priority` of a request body: `null` (none named) or a non-negative integer;
/// 422 naming `priority` otherwise.
pub(crate) fn optional_priority(value: &Value) -> Result<Option<u32>, ApiError> {
    if value.is_null() {
        return Ok(None);
    }
    value
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(ValidationErrors(vec![FieldError::new(
                "priority",
                ErrorCode::InvalidField,
                format!("expected a non-negative integer or null, got {value}"),
            )]))
        })
}

/// The value of `field` in a body that must be an object holding at most that field
/// (`shape` shows the expected object in the error); 422 naming the path otherwise.
pub(crate) fn only_field<'a>(
    body: &'a Value,
    field: &str,
    shape: &str,
) -> Result<Option<&'a Value>, ApiError> {
    let invalid = |path: &str, code: ErrorCode, message: String| {
        ApiError::validation(ValidationErrors(vec![FieldError::new(path, code, message)]))
    };
    let Some(object) = body.as_object() else {
        return Err(invalid(
            "",
            ErrorCode::InvalidField,
            format!("expected an object {shape}"),
        ));
    };
    if let Some(unknown) = object.keys().find(|key| *key != field) {
        return Err(invalid(
            unknown,
            ErrorCode::UnknownField,
            format!("unknown field `{unknown}`, expected `{field}`"),
        ));
    }
    Ok(object.get(field))
}

/// How long a manual switch waits for its commit before answering 202 (SPEC §API).
const SWITCH_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[utoipa::path(put, path = "/streams/{code}", tag = "streams", request_body = Stream,
    params(("code" = String, Path), ("dry_run" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "replaced; `{data, warnings?}`"), (status = 201, description = "created"),
              crate::openapi::BadBody, (status = 412, body = crate::openapi::ErrorBody), (status = 413, body = crate::openapi::ErrorBody),
              (status = 422, description = "invalid values, each naming its field; `INVALID_COPY_SHAPE` / `INVALID_MIXER_SHAPE` for a `copy://` or `mixer://` input that references its own stream, closes a cycle through the stored streams' `copy://` and `mixer://` references (the message names the path, `a → b → a`), or mixes (or ABR-copies, ABR-mixes) beside other inputs; `TEMPLATE_NOT_FOUND` naming `template` for an unknown template (a stream naming one is validated resolved over it: inputs, transcoder, protocols, ... it leaves empty come from the template)", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn put(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let code = stream_code(&code)?;
    write(engine, code, query, headers, body).await
}

#[utoipa::path(patch, path = "/streams/{code}", tag = "streams",
    request_body(content = Object, description = "JSON Merge Patch (RFC 7396) over the stored record"),
    params(("code" = String, Path), ("dry_run" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "patched: merged over the record as read, stored only if no write landed in between (else merged again)"),
              crate::openapi::BadBody,
              (status = 404, body = crate::openapi::ErrorBody), (status = 412, description = "stale `If-Match`", body = crate::openapi::ErrorBody),
              (status = 422, description = "as for PUT: invalid values naming the field, `INVALID_COPY_SHAPE` / `INVALID_MIXER_SHAPE` for copy and mixer shapes and cycles", body = crate::openapi::ErrorBody),
              (status = 503, description = "`BUSY`: written concurrently 64 times during this PATCH", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn patch(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let code = stream_code(&code)?;
    let dry_run = flag(&query, "dry_run")?;
    let reveal = flag(&query, "reveal")?;
    let precondition = precondition(&headers)?;
    let patch = read_json(body).await?;
    // The revision read is the write's precondition, so a write that lands in between makes
    // ours fail instead of being overwritten; then merge again over the new record. Each
    // retry means another write succeeded, so the loop ends; the bound is a backstop.
    for _ in 0..PATCH_ATTEMPTS {
        let stored = engine
            .get_stream(&code)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("stream {code} not found")))?;
        let mut document = serde_json::to_value(&stored.stream).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
        })?;
        json_patch::merge(&mut document, &patch);
        let expect = match precondition {
            Precondition::None => Precondition::Revision(stored.revision),
            given => given,
        };
        let (spec, warnings) = prepare(&engine, &code, document, Some(&stored)).await?;
        if dry_run {
            return dry_run_answer(&engine, &spec, warnings).await;
        }
        match engine.put_stream(spec, expect).await {
            Err(CoordError::Precondition { .. }) if precondition == Precondition::None => {}
            Err(e) => return Err(e.into()),
            Ok(result) => return Ok(stored_answer(result, warnings, reveal)),
        }
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "BUSY",
        format!(
            "stream {code} was written concurrently {PATCH_ATTEMPTS} times during this PATCH; retry"
        ),
    ))
}

/// How often a PATCH merges again after a concurrent write before it gives up with 503.
const PATCH_ATTEMPTS: usize = 64;

/// POST/PUT: create or replace with the whole record, then validate, persist and apply.
async fn write(
    engine: EngineHandle,
    code: StreamCode,
    query: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let dry_run = flag(&query, "dry_run")?;
    let reveal = flag(&query, "reveal")?;
    let precondition = precondition(&headers)?;
    let document = read_json(body).await?;
    let stored = engine.get_stream(&code).await?;
    let (spec, warnings) = prepare(&engine, &code, document, stored.as_ref()).await?;
    if stored.is_none() && engine.stream_count().await? >= MAX_STREAMS {
        return Err(ApiError::validation(ValidationErrors(vec![
            FieldError::new(
                "code",
                ErrorCode::InvalidField,
                format!(
                    "the server already holds {MAX_STREAMS} streams, the most it may; delete one first"
                ),
            ),
        ])));
    }
    if dry_run {
        return dry_run_answer(&engine, &spec, warnings).await;
    }
    let result = engine.put_stream(spec, precondition).await?;
    Ok(stored_answer(result, warnings, reveal))
}

/// Decodes `document` as the record of `code` and keeps the secrets of `stored` where it
/// carries the mask; then validates, with the rules only a write checks (`check_write`: a
/// short `stream_key`, reported first; `check_push_profiles` on the resolved record: a push
/// `profile` naming a rung the ladder does not have). Returns the spec to store and the
/// warnings to show.
async fn prepare(
    engine: &EngineHandle,
    code: &StreamCode,
    document: Value,
    stored: Option<&StreamRecord>,
) -> Result<(StreamSpec, Vec<String>), ApiError> {
    let mut stream = decode_record(code, document).map_err(ApiError::validation)?;
    if let Some(stored) = stored {
        restore_secrets(&mut stream, &stored.stream);
    }
    let mut errors = check_write(&stream);
    match engine.parse_stream_resolved(stream).await? {
        Ok(parsed) => {
            errors.extend(check_push_profiles(&parsed.0));
            if errors.is_empty() {
                Ok(parsed)
            } else {
                Err(ApiError::validation(ValidationErrors(errors)))
            }
        }
        Err(ValidationErrors(more)) => {
            errors.extend(more);
            Err(ApiError::validation(ValidationErrors(errors)))
        }
    }
}

/// The record of an auto-published stream: empty, naming its template.
fn runtime_record(code: StreamCode, template: String) -> Stream {
    let mut stream = Stream::new(code);
    stream.template = Some(template);
    stream
}

/// `?dry_run=true`: what storing `spec` would do.
async fn dry_run_answer(
    engine: &EngineHandle,
    spec: &StreamSpec,
    warnings: Vec<String>,
) -> Result<Response, ApiError> {
    let plan = engine.dry_run(spec).await?;
    Ok(Json(json!({"data": plan, "warnings": warnings})).into_response())
}

/// 201 or 200 with the stored record, the warnings and the new ETag.
fn stored_answer(result: PutResult, mut warnings: Vec<String>, reveal: bool) -> Response {
    warnings.extend(result.warnings);
    let status = if result.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut payload = json!({"data": record_json(&result.record, None, reveal)});
    if !warnings.is_empty() {
        payload["warnings"] = json!(warnings);
    }
    let mut response = (status, Json(payload)).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, header_value(&etag(result.record.revision)));
    response
}

/// Reads a JSON body under the cap: 413 over it, 400 for empty or malformed JSON (with line
/// and column).
pub(crate) async fn read_json(body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(body, JSON_BODY_CAP, "JSON").await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(
            "INVALID_BODY",
            format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

/// Reads a body of at most `cap` bytes: 413 `BODY_TOO_LARGE` over it (naming the `kind` of
/// body), 400 `EMPTY_BODY` when it is empty or only whitespace.
pub(crate) async fn read_body(
    body: Body,
    cap: usize,
    kind: &str,
) -> Result<axum::body::Bytes, ApiError> {
    let bytes = axum::body::to_bytes(body, cap).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!("{kind} bodies are limited to {cap} bytes"),
        )
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "EMPTY_BODY",
            "the request body is empty",
        ));
    }
    Ok(bytes)
}

#[utoipa::path(delete, path = "/streams/{code}", tag = "streams", params(("code" = String, Path)),
    responses((status = 204, description = "deleted (also when unknown)"),
              crate::openapi::AdminRefusal))]
pub(crate) async fn delete(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let Ok(code) = stream_code(&code) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    engine.delete_stream(&code).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
