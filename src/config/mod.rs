//! The resolved configuration, [`Config`], built by [`Config::resolve`] from the flags and
//! their `RESTDIS_*` variables, the TOML file, SRH's variables and defaults, in that order of
//! precedence. Everything is validated here, before anything starts: an unknown key, a
//! malformed value, a misspelt variable or an open listener without a token is an error that
//! names the culprit.

pub mod file;
mod srh;
pub mod topology;

use crate::backend::replicas::ReadFrom;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::CommandFactory;

use crate::cli::{Cli, EXTRA_ENV};
use crate::http::reply::Cors;
use crate::http::sse::StreamSettings;
use crate::http::tls::{self, TlsFiles};
use crate::http::ListenerLimits;
use crate::metering::quota::Limits;
use crate::protocol::policy::Blocking;
use crate::protocol::policy::DEFAULT_DENY;
use file::{FileConfig, Limit, QuotaFile, Size};

/// Defaults, in one place.
pub mod defaults {
    /// REST API address.
    pub const LISTEN: &str = "127.0.0.1:8079";
    /// Admin address.
    pub const ADMIN_LISTEN: &str = "127.0.0.1:9079";
    /// Redis URL.
    pub const REDIS_URL: &str = "redis://127.0.0.1:6379";
    /// Body limit: 10 MiB, Upstash's.
    pub const MAX_REQUEST_SIZE: u64 = 10 * 1024 * 1024;
    /// Command timeout.
    pub const COMMAND_TIMEOUT: &str = "10s";
    /// Shared, pipelined connections per backend.
    pub const CONNECTIONS: usize = 1;
    /// Shutdown drain deadline.
    pub const SHUTDOWN_TIMEOUT: &str = "10s";
    /// Open HTTP connections at most.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// Time to send a request head.
    pub const HEADER_READ_TIMEOUT: &str = "10s";
    /// Time to send a request body.
    pub const BODY_READ_TIMEOUT: &str = "30s";
    /// Requests in flight to one Redis at most.
    pub const MAX_IN_FLIGHT: usize = 10_000;
    /// Time a request waits for a place among those in flight.
    pub const QUEUE_TIMEOUT: &str = "1s";
    /// Open streams at most.
    pub const STREAMS_MAX_TOTAL: usize = 4096;
    /// Open streams at most per tenant.
    pub const STREAMS_MAX_PER_TENANT: usize = 1024;
    /// Heartbeat interval of streams.
    pub const STREAMS_HEARTBEAT: &str = "1s";
    /// Bytes of frames at most waiting for one stream's client (1 MiB).
    pub const STREAMS_MAX_BUFFER: u64 = 1024 * 1024;
    /// The database that keeps usage, on the metering Redis.
    pub const METERING_DB: i64 = 15;
    /// Dedicated blocking connections per backend.
    pub const BLOCKING_POOL_SIZE: usize = 16;
    /// Longest wait of a blocking command in dedicated mode.
    pub const BLOCKING_MAX_TIMEOUT: &str = "30s";
}

/// How blocking commands run.
#[derive(Debug, Clone, Copy)]
pub struct BlockingSettings {
    /// Emulated (non-blocking, as Upstash) or on dedicated connections.
    pub mode: Blocking,
    /// Dedicated connections at most per backend.
    pub pool_size: usize,
    /// Longest wait a command may ask for (longer, or 0 = forever, is capped to this).
    pub max_timeout: Duration,
}

/// How tenants that share one Redis are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationMode {
    /// Each gets a Redis ACL user of its own (`backend::isolation`); start fails if Redis
    /// cannot enforce it.
    Acl,
    /// No ACL users: scripts can reach other tenants' databases (a warning at start and in
    /// `/readyz`).
    Off,
}

/// One tenant as configured.
#[derive(Debug, Clone)]
pub struct TenantConfig {
    /// Its name (logs, metrics).
    pub name: String,
    /// Full-access tokens.
    pub tokens: Vec<String>,
    /// Read-only tokens.
    pub read_only_tokens: Vec<String>,
    /// Its Redis.
    pub redis_url: String,
    /// Where its read-only commands go.
    pub read_from: ReadFrom,
    /// Database index overriding the URL's.
    pub db: Option<i64>,
    /// Shared, pipelined connections.
    pub connections: usize,
    /// Its quotas (`[quota]`, overridden key by key by `[tenants.NAME.quota]`).
    pub limits: Limits,
    /// Fractions of a quota at which alerts fire, ascending.
    pub alert_thresholds: Vec<f64>,
}

