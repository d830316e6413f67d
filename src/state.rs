//! [`AppState`]: everything a request handler needs, built once at start-up and shared.

use std::sync::Arc;

use crate::auth::Auth;
use crate::backend::Backend;
use tokio::sync::watch;

use crate::http::reply::{Cors, SyncTokens};
use crate::http::sse::Streams;
use crate::metrics::Metrics;
use crate::protocol::policy::Policy;

/// Shared, read-only (apart from counters) state of a running server.
pub struct AppState {
    /// Token table.
    pub auth: Auth,
    /// Command policy (deny-list, stateful and blocking commands).
    pub policy: Policy,
    /// Browser cross-origin settings.
    pub cors: Cors,
    /// Per-response `upstash-sync-token` generator.
    pub sync: SyncTokens,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Largest accepted request body, in bytes.
    pub max_request_size: u64,
    /// Time a client gets to send its whole body.
    pub body_read_timeout: std::time::Duration,
    /// Every backend, for readiness checks.
    pub backends: Vec<Arc<Backend>>,
    /// Open streams and their limits.
    pub streams: Streams,
    /// Flips to true on shutdown (streams end on it).
    pub shutdown: watch::Receiver<bool>,
    /// Set when tenants share a Redis without isolation (shown by `/readyz`).
    pub isolation_warning: Option<String>,
    /// Usage, quotas and alerts of every tenant.
    pub metering: Arc<crate::metering::Metering>,
    /// Bearer token of the admin listener's `/usage` and `/metrics`.
    pub admin_token: Option<String>,
    /// Whether `/console` is served.
    pub console: bool,
    /// The API listener's TLS certificate, when it serves TLS: [`crate::http::tls::Tls::reload`]
    /// re-reads the files.
    pub tls: Option<Arc<crate::http::tls::Tls>>,
}
