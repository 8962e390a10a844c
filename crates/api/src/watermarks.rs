//! `/watermarks` (SPEC §API): the watermark library — list, multipart upload, get, delete, and
//! the image bytes.
//!
//! An upload is streamed to disk as it arrives (the engine's `WatermarkUpload`), so memory
//! holds one multipart chunk, whatever the client sends. Two caps apply (SPEC §Security "Body
//! caps"), each answered with its own 413 so the client knows which it passed: the request
//! (16 MiB, `BODY_TOO_LARGE`, the route's body limit) and the image (8 MiB,
//! `UPLOAD_TOO_LARGE` naming `file`, counted on the file part's bytes). The image's type is
//! its first bytes' (PNG, JPEG or GIF; anything else is 415 `INVALID_IMAGE` naming `file`),
//! never its name or the part's `Content-Type`. A refused image's remaining bytes are read
//! (within the request cap) and dropped before the answer, so a client still sending gets
//! the error, not a reset connection. Every route is an admin route (SPEC §API route
//! classes): the raw image too, which a dashboard fetches with the admin token; it never
//! changes under its id, so it is cached for a year.

use std::collections::HashMap;

use axum::Json;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tributary_domain::validate::{ErrorCode, FieldError};
use tributary_domain::watermark::WatermarkAsset;
use tributary_engine::{EngineHandle, WATERMARK_REQUEST_CAP, WatermarkError};

use crate::error::ApiError;

/// The multipart part that carries the image.
const FILE_PART: &str = "file";

