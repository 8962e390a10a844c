//! `POST /debug/fault` (SPEC §API): kills one input connection or one FFmpeg process of a
//! running stream, so tests drive failover and transcoder supervision on a real server.
//!
//! The route is registered always (and documented), but answers only when
//! `debug.fault_injection` is true, read from the configuration at each request so a config
//! write switches it at once. Off, it answers 404 `NOT_FOUND` naming the flag: a production
//! server behaves as if the route were absent, and an operator who forgot the flag learns
//! which one. It sits behind the admin gate like every admin route (401/403 come first).
//! The body is parsed strictly here, at the edge; the engine's `fault` module does the kill.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use tributary_domain::StreamCode;
use tributary_domain::validate::{ErrorCode, FieldError, ValidationErrors, rung_index};
use tributary_engine::{EngineHandle, FaultError, FaultTarget, Killed};

use crate::error::ApiError;
use crate::streams::{optional_priority, read_json};

/// The fields a fault body may hold.
const FIELDS: &[&str] = &["stream", "target", "priority", "profile"];

/// `POST /debug/fault` with `{stream, target: "input"|"transcoder", priority?, profile?}`.
#[utoipa::path(post, path = "/debug/fault", tag = "debug",
    request_body(content = Object, description = "`{stream, target: \"input\"|\"transcoder\", priority?, profile?}`: `input` drops the connection of input `priority` (default: the active one; pulled inputs only); `transcoder` SIGKILLs the FFmpeg process of rung `profile` (`track_N`; optional in `multi` mode, where one process encodes the ladder). The ordinary failover and supervision then take over."),
    responses((status = 200, description = "`{data: {stream, target: \"input\", priority, url}}` or `{data: {stream, target: \"transcoder\", profile, pid, whole_ladder}}`: what was killed"),
              crate::openapi::BadBody,
              (status = 404, description = "`NOT_FOUND`: `debug.fault_injection` is false (the default; the route is off), or no such stream", body = crate::openapi::ErrorBody),
              (status = 409, description = "`NOTHING_TO_KILL`: the stream is not running, the input has no open connection or is a push input, or no FFmpeg runs for the rung now", body = crate::openapi::ErrorBody),
              (status = 422, description = "`UNKNOWN_FIELD`/`INVALID_FIELD` naming the field; `INVALID_INPUT_PRIORITY`: no such input", body = crate::openapi::ErrorBody),
              crate::openapi::AdminRefusal))]
pub(crate) async fn fault(
    State(engine): State<EngineHandle>,
    body: Body,
) -> Result<Response, ApiError> {
    if !engine.config().fault_injection() {
        return Err(ApiError::not_found(
            "POST /debug/fault is off: set debug.fault_injection to true to enable it",
        ));
    }
    let body = read_json(body).await?;
    let (code, target) = parse(&body)?;
    if engine.get_stream(&code).await?.is_none() {
        return Err(ApiError::not_found(format!("stream {code} not found")));
    }
    let killed = engine
        .inject_fault(&code, target)
        .map_err(|e| refusal(&code, e))?;
    let data = match killed {
        Killed::Input { priority, url } => {
            json!({"stream": code, "target": "input", "priority": priority, "url": url})
        }
        Killed::Transcoder {
            profile,
            pid,
            whole_ladder,
        } => json!({"stream": code, "target": "transcoder", "profile": profile, "pid": pid,
                    "whole_ladder": whole_ladder}),
        _ => json!({"stream": code}),
    };
    Ok(Json(json!({ "data": data })).into_response())
}

/// A 422 naming `path`.
fn invalid(path: &str, code: ErrorCode, message: String) -> ApiError {
    ApiError::validation(ValidationErrors(vec![FieldError::new(path, code, message)]))
}

