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
    /// Runtime worker threads.
    pub worker_threads: Option<usize>,
    /// `"acl"` (default) or `"off"`: how tenants sharing one Redis are kept apart.
    pub shared_redis_isolation: Option<String>,
    /// HTTP connection limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// Browser CORS.
    #[serde(default)]
    pub cors: CorsFile,
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
    /// Its database index (default: the one in the URL, else 0).
    pub db: Option<i64>,
    /// Shared, pipelined connections for it (default: `connections`).
    pub pool_size: Option<usize>,
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
