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

/// The fallback route: a media asset, or the API's 404. It dispatches on the file name to the
/// documented media operations ([`playlist`], [`mpegts`], [`thumbnail`], [`asset`]); a path
/// that names none of them is an asset lookup, which answers 404.
pub(crate) async fn serve(State(engine): State<EngineHandle>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().trim_start_matches('/').to_owned();
    if method != Method::GET && method != Method::HEAD {
        return ApiError::not_found(format!("no route for {method} /{path}")).into_response();
    }
    if let Some(code) = path.strip_suffix("/index.m3u8") {
        return playlist(&engine, code, &path, request).await;
    }
    if let Some(code) = path.strip_suffix("/mpegts") {
        let peer = client(&engine, &request);
        let query = request.uri().query().unwrap_or_default();
        return mpegts(&engine, code, query, peer, method == Method::HEAD);
    }
    if let Some(code) = path.strip_suffix("/thumbnail.jpg")
        && let Some(response) = thumbnail(&engine, code, &request)
    {
        return response;
    }
    asset(&engine, &path, request).await
}

/// `GET /{code}/index.m3u8`: the live playlist, or with a timeshift query (SPEC §HLS
/// "Timeshift on live URLs") a window of the stream's recording, never a live playlist passed
/// off as the window asked for.
#[utoipa::path(get, path = "/{code}/index.m3u8", tag = "media", params(("code" = String, Path, description = "stream code; may contain '/'")),
    responses((status = 200, description = "HLS: the media playlist of a stream without a transcoder, or the ABR master playlist of a ladder (one `#EXT-X-STREAM-INF` per rung with a segment: BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION, CODECS, FRAME-RATE; URIs `track_N/index.m3u8`). Segments beside it: `seg_<n>.ts` (`video/mp2t`, `#EXT-X-VERSION:3`), or with `publisher.hls.segment_format` `fmp4` (or `auto` and an H.265 or Opus stream) fMP4: `seg_<n>.m4s` (`video/mp4`, `#EXT-X-VERSION:7`) after `#EXT-X-MAP:URI=\"init.mp4\"` (`init_<session>.mp4` once a codec change needs a new init; served with `Cache-Control: no-cache`). Both formats cut at the same keyframes and number alike. LL-HLS (`publisher.hls.low_latency` with fMP4): `#EXT-X-VERSION:9`, `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=<6 x target>,PART-HOLD-BACK=<publisher.hls.part_hold_back_sec, default 2 x part>` (no `HOLD-BACK`: players outside low-latency mode keep 3 x TARGETDURATION), `#EXT-X-PART-INF`, `#EXT-X-PART` (`part_<n>.<i>.m4s`, `video/mp4`, immutable) for the last 3 segments and the one being cut, `#EXT-X-PRELOAD-HINT` for the next part (a request for it is held until it exists), `#EXT-X-RENDITION-REPORT` per other rung in a ladder's variants; `?_HLS_msn=<n>[&_HLS_part=<i>]` holds the request until that segment or part is listed (at most 3 x TARGETDURATION), `?_HLS_skip=YES` (or `v2`) serves the delta update (`#EXT-X-SKIP`). Timeshift from the stream's DVR recording: `?from=<RFC 3339 or Unix s>[&dur=<s>]` or `?ago=<s>[&dur=<s>]` is a VOD playlist of that window (at most 24 h) with segment URIs `/recordings/{code}/NNNNNN.ts`; `?delay=<s>` a live playlist of the last 12 segments that had ended that many seconds ago.", content_type = "application/vnd.apple.mpegurl"),
              (status = 400, description = "`INVALID_QUERY`: a timeshift value that is not non-negative seconds (`ago`, `dur` > 0, `delay` <= 86400) or an RFC 3339 / Unix-seconds `from` not in the future, or a malformed `_HLS_msn`, `_HLS_part` (without `_HLS_msn`) or `_HLS_skip`, or `_HLS_msn` more than 2 segments past the last one", body = crate::openapi::ErrorBody),
              (status = 403, description = "`FORBIDDEN`: this viewer's session (fingerprint) was kicked less than `sessions.kick_ban_sec` ago; or signed play URLs are on and `exp`/`sig` do not hold", body = crate::openapi::ErrorBody),
              (status = 404, description = "unknown or stopped stream, HLS off, or no segment yet; with timeshift parameters: `NOT_FOUND` the stream has no recording, `NO_DATA` none in the window", body = crate::openapi::ErrorBody),
              (status = 503, description = "LL-HLS: `UNAVAILABLE`, the segment or part a blocking request asked for did not come within 3 x TARGETDURATION; `BUSY`, 1024 requests already wait on this output", body = crate::openapi::ErrorBody)))]
