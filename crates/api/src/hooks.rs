//! `/hooks` (SPEC §API, §Hooks): webhook CRUD, a real test delivery and the delivery log.
//!
//! Bodies decode strictly (an unknown field or a wrong type is 422 naming its path) and are
//! validated by the engine on every write; secrets are masked on read unless `?reveal=true`,
//! and a write that echoes the mask keeps the stored secret.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tributary_domain::hook::{Hook, decode_hook};
use tributary_engine::{EngineHandle, HookError};

use crate::error::ApiError;
use crate::streams::{flag, read_json};

/// `GET /hooks`: `{data: [hook], total}` sorted by id.
#[utoipa::path(get, path = "/hooks", tag = "hooks",
    params(("reveal" = Option<bool>, Query, description = "show secrets")),
    responses((status = 200, description = "`{data: [hook], total}` sorted by id; `secret`, and the target URL's password and secret-named query values, masked `****` unless `reveal` (writing them back keeps the stored values)", body = [Hook]),
              crate::openapi::AdminRefusal,
              (status = 500, description = "`STORE_ERROR`", body = crate::openapi::ErrorBody)))]
pub(crate) async fn list(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    let hooks: Vec<Hook> = engine
        .list_hooks()
        .await?
        .iter()
        .map(|h| shown(h, reveal))
        .collect();
    Ok(Json(json!({"total": hooks.len(), "data": hooks})).into_response())
}

/// `POST /hooks`: create; 201, or 409 `ALREADY_EXISTS` for a taken id.
#[utoipa::path(post, path = "/hooks", tag = "hooks",
    request_body = Hook,
    responses((status = 201, description = "`{data: hook}` as stored (secret masked); its batcher runs at once", body = Hook),
              crate::openapi::BadBody,
              (status = 409, description = "`ALREADY_EXISTS`: the id is taken", body = crate::openapi::ErrorBody),
              (status = 422, description = "`UNKNOWN_FIELD` / `INVALID_FIELD` naming the field: id `[A-Za-z0-9_-]{1,64}`; http → `target` an http(s) URL; file → `target` a path inside `hooks.file_root` (symlinks resolved); `max_retries` 0–10; SPEC event types; not both `stream_codes.only` and `except`", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn create(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    let hook = decode_hook(None, read_json(body).await?).map_err(ApiError::validation)?;
    let (stored, _) = engine.put_hook(hook, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"data": shown(&stored, reveal)})),
    )
        .into_response())
}

/// `GET /hooks/{hid}`.
#[utoipa::path(get, path = "/hooks/{hid}", tag = "hooks",
    params(("hid" = String, Path, description = "hook id"), ("reveal" = Option<bool>, Query, description = "show the secret")),
    responses((status = 200, description = "`{data: hook}`", body = Hook),
              (status = 404, description = "`NOT_FOUND`", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn get_one(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    match engine.hook(&id).await? {
        Some(hook) => Ok(Json(json!({"data": shown(&hook, reveal)})).into_response()),
        None => Err(ApiError::not_found(format!("hook {id} not found"))),
    }
}

/// `PUT /hooks/{hid}`: create (201) or replace (200) the whole hook; the body's `id`, if
/// any, must be the path's.
#[utoipa::path(put, path = "/hooks/{hid}", tag = "hooks",
    params(("hid" = String, Path, description = "hook id; the body's `id`, if any, must match")),
    request_body = Hook,
    responses((status = 200, description = "`{data: hook}` replaced; a running batcher takes the new settings at once; a `secret` of `****` keeps the stored one", body = Hook),
              (status = 201, description = "`{data: hook}` created", body = Hook),
              crate::openapi::BadBody,
              (status = 422, description = "validation, naming the field (as POST)", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn put(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    let hook = decode_hook(Some(&id), read_json(body).await?).map_err(ApiError::validation)?;
    let (stored, created) = engine.put_hook(hook, false).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"data": shown(&stored, reveal)}))).into_response())
}

/// `DELETE /hooks/{hid}`: 204, also when absent.
#[utoipa::path(delete, path = "/hooks/{hid}", tag = "hooks",
    params(("hid" = String, Path, description = "hook id")),
    responses((status = 204, description = "deleted (also when absent); events it still held are dropped"),
              crate::openapi::AdminRefusal))]
pub(crate) async fn delete(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    engine.delete_hook(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /hooks/{hid}/test`: answers after one real try, 200 `{data: {status: "delivered",
/// at}}` or 502 `DELIVERY_FAILED` with the error.
#[utoipa::path(post, path = "/hooks/{hid}/test", tag = "hooks",
    params(("hid" = String, Path, description = "hook id")),
    responses((status = 200, description = "`{data: {status: \"delivered\", at, http_status, duration_ms}}` once one real try of a synthetic `stream.created` (stream `_tributary_test_`, payload `{test: true, hook_id}`) succeeded; the try is in the delivery log"),
              (status = 404, description = "`NOT_FOUND`", body = crate::openapi::ErrorBody),
              (status = 502, description = "`DELIVERY_FAILED` with the try's error (connection refused, `blocked by ssrf_guard: <ip>`, HTTP status, timeout, file outside the root), or hooks are off (`hooks: null`)", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn test(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let delivery = engine.test_hook(&id).await?;
    Ok(Json(json!({"data": {
        "status": delivery.status,
        "at": delivery.at,
        "http_status": delivery.http_status,
        "duration_ms": delivery.duration_ms,
    }}))
    .into_response())
}

/// `GET /hooks/{hid}/deliveries`: the last attempts, newest first, `{data, total}`.
#[utoipa::path(get, path = "/hooks/{hid}/deliveries", tag = "hooks",
    params(("hid" = String, Path, description = "hook id")),
    responses((status = 200, description = "`{data: [attempt], total}`: the last 100 delivery attempts, newest first (kept in the store across restarts): `{at, event_ids, status: delivered | failed, http_status, error, duration_ms, attempt}`, plus a `dropped` entry (attempt 0) naming events a full queue dropped", body = [tributary_domain::hook::Delivery]),
              (status = 404, description = "`NOT_FOUND`", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn deliveries(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match engine.hook_deliveries(&id).await? {
        Some(log) => Ok(Json(json!({"total": log.len(), "data": log})).into_response()),
        None => Err(ApiError::not_found(format!("hook {id} not found"))),
    }
}

/// The hook as served: its secret masked unless revealed.
fn shown(hook: &Hook, reveal: bool) -> Hook {
    if reveal { hook.clone() } else { hook.masked() }
}

impl From<HookError> for ApiError {
    fn from(e: HookError) -> Self {
        let (status, code) = match &e {
            HookError::Invalid(errors) => return Self::validation(errors.clone()),
            HookError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            HookError::Exists(_) => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
            HookError::DeliveryFailed { .. } | HookError::Off => {
                (StatusCode::BAD_GATEWAY, "DELIVERY_FAILED")
            }
            HookError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "STORE_ERROR"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        Self::new(status, code, e.to_string())
    }
}
