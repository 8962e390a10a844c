//! `/healthz`, `/readyz` and `GET /config`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tributary_engine::EngineHandle;

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
    let ffmpeg = match engine.ffmpeg() {
        _ if !support.transcoder => {
            json!({"ok": false, "version": "", "errors": ["transcoding is not supported yet"]})
        }
        Ok(path) => json!({"ok": true, "path": path, "version": "", "errors": []}),
        Err(error) => json!({"ok": false, "version": "", "errors": [error]}),
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