/// Where usage is kept, and where quota alerts go.
#[derive(Debug, Clone)]
pub struct MeteringSettings {
    /// Usage is kept in Redis (survives restarts, shared by instances).
    pub persist: bool,
    /// The Redis that keeps it.
    pub redis_url: String,
    /// Its database (no tenant may use it on that server).
    pub db: i64,
    /// `[alerts] webhook_url`.
    pub webhook_url: Option<String>,
    /// `[alerts] webhook_secret`.
    pub webhook_secret: Option<String>,
}

/// Whether the web console is served, and why (said in a start-up log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// `/console` is served on the API listener.
    pub enabled: bool,
    /// Where the setting came from.
    pub why: &'static str,
}

/// Most workers accepted: more than cores only adds switching.
const MAX_WORKERS: usize = 256;

/// `worker_threads` from the flag (or its variable), else the file: a number (0 means 1) or
/// `auto`, one per available core.
fn workers(flag: Option<String>, file: Option<file::Count>) -> Result<usize, String> {
    let text = match (flag, file) {
        (Some(t), _) => t,
        (None, Some(file::Count::N(n))) => n.to_string(),
        (None, Some(file::Count::Word(w))) => w,
        (None, None) => return Ok(1),
    };
    let n = if text.trim().eq_ignore_ascii_case("auto") {
        std::thread::available_parallelism().map(usize::from).unwrap_or(1)
    } else {
        text.trim()
            .parse::<usize>()
            .map_err(|_| format!("worker_threads: '{text}' is neither a number nor auto"))?
    };
    if n > MAX_WORKERS {
        return Err(format!("worker_threads: {n} is more than {MAX_WORKERS}"));
    }
    Ok(n.max(1))
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// REST API address.
    pub listen: SocketAddr,
    /// Admin address, if enabled.
    pub admin_listen: Option<SocketAddr>,
    /// TLS on the API listener: its certificate and key files (checked by
    /// [`crate::http::tls::load`] here already).
    pub tls: Option<TlsFiles>,
    /// Tenants (at least one).
    pub tenants: Vec<TenantConfig>,
    /// Body limit in bytes.
    pub max_request_size: u64,
    /// Time a client gets to send its whole body.
    pub body_read_timeout: Duration,
    /// Requests in flight to one Redis at most.
    pub max_in_flight: usize,
    /// Time a request waits for a place among those in flight.
    pub queue_timeout: Duration,
    /// Command timeout.
    pub command_timeout: Duration,
    /// CORS.
    pub cors: Cors,
    /// Operator deny-list.
    pub deny: Vec<String>,
    /// Connection limits of the API listener.
    pub limits: ListenerLimits,
    /// Stream limits.
    pub streams: StreamSettings,
    /// Blocking commands.
    pub blocking: BlockingSettings,
    /// Log filter.
    pub log: String,
    /// Whether tenants sharing one Redis get ACL users of their own.
    pub isolation: IsolationMode,
    /// Usage persistence and alerts.
    pub metering: MeteringSettings,
    /// Bearer token the admin listener asks for (`/usage`, `/metrics`).
    pub admin_token: Option<String>,
    /// Workers, each a current-thread runtime with its own listener socket and Redis
    /// connections (1, the default, is one event loop).
    pub worker_threads: usize,
    /// The web console at `/console`.
    pub console: ConsoleSettings,
    /// A token restdis generated because none was configured (loopback only).
    pub generated_token: Option<String>,
    /// No Redis URL was configured anywhere: a private redis-server may be started.
    pub dev_redis: bool,
    /// Non-fatal findings to log at start.
    pub warnings: Vec<String>,
}

