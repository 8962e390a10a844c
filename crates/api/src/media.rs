//! Media routes (SPEC §API "Media routes", §HLS "HTTP"): playlists and segments served from
//! the engine's memory, with CORS for browser players, `HEAD` and single byte ranges.
//!
//! Every path that is not an API route comes here first: `GET /{code}/index.m3u8`,
//! `GET /{code}/seg_000123.ts`, the DASH `GET /{code}/index.mpd` and its `init_v.mp4`,
//! `seg_v_000123.m4s`, ..., `GET /{code}/thumbnail.jpg` (the latest thumbnail, while the
//! stream has them on), and `GET /{code}/mpegts`, the one live route (a chunked body that lasts
//! as long as the stream). Anything the packagers did not produce is a JSON 404 like the
//! API's; `..`, backslashes and NUL never name a stream, so they 404 too.
//!
//! Each playlist or segment request belongs to its viewer's play session (SPEC §Sessions):
//! the engine opens or refreshes it, the 2xx body's bytes are added to it, and a viewer an
//! operator kicked gets 403 `FORBIDDEN` until its ban ends.
//!
//! LL-HLS requests that block (`_HLS_msn` / `_HLS_part` on a playlist, a preload-hinted part)
//! first await [`EngineHandle::media_ready`]: 400 `INVALID_QUERY` for a malformed or
//! too-far-ahead request, 503 when the part did not come in time or too many wait already.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tributary_domain::StreamCode;
use tributary_domain::http_range;
use tributary_engine::{
    EngineHandle, HttpViewer, MediaAsset, MediaReply, MediaWaitError, TsPlayError,
};

use crate::error::ApiError;

/// The fallback route: a media asset, or the API's 404.
pub(crate) async fn serve(State(engine): State<EngineHandle>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().trim_start_matches('/').to_owned();
    if method != Method::GET && method != Method::HEAD {
        return ApiError::not_found(format!("no route for {method} /{path}")).into_response();
    }
    if path.ends_with("index.m3u8") && asks_timeshift(request.uri().query()) {
        // SPEC §HLS "Timeshift on live URLs": answered from the stream's recording, never a
        // live playlist passed off as the window asked for.
        let Some(code) = path
            .strip_suffix("/index.m3u8")
            .and_then(|code| code.parse::<StreamCode>().ok())
        else {
            return ApiError::not_found(format!("no stream playlist at /{path} to timeshift"))
                .into_response();
        };
        let query = request.uri().query().unwrap_or_default();
        let peer = client(&engine, &request);
        return match engine.timeshift(code, query, peer, true).await {
            Ok(reply) => {
                crate::recordings::reply_response(reply, request.headers(), method == Method::HEAD)
            }
            Err(e) => ApiError::from(e).into_response(),
        };
    }
    if let Some(code) = path.strip_suffix("/mpegts") {
        let peer = client(&engine, &request);
        let query = request.uri().query().unwrap_or_default();
        return mpegts(&engine, code, query, peer, method == Method::HEAD);
    }
    // LL-HLS: a blocking playlist reload or a preload-hint part waits here (bounded) until
    // what it asks for exists; every other request passes at once.
    let query = request.uri().query().unwrap_or_default();
    let blocking = query.contains("_HLS_")
        || path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with("part_"));
    if blocking
        && let Err(error) = engine
            .media_ready(&path, query, client(&engine, &request))
            .await
    {
        let (status, code) = match &error {
            MediaWaitError::BadRequest(_) => (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
            MediaWaitError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
            MediaWaitError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "BUSY"),
        };
        let mut response = ApiError::new(status, code, error.to_string()).into_response();
        response.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        return response;
    }
    let thumbnail = path
        .strip_suffix("/thumbnail.jpg")
        .and_then(|code| code.parse::<StreamCode>().ok())
        .and_then(|code| Some((engine.thumbnail(&code)?, code)));
    if let Some((_, code)) = &thumbnail {
        let viewer = viewer(&engine, &request);
        if let Err(why) = engine.check_play_signature(code, &viewer.query, viewer.peer, false) {
            return ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", why).into_response();
        }
    }
    let thumbnail = thumbnail.map(|(body, _)| MediaAsset {
        content_type: "image/jpeg",
        cache_control: "no-cache",
        body,
    });
    let (asset, meter) = match thumbnail {
        Some(asset) => (asset, None),
        None => match engine.media_for(&path, &viewer(&engine, &request)) {
            MediaReply::Asset(asset, meter) => (asset, meter),
            MediaReply::Banned(remaining) => {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN",
                    format!(
                        "this viewer's session was ended by an operator; refused for {} s more",
                        remaining.as_secs().max(1)
                    ),
                )
                .into_response();
            }
            MediaReply::Unsigned(why) => {
                return ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", why).into_response();
            }
            MediaReply::NotFound => {
                return ApiError::not_found(format!("no route or media for /{path}"))
                    .into_response();
            }
        },
    };
    let response = respond(&asset, request.headers(), method == Method::HEAD);
    if let (Some(meter), true) = (meter, response.status().is_success()) {
        // The session's bytes: the body this 2xx response carries (none for HEAD).
        let sent = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .filter(|_| method != Method::HEAD)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        meter.add(sent);
    }
    response
}

