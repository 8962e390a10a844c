//! `/templates` (SPEC §API, §Templates): template CRUD.
//!
//! Bodies decode strictly (an unknown field or a wrong type is 422 naming its path) and are
//! validated by the engine like streams; the stream key and URL secrets are masked on read
//! unless `?reveal=true`, and a write that echoes the mask keeps the stored secret. Conflicts
//! name the field: `PREFIX_OVERLAP` names `prefixes[i]` and carries `conflicting_with` and
//! `overlaps`; `TEMPLATE_IN_USE` carries `streams`.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tributary_domain::template::{Template, decode_template};
use tributary_domain::validate::{ErrorCode, FieldError};
use tributary_engine::{EngineHandle, TemplateError};

use crate::error::ApiError;
use crate::streams::{flag, read_json};

/// `GET /templates`: `{data: [template], total}` sorted by code.
pub(crate) async fn list(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    let templates: Vec<Template> = engine
        .list_templates()
        .await?
        .iter()
        .map(|t| shown(t, reveal))
        .collect();
    Ok(Json(json!({"total": templates.len(), "data": templates})).into_response())
}

/// `GET /templates/{code}`: 404 when unknown.
pub(crate) async fn get_one(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    match engine.template(&code).await? {
        Some(template) => Ok(Json(json!({"data": shown(&template, reveal)})).into_response()),
        None => Err(ApiError::not_found(format!("template {code} not found"))),
    }
}

/// `POST` or `PUT /templates/{code}`: create (201) or replace (200) the whole template, then
/// hot-reload its running dependents.
pub(crate) async fn put(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    let template = decode_template(&code, read_json(body).await?).map_err(ApiError::validation)?;
    let (stored, created, warnings) = engine.put_template(template).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut payload = json!({"data": shown(&stored, reveal)});
    if !warnings.is_empty() {
        payload["warnings"] = json!(warnings);
    }
    Ok((status, Json(payload)).into_response())
}

/// `DELETE /templates/{code}`: 204 (also when absent), 409 `TEMPLATE_IN_USE` while streams
/// name it.
pub(crate) async fn delete(
    State(engine): State<EngineHandle>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    engine.delete_template(&code).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The template as served: secrets masked unless revealed.
fn shown(template: &Template, reveal: bool) -> Template {
    if reveal {
        template.clone()
    } else {
        template.masked()
    }
}

impl From<TemplateError> for ApiError {
    fn from(e: TemplateError) -> Self {
        let message = e.to_string();
        match e {
            TemplateError::Invalid(errors) => Self::validation(errors),
            TemplateError::Overlap { overlaps, .. } => {
                let fields = overlaps
                    .iter()
                    .map(|o| {
                        FieldError::new(
                            format!("prefixes[{}]", o.index),
                            ErrorCode::InvalidPrefix,
                            format!(
                                "{:?} overlaps {:?} of template {}",
                                o.prefix, o.overlaps, o.conflicting_with
                            ),
                        )
                    })
                    .collect();
                let first = &overlaps[0];
                Self::new(StatusCode::CONFLICT, "PREFIX_OVERLAP", message)
                    .with_fields(fields)
                    .with_detail("conflicting_with", json!(first.conflicting_with))
                    .with_detail("overlaps", json!(first.overlaps))
            }
            TemplateError::InUse { streams, .. } => {
                Self::new(StatusCode::CONFLICT, "TEMPLATE_IN_USE", message)
                    .with_fields(vec![FieldError::new(
                        "code",
                        ErrorCode::InvalidField,
                        format!("used by {}", streams.join(", ")),
                    )])
                    .with_detail("streams", json!(streams))
            }
            TemplateError::Store(_) => {
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "STORE_ERROR", message)
            }
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message),
        }
    }
}
