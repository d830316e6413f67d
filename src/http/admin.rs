//! The admin listener (separate address, no token): `/healthz` (the process answers),
//! `/readyz` (every backend answers PING; 503 otherwise) and `/metrics` (Prometheus text).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};

use super::reply::{json, with_body, HttpResponse};
use crate::protocol::encode::error_body;
use crate::state::AppState;

/// Serves one admin request.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<HttpResponse, std::convert::Infallible> {
    let resp = match req.uri().path() {
        "/healthz" => json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()),
        "/readyz" => readyz(&state).await,
        "/metrics" => {
            let up = state.backends.iter().filter(|b| b.is_connected()).count();
            state.metrics.backends_up.set(up as i64);
            state.metrics.open_streams.set(state.streams.open_now() as i64);
            with_body(
                StatusCode::OK,
                HeaderValue::from_static("text/plain; version=0.0.4"),
                state.metrics.render(),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            error_body("ERR not found: use /healthz, /readyz or /metrics"),
        ),
    };
    Ok(resp)
}

async fn readyz(state: &AppState) -> HttpResponse {
    for backend in &state.backends {
        if let Err(e) = backend.ping().await {
            let msg = format!("backend {} is not ready: {}", backend.label(), e);
            return json(StatusCode::SERVICE_UNAVAILABLE, error_body(&msg));
        }
    }
    match &state.isolation_warning {
        Some(w) => json(
            StatusCode::OK,
            serde_json::json!({"status": "ready", "warning": w})
                .to_string()
                .into_bytes(),
        ),
        None => json(StatusCode::OK, br#"{"status":"ready"}"#.to_vec()),
    }
}
