//! Start-up and shutdown: [`Server::start`] builds the backends and shared state from a
//! [`Config`], binds the listeners (port 0 friendly, so tests use free ports) and spawns them;
//! [`Server::shutdown`] stops accepting and drains. [`run`] is the binary's whole life.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use redis::IntoConnectionInfo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::backend::isolation::{self, Isolation, MIN_VERSION};
use crate::backend::{Backend, Sizes};
use crate::config::{Config, IsolationMode};
use crate::devredis::{self, DevRedis};
use crate::dispatch::{Caller, Tenant};
use crate::http::sse::Streams;
use crate::http::{self, admin, handler, reply::SyncTokens, ListenerLimits};
use crate::metering::alerts::Webhook;
use crate::metering::quota::Kind;
use crate::metering::{Clock, Meter, Metering};
use crate::metrics::Metrics;
use crate::protocol::policy::Policy;
use crate::state::AppState;

/// A running server.
pub struct Server {
    /// Where the REST API listens.
    pub api_addr: SocketAddr,
    /// Where the admin endpoints listen, if enabled.
    pub admin_addr: Option<SocketAddr>,
    /// Shared state (backends, metrics).
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    dev_redis: Option<DevRedis>,
}

impl Server {
    /// Builds everything and starts serving. Redis need not be up: requests get 503 until it is.
    pub async fn start(mut config: Config) -> anyhow::Result<Self> {
        // TLS to Redis (rediss://) uses rustls with the ring provider; installing it twice
        // (tests start many servers) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dev_redis = if config.dev_redis && !devredis::answers("127.0.0.1:6379").await {
            let redis = devredis::start().await.map_err(anyhow::Error::msg)?;
            tracing::info!(url = %redis.url, "no Redis on 127.0.0.1:6379: started a private redis-server (no persistence; stopped on exit)");
            for t in &mut config.tenants {
                t.redis_url = redis.url.clone();
            }
            config.metering.redis_url = redis.url.clone();
            Some(redis)
        } else {
            None
        };
        let metrics = Metrics::new().context("registering metrics")?;
        let clock = Arc::new(Clock::default());
        let built = build_tenants(&config, &metrics, &clock).await?;
        let webhook = match &config.metering.webhook_url {
            Some(url) => Some(
                Webhook::new(
                    url.clone(),
                    config.metering.webhook_secret.clone(),
                    metrics.webhook_ok.clone(),
                    metrics.webhook_failed.clone(),
                )
                .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let metering = Arc::new(Metering::new(
            built.meters,
            built.store,
            webhook,
            clock,
            metrics.alerts.clone(),
            metrics.usage_flush_errors.clone(),
        ));
        // Usage so far (after a restart, or from other instances) applies from the first request.
        metering.load().await;
        let (shutdown, rx) = watch::channel(false);
        let streams = Streams::new(
            config.streams,
            metrics.streams_dropped_slow.clone(),
            metrics.streams_dropped_redis.clone(),
        );
        let state = Arc::new(AppState {
            auth: Auth::new(built.callers),
            policy: Policy::new(config.deny.iter().map(String::as_str))
                .with_blocking(config.blocking.mode, config.blocking.max_timeout),
            cors: config.cors.clone(),
            sync: SyncTokens::new(),
            metrics,
            max_request_size: config.max_request_size,
            body_read_timeout: config.body_read_timeout,
            backends: built.backends,
            streams,
            shutdown: rx.clone(),
            isolation_warning: built.warning,
            metering: metering.clone(),
            admin_token: config.admin_token.clone(),
            console: config.console.enabled,
        });
        let api = listen(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
        let api_addr = api.local_addr()?;
        let mut tasks = vec![tokio::spawn(metering.run(rx.clone()))];
        tasks.push(tokio::spawn(http::serve(
            api,
            state.clone(),
            handler::handle,
            config.limits,
            rx.clone(),
        )));
        let mut admin_addr = None;
        if let Some(addr) = config.admin_listen {
            let listener = listen(addr).with_context(|| format!("cannot listen on {addr} (admin)"))?;
            admin_addr = Some(listener.local_addr()?);
            let limits = ListenerLimits {
                max_connections: 256,
                ..config.limits
            };
            tasks.push(tokio::spawn(http::serve(
                listener,
                state.clone(),
                admin::handle,
                limits,
                rx,
            )));
        }
        Ok(Self {
            api_addr,
            admin_addr,
            state,
            shutdown,
            tasks,
            dev_redis,
        })
    }

    /// Stops accepting, lets in-flight requests finish (within the shutdown timeout), and
    /// stops a private redis-server if one was started.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(redis) = self.dev_redis {
            redis.stop().await;
        }
    }
}

/// What [`build_tenants`] makes.
struct Built {
    /// Every backend.
    backends: Vec<Arc<Backend>>,
    /// The token table's entries.
    callers: Vec<(String, Caller)>,
    /// Set when tenants share a Redis without isolation.
    warning: Option<String>,
    /// One meter per tenant, in configuration order.
    meters: Vec<Arc<Meter>>,
    /// The Redis database that keeps usage, when usage is persisted.
    store: Option<Arc<Backend>>,
}

