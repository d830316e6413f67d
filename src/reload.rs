//! Live reload of the configuration. SIGHUP and `POST /reload` (admin listener) ask one task,
//! [`Reloader::run`], which re-reads the configuration file (flags and environment stay as they
//! were at start), resolves and validates it like start-up does, builds the new tenants
//! ([`crate::tenancy`]) for every worker, and only when all of that succeeded swaps them in.
//!
//! - Requests in flight finish with the tenancy they started with; the next request sees the
//!   new one. A removed token is refused from then on; a new one works at once. Two tokens of
//!   one tenant are both valid, so a token is rotated by adding the new one, moving clients,
//!   then removing the old one.
//! - A tenant whose Redis (URL, database, connection count or ACL user) changed gets a new
//!   backend; the old one closes its connections when its last request has finished.
//! - Meters are kept by tenant name, with their counts; caps change in place.
//! - An invalid file changes nothing: the error is logged, counted in
//!   `restdis_config_reloads_total{result="error"}` and returned by `/reload`.
//! - The API listener's TLS certificate and key are re-read from their files (they are also
//!   watched, `http::tls`); a pair that does not load fails the reload.
//! - Settings that need a new process (listen addresses, listener limits, ...) are named in
//!   the answer and a warning, and keep their old values.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cli::Cli;
use crate::config::Config;
use crate::metering::{Clock, Metering};
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::tenancy::{Plan, Store, Tenancy};

/// What a reload answers: a summary of what changed, or why nothing did.
pub type Outcome = Result<serde_json::Value, String>;

/// Asks the reload task for a reload; cheap to clone.
#[derive(Clone)]
pub struct Trigger(mpsc::Sender<oneshot::Sender<Outcome>>);

/// The receiving end of a [`Trigger`], for [`Reloader::run`].
pub type Requests = mpsc::Receiver<oneshot::Sender<Outcome>>;

impl Trigger {
    /// A trigger and the requests it sends.
    pub fn new() -> (Self, Requests) {
        let (tx, rx) = mpsc::channel(8);
        (Self(tx), rx)
    }

    /// Reloads now (after any reload already under way) and says how it went.
    pub async fn request(&self) -> Outcome {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(tx)
            .await
            .map_err(|_| "the server is shutting down".to_string())?;
        rx.await
            .unwrap_or_else(|_| Err("the server is shutting down".to_string()))
    }
}

/// Where the configuration comes from: the flags and the environment as they were at start.
pub struct Source {
    /// The parsed flags (`--config` names the file that is re-read).
    pub cli: Cli,
    /// The environment at start.
    pub env: BTreeMap<String, String>,
}

/// One worker: its runtime (where its backends' connections run) and its state.
pub struct Worker {
    /// Its runtime.
    pub handle: Handle,
    /// Its state.
    pub state: Arc<AppState>,
}

/// Everything a reload needs, owned by the reload task.
pub struct Reloader {
    /// Where the configuration comes from (`None`: built in code, e.g. by tests; nothing to
    /// re-read).
    pub source: Option<Source>,
    /// The configuration in force.
    pub config: Config,
    /// The plan in force.
    pub plan: Arc<Plan>,
    /// The Redis URL of the private redis-server of the dev default, when one was started.
    pub dev_redis_url: Option<String>,
    /// Where usage is kept (its Redis, with its database set), if it is.
    pub store: Option<(redis::ConnectionInfo, i64)>,
    /// Process-wide metrics.
    pub metrics: Metrics,
    /// The meters' clock.
    pub clock: Arc<Clock>,
    /// The meters.
    pub metering: Arc<Metering>,
    /// Every worker.
    pub workers: Vec<Worker>,
}

impl Reloader {
    /// Serves reload requests until `shutdown`.
    pub async fn run(mut self, mut requests: Requests, mut shutdown: watch::Receiver<bool>) {
        loop {
            let reply = tokio::select! {
                r = requests.recv() => match r {
                    Some(reply) => reply,
                    None => return,
                },
                _ = shutdown.changed() => return,
            };
            let outcome = self.reload().await;
            match &outcome {
                Ok(summary) => {
                    self.metrics.reloads_ok.inc();
                    tracing::info!(%summary, "configuration reloaded");
                }
                Err(e) => {
                    self.metrics.reloads_failed.inc();
                    tracing::error!(error = %e, "configuration reload failed; the old configuration stays");
                }
            }
            let _ = reply.send(outcome);
        }
    }

