//! The OpenAPI 3 document (`/swagger/doc.json`), generated with utoipa from the domain types,
//! and Swagger UI at `/swagger/` (assets vendored into the binary; no network needed).

use axum::Router;
use tributary_engine::EngineHandle;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tributary",
        description = "High-availability live media server. Paths and JSON shapes follow open-streamer's."
    ),
    paths(
        list_streams,
        get_stream,
        put_stream,
        post_stream,
        patch_stream,
        delete_stream,
        restart_stream,
        switch_input,
        get_config,
        probe_ffmpeg,
        healthz,
        readyz,
        metrics,
        events,
        list_sessions,
        stream_sessions,
        stream_recordings,
        get_recording,
        recording_info,
        recording_playlist,
        recording_timeshift,
        recording_segment,
        get_session,
        kick_session,
        list_templates,
        get_template,
        put_template,
        post_template,
        delete_template,
        list_hooks,
        create_hook,
        get_hook,
        put_hook,
        delete_hook,
        test_hook,
        hook_deliveries,
        hls_playlist,
        hls_variant_playlist,
        dash_mpd,
        mpegts,
        thumbnail,
        crate::vod::list,
        crate::vod::create,
        crate::vod::get_one,
        crate::vod::put,
        crate::vod::delete,
        crate::vod::files,
        crate::vod::upload_top,
        crate::vod::upload,
        crate::vod::delete_file,
        crate::vod::raw
    ),
    components(schemas(
        tributary_domain::Stream,
        tributary_domain::Input,
        tributary_domain::InputNet,
        tributary_domain::Protocols,
        tributary_domain::Transcoder,
        tributary_domain::TranscoderMode,
        tributary_domain::TranscoderGlobal,
        tributary_domain::Decoder,
        tributary_domain::VideoSettings,
        tributary_domain::VideoProfile,
        tributary_domain::AudioSettings,
        tributary_domain::Push,
        tributary_domain::Dvr,
        tributary_domain::Watermark,
        tributary_domain::Thumbnail,
        tributary_engine::Runtime,
        tributary_engine::Ports,
        tributary_engine::SessionView,
        tributary_engine::SessionStats,
        tributary_engine::SessionProto,
        tributary_engine::CloseReason,
        SessionList,
        tributary_domain::config::ServerConfig,
        tributary_domain::template::Template,
        tributary_domain::hook::Hook,
        tributary_domain::hook::HookType,
        tributary_domain::hook::StreamCodeFilter,
        tributary_domain::hook::Delivery,
        tributary_domain::hook::DeliveryStatus,
        tributary_domain::vod::VodMount,
        tributary_domain::vod::VodEntry,
        ErrorBody,
        ErrorDetail,
        FieldDetail
    ))
)]
struct ApiDoc;

/// `{"error": {...}}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// One error.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
struct ErrorDetail {
    /// `UPPER_SNAKE` code (SPEC §API status table).
    code: String,
    /// Human-readable message.
    message: String,
    /// Failing fields (validation only).
    fields: Vec<FieldDetail>,
}

/// `GET /sessions` (bare, as open-streamer's).
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
struct SessionList {
    /// Active sessions (newest first), then closed ones (newest first), at most `limit`.
    sessions: Vec<tributary_engine::SessionView>,
    /// How many matched the filters.
    total_count: u64,
    /// Totals since start.
    stats: tributary_engine::SessionStats,
}

/// One failing field.
#[derive(utoipa::ToSchema)]
#[allow(dead_code, reason = "schema only")]
struct FieldDetail {
    /// JSON path (`inputs[1].url`).
    path: String,
    /// Why it fails.
    message: String,
}

pub(crate) fn routes() -> Router<EngineHandle> {
    Router::new().merge(SwaggerUi::new("/swagger/").url("/swagger/doc.json", ApiDoc::openapi()))
}

/// The OpenAPI document as JSON (for tests and tooling).
pub fn document() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