impl Config {
    /// Resolves the configuration from the parsed flags and a snapshot of the environment.
    pub fn resolve(cli: &Cli, env: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut warnings = check_env_names(env)?;
        let file = match &cli.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        let srh = srh::from_env(env)?;

        let listen_text = cli.listen.clone().or(file.listen.clone());
        let listen_text = match (&listen_text, &srh) {
            (None, Some(srh)) => srh.listen.clone(),
            _ => listen_text.unwrap_or_else(|| defaults::LISTEN.to_string()),
        };
        let listen = parse_addr("listen", &listen_text)?;
        let admin_text = cli
            .admin_listen
            .clone()
            .or(file.admin_listen.clone())
            .unwrap_or_else(|| defaults::ADMIN_LISTEN.to_string());
        let admin_listen = if admin_text.eq_ignore_ascii_case("off") {
            None
        } else {
            Some(parse_addr("admin_listen", &admin_text)?)
        };

        let tls = tls_files(cli, &file)?;
        let connections = cli
            .connections
            .or(file.connections)
            .unwrap_or(defaults::CONNECTIONS);
        if connections == 0 {
            return Err("connections must be at least 1".into());
        }
        let redis_url_given = cli.redis_url.clone().or(file.redis_url.clone());
        let dev_redis = redis_url_given.is_none()
            && srh.is_none()
            && file.tenants.values().all(|t| t.redis_url.is_none());
        let redis_url = redis_url_given
            .clone()
            .unwrap_or_else(|| defaults::REDIS_URL.to_string());

        let read_from = match cli.read_from.as_deref().or(file.read_from.as_deref()) {
            Some(text) => ReadFrom::parse(text)?,
            None => ReadFrom::Primary,
        };
        let global_limits = limits("quota", &QuotaFile::default(), &file.quota)?;
        let global_thresholds = thresholds("quota.alert_thresholds", file.quota.alert_thresholds.as_deref())?;
        let mut tenants = Vec::new();
        for (name, t) in &file.tenants {
            let (tokens, mut ro) = if t.read_only {
                (Vec::new(), t.tokens.clone())
            } else {
                (t.tokens.clone(), Vec::new())
            };
            ro.extend(t.read_only_tokens.iter().cloned());
            if tokens.is_empty() && ro.is_empty() {
                return Err(format!("tenant '{name}' has no tokens"));
            }
            tenants.push(TenantConfig {
                name: name.clone(),
                tokens,
                read_only_tokens: ro,
                redis_url: t.redis_url.clone().unwrap_or_else(|| redis_url.clone()),
                read_from: match &t.read_from {
                    Some(text) => ReadFrom::parse(text).map_err(|e| format!("tenant '{name}': {e}"))?,
                    None => read_from,
                },
                db: t.db,
                connections: t.pool_size.unwrap_or(connections),
                limits: limits(&format!("tenants.{name}.quota"), &file.quota, &t.quota)?,
                alert_thresholds: match &t.quota.alert_thresholds {
                    Some(list) => thresholds(&format!("tenants.{name}.quota.alert_thresholds"), Some(list))?,
                    None => global_thresholds.clone(),
                },
            });
        }
        if let Some(srh) = srh {
            tenants.extend(srh.tenants.into_iter().map(|t| TenantConfig {
                limits: global_limits,
                alert_thresholds: global_thresholds.clone(),
                ..t
            }));
        }

        let token = cli.token.clone().or(file.token.clone());
        let read_only_token = cli.read_only_token.clone().or(file.read_only_token.clone());
        let mut generated_token = None;
        if token.is_some() || read_only_token.is_some() || tenants.is_empty() {
            let token = match token {
                Some(t) => Some(t),
                None if tenants.is_empty() && read_only_token.is_none() => {
                    // Never an open server: off loopback a token is generated (and printed) only
                    // when asked for, as the container image does.
                    if !listen.ip().is_loopback() && !cli.generate_token {
                        return Err(format!(
                            "refusing to listen on {listen} without a token: set --token (RESTDIS_TOKEN) or \
                             configure tenants, or listen on a loopback address, or pass --generate-token \
                             (RESTDIS_GENERATE_TOKEN=1) to have one generated and printed"
                        ));
                    }
                    let t = random_token();
                    generated_token = Some(t.clone());
                    Some(t)
                }
                None => None,
            };
            tenants.insert(
                0,
                TenantConfig {
                    name: "default".into(),
                    tokens: token.into_iter().collect(),
                    read_only_tokens: read_only_token.into_iter().collect(),
                    redis_url: redis_url.clone(),
                    read_from,
                    db: None,
                    connections,
                    limits: global_limits,
                    alert_thresholds: global_thresholds.clone(),
                },
            );
        }
        check_tokens(&tenants)?;

        let max_request_size = match cli
            .max_request_size
            .clone()
            .map(Size::Text)
            .or(file.max_request_size.clone())
        {
            Some(size) => parse_size("max_request_size", &size)?,
            None => defaults::MAX_REQUEST_SIZE,
        };
        let command_timeout = duration(
            "command_timeout",
            cli.command_timeout.as_deref().or(file.command_timeout.as_deref()),
            defaults::COMMAND_TIMEOUT,
        )?;
        let shutdown_timeout = duration(
            "shutdown_timeout",
            cli.shutdown_timeout
                .as_deref()
                .or(file.shutdown_timeout.as_deref()),
            defaults::SHUTDOWN_TIMEOUT,
        )?;
        let header_read_timeout = duration(
            "limits.header_read_timeout",
            file.limits.header_read_timeout.as_deref(),
            defaults::HEADER_READ_TIMEOUT,
        )?;
        let body_read_timeout = duration(
            "limits.body_read_timeout",
            file.limits.body_read_timeout.as_deref(),
            defaults::BODY_READ_TIMEOUT,
        )?;
        let queue_timeout = duration(
            "limits.queue_timeout",
            file.limits.queue_timeout.as_deref(),
            defaults::QUEUE_TIMEOUT,
        )?;
        let max_in_flight = file
            .limits
            .max_in_flight
            .unwrap_or(defaults::MAX_IN_FLIGHT)
            .max(1);
        let log = cli
            .log
            .clone()
            .or(file.log.clone())
            .unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log)
            .map_err(|e| format!("log: '{log}' is not a valid filter ({e})"))?;
        let cors = match &cli.cors_origins {
            Some(list) if list.trim().eq_ignore_ascii_case("off") => Cors {
                enabled: false,
                origins: Vec::new(),
            },
            Some(list) => Cors {
                enabled: true,
                origins: list
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            },
            None => Cors {
                enabled: file.cors.enabled.unwrap_or(true),
                origins: file.cors.origins.clone().unwrap_or_else(|| vec!["*".into()]),
            },
        };
        let streams = StreamSettings {
            max_total: file.streams.max_total.unwrap_or(defaults::STREAMS_MAX_TOTAL),
            max_per_tenant: file
                .streams
                .max_per_tenant
                .unwrap_or(defaults::STREAMS_MAX_PER_TENANT),
            heartbeat: duration(
                "streams.heartbeat",
                file.streams.heartbeat.as_deref(),
                defaults::STREAMS_HEARTBEAT,
            )?,
            monitor: file.streams.monitor.unwrap_or(true),
            max_buffer: match cli
                .stream_max_buffer
                .clone()
                .map(Size::Text)
                .or(file.streams.max_buffer.clone())
            {
                Some(size) => usize::try_from(parse_size("streams.max_buffer", &size)?)
                    .map_err(|_| "streams.max_buffer is out of range".to_string())?,
                None => defaults::STREAMS_MAX_BUFFER as usize,
            },
        };
        let blocking = BlockingSettings {
            mode: match file.blocking.mode.as_deref().unwrap_or("emulate") {
                "emulate" => Blocking::Emulate,
                "dedicated" => Blocking::Dedicated,
                other => {
                    return Err(format!(
                        "blocking.mode: '{other}' is neither emulate nor dedicated"
                    ))
                }
            },
            pool_size: file
                .blocking
                .pool_size
                .unwrap_or(defaults::BLOCKING_POOL_SIZE)
                .max(1),
            max_timeout: duration(
                "blocking.max_timeout",
                file.blocking.max_timeout.as_deref(),
                defaults::BLOCKING_MAX_TIMEOUT,
            )?,
        };
        let isolation = match cli
            .shared_redis_isolation
            .as_deref()
            .or(file.shared_redis_isolation.as_deref())
            .unwrap_or("acl")
        {
            "acl" => IsolationMode::Acl,
            "off" => IsolationMode::Off,
            other => {
                return Err(format!(
                    "shared_redis_isolation: '{other}' is neither acl nor off"
                ))
            }
        };
        let persist = file
            .metering
            .persist
            .unwrap_or_else(|| tenants.iter().any(|t| t.limits.any_period()));
        let metering = MeteringSettings {
            persist,
            // The configured Redis; with tenants only, the first tenant's.
            redis_url: file
                .metering
                .redis_url
                .clone()
                .or(redis_url_given.clone())
                .or_else(|| tenants.first().map(|t| t.redis_url.clone()))
                .unwrap_or_else(|| redis_url.clone()),
            db: file.metering.db.unwrap_or(defaults::METERING_DB),
            webhook_url: file.alerts.webhook_url.clone(),
            webhook_secret: file.alerts.webhook_secret.clone(),
        };
        if persist {
            check_redis_url("metering", &metering.redis_url)?;
            if !matches!(
                topology::parse(&metering.redis_url),
                Ok(topology::RedisTarget::Single(_))
            ) {
                return Err(
                    "metering: usage is kept in one Redis (redis://, rediss://, unix://), not in a cluster or behind Sentinel; set [metering] redis_url".into(),
                );
            }
        }
        if let Some(url) = &metering.webhook_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "alerts.webhook_url: '{url}' is not an http:// or https:// URL"
                ));
            }
        }
        let admin_token = cli.admin_token.clone().or(file.admin_token.clone());
        if admin_token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err("admin_token is empty".into());
        }
        if admin_token.is_none() && admin_listen.is_some_and(|a| !a.ip().is_loopback()) {
            warnings.push(
                "the admin listener is not on loopback and has no admin_token: /usage and /metrics are open"
                    .into(),
            );
        }
        if !listen.ip().is_loopback() && admin_listen.is_some_and(|a| !a.ip().is_loopback()) {
            warnings.push("the admin listener (metrics, no token) is on a non-loopback address".into());
        }
        let console = match cli.console.as_deref().map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("on") => ConsoleSettings {
                enabled: true,
                why: "--console / RESTDIS_CONSOLE",
            },
            Some(v) if v.eq_ignore_ascii_case("off") => ConsoleSettings {
                enabled: false,
                why: "--console / RESTDIS_CONSOLE",
            },
            Some(other) => return Err(format!("console: '{other}' is neither on nor off")),
            None => match file.console.enabled {
                Some(enabled) => ConsoleSettings {
                    enabled,
                    why: "[console] enabled",
                },
                None if listen.ip().is_loopback() => ConsoleSettings {
                    enabled: true,
                    why: "default for a loopback listener",
                },
                None => ConsoleSettings {
                    enabled: false,
                    why: "default for a non-loopback listener; enable it with --console on",
                },
            },
        };
        Ok(Self {
            console,
            listen,
            admin_listen,
            tls,
            tenants,
            max_request_size,
            command_timeout,
            cors,
            deny: file
                .policy
                .deny
                .clone()
                .unwrap_or_else(|| DEFAULT_DENY.iter().map(|s| s.to_string()).collect()),
            limits: ListenerLimits {
                max_connections: file.limits.max_connections.unwrap_or(defaults::MAX_CONNECTIONS),
                header_read_timeout,
                shutdown_timeout,
            },
            streams,
            blocking,
            log,
            isolation,
            metering,
            admin_token,
            body_read_timeout,
            max_in_flight,
            queue_timeout,
            worker_threads: workers(cli.worker_threads.clone(), file.worker_threads.clone())?,
            generated_token,
            dev_redis,
            warnings,
        })
    }
}

