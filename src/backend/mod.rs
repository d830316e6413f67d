//! The Redis side behind one small facade, [`Backend`]: [`execute`](Backend::execute) one
//! command, [`pipeline`](Backend::pipeline) a batch, run a [`transaction`](Backend::transaction).
//! The HTTP and protocol layers only see this facade, so a Cluster or Sentinel backend can be
//! added beside it without touching them.
//!
//! A backend owns a few pipelined connections ([`conn::Slot`], each a [`wire::Wire`]); the
//! commands of concurrent requests go out together, so Redis sees coalesced writes. Each
//! request's commands are written as one contiguous batch, which is what makes a
//! `MULTI ... EXEC` batch safe on a shared connection: nothing of another request can land
//! between its parts. Nothing is ever retried: a command that may have reached Redis is not
//! sent again (a retried INCR would count twice).
//!
//! A request goes to a connection that is not receiving a large reply ([`wire::Wire::is_heavy`]):
//! Redis answers in order, so a small reply behind an 8 MB one would wait for all of it. When
//! every connection is heavy, it goes to a spill-over connection, opened on first need (at most
//! [`SPILL_LANES`] per backend), and only when those are heavy too, or still connecting, behind
//! a large reply. A command whose last reply was large ([`large::LargeReplies`]) goes to a
//! spill-over connection from the start, and makes it heavy as it is sent.

mod blocking;
mod conn;
pub mod isolation;
mod large;
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
use isolation::Isolation;

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

/// One Redis server (one URL and database) as seen by restdis.
pub struct Backend {
    label: String,
    info: ConnectionInfo,
    slots: Vec<Arc<Slot>>,
    /// Spill-over connections, started when every connection is heavy or a large reply is
    /// expected.
    spill: [OnceLock<Arc<Slot>>; SPILL_LANES],
    /// Commands whose last reply was large.
    large: large::LargeReplies,
    next: AtomicUsize,
    timeout: Duration,
    table: OnceLock<Arc<CommandTable>>,
    blocking: OnceLock<deadpool_redis::Pool>,
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
}

/// Spill-over connections per backend at most, for requests that would otherwise wait behind
/// a large reply.
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
        isolation: Option<Isolation>,
        metrics: BackendMetrics,
    ) -> Arc<Self> {
        let connections = sizes.connections;
        let handshake = isolation.as_ref().map(Isolation::handshake).unwrap_or_default();
        let slots = (0..connections.max(1))
            .map(|_| {
                Slot::start(
                    label.to_string(),
                    info.clone(),
                    handshake.clone(),
                    timeout,
                    metrics.reconnections.clone(),
                )
            })
            .collect();
        Arc::new(Self {
            label: label.to_string(),
            info,
            slots,
            spill: Default::default(),
            large: Default::default(),
            next: AtomicUsize::new(0),
            timeout,
            table: OnceLock::new(),
            blocking: OnceLock::new(),
            blocking_pool_size: sizes.blocking_pool.max(1),
            script_aliases: Default::default(),
            in_flight: tokio::sync::Semaphore::new(sizes.max_in_flight.max(1)),
            max_in_flight: sizes.max_in_flight.max(1),
            queue_timeout: sizes.queue_timeout,
            isolation: isolation.map(Arc::new),
            metrics,
            waiting: AtomicUsize::new(0),
        })
    }

    /// Sets the gauges read at scrape time (in flight, queued, live connections), so the
    /// request path pays nothing for them.
    pub fn refresh_gauges(&self) {
        let free = self.in_flight.available_permits();
        self.metrics
            .in_flight
            .set(self.max_in_flight.saturating_sub(free) as i64);
        self.metrics
            .queued
            .set(self.waiting.load(Ordering::Relaxed) as i64);
        self.metrics
            .connections
            .set(self.all_slots().filter(|s| s.is_connected()).count() as i64);
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

    /// The name used in logs and metrics.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether at least one connection is up.
    pub fn is_connected(&self) -> bool {
        self.slots.iter().any(|s| s.is_connected())
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
        let large = self.large.predicts(cmd);
        let (slot, wire, generation) = if large { self.pick_spill()? } else { self.pick()? };
        if large {
            wire.expect_large();
        }
        let started = std::time::Instant::now();
        let mut replies = slot.send(&wire, generation, std::slice::from_ref(cmd)).await?;
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
        let reply = replies
            .pop()
            .ok_or_else(|| Error::Internal("Redis gave no reply".into()))?;
        self.large.learn(cmd, large, &reply);
        Ok(reply)
    }

    /// Sends commands as one contiguous pipelined write and returns one reply per command.
    pub async fn pipeline(&self, cmds: &[Command]) -> Result<Vec<Value>, Error> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let _place = self.admit().await?;
        let (slot, wire, generation) = self.pick()?;
        let started = std::time::Instant::now();
        let values = slot.send(&wire, generation, cmds).await?;
        self.metrics.duration.observe(started.elapsed().as_secs_f64());
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

    /// Picks the next connected slot that is not heavy (round-robin), else a spill-over
    /// connection that is not (opening the next one when all open ones are), else a heavy
    /// one; 503 at once when none is up.
    fn pick(&self) -> Result<(&Arc<Slot>, wire::Wire, u64), Error> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut heavy = None;
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Some((wire, generation)) = slot.connection() {
                if !wire.is_heavy() {
                    return Ok((slot, wire, generation));
                }
                heavy.get_or_insert((slot, wire, generation));
            }
        }
        let heavy = heavy.ok_or_else(|| Error::Unavailable("not connected (reconnecting)".into()))?;
        for lane in &self.spill {
            let slot = lane.get_or_init(|| self.start_slot());
            match slot.connection() {
                Some((wire, generation)) if !wire.is_heavy() => return Ok((slot, wire, generation)),
                Some(_) => continue,
                None => break,
            }
        }
        Ok(heavy)
    }

    /// For a request expected to get a large reply: a spill-over connection that is not
    /// heavy, else the first one (behind another large reply), so that the connections small
    /// requests use stay clear; [`pick`](Self::pick) while none is connected yet.
    fn pick_spill(&self) -> Result<(&Arc<Slot>, wire::Wire, u64), Error> {
        let mut heavy = None;
        for lane in &self.spill {
            let slot = lane.get_or_init(|| self.start_slot());
            if let Some((wire, generation)) = slot.connection() {
                if !wire.is_heavy() {
                    return Ok((slot, wire, generation));
                }
                heavy.get_or_insert((slot, wire, generation));
            }
        }
        heavy.map_or_else(|| self.pick(), Ok)
    }

    /// Starts one more pipelined connection like the backend's others.
    fn start_slot(&self) -> Arc<Slot> {
        let handshake = self
            .isolation
            .as_deref()
            .map(Isolation::handshake)
            .unwrap_or_default();
        Slot::start(
            self.label.clone(),
            self.info.clone(),
            handshake,
            self.timeout,
            self.metrics.reconnections.clone(),
        )
    }

    /// The connections and the spill-over connections opened so far.
    fn all_slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.slots
            .iter()
            .chain(self.spill.iter().filter_map(OnceLock::get))
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

fn internal(parts: &[&str]) -> Command {
    Command::internal(parts)
}
