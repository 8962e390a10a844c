//! Admin authentication (SPEC §Security): a bearer token, compared in constant time, required
//! from every peer except loopback ones while `security.loopback_bypass` is on. The peer is the
//! TCP address, never a header.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tributary_engine::EngineHandle;

use crate::error::ApiError;

pub(crate) async fn require_admin(
    State(engine): State<EngineHandle>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let loopback = peer.is_some_and(|addr| addr.ip().is_loopback());
    if loopback && engine.config().security.loopback_bypass {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if engine.admin_token().matches(token) => next.run(request).await,
        _ => {
            let peer = peer.map(|a| a.to_string()).unwrap_or_default();
            tracing::warn!(
                peer,
                path = request.uri().path(),
                "admin request refused: no valid bearer token"
            );
            ApiError::unauthorized().into_response()
        }
    }
}
