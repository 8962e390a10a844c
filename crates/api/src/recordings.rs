//! Recording routes (SPEC §API, §DVR): `GET /recordings/{rid}` and `/recordings/{rid}/info`
//! (admin), `GET /recordings/{rid}/playlist.m3u8`, `/recordings/{rid}/timeshift.m3u8` and
//! `/recordings/{rid}/NNNNNN.ts` (media: CORS, `HEAD`, byte ranges, no admin token; with
//! signed play URLs on they need the stream's signature, like its live media), and
//! `/recordings/{rid}/clip.mp4` (a fragmented MP4 of a window, streamed as it is remuxed). The recording id is the stream code, which may
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

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use serde_json::json;
use tributary_domain::StreamCode;
use tributary_engine::{ClipError, EngineHandle, MediaAsset, RecordingPath, RecordingReply};

use crate::auth::AdminGate;
use crate::error::ApiError;
use crate::media::{file_response, respond, streamed};

/// `GET /recordings/{rid}` (admin).
#[utoipa::path(get, path = "/recordings/{rid}", tag = "dvr",
    params(("rid" = String, Path, description = "recording id (the stream code; may contain '/')")),
    responses((status = 200, description = "`{data: Recording}`", body = Object),
              (status = 404, description = "`NOT_FOUND`: no recording", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn recording(
    State(engine): State<EngineHandle>,
    Path(rid): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    serve(engine, rid, RecordingPath::Recording, request).await
}

/// `GET /recordings/{rid}/info` (admin).
#[utoipa::path(get, path = "/recordings/{rid}/info", tag = "dvr",
    params(("rid" = String, Path, description = "recording id")),
    responses((status = 200, description = "`{data: {stream_code, status, dvr_range{started_at, last_segment_at}, gaps[{from, to, duration}], segment_count, total_size_bytes, total_duration_sec}}`", body = Object),
              (status = 404, description = "`NOT_FOUND` / `NO_DATA`: no recording, or no segment yet", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn info(
    State(engine): State<EngineHandle>,
    Path(rid): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    serve(engine, rid, RecordingPath::Info, request).await
}

/// `GET /recordings/{rid}/playlist.m3u8` (media).
#[utoipa::path(get, path = "/recordings/{rid}/playlist.m3u8", tag = "dvr",
    params(("rid" = String, Path, description = "recording id")),
    responses((status = 200, description = "HLS playlist built from the segment log: `EVENT` while recording (a sliding playlist from the first retained segment when `retention_sec` or `max_size_gb` is set), `VOD` with `#EXT-X-ENDLIST` when stopped; `#EXT-X-PROGRAM-DATE-TIME` first and after each discontinuity", content_type = "application/vnd.apple.mpegurl", body = String),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` are missing, expired or wrong (a signed playlist carries them into its segment URIs)", body = crate::openapi::ErrorBody),
              (status = 404, description = "`NOT_FOUND` / `NO_SEGMENTS`", body = crate::openapi::ErrorBody)))]
pub(crate) async fn playlist(
    State(engine): State<EngineHandle>,
    Path(rid): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    serve(engine, rid, RecordingPath::Playlist, request).await
}

/// `GET /recordings/{rid}/timeshift.m3u8` (media).
#[utoipa::path(get, path = "/recordings/{rid}/timeshift.m3u8", tag = "dvr",
    params(("rid" = String, Path, description = "recording id"),
           ("from" = Option<String>, Query, description = "window start: RFC 3339 or Unix seconds, not in the future (give `from` or `offset_sec`)"),
           ("offset_sec" = Option<f64>, Query, description = "window start in seconds: N >= 0 after the first segment's start, N < 0 before the newest segment's end"),
           ("duration" = Option<f64>, Query, description = "window length in seconds, > 0; absent or over 86400: 24 h")),
    responses((status = 200, description = "VOD playlist (`#EXT-X-ENDLIST`) of the segments from the first that ends after the window's start to the last that starts before its end (clipped to the recording); `#EXT-X-PROGRAM-DATE-TIME` first and after each discontinuity; segment URIs beside it (`NNNNNN.ts`, with `exp`/`sig` when play URLs are signed)", content_type = "application/vnd.apple.mpegurl", body = String),
              (status = 400, description = "`INVALID_FROM`, `INVALID_OFFSET`, `INVALID_DURATION`, `INVALID_QUERY` (neither or both of `from` and `offset_sec`), naming the parameter", body = crate::openapi::ErrorBody),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` are missing, expired or wrong", body = crate::openapi::ErrorBody),
              (status = 404, description = "`NOT_FOUND`: no recording; `NO_DATA`: no segment yet, or none in the window (named)", body = crate::openapi::ErrorBody)))]
pub(crate) async fn timeshift(
    State(engine): State<EngineHandle>,
    Path(rid): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    serve(engine, rid, RecordingPath::Timeshift, request).await
}

/// `GET /recordings/{rid}/{segment}` (media): one of the segments the DVR wrote.
#[utoipa::path(get, path = "/recordings/{rid}/{segment}", tag = "dvr",
    params(("rid" = String, Path, description = "recording id"),
           ("segment" = String, Path, description = "`NNNNNN.ts` (six or more digits), listed in the recording's log")),
    responses((status = 200, description = "the segment (`HEAD` and `Range` supported)", content_type = "video/mp2t", body = Vec<u8>),
              (status = 206, description = "a byte range"),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` are missing, expired or wrong", body = crate::openapi::ErrorBody),
              (status = 404, description = "not one of the recording's segments", body = crate::openapi::ErrorBody)))]
pub(crate) async fn segment(
    State(engine): State<EngineHandle>,
    Path((rid, segment)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    serve(
        engine,
        rid,
        |code| RecordingPath::Segment(code, segment),
        request,
    )
    .await
}

/// `GET /recordings/{rid}/clip.mp4` (SPEC §DVR, media): a window of the recording as one
/// fragmented MP4, streamed as it is remuxed.
#[utoipa::path(get, path = "/recordings/{rid}/clip.mp4", tag = "dvr",
    params(("rid" = String, Path, description = "recording id"),
           ("from" = Option<String>, Query, description = "clip start: RFC 3339 or Unix seconds, not in the future (give `from` or `offset_sec`); the clip starts at the video keyframe at or before it"),
           ("offset_sec" = Option<f64>, Query, description = "clip start in seconds: N >= 0 after the first segment's start, N < 0 before the newest segment's end"),
           ("to" = Option<String>, Query, description = "clip end: RFC 3339 or Unix seconds (give `to` or `duration`); past the recording's end the clip ends with it"),
           ("duration" = Option<f64>, Query, description = "clip length in seconds, > 0")),
    responses((status = 200, description = "a fragmented MP4 (`ftyp` + `moov` with the video and audio tracks, then one `moof` + `mdat` per recorded segment) remuxed from the recorded segments without re-encoding, streamed as a chunked body; a recording hole is closed up", content_type = "video/mp4", body = Vec<u8>),
              (status = 400, description = "`INVALID_FROM`, `INVALID_TO`, `INVALID_OFFSET`, `INVALID_DURATION`, `INVALID_QUERY` (neither or both of a pair), `CLIP_TOO_LONG` (longer than `dvr.max_clip_sec`, 3600 s by default), naming the parameter", body = crate::openapi::ErrorBody),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` are missing, expired or wrong", body = crate::openapi::ErrorBody),
              (status = 404, description = "`NOT_FOUND`: no recording; `NO_DATA`: no segment in the window, or no keyframe to start from", body = crate::openapi::ErrorBody),
              (status = 500, description = "`INTERNAL`: a recorded segment could not be read or remuxed", body = crate::openapi::ErrorBody)))]
pub(crate) async fn clip(
    State(engine): State<EngineHandle>,
    Path(rid): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    serve(engine, rid, RecordingPath::Clip, request).await
}

/// Whether the last segment of a `/recordings/…` path names a recording segment (so
/// `/recordings/{rid}/{segment}`, not a recording whose id ends there).
pub(crate) fn is_segment(name: &str) -> bool {
    matches!(
        RecordingPath::parse(&format!("r/{name}")),
        Some(RecordingPath::Segment(..))
    )
}

/// Answers one recording route for the recording id `rid`.
async fn serve(
    engine: EngineHandle,
    rid: String,
    route: impl FnOnce(StreamCode) -> RecordingPath,
    request: Request,
) -> Result<Response, ApiError> {
    let code = rid
        .parse::<StreamCode>()
        .map_err(|_| ApiError::not_found(format!("no recording {rid:?}")))?;
    let head = request.method() == axum::http::Method::HEAD;
    let query = request.uri().query().unwrap_or_default();
    let peer = crate::media::client(&engine, &request);
    let reply = engine.recording(route(code), query, peer).await?;
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
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
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
        RecordingReply::Segment { file, size } => file_response(
            file,
            size,
            request,
            head,
            "video/mp2t",
            "public, max-age=31536000, immutable",
        )
        .unwrap_or_else(IntoResponse::into_response),
        RecordingReply::NotFound(code, message) => {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, code, message).into_response()
        }
        RecordingReply::BadRequest(code, message) => {
            media_error(axum::http::StatusCode::BAD_REQUEST, code, message)
        }
        RecordingReply::Forbidden(message) => {
            media_error(axum::http::StatusCode::FORBIDDEN, "FORBIDDEN", message)
        }
        RecordingReply::Clip { first, rest } => clip_response(first, rest, head),
        RecordingReply::Failed(message) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            message,
        )
        .into_response(),
        _ => ApiError::not_found("no such recording route").into_response(),
    }
}

/// A clip as a chunked `video/mp4` body: `first`, then each piece as the remux makes it (at
/// the client's pace: the remux waits on a bounded queue). A failure midway ends the body
/// with an error, so the client sees a cut transfer rather than a short file that looks
/// whole. `HEAD` answers the headers and drops the rest, which stops the remux.
fn clip_response(
    first: Bytes,
    rest: tokio::sync::mpsc::Receiver<Result<Bytes, ClipError>>,
    head: bool,
) -> Response {
    let body = if head {
        Body::empty()
    } else {
        let pieces = futures_util::stream::unfold(rest, |mut rest| async move {
            let piece = rest.recv().await?.map_err(std::io::Error::other);
            Some((piece, rest))
        });
        let first = futures_util::stream::once(async move { Ok(first) });
        Body::from_stream(futures_util::StreamExt::chain(first, pieces))
    };
    streamed(body, "video/mp4")
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
