//! `/vod` (SPEC §API, §Security "File serving"): VOD mount CRUD, browsing, multipart uploads
//! streamed to disk, file deletes, and `/vod/{name}/raw/*` served from disk with byte ranges.
//!
//! Mount bodies decode strictly like every record (422 naming the field); the storage checks
//! (inside `security.storage_roots`, created, writable) are the engine's. An upload never sits
//! in memory: each multipart chunk is written as it arrives, so the route has no body limit
//! of its own beyond [`VOD_UPLOAD_CAP`] (checked on the file's bytes) and no admin deadline
//! (a 10 GiB upload takes longer than an admin request may). Raw serving is a media route
//! (no admin token; the play signature of `vod/<name>` when signed play URLs are on). Like the
//! recording routes, it passes through the API's access log: a player fetches a file in a few
//! large ranges, not a playlist every second or two.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tributary_domain::vod::{VodEntry, VodMount, decode_mount};
use tributary_engine::{EngineHandle, VOD_UPLOAD_CAP, VodError};

use crate::auth::AdminGate;
use crate::error::ApiError;
use crate::media::file_response;
use crate::streams::read_json;

/// The multipart part that carries the file.
const FILE_PART: &str = "file";

/// Bytes read from disk per body chunk of a raw response.
const RAW_CHUNK: usize = 64 * 1024;

#[utoipa::path(get, path = "/vod", tag = "vod",
    responses((status = 200, description = "`{data: [mount], total}` sorted by name", body = [VodMount]),
              crate::openapi::AdminRefusal))]
pub(crate) async fn list(State(engine): State<EngineHandle>) -> Result<Response, ApiError> {
    let mounts = engine.list_vod().await?;
    Ok(Json(json!({"total": mounts.len(), "data": mounts})).into_response())
}