    /// Re-reads, validates, builds, then swaps; nothing changes on any error.
    async fn reload(&mut self) -> Outcome {
        let source = self
            .source
            .as_ref()
            .ok_or("this server's configuration was not read from flags and a file")?;
        let mut config = Config::resolve(&source.cli, &source.env)?;
        self.keep_start_choices(&mut config);
        let restart = needs_restart(&self.config, &config);
        let store = self.store.as_ref().map(|(info, db)| Store { info, db: *db });
        let plan = Plan::make(&config, Some(&self.plan), store, &self.metrics, &self.clock)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let mut built = Vec::with_capacity(self.workers.len());
        for w in &self.workers {
            // Backends spawn their connection tasks on the worker's own runtime.
            let _inside = w.handle.enter();
            let tenancy = Tenancy::build(&plan, Some(&w.state.tenancy()), &self.metrics)
                .map_err(|e| format!("{e:#}"))?;
            built.push(tenancy);
        }
        // The listener's certificate is re-read too; a pair that does not load fails the whole
        // reload before anything is swapped (the old certificate stays either way).
        let tls = self.workers.first().and_then(|w| w.state.tls.clone());
        if let Some(tls) = &tls {
            tls.reload().map_err(|e| format!("TLS certificate: {e}"))?;
        }
        let before = self.workers.first().map(|w| w.state.tenancy());
        for (w, tenancy) in self.workers.iter().zip(built) {
            w.state.tenancy.store(Arc::new(tenancy));
        }
        plan.apply_caps(&self.metrics);
        self.metering.set_meters(plan.meters());
        let after = self.workers.first().map(|w| w.state.tenancy());
        let mut summary = summarize(
            &self.config,
            &config,
            before.as_deref(),
            after.as_deref(),
            &restart,
        );
        summary["tls_certificate"] = json!(if tls.is_some() { "reloaded" } else { "none" });
        for setting in &restart {
            tracing::warn!(
                setting,
                "changed in the configuration, but takes effect only after a restart"
            );
        }
        self.config = config;
        self.plan = Arc::new(plan);
        Ok(summary)
    }

    /// What start-up decided once stays: the generated token of the dev default, and the
    /// private redis-server's URL.
    fn keep_start_choices(&self, config: &mut Config) {
        if let (Some(old), Some(new)) = (&self.config.generated_token, &config.generated_token) {
            for t in &mut config.tenants {
                for token in &mut t.tokens {
                    if token == new {
                        token.clone_from(old);
                    }
                }
            }
            config.generated_token = Some(old.clone());
        }
        if let (Some(url), true) = (&self.dev_redis_url, config.dev_redis) {
            for t in &mut config.tenants {
                t.redis_url.clone_from(url);
            }
            config.metering.redis_url.clone_from(url);
        }
    }
}

/// The settings that changed but keep their old values until a restart.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    type Field = (&'static str, fn(&Config) -> String);
    const FIELDS: &[Field] = &[
        ("listen", |c| format!("{:?}", c.listen)),
        ("admin_listen", |c| format!("{:?}", c.admin_listen)),
        ("listener limits", |c| format!("{:?}", c.limits)),
        ("max_request_size", |c| c.max_request_size.to_string()),
        ("body_read_timeout", |c| format!("{:?}", c.body_read_timeout)),
        ("max_in_flight", |c| c.max_in_flight.to_string()),
        ("queue_timeout", |c| format!("{:?}", c.queue_timeout)),
        ("command_timeout", |c| format!("{:?}", c.command_timeout)),
        ("cors", |c| format!("{:?}", c.cors)),
        ("streams", |c| format!("{:?}", c.streams)),
        ("blocking pool_size", |c| c.blocking.pool_size.to_string()),
        ("log", |c| c.log.clone()),
        ("metering", |c| format!("{:?}", c.metering)),
        ("admin_token", |c| format!("{:?}", c.admin_token)),
        ("worker_threads", |c| c.worker_threads.to_string()),
        ("console", |c| c.console.enabled.to_string()),
        ("tls", |c| format!("{:?}", c.tls)),
    ];
    FIELDS
        .iter()
        .filter(|(_, value)| value(old) != value(new))
        .map(|(name, _)| *name)
        .collect()
}

/// What a reload changed, for the log and `/reload`'s answer (names and counts; never a token).
fn summarize(
    old: &Config,
    new: &Config,
    before: Option<&Tenancy>,
    after: Option<&Tenancy>,
    restart: &[&'static str],
) -> serde_json::Value {
    let names = |c: &Config| c.tenants.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    let (old_names, new_names) = (names(old), names(new));
    let tokens = |c: &Config| {
        c.tenants
            .iter()
            .flat_map(|t| t.tokens.iter().chain(&t.read_only_tokens).cloned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (old_tokens, new_tokens) = (tokens(old), tokens(new));
    let changed: Vec<&String> = new
        .tenants
        .iter()
        .filter(|t| {
            old.tenants
                .iter()
                .find(|o| o.name == t.name)
                .is_some_and(|o| format!("{o:?}") != format!("{t:?}"))
        })
        .map(|t| &t.name)
        .collect();
    let new_backends = match (before, after) {
        (Some(b), Some(a)) => a
            .backends
            .iter()
            .filter(|n| !b.backends.iter().any(|o| Arc::ptr_eq(o, n)))
            .count(),
        _ => 0,
    };
    json!({
        "status": "reloaded",
        "tenants": new_names.len(),
        "tenants_added": new_names.iter().filter(|n| !old_names.contains(n)).collect::<Vec<_>>(),
        "tenants_removed": old_names.iter().filter(|n| !new_names.contains(n)).collect::<Vec<_>>(),
        "tenants_changed": changed,
        "tokens_added": new_tokens.difference(&old_tokens).count(),
        "tokens_removed": old_tokens.difference(&new_tokens).count(),
        "backends_started": new_backends,
        "restart_needed": restart,
    })
}