async fn playlist(engine: &EngineHandle, code: &str, path: &str, request: Request) -> Response {
    if !asks_timeshift(request.uri().query()) {
        return asset(engine, path, request).await;
    }
    let Ok(code) = code.parse::<StreamCode>() else {
        return ApiError::not_found(format!("no stream playlist at /{path} to timeshift"))
            .into_response();
    };
    let query = request.uri().query().unwrap_or_default();
    let peer = client(engine, &request);
    let head = request.method() == Method::HEAD;
    match engine.timeshift(code, query, peer, true).await {
        Ok(reply) => crate::recordings::reply_response(reply, request.headers(), head),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `GET /{code}/thumbnail.jpg`: the latest thumbnail from memory; `None` when the stream makes
/// none (the asset lookup then answers).
#[utoipa::path(get, path = "/{code}/thumbnail.jpg", tag = "media", params(("code" = String, Path, description = "stream code; may contain '/'")),
    responses((status = 200, description = "The latest thumbnail of a stream with `thumbnail.enabled`: a JPEG of the playback feed's last keyframe, made every `interval_sec` (10) by one FFmpeg decode, `width` 320 by default (aspect kept), served from memory with `Cache-Control: no-cache`.", content_type = "image/jpeg"),
              (status = 404, description = "unknown stream, thumbnails off, or none made yet (no keyframe yet, or FFmpeg missing: see the stream's warnings)", body = crate::openapi::ErrorBody),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` do not hold", body = crate::openapi::ErrorBody)))]
fn thumbnail(engine: &EngineHandle, code: &str, request: &Request) -> Option<Response> {
    let code = code.parse::<StreamCode>().ok()?;
    let body = engine.thumbnail(&code)?;
    let viewer = viewer(engine, request);
    if let Err(why) = engine.check_play_signature(&code, &viewer.query, viewer.peer, false) {
        return Some(ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", why).into_response());
    }
    let asset = MediaAsset {
        content_type: "image/jpeg",
        cache_control: "no-cache",
        body,
    };
    Some(respond(
        &asset,
        request.headers(),
        request.method() == Method::HEAD,
    ))
}

/// `GET /{code}/{file}`: a packaged file from the engine's memory (playlists, MPDs, segments,
/// parts, inits), counted to the viewer's play session. LL-HLS requests that block wait here
/// (bounded) until what they ask for exists; every other request passes at once.
#[utoipa::path(get, path = "/{code}/{file}", tag = "media",
    params(("code" = String, Path, description = "stream code; may contain '/'"),
           ("file" = String, Path, description = "`index.mpd`, `seg_<n>.ts`, `seg_<n>.m4s`, `part_<n>.<i>.m4s`, `init.mp4`, `init_v.mp4`, `seg_v_<n>.m4s`, `init_a.mp4`, `seg_a_<n>.m4s`, or a ladder rung's `track_N/…` (its `track_N/index.m3u8` too)")),
    responses((status = 200, description = "DASH (`protocols.dash`): a dynamic MPD (`urn:mpeg:dash:profile:isoff-live:2011`) rendered from memory on each request, cut and numbered as the stream's HLS: one `availabilityStartTime` for the stream's life and every rung, `publishTime`, `minimumUpdatePeriod` S, `timeShiftBufferDepth` S × W, `suggestedPresentationDelay`, `UTCTiming` `urn:mpeg:dash:utc:direct:2014`; one Period (an input failover stays in it); a video AdaptationSet with one Representation per rung (codecs, bandwidth, width, height, frameRate) and one audio AdaptationSet, each Representation with a SegmentTemplate + SegmentTimeline (`$Number$`). Files beside it: `init_v.mp4`, `seg_v_<n>.m4s` (`video/mp4`), `init_a.mp4`, `seg_a_<n>.m4s` (`audio/mp4`); a ladder's under `track_N/`. MPD `Cache-Control: no-store, max-age=0, must-revalidate`, inits `no-cache`, segments immutable; `Access-Control-Allow-Origin: *`. A rung of a transcoder ladder: rung, from 1 in profile order")),
    responses((status = 200, description = "HLS media playlist of one rung of a transcoder ladder; its segments `track_N/seg_<n>.ts`, or `track_N/seg_<n>.m4s` after `track_N/init.mp4` with fMP4. Segments are immutable; `HEAD` and single byte ranges are served (206, 416)."),
              (status = 206, description = "a byte range"),
              (status = 400, description = "`INVALID_QUERY`: a malformed LL-HLS request for a part", body = crate::openapi::ErrorBody),
              (status = 403, description = "`FORBIDDEN`: this viewer's session was kicked less than `sessions.kick_ban_sec` ago, or signed play URLs are on and `exp`/`sig` do not hold", body = crate::openapi::ErrorBody),
              (status = 404, description = "`NOT_FOUND`: unknown or stopped stream, the format off, or no such file (yet)", body = crate::openapi::ErrorBody),
              (status = 503, description = "LL-HLS: `UNAVAILABLE`, a preload-hinted part did not come in time; `BUSY`, 1024 requests already wait on this output", body = crate::openapi::ErrorBody)))]
async fn asset(engine: &EngineHandle, path: &str, request: Request) -> Response {
    let method = request.method().clone();
    let query = request.uri().query().unwrap_or_default();
    let blocking = query.contains("_HLS_")
        || path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with("part_"));
    if blocking
        && let Err(error) = engine
            .media_ready(path, query, client(engine, &request))
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
    let (asset, meter) = match engine.media_for(path, &viewer(engine, &request)) {
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
            return ApiError::not_found(format!("no route or media for /{path}")).into_response();
        }
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

/// The documented media operations: the router's fallback ([`serve`]) dispatches to them, so
/// they are not axum routes; [`crate::openapi`] adds this document to the API's.
#[derive(utoipa::OpenApi)]
#[openapi(paths(playlist, asset, mpegts, thumbnail))]
pub(crate) struct MediaDoc;

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
#[utoipa::path(get, path = "/{code}/mpegts", tag = "media", params(("code" = String, Path)),
    responses((status = 200, description = "HTTP-TS: the stream's playback feed (the best rung of a ladder, else the main buffer) as one chunked MPEG-TS body that starts at a keyframe with PAT/PMT and lasts until the stream stops or the client leaves. Works for every running stream, whatever feeds it. A client slower than the stream loses its own frames and resumes at the next keyframe. Counts against the play caps (256 per stream, 4096 in total) with RTMP plays.", content_type = "video/mp2t"),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` do not hold", body = crate::openapi::ErrorBody),
              (status = 404, description = "`NOT_FOUND`: unknown or stopped stream", body = crate::openapi::ErrorBody),
              (status = 503, description = "`BUSY`: a play cap is reached", body = crate::openapi::ErrorBody)))]
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
    streamed(body, "video/mp2t")
}