#[utoipa::path(post, path = "/vod", tag = "vod", request_body = VodMount,
    responses((status = 201, description = "created: `{data: mount}`; `storage` was created if missing and write-probed", body = VodMount),
              (status = 409, description = "`ALREADY_EXISTS`: a mount has this name", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_FIELD` naming `name` or `storage` (not absolute, outside `security.storage_roots`, not creatable or writable), `UNKNOWN_FIELD`", body = crate::openapi::ErrorBody),
              crate::openapi::BadBody,
              crate::openapi::AdminRefusal))]
pub(crate) async fn create(
    State(engine): State<EngineHandle>,
    body: Body,
) -> Result<Response, ApiError> {
    let mount = decode_mount(None, read_json(body).await?).map_err(ApiError::validation)?;
    engine.put_vod(mount.clone(), true).await?;
    Ok((StatusCode::CREATED, Json(json!({"data": mount}))).into_response())
}

#[utoipa::path(get, path = "/vod/{name}", tag = "vod",
    params(("name" = String, Path, description = "mount name")),
    responses((status = 200, description = "`{data: mount}`", body = VodMount),
              (status = 404, body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn get_one(
    State(engine): State<EngineHandle>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match engine.vod(&name).await? {
        Some(mount) => Ok(Json(json!({"data": mount})).into_response()),
        None => Err(ApiError::not_found(format!("no VOD mount {name}"))),
    }
}

#[utoipa::path(put, path = "/vod/{name}", tag = "vod", request_body = VodMount,
    params(("name" = String, Path, description = "mount name (a `name` in the body is replaced by it)")),
    responses((status = 200, description = "replaced: `{data: mount}`", body = VodMount),
              (status = 201, description = "created", body = VodMount),
              (status = 422, description = "as `POST /vod`", body = crate::openapi::ErrorBody),
              crate::openapi::BadBody,
              crate::openapi::AdminRefusal))]
pub(crate) async fn put(
    State(engine): State<EngineHandle>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let mount = decode_mount(Some(&name), read_json(body).await?).map_err(ApiError::validation)?;
    let created = engine.put_vod(mount.clone(), false).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"data": mount}))).into_response())
}

#[utoipa::path(delete, path = "/vod/{name}", tag = "vod",
    params(("name" = String, Path, description = "mount name")),
    responses((status = 204, description = "deleted (also when unknown); the files stay on disk"),
              crate::openapi::AdminRefusal))]
pub(crate) async fn delete(
    State(engine): State<EngineHandle>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    engine.delete_vod(&name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/vod/{name}/files", tag = "vod",
    params(("name" = String, Path, description = "mount name"),
           ("path" = Option<String>, Query, description = "a directory inside the mount (default: its top)")),
    responses((status = 200, description = "`{data: [entry], total}`: the video files and directories directly inside `path`, directories first", body = [VodEntry]),
              (status = 400, description = "`INVALID_QUERY`: `path` holds `..`, `//`, a backslash, NUL or is absolute", body = crate::openapi::ErrorBody),
              (status = 404, description = "no such mount or directory", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn files(
    State(engine): State<EngineHandle>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let path = query.get("path").map_or("", String::as_str);
    let entries = engine.vod_files(&name, path).await?;
    Ok(Json(json!({"total": entries.len(), "data": entries})).into_response())
}

#[utoipa::path(post, path = "/vod/{name}/files", tag = "vod",
    params(("name" = String, Path, description = "mount name")),
    request_body(content_type = "multipart/form-data", description = "a part named `file`, stored at the mount's top under the part's filename"),
    responses((status = 201, description = "`{data: entry}`", body = VodEntry),
              (status = 409, description = "`FILE_EXISTS`", body = crate::openapi::ErrorBody),
              (status = 413, description = "`UPLOAD_TOO_LARGE`", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_FIELD` naming `file`", body = crate::openapi::ErrorBody),
              crate::openapi::BadBody,
              crate::openapi::AdminRefusal))]
pub(crate) async fn upload_top(
    State(engine): State<EngineHandle>,
    Path(name): Path<String>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    receive(&engine, &name, "", multipart.map_err(not_multipart)?).await
}

#[utoipa::path(post, path = "/vod/{name}/files/{path}", tag = "vod",
    params(("name" = String, Path, description = "mount name"),
           ("path" = String, Path, description = "the file to create (a video name), or a directory the part's filename goes into; missing directories are created")),
    request_body(content_type = "multipart/form-data", description = "a part named `file` (the bytes are streamed to disk, at most 10 GiB)"),
    responses((status = 201, description = "`{data: entry}`", body = VodEntry),
              (status = 404, description = "no such mount, or a path that leaves it", body = crate::openapi::ErrorBody),
              (status = 409, description = "`FILE_EXISTS`", body = crate::openapi::ErrorBody),
              (status = 413, description = "`UPLOAD_TOO_LARGE`: over 10 GiB (nothing is kept)", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_FIELD` naming `file`: not a video extension, or no `file` part", body = crate::openapi::ErrorBody),
              crate::openapi::BadBody,
              crate::openapi::AdminRefusal))]
pub(crate) async fn upload(
    State(engine): State<EngineHandle>,
    Path((name, path)): Path<(String, String)>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    receive(&engine, &name, &path, multipart.map_err(not_multipart)?).await
}

/// An upload that is not `multipart/form-data`: the API's JSON error, not axum's text.
fn not_multipart(rejection: MultipartRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
        format!("an upload is a multipart/form-data body with a part named `file`: {rejection}"),
    )
}

#[utoipa::path(delete, path = "/vod/{name}/files/{path}", tag = "vod",
    params(("name" = String, Path, description = "mount name"), ("path" = String, Path, description = "a video file inside the mount")),
    responses((status = 204, description = "deleted"),
              (status = 404, description = "no such mount or video file", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn delete_file(
    State(engine): State<EngineHandle>,
    Path((name, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    engine.vod_delete_file(&name, &path).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/vod/{name}/raw/{path}", tag = "vod",
    params(("name" = String, Path, description = "mount name"), ("path" = String, Path, description = "a video file inside the mount"),
           ("exp" = Option<u64>, Query, description = "signed play URLs: expiry (Unix seconds)"),
           ("sig" = Option<String>, Query, description = "signed play URLs: hex HMAC-SHA256 of `vod/<name>|<exp>` (+ `|<ip>` when bound)")),
    responses((status = 200, description = "the file (`HEAD` and `Range` supported)", content_type = "video/mp4", body = Vec<u8>),
              (status = 206, description = "a byte range (a range past the end: 416 with `Content-Range: bytes */<size>`, no body)"),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and the signature does not hold", body = crate::openapi::ErrorBody),
              (status = 404, description = "no such video file (other extensions, traversal and symlinks out of the mount included)", body = crate::openapi::ErrorBody)))]
pub(crate) async fn raw(
    State(engine): State<EngineHandle>,
    Path((name, path)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let query = request.uri().query().unwrap_or_default();
    let peer = crate::media::client(&engine, &request);
    let vod = engine.vod_raw(&name, &path, query, peer).await?;
    let head = request.method() == Method::HEAD;
    let file = vod.file.into_std().await;
    file_response(
        file,
        vod.size,
        request.headers(),
        head,
        vod.content_type,
        "no-cache",
    )
}

/// The admin gate for `/vod/…`, except raw serving (a media route, SPEC §API route classes).
pub(crate) async fn gate(State(gate): State<AdminGate>, request: Request, next: Next) -> Response {
    let raw = request
        .uri()
        .path()
        .strip_prefix("/vod/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, rest)| rest.starts_with("raw/"));
    if raw {
        return next.run(request).await;
    }
    crate::auth::require_admin(State(gate), request, next).await
}

/// Streams the `file` part of `multipart` into mount `name` at `path`.
async fn receive(
    engine: &EngineHandle,
    name: &str,
    path: &str,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let malformed = |e: axum::extract::multipart::MultipartError| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(VodError::TooLarge)
        } else {
            ApiError::bad_request("INVALID_BODY", format!("multipart body: {}", e.body_text()))
        }
    };
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        if field.name() != Some(FILE_PART) {
            continue;
        }
        let file_name = field.file_name().map(str::to_owned);
        let mut upload = engine.vod_upload(name, path, file_name.as_deref()).await?;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            upload.write(&chunk).await?;
        }
        let entry = upload.finish().await?;
        return Ok((StatusCode::CREATED, Json(json!({"data": entry}))).into_response());
    }
    Err(ApiError::from(VodError::NotVideo(format!(
        "no multipart part named {FILE_PART:?} (send the file as -F {FILE_PART}=@movie.mp4)"
    ))))
}

/// A file (already positioned and limited) as a streamed body, one [`RAW_CHUNK`] at a time.
pub(crate) fn file_body(reader: tokio::io::Take<tokio::fs::File>) -> Body {
    let chunks = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = bytes::BytesMut::with_capacity(RAW_CHUNK);
        match reader.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok::<_, std::io::Error>(buf.freeze()), reader)),
            Err(e) => Some((Err(e), reader)),
        }
    });
    Body::from_stream(chunks)
}

impl From<VodError> for ApiError {
    fn from(e: VodError) -> Self {
        let message = e.to_string();
        let (status, code) = match e {
            VodError::Invalid(errors) => return Self::validation(errors),
            VodError::NotVideo(why) => {
                return Self::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_FIELD", message)
                    .with_fields(vec![tributary_domain::validate::FieldError::new(
                        FILE_PART,
                        tributary_domain::validate::ErrorCode::InvalidField,
                        why,
                    )]);
            }
            VodError::Exists(_) => (StatusCode::CONFLICT, "ALREADY_EXISTS"),
            VodError::FileExists(_) => (StatusCode::CONFLICT, "FILE_EXISTS"),
            VodError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            VodError::BadQuery(_) => (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            VodError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "UPLOAD_TOO_LARGE"),
            VodError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            VodError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "STORE_ERROR"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        Self::new(status, code, message)
    }
}

/// The request cap of an upload: the file's cap and room for the multipart framing.
pub(crate) const UPLOAD_REQUEST_CAP: usize = VOD_UPLOAD_CAP as usize + (1 << 20);
