//! The Redis side behind one small facade, [`Backend`]: [`execute`](Backend::execute) one
//! command, [`pipeline`](Backend::pipeline) a batch, run a [`transaction`](Backend::transaction).
//! The HTTP and protocol layers only see this facade. The topology is chosen once, when the
//! backend starts: one Redis (`single::Single`) or a Redis Cluster ([`cluster::Cluster`]).
//!
//! A Redis (or each cluster primary) gets a few pipelined connections ([`conn::Slot`], each a
//! [`wire::Wire`]); the
//! commands of concurrent requests go out together, so Redis sees coalesced writes. Each
//! request's commands are written as one contiguous batch, which is what makes a
//! `MULTI ... EXEC` batch safe on a shared connection: nothing of another request can land
//! between its parts. Nothing is ever retried: a command that may have reached Redis is not
//! sent again (a retried INCR would count twice).
//!
//! A request goes to a connection that is not receiving a large reply ([`wire::Wire::is_heavy`]):
//! Redis answers in order, so a small reply behind an 8 MB one would wait for all of it. When
//! every connection to a server is heavy, it goes to a spill-over connection, opened on first
//! need (at most [`SPILL_LANES`] per server), and only when those are heavy too, or still
//! connecting, behind a large reply. A command whose last reply was large
//! (`large::LargeReplies`) goes to a spill-over connection from the start, and makes it heavy
//! as it is sent (`single.rs`).

mod blocking;
pub mod cluster;
mod conn;
pub mod isolation;
mod large;
pub mod replicas;
pub mod sentinel;
mod single;
mod streams;
pub mod wire;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::{ConnectionInfo, Value};

use crate::error::Error;
use crate::metrics::BackendMetrics;
use crate::protocol::encode::error_text;
use crate::protocol::policy::CommandTable;
use crate::protocol::scope::Scope;
use crate::protocol::Command;
use cluster::{Cluster, ClusterSpec};
use isolation::Isolation;
use replicas::After;
use sentinel::{Sentinel, SentinelSpec};
use single::{NodeSettings, Single};

pub use conn::Slot;
pub use streams::{StreamConn, StreamKind};

/// How a transaction ended.
#[derive(Debug)]
pub enum TxOutcome {
    /// EXEC ran: one reply per queued command (errors in their slots).
    Executed(Vec<Value>),
    /// Redis discarded the transaction; the text of the first error that caused it.
    Discarded(String),
}

/// How many connections a backend may open.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Shared, pipelined connections.
    pub connections: usize,
    /// Dedicated connections for blocking commands (opened on demand).
    pub blocking_pool: usize,
    /// Requests at most in flight to this Redis at once; more wait for a place.
    pub max_in_flight: usize,
    /// How long a request waits for a place before it gets a 503.
    pub queue_timeout: Duration,
}

/// A topology of several Redis servers, as the URL named it.
#[derive(Debug, Clone)]
pub enum Remote {
    /// A Redis Cluster.
    Cluster(ClusterSpec),
    /// A primary found through Redis Sentinel.
    Sentinel(SentinelSpec),
}

/// Where the commands go, chosen once at start. One per backend, so its size does not matter;
/// the one-Redis variant stays inline (no pointer to follow on the hot path).
#[allow(clippy::large_enum_variant)]
enum Topology {
    /// One Redis server.
    Single(Single),
    /// A Redis Cluster.
    Cluster(Arc<Cluster>),
    /// A primary found through Redis Sentinel.
    Sentinel(Arc<Sentinel>),
}

/// One Redis (one URL and database) or one Redis Cluster, as seen by restdis.
pub struct Backend {
    label: String,
    /// One Redis: its URL. A cluster: a seed's (streams use it). Sentinel: the data nodes'
    /// credentials and database, at the first sentinel's address (see [`Backend::server_info`]).
    info: ConnectionInfo,
    topology: Topology,
    timeout: Duration,
    table: OnceLock<Arc<CommandTable>>,
    blocking: OnceLock<deadpool_redis::Pool>,
    /// A cluster's dedicated pools, one per node (`host:port`).
    node_pools: std::sync::Mutex<std::collections::HashMap<String, deadpool_redis::Pool>>,
    blocking_pool_size: usize,
    /// SHA1 of a script as the client wrote it -> SHA1 of the script Redis got (see
    /// [`crate::protocol::scripts`]).
    script_aliases: std::sync::Mutex<std::collections::HashMap<String, String>>,
    in_flight: tokio::sync::Semaphore,
    max_in_flight: usize,
    queue_timeout: Duration,
    /// For a tenant on a shared Redis: the ACL users its connections switch to.
    isolation: Option<Arc<Isolation>>,
    metrics: BackendMetrics,
    /// Requests waiting for a place under `max_in_flight` now.
    waiting: AtomicUsize,
    /// Pipelined connections per Redis node, as configured.
    connections: usize,
}

