//! The tenants as requests see them, [`Tenancy`]: the token table, the command policy and one
//! backend per Redis (URL and database). It is built from the configuration at start and again
//! by a reload (`crate::reload`), which swaps the whole of it at once: a request sees the old
//! tenancy or the new one, never a mix.
//!
//! Building has two halves:
//! - [`Plan::make`] runs once per configuration for the whole process: which Redis server each
//!   tenant reaches, the ACL users of tenants that share one (`backend::isolation`), and one
//!   meter per tenant, kept across reloads with its counts;
//! - [`Tenancy::build`] makes the backends (their connections run on the runtime that calls
//!   it), reusing those of the previous tenancy whose Redis, database, connection count and ACL
//!   user did not change, so a reload that changes only tokens or caps opens no connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redis::ConnectionInfo;

use crate::auth::Auth;
use crate::backend::isolation::{self, Isolation, MIN_VERSION};
use crate::backend::{Backend, Sizes};
use crate::config::{Config, IsolationMode, TenantConfig};
use crate::dispatch::{Caller, Tenant};
use crate::metering::quota::Kind;
use crate::metering::{Clock, Meter};
use crate::metrics::Metrics;
use crate::protocol::policy::Policy;

/// One tenant, resolved.
pub struct TenantPlan {
    /// As configured.
    pub config: TenantConfig,
    /// A Redis Cluster or a Sentinel group, when its URL names one.
    pub remote: Option<crate::backend::Remote>,
    /// Its Redis (a cluster's or Sentinel group's first host), with the tenant's database set.
    pub info: ConnectionInfo,
    /// Its database index.
    pub db: i64,
    /// Other tenants use other databases of the same Redis server.
    pub shared: bool,
    /// Its ACL users, when it shares a Redis and isolation is on.
    pub isolation: Option<Arc<Isolation>>,
    /// Its usage, caps and metrics.
    pub meter: Arc<Meter>,
}

impl TenantPlan {
    /// Tenants with the same key share one backend.
    fn key(&self) -> (String, i64) {
        backend_key(&self.config, self.db)
    }
}

/// The backend of a tenant: its URL and database, and whether it reads from replicas
/// (tenants that differ in `read_from` get backends of their own).
fn backend_key(config: &TenantConfig, db: i64) -> (String, i64) {
    match config.read_from {
        crate::backend::replicas::ReadFrom::Primary => (config.redis_url.clone(), db),
        crate::backend::replicas::ReadFrom::Replicas => (format!("{} (replicas)", config.redis_url), db),
    }
}

/// What a configuration resolves to, once for the process.
pub struct Plan {
    /// In configuration order.
    pub tenants: Vec<TenantPlan>,
    /// Set when tenants share a Redis without isolation.
    pub warning: Option<String>,
    deny: Vec<String>,
    blocking: crate::config::BlockingSettings,
    sizes: Sizes,
    command_timeout: Duration,
}

/// Where usage is kept, as [`Plan::make`] needs to know it: no tenant may use that database.
pub struct Store<'a> {
    /// The store's Redis, with its database set.
    pub info: &'a ConnectionInfo,
    /// Its database.
    pub db: i64,
}

