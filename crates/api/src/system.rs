//! `/healthz`, `/readyz`, `/metrics`, `GET /config` and `POST /config/transcoder/probe`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors};
use tributary_engine::EngineHandle;

use crate::error::ApiError;
use crate::streams::{only_field, read_json};

pub(crate) async fn healthz() -> &'static str {
    "ok"
}

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

/// Bare `{version, hw_accels, ..., ports, ffmpeg, global_config}` (SPEC §API).
pub(crate) async fn config(State(engine): State<EngineHandle>) -> Response {
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
    Json(json!({
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
        "global_config": engine.config().redacted(),
    }))
    .into_response()
}
