//! Prometheus metrics, served on the admin listener at `/metrics`. Labels come from fixed
//! sets (route names, status codes), never from keys, paths, tokens or error texts. The
//! per-request handles are resolved once at start-up, so recording a request is an array
//! index and two atomic adds, with no hashing.

use std::time::Duration;

use hyper::StatusCode;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Route labels, in the order of [`route_index`].
const ROUTES: [&str; 7] = [
    "single",
    "path",
    "pipeline",
    "multi_exec",
    "subscribe",
    "psubscribe",
    "monitor",
];
/// Status codes with their own series; any other is counted as "other".
const STATUSES: [u16; 12] = [200, 204, 400, 401, 404, 405, 408, 413, 429, 500, 503, 504];

fn route_index(route: &str) -> usize {
    ROUTES.iter().position(|r| *r == route).unwrap_or(0)
}

/// The server's metrics.
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
