//! `GET /config/yaml` and `PUT /config/yaml` (SPEC §API, §Config): the whole system —
//! the configuration saved through the API, streams, templates, hooks and VOD mounts — as one
//! YAML document (its model, validation and plan: `domain::document`).
//!
//! A PUT goes through the engine's own write paths (`change_config` as `POST /config`,
//! `put_template`, `put_hook`, `put_vod`, `put_stream` and their deletes), after the whole
//! document has been checked against the system it would leave, so a bad document changes
//! nothing: 400 `INVALID_YAML` for syntax and unknown keys, 409 `PINNED_BY_ENV`, 422
//! `VALIDATION_FAILED` naming every failing field by its document path
//! (`streams[2].inputs[0].url`). Records equal to the stored ones are not written again
//! (nothing restarts). `?dry_run=true` answers the plan only. The PUT is a full replace
//! (SPEC): it deletes the streams, templates, hooks and mounts a section leaves out, and
//! replaces the saved configuration layer; with `?prune=false` whatever the document leaves
//! out is kept and the layer is merged into. Secrets are masked `****` on GET unless `?reveal=true`; a masked value written
//! back keeps the stored secret, and a mask with nothing stored behind it (a masked document
//! taken to another server) is refused rather than stored as a key.
//!
//! Concurrent writes through other routes are not locked out for the length of a PUT; each
//! record's write is serialised as usual, and the document is checked again record by record
//! as it is applied. An apply step that still fails (a store error, a listener that cannot
//! bind) stops the PUT: its error carries `applied`, the steps done before it.
//!
//! The YAML crate is `serde_yaml_ng`: `serde_yaml`, the usual choice, is unmaintained (its
//! author archived it in 2024), and `serde_yaml_ng` is the maintained fork with the same serde
//! model, strict about duplicate keys, reporting line and column for syntax errors.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tributary_domain::document::{DecodeError, Document, Plan, Stored, SystemDocument, prefixed};
use tributary_domain::spec::StreamSpec;
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors};
use tributary_engine::{
    ConfigMode, ConfigWriteError, CoordError, EngineHandle, HookError, Precondition, VodError,
};

use crate::YAML_BODY_CAP;
use crate::error::ApiError;
use crate::streams::{flag, read_body};

/// `GET /config/yaml`: the whole system as YAML.
#[utoipa::path(get, path = "/config/yaml", tag = "system",
    params(("reveal" = Option<bool>, Query, description = "show secrets instead of `****` (to copy a system to another server: a masked secret can only keep a value stored where it is written)")),
    responses((status = 200, description = "`application/yaml`: `{global_config, streams, templates, hooks, vod}`. `global_config` is the layer saved through the API (`POST /config`, `PUT /config/yaml`), not the effective configuration (`GET /config`), whose file, environment and command-line values belong to this host; streams (stored ones, as written, not template-resolved; auto-published ones left out), templates, hooks and mounts sorted by key; secrets masked unless `reveal`", content_type = "application/yaml", body = String),
              (status = 400, description = "`INVALID_QUERY`: `reveal` is not a boolean", body = crate::openapi::ErrorBody),
              (status = 500, description = "`STORE_ERROR`", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn get_yaml(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let reveal = flag(&query, "reveal")?;
    let stored = stored(&engine).await?;
    let document = SystemDocument {
        global_config: engine.saved_config().await,
        streams: stored.streams,
        templates: stored.templates,
        hooks: stored.hooks,
        vod: stored.vod,
    };
    let document = if reveal {
        document
    } else {
        let redacted = serde_json::to_value(engine.config().redacted()).unwrap_or(Value::Null);
        document.masked(&redacted)
    };
    let text = serde_yaml_ng::to_string(&document)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], text).into_response())
}

