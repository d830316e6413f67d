//! The web console (`/console` on the API listener, docs/console.md): a single page whose
//! hand-written HTML, CSS and JavaScript modules under `assets/console/` are embedded in the
//! binary, and two small JSON endpoints for it. Everything else the page shows it gets through
//! the ordinary REST protocol with the signed-in token, under the same policy as any client.
//!
//! - `GET /console`, `/console/`: the page; `GET /console/<file>`: its assets.
//! - `GET /console/api/session`: the token's tenant and whether it is read-only (401 without
//!   a valid token).
//! - `GET /console/api/usage`: the token's tenant's usage and quotas, the entry `/usage` on
//!   the admin listener shows for it (`Meter::report`), plus `requests_since_start` (this
//!   instance's count of the tenant's authenticated requests).
//!
//! - With the admin token (`--admin-token`) instead of a tenant's: `session` answers
//!   `{"admin": true}` and `usage` every tenant's entry side by side (the `/usage` document);
//!   the page then shows only its Usage tab.
//!
//! Every response here carries a strict `Content-Security-Policy`, `nosniff` and
//! `frame-ancestors 'none'`. Assets are revalidated (`no-cache` with an `ETag`); the JSON
//! endpoints are `no-store`. With the console off, every `/console` path is a 404.

use hyper::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::http::request::Parts;
use hyper::{Method, StatusCode};

use super::reply::{self, HttpResponse};
use crate::protocol::encode::error_body;
use crate::state::AppState;

/// The policy of every console response: only the console's own files, no inline script or
/// style, no framing, no form posts; `fetch` to this origin only.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One embedded file.
struct Asset {
    /// Its path under `/console/` (`""` is the page).
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../assets/console/", $path)),
        }
    };
}

/// Every file of the console.
const ASSETS: &[Asset] = &[
    Asset {
        path: "",
        content_type: HTML,
        body: include_bytes!("../../assets/console/index.html"),
    },
    asset!("console.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("values.js", JS),
    asset!("browser.js", JS),
    asset!("cli.js", JS),
    asset!("live.js", JS),
    asset!("usage.js", JS),
];

/// Serves a request for `/console/<rest>` (`rest` empty for the page).
pub fn serve(state: &AppState, parts: &Parts, rest: &str) -> HttpResponse {
    let mut resp = if !state.console {
        not_found("ERR not found: the console is off on this server (--console on, RESTDIS_CONSOLE, [console] enabled)")
    } else if !matches!(parts.method, Method::GET | Method::HEAD) {
        let mut resp = reply::json(
            StatusCode::METHOD_NOT_ALLOWED,
            error_body("ERR the console answers GET and HEAD only"),
        );
        resp.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        resp
    } else {
        match rest {
            "api/session" => api(
                state,
                parts,
                |caller| {
                    serde_json::json!({
                        "tenant": caller.tenant.name,
                        "read_only": caller.read_only,
                    })
                },
                || serde_json::json!({"admin": true, "tenant": null, "read_only": true}),
            ),
            "api/usage" => api(
                state,
                parts,
                |caller| tenant_usage(state, &caller.tenant.meter),
                || {
                    let tenants: Vec<serde_json::Value> = state
                        .metering
                        .meters()
                        .iter()
                        .map(|m| tenant_usage(state, m))
                        .collect();
                    serde_json::json!({"admin": true, "tenants": tenants})
                },
            ),
            "index.html" => asset(parts, &ASSETS[0]),
            _ => match ASSETS.iter().find(|a| a.path == rest) {
                Some(a) => asset(parts, a),
                None => not_found("ERR not found: no such console file"),
            },
        }
    };
    secure(&mut resp);
    resp
}

/// One tenant's `/usage` entry plus this instance's count of its requests.
fn tenant_usage(state: &AppState, meter: &crate::metering::Meter) -> serde_json::Value {
    let mut report = meter.report(state.metering.clock.now());
    if let Some(fields) = report.as_object_mut() {
        fields.insert(
            "requests_since_start".into(),
            meter.metrics().requests.get().into(),
        );
    }
    report
}

/// A JSON endpoint for the signed-in token: 401 without a valid one. The admin token gets
/// `admin` (every tenant) instead.
fn api(
    state: &AppState,
    parts: &Parts,
    answer: impl FnOnce(&crate::dispatch::Caller) -> serde_json::Value,
    admin: impl FnOnce() -> serde_json::Value,
) -> HttpResponse {
    let authorization = parts.headers.get(hyper::header::AUTHORIZATION);
    let is_admin = state.admin_token.as_deref().is_some_and(|expected| {
        authorization
            .and_then(crate::auth::bearer)
            .is_some_and(|given| crate::auth::ct_eq(given, expected.as_bytes()))
    });
    let mut resp = if is_admin {
        reply::json(StatusCode::OK, admin().to_string().into_bytes())
    } else {
        match state
            .tenancy()
            .auth
            .authenticate(authorization, parts.uri.query())
        {
            Ok(caller) => reply::json(StatusCode::OK, answer(&caller).to_string().into_bytes()),
            Err(err) => reply::error(&err),
        }
    };
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An embedded file, or 304 when the client's copy is current.
fn asset(parts: &Parts, asset: &Asset) -> HttpResponse {
    let tag = etag(asset.body);
    let current = parts
        .headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if current {
        let mut resp = reply::with_body(
            StatusCode::NOT_MODIFIED,
            HeaderValue::from_static(asset.content_type),
            Vec::new(),
        );
        resp.headers_mut().remove(hyper::header::CONTENT_TYPE);
        resp
    } else {
        reply::with_body(
            StatusCode::OK,
            HeaderValue::from_static(asset.content_type),
            asset.body.to_vec(),
        )
    };
    let h = resp.headers_mut();
    // Revalidated on every load (names carry no content hash); a 304 costs a round trip only.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(ETAG, v);
    }
    resp
}

/// A strong ETag: the file's FNV-1a hash (the files are fixed for the binary's life).
fn etag(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

fn not_found(message: &str) -> HttpResponse {
    reply::json(StatusCode::NOT_FOUND, error_body(message))
}

/// The security headers of every console response.
fn secure(resp: &mut HttpResponse) {
    let h = resp.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_once_with_a_type() {
        let mut seen = std::collections::HashSet::new();
        for a in ASSETS {
            assert!(seen.insert(a.path), "{} listed twice", a.path);
            assert!(!a.body.is_empty(), "{} is empty", a.path);
        }
    }

    #[test]
    fn page_names_only_embedded_scripts_and_styles() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap_or("");
        for part in page.split("/console/").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            if name.ends_with(".js") || name.ends_with(".css") {
                assert!(ASSETS.iter().any(|a| a.path == name), "{name} is not embedded");
            }
        }
    }

    #[test]
    fn etag_changes_with_content() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"a"), etag(b"a"));
    }
}
