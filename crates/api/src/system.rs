//! `/healthz`, `/readyz`, `/metrics`, `GET/POST /config`, `GET /config/defaults` and
//! `POST /config/transcoder/probe`.

use axum::Json;
use axum::body::Body;
use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors};
use tributary_engine::{ConfigWriteError, EngineHandle};

use crate::error::ApiError;
use crate::streams::{flag, only_field, read_json};

#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, description = "ok")))]
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, description = "ready"), (status = 503, description = "`{ready: false, reasons}`")))]
pub(crate) async fn readyz(State(engine): State<EngineHandle>) -> Response {
    match engine.readiness() {
        Ok(()) => Json(json!({"ready": true})).into_response(),
        Err(reasons) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reasons": reasons})),
        )
            .into_response(),
    }
}

/// `GET /metrics` (SPEC §Metrics): the Prometheus text exposition, read at this request.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, description = "Prometheus text exposition (format 0.0.4) of SPEC §Metrics, read at the request: per stream `tributary_stream_status` (0 stopped, 1 active, 2 degraded), `tributary_stream_start_time_seconds`, `tributary_ingestor_bytes_total` / `_packets_total` {protocol}, `tributary_ingestor_errors_total` {reason: reconnect, open, failover}, `tributary_manager_input_health` and `tributary_input_cc_errors_total` {input_priority}, `tributary_manager_failovers_total` and the `tributary_failover_gap_seconds` histogram {reason}, `tributary_buffer_drops_total` {buffer, subscriber}, `tributary_publisher_segments_total` {format, profile}, `tributary_publisher_push_state` {dest_url, redacted}, `tributary_transcoder_*` {profile}, `tributary_playback_connections` and `tributary_playback_rejected_total` {proto, reason}; without a stream label `tributary_publish_rejected_total` {proto, reason}, `tributary_events_dropped_total` {subscriber}, per webhook `tributary_hooks_delivery_total` {hook_id, hook_type, outcome: delivered, failed}, `tributary_hooks_events_dropped_total` and `tributary_hooks_batch_queue_depth` {hook_id}, and `process_*`. A stream's series go with it (its running ones when it stops, the rest when it is deleted); no label holds a secret.", content_type = "text/plain; version=0.0.4"),
              crate::openapi::AdminRefusal,
              (status = 500, description = "`STORE_ERROR`: the streams could not be listed", body = crate::openapi::ErrorBody)))]