/// `PUT /config/yaml`: validate the whole document, then apply it in SPEC's order (module
/// doc); 200 with what was created, updated, left unchanged and deleted.
#[utoipa::path(put, path = "/config/yaml", tag = "system",
    params(("dry_run" = Option<bool>, Query, description = "validate and answer the plan; change nothing"),
           ("prune" = Option<bool>, Query, description = "default true (a full replace): delete the records a section of the document leaves out, and replace the saved configuration layer; `false` keeps them and merges into the layer (a section absent from the document is never touched)")),
    request_body(content = String, content_type = "application/yaml", description = "`{global_config, streams, templates, hooks, vod}` as `GET /config/yaml` shows it; every section optional. `global_config` is merged into the saved layer like `POST /config` (replaced with `prune`); each record is the whole record (absent fields take defaults), keyed by `code` (streams, templates), `id` (hooks), `name` (mounts). `****` keeps the stored secret"),
    responses((status = 200, description = "`{data: {dry_run, prune, global_config: {changed: [paths]}, templates, hooks, vod, streams}, warnings?}`, each section `{created, updated, unchanged, deleted}` (keys), and with `dry_run` `streams.actions` naming what each updated stream would restart (as `PUT /streams/{code}?dry_run=true`); records unchanged are not written again. Applied in order global → templates → hooks → VOD → streams (the pruned ones deleted first), then the other deletes"),
              (status = 400, description = "`EMPTY_BODY`; `INVALID_YAML`: a syntax error (line and column named), or unknown keys (`fields[].path` names each, `streams[0].inputz`); `INVALID_QUERY`", body = crate::openapi::ErrorBody),
              (status = 409, description = "`PINNED_BY_ENV`: `global_config` changes a field the environment or a flag sets (`fields[].path` under `global_config.`)", body = crate::openapi::ErrorBody),
              (status = 413, description = "`BODY_TOO_LARGE`: over 4 MiB", body = crate::openapi::ErrorBody),
              (status = 422, description = "`VALIDATION_FAILED`: every failing field by its document path (`streams[2].inputs[0].url`, `templates[0].prefixes[1]`, `hooks[0].target`, `global_config.buffer.capacity`), with the same rules as the REST writes (and `UNSUPPORTED` configuration changes this build cannot apply while running, a template a kept stream still names, a key given twice, a `****` with no stored secret behind it); nothing changed", body = crate::openapi::ErrorBody),
              (status = 500, description = "`STORE_ERROR` (or the failing step's own error) while applying: `applied` lists the steps done before it", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn put_yaml(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Result<Response, ApiError> {
    let dry_run = flag(&query, "dry_run")?;
    let prune = !query.contains_key("prune") || flag(&query, "prune")?;
    let mut document = Document::decode(read_yaml(body).await?).map_err(|e| match e {
        DecodeError::Unknown(errors) => {
            ApiError::bad_request("INVALID_YAML", format!("unknown fields: {errors}"))
                .with_fields(errors.0)
        }
        DecodeError::Invalid(errors) => failed(errors),
        other => failed(ValidationErrors(vec![FieldError::new(
            "$",
            ErrorCode::InvalidField,
            other.to_string(),
        )])),
    })?;
    let stored = stored(&engine).await?;
    let unkept = document.restore_secrets(&stored);
    if !unkept.is_empty() {
        return Err(failed(ValidationErrors(unkept)));
    }
    let mut errors = Vec::new();
    let mode = if prune {
        ConfigMode::Replace
    } else {
        ConfigMode::Merge
    };
    let mut config_changed = Vec::new();
    if let Some(layer) = &document.global_config {
        match engine.change_config(layer.clone(), mode, true).await {
            Ok(change) => config_changed = change.changed,
            Err(ConfigWriteError::Invalid(e)) => errors.extend(prefixed("global_config", e)),
            Err(e) => return Err(config_error(e)),
        }
    }
    let mut specs = Vec::new();
    let mut warnings = Vec::new();
    match document.validate(&stored, &engine.support(), prune) {
        Ok((parsed, more)) => (specs, warnings) = (parsed, more),
        Err(e) => errors.extend(e.0),
    }
    for (i, hook) in document.hooks.iter().flatten().enumerate() {
        match engine.check_hook(hook).await {
            Ok(()) => {}
            Err(HookError::Invalid(e)) => errors.extend(prefixed(&format!("hooks[{i}]"), e)),
            Err(e) => return Err(e.into()),
        }
    }
    for (i, mount) in document.vod.iter().flatten().enumerate() {
        match engine.check_vod(mount).await {
            Ok(()) => {}
            Err(VodError::Invalid(e)) => errors.extend(prefixed(&format!("vod[{i}]"), e)),
            Err(e) => return Err(e.into()),
        }
    }
    let plan = document.plan(&stored, prune);
    for (code, template) in engine.runtime_streams() {
        if plan.templates.deleted.contains(&template) {
            errors.push(FieldError::new(
                "templates",
                ErrorCode::InvalidField,
                format!("template {template} is used by the auto-published stream {code}; keep it"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(failed(ValidationErrors(errors)));
    }
    // What each updated stream would restart (as `PUT /streams/{code}?dry_run=true` says).
    let mut actions = serde_json::Map::new();
    if dry_run {
        for spec in specs
            .iter()
            .filter(|s| plan.streams.updated.iter().any(|c| c == s.code().as_str()))
        {
            // Best effort: a reference refused against the stored records is written again
            // after the others when applied (see `apply`).
            if let Ok(run) = engine.dry_run(spec).await {
                actions.insert(spec.code().to_string(), json!(run.actions));
            }
        }
    } else {
        let mut applied = Vec::new();
        apply(
            &engine,
            document,
            specs,
            &plan,
            mode,
            &mut applied,
            &mut warnings,
        )
        .await
        .map_err(|e| e.with_detail("applied", json!(applied)))?;
    }
    let mut payload = json!({"data": {
        "dry_run": dry_run,
        "prune": prune,
        "global_config": {"changed": config_changed},
        "templates": plan.templates,
        "hooks": plan.hooks,
        "vod": plan.vod,
        "streams": plan.streams,
    }});
    if dry_run {
        payload["data"]["streams"]["actions"] = Value::Object(actions);
    }
    if !warnings.is_empty() {
        payload["warnings"] = json!(warnings);
    }
    Ok(axum::Json(payload).into_response())
}

/// Applies a validated document in SPEC's order (the pruned streams deleted before the
/// document's are written), then the other deletes (after the streams, so no template is
/// still in use when it goes). Each step done is named in `applied`.
async fn apply(
    engine: &EngineHandle,
    document: Document,
    specs: Vec<StreamSpec>,
    plan: &Plan,
    mode: ConfigMode,
    applied: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let writes = |section: &tributary_domain::document::SectionPlan, key: &str| {
        section
            .created
            .iter()
            .chain(&section.updated)
            .any(|k| k == key)
    };
    if let Some(layer) = document.global_config {
        engine
            .change_config(layer, mode, false)
            .await
            .map_err(config_error)?;
        applied.push("global_config".into());
    }
    for template in document.templates.into_iter().flatten() {
        if writes(&plan.templates, &template.code) {
            let code = template.code.clone();
            let (_, _, more) = engine.put_template(template).await?;
            warnings.extend(more);
            applied.push(format!("templates {code}"));
        }
    }
    for hook in document.hooks.into_iter().flatten() {
        if writes(&plan.hooks, &hook.id) {
            let id = hook.id.clone();
            engine.put_hook(hook, false).await?;
            applied.push(format!("hooks {id}"));
        }
    }
    for mount in document.vod.into_iter().flatten() {
        if writes(&plan.vod, &mount.name) {
            let name = mount.name.clone();
            engine.put_vod(mount, false).await?;
            applied.push(format!("vod {name}"));
        }
    }
    // The streams the document leaves out go first (SPEC: "missing removed, others
    // upserted"), so no stream written next meets a reference through a record that goes.
    for code in &plan.streams.deleted {
        if let Ok(code) = tributary_domain::StreamCode::parse(code) {
            engine.delete_stream(&code).await?;
        }
        applied.push(format!("deleted streams {code}"));
    }
    // A `copy://` or `mixer://` reference is checked against the stored records as each
    // stream is written. The document's streams hold no cycle (validated), but one written
    // before the stream it stops being referenced by can meet a cycle through that stream's
    // old record: it is written again after the others, until a round writes none.
    let mut pending: Vec<StreamSpec> = specs
        .into_iter()
        .filter(|s| writes(&plan.streams, s.code().as_str()))
        .collect();
    while !pending.is_empty() {
        let round = pending.len();
        let mut refused = Vec::new();
        let mut last = None;
        for spec in pending {
            let code = spec.code().clone();
            match engine.put_stream(spec.clone(), Precondition::None).await {
                Ok(result) => {
                    warnings.extend(result.warnings);
                    applied.push(format!("streams {code}"));
                }
                Err(e @ CoordError::Invalid { .. }) => {
                    refused.push(spec);
                    last = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(e) = last.filter(|_| refused.len() == round) {
            return Err(e.into());
        }
        pending = refused;
    }
    for name in &plan.vod.deleted {
        engine.delete_vod(name).await?;
        applied.push(format!("deleted vod {name}"));
    }
    for id in &plan.hooks.deleted {
        engine.delete_hook(id).await?;
        applied.push(format!("deleted hooks {id}"));
    }
    for code in &plan.templates.deleted {
        engine.delete_template(code).await?;
        applied.push(format!("deleted templates {code}"));
    }
    Ok(())
}

/// The stored system.
async fn stored(engine: &EngineHandle) -> Result<Stored, ApiError> {
    let streams = engine.list_streams().await?;
    Ok(Stored {
        streams: streams.into_iter().map(|r| r.stream).collect(),
        templates: engine.list_templates().await?,
        hooks: engine.list_hooks().await?,
        vod: engine.list_vod().await?,
    })
}

/// 422 `VALIDATION_FAILED` naming every field.
fn failed(errors: ValidationErrors) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "VALIDATION_FAILED",
        format!("the document is invalid; nothing changed: {errors}"),
    )
    .with_fields(errors.0)
}

/// A configuration write's refusal, its fields under `global_config`.
fn config_error(error: ConfigWriteError) -> ApiError {
    match error {
        ConfigWriteError::Pinned(e) => {
            let fields = prefixed("global_config", e);
            ApiError::new(
                StatusCode::CONFLICT,
                "PINNED_BY_ENV",
                format!(
                    "set by the environment or the command line: {}",
                    ValidationErrors(fields.clone())
                ),
            )
            .with_fields(fields)
        }
        ConfigWriteError::Invalid(e) => failed(ValidationErrors(prefixed("global_config", e))),
        e => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "STORE_ERROR",
            e.to_string(),
        ),
    }
}

/// Reads a YAML body under the cap into a JSON value: 413 over it, 400 `EMPTY_BODY` or
/// `INVALID_YAML` (with line and column).
async fn read_yaml(body: Body) -> Result<Value, ApiError> {
    let bytes = read_body(body, YAML_BODY_CAP, "YAML").await?;
    serde_yaml_ng::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request("INVALID_YAML", format!("invalid YAML: {e}")))
}
