//! Start-up and shutdown: [`Server::start`] builds the backends and shared state from a
//! [`Config`], binds the listeners (port 0 friendly, so tests use free ports) and spawns them;
//! [`Server::shutdown`] stops accepting and drains. [`run`] is the binary's whole life.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use redis::IntoConnectionInfo;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use arc_swap::ArcSwap;

use crate::backend::{Backend, Sizes};
use crate::config::Config;
use crate::devredis::{self, DevRedis};
use crate::http::sse::Streams;
use crate::http::tls::Tls;
use crate::http::{self, admin, handler, reply::SyncTokens, ListenerLimits};
use crate::metering::alerts::Webhook;
use crate::metering::{Clock, Metering};
use crate::metrics::Metrics;
use crate::reload::{Reloader, Source, Trigger, Worker};
use crate::state::AppState;
use crate::tenancy::{Plan, Store, Tenancy};

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
    /// Workers after the first (which runs on the caller's runtime).
    threads: Vec<std::thread::JoinHandle<()>>,
    dev_redis: Option<DevRedis>,
}

impl Server {
    /// Builds everything and starts serving. Redis need not be up: requests get 503 until it is.
    /// With no [`Source`], a reload has nothing to re-read and is refused.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_with(config, None).await
    }

    /// [`start`](Self::start), remembering where the configuration came from, so that SIGHUP
    /// and `POST /reload` can read it again.
    pub async fn start_with(mut config: Config, source: Option<Source>) -> anyhow::Result<Self> {
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
        let store_info = usage_store(&config)?;
        let store = store_info.as_ref().map(|(info, db)| Store { info, db: *db });
        let plan = Plan::make(&config, None, store, &metrics, &clock).await?;
        let tenancy = Tenancy::build(&plan, None, &metrics)?;
        let store = match &store_info {
            Some((info, _)) => Some(start_store(&config, info.clone())?),
            None => None,
        };
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
            plan.meters(),
            store,
            webhook,
            clock,
            metrics.alerts.clone(),
            metrics.usage_flush_errors.clone(),
        ));
        // Usage so far (after a restart, or from other instances) applies from the first request.
        metering.load().await;
        let (shutdown, rx) = watch::channel(false);
        let tls = match &config.tls {
            Some(files) => Some(
                Tls::new(files.clone(), metrics.tls().context("registering TLS metrics")?)
                    .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let acceptor = match &tls {
            Some(t) => Some((t.clone(), t.acceptor().map_err(anyhow::Error::msg)?)),
            None => None,
        };
        let streams = Streams::new(
            config.streams,
            metrics.streams_dropped_slow.clone(),
            metrics.streams_dropped_redis.clone(),
        );
        let (trigger, reload_requests) = Trigger::new();
        let common = Common {
            cors: config.cors.clone(),
            metrics,
            max_request_size: config.max_request_size,
            body_read_timeout: config.body_read_timeout,
            streams,
            shutdown: rx.clone(),
            metering: metering.clone(),
            admin_token: config.admin_token.clone(),
            console: config.console.enabled,
            reload: trigger,
            workers: Default::default(),
            tls: acceptor,
        };
        let state = Arc::new(common.state(0, tenancy)?);
        let workers = config.worker_threads.max(1);
        let api = listen(config.listen, workers > 1)
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let api_addr = api.local_addr()?;
        let plan = Arc::new(plan);
        let mut others = Vec::new();
        let mut threads = Vec::new();
        for i in 1..workers {
            // Every worker's socket on the same address; the kernel spreads connections.
            let socket = listen(api_addr, true)
                .and_then(TcpListener::into_std)
                .with_context(|| format!("cannot listen on {api_addr} (worker {i})"))?;
            let (ready, started) = tokio::sync::oneshot::channel();
            let thread = spawn_worker(i, socket, common.clone(), plan.clone(), config.limits, ready)?;
            threads.push(thread);
            let worker = started
                .await
                .map_err(|_| anyhow::anyhow!("worker {i} stopped while starting"))??;
            others.push(worker);
        }
        let mut tasks = vec![tokio::spawn(metering.clone().run(rx.clone()))];
        let mut all = vec![Worker {
            handle: tokio::runtime::Handle::current(),
            state: state.clone(),
        }];
        all.extend(others);
        let reloader = Reloader {
            source,
            config: config.clone(),
            plan,
            dev_redis_url: dev_redis.as_ref().map(|r| r.url.clone()),
            store: store_info,
            metrics: state.metrics.clone(),
            clock: metering.clock.clone(),
            metering,
            workers: all,
        };
        tasks.push(tokio::spawn(reloader.run(reload_requests, rx.clone())));
        if let Some(t) = &state.tls {
            tasks.push(tokio::spawn(t.clone().watch(rx.clone())));
        }
        tasks.push(tokio::spawn(http::serve(
            api,
            state.clone(),
            handler::handle,
            config.limits,
            common.tls.clone(),
            rx.clone(),
        )));
        let mut admin_addr = None;
        if let Some(addr) = config.admin_listen {
            let listener = listen(addr, false).with_context(|| format!("cannot listen on {addr} (admin)"))?;
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
                None,
                rx,
            )));
        }
        Ok(Self {
            api_addr,
            admin_addr,
            state,
            shutdown,
            tasks,
            threads,
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
        for thread in self.threads {
            // Each worker drains its own connections, then its runtime ends.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Some(redis) = self.dev_redis {
            redis.stop().await;
        }
    }
}