pub(crate) async fn metrics(State(engine): State<EngineHandle>) -> Response {
    match engine.metrics().await {
        Ok(text) => (
            [(header::CONTENT_TYPE, tributary_engine::METRICS_CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// `POST /config/transcoder/probe` (SPEC §API): body `{ffmpeg_path}` (`""` or absent: `ffmpeg`
/// on `PATH`). 200 with the report when the binary is usable for transcoding, 502
/// `FFMPEG_UNUSABLE` naming why otherwise (the report rides along in `error.probe`).
#[utoipa::path(post, path = "/config/transcoder/probe", tag = "system",
    request_body(content = Object, description = "`{\"ffmpeg_path\": \"/usr/bin/ffmpeg\"}`; `\"\"` or absent: `ffmpeg` on `PATH`. Runs the binary with `-version`, `-encoders`, `-muxers`, `-filters` and `-hwaccels` (5 s each, 15 s in all); running streams are not affected."),
    responses((status = 200, description = "usable: bare `{ok: true, path (the binary found), version, encoders: {required: [libx264, aac], optional: [libx265, libopus, libmp3lame, ac3, and h264_nvenc, hevc_nvenc with an NVIDIA device; those present]}, muxers: [mpegts], filters: [drawtext, overlay, movie, colorchannelmixer; those present], hwaccels: [the build's -hwaccels], warnings: [optional features missing], errors: []}`"),
              (status = 502, description = "`FFMPEG_UNUSABLE`: not found (the message names the path and the PATH searched), not FFmpeg, a required encoder or muxer missing, or too slow; `error.probe` holds the whole report", body = crate::openapi::ErrorBody),
              crate::openapi::BadBody,
              (status = 422, description = "`UNKNOWN_FIELD` / `INVALID_FIELD` at `ffmpeg_path`", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn probe_ffmpeg(State(engine): State<EngineHandle>, body: Body) -> Response {
    match probe_path(body).await {
        Err(error) => error.into_response(),
        Ok(path) => {
            let report = engine.probe_ffmpeg(&path).await;
            if report["ok"] == true {
                return Json(report).into_response();
            }
            let reasons: Vec<&str> = report["errors"]
                .as_array()
                .map(|errors| errors.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let message = format!("FFmpeg is unusable: {}", reasons.join("; "));
            let error = json!({"code": "FFMPEG_UNUSABLE", "message": message, "probe": report});
            (StatusCode::BAD_GATEWAY, Json(json!({"error": error}))).into_response()
        }
    }
}

/// The `ffmpeg_path` of a probe body: an object with at most that string.
async fn probe_path(body: Body) -> Result<String, ApiError> {
    let body = read_json(body).await?;
    match only_field(&body, "ffmpeg_path", "{\"ffmpeg_path\": \"...\"}")? {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(path)) if path.len() <= 4096 && !path.contains('\0') => Ok(path.clone()),
        Some(other) => Err(ApiError::validation(ValidationErrors(vec![
            FieldError::new(
                "ffmpeg_path",
                ErrorCode::InvalidField,
                format!("expected a path (a string of at most 4096 bytes), got {other}"),
            ),
        ]))),
    }
}

/// Bare `{version, hw_accels, ..., ports, ffmpeg, global_config}` (SPEC §API);
/// `?explain=true` adds `sources{path: default|file|store|env}`, `?reveal=true` unmasks
/// secrets.
#[utoipa::path(get, path = "/config", tag = "system",
    params(("explain" = Option<bool>, Query, description = "add `sources{path: default|file|store|env}`: which layer set each field"),
           ("reveal" = Option<bool>, Query, description = "show secrets instead of `****`")),
    responses((status = 200, description = "bare `{version, ..., ports, ffmpeg, global_config}`; `ffmpeg` is `{ok, path (the resolved binary, when found), version, errors}` from the boot probe of `transcoder.ffmpeg_path` (see `POST /config/transcoder/probe`)"),
              (status = 400, description = "`INVALID_QUERY`: `explain` or `reveal` is not a boolean", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn config(
    State(engine): State<EngineHandle>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let (explain, reveal) = match (flag(&query, "explain"), flag(&query, "reveal")) {
        (Ok(explain), Ok(reveal)) => (explain, reveal),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let support = engine.support();
    let mut outputs = Vec::new();
    for (name, on) in [
        ("hls", support.hls),
        ("dash", support.dash),
        ("rtmp", support.rtmp),
        ("rtsp", support.rtsp),
        ("srt", support.srt),
    ] {
        if on {
            outputs.push(name);
        }
    }
    let ffmpeg = match (engine.ffmpeg_probe(), engine.ffmpeg()) {
        _ if !support.transcoder => {
            json!({"ok": false, "version": "", "errors": ["transcoding is not supported yet"]})
        }
        (Some(probe), _) => json!({
            "ok": probe["ok"],
            "path": probe["path"],
            "version": probe["version"],
            "errors": probe["errors"],
        }),
        (None, Ok(path)) => json!({"ok": true, "path": path, "version": "", "errors": []}),
        (None, Err(error)) => json!({"ok": false, "version": "", "errors": [error]}),
    };
    let config = engine.config();
    let global_config = if reveal {
        (*config).clone()
    } else {
        config.redacted()
    };
    let mut body = json!({
        "version": {
            "version": env!("CARGO_PKG_VERSION"),
            "commit": option_env!("TRIBUTARY_COMMIT").unwrap_or(""),
            "built_at": option_env!("TRIBUTARY_BUILT_AT").unwrap_or(""),
        },
        "hw_accels": ["none"],
        "video_codecs": ["h264", "h265"],
        "audio_codecs": ["aac", "mp2", "mp3", "ac3", "eac3", "opus"],
        "output_protocols": outputs,
        "stream_statuses": ["active", "degraded", "stopped"],
        "watermark_types": ["text", "image"],
        "watermark_positions": ["top_left", "top_right", "bottom_left", "bottom_right", "center", "custom"],
        "ports": engine.ports(),
        "ffmpeg": ffmpeg,
        "global_config": global_config,
    });
    if explain {
        body["sources"] = json!(engine.config_sources().await);
    }
    Json(body).into_response()
}

/// `POST /config` (SPEC §API, §Config): a partial configuration merged over the effective
/// one, persisted (only the fields it sets) and applied without a restart. 200 bare
/// `{global_config, ports}`; 409 `PINNED_BY_ENV` naming each field the environment or the
/// command line sets; 422 naming every invalid field, every field this build cannot apply to
/// a running server yet (`UNSUPPORTED`), and a listener that cannot bind its new address.
#[utoipa::path(post, path = "/config", tag = "system",
    request_body(content = Object, description = "a partial global configuration, merged over the effective one (objects key by key, other values replace); `null` on `sessions` or a listener switches it off (on `hooks`: `UNSUPPORTED`, a restart); `\"****\"` keeps a secret"),
    responses((status = 200, description = "bare `{global_config, ports}` after the change is stored and applied: listeners and `server.http_addr` rebind (the old RTMP, RTSP and SRT listeners drain 10 s), `manager.*`, `hooks.*` (running batchers included), `security.*` but `unsafe_extra_args`, `log.*`, `server.allowed_hosts`, `sessions.*`, `publisher.hls.live_window`/`live_history` and `publisher.dash.*` but `segment_sec` (running packagers included) at once, `publisher.hls.live_segment_sec` from each running packager's next keyframe (one discontinuity, numbers continuing; transcoders whose keyframe interval derives from it restarted first, and only those), `publisher.dash.segment_sec` from each running DASH packager's next keyframe in a new MPD Period (numbers continuing; a ladder of several rungs restarts its packagers instead; no transcoder restarts), `transcoder.ffmpeg_path` probed first and then only the running transcoders restarted with it, `buffer.capacity` for buffers created from then on"),
              (status = 409, description = "`PINNED_BY_ENV`: `fields[]` names each field a `TRIBUTARY_*` variable or a flag sets", body = crate::openapi::ErrorBody),
              (status = 422, description = "`FFMPEG_UNUSABLE`: a new `transcoder.ffmpeg_path` whose probe failed (the message says why; the old binary stays) / `UNKNOWN_FIELD` / `INVALID_FIELD` / `UNSUPPORTED` (not applicable without a restart yet: `publisher.hls.*` but `live_segment_sec`/`live_window`/`live_history`, `transcoder.*` but `ffmpeg_path`, `ingestor.*`, `coordinator.*`, `dvr.*`, `server.cors`/`admin_timeout_sec`, `security.unsafe_extra_args`, `hooks` switched on or off), every failing `fields[].path`; a listener that cannot bind its new address is named here and keeps its old one", body = crate::openapi::ErrorBody),
              (status = 500, description = "`STORE_ERROR`: the layer could not be stored", body = crate::openapi::ErrorBody),
              crate::openapi::BadBody,
              crate::openapi::AdminRefusal))]
pub(crate) async fn post_config(State(engine): State<EngineHandle>, body: Body) -> Response {
    let patch = match read_json(body).await {
        Ok(patch) => patch,
        Err(e) => return e.into_response(),
    };
    match engine.write_config(patch).await {
        Ok(config) => Json(json!({
            "global_config": config.redacted(),
            "ports": engine.ports(),
        }))
        .into_response(),
        Err(ConfigWriteError::Pinned(errors)) => ApiError::new(
            StatusCode::CONFLICT,
            "PINNED_BY_ENV",
            format!("set by the environment or the command line: {errors}"),
        )
        .with_fields(errors.0)
        .into_response(),
        Err(ConfigWriteError::Invalid(errors)) => ApiError::validation(errors).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "STORE_ERROR",
            e.to_string(),
        )
        .into_response(),
    }
}

/// `GET /config/defaults` (SPEC §API): the built-in defaults as UI placeholders, bare and
/// deterministic.
#[utoipa::path(get, path = "/config/defaults", tag = "system",
    responses((status = 200, description = "bare defaults grouped as open-streamer's: buffer, manager, publisher, hook, push, dvr, transcoder (with `encoder_by_codec_hw`), listeners, ingestor, and sessions, server, security, log"),
              crate::openapi::AdminRefusal))]
pub(crate) async fn config_defaults() -> Response {
    Json(tributary_domain::config::defaults_document()).into_response()
}