/// One backend per distinct (Redis URL, DB); one caller per token. Tenants on different
/// databases of one Redis get ACL users of their own (`backend::isolation`) unless the
/// configuration turns that off.
async fn build_tenants(config: &Config, metrics: &Metrics, clock: &Clock) -> anyhow::Result<Built> {
    let mut backends: BTreeMap<(String, i64), Arc<Backend>> = BTreeMap::new();
    let mut callers = Vec::new();
    let mut infos = Vec::new();
    let mut topologies = Vec::new();
    for t in &config.tenants {
        let target = crate::config::topology::parse(&t.redis_url)
            .map_err(|e| anyhow::anyhow!("tenant '{}': {e}", t.name))?;
        let info = target.info().clone();
        let db = t.db.unwrap_or(info.redis_settings().db());
        infos.push((info, db));
        topologies.push(target.into_remote());
    }
    // The usage store counts as one more database on its server: tenants there are isolated
    // from it like from each other, so no tenant command can read or reset usage.
    let store_info = if config.metering.persist {
        let info = config
            .metering
            .redis_url
            .as_str()
            .into_connection_info()
            .context("metering: invalid Redis URL")?;
        let db = config.metering.db;
        let info = info
            .clone()
            .set_redis_settings(info.redis_settings().clone().set_db(db));
        Some(info)
    } else {
        None
    };
    let tenant_count = infos.len();
    if let Some(info) = &store_info {
        infos.push((info.clone(), config.metering.db));
    }
    let servers = identify(&infos).await;
    if store_info.is_some() {
        let store = &servers[tenant_count];
        for (i, t) in config.tenants.iter().enumerate() {
            if servers[i] == *store && infos[i].1 == config.metering.db {
                anyhow::bail!(
                    "tenant '{}' uses database {} of the Redis that keeps usage; give [metering] db \
                     another database, or the tenant another db",
                    t.name,
                    config.metering.db
                );
            }
        }
    }
    let mut meters = Vec::with_capacity(config.tenants.len());
    let mut unisolated = Vec::new();
    for (i, (t, (mut info, db))) in config.tenants.iter().zip(infos.clone()).enumerate() {
        // (`infos` may end with the usage store, which `zip` leaves out here.)
        // Tenants on different databases of one Redis must not reach across them.
        let shared = infos
            .iter()
            .zip(&servers)
            .any(|((_, other_db), server)| *server == servers[i] && *other_db != db);
        info = info
            .clone()
            .set_redis_settings(info.redis_settings().clone().set_db(db));
        let key = (t.redis_url.clone(), db);
        if !backends.contains_key(&key) {
            let isolation = match (shared, config.isolation) {
                (true, IsolationMode::Acl) => Some(isolate(&t.name, &info).await?),
                (true, IsolationMode::Off) => {
                    unisolated.push(t.name.clone());
                    None
                }
                (false, _) => None,
            };
            let sizes = Sizes {
                connections: t.connections,
                blocking_pool: config.blocking.pool_size,
                max_in_flight: config.max_in_flight,
                queue_timeout: config.queue_timeout,
            };
            let backend = match &topologies[i] {
                Some(remote) => Backend::start_remote(
                    &t.name,
                    remote.clone(),
                    sizes,
                    config.command_timeout,
                    metrics.backend(&t.name)?,
                ),
                None => Backend::start(
                    &t.name,
                    info,
                    sizes,
                    config.command_timeout,
                    isolation,
                    metrics.backend(&t.name)?,
                ),
            };
            backends.insert(key.clone(), backend);
        }
        let Some(backend) = backends.get(&key).cloned() else {
            anyhow::bail!("tenant '{}': no backend", t.name);
        };
        let meter = Arc::new(Meter::new(
            &t.name,
            t.limits,
            t.alert_thresholds.clone(),
            metrics.tenant(&t.name)?,
            clock.now(),
        ));
        for kind in Kind::ALL {
            if t.limits.of(kind).is_none() {
                metrics.drop_unlimited(&t.name, kind);
            }
        }
        meters.push(meter.clone());
        let tenant = Arc::new(Tenant {
            name: t.name.clone(),
            backend,
            db,
            shared,
            open_streams: meter.open_streams.clone(),
            meter,
        });
        for token in &t.tokens {
            callers.push((
                token.clone(),
                Caller {
                    tenant: tenant.clone(),
                    read_only: false,
                },
            ));
        }
        for token in &t.read_only_tokens {
            callers.push((
                token.clone(),
                Caller {
                    tenant: tenant.clone(),
                    read_only: true,
                },
            ));
        }
    }
    let warning = (!unisolated.is_empty()).then(|| {
        format!(
            "shared_redis_isolation is off: tenants {} share a Redis without ACL users, so their \
             scripts can read and write each other's databases",
            unisolated.join(", ")
        )
    });
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    let store = store_info.map(|info| {
        let sizes = Sizes {
            connections: 1,
            blocking_pool: 1,
            max_in_flight: 1024,
            queue_timeout: config.queue_timeout,
        };
        let unregistered = crate::metrics::BackendMetrics::unregistered();
        unregistered.map(|m| Backend::start("usage-store", info, sizes, config.command_timeout, None, m))
    });
    let store = store.transpose()?;
    Ok(Built {
        backends: backends.into_values().collect(),
        callers,
        warning,
        meters,
        store,
    })
}

