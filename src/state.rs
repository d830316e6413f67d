//! [`AppState`]: everything a request handler needs, built at start-up and shared; the
//! tenants part ([`Tenancy`]) is swapped whole by a configuration reload.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::http::reply::{Cors, SyncTokens};
use crate::http::sse::Streams;
use crate::metrics::Metrics;
use crate::reload::Trigger;
use crate::tenancy::Tenancy;

/// Shared, read-only (apart from counters) state of a running server.
pub struct AppState {
    /// Tokens, policy and backends of this worker; a configuration reload swaps them whole.
    pub tenancy: Arc<ArcSwap<Tenancy>>,
    /// Every worker's tenancy (this one's included), for the admin listener's gauges and
    /// readiness.
    pub workers: Arc<std::sync::Mutex<Vec<Arc<ArcSwap<Tenancy>>>>>,
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
    /// Open streams and their limits.
    pub streams: Streams,
    /// Flips to true on shutdown (streams end on it).
    pub shutdown: watch::Receiver<bool>,
    /// Usage, quotas and alerts of every tenant.
    pub metering: Arc<crate::metering::Metering>,
    /// Bearer token of the admin listener's `/usage` and `/metrics`.
    pub admin_token: Option<String>,
    /// Whether `/console` is served.
    pub console: bool,
    /// Counts the connections this worker accepted on the API listener.
    pub accepted: prometheus::IntCounter,
    /// Asks for a configuration reload (`POST /reload`).
    pub reload: Trigger,
    /// The API listener's TLS certificate, when it serves TLS: [`crate::http::tls::Tls::reload`]
    /// re-reads the files.
    pub tls: Option<Arc<crate::http::tls::Tls>>,
}

impl AppState {
    /// The tenancy in force now (hold it for one request, not longer).
    pub fn tenancy(&self) -> Arc<Tenancy> {
        self.tenancy.load_full()
    }

    /// Every backend of every worker (a Redis appears once per worker).
    pub fn every_backend(&self) -> Vec<Arc<crate::backend::Backend>> {
        let workers = match self.workers.lock() {
            Ok(w) => w.clone(),
            Err(_) => vec![self.tenancy.clone()],
        };
        workers.iter().flat_map(|t| t.load().backends.clone()).collect()
    }
}
