//! Command-line flags, each with a `RESTDIS_*` environment twin (clap gives a flag precedence
//! over its variable; [`crate::config`] then falls back to the config file, then defaults).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// restdis: the Upstash Redis REST protocol in front of your own Redis.
///
/// Without a subcommand it runs the server; `restdis migrate` copies keys between Redis and
/// REST endpoints (docs/migrate.md).
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "restdis", version, about, long_about = None)]
pub struct Cli {
    /// A tool instead of the server (none: run the server with the flags below).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address for the REST API [default: 127.0.0.1:8079]
    #[arg(long, env = "RESTDIS_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Redis to forward to [default: redis://127.0.0.1:6379, or a private redis-server when
    /// nothing answers there]
    #[arg(long, env = "RESTDIS_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// Where read-only commands go with a Sentinel URL: "primary" or "replicas" (then
    /// upstash-sync-token carries a replication position) [default: primary]
    #[arg(long, env = "RESTDIS_READ_FROM", value_name = "primary|replicas")]
    pub read_from: Option<String>,

    /// Full-access token [default: generated and printed, on a loopback listener only]
    #[arg(long, env = "RESTDIS_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,

    /// Read-only token (read commands only)
    #[arg(
        long,
        env = "RESTDIS_READ_ONLY_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub read_only_token: Option<String>,

    /// TOML config file (see config/restdis.example.toml)
    #[arg(long, env = "RESTDIS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Serve the REST API over TLS with this certificate chain (PEM, leaf first; with
    /// --tls-key). Reloaded when the file changes [default: plain HTTP]
    #[arg(long, env = "RESTDIS_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC)
    #[arg(long, env = "RESTDIS_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Address for /healthz, /readyz and /metrics, or "off" [default: 127.0.0.1:9079]
    #[arg(long, env = "RESTDIS_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<String>,

    /// Largest request body: bytes, or with a unit (KiB, MiB, GiB, KB, MB, GB) [default: 10MiB]
    #[arg(long, env = "RESTDIS_MAX_REQUEST_SIZE", value_name = "BYTES")]
    pub max_request_size: Option<String>,

    /// Bytes of events at most waiting for one stream's client before restdis ends the stream
    /// (`[streams] max_buffer`): bytes, or with a unit [default: 1MiB]
    #[arg(long, env = "RESTDIS_STREAM_MAX_BUFFER", value_name = "BYTES")]
    pub stream_max_buffer: Option<String>,

    /// Time a command may take before the request gets a 504 [default: 10s]
    #[arg(long, env = "RESTDIS_COMMAND_TIMEOUT", value_name = "DURATION")]
    pub command_timeout: Option<String>,

    /// Shared, pipelined Redis connections per backend [default: 1]
    #[arg(long, env = "RESTDIS_CONNECTIONS", value_name = "N")]
    pub connections: Option<usize>,

    /// Allowed CORS origins, comma-separated; "*" for any, "off" to disable [default: *]
    #[arg(long, env = "RESTDIS_CORS_ORIGINS", value_name = "LIST")]
    pub cors_origins: Option<String>,

    /// Time in-flight requests get to finish on SIGINT/SIGTERM [default: 10s]
    #[arg(long, env = "RESTDIS_SHUTDOWN_TIMEOUT", value_name = "DURATION")]
    pub shutdown_timeout: Option<String>,

    /// Log filter (tracing env-filter syntax) [default: info]
    #[arg(long, env = "RESTDIS_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Workers, each a single-threaded event loop with its own listener socket (SO_REUSEPORT)
    /// and its own Redis connections; "auto" = one per available core [default: 1]
    #[arg(long, env = "RESTDIS_WORKER_THREADS", value_name = "N|auto")]
    pub worker_threads: Option<String>,

    /// Tenants that share one Redis: "acl" gives each its own Redis ACL user (a hard boundary,
    /// refused at start when Redis cannot enforce it), "off" runs them unisolated [default: acl]
    #[arg(long, env = "RESTDIS_SHARED_REDIS_ISOLATION", value_name = "acl|off")]
    pub shared_redis_isolation: Option<String>,

    /// Bearer token the admin listener asks for on /usage and /metrics (/healthz and /readyz
    /// stay open for probes) [default: none]
    #[arg(
        long,
        env = "RESTDIS_ADMIN_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub admin_token: Option<String>,

    /// With no token configured, generate one and print it even when listening off loopback
    /// (the container image sets this; restdis never serves without a token)
    #[arg(long, env = "RESTDIS_GENERATE_TOKEN")]
    pub generate_token: bool,

    /// The web console at /console on the API listener: "on" or "off" [default: on for a
    /// loopback listener, off otherwise]
    #[arg(long, env = "RESTDIS_CONSOLE", value_name = "on|off")]
    pub console: Option<String>,

    /// Validate the configuration, print a summary and exit
    #[arg(long, env = "RESTDIS_CHECK_CONFIG")]
    pub check_config: bool,
}

/// The subcommands; their flags are their own, separate from the server's.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Copy keys (with values and TTLs) from one Redis or REST endpoint to another
    Migrate(Box<MigrateArgs>),
    /// Exit 0 when the admin listener's /readyz answers 200 within 2 s, else 1 (for container
    /// health checks; needs no curl)
    Healthcheck {
        /// The admin address to ask [default: RESTDIS_ADMIN_LISTEN, else 127.0.0.1:9079; an
        /// unspecified address such as 0.0.0.0 is asked on loopback]
        #[arg(long, value_name = "ADDR")]
        addr: Option<String>,
    },
}

