//! The admin listener (separate address, no tenant token): `/healthz` (the process answers),
//! `/readyz` (every backend answers PING; 503 otherwise), `/metrics` (Prometheus text) and
//! `/usage` (every tenant's usage and quotas, JSON) and `POST /reload` (re-reads the
//! configuration, `crate::reload`); the last three need the admin token when one is configured.

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
        "/reload" if req.method() == hyper::Method::POST => reload(&state).await,
        "/reload" => json(
            StatusCode::METHOD_NOT_ALLOWED,
            error_body("ERR /reload takes POST: it re-reads the configuration file"),
        ),
        "/metrics" => {
            refresh_backend_gauges(&state);
            state.metrics.open_streams.set(state.streams.open_now() as i64);
            state.metering.refresh_gauges();
            with_body(
                StatusCode::OK,
                HeaderValue::from_static("text/plain; version=0.0.4"),
                state.metrics.render(),
            )
        }
        _ => json(
            StatusCode::NOT_FOUND,
            error_body("ERR not found: use /healthz, /readyz, /metrics, /usage or POST /reload"),
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

/// Sets each backend's gauges to the sum over the workers (each has its own connections to
/// every Redis), and `restdis_backends_up` to the Redis servers with a live connection.
fn refresh_backend_gauges(state: &AppState) {
    let mut by_label: std::collections::BTreeMap<String, (Arc<crate::backend::Backend>, [i64; 3])> =
        Default::default();
    for backend in state.every_backend() {
        let g = backend.gauges();
        let entry = by_label
            .entry(backend.label().to_string())
            .or_insert_with(|| (backend.clone(), [0; 3]));
        for (sum, v) in entry.1.iter_mut().zip(g) {
            *sum += v;
        }
    }
    let mut up = 0;
    for (backend, [in_flight, queued, connections]) in by_label.values() {
        let m = backend.metrics();
        m.in_flight.set(*in_flight);
        m.queued.set(*queued);
        m.connections.set(*connections);
        up += i64::from(*connections > 0);
    }
    state.metrics.backends_up.set(up);
}

/// `POST /reload`: re-reads the configuration and applies it (`crate::reload`); 200 with what
/// changed, or 400 with why nothing did.
async fn reload(state: &AppState) -> HttpResponse {
    match state.reload.request().await {
        Ok(report) => json(StatusCode::OK, report.to_string().into_bytes()),
        Err(e) => json(
            StatusCode::BAD_REQUEST,
            error_body(&format!("ERR reload failed, nothing changed: {e}")),
        ),
    }
}

async fn readyz(state: &AppState) -> HttpResponse {
    let tenancy = state.tenancy();
    for backend in state.every_backend() {
        if let Err(e) = backend.ping().await {
            let msg = format!("backend {} is not ready: {}", backend.label(), e);
            return json(StatusCode::SERVICE_UNAVAILABLE, error_body(&msg));
        }
    }
    match &tenancy.isolation_warning {
        Some(w) => json(
            StatusCode::OK,
            serde_json::json!({"status": "ready", "warning": w})
                .to_string()
                .into_bytes(),
        ),
        None => json(StatusCode::OK, br#"{"status":"ready"}"#.to_vec()),
    }
}
