//! Recording routes (SPEC §API, §DVR): `GET /recordings/{rid}` and `/recordings/{rid}/info`
//! (admin), `GET /recordings/{rid}/playlist.m3u8`, `/recordings/{rid}/timeshift.m3u8` and
//! `/recordings/{rid}/NNNNNN.ts` (media: CORS, `HEAD`, byte ranges, no admin token; with
//! signed play URLs on they need the stream's signature, like its live media). The recording id is the stream code, which may
//! hold `/`; the last path segment decides the route, and a segment name must be one the DVR
//! wrote (six or more digits, `.ts`) and listed in the recording's log.
//!
//! Unlike the live media routes (the router's fallback), these pass through the API's
//! request-id and access-log layers: a recording is fetched a segment at a time by few
//! viewers, not polled every second or two by every one.
//!
//! Paths are never mapped onto the file system here: the id is parsed as a stream code (so
//! `..`, backslashes, NUL and empty segments name nothing) and the DVR resolves the file,
//! symlinks included, inside its storage root.

use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;
use tributary_engine::{EngineHandle, MediaAsset, RecordingPath, RecordingReply};

use crate::auth::AdminGate;
use crate::error::ApiError;
use crate::media::respond;

/// `GET /recordings/{*rest}`.
pub(crate) async fn serve(
    State(engine): State<EngineHandle>,
    Path(rest): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let path = RecordingPath::parse(&rest)
        .ok_or_else(|| ApiError::not_found(format!("no recording route /recordings/{rest}")))?;
    let head = request.method() == axum::http::Method::HEAD;
    let query = request.uri().query().unwrap_or_default();
    let peer = crate::media::client(&engine, &request);
    let reply = engine.recording(path, query, peer).await?;
    Ok(reply_response(reply, request.headers(), head))
}

/// A recording reply as a response (also the live URL's timeshift answer).
pub(crate) fn reply_response(
    reply: RecordingReply,
    request: &axum::http::HeaderMap,
    head: bool,
) -> Response {
    // A player's refusal (a timeshift query), readable by a browser player like its playlist.
    let media_error = |status, code, message: String| {
        let mut response = ApiError::new(status, code, message).into_response();
        response.headers_mut().insert(
            axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
            axum::http::HeaderValue::from_static("*"),
        );
        response
    };
    match reply {
        RecordingReply::Json(data) => Json(json!({"data": data})).into_response(),
        RecordingReply::Playlist(text) => respond(
            &MediaAsset {
                content_type: "application/vnd.apple.mpegurl",
                cache_control: "no-cache",
                body: text.into(),
            },
            request,
            head,
        ),
        RecordingReply::Segment(body) => respond(
            &MediaAsset {
                content_type: "video/mp2t",
                cache_control: "public, max-age=31536000, immutable",
                body,
            },
            request,
            head,
        ),
        RecordingReply::NotFound(code, message) => {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, code, message).into_response()
        }
        RecordingReply::Unsupported(message) => ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "UNSUPPORTED",
            message,
        )
        .into_response(),
        RecordingReply::BadRequest(code, message) => {
            media_error(axum::http::StatusCode::BAD_REQUEST, code, message)
        }
        RecordingReply::Forbidden(message) => {
            media_error(axum::http::StatusCode::FORBIDDEN, "FORBIDDEN", message)
        }
        _ => ApiError::not_found("no such recording route").into_response(),
    }
}

/// The admin gate for `/recordings/…`, except the media routes (playlists and segments), which
/// players fetch without a token (SPEC §API route classes).
pub(crate) async fn gate(State(gate): State<AdminGate>, request: Request, next: Next) -> Response {
    let media = request
        .uri()
        .path()
        .strip_prefix("/recordings/")
        .and_then(RecordingPath::parse)
        .is_some_and(|p| p.is_media());
    if media {
        return next.run(request).await;
    }
    crate::auth::require_admin(State(gate), request, next).await
}