#[utoipa::path(get, path = "/streams", tag = "streams",
    params(("status" = Option<String>, Query, description = "active | degraded | stopped"),
           ("template" = Option<String>, Query), ("source" = Option<String>, Query, description = "config | runtime"),
           ("reveal" = Option<bool>, Query, description = "show secrets"),
           ("limit" = Option<u32>, Query, description = "page size, 1 to 1000 (default 1000)"),
           ("cursor" = Option<String>, Query, description = "the `next_cursor` of the previous page: streams after this code")),
    responses((status = 200, description = "`{data: [stream + runtime], total, next_cursor}` sorted by code; `total` counts this page, `next_cursor` (a code, or null on the last page) asks for the next; auto-published streams (`source: \"runtime\"`, not stored, their record empty but for `template`) follow the last page of stored ones"),
              (status = 400, description = "`INVALID_QUERY`: bad status, source, limit or cursor", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn list_streams() {}

#[utoipa::path(get, path = "/streams/{code}", tag = "streams",
    params(("code" = String, Path, description = "stream code; may contain '/'")),
    responses((status = 200, description = "`{data: stream + source + runtime}` with an ETag", body = tributary_domain::Stream),
              (status = 404, body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn get_stream() {}

#[utoipa::path(put, path = "/streams/{code}", tag = "streams", request_body = tributary_domain::Stream,
    params(("code" = String, Path), ("dry_run" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "replaced; `{data, warnings?}`"), (status = 201, description = "created"),
              (status = 400, body = ErrorBody), (status = 412, body = ErrorBody), (status = 413, body = ErrorBody),
              (status = 422, description = "invalid values, each naming its field; `INVALID_COPY_SHAPE` / `INVALID_MIXER_SHAPE` for a `copy://` or `mixer://` input that references its own stream, closes a cycle through the stored streams' `copy://` and `mixer://` references (the message names the path, `a → b → a`), or mixes (or ABR-copies, ABR-mixes) beside other inputs; `TEMPLATE_NOT_FOUND` naming `template` for an unknown template (a stream naming one is validated resolved over it: inputs, transcoder, protocols, ... it leaves empty come from the template)", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn put_stream() {}

#[utoipa::path(post, path = "/streams/{code}", tag = "streams", request_body = tributary_domain::Stream,
    params(("code" = String, Path), ("dry_run" = Option<bool>, Query)),
    responses((status = 200, description = "replaced"), (status = 201, description = "created"),
              (status = 400, body = ErrorBody), (status = 422, description = "invalid values, each naming its field; `INVALID_COPY_SHAPE` / `INVALID_MIXER_SHAPE` for a `copy://` or `mixer://` input that references its own stream, closes a cycle through the stored streams' `copy://` and `mixer://` references (the message names the path, `a → b → a`), or mixes (or ABR-copies, ABR-mixes) beside other inputs; `TEMPLATE_NOT_FOUND` naming `template` for an unknown template (a stream naming one is validated resolved over it: inputs, transcoder, protocols, ... it leaves empty come from the template)", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn post_stream() {}

#[utoipa::path(patch, path = "/streams/{code}", tag = "streams",
    request_body(content = Object, description = "JSON Merge Patch (RFC 7396) over the stored record"),
    params(("code" = String, Path), ("dry_run" = Option<bool>, Query), ("If-Match" = Option<String>, Header)),
    responses((status = 200, description = "patched: merged over the record as read, stored only if no write landed in between (else merged again)"),
              (status = 404, body = ErrorBody), (status = 412, description = "stale `If-Match`", body = ErrorBody),
              (status = 422, description = "as for PUT: invalid values naming the field, `INVALID_COPY_SHAPE` / `INVALID_MIXER_SHAPE` for copy and mixer shapes and cycles", body = ErrorBody),
              (status = 503, description = "`BUSY`: written concurrently 64 times during this PATCH", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn patch_stream() {}

#[utoipa::path(delete, path = "/streams/{code}", tag = "streams", params(("code" = String, Path)),
    responses((status = 204, description = "deleted (also when unknown)"),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn delete_stream() {}

#[utoipa::path(post, path = "/streams/{code}/restart", tag = "streams", params(("code" = String, Path)),
    responses((status = 200, description = "`{data: {status: \"started\"}}`; an auto-published (runtime) stream is stopped instead, and its encoder's reconnect creates it again"), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn restart_stream() {}

#[utoipa::path(post, path = "/streams/{code}/inputs/switch", tag = "streams", params(("code" = String, Path)),
    request_body(content = Object, description = "`{\"priority\": N}` pins a manual override; `{\"priority\": null}` clears it"),
    responses((status = 200, description = "`{data: {status: \"switched\"}}` once the new input's first keyframe is on air"),
              (status = 202, description = "`{data: {status: \"pending\"}}`: not committed within 5 s; see `runtime.switches`"),
              (status = 404, description = "unknown stream", body = ErrorBody),
              (status = 409, description = "`SWITCH_FAILED`: not running, or the input is degraded, stopped or waiting for its publisher", body = ErrorBody),
              (status = 422, description = "`INVALID_INPUT_PRIORITY`: no such input; `INVALID_FIELD`/`UNKNOWN_FIELD`: bad body", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn switch_input() {}

#[utoipa::path(get, path = "/config", tag = "system",
    responses((status = 200, description = "bare `{version, ..., ports, ffmpeg, global_config}`; `ffmpeg` is `{ok, path (the resolved binary, when found), version, errors}` from the boot probe of `transcoder.ffmpeg_path` (see `POST /config/transcoder/probe`)"),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn get_config() {}

#[utoipa::path(post, path = "/config/transcoder/probe", tag = "system",
    request_body(content = Object, description = "`{\"ffmpeg_path\": \"/usr/bin/ffmpeg\"}`; `\"\"` or absent: `ffmpeg` on `PATH`. Runs the binary with `-version`, `-encoders`, `-muxers`, `-filters` and `-hwaccels` (5 s each, 15 s in all); running streams are not affected."),
    responses((status = 200, description = "usable: bare `{ok: true, path (the binary found), version, encoders: {required: [libx264, aac], optional: [libx265, libopus, libmp3lame, ac3, and h264_nvenc, hevc_nvenc with an NVIDIA device; those present]}, muxers: [mpegts], filters: [drawtext, overlay, movie, colorchannelmixer; those present], hwaccels: [the build's -hwaccels], warnings: [optional features missing], errors: []}`"),
              (status = 502, description = "`FFMPEG_UNUSABLE`: not found (the message names the path and the PATH searched), not FFmpeg, a required encoder or muxer missing, or too slow; `error.probe` holds the whole report", body = ErrorBody),
              (status = 400, description = "`EMPTY_BODY` / `INVALID_BODY`", body = ErrorBody),
              (status = 422, description = "`UNKNOWN_FIELD` / `INVALID_FIELD` at `ffmpeg_path`", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 403, description = "`CROSS_SITE`: a foreign `Origin`, `Sec-Fetch-Site: cross-site`, or (loopback without a token) a `Host` that is not loopback or in `server.allowed_hosts`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn probe_ffmpeg() {}

#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "ok")))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "ready"), (status = 503, description = "`{ready: false, reasons}`")))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text exposition (format 0.0.4) of SPEC §Metrics, read at the request: per stream `tributary_stream_status` (0 stopped, 1 active, 2 degraded), `tributary_stream_start_time_seconds`, `tributary_ingestor_bytes_total` / `_packets_total` {protocol}, `tributary_ingestor_errors_total` {reason: reconnect, open, failover}, `tributary_manager_input_health` and `tributary_input_cc_errors_total` {input_priority}, `tributary_manager_failovers_total` and the `tributary_failover_gap_seconds` histogram {reason}, `tributary_buffer_drops_total` {buffer, subscriber}, `tributary_publisher_segments_total` {format, profile}, `tributary_publisher_push_state` {dest_url, redacted}, `tributary_transcoder_*` {profile}, `tributary_playback_connections` and `tributary_playback_rejected_total` {proto, reason}; without a stream label `tributary_publish_rejected_total` {proto, reason}, `tributary_events_dropped_total` {subscriber}, per webhook `tributary_hooks_delivery_total` {hook_id, hook_type, outcome: delivered, failed}, `tributary_hooks_events_dropped_total` and `tributary_hooks_batch_queue_depth` {hook_id}, and `process_*`. A stream's series go with it (its running ones when it stops, the rest when it is deleted); no label holds a secret.", content_type = "text/plain; version=0.0.4"),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 500, description = "`STORE_ERROR`: the streams could not be listed", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn metrics() {}

#[utoipa::path(get, path = "/events", tag = "system",
    params(("since" = Option<u64>, Query, description = "return events with a larger `seq` (default 0: every event kept; the server keeps the newest 1024)"),
           ("limit" = Option<u32>, Query, description = "events per answer, 1–1000 (default 100)"),
           ("timeout_sec" = Option<u32>, Query, description = "when no event is newer than `since`, wait up to this long for one (long-poll), 0–60 (default 25)")),
    responses((status = 200, description = "`{data: [event], total, next_since, missed, reset}`. Each event is SPEC §Events' envelope `{id (UUIDv7), seq, type, stream_code, occurred_at, payload}`, oldest first, in `seq` order (a stream's events in the order they happened); `input.failover` carries `{from, to, reason, detail, gap_ms}`. Pass `next_since` back as `since`. `missed`: events after `since` no longer kept; `reset`: `since` was ahead of every event (the server restarted, numbering began again) and the page starts from the oldest kept."),
              (status = 400, description = "`INVALID_QUERY` naming the parameter", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn events() {}

#[utoipa::path(get, path = "/sessions", tag = "sessions",
    params(("stream" = Option<String>, Query, description = "only this stream's sessions"),
           ("proto" = Option<String>, Query, description = "hls | dash | rtmp | rtsp | srt | mpegts"),
           ("status" = Option<String>, Query, description = "active | closed (default both; closed sessions are kept 10 min, the last 1000)"),
           ("limit" = Option<u32>, Query, description = "1–1000 (default 100)")),
    responses((status = 200, description = "Bare `{sessions, total_count, stats{active, opened_total, closed_total, idle_closed_total, kicked_total}}`. HLS/DASH viewers are one session per fingerprint (stream, IP, user agent, `?token=`); RTMP, RTSP, SRT and HTTP-TS plays one per connection, never reaped while connected.", body = SessionList),
              (status = 400, description = "`INVALID_QUERY` naming the parameter", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn list_sessions() {}

#[utoipa::path(get, path = "/streams/{code}/sessions", tag = "sessions",
    params(("code" = String, Path, description = "stream code; may contain '/'"),
           ("proto" = Option<String>, Query), ("status" = Option<String>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, description = "as `GET /sessions`, for this stream", body = SessionList),
              (status = 400, body = ErrorBody), (status = 404, description = "no such stream", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn stream_sessions() {}

#[utoipa::path(get, path = "/streams/{code}/recordings", tag = "dvr",
    params(("code" = String, Path, description = "stream code; may contain '/'")),
    responses((status = 200, description = "`{data: [Recording], total}`: the stream's recording (its id is the stream code) — `id`, `stream_code`, `started_at`, `stopped_at` (when stopped), `status` (`recording`, `stopped`, `failed`), `segment_dir` — or `[]`", body = Object),
              (status = 404, description = "no such stream", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn stream_recordings() {}

#[utoipa::path(get, path = "/recordings/{rid}", tag = "dvr",
    params(("rid" = String, Path, description = "recording id (the stream code; may contain '/')")),
    responses((status = 200, description = "`{data: Recording}`", body = Object),
              (status = 404, description = "`NOT_FOUND`: no recording", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn get_recording() {}

#[utoipa::path(get, path = "/recordings/{rid}/info", tag = "dvr",
    params(("rid" = String, Path, description = "recording id")),
    responses((status = 200, description = "`{data: {stream_code, status, dvr_range{started_at, last_segment_at}, gaps[{from, to, duration}], segment_count, total_size_bytes, total_duration_sec}}`", body = Object),
              (status = 404, description = "`NOT_FOUND` / `NO_DATA`: no recording, or no segment yet", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn recording_info() {}

#[utoipa::path(get, path = "/recordings/{rid}/playlist.m3u8", tag = "dvr",
    params(("rid" = String, Path, description = "recording id")),
    responses((status = 200, description = "HLS playlist built from the segment log: `EVENT` while recording, `VOD` with `#EXT-X-ENDLIST` when stopped; `#EXT-X-PROGRAM-DATE-TIME` first and after each discontinuity", content_type = "application/vnd.apple.mpegurl", body = String),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` are missing, expired or wrong (a signed playlist carries them into its segment URIs)", body = ErrorBody),
              (status = 404, description = "`NOT_FOUND` / `NO_SEGMENTS`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn recording_playlist() {}

#[utoipa::path(get, path = "/recordings/{rid}/timeshift.m3u8", tag = "dvr",
    params(("rid" = String, Path, description = "recording id"),
           ("from" = Option<String>, Query, description = "window start: RFC 3339 or Unix seconds, not in the future (give `from` or `offset_sec`)"),
           ("offset_sec" = Option<f64>, Query, description = "window start in seconds: N >= 0 after the first segment's start, N < 0 before the newest segment's end"),
           ("duration" = Option<f64>, Query, description = "window length in seconds, > 0; absent or over 86400: 24 h")),
    responses((status = 200, description = "VOD playlist (`#EXT-X-ENDLIST`) of the segments from the first that ends after the window's start to the last that starts before its end (clipped to the recording); `#EXT-X-PROGRAM-DATE-TIME` first and after each discontinuity; segment URIs beside it (`NNNNNN.ts`, with `exp`/`sig` when play URLs are signed)", content_type = "application/vnd.apple.mpegurl", body = String),
              (status = 400, description = "`INVALID_FROM`, `INVALID_OFFSET`, `INVALID_DURATION`, `INVALID_QUERY` (neither or both of `from` and `offset_sec`), naming the parameter", body = ErrorBody),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` are missing, expired or wrong", body = ErrorBody),
              (status = 404, description = "`NOT_FOUND`: no recording; `NO_DATA`: no segment yet, or none in the window (named)", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn recording_timeshift() {}

#[utoipa::path(get, path = "/recordings/{rid}/{segment}", tag = "dvr",
    params(("rid" = String, Path, description = "recording id"),
           ("segment" = String, Path, description = "`NNNNNN.ts` (six or more digits), listed in the recording's log")),
    responses((status = 200, description = "the segment (`HEAD` and `Range` supported)", content_type = "video/mp2t", body = Vec<u8>),
              (status = 206, description = "a byte range"),
              (status = 403, description = "`FORBIDDEN`: signed play URLs are on and `exp`/`sig` are missing, expired or wrong", body = ErrorBody),
              (status = 404, description = "not one of the recording's segments", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn recording_segment() {}

#[utoipa::path(get, path = "/sessions/{id}", tag = "sessions",
    params(("id" = String, Path)),
    responses((status = 200, description = "the bare session, active or closed in the last 10 minutes", body = tributary_engine::SessionView),
              (status = 404, body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn get_session() {}

#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions",
    params(("id" = String, Path)),
    responses((status = 204, description = "kicked: closed as `kicked`; a connection (RTMP, RTSP, SRT, HTTP-TS) is disconnected at once, an HLS/DASH fingerprint gets 403 on its requests for `sessions.kick_ban_sec` (60 s)"),
              (status = 404, description = "unknown or already closed", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn kick_session() {}
#[utoipa::path(get, path = "/templates", tag = "templates",
    params(("reveal" = Option<bool>, Query, description = "show secrets")),
    responses((status = 200, description = "`{data: [template], total}` sorted by code; `stream_key`, URL passwords, secret query values and push URLs masked `****` unless `reveal` (writing them back keeps the stored values)", body = [tributary_domain::template::Template]),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn list_templates() {}

#[utoipa::path(get, path = "/templates/{code}", tag = "templates",
    params(("code" = String, Path, description = "template code `[A-Za-z0-9_-]{1,128}`"), ("reveal" = Option<bool>, Query, description = "show secrets")),
    responses((status = 200, description = "`{data: template}`", body = tributary_domain::template::Template),
              (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn get_template() {}

#[utoipa::path(put, path = "/templates/{code}", tag = "templates",
    params(("code" = String, Path, description = "template code `[A-Za-z0-9_-]{1,128}`; a `code` in the body is ignored")),
    request_body = tributary_domain::template::Template,
    responses((status = 200, description = "`{data: template}` replaced (prefixes without a trailing `/`); every running stream that names it, and every runtime stream made from it, is updated through the hot-reload diff (only what changed restarts); a dependent that failed to update is in `warnings`", body = tributary_domain::template::Template),
              (status = 201, description = "`{data: template}` created", body = tributary_domain::template::Template),
              (status = 409, description = "`PREFIX_OVERLAP`: a prefix equals, or is a path-prefix of, another template's (or the reverse); `fields[].path` names `prefixes[i]`, `conflicting_with` the other template and `overlaps` its prefix", body = ErrorBody),
              (status = 422, description = "`UNKNOWN_FIELD` / `INVALID_FIELD` / `INVALID_CODE` / `INVALID_PREFIX` (`[A-Za-z0-9_/-]{1,128}`, no leading `/`, no `//`, no duplicate) and every stream rule (`INVALID_INPUT_URL`, `INVALID_WATERMARK`, ...), naming the field as for streams", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn put_template() {}

#[utoipa::path(post, path = "/templates/{code}", tag = "templates",
    params(("code" = String, Path, description = "template code")),
    request_body = tributary_domain::template::Template,
    responses((status = 200, description = "as PUT: create or replace", body = tributary_domain::template::Template),
              (status = 201, description = "created", body = tributary_domain::template::Template),
              (status = 409, description = "`PREFIX_OVERLAP` (as PUT)", body = ErrorBody),
              (status = 422, description = "validation (as PUT)", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn post_template() {}

#[utoipa::path(delete, path = "/templates/{code}", tag = "templates",
    params(("code" = String, Path, description = "template code")),
    responses((status = 204, description = "deleted (also when absent)"),
              (status = 409, description = "`TEMPLATE_IN_USE`: stored streams name it or runtime streams were made from it; `streams` lists them", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn delete_template() {}

#[utoipa::path(get, path = "/hooks", tag = "hooks",
    params(("reveal" = Option<bool>, Query, description = "show secrets")),
    responses((status = 200, description = "`{data: [hook], total}` sorted by id; `secret`, and the target URL's password and secret-named query values, masked `****` unless `reveal` (writing them back keeps the stored values)", body = [tributary_domain::hook::Hook]),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody),
              (status = 500, description = "`STORE_ERROR`", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn list_hooks() {}

#[utoipa::path(post, path = "/hooks", tag = "hooks",
    request_body = tributary_domain::hook::Hook,
    responses((status = 201, description = "`{data: hook}` as stored (secret masked); its batcher runs at once", body = tributary_domain::hook::Hook),
              (status = 400, description = "`INVALID_BODY` / `EMPTY_BODY`: not JSON", body = ErrorBody),
              (status = 409, description = "`ALREADY_EXISTS`: the id is taken", body = ErrorBody),
              (status = 422, description = "`UNKNOWN_FIELD` / `INVALID_FIELD` naming the field: id `[A-Za-z0-9_-]{1,64}`; http → `target` an http(s) URL; file → `target` a path inside `hooks.file_root` (symlinks resolved); `max_retries` 0–10; SPEC event types; not both `stream_codes.only` and `except`", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn create_hook() {}

#[utoipa::path(get, path = "/hooks/{hid}", tag = "hooks",
    params(("hid" = String, Path, description = "hook id"), ("reveal" = Option<bool>, Query, description = "show the secret")),
    responses((status = 200, description = "`{data: hook}`", body = tributary_domain::hook::Hook),
              (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn get_hook() {}

#[utoipa::path(put, path = "/hooks/{hid}", tag = "hooks",
    params(("hid" = String, Path, description = "hook id; the body's `id`, if any, must match")),
    request_body = tributary_domain::hook::Hook,
    responses((status = 200, description = "`{data: hook}` replaced; a running batcher takes the new settings at once; a `secret` of `****` keeps the stored one", body = tributary_domain::hook::Hook),
              (status = 201, description = "`{data: hook}` created", body = tributary_domain::hook::Hook),
              (status = 422, description = "validation, naming the field (as POST)", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn put_hook() {}

#[utoipa::path(delete, path = "/hooks/{hid}", tag = "hooks",
    params(("hid" = String, Path, description = "hook id")),
    responses((status = 204, description = "deleted (also when absent); events it still held are dropped"),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn delete_hook() {}

#[utoipa::path(post, path = "/hooks/{hid}/test", tag = "hooks",
    params(("hid" = String, Path, description = "hook id")),
    responses((status = 200, description = "`{data: {status: \"delivered\", at, http_status, duration_ms}}` once one real try of a synthetic `stream.created` (stream `_tributary_test_`, payload `{test: true, hook_id}`) succeeded; the try is in the delivery log"),
              (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
              (status = 502, description = "`DELIVERY_FAILED` with the try's error (connection refused, `blocked by ssrf_guard: <ip>`, HTTP status, timeout, file outside the root), or hooks are off (`hooks: null`)", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn test_hook() {}

#[utoipa::path(get, path = "/hooks/{hid}/deliveries", tag = "hooks",
    params(("hid" = String, Path, description = "hook id")),
    responses((status = 200, description = "`{data: [attempt], total}`: the last 100 delivery attempts, newest first (kept in the store across restarts): `{at, event_ids, status: delivered | failed, http_status, error, duration_ms, attempt}`, plus a `dropped` entry (attempt 0) naming events a full queue dropped", body = [tributary_domain::hook::Delivery]),
              (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
              (status = 401, description = "`UNAUTHORIZED`: no valid bearer token from a non-loopback peer", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn hook_deliveries() {}

#[utoipa::path(get, path = "/{code}/index.m3u8", tag = "media", params(("code" = String, Path)),
    responses((status = 200, description = "HLS: the media playlist of a stream without a transcoder, or the ABR master playlist of a ladder (one `#EXT-X-STREAM-INF` per rung with a segment: BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION, CODECS, FRAME-RATE; URIs `track_N/index.m3u8`). Segments beside it: `seg_<n>.ts` (`video/mp2t`, `#EXT-X-VERSION:3`), or with `publisher.hls.segment_format` `fmp4` (or `auto` and an H.265 or Opus stream) fMP4: `seg_<n>.m4s` (`video/mp4`, `#EXT-X-VERSION:7`) after `#EXT-X-MAP:URI=\"init.mp4\"` (`init_<session>.mp4` once a codec change needs a new init; served with `Cache-Control: no-cache`). Both formats cut at the same keyframes and number alike. LL-HLS (`publisher.hls.low_latency` with fMP4): `#EXT-X-VERSION:9`, `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=<6 x target>,PART-HOLD-BACK=<3 x part>`, `#EXT-X-PART-INF`, `#EXT-X-PART` (`part_<n>.<i>.m4s`, `video/mp4`, immutable) for the last 3 segments and the one being cut, `#EXT-X-PRELOAD-HINT` for the next part (a request for it is held until it exists), `#EXT-X-RENDITION-REPORT` per other rung in a ladder's variants; `?_HLS_msn=<n>[&_HLS_part=<i>]` holds the request until that segment or part is listed (at most 3 x TARGETDURATION), `?_HLS_skip=YES` (or `v2`) serves the delta update (`#EXT-X-SKIP`). Timeshift from the stream's DVR recording: `?from=<RFC 3339 or Unix s>[&dur=<s>]` or `?ago=<s>[&dur=<s>]` is a VOD playlist of that window (at most 24 h) with segment URIs `/recordings/{code}/NNNNNN.ts`; `?delay=<s>` a live playlist of the last 12 segments that had ended that many seconds ago.", content_type = "application/vnd.apple.mpegurl"),
              (status = 400, description = "`INVALID_QUERY`: a timeshift value that is not non-negative seconds (`ago`, `dur` > 0, `delay` <= 86400) or an RFC 3339 / Unix-seconds `from` not in the future, or a malformed `_HLS_msn`, `_HLS_part` (without `_HLS_msn`) or `_HLS_skip`, or `_HLS_msn` more than 2 segments past the last one", body = ErrorBody),
              (status = 403, description = "`FORBIDDEN`: this viewer's session (fingerprint) was kicked less than `sessions.kick_ban_sec` ago; or signed play URLs are on and `exp`/`sig` do not hold", body = ErrorBody),
              (status = 404, description = "unknown or stopped stream, HLS off, or no segment yet; with timeshift parameters: `NOT_FOUND` the stream has no recording, `NO_DATA` none in the window"),
              (status = 503, description = "LL-HLS: `UNAVAILABLE`, the segment or part a blocking request asked for did not come within 3 x TARGETDURATION; `BUSY`, 1024 requests already wait on this output", body = ErrorBody)))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn hls_playlist() {}

#[utoipa::path(get, path = "/{code}/track_{n}/index.m3u8", tag = "media",
    params(("code" = String, Path), ("n" = u16, Path, description = "rung, from 1 in profile order")),
    responses((status = 200, description = "HLS media playlist of one rung of a transcoder ladder; its segments `track_N/seg_<n>.ts`, or `track_N/seg_<n>.m4s` after `track_N/init.mp4` with fMP4", content_type = "application/vnd.apple.mpegurl"),
              (status = 404, description = "no such rung, or no segment yet")))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn hls_variant_playlist() {}

#[utoipa::path(get, path = "/{code}/index.mpd", tag = "media", params(("code" = String, Path)),
    responses((status = 200, description = "DASH (`protocols.dash`): a dynamic MPD (`urn:mpeg:dash:profile:isoff-live:2011`) rendered from memory on each request, cut and numbered as the stream's HLS: one `availabilityStartTime` for the stream's life and every rung, `publishTime`, `minimumUpdatePeriod` S, `timeShiftBufferDepth` S × W, `suggestedPresentationDelay`, `UTCTiming` `urn:mpeg:dash:utc:direct:2014`; one Period (an input failover stays in it); a video AdaptationSet with one Representation per rung (codecs, bandwidth, width, height, frameRate) and one audio AdaptationSet, each Representation with a SegmentTemplate + SegmentTimeline (`$Number$`). Files beside it: `init_v.mp4`, `seg_v_<n>.m4s` (`video/mp4`), `init_a.mp4`, `seg_a_<n>.m4s` (`audio/mp4`); a ladder's under `track_N/`. MPD `Cache-Control: no-store, max-age=0, must-revalidate`, inits `no-cache`, segments immutable; `Access-Control-Allow-Origin: *`.", content_type = "application/dash+xml"),
              (status = 404, description = "unknown or stopped stream, DASH off, or no segment yet")))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn dash_mpd() {}

#[utoipa::path(get, path = "/{code}/mpegts", tag = "media", params(("code" = String, Path)),
    responses((status = 200, description = "HTTP-TS: the stream's playback feed (the best rung of a ladder, else the main buffer) as one chunked MPEG-TS body that starts at a keyframe with PAT/PMT and lasts until the stream stops or the client leaves. Works for every running stream, whatever feeds it. A client slower than the stream loses its own frames and resumes at the next keyframe. Counts against the play caps (256 per stream, 4096 in total) with RTMP plays.", content_type = "video/mp2t"),
              (status = 404, description = "unknown or stopped stream"),
              (status = 503, description = "`BUSY`: a play cap is reached")))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn mpegts() {}

#[utoipa::path(get, path = "/{code}/thumbnail.jpg", tag = "media", params(("code" = String, Path)),
    responses((status = 200, description = "The latest thumbnail of a stream with `thumbnail.enabled`: a JPEG of the playback feed's last keyframe, made every `interval_sec` (10) by one FFmpeg decode, `width` 320 by default (aspect kept), served from memory with `Cache-Control: no-cache`.", content_type = "image/jpeg"),
              (status = 404, description = "unknown stream, thumbnails off, or none made yet (no keyframe yet, or FFmpeg missing: see the stream's warnings)")))]
#[allow(dead_code, reason = "OpenAPI description of a routed handler")]
fn thumbnail() {}