impl Plan {
    /// Resolves `config`'s tenants. From `prev` (the plan in force, on a reload) it keeps each
    /// tenant's meter (its caps updated) and, where the tenant's Redis and database did not
    /// change, its ACL users.
    pub async fn make(
        config: &Config,
        prev: Option<&Plan>,
        store: Option<Store<'_>>,
        metrics: &Metrics,
        clock: &Clock,
    ) -> anyhow::Result<Plan> {
        let mut infos = Vec::new();
        let mut remotes = Vec::new();
        let several = config.tenants.len() > 1 || store.is_some();
        // Sentinel groups whose primary could not be asked, by tenant index: who they are.
        let mut unresolved: BTreeMap<usize, String> = BTreeMap::new();
        for t in &config.tenants {
            let target = crate::config::topology::parse(&t.redis_url)
                .map_err(|e| anyhow::anyhow!("tenant '{}': {e}", t.name))?;
            let info = target.info().clone();
            let mut remote = target.into_remote();
            let db = t.db.unwrap_or(info.redis_settings().db());
            let with_db = |info: &ConnectionInfo| {
                info.clone()
                    .set_redis_settings(info.redis_settings().clone().set_db(db))
            };
            let mut info = with_db(&info);
            match &mut remote {
                Some(crate::backend::Remote::Sentinel(spec)) => {
                    spec.read_from = t.read_from;
                    // The tenant's `db` reaches the data nodes too.
                    spec.template = with_db(&spec.template);
                    // Who the group is, and where its ACL users are made first: its primary now
                    // (asked only when other tenants or the usage store may share it).
                    let asked = if several {
                        crate::backend::sentinel::probe(spec, IDENTIFY_DEADLINE)
                            .await
                            .ok()
                    } else {
                        None
                    };
                    match asked.and_then(|(p, _)| crate::backend::cluster::info_for(&spec.template, &p)) {
                        Some(primary) => info = primary,
                        // Not answered now: the group goes by its master name and sentinels,
                        // and its users are made by the first connections.
                        None => {
                            let mut sentinels = spec.sentinels.clone();
                            sentinels.sort();
                            unresolved.insert(
                                infos.len(),
                                format!("sentinel {} {}", spec.master, sentinels.join(",")),
                            );
                        }
                    }
                }
                Some(crate::backend::Remote::Cluster(spec)) => spec.read_from = t.read_from,
                None => {}
            }
            remotes.push(remote);
            infos.push((info, db));
        }
        // The usage store counts as one more database on its server: tenants there are
        // isolated from it like from each other, so no tenant command can read or reset usage.
        let tenant_count = infos.len();
        if let Some(store) = &store {
            infos.push((store.info.clone(), store.db));
        }
        let mut servers = identify(&infos).await;
        // A cluster is not asked who it is (its URL's first host is one seed of several; it
        // has database 0 only): its URL names it. A Sentinel group was asked by its primary
        // (above), like any Redis.
        for (i, remote) in remotes.iter().enumerate() {
            if matches!(remote, Some(crate::backend::Remote::Cluster(_))) {
                servers[i] = format!("cluster {}", config.tenants[i].redis_url);
            }
        }
        for (i, name) in &unresolved {
            servers[*i] = name.clone();
        }
        if let Some(store) = &store {
            for (i, t) in config.tenants.iter().enumerate() {
                if servers[i] == servers[tenant_count] && infos[i].1 == store.db {
                    anyhow::bail!(
                        "tenant '{}' uses database {} of the Redis that keeps usage; give [metering] db \
                         another database, or the tenant another db",
                        t.name,
                        store.db
                    );
                }
            }
        }
        let mut tenants: Vec<TenantPlan> = Vec::with_capacity(tenant_count);
        let mut unisolated = Vec::new();
        for (i, t) in config.tenants.iter().enumerate() {
            let (info, db) = infos[i].clone();
            // Tenants on different databases of one Redis must not reach across them.
            let shared = infos
                .iter()
                .zip(&servers)
                .any(|((_, other_db), server)| *server == servers[i] && *other_db != db);
            if shared && matches!(remotes[i], Some(crate::backend::Remote::Cluster(_))) {
                anyhow::bail!(
                    "tenant '{}': a Redis Cluster has database 0 only, and another tenant uses another \
                     database of the same server",
                    t.name
                );
            }
            let old = prev.and_then(|p| p.tenants.iter().find(|o| o.config.name == t.name));
            let key = backend_key(t, db);
            // A tenant on the same backend as an earlier one shares that backend's users.
            let isolation = if let Some(first) = tenants.iter().find(|p| p.key() == key) {
                first.isolation.clone()
            } else {
                match (shared, config.isolation) {
                    (true, IsolationMode::Acl) => match old.filter(|o| o.key() == key && o.shared) {
                        Some(o) if o.isolation.is_some() => o.isolation.clone(),
                        // A Sentinel group not reached now: its users are made by the first
                        // connections (as for a Redis that is down).
                        _ if unresolved.contains_key(&i) => Some(Arc::new(Isolation::new(&t.name, (7, 0)))),
                        _ => Some(Arc::new(isolate(&t.name, &info).await?)),
                    },
                    (true, IsolationMode::Off) => {
                        unisolated.push(t.name.clone());
                        None
                    }
                    (false, _) => None,
                }
            };
            // Caps of a kept meter change in `apply_caps`, once the whole reload succeeded.
            let meter = match old {
                Some(o) => o.meter.clone(),
                None => Arc::new(Meter::new(
                    &t.name,
                    t.limits,
                    t.alert_thresholds.clone(),
                    metrics.tenant(&t.name)?,
                    clock.now(),
                )),
            };
            tenants.push(TenantPlan {
                config: t.clone(),
                remote: remotes[i].clone(),
                info,
                db,
                shared,
                isolation,
                meter,
            });
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
        Ok(Plan {
            tenants,
            warning,
            deny: config.deny.clone(),
            blocking: config.blocking,
            sizes: Sizes {
                connections: 1,
                blocking_pool: config.blocking.pool_size.div_ceil(config.worker_threads.max(1)),
                // The limit is the process's: each worker has an even share of it.
                max_in_flight: config.max_in_flight.div_ceil(config.worker_threads.max(1)),
                queue_timeout: config.queue_timeout,
            },
            command_timeout: config.command_timeout,
        })
    }

    /// Gives kept meters their caps from this plan (new ones have them already), and drops the
    /// limit gauges of quotas that are unlimited now.
    pub fn apply_caps(&self, metrics: &Metrics) {
        for t in &self.tenants {
            t.meter
                .set_caps(t.config.limits, t.config.alert_thresholds.clone());
            for kind in Kind::ALL {
                if t.config.limits.of(kind).is_none() {
                    metrics.drop_unlimited(&t.config.name, kind);
                }
            }
        }
    }

    /// Every tenant's meter, in configuration order.
    pub fn meters(&self) -> Vec<Arc<Meter>> {
        self.tenants.iter().map(|t| t.meter.clone()).collect()
    }
}

/// The token table, the policy and the backends of one worker.
pub struct Tenancy {
    /// Token table.
    pub auth: Auth,
    /// Command policy (deny-list, stateful and blocking commands).
    pub policy: Policy,
    /// Every backend, once.
    pub backends: Vec<Arc<Backend>>,
    /// Set when tenants share a Redis without isolation (shown by `/readyz`).
    pub isolation_warning: Option<String>,
    /// Backends by (Redis URL, database), for the next reload to reuse.
    keyed: BTreeMap<(String, i64), Arc<Backend>>,
}

impl Tenancy {
    /// One backend per distinct (Redis URL, database), one caller per token. Must run inside
    /// the runtime that is to drive the backends' connections.
    pub fn build(plan: &Plan, prev: Option<&Tenancy>, metrics: &Metrics) -> anyhow::Result<Tenancy> {
        let mut keyed: BTreeMap<(String, i64), Arc<Backend>> = BTreeMap::new();
        let mut callers = Vec::new();
        for t in &plan.tenants {
            let key = t.key();
            let backend = match keyed.get(&key) {
                Some(b) => b.clone(),
                None => {
                    let reusable = prev.and_then(|p| p.keyed.get(&key)).filter(|b| {
                        b.connections() == t.config.connections
                            && b.reads_replicas()
                                == (t.config.read_from == crate::backend::replicas::ReadFrom::Replicas)
                            && match (b.isolation_arc(), &t.isolation) {
                                (None, None) => true,
                                (Some(a), Some(b)) => Arc::ptr_eq(&a, b),
                                _ => false,
                            }
                    });
                    let sizes = Sizes {
                        connections: t.config.connections,
                        ..plan.sizes
                    };
                    let metrics = metrics.backend(&t.config.name)?;
                    let timeout = plan.command_timeout;
                    let backend = match (reusable, &t.remote) {
                        (Some(b), _) => b.clone(),
                        (None, Some(remote)) => Backend::start_remote(
                            &t.config.name,
                            remote.clone(),
                            sizes,
                            timeout,
                            t.isolation.clone(),
                            metrics,
                        ),
                        (None, None) => Backend::start(
                            &t.config.name,
                            t.info.clone(),
                            sizes,
                            timeout,
                            t.isolation.clone(),
                            metrics,
                        ),
                    };
                    keyed.insert(key, backend.clone());
                    backend
                }
            };
            let tenant = Arc::new(Tenant {
                name: t.config.name.clone(),
                backend,
                db: t.db,
                shared: t.shared,
                open_streams: t.meter.open_streams.clone(),
                meter: t.meter.clone(),
            });
            for (tokens, read_only) in [(&t.config.tokens, false), (&t.config.read_only_tokens, true)] {
                for token in tokens {
                    callers.push((
                        token.clone(),
                        Caller {
                            tenant: tenant.clone(),
                            read_only,
                            after: Default::default(),
                        },
                    ));
                }
            }
        }
        Ok(Tenancy {
            auth: Auth::new(callers),
            policy: Policy::new(plan.deny.iter().map(String::as_str))
                .with_blocking(plan.blocking.mode, plan.blocking.max_timeout),
            backends: keyed.values().cloned().collect(),
            isolation_warning: plan.warning.clone(),
            keyed,
        })
    }
}

/// Sets up the ACL users of tenant `name` on its shared Redis (`info`: its URL and database),
/// or explains why Redis cannot enforce them. An unreachable Redis is not an error: every
/// connection's handshake creates the users before use, and fails closed.
async fn isolate(name: &str, info: &ConnectionInfo) -> anyhow::Result<Isolation> {
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
async fn identify(infos: &[(ConnectionInfo, i64)]) -> Vec<String> {
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

/// How long building a plan waits for each Redis of a multi-tenant configuration to say who
/// it is.
const IDENTIFY_DEADLINE: Duration = Duration::from_secs(1);

/// How long building a plan waits for a shared Redis to set up tenant isolation.
const ISOLATION_DEADLINE: Duration = Duration::from_secs(3);
