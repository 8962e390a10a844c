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
pub(crate) async fn delete(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    engine.delete_hook(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /hooks/{hid}/test`: answers after one real try, 200 `{data: {status: "delivered",
/// at}}` or 502 `DELIVERY_FAILED` with the error.
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