/// `--tls-cert`/`--tls-key` (or `[tls] cert`/`key`): both or neither, and loadable now: a
/// missing, unreadable or non-PEM file, a key that does not match the certificate, or an
/// expired certificate stops the start here, with the reason.
fn tls_files(cli: &Cli, file: &FileConfig) -> Result<Option<TlsFiles>, String> {
    let cert = cli.tls_cert.clone().or(file.tls.cert.clone());
    let key = cli.tls_key.clone().or(file.tls.key.clone());
    let files = match (cert, key) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => TlsFiles { cert, key },
        (Some(_), None) => {
            return Err(
                "tls: --tls-cert (RESTDIS_TLS_CERT, [tls] cert) is set but --tls-key is not; give both"
                    .into(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "tls: --tls-key (RESTDIS_TLS_KEY, [tls] key) is set but --tls-cert is not; give both".into(),
            )
        }
    };
    tls::load(&files, std::time::SystemTime::now())?;
    Ok(Some(files))
}

fn check_tokens(tenants: &[TenantConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for t in tenants {
        for token in t.tokens.iter().chain(&t.read_only_tokens) {
            if token.trim().is_empty() || token.trim() != token {
                return Err(format!(
                    "tenant '{}' has an empty token or one with surrounding spaces",
                    t.name
                ));
            }
            if !seen.insert(token.as_str()) {
                return Err(format!("a token of tenant '{}' is used more than once", t.name));
            }
        }
        check_redis_url(&t.name, &t.redis_url)?;
        if t.read_from == ReadFrom::Replicas
            && matches!(
                topology::parse(&t.redis_url),
                Ok(topology::RedisTarget::Single(_))
            )
        {
            return Err(format!(
                "tenant '{}': read_from = \"replicas\" needs a redis+sentinel:// or redis+cluster:// URL (one Redis has no replicas to read)",
                t.name
            ));
        }
        if matches!(
            topology::parse(&t.redis_url),
            Ok(topology::RedisTarget::Cluster(_))
        ) && t.db.is_some_and(|d| d != 0)
        {
            return Err(format!(
                "tenant '{}': a Redis Cluster has only database 0",
                t.name
            ));
        }
    }
    Ok(())
}

/// A Redis URL restdis can use: parseable (`redis://`, `rediss://` for TLS, `unix://`,
/// `redis+cluster://`, see [`topology`]) and
/// RESP2 (the clients expect RESP2 shapes).
fn check_redis_url(tenant: &str, url: &str) -> Result<(), String> {
    let target = topology::parse(url).map_err(|e| format!("tenant '{tenant}': {e}"))?;
    if target.info().redis_settings().protocol() != redis::ProtocolVersion::RESP2 {
        return Err(format!(
            "tenant '{tenant}': restdis talks RESP2 to Redis; remove the protocol=resp3 option"
        ));
    }
    Ok(())
}

/// One quota limit: a count or size; `0` or `"unlimited"` is none.
fn limit(key: &str, value: &Limit) -> Result<Option<u64>, String> {
    match value {
        Limit::Number(0) => Ok(None),
        Limit::Number(n) => Ok(Some(*n)),
        Limit::Text(t) if t.trim().eq_ignore_ascii_case("unlimited") => Ok(None),
        Limit::Text(t) => parse_size(key, &Size::Text(t.clone())).map(Some),
    }
}

/// A tenant's limits: `own` key by key over `base`.
fn limits(prefix: &str, base: &QuotaFile, own: &QuotaFile) -> Result<Limits, String> {
    let pick = |key: &str, a: &Option<Limit>, b: &Option<Limit>| -> Result<Option<u64>, String> {
        match a.as_ref().or(b.as_ref()) {
            Some(v) => limit(&format!("{prefix}.{key}"), v),
            None => Ok(None),
        }
    };
    Ok(Limits {
        daily_commands: pick("daily_commands", &own.daily_commands, &base.daily_commands)?,
        monthly_commands: pick("monthly_commands", &own.monthly_commands, &base.monthly_commands)?,
        daily_bandwidth: pick("daily_bandwidth", &own.daily_bandwidth, &base.daily_bandwidth)?,
        monthly_bandwidth: pick(
            "monthly_bandwidth",
            &own.monthly_bandwidth,
            &base.monthly_bandwidth,
        )?,
        requests_per_second: pick(
            "requests_per_second",
            &own.requests_per_second,
            &base.requests_per_second,
        )?,
        burst: pick("burst", &own.burst, &base.burst)?,
    })
}

/// Alert thresholds: fractions in (0, 10], ascending (default 0.8 and 1.0).
fn thresholds(key: &str, list: Option<&[f64]>) -> Result<Vec<f64>, String> {
    let mut list = list.map(<[f64]>::to_vec).unwrap_or_else(|| vec![0.8, 1.0]);
    if list.iter().any(|t| !(*t > 0.0 && *t <= 10.0)) {
        return Err(format!(
            "{key}: thresholds are fractions of the quota, like 0.8 or 1.0"
        ));
    }
    list.sort_by(f64::total_cmp);
    list.dedup();
    Ok(list)
}

/// Every `RESTDIS_*` variable restdis knows.
fn known_env() -> Vec<String> {
    let command = Cli::command();
    let mut names: Vec<String> = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()))
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect();
    names.extend(EXTRA_ENV.iter().map(|s| s.to_string()));
    names.extend(srh::KNOWN.iter().map(|s| s.to_string()));
    names
}