/// Spill-over connections per Redis server at most, for requests that would otherwise wait
/// behind a large reply.
pub const SPILL_LANES: usize = 2;

/// Aliases kept at most (scripts are few; the map is cleared if it ever fills).
const MAX_SCRIPT_ALIASES: usize = 10_000;

impl Backend {
    /// Creates a backend with `connections` pipelined connections and starts connecting in
    /// the background. It never fails on an unreachable Redis: requests get 503 until a
    /// connection is up, and reconnection is automatic.
    pub fn start(
        label: &str,
        info: ConnectionInfo,
        sizes: Sizes,
        timeout: Duration,
        isolation: Option<Arc<Isolation>>,
        metrics: BackendMetrics,
    ) -> Arc<Self> {
        let handshake = isolation.as_deref().map(Isolation::handshake).unwrap_or_default();
        let single = Single::start(
            label,
            &info,
            &handshake,
            sizes.connections,
            timeout,
            &metrics.reconnections,
        );
        Self::with(
            label,
            info,
            Topology::Single(single),
            sizes,
            timeout,
            isolation,
            metrics,
        )
    }

    /// Creates a backend for a Redis Cluster (`sizes.connections` connections to each
    /// primary) or for a primary found through Sentinel (as many to whichever node is the
    /// primary). Like [`start`](Self::start), it never fails: requests get 503 until the
    /// nodes are found and connected.
    pub fn start_remote(
        label: &str,
        remote: Remote,
        sizes: Sizes,
        timeout: Duration,
        isolation: Option<Arc<Isolation>>,
        metrics: BackendMetrics,
    ) -> Arc<Self> {
        let settings = NodeSettings {
            label: label.to_string(),
            connections: sizes.connections,
            timeout,
            reconnections: metrics.reconnections.clone(),
            handshake: isolation.as_deref().map(Isolation::handshake).unwrap_or_default(),
        };
        let (info, topology) = match remote {
            Remote::Cluster(spec) => (
                spec.template.clone(),
                Topology::Cluster(Cluster::start(settings, spec)),
            ),
            Remote::Sentinel(spec) => (
                spec.template.clone(),
                Topology::Sentinel(Sentinel::start(settings, spec)),
            ),
        };
        Self::with(label, info, topology, sizes, timeout, isolation, metrics)
    }

    /// The connection settings of the server that streams and dedicated blocking connections
    /// go to: the URL's (one Redis, a cluster's first seed), or Sentinel's current primary
    /// with its `host:port`.
    pub(crate) fn server_info(&self) -> (Option<String>, ConnectionInfo) {
        if let Topology::Sentinel(sentinel) = &self.topology {
            if let Some(addr) = sentinel.primary() {
                if let Some(info) = cluster::info_for(&self.info, &addr) {
                    return (Some(addr), info);
                }
            }
        }
        (None, self.info.clone())
    }

    /// The Sentinel follower, when this backend uses one.
    pub fn sentinel(&self) -> Option<&Sentinel> {
        match &self.topology {
            Topology::Sentinel(sentinel) => Some(sentinel),
            _ => None,
        }
    }