/// A media body made as it is sent (chunked: no length, no range) as a response of
/// `content_type`, never cached, readable by browser players (CORS).
pub(crate) fn streamed(body: Body, content_type: &'static str) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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

/// An open file of `size` bytes as a media response of `content_type`: `HEAD`, a single
/// byte range, CORS. The body is read from the file as the client takes it
/// ([`crate::vod::file_body`]), so a response holds one chunk in memory, never the file.
pub(crate) fn file_response(
    mut file: std::fs::File,
    size: u64,
    request: &HeaderMap,
    head: bool,
    content_type: &'static str,
    cache: &'static str,
) -> Result<Response, ApiError> {
    let ranged = Ranged::of(request, usize::try_from(size).unwrap_or(usize::MAX));
    let start = match &ranged.range {
        _ if head => None,
        Some(range) => Some(*range.start() as u64),
        None if ranged.status == StatusCode::OK => Some(0),
        None => None,
    };
    let body = match start {
        Some(start) => {
            // A seek only moves the file's offset: no I/O to wait for.
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(start)).map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
            })?;
            let file = tokio::fs::File::from_std(file);
            crate::vod::file_body(tokio::io::AsyncReadExt::take(file, ranged.len as u64))
        }
        None => Body::empty(),
    };
    let mut response = Response::new(body);
    ranged.apply(&mut response, content_type, cache);
    Ok(response)
}

/// What a request's `Range` header asks of a body of `total` bytes (SPEC §HLS "HTTP": one
/// byte range; shared by the in-memory media and the files served from disk).
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