/// Whether a query names a live-URL timeshift parameter (`from`, `dur`, `ago`, `delay`).
fn asks_timeshift(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .filter_map(|pair| pair.split('=').next())
            .any(|key| matches!(key, "from" | "dur" | "ago" | "delay"))
    })
}

/// The request's client: its peer, or the address a trusted proxy forwarded
/// (`security.trusted_proxies`).
pub(crate) fn client(engine: &EngineHandle, request: &Request) -> Option<SocketAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr)?;
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    Some(engine.client_addr(peer, header("x-forwarded-for"), header("x-real-ip")))
}

/// What the request tells about its viewer (SPEC §Sessions: the fingerprint is stream, client
/// address, `User-Agent` and `?token=`; forwarded addresses only from trusted proxies).
fn viewer(engine: &EngineHandle, request: &Request) -> HttpViewer {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    HttpViewer {
        peer: client(engine, request),
        user_agent: header(header::USER_AGENT),
        referer: header(header::REFERER),
        query: request.uri().query().unwrap_or_default().to_owned(),
    }
}

/// `GET /{code}/mpegts` (SPEC §Publisher "HTTP-TS"): the stream's playback feed as one
/// chunked `video/mp2t` body from a keyframe with PAT/PMT, until the stream stops or the
/// client leaves. The body is pulled as the client's socket takes it, so a slow client only
/// loses its own frames in the hub. Unknown or stopped stream → 404, a play cap reached → 503,
/// an unsigned request while signed play URLs are on → 403.
fn mpegts(
    engine: &EngineHandle,
    code: &str,
    query: &str,
    peer: Option<SocketAddr>,
    head: bool,
) -> Response {
    let Ok(code) = code.parse::<StreamCode>() else {
        return ApiError::not_found(format!("no stream named {code:?}")).into_response();
    };
    if let Err(why) = engine.check_play_signature(&code, query, peer, true) {
        return ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", why).into_response();
    }
    let play = match engine.mpegts(code, peer) {
        Ok(play) => play,
        Err(e @ TsPlayError::Busy(_)) => {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "BUSY", e.to_string())
                .into_response();
        }
        Err(e) => return ApiError::not_found(e.to_string()).into_response(),
    };
    let body = if head {
        Body::empty()
    } else {
        let chunks = futures_util::stream::unfold(play, |mut play| async move {
            let run = play.next().await?;
            Some((Ok::<_, std::convert::Infallible>(run), play))
        });
        Body::from_stream(chunks)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp2t"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// A media asset as a response: `HEAD`, a single byte range, CORS.
pub(crate) fn respond(asset: &MediaAsset, request: &HeaderMap, head: bool) -> Response {
    let ranged = Ranged::of(request, asset.body.len());
    let body = match &ranged.range {
        Some(range) => asset.body.slice(range.clone()),
        None if ranged.status == StatusCode::OK => asset.body.clone(),
        None => bytes::Bytes::new(),
    };
    let mut response = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body))
    };
    ranged.apply(&mut response, asset.content_type, asset.cache_control);
    response
}

/// What a request's `Range` header asks of a body of `total` bytes (SPEC §HLS "HTTP": one
/// byte range; shared by the in-memory media and the files VOD serves from disk).
#[derive(Debug)]
pub(crate) struct Ranged {
    /// 200, 206 or 416.
    pub(crate) status: StatusCode,
    /// The bytes to send for a 206 (`None`: the whole body for 200, nothing for 416).
    pub(crate) range: Option<std::ops::RangeInclusive<usize>>,
    /// The `Content-Length` to announce.
    pub(crate) len: usize,
    /// The `Content-Range` of a 206 or 416.
    content_range: Option<String>,
}

impl Ranged {
    /// The answer to `request`'s `Range` (if any) for `total` bytes.
    pub(crate) fn of(request: &HeaderMap, total: usize) -> Self {
        let range = request
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|v| http_range::parse(v, total));
        match range {
            None => Self {
                status: StatusCode::OK,
                range: None,
                len: total,
                content_range: None,
            },
            Some(Some(range)) => Self {
                status: StatusCode::PARTIAL_CONTENT,
                len: range.end() - range.start() + 1,
                content_range: Some(format!("bytes {}-{}/{total}", range.start(), range.end())),
                range: Some(range),
            },
            Some(None) => Self {
                status: StatusCode::RANGE_NOT_SATISFIABLE,
                range: None,
                len: 0,
                content_range: Some(format!("bytes */{total}")),
            },
        }
    }

    /// Sets the status and the headers of a media body: type, caching, CORS,
    /// `Accept-Ranges`, length and range.
    pub(crate) fn apply(
        &self,
        response: &mut Response,
        content_type: &'static str,
        cache: &'static str,
    ) {
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.len));
        if let Some(content_range) = &self.content_range {
            headers.insert(header::CONTENT_RANGE, crate::header_value(content_range));
        }
    }
}