/// `restdis migrate` flags (docs/migrate.md), each with a `RESTDIS_MIGRATE_*` twin.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Source: redis://, rediss://, unix:// URL, or an Upstash-style REST endpoint http(s)://HOST
    /// (a URL may hold a password: its variable's value is never shown)
    #[arg(
        long,
        env = "RESTDIS_MIGRATE_FROM",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub from: String,

    /// Destination, in the same forms as --from
    #[arg(long, env = "RESTDIS_MIGRATE_TO", hide_env_values = true, value_name = "URL")]
    pub to: String,

    /// Token of a REST source [default: UPSTASH_REDIS_REST_TOKEN when UPSTASH_REDIS_REST_URL is --from]
    #[arg(
        long,
        env = "RESTDIS_MIGRATE_FROM_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub from_token: Option<String>,

    /// Token of a REST destination [default: UPSTASH_REDIS_REST_TOKEN when UPSTASH_REDIS_REST_URL is --to]
    #[arg(
        long,
        env = "RESTDIS_MIGRATE_TO_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub to_token: Option<String>,

    /// Only keys matching this SCAN pattern
    #[arg(long = "match", env = "RESTDIS_MIGRATE_MATCH", value_name = "PATTERN")]
    pub pattern: Option<String>,

    /// Only keys of this type (string, hash, list, set, zset, stream)
    #[arg(long = "type", env = "RESTDIS_MIGRATE_TYPE", value_name = "TYPE")]
    pub key_type: Option<String>,

    /// Source database (Redis sources; overrides the URL's)
    #[arg(long, env = "RESTDIS_MIGRATE_DB", value_name = "N")]
    pub db: Option<i64>,

    /// Overwrite keys that exist at the destination
    #[arg(long, env = "RESTDIS_MIGRATE_REPLACE", conflicts_with = "skip_existing")]
    pub replace: bool,

    /// Leave keys that exist at the destination alone (counted as skipped)
    #[arg(long, env = "RESTDIS_MIGRATE_SKIP_EXISTING")]
    pub skip_existing: bool,

    /// Copy mode: dump (DUMP/RESTORE), logical (by type), or auto (dump between Redis servers,
    /// logical when DUMP/RESTORE is refused and to REST destinations)
    #[arg(
        long,
        env = "RESTDIS_MIGRATE_MODE",
        value_name = "auto|dump|logical",
        default_value = "auto"
    )]
    pub mode: String,

    /// Batches copied at the same time
    #[arg(
        long,
        env = "RESTDIS_MIGRATE_CONCURRENCY",
        value_name = "N",
        default_value_t = 4
    )]
    pub concurrency: usize,

    /// Keys per SCAN batch (the SCAN COUNT hint) and per pipeline
    #[arg(long, env = "RESTDIS_MIGRATE_BATCH", value_name = "N", default_value_t = 500)]
    pub batch: usize,

    /// Commands per second at most, reads and writes together [default: no cap]
    #[arg(long, env = "RESTDIS_MIGRATE_RATE", value_name = "N")]
    pub rate: Option<u64>,

    /// Largest request to the destination: bytes, or with a unit (KiB, MiB) [default: 1MiB for
    /// REST destinations, 64MiB for Redis]
    #[arg(long, env = "RESTDIS_MIGRATE_MAX_REQUEST_SIZE", value_name = "BYTES")]
    pub max_request_size: Option<String>,

    /// Stop after about this many keys (whole SCAN batches; with --checkpoint a re-run continues)
    #[arg(long, env = "RESTDIS_MIGRATE_LIMIT", value_name = "N")]
    pub limit: Option<u64>,

    /// Checkpoint file (JSON): written as batches finish and on Ctrl-C; a re-run continues from it
    #[arg(long, env = "RESTDIS_MIGRATE_CHECKPOINT", value_name = "FILE")]
    pub checkpoint: Option<PathBuf>,

    /// Keys between two checkpoint writes, at most
    #[arg(
        long,
        env = "RESTDIS_MIGRATE_CHECKPOINT_EVERY",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub checkpoint_every: u64,

    /// List the keys that would be copied (key, type, TTL in ms) and copy nothing
    #[arg(long, env = "RESTDIS_MIGRATE_DRY_RUN")]
    pub dry_run: bool,

    /// After copying, compare each key (type, length, value digest, TTL presence)
    #[arg(long, env = "RESTDIS_MIGRATE_VERIFY")]
    pub verify: bool,

    /// Verify only this many keys (the first ones SCAN returns)
    #[arg(long, env = "RESTDIS_MIGRATE_VERIFY_SAMPLE", value_name = "N")]
    pub verify_sample: Option<u64>,

    /// Progress: auto (a live line on a terminal, periodic lines otherwise), plain, or off
    #[arg(
        long,
        env = "RESTDIS_MIGRATE_PROGRESS",
        value_name = "auto|plain|off",
        default_value = "auto"
    )]
    pub progress: String,
}

/// Environment variables restdis reads that are not flags.
pub const EXTRA_ENV: &[&str] = &["RESTDIS_REDIS_SERVER"];
