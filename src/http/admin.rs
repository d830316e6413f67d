//! The admin listener (separate address, no tenant token): `/healthz` (the process answers),
//! `/readyz` (every backend answers PING; 503 otherwise), `/metrics` (Prometheus text) and
//! `/usage` (every tenant's usage and quotas, JSON); the last two need the admin token when
//! one is configured.

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
    let path = req.uri().path();
    let probe = matches!(path, "/healthz" | "/readyz");
    if !probe && !authorized(&state, &req) {
        let mut resp = json(
            StatusCode::UNAUTHORIZED,
            error_body(
                "WRONGPASS this admin endpoint needs the admin token (Authorization: Bearer <admin_token>)",
            ),
        );
        resp.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
        return Ok(resp);
    }
    let resp = match path {
        "/healthz" => json(StatusCode::OK, br#"{"status":"ok"}"#.to_vec()),
        "/readyz" => readyz(&state).await,
        "/usage" => json(StatusCode::OK, state.metering.report().to_string().into_bytes()),
        "/metrics" => {
            let up = state.backends.iter().filter(|b| b.is_connected()).count();
            state.metrics.backends_up.set(up as i64);
            state.metrics.open_streams.set(state.streams.open_now() as i64);
            for backend in &state.backends {
                backend.refresh_gauges();
            }
            state.metering.refresh_gauges();
            with_body(
                StatusCode::OK,
                HeaderValue::from_static("text/plain; version=0.0.4"),
                state.metrics.render(),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            error_body("ERR not found: use /healthz, /readyz, /metrics or /usage"),
        ),
    };
    Ok(resp)
}

/// Whether the request may see `/usage` and `/metrics`: always without an admin token,
/// else with `Authorization: Bearer <admin token>` (compared in constant time).
fn authorized(state: &AppState, req: &Request<Incoming>) -> bool {
    let Some(expected) = &state.admin_token else {
        return true;
    };
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(crate::auth::bearer)
        .is_some_and(|given| crate::auth::ct_eq(given, expected.as_bytes()))
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
