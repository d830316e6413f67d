//! Prometheus metrics, served on the admin listener at `/metrics`. Labels come from fixed
//! sets (route names, status codes), never from keys, paths, tokens or error texts. The
//! per-request handles are resolved once at start-up, so recording a request is an array
//! index and two atomic adds, with no hashing.

use std::time::Duration;

use hyper::StatusCode;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::metering::quota::Kind;

/// Reasons a tenant's request is refused by metering (`restdis_tenant_rejected_total`).
const REJECT_REASONS: [&str; 5] = [
    "daily_commands",
    "monthly_commands",
    "daily_bandwidth",
    "monthly_bandwidth",
    "rate",
];
/// Error kinds per tenant (`restdis_tenant_errors_total`): restdis's error codes, and
/// `redis` for error replies of Redis inside a 200 or 400.
const ERROR_KINDS: [&str; 10] = [
    "bad_request",
    "redis",
    "unavailable",
    "timeout",
    "overloaded",
    "too_many",
    "too_large",
    "body_timeout",
    "quota",
    "internal",
];

/// One tenant's metric handles, resolved once.
#[derive(Clone)]
pub struct TenantMetrics {
    /// Authenticated HTTP requests.
    pub requests: IntCounter,
    /// Redis commands admitted (each pipeline or transaction entry counts).
    pub commands: IntCounter,
    /// Request body bytes of admitted requests.
    pub bytes_received: IntCounter,
    /// Response body bytes.
    pub bytes_sent: IntCounter,
    /// Streams open.
    pub streams_open: IntGauge,
    rejected: Vec<IntCounter>,
    errors: Vec<IntCounter>,
    ratio: Vec<Gauge>,
    limit: Vec<IntGauge>,
}

impl TenantMetrics {
    /// Handles registered nowhere (unit tests).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        let c = || IntCounter::new("unregistered", "unregistered");
        let g = || IntGauge::new("unregistered", "unregistered");
        Ok(Self {
            requests: c()?,
            commands: c()?,
            bytes_received: c()?,
            bytes_sent: c()?,
            streams_open: g()?,
            rejected: REJECT_REASONS.iter().map(|_| c()).collect::<Result<_, _>>()?,
            errors: ERROR_KINDS.iter().map(|_| c()).collect::<Result<_, _>>()?,
            ratio: Kind::ALL
                .iter()
                .map(|_| Gauge::new("unregistered", "unregistered"))
                .collect::<Result<_, _>>()?,
            limit: Kind::ALL.iter().map(|_| g()).collect::<Result<_, _>>()?,
        })
    }

    /// The refusals counter of `reason` (a quota name or `rate`).
    pub fn rejected(&self, reason: &str) -> &IntCounter {
        let i = REJECT_REASONS.iter().position(|r| *r == reason).unwrap_or(0);
        &self.rejected[i]
    }

    /// The errors counter of `kind` (an `Error::code`, or `redis`).
    pub fn error(&self, kind: &str) -> Option<&IntCounter> {
        ERROR_KINDS
            .iter()
            .position(|k| *k == kind)
            .map(|i| &self.errors[i])
    }

    /// The usage/limit gauge of a quota.
    pub fn ratio(&self, kind: Kind) -> &Gauge {
        &self.ratio[kind as usize]
    }

    /// The limit gauge of a quota.
    pub fn limit(&self, kind: Kind) -> &IntGauge {
        &self.limit[kind as usize]
    }
}

/// One backend's metric handles.
#[derive(Clone)]
pub struct BackendMetrics {
    /// Time of each round trip to Redis (one command or one batch).
    pub duration: Histogram,
    /// Requests in flight to this Redis (set at scrape time).
    pub in_flight: IntGauge,
    /// Requests waiting for a place under `max_in_flight` (set at scrape time).
    pub queued: IntGauge,
    /// Live shared connections (set at scrape time).
    pub connections: IntGauge,
    /// Connections made again after a loss.
    pub reconnections: IntCounter,
    /// With `read_from = "replicas"`: read-only requests a replica served, and those the
    /// primary served (no replica usable or far enough, or the replica failed).
    pub reads: [IntCounter; 2],
}

impl BackendMetrics {
    /// Handles registered nowhere (backends made outside a server, such as the usage store).
    pub fn unregistered() -> Result<Self, prometheus::Error> {
        let g = || IntGauge::new("unregistered", "unregistered");
        Ok(Self {
            duration: Histogram::with_opts(HistogramOpts::new("unregistered", "unregistered"))?,
            in_flight: g()?,
            queued: g()?,
            connections: g()?,
            reconnections: IntCounter::new("unregistered", "unregistered")?,
            reads: [
                IntCounter::new("unregistered", "unregistered")?,
                IntCounter::new("unregistered", "unregistered")?,
            ],
        })
    }
}