/// `Cache-Control` of the image bytes: an id's bytes never change (a new upload is a new id).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[utoipa::path(get, path = "/watermarks", tag = "watermarks",
    responses((status = 200, description = "`{data: [asset], total, dir}`: every asset, newest first, and the library directory (`watermarks.dir`)", body = [WatermarkAsset]),
              (status = 422, description = "`INVALID_FIELD` naming `watermarks.dir`: the library is off (its directory lies outside `security.storage_roots`)", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn list(State(engine): State<EngineHandle>) -> Result<Response, ApiError> {
    let (assets, dir) = engine.list_watermarks().await?;
    Ok(Json(json!({"total": assets.len(), "data": assets, "dir": dir})).into_response())
}

#[utoipa::path(post, path = "/watermarks", tag = "watermarks",
    params(("name" = Option<String>, Query, description = "the asset's name, at most 128 characters (default: the part's filename)")),
    request_body(content_type = "multipart/form-data", description = "a part named `file`: a PNG, JPEG or GIF image (by its first bytes), at most 8 MiB; the request at most 16 MiB"),
    responses((status = 201, description = "`{data: asset}`", body = WatermarkAsset),
              (status = 400, description = "`INVALID_BODY`: not a multipart/form-data body", body = crate::openapi::ErrorBody),
              (status = 413, description = "`UPLOAD_TOO_LARGE` naming `file`: the image is over 8 MiB; `BODY_TOO_LARGE`: the request is over 16 MiB (nothing is kept)", body = crate::openapi::ErrorBody),
              (status = 415, description = "`INVALID_IMAGE` naming `file`: not a PNG, JPEG or GIF by its first bytes, or no `file` part", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_FIELD` naming `name` (blank, over 128 characters) or `file` (no `?name=` and no filename, or a filename over 255 bytes), or `watermarks.dir` (the library is off)", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn upload(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart = multipart.map_err(|rejection| {
        ApiError::bad_request(
            "INVALID_BODY",
            format!(
                "an upload is a multipart/form-data body with a part named `file`: {rejection}"
            ),
        )
    })?;
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        if field.name() != Some(FILE_PART) {
            continue;
        }
        let file_name = field.file_name().map(str::to_owned);
        let name = query.get("name").map(String::as_str);
        let mut upload = engine.watermark_upload(name, file_name.as_deref()).await?;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if let Err(e) = upload.write(&chunk).await {
                drop(upload);
                // The rest of the request (at most the 16 MiB cap) is read and dropped, so
                // the client, still sending, gets this answer rather than a reset connection.
                while let Ok(Some(_)) = field.chunk().await {}
                drop(field);
                while let Ok(Some(mut rest)) = multipart.next_field().await {
                    while let Ok(Some(_)) = rest.chunk().await {}
                }
                return Err(e.into());
            }
        }
        let asset = upload.finish().await?;
        return Ok((StatusCode::CREATED, Json(json!({"data": asset}))).into_response());
    }
    Err(ApiError::from(WatermarkError::NotImage(format!(
        "no multipart part named {FILE_PART:?} (send the image as -F {FILE_PART}=@logo.png)"
    ))))
}

#[utoipa::path(get, path = "/watermarks/{id}", tag = "watermarks",
    params(("id" = String, Path, description = "asset id (16 hex characters)")),
    responses((status = 200, description = "`{data: asset}`", body = WatermarkAsset),
              (status = 404, description = "`NOT_FOUND`: no such asset (an id that is not 16 hex characters included)", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_FIELD` naming `watermarks.dir`: the library is off", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn get_one(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let asset = engine.watermark(&id).await?;
    Ok(Json(json!({"data": asset})).into_response())
}

#[utoipa::path(delete, path = "/watermarks/{id}", tag = "watermarks",
    params(("id" = String, Path, description = "asset id")),
    responses((status = 204, description = "deleted (a stream running with it keeps it until its transcoder restarts)"),
              (status = 404, description = "`NOT_FOUND`: no such asset", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_FIELD` naming `watermarks.dir`: the library is off", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn delete(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    engine.delete_watermark(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(get, path = "/watermarks/{id}/raw", tag = "watermarks",
    params(("id" = String, Path, description = "asset id")),
    responses((status = 200, description = "the image, with its type's `Content-Type` and `Cache-Control: public, max-age=31536000, immutable`", content_type = "image/png", body = Vec<u8>),
              (status = 404, description = "`NOT_FOUND`: no such asset", body = crate::openapi::ErrorBody),
              (status = 422, description = "`INVALID_FIELD` naming `watermarks.dir`: the library is off", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn raw(
    State(engine): State<EngineHandle>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let image = engine.watermark_raw(&id).await?;
    let body = crate::vod::file_body(image.file.take(image.size));
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(image.content_type),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(image.size));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    Ok(response)
}

/// A multipart body that breaks off or passes the request cap.
fn malformed(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            format!(
                "the request body is larger than {WATERMARK_REQUEST_CAP} bytes (16 MiB); the \
                 image itself may be at most 8 MiB"
            ),
        );
    }
    ApiError::bad_request("INVALID_BODY", format!("multipart body: {}", e.body_text()))
}

impl From<WatermarkError> for ApiError {
    fn from(e: WatermarkError) -> Self {
        let message = e.to_string();
        let file = |status, code, why: String| {
            Self::new(status, code, message.clone()).with_fields(vec![FieldError::new(
                FILE_PART,
                ErrorCode::InvalidField,
                why,
            )])
        };
        match e {
            WatermarkError::Invalid(errors) => Self::validation(errors),
            WatermarkError::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message),
            WatermarkError::NotImage(why) => {
                file(StatusCode::UNSUPPORTED_MEDIA_TYPE, "INVALID_IMAGE", why)
            }
            WatermarkError::TooLarge => file(
                StatusCode::PAYLOAD_TOO_LARGE,
                "UPLOAD_TOO_LARGE",
                "the image is larger than 8 MiB".into(),
            ),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::Body;
    use axum::extract::ConnectInfo;
    use axum::http::Request;
    use serde_json::Value;
    use tower::ServiceExt;
    use tributary_domain::config::Layers;

    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    /// `POST /watermarks` through the real router: a multipart body of `parts` (name, bytes).
    async fn post(router: &axum::Router, parts: &[(&str, &[u8])]) -> (StatusCode, Value) {
        let mut body = Vec::new();
        for (name, bytes) in parts {
            body.extend_from_slice(
                format!(
                    "--B\r\nContent-Disposition: form-data; name=\"{name}\"; \
                     filename=\"{name}.png\"\r\nContent-Type: image/png\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--B--\r\n");
        let mut request = Request::post("/watermarks")
            .header("host", "127.0.0.1")
            .header("content-type", "multipart/form-data; boundary=B")
            .body(Body::from(body))
            .unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn each_cap_and_a_non_image_is_its_own_precise_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let file = serde_json::json!({"data_dir": dir.path().display().to_string()});
        let engine = tributary_engine::Engine::open(Layers::new(file, Value::Null, Value::Null))
            .unwrap()
            .handle();
        let router = crate::router(engine);

        let (status, body) = post(&router, &[("file", PNG)]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["data"]["name"], "file.png");

        let (status, body) = post(&router, &[("file", b"GIF88a not an image")]).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        assert_eq!(body["error"]["code"], "INVALID_IMAGE");
        assert_eq!(body["error"]["fields"][0]["path"], "file");

        let (status, body) = post(&router, &[("other", PNG)]).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no multipart part")
        );

        // The image over 8 MiB, the request under 16 MiB.
        let mut big = PNG.to_vec();
        big.resize((8 << 20) + 1, 0);
        let (status, body) = post(&router, &[("file", &big)]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["error"]["code"], "UPLOAD_TOO_LARGE");
        assert_eq!(body["error"]["fields"][0]["path"], "file");

        // The request over 16 MiB, the image under 8 MiB.
        let junk = vec![0; 10 << 20];
        let mut image = PNG.to_vec();
        image.resize(7 << 20, 0);
        let (status, body) = post(&router, &[("junk", &junk), ("file", &image)]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["error"]["code"], "BODY_TOO_LARGE");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("16 MiB")
        );

        // Only the first upload is an asset; no temporary file is left.
        let library = dir.path().join("watermarks");
        let names: Vec<String> = std::fs::read_dir(&library)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "an image and its sidecar: {names:?}");
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    }
}