/// What every worker's [`AppState`] shares with the others' (the tenancy is each worker's own).
#[derive(Clone)]
struct Common {
    cors: crate::http::reply::Cors,
    metrics: Metrics,
    max_request_size: u64,
    body_read_timeout: std::time::Duration,
    streams: Streams,
    shutdown: watch::Receiver<bool>,
    metering: Arc<Metering>,
    admin_token: Option<String>,
    console: bool,
    reload: Trigger,
    workers: Arc<std::sync::Mutex<Vec<Arc<ArcSwap<Tenancy>>>>>,
    /// The API listener's certificate and acceptor, when it serves TLS (one for all workers).
    tls: Option<(Arc<Tls>, tokio_rustls::TlsAcceptor)>,
}

impl Common {
    fn state(&self, worker: usize, tenancy: Tenancy) -> anyhow::Result<AppState> {
        let tenancy = Arc::new(ArcSwap::from_pointee(tenancy));
        if let Ok(mut all) = self.workers.lock() {
            all.push(tenancy.clone());
        }
        Ok(AppState {
            accepted: self.metrics.worker_connections(worker)?,
            tenancy,
            workers: self.workers.clone(),
            cors: self.cors.clone(),
            // Per worker: no counter shared across cores on the request path.
            sync: SyncTokens::new(),
            metrics: self.metrics.clone(),
            max_request_size: self.max_request_size,
            body_read_timeout: self.body_read_timeout,
            streams: self.streams.clone(),
            shutdown: self.shutdown.clone(),
            metering: self.metering.clone(),
            admin_token: self.admin_token.clone(),
            console: self.console,
            reload: self.reload.clone(),
            tls: self.tls.as_ref().map(|(t, _)| t.clone()),
        })
    }
}

/// A worker thread's stack. Replies are parsed and encoded recursively, and Redis nests a Lua
/// reply up to about 8,000 levels (tests/it/wire.rs): a release build needs about 2 MiB for
/// that, and gets the main thread's 8 MiB; a debug build's frames are several times larger.
/// Stack is reserved, not used, until a deep reply touches it.
const WORKER_STACK: usize = if cfg!(debug_assertions) { 64 << 20 } else { 8 << 20 };

/// Starts worker `i` on a thread of its own: a current-thread runtime, its own backends
/// (connections) built from `plan`, serving `socket` until shutdown, then draining. `ready`
/// gets its runtime and state once it serves, or why it could not start.
fn spawn_worker(
    i: usize,
    socket: std::net::TcpListener,
    common: Common,
    plan: Arc<Plan>,
    limits: ListenerLimits,
    ready: tokio::sync::oneshot::Sender<anyhow::Result<Worker>>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let thread = std::thread::Builder::new()
        .name(format!("restdis-worker-{i}"))
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready.send(Err(anyhow::anyhow!("worker {i}: cannot start a runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let started = Tenancy::build(&plan, None, &common.metrics)
                    .and_then(|t| common.state(i, t))
                    .and_then(|s| Ok((s, TcpListener::from_std(socket)?)));
                drop(plan);
                let (state, listener) = match started {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let state = Arc::new(state);
                let worker = Worker {
                    handle: tokio::runtime::Handle::current(),
                    state: state.clone(),
                };
                if ready.send(Ok(worker)).is_err() {
                    return;
                }
                let shutdown = common.shutdown.clone();
                http::serve(
                    listener,
                    state,
                    handler::handle,
                    limits,
                    common.tls.clone(),
                    shutdown,
                )
                .await;
            });
        })
        .context("cannot start a worker thread")?;
    Ok(thread)
}

/// Where usage is kept (its Redis, with its database set), when it is.
fn usage_store(config: &Config) -> anyhow::Result<Option<(redis::ConnectionInfo, i64)>> {
    if !config.metering.persist {
        return Ok(None);
    }
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
    Ok(Some((info, db)))
}

/// The backend of the usage store (not a tenant's: no metrics of its own).
fn start_store(config: &Config, info: redis::ConnectionInfo) -> anyhow::Result<Arc<Backend>> {
    let sizes = Sizes {
        connections: 1,
        blocking_pool: 1,
        max_in_flight: 1024,
        queue_timeout: config.queue_timeout,
    };
    let metrics = crate::metrics::BackendMetrics::unregistered()?;
    Ok(Backend::start(
        "usage-store",
        info,
        sizes,
        config.command_timeout,
        None,
        metrics,
    ))
}

/// The binary's life: start, print the lines to paste into an app, wait for SIGINT/SIGTERM,
/// drain, exit.
pub async fn run(config: Config, source: Source) -> anyhow::Result<()> {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let generated = config.generated_token.clone();
    let console = config.console;
    let server = Server::start_with(config, Some(source)).await?;
    // Give the first connections a moment, so the printed URL answers at once when Redis is up.
    for backend in &server.state.tenancy().backends {
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
    wait_for_signal(&server.state.reload).await;
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

/// Waits for SIGINT or SIGTERM; a SIGHUP meanwhile reloads the configuration.
async fn wait_for_signal(reload: &Trigger) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => return,
                _ = term.recv() => return,
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    // The reload task logs the outcome and counts it.
                    let _ = reload.request().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reload;
        let _ = ctrl_c.await;
    }
}

/// Connections the kernel queues for `accept` (std's default is 128, which a burst of new
/// clients overflows; the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener (address reuse on, as with std) with [`LISTEN_BACKLOG`]; with `shared`,
/// also SO_REUSEPORT, so every worker binds a socket of its own to the same address.
fn listen(addr: std::net::SocketAddr, shared: bool) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    if shared {
        #[cfg(unix)]
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}
