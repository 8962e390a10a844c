//! Media routes (SPEC §API "Media routes", §HLS "HTTP"): playlists and segments served from
//! the engine's memory, with CORS for browser players, `HEAD` and single byte ranges.
//!
//! Every path that is not an API route comes here first: `GET /{code}/index.m3u8`,
//! `GET /{code}/seg_000123.ts`. Anything the packagers did not produce is a JSON 404 like the
//! API's; `..`, backslashes and NUL never name a stream, so they 404 too.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tributary_engine::{EngineHandle, MediaAsset};

use crate::error::ApiError;

/// Marks a response as media, so the access log (API requests only) skips it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MediaResponse;

/// The fallback route: a media asset, or the API's 404.
pub(crate) async fn serve(State(engine): State<EngineHandle>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().trim_start_matches('/').to_owned();
    if method != Method::GET && method != Method::HEAD {
        return ApiError::not_found(format!("no route for {method} /{path}")).into_response();
    }
    let Some(asset) = engine.media(&path) else {
        return ApiError::not_found(format!("no route or media for /{path}")).into_response();
    };
    let mut response = respond(&asset, request.headers(), method == Method::HEAD);
    response.extensions_mut().insert(MediaResponse);
    response
}

fn respond(asset: &MediaAsset, request: &HeaderMap, head: bool) -> Response {
    let total = asset.body.len();
    let range = request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, total));
    let (status, body, content_range) = match range {
        None => (StatusCode::OK, asset.body.clone(), None),
        Some(Some((start, end))) => (
            StatusCode::PARTIAL_CONTENT,
            asset.body.slice(start..=end),
            Some(format!("bytes {start}-{end}/{total}")),
        ),
        Some(None) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            bytes::Bytes::new(),
            Some(format!("bytes */{total}")),
        ),
    };
    let len = body.len();
    let mut response = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body))
    };
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(asset.cache_control),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some(content_range) = content_range {
        headers.insert(header::CONTENT_RANGE, crate::header_value(&content_range));
    }
    response
}

/// One `bytes=` range (`a-b`, `a-`, `-n`) of a body of `total` bytes, as inclusive offsets;
/// `None` when it cannot be satisfied. Several ranges are answered with the first.
fn parse_range(value: &str, total: usize) -> Option<(usize, usize)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let first = spec.split(',').next()?.trim();
    let (start, end) = first.split_once('-')?;
    if total == 0 {
        return None;
    }
    let last = total - 1;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: usize = suffix.parse().ok()?;
            if n == 0 {
                return None;
            }
            (total.saturating_sub(n), last)
        }
        (start, "") => (start.parse().ok()?, last),
        (start, end) => (start.parse().ok()?, end.parse::<usize>().ok()?.min(last)),
    };
    (start <= end && start <= last).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-1000", 100), Some((0, 99)));
        assert_eq!(parse_range("bytes=50-1000", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=0-0,5-6", 100), Some((0, 0)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=9-3", 100), None);
        assert_eq!(parse_range("bytes=-0", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=x-1", 100), None);
        assert_eq!(parse_range("bytes=0-1", 0), None);
    }
}
