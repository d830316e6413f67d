//! Prometheus metrics, served on the admin listener at `/metrics`. Labels come from fixed
//! sets (route names, status codes), never from keys, paths, tokens or error texts.

use std::time::Duration;

use hyper::StatusCode;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    /// HTTP connections currently open.
    pub open_connections: IntGauge,
    /// Backends with at least one live Redis connection.
    pub backends_up: IntGauge,
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "restdis_http_requests_total",
                "HTTP requests by route and status code",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "restdis_http_request_duration_seconds",
                "Time to answer, by route",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                10.0,
            ]),
            &["route"],
        )?;
        let open_connections = IntGauge::new("restdis_http_open_connections", "HTTP connections open")?;
        let backends_up = IntGauge::new("restdis_backends_up", "Backends with a live Redis connection")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(open_connections.clone()))?;
        registry.register(Box::new(backends_up.clone()))?;
        Ok(Self {
            registry,
            requests,
            duration,
            open_connections,
            backends_up,
        })
    }

    /// Records one answered request.
    pub fn observe(&self, route: &'static str, status: StatusCode, elapsed: Duration) {
        self.requests.with_label_values(&[route, status.as_str()]).inc();
        self.duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on a malformed metric, which we never build.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
