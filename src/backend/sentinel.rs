//! [`Sentinel`]: one primary found through Redis Sentinel, followed across failovers.
//!
//! The sentinels are asked in turn (`SENTINEL GET-MASTER-ADDR-BY-NAME`, the first that answers)
//! for the primary's address, and the answer is confirmed with `ROLE` on the node itself before
//! any request goes there. The primary is asked again when the primary's connections are lost
//! or it answers `READONLY` (it was demoted), and every second. The primary gets the same
//! self-repairing pipelined connections one Redis gets (`Single`).
//!
//! Every sentinel's events are followed (a subscription to each): when a failover of our
//! master starts (`+selected-slave`), requests are held (they wait, within their command
//! timeout) so that no write reaches the old primary after its replica stopped copying it;
//! `+promoted-slave` and `+switch-master` switch to the new primary at once (after `ROLE`
//! confirms it), which releases them; `-failover-abort-*` releases them too, and a hold never
//! lasts longer than [`HOLD_MAX`].
//!
//! A single command that got `READONLY` did not run, so it waits for the new primary (within
//! the command timeout) and is sent there; a batch that got it is a 503 (part of it may
//! have run on the demoted node).

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::{ConnectionInfo, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::replicas::{After, ReadFrom, Replicas, REPLICA_WAIT};
use super::single::{NodeSettings, Single};
use super::wire::Wire;
use crate::error::Error;
use crate::protocol::encode::error_text;
use crate::protocol::Command;

/// How often the primary is confirmed when nothing else asks.
const RECHECK: Duration = Duration::from_secs(1);
/// Asks at most this often, however many events ask for it.
const GAP: Duration = Duration::from_millis(20);
/// Connect timeout of the short-lived connections to sentinels and candidates.
const CONNECT: Duration = Duration::from_millis(500);
/// How often a request waiting for the primary looks again.
const POLL: Duration = Duration::from_millis(5);
/// The longest requests are held for a failover in progress.
pub const HOLD_MAX: Duration = Duration::from_secs(5);

/// How restdis reaches a Sentinel-managed primary.
#[derive(Debug, Clone)]
pub struct SentinelSpec {
    /// Credentials, database and TLS for the data nodes (the address is replaced).
    pub template: ConnectionInfo,
    /// The sentinels, `host:port`.
    pub sentinels: Vec<String>,
    /// The monitored master's name.
    pub master: String,
    /// The sentinels' own password, if they have one.
    pub sentinel_password: Option<String>,
    /// Where read-only commands go.
    pub read_from: ReadFrom,
}

/// The primary in use.
struct Current {
    addr: String,
    node: Arc<Single>,
}

/// A primary found and followed through Sentinel.
pub struct Sentinel {
    label: String,
    spec: SentinelSpec,
    nodes_settings: NodeSettings,
    timeout: Duration,
    current: RwLock<Option<Arc<Current>>>,
    wake: Arc<Notify>,
    /// While a failover of our master is in progress: until when requests are held.
    hold: std::sync::Mutex<Option<std::time::Instant>>,
    /// With `read_from = "replicas"`: the replicas and the positions known.
    replicas: Option<Arc<Replicas>>,
}

impl Sentinel {
    /// Starts looking for the primary in the background (never fails; requests get 503 until
    /// it is found and connected).
    pub fn start(settings: NodeSettings, spec: SentinelSpec) -> Arc<Self> {
        let spec_reads_replicas = spec.read_from == ReadFrom::Replicas;
        let sentinel = Arc::new(Self {
            label: settings.label.clone(),
            spec,
            timeout: settings.timeout,
            nodes_settings: settings,
            current: RwLock::new(None),
            wake: Arc::new(Notify::new()),
            hold: std::sync::Mutex::new(None),
            replicas: (spec_reads_replicas).then(Default::default),
        });
        tokio::spawn(resolve_loop(Arc::downgrade(&sentinel)));
        for addr in &sentinel.spec.sentinels {
            tokio::spawn(watch_loop(Arc::downgrade(&sentinel), addr.clone()));
        }
        sentinel
    }

    /// The primary's `host:port`, once found.
    pub fn primary(&self) -> Option<String> {
        self.now().map(|c| c.addr.clone())
    }

    /// Whether the primary is known and connected.
    pub fn is_connected(&self) -> bool {
        self.now().is_some_and(|c| c.node.is_connected())
    }

    /// Connections up now.
    pub fn connected(&self) -> usize {
        self.now().map(|c| c.node.connected()).unwrap_or(0)
    }

    /// The replicas, with `read_from = "replicas"`.
    pub fn replicas(&self) -> Option<&Replicas> {
        self.replicas.as_deref()
    }

    /// Sends `cmds` as one batch: to a replica that may serve `after` when they are all
    /// read-only (`read_only`) and replicas are read from, else (or when that replica fails
    /// or cannot serve) to the primary. A batch sent to the primary while replicas are read
    /// from is followed by `ROLE`, whose offset becomes the position of later responses.
    /// The flag says whether a replica served them.
    pub async fn send_at(
        &self,
        cmds: &[Command],
        after: &After,
        read_only: bool,
    ) -> Result<(Vec<Value>, bool), Error> {
        let Some(replicas) = &self.replicas else {
            return Ok((self.send(cmds).await?, false));
        };
        if read_only {
            // No replica known to be far enough: one that is up may still be, which `ROLE`
            // sent right before the read on the same connection tells.
            let (node, check) = match (replicas.pick(after), after) {
                (Some(node), _) => (Some(node), None),
                (None, After::At(need)) => (replicas.pick(&After::Any), Some(*need)),
                (None, _) => (None, None),
            };
            if let Some(node) = node {
                let wait = self.timeout.min(REPLICA_WAIT);
                if let Some(replies) = super::replicas::read_on(&node, cmds, check, wait).await {
                    return Ok((replies, true));
                }
            }
            return Ok((self.send(cmds).await?, false));
        }
        let mut batch = Vec::with_capacity(cmds.len() + 1);
        batch.extend_from_slice(cmds);
        batch.push(Command::internal(&["ROLE"]));
        let mut replies = self.send_batch(&batch, cmds.len()).await?;
        if let Some(role) = replies.pop() {
            replicas.wrote(&role);
        }
        Ok((replies, false))
    }

    /// Sends `cmds` as one batch to the primary.
    pub async fn send(&self, cmds: &[Command]) -> Result<Vec<Value>, Error> {
        self.send_batch(cmds, cmds.len()).await
    }

    /// Sends `cmds` (of which the client's are the first `own`) to the primary.
    async fn send_batch(&self, cmds: &[Command], own: usize) -> Result<Vec<Value>, Error> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let node = self.ready(deadline).await?;
            let replies = node.send(cmds).await?;
            if !replies.iter().any(is_readonly) {
                return Ok(replies);
            }
            // The node was demoted: find the new primary.
            self.wake.notify_one();
            if own != 1 || Instant::now() >= deadline {
                return Err(Error::Unavailable(
                    "the Redis primary is changing (Sentinel failover); retry".into(),
                ));
            }
            self.wait_for_other(&node, deadline).await;
        }
    }

    fn now(&self) -> Option<Arc<Current>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    /// The primary's connections once they are up (503 at `deadline`).
    async fn ready(&self, deadline: Instant) -> Result<Arc<Single>, Error> {
        loop {
            if let Some(current) = self.now() {
                if current.node.is_connected() && !self.held() {
                    return Ok(current.node.clone());
                }
            }
            self.wake.notify_one();
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(
                    "no Redis primary reachable through Sentinel (failover in progress?)".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether requests are held for a failover in progress.
    fn held(&self) -> bool {
        let Ok(mut hold) = self.hold.lock() else {
            return false;
        };
        match *hold {
            Some(until) if std::time::Instant::now() < until => true,
            Some(_) => {
                *hold = None;
                false
            }
            None => false,
        }
    }

    fn set_hold(&self, on: bool) {
        if let Ok(mut hold) = self.hold.lock() {
            *hold = on.then(|| std::time::Instant::now() + HOLD_MAX);
        }
    }

    /// Reacts to one sentinel event (`channel`, `payload`).
    async fn on_event(&self, channel: &str, payload: &str) {
        let words: Vec<&str> = payload.split(' ').collect();
        let ours = |name_at: usize| words.get(name_at) == Some(&self.spec.master.as_str());
        match channel {
            // "slave <name> <ip> <port> @ <master> <ip> <port>"
            "+selected-slave" if ours(5) => self.set_hold(true),
            "+promoted-slave" if ours(5) => {
                if let (Some(ip), Some(Ok(port))) = (words.get(2), words.get(3).map(|p| p.parse::<u16>())) {
                    self.switch_to(super::cluster::layout::join_addr(ip, port)).await;
                }
            }
            // "<master> <old ip> <old port> <new ip> <new port>"
            "+switch-master" if ours(0) => {
                if let (Some(ip), Some(Ok(port))) = (words.get(3), words.get(4).map(|p| p.parse::<u16>())) {
                    self.switch_to(super::cluster::layout::join_addr(ip, port)).await;
                }
                self.wake.notify_one();
            }
            c if c.starts_with("-failover-abort") && payload.contains(&format!(" {} ", self.spec.master)) => {
                self.set_hold(false);
                self.wake.notify_one();
            }
            _ => {}
        }
    }

    /// Switches to `addr` once `ROLE` there says master; releases held requests.
    async fn switch_to(&self, addr: String) {
        if self.now().is_some_and(|c| c.addr == addr) {
            self.set_hold(false);
            return;
        }
        if let Ok(role) = self.role(&addr).await {
            if role == "master" {
                self.install(addr);
                self.set_hold(false);
            }
        }
    }

    /// Waits until the primary in use is another node than `old`, or `deadline`.
    async fn wait_for_other(&self, old: &Arc<Single>, deadline: Instant) {
        while Instant::now() < deadline {
            if self.now().is_some_and(|c| !Arc::ptr_eq(&c.node, old)) {
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Asks the sentinels for the primary, confirms it with `ROLE`, and switches to it.
    async fn resolve(&self) -> Result<(), String> {
        let mut last = "no sentinel answered".to_string();
        for s in &self.spec.sentinels {
            let addr = match self.ask_sentinel(s).await {
                Ok(addr) => addr,
                Err(e) => {
                    last = format!("sentinel {s}: {e}");
                    continue;
                }
            };
            if self
                .now()
                .is_some_and(|c| c.addr == addr && c.node.is_connected())
            {
                // Still the same primary: confirm it has not been demoted meanwhile.
                match self.role(&addr).await {
                    Ok(role) if role == "master" => return Ok(()),
                    Ok(role) => last = format!("{addr} says it is a {role}"),
                    Err(e) => last = format!("{addr}: {e}"),
                }
                continue;
            }
            match self.role(&addr).await {
                Ok(role) if role == "master" => {
                    self.install(addr);
                    return Ok(());
                }
                Ok(role) => last = format!("sentinel {s} names {addr}, which says it is a {role}"),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }

    async fn ask_sentinel(&self, sentinel: &str) -> Result<String, String> {
        ask_sentinel(&self.spec, sentinel, self.timeout).await
    }

    /// The first element of `ROLE` on `addr` (`master`, `slave`).
    async fn role(&self, addr: &str) -> Result<String, String> {
        let info = node_info(&self.spec.template, addr).ok_or("not host:port")?;
        match ask(&info, &["ROLE"], self.timeout).await? {
            Value::Array(parts) => match parts.first() {
                Some(Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
                Some(Value::SimpleString(s)) => Ok(s.clone()),
                _ => Err("a malformed ROLE reply".into()),
            },
            Value::ServerError(e) => Err(error_text(&e)),
            other => Err(format!("unexpected ROLE reply {other:?}")),
        }
    }

    /// With `read_from = "replicas"`: asks the sentinels (the first that answers) for the
    /// replicas, and uses the usable ones (the primary left out).
    async fn refresh_replicas(&self) {
        let Some(replicas) = &self.replicas else { return };
        for s in &self.spec.sentinels {
            if let Ok(addrs) = ask_replicas(&self.spec, s, self.timeout).await {
                let primary = self.primary();
                replicas.set(&addrs, primary.as_deref(), |addr| {
                    node_info(&self.spec.template, addr).map(|info| self.nodes_settings.open(addr, &info))
                });
                return;
            }
        }
    }

    fn install(&self, addr: String) {
        let Some(info) = node_info(&self.spec.template, &addr) else {
            return;
        };
        let node = self.nodes_settings.open(&addr, &info);
        tracing::info!(backend = %self.label, primary = %addr, "Redis primary (from Sentinel)");
        if let Ok(mut c) = self.current.write() {
            *c = Some(Arc::new(Current { addr, node }));
        }
    }
}

/// The primary's `host:port` as `sentinel` names it.
async fn ask_sentinel(spec: &SentinelSpec, sentinel: &str, timeout: Duration) -> Result<String, String> {
    let info = sentinel_info(spec, sentinel).ok_or("not host:port")?;
    let reply = ask(
        &info,
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", &spec.master],
        timeout,
    )
    .await?;
    match reply {
        Value::Array(parts) if parts.len() == 2 => {
            let text = |v: &Value| match v {
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Value::SimpleString(s) => Some(s.clone()),
                _ => None,
            };
            match (
                text(&parts[0]),
                text(&parts[1]).and_then(|p| p.parse::<u16>().ok()),
            ) {
                (Some(host), Some(port)) => Ok(super::cluster::layout::join_addr(&host, port)),
                _ => Err("a malformed address".into()),
            }
        }
        Value::Nil => Err(format!("no master named {:?}", spec.master)),
        Value::ServerError(e) => Err(error_text(&e)),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// The usable replicas (see [`super::replicas::usable_replicas`]) as `sentinel` lists them.
pub async fn ask_replicas(
    spec: &SentinelSpec,
    sentinel: &str,
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let info = sentinel_info(spec, sentinel).ok_or("not host:port")?;
    match ask(&info, &["SENTINEL", "REPLICAS", &spec.master], timeout).await? {
        reply @ Value::Array(_) => Ok(super::replicas::usable_replicas(&reply)),
        Value::ServerError(e) => Err(error_text(&e)),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// The primary as the first sentinel that answers names it, and that sentinel (for
/// `--check-config`).
pub async fn probe(spec: &SentinelSpec, timeout: Duration) -> Result<(String, String), String> {
    let mut last = "no sentinel answered".to_string();
    for s in &spec.sentinels {
        match ask_sentinel(spec, s, timeout).await {
            Ok(primary) => return Ok((primary, s.clone())),
            Err(e) => last = format!("sentinel {s}: {e}"),
        }
    }
    Err(last)
}

fn is_readonly(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.code() == "READONLY")
}

/// `template` with `addr` as the address (TLS kept).
fn node_info(template: &ConnectionInfo, addr: &str) -> Option<ConnectionInfo> {
    super::cluster::info_for(template, addr)
}

/// How to reach a sentinel: the data nodes' TLS, the sentinels' own password, no database.
fn sentinel_info(spec: &SentinelSpec, addr: &str) -> Option<ConnectionInfo> {
    let info = node_info(&spec.template, addr)?;
    let mut settings = redis::RedisConnectionInfo::default();
    if let Some(password) = &spec.sentinel_password {
        settings = settings.set_password(password.clone());
    }
    Some(info.set_redis_settings(settings))
}

/// One command on a short-lived connection.
async fn ask(info: &ConnectionInfo, parts: &[&str], timeout: Duration) -> Result<Value, String> {
    let owner = Wire::connect(info, CONNECT, timeout).await?;
    let mut replies = owner
        .wire()
        .send(&[Command::internal(parts)])
        .await
        .map_err(|e| format!("{e:?}"))?;
    replies.pop().ok_or_else(|| "no reply".to_string())
}

async fn resolve_loop(weak: Weak<Sentinel>) {
    let mut first = true;
    loop {
        if !first {
            let Some(s) = weak.upgrade() else { return };
            let wake = s.wake.clone();
            drop(s);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
            tokio::time::sleep(GAP).await;
        }
        first = false;
        let Some(s) = weak.upgrade() else { return };
        if let Err(e) = s.resolve().await {
            tracing::warn!(backend = %s.label, error = %e, "cannot confirm the Redis primary through Sentinel");
        }
        s.refresh_replicas().await;
    }
}

/// Follows one sentinel's failover events (see the module doc); on a lost subscription,
/// subscribes again.
async fn watch_loop(weak: Weak<Sentinel>, addr: String) {
    const EVENTS: [&str; 4] = [
        "+selected-slave",
        "+promoted-slave",
        "+switch-master",
        "-failover-abort-*",
    ];
    loop {
        let Some(s) = weak.upgrade() else { return };
        let info = sentinel_info(&s.spec, &addr);
        drop(s);
        if let Some(Ok(client)) = info.map(redis::Client::open) {
            if let Ok(Ok(mut pubsub)) = tokio::time::timeout(CONNECT, client.get_async_pubsub()).await {
                let subscribed = pubsub.subscribe(&EVENTS[..3]).await.is_ok()
                    && pubsub.psubscribe(EVENTS[3]).await.is_ok();
                if subscribed {
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Some(s) = weak.upgrade() else { return };
                        let payload = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                        s.on_event(msg.get_channel_name(), &payload).await;
                    }
                }
            }
        }
        if weak.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