/// Unknown `RESTDIS_*`/`SRH_*` variables: an error when one looks like a misspelling of a
/// known name, a warning otherwise.
fn check_env_names(env: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    let known = known_env();
    let mut warnings = Vec::new();
    for name in env
        .keys()
        .filter(|k| k.starts_with("RESTDIS_") || k.starts_with("SRH_"))
    {
        if known.iter().any(|k| k == name) {
            continue;
        }
        if let Some(close) = known.iter().find(|k| edit_distance(k, name) <= 2) {
            return Err(format!(
                "unknown environment variable {name}: did you mean {close}?"
            ));
        }
        warnings.push(format!("ignoring unknown environment variable {name}"));
    }
    Ok(warnings)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn parse_addr(key: &str, text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("{key}: '{text}' is not an address like 127.0.0.1:8079"))
}

fn duration(key: &str, given: Option<&str>, default: &str) -> Result<Duration, String> {
    let text = given.unwrap_or(default);
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{key}: '{text}' is not a duration like 10s or 500ms ({e})"))?;
    if d.is_zero() {
        return Err(format!("{key} must be greater than zero"));
    }
    Ok(d)
}

/// A size in bytes: a number, or a number with a unit (KiB, MiB, GiB, KB, MB, GB); `key` names it
/// in the error.
pub fn parse_size(key: &str, size: &Size) -> Result<u64, String> {
    let text = match size {
        Size::Bytes(b) => return Ok(*b),
        Size::Text(t) => t.trim(),
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{key}: '{text}' is not a size like 10485760 or 10MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1024,
        "mb" => 1000 * 1000,
        "mib" | "m" => 1024 * 1024,
        "gb" => 1000 * 1000 * 1000,
        "gib" | "g" => 1024 * 1024 * 1024,
        other => return Err(format!("{key}: unknown unit '{other}'")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{key}: '{text}' is out of range"))
}

/// 24 random bytes as hex (a generated token of 48 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 24];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness at all is exotic; mix the clock so the token is at least unique.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A human summary of a configuration, without secrets (for `--check-config`).
pub fn summary(c: &Config) -> String {
    let mut out = format!(
        "configuration OK\nlisten: {}\nadmin_listen: {}\nmax_request_size: {} bytes\ncommand_timeout: {:?}\ncors: {}\nconsole: {} ({})\n",
        c.listen,
        c.admin_listen.map(|a| a.to_string()).unwrap_or_else(|| "off".into()),
        c.max_request_size,
        c.command_timeout,
        if c.cors.enabled { c.cors.origins.join(",") } else { "off".into() },
        if c.console.enabled { "on" } else { "off" },
        c.console.why,
    );
    if let Some(t) = &c.tls {
        out.push_str(&format!(
            "tls: cert {}, key {}\n",
            t.cert.display(),
            t.key.display()
        ));
    }
    for t in &c.tenants {
        out.push_str(&format!(
            "tenant {}: {} token(s), {} read-only token(s), {} redis {}{}, {} connection(s)\n",
            t.name,
            t.tokens.len(),
            t.read_only_tokens.len(),
            topology::parse(&t.redis_url).map(|r| r.mode()).unwrap_or("?"),
            redact_url(&t.redis_url),
            t.db.map(|d| format!(" db {d}")).unwrap_or_default(),
            t.connections
        ));
    }
    for t in &c.tenants {
        let l = &t.limits;
        let show = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        if l.any_period() || l.requests_per_second.is_some() {
            out.push_str(&format!(
                "quota {}: daily_commands {}, monthly_commands {}, daily_bandwidth {}, monthly_bandwidth {}, requests_per_second {}\n",
                t.name,
                show(l.daily_commands),
                show(l.monthly_commands),
                show(l.daily_bandwidth),
                show(l.monthly_bandwidth),
                show(l.requests_per_second),
            ));
        }
    }
    if c.metering.persist {
        out.push_str(&format!(
            "usage kept in {} db {}\n",
            redact_url(&c.metering.redis_url),
            c.metering.db
        ));
    }
    if c.dev_redis {
        out.push_str(
            "no Redis URL configured: a private redis-server starts if nothing answers on 127.0.0.1:6379\n",
        );
    }
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out
}

/// A Redis URL with its password hidden.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn loopback_default_generates_a_token() {
        let c = Config::resolve(&Cli::default(), &env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8079");
        assert!(c.generated_token.is_some());
        assert!(c.dev_redis);
        assert_eq!(c.tenants.len(), 1);
    }

    #[test]
    fn open_listener_needs_a_token() {
        let cli = Cli {
            listen: Some("0.0.0.0:8079".into()),
            ..Cli::default()
        };
        assert!(Config::resolve(&cli, &env(&[]))
            .unwrap_err()
            .contains("without a token"));
        let cli = Cli {
            token: Some("t".into()),
            ..cli
        };
        assert!(Config::resolve(&cli, &env(&[])).is_ok());
    }

    #[test]
    fn an_open_listener_may_generate_its_token_when_asked() {
        let cli = Cli {
            listen: Some("0.0.0.0:8079".into()),
            generate_token: true,
            ..Cli::default()
        };
        let c = Config::resolve(&cli, &env(&[])).unwrap();
        assert!(c.generated_token.is_some(), "never an open server");
        assert_eq!(c.tenants[0].tokens, vec![c.generated_token.clone().unwrap()]);
    }

    #[test]
    fn read_from_replicas_needs_replicas() {
        let cli = |url: &str, read_from: &str| Cli {
            redis_url: Some(url.into()),
            token: Some("t".into()),
            read_from: Some(read_from.into()),
            ..Cli::default()
        };
        let c = Config::resolve(&cli("redis+sentinel://127.0.0.1:26379/m", "replicas"), &env(&[])).unwrap();
        assert_eq!(c.tenants[0].read_from, ReadFrom::Replicas);
        let c = Config::resolve(&cli("redis://127.0.0.1:6379", "primary"), &env(&[])).unwrap();
        assert_eq!(c.tenants[0].read_from, ReadFrom::Primary);
        let c = Config::resolve(&cli("redis+cluster://127.0.0.1:7000", "replicas"), &env(&[])).unwrap();
        assert_eq!(c.tenants[0].read_from, ReadFrom::Replicas);
        for url in ["redis://127.0.0.1:6379", "unix:///tmp/redis.sock"] {
            let e = Config::resolve(&cli(url, "replicas"), &env(&[])).unwrap_err();
            assert!(
                e.contains("needs a redis+sentinel:// or redis+cluster:// URL"),
                "{e}"
            );
        }
        let e = Config::resolve(&cli("redis://127.0.0.1:6379", "replica"), &env(&[])).unwrap_err();
        assert!(e.contains("read_from must be"), "{e}");
    }

    #[test]
    fn misspelt_variables_are_named() {
        let e = Config::resolve(&Cli::default(), &env(&[("RESTDIS_LISTN", "x")])).unwrap_err();
        assert!(e.contains("RESTDIS_LISTN") && e.contains("RESTDIS_LISTEN"), "{e}");
        let e = Config::resolve(&Cli::default(), &env(&[("SRH_CONNECTION_STRIN", "x")])).unwrap_err();
        assert!(e.contains("SRH_CONNECTION_STRING"), "{e}");
        let c = Config::resolve(&Cli::default(), &env(&[("RESTDIS_SOMETHING_ELSE", "x")])).unwrap();
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(
            parse_size("k", &Size::Text("10MiB".into())).unwrap(),
            10 * 1024 * 1024
        );
        assert_eq!(parse_size("k", &Size::Text("1000".into())).unwrap(), 1000);
        assert!(parse_size("k", &Size::Text("ten".into())).is_err());
        assert!(parse_size("k", &Size::Text("5 parsecs".into())).is_err());
        assert_eq!(
            duration("k", Some("250ms"), "1s").unwrap(),
            Duration::from_millis(250)
        );
        assert!(duration("k", Some("soon"), "1s").is_err());
    }
}