/// Sets up the ACL users of tenant `name` on its shared Redis (`info`: its URL and database),
/// or explains why Redis cannot enforce them. An unreachable Redis is not an error: every
/// connection's handshake creates the users before use, and fails closed.
async fn isolate(name: &str, info: &redis::ConnectionInfo) -> anyhow::Result<Isolation> {
    let refuse = |why: String| {
        anyhow::anyhow!(
            "tenant '{name}' shares a Redis with other tenants, and restdis cannot give it an ACL \
             user of its own there: {why}. Fix that (the Redis URL's user needs ACL SETUSER; Redis \
             {}.{} or later), or set shared_redis_isolation = \"off\" to run shared tenants without \
             a hard boundary",
            MIN_VERSION.0,
            MIN_VERSION.1
        )
    };
    match isolation::admin_connection(info, ISOLATION_DEADLINE).await {
        Err(e) => Err(refuse(e)),
        Ok(None) => {
            tracing::warn!(tenant = %name, "Redis is not reachable: its ACL users will be made by the first connection");
            Ok(Isolation::new(name, (7, 0)))
        }
        Ok(Some((mut admin, server))) => {
            let version = server.version;
            if version < MIN_VERSION {
                return Err(refuse(format!("it runs Redis {}.{}", version.0, version.1)));
            }
            let isolation = Isolation::new(name, version);
            isolation.provision(&mut admin).await.map_err(refuse)?;
            tracing::info!(tenant = %name, user = %isolation.commands.user(), "tenant isolated by a Redis ACL user");
            Ok(isolation)
        }
    }
}

/// Which Redis server each tenant's URL reaches: its `run_id` when it answers within
/// [`IDENTIFY_DEADLINE`] (so `localhost` and `127.0.0.1` are one server), else the address
/// as written. Only asked when there are several tenants.
async fn identify(infos: &[(redis::ConnectionInfo, i64)]) -> Vec<String> {
    let mut known: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::with_capacity(infos.len());
    for (info, _) in infos {
        let addr = info.addr().to_string();
        if infos.len() < 2 {
            out.push(addr);
            continue;
        }
        if let Some(id) = known.get(&addr) {
            out.push(id.clone());
            continue;
        }
        let id = match isolation::admin_connection(info, IDENTIFY_DEADLINE).await {
            Ok(Some((_, server))) if !server.run_id.is_empty() => server.run_id,
            _ => addr.clone(),
        };
        known.insert(addr, id.clone());
        out.push(id);
    }
    out
}

/// How long start-up waits for each Redis of a multi-tenant configuration to say who it is.
const IDENTIFY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long start-up waits for a shared Redis to set up tenant isolation.
const ISOLATION_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3);

/// The binary's life: start, print the lines to paste into an app, wait for SIGINT/SIGTERM,
/// drain, exit.
pub async fn run(config: Config) -> anyhow::Result<()> {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let generated = config.generated_token.clone();
    let console = config.console;
    let server = Server::start(config).await?;
    // Give the first connections a moment, so the printed URL answers at once when Redis is up.
    for backend in &server.state.backends {
        if !backend.wait_connected(std::time::Duration::from_secs(2)).await {
            tracing::warn!(backend = %backend.label(), "Redis is not reachable yet; requests get 503 until it is");
        }
    }
    let url = display_url(server.api_addr);
    println!("UPSTASH_REDIS_REST_URL={url}");
    match generated {
        Some(token) => println!("UPSTASH_REDIS_REST_TOKEN={token}"),
        None => println!("# UPSTASH_REDIS_REST_TOKEN: the token you configured"),
    }
    if let Some(admin) = server.admin_addr {
        println!("RESTDIS_ADMIN_URL={}", display_url(admin));
    }
    tracing::info!(api = %server.api_addr, admin = ?server.admin_addr, "restdis is serving");
    if server.state.console {
        tracing::info!(url = %format!("{url}/console/"), why = console.why, "the web console is on");
    } else {
        tracing::info!(why = console.why, "the web console is off");
    }
    wait_for_signal().await;
    tracing::info!("shutting down: no new connections; finishing in-flight requests");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn display_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    match addr {
        SocketAddr::V6(_) if !addr.ip().is_unspecified() => format!("http://[{host}]:{}", addr.port()),
        _ => format!("http://{host}:{}", addr.port()),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// Connections the kernel queues for `accept` (std's default is 128, which a burst of new
/// clients overflows; the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener (address reuse on, as with std) with [`LISTEN_BACKLOG`].
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
