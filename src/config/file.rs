//! The TOML config file, as written: every key optional, unknown keys refused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// A size in bytes: an integer, or a string with a unit (`"10MiB"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Size {
    /// Plain bytes.
    Bytes(u64),
    /// With a unit.
    Text(String),
}

/// A count: an integer, or a word such as `"auto"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Count {
    /// A number.
    N(u64),
    /// A word.
    Word(String),
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// REST API address.
    pub listen: Option<String>,
    /// Admin address, or "off".
    pub admin_listen: Option<String>,
    /// Redis for the default tenant.
    pub redis_url: Option<String>,
    /// Where read-only commands go: "primary" or "replicas" (Sentinel URLs).
    pub read_from: Option<String>,
    /// Full-access token of the default tenant.
    pub token: Option<String>,
    /// Read-only token of the default tenant.
    pub read_only_token: Option<String>,
    /// Largest request body.
    pub max_request_size: Option<Size>,
    /// Command timeout (`"10s"`).
    pub command_timeout: Option<String>,
    /// Shared, pipelined connections per backend.
    pub connections: Option<usize>,
    /// Shutdown drain deadline.
    pub shutdown_timeout: Option<String>,
    /// Log filter.
    pub log: Option<String>,
    /// Workers: a number or `"auto"`.
    pub worker_threads: Option<Count>,
    /// Bearer token of the admin listener's `/usage` and `/metrics`.
    pub admin_token: Option<String>,
    /// `"acl"` (default) or `"off"`: how tenants sharing one Redis are kept apart.
    pub shared_redis_isolation: Option<String>,
    /// TLS on the API listener.
    #[serde(default)]
    pub tls: TlsFile,
    /// HTTP connection limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Browser CORS.
    #[serde(default)]
    pub cors: CorsFile,
    /// The web console.
    #[serde(default)]
    pub console: ConsoleFile,
    /// Command policy.
    #[serde(default)]
    pub policy: PolicyFile,
    /// Server-sent event streams.
    #[serde(default)]
    pub streams: StreamsFile,
    /// Blocking commands.
    #[serde(default)]
    pub blocking: BlockingFile,
    /// Named tenants.
    #[serde(default)]
    pub tenants: BTreeMap<String, TenantFile>,
    /// Default quotas of every tenant.
    #[serde(default)]
    pub quota: QuotaFile,
    /// Quota alerts.
    #[serde(default)]
    pub alerts: AlertsFile,
    /// Where usage is kept.
    #[serde(default)]
    pub metering: MeteringFile,
}

/// A quota limit: a number, a size with a unit (bandwidth), or `"unlimited"`; `0` is
/// unlimited too.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    /// A count or bytes.
    Number(u64),
    /// A size with a unit, or `"unlimited"`.
    Text(String),
}

/// `[quota]` and `[tenants.NAME.quota]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaFile {
    /// Commands per UTC day.
    pub daily_commands: Option<Limit>,
    /// Commands per calendar month.
    pub monthly_commands: Option<Limit>,
    /// Bytes per UTC day.
    pub daily_bandwidth: Option<Limit>,
    /// Bytes per calendar month.
    pub monthly_bandwidth: Option<Limit>,
    /// Requests per second.
    pub requests_per_second: Option<Limit>,
    /// Token bucket size.
    pub burst: Option<Limit>,
    /// Fractions of a quota at which an alert fires (default `[0.8, 1.0]`).
    pub alert_thresholds: Option<Vec<f64>>,
}

/// `[tls]`: the API listener's certificate and key (PEM files).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// Certificate chain, leaf first.
    pub cert: Option<std::path::PathBuf>,
    /// Its private key.
    pub key: Option<std::path::PathBuf>,
}

/// `[alerts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    /// Where quota alerts are POSTed.
    pub webhook_url: Option<String>,
    /// HMAC-SHA256 key of the `X-Restdis-Signature` header.
    pub webhook_secret: Option<String>,
}

/// `[metering]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeteringFile {
    /// Keep usage in Redis (default: when any tenant has a daily or monthly quota).
    pub persist: Option<bool>,
    /// The Redis that keeps it (default: the top-level `redis_url`).
    pub redis_url: Option<String>,
    /// Its database, which no tenant may use (default 15).
    pub db: Option<i64>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Open HTTP connections at most.
    pub max_connections: Option<usize>,
    /// Time to send a request head.
    pub header_read_timeout: Option<String>,
    /// Time to send a whole request body.
    pub body_read_timeout: Option<String>,
    /// Requests in flight to one Redis at most.
    pub max_in_flight: Option<usize>,
    /// Time a request waits for a place among those in flight.
    pub queue_timeout: Option<String>,
}

/// `[cors]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsFile {
    /// Whether CORS headers are sent.
    pub enabled: Option<bool>,
    /// Allowed origins.
    pub origins: Option<Vec<String>>,
}

/// `[console]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleFile {
    /// Whether `/console` is served (default: only on a loopback listener).
    pub enabled: Option<bool>,
}

/// `[policy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Commands refused for everyone (replaces the default list).
    pub deny: Option<Vec<String>>,
}

/// `[streams]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsFile {
    /// Open streams at most, all tenants together.
    pub max_total: Option<usize>,
    /// Open streams at most per tenant.
    pub max_per_tenant: Option<usize>,
    /// Heartbeat interval.
    pub heartbeat: Option<String>,
    /// Whether `/monitor` is served.
    pub monitor: Option<bool>,
    /// Bytes of frames at most waiting for one stream's client.
    pub max_buffer: Option<Size>,
}

/// `[blocking]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingFile {
    /// `emulate` (default, as Upstash) or `dedicated`.
    pub mode: Option<String>,
    /// Dedicated connections at most per backend.
    pub pool_size: Option<usize>,
    /// Longest wait a blocking command may ask for.
    pub max_timeout: Option<String>,
}

/// `[tenants.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// Tokens of this tenant.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Tokens of this tenant that may only read.
    #[serde(default)]
    pub read_only_tokens: Vec<String>,
    /// Makes every token of this tenant read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Its Redis (default: the top-level `redis_url`).
    pub redis_url: Option<String>,
    /// Where its read-only commands go (default: the top-level `read_from`).
    pub read_from: Option<String>,
    /// Its database index (default: the one in the URL, else 0).
    pub db: Option<i64>,
    /// Shared, pipelined connections for it (default: `connections`).
    pub pool_size: Option<usize>,
    /// Its quotas, key by key over `[quota]`.
    #[serde(default)]
    pub quota: QuotaFile,
}

impl FileConfig {
    /// Reads and parses a file; the error names the file and the bad key or value.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}