/// The stream and the target of a fault body: an object of [`FIELDS`] only, `priority` only
/// with `input` and `profile` only with `transcoder`.
fn parse(body: &Value) -> Result<(StreamCode, FaultTarget), ApiError> {
    let Some(object) = body.as_object() else {
        return Err(invalid(
            "",
            ErrorCode::InvalidField,
            "expected an object {stream, target, priority?, profile?}".into(),
        ));
    };
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid(
            unknown,
            ErrorCode::UnknownField,
            format!("unknown field `{unknown}`, expected one of stream, target, priority, profile"),
        ));
    }
    let text = |field: &str| -> Result<&str, ApiError> {
        match object.get(field) {
            Some(Value::String(s)) => Ok(s),
            None | Some(Value::Null) => Err(invalid(
                field,
                ErrorCode::InvalidField,
                format!("missing field `{field}`"),
            )),
            Some(other) => Err(invalid(
                field,
                ErrorCode::InvalidField,
                format!("expected a string, got {other}"),
            )),
        }
    };
    let code = StreamCode::parse(text("stream")?)
        .map_err(|e| invalid("stream", ErrorCode::InvalidCode, e.to_string()))?;
    let target = match text("target")? {
        "input" => {
            refuse_with(object, "profile", "input")?;
            FaultTarget::Input {
                priority: object.get("priority").map_or(Ok(None), optional_priority)?,
            }
        }
        "transcoder" => {
            refuse_with(object, "priority", "transcoder")?;
            FaultTarget::Transcoder {
                profile: rung(object)?,
            }
        }
        other => {
            return Err(invalid(
                "target",
                ErrorCode::InvalidField,
                format!("expected \"input\" or \"transcoder\", got {other:?}"),
            ));
        }
    };
    Ok((code, target))
}

/// 422 when `field` is set with a target that does not use it.
fn refuse_with(object: &Map<String, Value>, field: &str, target: &str) -> Result<(), ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(invalid(
            field,
            ErrorCode::InvalidField,
            format!("`{field}` does not apply to target {target:?}"),
        )),
    }
}

/// `profile`: absent or null, else a rung name `track_<N>` (whether the running ladder has
/// it is the engine's [`track_rung`](tributary_domain::validate::track_rung) check).
fn rung(object: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    let value = match object.get("profile") {
        None | Some(Value::Null) => return Ok(None),
        Some(value) => value,
    };
    value
        .as_str()
        .filter(|name| rung_index(name).is_some())
        .map(|name| Some(name.to_owned()))
        .ok_or_else(|| {
            invalid(
                "profile",
                ErrorCode::InvalidField,
                format!("expected a rung name track_<N> (track_1 … track_16), got {value}"),
            )
        })
}

/// The answer to a refused fault: 422 naming the field, or 409 when nothing runs to kill.
fn refusal(code: &StreamCode, e: FaultError) -> ApiError {
    match e {
        FaultError::UnknownPriority { .. } => {
            invalid("priority", ErrorCode::InvalidInputPriority, e.to_string())
        }
        FaultError::UnknownProfile { .. } | FaultError::ProfileRequired { .. } => {
            invalid("profile", ErrorCode::InvalidField, e.to_string())
        }
        other => ApiError::new(
            StatusCode::CONFLICT,
            "NOTHING_TO_KILL",
            format!("stream {code}: {other}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(body: Value) -> (String, String) {
        let e = parse(&body).expect_err("refused");
        (e.code().to_owned(), e.message().to_owned())
    }

    #[test]
    fn bodies_parse_strictly_naming_the_field() {
        let (code, target) = parse(&json!({"stream": "cam", "target": "input"})).unwrap();
        assert_eq!(code.as_str(), "cam");
        assert_eq!(target, FaultTarget::Input { priority: None });
        let (_, target) =
            parse(&json!({"stream": "cam", "target": "input", "priority": 1})).unwrap();
        assert_eq!(target, FaultTarget::Input { priority: Some(1) });
        let (_, target) =
            parse(&json!({"stream": "cam", "target": "transcoder", "profile": "track_2"})).unwrap();
        assert_eq!(
            target,
            FaultTarget::Transcoder {
                profile: Some("track_2".into())
            }
        );

        for (body, path) in [
            (
                json!({"stream": "cam", "target": "input", "prio": 1}),
                "prio",
            ),
            (json!({"target": "input"}), "stream"),
            (json!({"stream": "cam"}), "target"),
            (json!({"stream": "cam", "target": "disk"}), "target"),
            (
                json!({"stream": "cam", "target": "input", "priority": -1}),
                "priority",
            ),
            (
                json!({"stream": "cam", "target": "input", "profile": "track_1"}),
                "profile",
            ),
            (
                json!({"stream": "cam", "target": "transcoder", "priority": 0}),
                "priority",
            ),
            (
                json!({"stream": "cam", "target": "transcoder", "profile": "track_0"}),
                "profile",
            ),
            (
                json!({"stream": "cam", "target": "transcoder", "profile": "hd"}),
                "profile",
            ),
            (json!({"stream": "bad code", "target": "input"}), "stream"),
        ] {
            let (_, message) = error(body.clone());
            assert!(message.starts_with(path), "{body}: {message}");
        }
        assert_eq!(
            error(json!({"stream": "cam", "target": "input", "x": 1})).0,
            "UNKNOWN_FIELD"
        );
    }
}
