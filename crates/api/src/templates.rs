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
#[utoipa::path(get, path = "/templates", tag = "templates",
    params(("reveal" = Option<bool>, Query, description = "show secrets")),
    responses((status = 200, description = "`{data: [template], total}` sorted by code; `stream_key`, URL passwords, secret query values and push URLs masked `****` unless `reveal` (writing them back keeps the stored values)", body = [Template]),
              crate::openapi::AdminRefusal))]
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
#[utoipa::path(get, path = "/templates/{code}", tag = "templates",
    params(("code" = String, Path, description = "template code `[A-Za-z0-9_-]{1,128}`"), ("reveal" = Option<bool>, Query, description = "show secrets")),
    responses((status = 200, description = "`{data: template}`", body = Template),
              (status = 404, description = "`NOT_FOUND`", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
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
#[utoipa::path(method(put, post), path = "/templates/{code}", tag = "templates",
    params(("code" = String, Path, description = "template code `[A-Za-z0-9_-]{1,128}`; a `code` in the body is ignored")),
    request_body = Template,
    responses((status = 200, description = "`{data: template}` replaced (prefixes without a trailing `/`); every running stream that names it, and every runtime stream made from it, is updated through the hot-reload diff (only what changed restarts); a dependent that failed to update is in `warnings`", body = Template),
              (status = 201, description = "`{data: template}` created", body = Template),
              crate::openapi::BadBody,
              (status = 409, description = "`PREFIX_OVERLAP`: a prefix equals, or is a path-prefix of, another template's (or the reverse); `fields[].path` names `prefixes[i]`, `conflicting_with` the other template and `overlaps` its prefix", body = crate::openapi::ErrorBody),
              (status = 422, description = "`UNKNOWN_FIELD` / `INVALID_FIELD` / `INVALID_CODE` / `INVALID_PREFIX` (`[A-Za-z0-9_/-]{1,128}`, no leading `/`, no `//`, no duplicate) and every stream rule (`INVALID_INPUT_URL`, `INVALID_WATERMARK`, ...), naming the field as for streams", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
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
#[utoipa::path(delete, path = "/templates/{code}", tag = "templates",
    params(("code" = String, Path, description = "template code")),
    responses((status = 204, description = "deleted (also when absent)"),
              (status = 409, description = "`TEMPLATE_IN_USE`: stored streams name it or runtime streams were made from it; `streams` lists them", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
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