    fn with(
        label: &str,
        info: ConnectionInfo,
        topology: Topology,
        sizes: Sizes,
        timeout: Duration,
        isolation: Option<Arc<Isolation>>,
        metrics: BackendMetrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            label: label.to_string(),
            info,
            topology,
            timeout,
            table: OnceLock::new(),
            blocking: OnceLock::new(),
            node_pools: Default::default(),
            blocking_pool_size: sizes.blocking_pool.max(1),
            script_aliases: Default::default(),
            in_flight: tokio::sync::Semaphore::new(sizes.max_in_flight.max(1)),
            max_in_flight: sizes.max_in_flight.max(1),
            queue_timeout: sizes.queue_timeout,
            isolation,
            connections: sizes.connections.max(1),
            metrics,
            waiting: AtomicUsize::new(0),
        })
    }

    /// What the gauges read at scrape time show of this backend: requests in flight, requests
    /// queued, live connections. Workers each have their own backend for a Redis; the admin
    /// listener adds theirs up, so the request path pays nothing for them.
    pub fn gauges(&self) -> [i64; 3] {
        let free = self.in_flight.available_permits();
        let connected = match &self.topology {
            Topology::Single(single) => single.connected(),
            Topology::Cluster(cluster) => cluster.connected(),
            Topology::Sentinel(sentinel) => sentinel.connected(),
        };
        [
            self.max_in_flight.saturating_sub(free) as i64,
            self.waiting.load(Ordering::Relaxed) as i64,
            connected as i64,
        ]
    }

    /// Its metric handles.
    pub fn metrics(&self) -> &BackendMetrics {
        &self.metrics
    }

    /// The cluster, when this backend fronts one.
    pub fn cluster(&self) -> Option<&Cluster> {
        match &self.topology {
            Topology::Cluster(cluster) => Some(cluster),
            _ => None,
        }
    }

    /// The channel scope of a tenant on a shared Redis (`None`: its Redis is its own, or
    /// isolation is off).
    pub fn scope(&self) -> Option<&Scope> {
        self.isolation.as_deref().map(|i| &i.scope)
    }

    /// The ACL users of a tenant on a shared Redis.
    pub fn isolation(&self) -> Option<&Isolation> {
        self.isolation.as_deref()
    }

    /// The same, shared (a reload reuses a backend only with the same users).
    pub fn isolation_arc(&self) -> Option<Arc<Isolation>> {
        self.isolation.clone()
    }

    /// How many pipelined connections it keeps (to each node, for a cluster).
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// The name used in logs and metrics.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether at least one connection is up (a cluster: the map is loaded and a primary has
    /// one; Sentinel: the primary is known and has one).
    pub fn is_connected(&self) -> bool {
        match &self.topology {
            Topology::Single(single) => single.is_connected(),
            Topology::Cluster(cluster) => cluster.is_connected(),
            Topology::Sentinel(sentinel) => sentinel.is_connected(),
        }
    }

    /// Waits until a connection is up, or `deadline` passes.
    pub async fn wait_connected(&self, deadline: Duration) -> bool {
        let start = tokio::time::Instant::now();
        while !self.is_connected() {
            if start.elapsed() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }

    /// Sends one command and returns its reply (a top-level error reply is `Value::ServerError`).
    pub async fn execute(&self, cmd: &Command) -> Result<Value, Error> {
        let _place = self.admit().await?;
        let single = match &self.topology {
            Topology::Single(single) => single,
            // Boxed: the cluster's future is larger, and the single-Redis one stays as small.
            Topology::Cluster(cluster) if !cluster.reads_replicas() => {
                return Box::pin(self.timed(cluster.execute(cmd))).await
            }
            Topology::Cluster(_) | Topology::Sentinel(_) => {
                let mut replies =
                    Box::pin(self.timed(self.replicated(std::slice::from_ref(cmd), &After::Primary))).await?;
                return replies
                    .pop()
                    .ok_or_else(|| Error::Internal("Redis gave no reply".into()));
            }
        };
        let large = single.large.predicts(cmd);
        let (slot, wire, generation) = if large {
            single.pick_spill()?
        } else {
            single.pick()?
        };
        if large {
            wire.expect_large();
        }
        let started = std::time::Instant::now();
        let mut replies = slot.send(&wire, generation, std::slice::from_ref(cmd)).await?;
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        let reply = replies
            .pop()
            .ok_or_else(|| Error::Internal("Redis gave no reply".into()))?;
        single.large.learn(cmd, large, &reply);
        Ok(reply)
    }

    /// `work`, its duration observed.
    async fn timed<T>(&self, work: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let started = std::time::Instant::now();
        let done = work.await;
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        done
    }

    /// Sends one command of a client's request whose `upstash-sync-token` asks `after` (see
    /// [`replicas`]): with `read_from = "replicas"` a read-only command may go to a replica.
    pub async fn execute_at(&self, cmd: &Command, after: &After) -> Result<Value, Error> {
        if !self.reads_replicas() {
            return self.execute(cmd).await;
        }
        let mut replies = Box::pin(self.pipeline_at(std::slice::from_ref(cmd), after)).await?;
        replies
            .pop()
            .ok_or_else(|| Error::Internal("Redis gave no reply".into()))
    }

    /// Whether read-only commands may go to replicas (`read_from = "replicas"`).
    pub fn reads_replicas(&self) -> bool {
        match &self.topology {
            Topology::Sentinel(s) => s.replicas().is_some(),
            Topology::Cluster(c) => c.reads_replicas(),
            Topology::Single(_) => false,
        }
    }

    /// With `read_from = "replicas"`, the `upstash-sync-token` of a response to a request
    /// that carried `after`: the replication positions of every write acknowledged so far by
    /// this backend, or named by the request's token, whichever is further ([`replicas`]);
    /// `unique` keeps it unique per response.
    pub fn sync_token(&self, after: &After, unique: &[u8]) -> Option<Vec<u8>> {
        match &self.topology {
            Topology::Sentinel(s) => {
                let own = s.replicas()?.written();
                let asked = match after {
                    After::At(offset) => *offset,
                    _ => 0,
                };
                Some(replicas::token(own.max(asked), unique))
            }
            Topology::Cluster(c) => Some(replicas::shard_token(&c.positions(after)?, unique)),
            Topology::Single(_) => None,
        }
    }

    /// Records the replies of `ROLE` (and, in a cluster, `CLUSTER MYID`) that a primary gave
    /// right after a write restdis sent outside its pipelined connections.
    fn wrote(&self, replies: &[Value]) {
        match (&self.topology, replies) {
            (Topology::Sentinel(s), [role, ..]) => {
                if let Some(r) = s.replicas() {
                    r.wrote(role);
                }
            }
            (Topology::Cluster(c), [role, id]) => c.wrote(role, id),
            _ => {}
        }
    }

    /// `cmds` to a Sentinel group or a cluster: with `read_from = "replicas"`, when every
    /// command is read-only by the server's flags (and no script), to replicas that may serve
    /// `after`; else to the primaries, whose positions are recorded.
    async fn replicated(&self, cmds: &[Command], after: &After) -> Result<Vec<Value>, Error> {
        let reads = self.reads_replicas();
        let table = match self.table.get() {
            _ if !reads => None,
            Some(table) => Some(table.clone()),
            // Internal commands (`After::Primary`, the table's own load among them) need none.
            None if *after != After::Primary => self.command_table().await.ok(),
            None => None,
        };
        let read_only = table.is_some_and(|t| cmds.iter().all(|c| t.allows(c) && !is_script(c)));
        let (replies, by_replica) = match &self.topology {
            Topology::Sentinel(s) if !reads => (s.send(cmds).await?, false),
            Topology::Sentinel(s) => s.send_at(cmds, after, read_only).await?,
            Topology::Cluster(c) => c.pipeline_at(cmds, after, read_only).await?,
            Topology::Single(s) => (s.send(cmds).await?, false),
        };
        // Client reads only: restdis's own (`After::Primary`: readiness PINGs, the table's
        // load) always go to the primary.
        if read_only && *after != After::Primary {
            self.metrics.reads[usize::from(!by_replica)].inc();
        }
        Ok(replies)
    }

    /// Sends commands as one contiguous pipelined write and returns one reply per command.
    pub async fn pipeline(&self, cmds: &[Command]) -> Result<Vec<Value>, Error> {
        self.pipeline_at(cmds, &After::Primary).await
    }

    /// [`pipeline`](Self::pipeline) for a client's request whose `upstash-sync-token` asks
    /// `after` (see [`execute_at`](Self::execute_at)).
    pub async fn pipeline_at(&self, cmds: &[Command], after: &After) -> Result<Vec<Value>, Error> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let _place = self.admit().await?;
        let values = match &self.topology {
            Topology::Single(single) => self.timed(single.send(cmds)).await?,
            Topology::Cluster(cluster) if !cluster.reads_replicas() => {
                Box::pin(self.timed(cluster.pipeline(cmds))).await?
            }
            Topology::Cluster(_) | Topology::Sentinel(_) => {
                Box::pin(self.timed(self.replicated(cmds, after))).await?
            }
        };
        if values.len() != cmds.len() {
            return Err(Error::Internal(format!(
                "Redis answered {} replies to {} commands",
                values.len(),
                cmds.len()
            )));
        }
        Ok(values)
    }

    /// Runs `MULTI`, the commands and `EXEC` as one contiguous batch.
    pub async fn transaction(&self, cmds: &[Command]) -> Result<TxOutcome, Error> {
        let mut batch = Vec::with_capacity(cmds.len() + 2);
        batch.push(internal(&["MULTI"]));
        batch.extend(cmds.iter().cloned());
        batch.push(internal(&["EXEC"]));
        let mut replies = self.pipeline(&batch).await?;
        let exec = replies.pop().unwrap_or(Value::Nil);
        if let Some(Value::ServerError(first)) = replies.iter().find(|v| matches!(v, Value::ServerError(_))) {
            return Ok(TxOutcome::Discarded(error_text(first)));
        }
        match exec {
            Value::Array(values) => Ok(TxOutcome::Executed(values)),
            Value::ServerError(err) => Ok(TxOutcome::Discarded(error_text(&err))),
            _ => Ok(TxOutcome::Discarded("EXECABORT Transaction discarded".into())),
        }
    }

    /// `PING`, for readiness checks.
    pub async fn ping(&self) -> Result<(), Error> {
        match self.execute(&internal(&["PING"])).await? {
            Value::ServerError(e) => Err(Error::Unavailable(error_text(&e))),
            _ => Ok(()),
        }
    }

    /// The read-only command table, loaded from `COMMAND` on first use.
    pub async fn command_table(&self) -> Result<Arc<CommandTable>, Error> {
        if let Some(t) = self.table.get() {
            return Ok(t.clone());
        }
        let reply = self.execute(&internal(&["COMMAND"])).await?;
        let table = Arc::new(CommandTable::from_command_reply(&reply));
        if table.len() < 10 {
            return Err(Error::Unavailable(
                "could not load the command table from Redis".into(),
            ));
        }
        tracing::debug!(backend = %self.label, commands = table.len(), "read-only command table loaded");
        Ok(self.table.get_or_init(|| table).clone())
    }

    /// Remembers that the script the client knows as `original` reached Redis as `sent`.
    pub fn alias_script(&self, original: String, sent: String) {
        if let Ok(mut map) = self.script_aliases.lock() {
            if map.len() >= MAX_SCRIPT_ALIASES {
                map.clear();
            }
            map.insert(original, sent);
        }
    }

    /// The SHA1 Redis knows for a script the client names by `sha`, if it was rewritten.
    pub fn script_alias(&self, sha: &[u8]) -> Option<String> {
        let sha = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
        self.script_aliases.lock().ok()?.get(&sha).cloned()
    }

    /// A place among the requests in flight to this Redis: at once when one is free, else
    /// after waiting at most the queue timeout, else a 503. This bounds what piles up in
    /// restdis when Redis is slow.
    async fn admit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Error> {
        if let Ok(place) = self.in_flight.try_acquire() {
            return Ok(place);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waited = tokio::time::timeout(self.queue_timeout, self.in_flight.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok(Ok(place)) => Ok(place),
            _ => Err(Error::Overloaded(format!(
                "{} requests are already in flight to Redis; retry later",
                self.max_in_flight
            ))),
        }
    }
}

/// `cmd` as a redis-rs command, for the connections redis-rs drives (dedicated blocking, the
/// start-up admin connection).
pub(crate) fn redis_cmd(cmd: &Command) -> redis::Cmd {
    let mut packed = redis::Cmd::new();
    for arg in cmd.args() {
        packed.arg(arg.as_slice());
    }
    packed
}

/// Scripts and functions, which go to the primary even when their `_RO` forms could run on
/// a replica.
fn is_script(cmd: &Command) -> bool {
    let name = cmd.name();
    [
        &b"EVAL"[..],
        b"EVALSHA",
        b"EVAL_RO",
        b"EVALSHA_RO",
        b"FCALL",
        b"FCALL_RO",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

fn internal(parts: &[&str]) -> Command {
    Command::internal(parts)
}