/// Route labels, in the order of [`route_index`].
const ROUTES: [&str; 8] = [
    "single",
    "path",
    "pipeline",
    "multi_exec",
    "subscribe",
    "psubscribe",
    "monitor",
    "console",
];
/// Status codes with their own series; any other is counted as "other".
const STATUSES: [u16; 12] = [200, 204, 400, 401, 404, 405, 408, 413, 429, 500, 503, 504];

fn route_index(route: &str) -> usize {
    ROUTES.iter().position(|r| *r == route).unwrap_or(0)
}

/// The server's metrics (a clone shares the same counters).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `[route][status]`, the last column for unlisted statuses.
    requests: Vec<Vec<IntCounter>>,
    duration: Vec<Histogram>,
    /// HTTP connections currently open.
    pub open_connections: IntGauge,
    /// Backends with at least one live Redis connection.
    pub backends_up: IntGauge,
    /// Server-sent event streams open.
    pub open_streams: IntGauge,
    /// Streams ended because their client fell more than `[streams] max_buffer` behind.
    pub streams_dropped_slow: IntCounter,
    /// Streams whose Redis connection closed or failed under them (for example Redis's own
    /// `client-output-buffer-limit pubsub` when restdis could not read fast enough).
    pub streams_dropped_redis: IntCounter,
    tenant_requests: IntCounterVec,
    tenant_commands: IntCounterVec,
    tenant_bytes_received: IntCounterVec,
    tenant_bytes_sent: IntCounterVec,
    tenant_streams: IntGaugeVec,
    tenant_rejected: IntCounterVec,
    tenant_errors: IntCounterVec,
    quota_ratio: GaugeVec,
    quota_limit: IntGaugeVec,
    /// Quota alerts fired, by tenant, quota and threshold.
    pub alerts: IntCounterVec,
    /// Webhook deliveries that succeeded.
    pub webhook_ok: IntCounter,
    /// Webhook deliveries that failed after every attempt.
    pub webhook_failed: IntCounter,
    /// Usage flushes to Redis that failed.
    pub usage_flush_errors: IntCounter,
    /// Connections accepted, per worker.
    worker_connections: IntCounterVec,
    /// Configuration reloads that were applied.
    pub reloads_ok: IntCounter,
    /// Configuration reloads refused (the old configuration stayed).
    pub reloads_failed: IntCounter,
    redis_duration: HistogramVec,
    redis_in_flight: IntGaugeVec,
    redis_queued: IntGaugeVec,
    redis_connections: IntGaugeVec,
    redis_reconnections: IntCounterVec,
    redis_reads: IntCounterVec,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests_vec = IntCounterVec::new(
            Opts::new(
                "restdis_http_requests_total",
                "HTTP requests by route and status code",
            ),
            &["route", "status"],
        )?;
        let duration_vec = HistogramVec::new(
            HistogramOpts::new(
                "restdis_http_request_duration_seconds",
                "Time to answer (to the response head), by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                10.0,
            ]),
            &["route"],
        )?;
        let open_connections = IntGauge::new("restdis_http_open_connections", "HTTP connections open")?;
        let backends_up = IntGauge::new("restdis_backends_up", "Backends with a live Redis connection")?;
        let open_streams = IntGauge::new("restdis_streams_open", "Server-sent event streams open")?;
        registry.register(Box::new(requests_vec.clone()))?;
        registry.register(Box::new(duration_vec.clone()))?;
        registry.register(Box::new(open_connections.clone()))?;
        registry.register(Box::new(backends_up.clone()))?;
        registry.register(Box::new(open_streams.clone()))?;
        let dropped_vec = IntCounterVec::new(
            Opts::new(
                "restdis_streams_dropped_total",
                "Server-sent event streams that restdis ended, by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(dropped_vec.clone()))?;
        let streams_dropped_slow = dropped_vec.get_metric_with_label_values(&["slow_consumer"])?;
        let streams_dropped_redis = dropped_vec.get_metric_with_label_values(&["redis_closed"])?;
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let v = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(v.clone()))?;
                Ok(v)
            };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
            let v = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(v.clone()))?;
            Ok(v)
        };
        let tenant_requests = counter_vec(
            "restdis_tenant_requests_total",
            "Authenticated HTTP requests per tenant",
            &["tenant"],
        )?;
        let tenant_commands = counter_vec(
            "restdis_tenant_commands_total",
            "Redis commands admitted per tenant (each pipeline or transaction entry counts)",
            &["tenant"],
        )?;
        let tenant_bytes_received = counter_vec(
            "restdis_tenant_bytes_received_total",
            "Request body bytes of admitted requests, per tenant",
            &["tenant"],
        )?;
        let tenant_bytes_sent = counter_vec(
            "restdis_tenant_bytes_sent_total",
            "Response body bytes per tenant",
            &["tenant"],
        )?;
        let tenant_streams = gauge_vec(
            "restdis_tenant_streams_open",
            "Server-sent event streams open per tenant",
            &["tenant"],
        )?;
        let tenant_rejected = counter_vec(
            "restdis_tenant_rejected_total",
            "Requests refused by a quota or the rate limit, per tenant and reason",
            &["tenant", "reason"],
        )?;
        let tenant_errors = counter_vec(
            "restdis_tenant_errors_total",
            "Error responses and Redis error replies per tenant, by kind",
            &["tenant", "kind"],
        )?;
        let quota_ratio = GaugeVec::new(
            Opts::new(
                "restdis_quota_used_ratio",
                "Usage over limit in the current period, per tenant and quota",
            ),
            &["tenant", "quota"],
        )?;
        registry.register(Box::new(quota_ratio.clone()))?;
        let quota_limit = gauge_vec(
            "restdis_quota_limit",
            "The limit of each quota that has one",
            &["tenant", "quota"],
        )?;
        let alerts = counter_vec(
            "restdis_alerts_total",
            "Quota alerts fired, by tenant, quota and threshold",
            &["tenant", "quota", "threshold"],
        )?;
        let webhook = counter_vec(
            "restdis_webhook_deliveries_total",
            "Quota alert webhook deliveries, by result",
            &["result"],
        )?;
        let usage_flush_errors = IntCounter::new(
            "restdis_usage_flush_errors_total",
            "Usage flushes to Redis that failed (the counts are kept and written later)",
        )?;
        registry.register(Box::new(usage_flush_errors.clone()))?;
        let worker_connections = counter_vec(
            "restdis_worker_connections_total",
            "Client connections accepted on the API listener, per worker (--worker-threads)",
            &["worker"],
        )?;
        let reloads = counter_vec(
            "restdis_config_reloads_total",
            "Configuration reloads (SIGHUP, POST /reload), by result: ok, or error (nothing changed)",
            &["result"],
        )?;
        let redis_duration = HistogramVec::new(
            HistogramOpts::new(
                "restdis_redis_command_duration_seconds",
                "Time of each round trip to Redis (one command or one pipelined batch), per backend",
            )
            .buckets(vec![
                0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                5.0,
            ]),
            &["backend"],
        )?;
        registry.register(Box::new(redis_duration.clone()))?;
        let redis_in_flight = gauge_vec(
            "restdis_redis_requests_in_flight",
            "Requests in flight to Redis, per backend",
            &["backend"],
        )?;
        let redis_queued = gauge_vec(
            "restdis_redis_requests_queued",
            "Requests waiting for a place under max_in_flight, per backend",
            &["backend"],
        )?;
        let redis_connections = gauge_vec(
            "restdis_redis_connections",
            "Live shared Redis connections, per backend",
            &["backend"],
        )?;
        let redis_reconnections = counter_vec(
            "restdis_redis_reconnections_total",
            "Shared Redis connections made again after a loss, per backend",
            &["backend"],
        )?;
        let redis_reads = counter_vec(
            "restdis_redis_reads_total",
            "With read_from = replicas: read-only requests by the node that served them (replica, primary), per backend",
            &["backend", "served_by"],
        )?;
        let mut requests = Vec::with_capacity(ROUTES.len());
        let mut duration = Vec::with_capacity(ROUTES.len());
        for route in ROUTES {
            let mut row: Vec<IntCounter> = STATUSES
                .iter()
                .map(|s| requests_vec.get_metric_with_label_values(&[route, &s.to_string()]))
                .collect::<Result<_, _>>()?;
            row.push(requests_vec.get_metric_with_label_values(&[route, "other"])?);
            requests.push(row);
            duration.push(duration_vec.get_metric_with_label_values(&[route])?);
        }
        Ok(Self {
            registry,
            requests,
            duration,
            open_connections,
            backends_up,
            open_streams,
            streams_dropped_slow,
            streams_dropped_redis,
            tenant_requests,
            tenant_commands,
            tenant_bytes_received,
            tenant_bytes_sent,
            tenant_streams,
            tenant_rejected,
            tenant_errors,
            quota_ratio,
            quota_limit,
            alerts,
            webhook_ok: webhook.get_metric_with_label_values(&["ok"])?,
            webhook_failed: webhook.get_metric_with_label_values(&["failed"])?,
            usage_flush_errors,
            worker_connections,
            reloads_ok: reloads.get_metric_with_label_values(&["ok"])?,
            reloads_failed: reloads.get_metric_with_label_values(&["error"])?,
            redis_duration,
            redis_in_flight,
            redis_queued,
            redis_connections,
            redis_reconnections,
            redis_reads,
        })
    }

    /// The handles of tenant `name` (its series appear at once, at zero).
    pub fn tenant(&self, name: &str) -> Result<TenantMetrics, prometheus::Error> {
        let limit = |k: &Kind| self.quota_limit.get_metric_with_label_values(&[name, k.name()]);
        Ok(TenantMetrics {
            requests: self.tenant_requests.get_metric_with_label_values(&[name])?,
            commands: self.tenant_commands.get_metric_with_label_values(&[name])?,
            bytes_received: self.tenant_bytes_received.get_metric_with_label_values(&[name])?,
            bytes_sent: self.tenant_bytes_sent.get_metric_with_label_values(&[name])?,
            streams_open: self.tenant_streams.get_metric_with_label_values(&[name])?,
            rejected: REJECT_REASONS
                .iter()
                .map(|r| self.tenant_rejected.get_metric_with_label_values(&[name, r]))
                .collect::<Result<_, _>>()?,
            errors: ERROR_KINDS
                .iter()
                .map(|k| self.tenant_errors.get_metric_with_label_values(&[name, k]))
                .collect::<Result<_, _>>()?,
            ratio: Kind::ALL
                .iter()
                .map(|k| self.quota_ratio.get_metric_with_label_values(&[name, k.name()]))
                .collect::<Result<_, _>>()?,
            limit: Kind::ALL.iter().map(limit).collect::<Result<_, _>>()?,
        })
    }

    /// Removes the quota series of quotas a tenant does not have (a ratio of an unlimited
    /// quota means nothing).
    pub fn drop_unlimited(&self, name: &str, kind: Kind) {
        let _ = self.quota_ratio.remove_label_values(&[name, kind.name()]);
        let _ = self.quota_limit.remove_label_values(&[name, kind.name()]);
    }

    /// The accepted-connections counter of worker `i`.
    pub fn worker_connections(&self, i: usize) -> Result<IntCounter, prometheus::Error> {
        self.worker_connections
            .get_metric_with_label_values(&[&i.to_string()])
    }

    /// The TLS listener's handles, registered on first use (only a TLS listener has them):
    /// `restdis_tls_reloads_total`, `restdis_tls_reload_errors_total`,
    /// `restdis_tls_handshake_errors_total`, `restdis_tls_certificate_not_after_seconds`.
    pub fn tls(&self) -> Result<crate::http::tls::TlsMetrics, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            self.registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let not_after = IntGauge::new(
            "restdis_tls_certificate_not_after_seconds",
            "End of validity of the served TLS certificate, seconds since the epoch",
        )?;
        self.registry.register(Box::new(not_after.clone()))?;
        Ok(crate::http::tls::TlsMetrics {
            reloads: counter(
                "restdis_tls_reloads_total",
                "TLS certificate reloads that took effect",
            )?,
            reload_errors: counter(
                "restdis_tls_reload_errors_total",
                "TLS certificate reloads that failed (the previous certificate stayed)",
            )?,
            handshake_errors: counter(
                "restdis_tls_handshake_errors_total",
                "TLS handshakes that failed or timed out",
            )?,
            not_after,
        })
    }

    /// The handles of backend `label`.
    pub fn backend(&self, label: &str) -> Result<BackendMetrics, prometheus::Error> {
        Ok(BackendMetrics {
            duration: self.redis_duration.get_metric_with_label_values(&[label])?,
            in_flight: self.redis_in_flight.get_metric_with_label_values(&[label])?,
            queued: self.redis_queued.get_metric_with_label_values(&[label])?,
            connections: self.redis_connections.get_metric_with_label_values(&[label])?,
            reconnections: self.redis_reconnections.get_metric_with_label_values(&[label])?,
            reads: [
                self.redis_reads
                    .get_metric_with_label_values(&[label, "replica"])?,
                self.redis_reads
                    .get_metric_with_label_values(&[label, "primary"])?,
            ],
        })
    }

    /// Records one answered request.
    pub fn observe(&self, route: &'static str, status: StatusCode, elapsed: Duration) {
        let r = route_index(route);
        let code = status.as_u16();
        let s = STATUSES.iter().position(|c| *c == code).unwrap_or(STATUSES.len());
        if let Some(counter) = self.requests.get(r).and_then(|row| row.get(s)) {
            counter.inc();
        }
        if let Some(h) = self.duration.get(r) {
            h.observe(elapsed.as_secs_f64());
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on a malformed metric, which we never build.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
