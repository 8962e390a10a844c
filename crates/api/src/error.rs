//! The one API error type, mapped to status and the JSON envelope (SPEC §API conventions).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use tributary_domain::validate::{FieldError, ValidationErrors};
use tributary_engine::CoordError;

/// An error answered to an API client.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    fields: Vec<FieldError>,
    /// More members of the `error` object (`streams` of `TEMPLATE_IN_USE`, ...).
    details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Field<'a> {
    path: &'a str,
    message: &'a str,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            details: serde_json::Map::new(),
        }
    }

    /// Names the failing fields (`fields[]`) of a non-validation error (a 409 about a field).
    pub(crate) fn with_fields(mut self, fields: Vec<FieldError>) -> Self {
        self.fields = fields;
        self
    }

    /// Adds a member to the `error` object.
    pub(crate) fn with_detail(mut self, key: &str, value: serde_json::Value) -> Self {
        self.details.insert(key.to_owned(), value);
        self
    }

    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", what)
    }

    pub(crate) fn validation(errors: ValidationErrors) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: errors.code().as_str(),
            message: errors.to_string(),
            fields: errors.0,
            details: serde_json::Map::new(),
        }
    }

    /// The `UPPER_SNAKE` code.
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "admin routes need 'Authorization: Bearer <token>' from non-loopback peers",
        )
    }
}

impl From<CoordError> for ApiError {
    fn from(e: CoordError) -> Self {
        if let CoordError::Invalid { source, .. } = e {
            return Self::validation(source);
        }
        let (status, code) = match &e {
            CoordError::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            CoordError::Disabled(_) => (StatusCode::CONFLICT, "STREAM_DISABLED"),
            CoordError::NoInputs(_) => (StatusCode::CONFLICT, "NO_INPUTS"),
            CoordError::Precondition { .. } => {
                (StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED")
            }
            CoordError::Busy(_) | CoordError::ShuttingDown => {
                (StatusCode::SERVICE_UNAVAILABLE, "BUSY")
            }
            CoordError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "STORE_ERROR"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let fields: Vec<Field<'_>> = self
            .fields
            .iter()
            .map(|f| Field {
                path: &f.path,
                message: &f.message,
            })
            .collect();
        let mut error = json!({"code": self.code, "message": self.message});
        if !fields.is_empty() {
            error["fields"] = json!(fields);
        }
        for (key, value) in self.details {
            error[key.as_str()] = value;
        }
        let mut response = (self.status, axum::Json(json!({"error": error}))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
