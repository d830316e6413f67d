//! [`Cluster`]: a Redis Cluster behind the same facade as one Redis. restdis builds no
//! sharding of its own; it follows the cluster's slot map.
//!
//! - The slot map comes from `CLUSTER SHARDS` (`CLUSTER SLOTS` on servers before 7.0)
//!   ([`layout`]), asked at start, at once after a
//!   `MOVED`, every 100 ms while a primary is unreachable or a slot unserved, and every 5 s
//!   otherwise (new and removed nodes are picked up).
//! - Keys are found with the server's own key specifications ([`keys`], from `COMMAND`), hash
//!   tags included ([`slot`]).
//! - Each primary gets the same self-repairing pipelined connections one Redis gets
//!   (`Single`), so concurrent requests still coalesce per node.
//! - A batch is planned ([`plan`]): split by node, sent to the nodes concurrently, replies put
//!   back in order; each part's redirection is handled on its own. `MOVED`: resend to the
//!   new owner and refresh the map; `ASK`: `ASKING` and the command on the target, no map
//!   change (a `MULTI ... EXEC` group too: a redirected command aborts it, and `ASKING`
//!   before `MULTI` holds until `EXEC`); `TRYAGAIN` (keys of a migrating slot on two nodes):
//!   the same node again, with `ASKING` again if the refused try had it, back-off 5 ms
//!   doubling to 100 ms, until the command timeout (a wait for the migration to end, so not
//!   counted in the 16 redirections); `CLUSTERDOWN` or an unserved slot: 503. A command that
//!   may have run is never sent again: only redirection replies (the command did not run)
//!   and nodes not yet connected (nothing was sent) are retried, and never past the command
//!   timeout.
//! - With `read_from = "replicas"` ([`reads`]), the parts of a read-only batch go to a replica
//!   of their shard that has reached the request's sync-token position for that shard (else
//!   the primary), and writes record each primary's replication offset.

pub mod cursor;
pub mod keys;
pub mod layout;
pub mod plan;
pub mod reads;
pub mod slot;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use redis::{ConnectionAddr, ConnectionInfo, Value};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::replicas::{After, ReadFrom, REPLICA_WAIT};
use super::single::{NodeSettings, Single};
use super::wire::Wire;
use crate::error::Error;
use crate::protocol::encode::error_text;
use crate::protocol::Command;
use keys::KeyTable;
use layout::Layout;
use plan::Target;
use reads::Reads;

/// Redirections one command follows at most before it gets a 503.
const MAX_HOPS: usize = 16;
/// Map refresh interval while everything is served.
const REFRESH_CALM: Duration = Duration::from_secs(5);
/// Map refresh interval while a primary is unreachable or a slot unserved.
const REFRESH_DEGRADED: Duration = Duration::from_millis(100);
/// Refreshes at most this often, however many `MOVED` replies ask for one.
const REFRESH_GAP: Duration = Duration::from_millis(20);
/// Connect timeout of the short-lived connections that ask a seed for the map.
const SEED_CONNECT: Duration = Duration::from_millis(500);
/// How often a request waiting for a node (not yet connected, or the map not loaded) looks again.
const POLL: Duration = Duration::from_millis(5);

/// How restdis reaches a Redis Cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Credentials, TLS and timeouts for every node (its address is replaced per node).
    pub template: ConnectionInfo,
    /// The seed nodes, `host:port`.
    pub seeds: Vec<String>,
    /// Where read-only commands go.
    pub read_from: ReadFrom,
}

/// The slot map in use, with the primaries' connections.
#[derive(Default)]
struct View {
    /// The cluster as it last answered.
    layout: Layout,
    /// Per slot, its owner's index in `primaries` (`u16::MAX`: unserved).
    owners: Vec<u16>,
    primaries: Vec<Arc<Single>>,
    /// `host:port` of each primary.
    addrs: Vec<String>,
    /// The node key ([`super::replicas::node_key`]) of each primary, where its id is known.
    keys: Vec<Option<u64>>,
}

impl View {
    fn loaded(&self) -> bool {
        !self.primaries.is_empty()
    }

    fn resolve(&self, target: &Target, any: usize) -> Option<&Arc<Single>> {
        self.primaries.get(self.index(target, any)?)
    }

    /// The index of the primary `target` names (`None` for the seed or an unserved slot).
    fn index(&self, target: &Target, any: usize) -> Option<usize> {
        match target {
            Target::Slot(s) => Some(*self.owners.get(*s as usize)? as usize),
            Target::Any if !self.primaries.is_empty() => Some(any % self.primaries.len()),
            Target::Any | Target::Seed => None,
            Target::Node(i) => Some(*i),
        }
    }
}

/// Where a part goes on its next try.
#[derive(Clone)]
enum Dest {
    /// As planned, looked up in the current map.
    Plan(Target),
    /// The node a redirection named.
    Addr(String),
}

/// A redirection reply.
#[derive(Debug)]
enum Redirect {
    Moved(String),
    Ask(String),
    TryAgain,
    Down(String),
}

/// One node's share of a batch: its connections, the commands, which part of which entry
/// each run of commands belongs to, and how it is sent.
struct Group {
    node: Arc<Single>,
    cmds: Vec<Command>,
    parts: Vec<(usize, usize)>,
    via: Via,
}

/// The parts of a batch whose node failed (503) or timed out (504). When other parts were
/// answered, they may have run, so the batch is not answered with a 5xx that invites resending
/// it whole: each failed part's commands get the error as their replies (a `/pipeline` shows
/// them per entry). A batch of one entry, or one where nothing was answered, gets the error.
#[derive(Default)]
struct Failed {
    first: Option<Error>,
    parts: Vec<(usize, usize, String)>,
}

impl Failed {
    /// Whether `err` is kept per part rather than failing the batch.
    fn keeps(&self, err: &Error) -> bool {
        matches!(err, Error::Unavailable(_) | Error::Timeout(_))
    }

    fn add(&mut self, err: Error, parts: impl IntoIterator<Item = (usize, usize)>) {
        let text = err.to_string();
        self.parts
            .extend(parts.into_iter().map(|(e, p)| (e, p, text.clone())));
        self.first.get_or_insert(err);
    }

    /// Fills the failed parts' replies with their errors, or returns the first error when the
    /// batch is one entry or no part was answered.
    fn settle(self, entries: &[plan::Entry], results: &mut [Vec<Option<Vec<Value>>>]) -> Result<(), Error> {
        let Some(first) = self.first else { return Ok(()) };
        let answered = results.iter().flatten().any(Option::is_some);
        if entries.len() == 1 || !answered {
            return Err(first);
        }
        for (e, p, text) in self.parts {
            results[e][p] = Some(vec![plan::error_value(&text); entries[e].parts[p].cmds.len()]);
        }
        Ok(())
    }
}

/// How a [`Group`] is sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// To the primary (its position recorded when writes are tracked).
    Primary,
    /// Read-only, to a replica; with `Some(offset)`, `ROLE` first must show that offset
    /// reached, else the primary serves the parts.
    Replica(Option<u64>),
}

/// One Redis Cluster.
pub struct Cluster {
    label: String,
    spec: ClusterSpec,
    nodes_settings: NodeSettings,
    timeout: Duration,
    /// Every node connected to, by `host:port`.
    nodes: Mutex<HashMap<String, Arc<Single>>>,
    view: RwLock<Arc<View>>,
    keys: OnceLock<Arc<KeyTable>>,
    /// Asks the refresh task for a new map now.
    wake: Arc<Notify>,
    /// Round-robin over primaries for keyless commands.
    next: AtomicUsize,
    /// With `read_from = "replicas"`: the shards' replicas and positions.
    reads: Option<Arc<Reads>>,
}

impl Cluster {
    /// Starts following the cluster in the background (never fails; requests get 503 until
    /// the map is loaded and the nodes are connected).
    pub fn start(settings: NodeSettings, spec: ClusterSpec) -> Arc<Self> {
        let reads = (spec.read_from == ReadFrom::Replicas)
            .then(|| Arc::new(Reads::new(settings.clone(), spec.template.clone())));
        let cluster = Arc::new(Self {
            label: settings.label.clone(),
            spec,
            timeout: settings.timeout,
            nodes_settings: settings,
            nodes: Mutex::new(HashMap::new()),
            view: RwLock::new(Arc::new(View::default())),
            keys: OnceLock::new(),
            wake: Arc::new(Notify::new()),
            next: AtomicUsize::new(0),
            reads,
        });
        tokio::spawn(refresh_loop(Arc::downgrade(&cluster)));
        cluster
    }

    /// The layout as last loaded (empty before the first).
    pub fn layout(&self) -> Layout {
        self.view().layout.clone()
    }

    /// Whether the map is loaded and a primary has a connection up (`/readyz`: while one
    /// primary is down, the others' slots are still served, and every restdis instance
    /// leaving its load balancer at once would make that a full outage).
    pub fn is_connected(&self) -> bool {
        let view = self.view();
        view.loaded() && view.primaries.iter().any(|p| p.is_connected())
    }

    /// Connections up now, over all primaries.
    pub fn connected(&self) -> usize {
        self.view().primaries.iter().map(|p| p.connected()).sum()
    }

    /// Each primary's `host:port` and connection settings (empty before the map is loaded).
    pub fn primary_infos(&self) -> Vec<(String, ConnectionInfo)> {
        self.view()
            .addrs
            .iter()
            .filter_map(|a| Some((a.clone(), info_for(&self.spec.template, a)?)))
            .collect()
    }

    /// Runs one command.
    pub async fn execute(&self, cmd: &Command) -> Result<Value, Error> {
        let mut replies = self.pipeline(std::slice::from_ref(cmd)).await?;
        replies
            .pop()
            .ok_or_else(|| Error::Internal("Redis gave no reply".into()))
    }

    /// Runs a batch (`MULTI ... EXEC` groups stay whole): one reply per command, in order.
    pub async fn pipeline(&self, cmds: &[Command]) -> Result<Vec<Value>, Error> {
        Ok(self.pipeline_at(cmds, &After::Primary, false).await?.0)
    }

    /// Whether read-only commands may go to replicas (`read_from = "replicas"`).
    pub fn reads_replicas(&self) -> bool {
        self.reads.is_some()
    }

    /// With `read_from = "replicas"`: records a primary's `ROLE` and `CLUSTER MYID` replies
    /// given after a write sent outside these connections (dedicated blocking).
    pub fn wrote(&self, role: &Value, id: &Value) {
        if let Some(reads) = &self.reads {
            reads.wrote(role, id);
        }
    }

    /// With `read_from = "replicas"`, how many shards are fully in use: a replica serves reads
    /// now, and the shard's position is known (response tokens name it).
    pub fn readable_shards(&self) -> usize {
        let Some(reads) = &self.reads else { return 0 };
        self.view()
            .keys
            .iter()
            .flatten()
            .filter(|k| {
                !reads.unknown(**k) && reads.shard(**k).is_some_and(|s| s.pick(&After::Any).is_some())
            })
            .count()
    }

    /// With `read_from = "replicas"`, the shard positions a response's `upstash-sync-token`
    /// names ([`super::replicas::shard_token`]): see [`reads`].
    pub fn positions(&self, after: &After) -> Option<Vec<(u64, u64)>> {
        Some(self.reads.as_ref()?.positions(&self.view().keys, after))
    }

    /// [`pipeline`](Self::pipeline) for a client's batch whose `upstash-sync-token` asks
    /// `after`; `read_only`: every command is (by the server's flags). With `read_from =
    /// "replicas"`, a read-only batch's parts go to replicas that may serve them, and other
    /// batches record their primaries' positions. The flag says whether replicas served
    /// every part.
    pub async fn pipeline_at(
        &self,
        cmds: &[Command],
        after: &After,
        read_only: bool,
    ) -> Result<(Vec<Value>, bool), Error> {
        let deadline = Instant::now() + self.timeout;
        let table = self.keys(deadline).await?;
        let view = self.loaded_view(deadline).await?;
        let entries = plan::plan(&table, cmds, view.primaries.len());
        let any = self.next.fetch_add(1, Ordering::Relaxed);
        let replicas = self
            .reads
            .as_deref()
            .filter(|_| read_only && *after != After::Primary);
        let track = self.reads.is_some() && !read_only;

        // First try: one batch per node, all nodes at once.
        let mut results: Vec<Vec<Option<Vec<Value>>>> =
            entries.iter().map(|e| vec![None; e.parts.len()]).collect();
        let mut groups: Vec<Group> = Vec::new();
        let mut later: Vec<(usize, usize, Option<Redirect>)> = Vec::new();
        for (e, entry) in entries.iter().enumerate() {
            for (p, part) in entry.parts.iter().enumerate() {
                let chosen = match replicas.and_then(|r| replica_for(r, &view, &part.target, any, after)) {
                    Some(chosen) => Some(chosen),
                    None => match self.resolve(&view, &part.target, any) {
                        Some(node) if node.is_connected() => Some((node, Via::Primary)),
                        _ => None,
                    },
                };
                let Some((node, via)) = chosen else {
                    later.push((e, p, None));
                    continue;
                };
                match groups
                    .iter_mut()
                    .find(|g| Arc::ptr_eq(&g.node, &node) && g.via == via)
                {
                    Some(g) => {
                        g.cmds.extend(part.cmds.iter().cloned());
                        g.parts.push((e, p));
                    }
                    None => groups.push(Group {
                        node,
                        cmds: part.cmds.clone(),
                        parts: vec![(e, p)],
                        via,
                    }),
                }
            }
        }
        let wait = self.timeout.min(REPLICA_WAIT);
        let sent = futures_util::future::join_all(groups.iter().map(|g| async move {
            match g.via {
                Via::Primary => self.send_primary(&g.node, &g.cmds, track).await.map(Some),
                Via::Replica(check) => Ok(super::replicas::read_on(&g.node, &g.cmds, check, wait).await),
            }
        }))
        .await;
        let mut by_replica = replicas.is_some();
        let mut failed = Failed::default();
        for (group, replies) in groups.iter().zip(sent) {
            let replies = match replies {
                Err(err) if failed.keeps(&err) => {
                    failed.add(err, group.parts.iter().copied());
                    continue;
                }
                other => other?,
            };
            let Some(replies) = replies else {
                // A replica that did not serve: the primaries serve its parts.
                by_replica = false;
                later.extend(group.parts.iter().map(|&(e, p)| (e, p, None)));
                continue;
            };
            by_replica &= group.via != Via::Primary;
            let mut replies = replies.into_iter();
            for &(e, p) in &group.parts {
                let got: Vec<Value> = replies.by_ref().take(entries[e].parts[p].cmds.len()).collect();
                match redirect(&got) {
                    Some(r) => later.push((e, p, Some(r))),
                    None => results[e][p] = Some(got),
                }
            }
        }
        // Then every part that was redirected, or whose node was not connected, on its own.
        later.sort_by_key(|(e, p, _)| (*e, *p));
        by_replica &= later.is_empty();
        for (e, p, first) in later {
            let part = &entries[e].parts[p];
            let dest = Dest::Plan(part.target.clone());
            match self.run(&part.cmds, dest, first, deadline, track).await {
                Err(err) if failed.keeps(&err) => failed.add(err, [(e, p)]),
                done => results[e][p] = Some(done?),
            }
        }
        failed.settle(&entries, &mut results)?;
        let mut out = Vec::with_capacity(cmds.len());
        for (entry, parts) in entries.iter().zip(results) {
            out.extend(plan::merge(
                &entry.merge,
                parts.into_iter().map(Option::unwrap_or_default).collect(),
            ));
        }
        Ok((out, by_replica))
    }

    /// Sends `cmds` to the primary `node`; with `track` (writes while replicas are read),
    /// `ROLE` and `CLUSTER MYID` follow them in the same write and the node's position is
    /// recorded.
    async fn send_primary(&self, node: &Single, cmds: &[Command], track: bool) -> Result<Vec<Value>, Error> {
        let Some(reads) = self.reads.as_ref().filter(|_| track) else {
            return node.send(cmds).await;
        };
        let mut batch = Vec::with_capacity(cmds.len() + 2);
        batch.extend_from_slice(cmds);
        batch.extend(reads::position_commands());
        let mut replies = node.send(&batch).await?;
        if replies.len() == batch.len() {
            let id = replies.pop().unwrap_or(Value::Nil);
            let role = replies.pop().unwrap_or(Value::Nil);
            reads.wrote(&role, &id);
        }
        Ok(replies)
    }

    /// The address and connection settings of the primary that owns `cmd`'s keys (`None`
    /// for a keyless command); `CROSSSLOT` (400) when its keys are in several slots.
    pub async fn owner_of(&self, cmd: &Command) -> Result<Option<(String, ConnectionInfo)>, Error> {
        let deadline = Instant::now() + self.timeout;
        let table = self.keys(deadline).await?;
        let slot = match plan::plan(&table, std::slice::from_ref(cmd), 1).pop() {
            Some(plan::Entry { parts, .. }) => match parts.first().map(|p| &p.target) {
                Some(Target::Slot(s)) if parts.len() == 1 => *s,
                Some(_) if parts.len() == 1 => return Ok(None),
                _ => return Err(Error::BadRequest(plan::CROSSSLOT.into())),
            },
            None => return Ok(None),
        };
        let view = self.loaded_view(deadline).await?;
        let owner = view.owners.get(slot as usize).copied().unwrap_or(u16::MAX);
        let Some(addr) = view.addrs.get(owner as usize) else {
            return Err(Error::Unavailable(
                "CLUSTERDOWN no node serves this hash slot".into(),
            ));
        };
        let info = info_for(&self.spec.template, addr)
            .ok_or_else(|| Error::Internal(format!("bad node address {addr}")))?;
        Ok(Some((addr.clone(), info)))
    }

    /// Sends one part until it is answered without a redirection; `first` is a redirection
    /// it already got.
    async fn run(
        &self,
        cmds: &[Command],
        mut dest: Dest,
        mut pending: Option<Redirect>,
        deadline: Instant,
        track: bool,
    ) -> Result<Vec<Value>, Error> {
        // Whether the next try starts with ASKING, and whether the last one did.
        let (mut asking, mut asked) = (false, false);
        let mut backoff = Duration::from_millis(5);
        let mut hops = 0;
        loop {
            if let Some(r) = pending.take() {
                // TRYAGAIN is a wait for a migration to end, bounded by the deadline alone.
                if !matches!(r, Redirect::TryAgain) {
                    hops += 1;
                }
                if hops > MAX_HOPS || Instant::now() >= deadline {
                    return Err(Error::Unavailable(match r {
                        Redirect::TryAgain => "TRYAGAIN the keys' slot is being migrated and they are \
                                               split between two nodes until it ends; retry"
                            .into(),
                        r => format!("the cluster kept redirecting the command ({r:?}); retry"),
                    }));
                }
                match r {
                    Redirect::Moved(addr) => {
                        self.wake.notify_one();
                        dest = Dest::Addr(addr);
                    }
                    // One command, or a whole MULTI ... EXEC group (ASKING holds until EXEC).
                    Redirect::Ask(addr) if cmds.len() == 1 || is_transaction(cmds) => {
                        dest = Dest::Addr(addr);
                        asking = true;
                    }
                    Redirect::Ask(_) | Redirect::TryAgain => {
                        tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                            .await;
                        backoff = (backoff * 2).min(Duration::from_millis(100));
                        // The same node, the same way: an ASK target that said TRYAGAIN
                        // without ASKING would only answer MOVED back to the source.
                        asking = asked && matches!(r, Redirect::TryAgain);
                    }
                    Redirect::Down(text) => return Err(Error::Unavailable(text)),
                }
            }
            let node = self.ready(&dest, deadline).await?;
            asked = asking;
            let replies = if asking {
                asking = false;
                let mut batch = Vec::with_capacity(cmds.len() + 1);
                batch.push(Command::internal(&["ASKING"]));
                batch.extend(cmds.iter().cloned());
                let mut replies = self.send_primary(&node, &batch, track).await?;
                if !replies.is_empty() {
                    replies.remove(0); // ASKING's OK
                }
                replies
            } else {
                self.send_primary(&node, cmds, track).await?
            };
            match redirect(&replies) {
                None => return Ok(replies),
                some => pending = some,
            }
        }
    }

    /// The node for `dest` once it has a connection up; looks again (the map may change
    /// meanwhile) until `deadline`, then 503. Nothing has been sent yet, so waiting is safe.
    async fn ready(&self, dest: &Dest, deadline: Instant) -> Result<Arc<Single>, Error> {
        loop {
            let node = match dest {
                Dest::Plan(target) => {
                    let any = self.next.fetch_add(1, Ordering::Relaxed);
                    self.resolve(&self.view(), target, any)
                }
                Dest::Addr(addr) => self.node(addr),
            };
            if let Some(node) = &node {
                if node.is_connected() {
                    return Ok(node.clone());
                }
            }
            self.wake.notify_one();
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(match node {
                    None => "CLUSTERDOWN no node serves this hash slot".into(),
                    Some(_) => "the cluster node is not connected (reconnecting)".into(),
                }));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The node `target` names in `view` (the first seed for [`Target::Seed`]).
    fn resolve(&self, view: &View, target: &Target, any: usize) -> Option<Arc<Single>> {
        match target {
            Target::Seed => self.node(self.spec.seeds.first()?),
            other => view.resolve(other, any).cloned(),
        }
    }

    /// The map, once one is loaded (503 at `deadline`).
    async fn loaded_view(&self, deadline: Instant) -> Result<Arc<View>, Error> {
        loop {
            let view = self.view();
            if view.loaded() {
                return Ok(view);
            }
            self.wake.notify_one();
            if Instant::now() >= deadline {
                return Err(Error::Unavailable(
                    "the cluster's slot map is not loaded yet".into(),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The key specifications, loaded from `COMMAND` on first use.
    async fn keys(&self, deadline: Instant) -> Result<Arc<KeyTable>, Error> {
        if let Some(t) = self.keys.get() {
            return Ok(t.clone());
        }
        self.loaded_view(deadline).await?;
        let mut reply = self
            .run(
                &[Command::internal(&["COMMAND"])],
                Dest::Plan(Target::Any),
                None,
                deadline,
                false,
            )
            .await?;
        let table = Arc::new(KeyTable::from_command_reply(&reply.pop().unwrap_or(Value::Nil)));
        if table.len() < 10 {
            return Err(Error::Unavailable(
                "could not load the command table from the cluster".into(),
            ));
        }
        tracing::debug!(backend = %self.label, commands = table.len(), "cluster key specs loaded");
        Ok(self.keys.get_or_init(|| table).clone())
    }

    fn view(&self) -> Arc<View> {
        self.view.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// The connections to `addr` (opened on first use); `None` for an address that is not
    /// `host:port`.
    fn node(&self, addr: &str) -> Option<Arc<Single>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(node) = nodes.get(addr) {
            return Some(node.clone());
        }
        let info = info_for(&self.spec.template, addr)?;
        let node = self.nodes_settings.open(addr, &info);
        nodes.insert(addr.to_string(), node.clone());
        Some(node)
    }

    /// Asks a node for the map (a connected primary first, then the seeds) and installs it.
    pub async fn refresh(&self) -> Result<(), String> {
        let ask = map_commands();
        let view = self.view();
        let mut candidates = view.addrs.clone();
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        if !candidates.is_empty() {
            let n = candidates.len();
            candidates.rotate_left(turn % n);
        }
        for seed in &self.spec.seeds {
            if !candidates.contains(seed) {
                candidates.push(seed.clone());
            }
        }
        let mut last = "no node answered".to_string();
        for addr in candidates {
            let known = self.nodes.lock().ok().and_then(|n| n.get(&addr).cloned());
            let reply = match known {
                Some(node) if node.is_connected() => node.send(&ask).await.map_err(|e| e.to_string()),
                Some(_) => continue,
                None => {
                    let Some(info) = info_for(&self.spec.template, &addr) else {
                        continue;
                    };
                    ask_once(&info, self.timeout).await
                }
            };
            match layout_from(&addr, reply) {
                Ok(layout) => {
                    self.install(layout);
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn install(&self, layout: Layout) {
        let view = self.view();
        if view.layout == layout {
            return;
        }
        let addrs = layout.primaries();
        let primaries: Vec<Arc<Single>> = addrs.iter().filter_map(|a| self.node(a)).collect();
        if primaries.len() != addrs.len() {
            return;
        }
        let owners = layout.owners();
        let keys = layout
            .primary_ids()
            .iter()
            .map(|id| super::replicas::node_key(id))
            .collect();
        if let Some(reads) = &self.reads {
            reads.follow(&layout);
        }
        tracing::info!(
            backend = %self.label,
            primaries = %addrs.join(","),
            covered = layout.covered(),
            "cluster slot map loaded"
        );
        if let Ok(mut nodes) = self.nodes.lock() {
            let seed = self.spec.seeds.first();
            nodes.retain(|a, _| addrs.contains(a) || Some(a) == seed);
        }
        if let Ok(mut v) = self.view.write() {
            *v = Arc::new(View {
                layout,
                owners,
                primaries,
                addrs,
                keys,
            });
        }
    }

    /// With `read_from = "replicas"`: asks each connected primary whose shard has no position
    /// yet for its offset, so that response tokens name every shard.
    fn ask_positions(&self) {
        let Some(reads) = &self.reads else { return };
        let view = self.view();
        for (node, key) in view.primaries.iter().zip(&view.keys) {
            // One ask per primary at a time (refreshes come every 100 ms while one is down).
            let Some(key) = key.filter(|k| reads.unknown(*k) && reads.start_asking(*k)) else {
                continue;
            };
            let (node, reads) = (node.clone(), reads.clone());
            tokio::spawn(async move {
                // A primary new to the map is still connecting: wait for it (bounded; the
                // next refresh asks again).
                let until = Instant::now() + REFRESH_CALM;
                while !node.is_connected() && Instant::now() < until {
                    tokio::time::sleep(POLL).await;
                }
                if let Ok(r) = node.send(&reads::position_commands()).await {
                    if let [role, id] = r.as_slice() {
                        reads.wrote(role, id);
                    }
                }
                reads.done_asking(key);
            });
        }
    }

    /// Whether the map needs looking at soon: not loaded, a slot unserved, a primary down.
    fn degraded(&self) -> bool {
        let view = self.view();
        !view.loaded() || view.owners.contains(&u16::MAX) || view.primaries.iter().any(|p| !p.is_connected())
    }
}

/// `template`'s connection settings with `addr` as the address.
pub(crate) fn info_for(template: &ConnectionInfo, addr: &str) -> Option<ConnectionInfo> {
    let (host, port) = layout::split_addr(addr)?;
    let addr = match template.addr() {
        ConnectionAddr::TcpTls {
            insecure, tls_params, ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: *insecure,
            tls_params: tls_params.clone(),
        },
        _ => ConnectionAddr::Tcp(host, port),
    };
    Some(template.clone().set_addr(addr))
}

/// The commands that ask a node for the map: `CLUSTER SHARDS` (Redis 7), and `CLUSTER SLOTS`
/// in the same write for older servers, which refuse the first.
fn map_commands() -> [Command; 2] {
    [
        Command::internal(&["CLUSTER", "SHARDS"]),
        Command::internal(&["CLUSTER", "SLOTS"]),
    ]
}

/// The map commands on a short-lived connection.
async fn ask_once(info: &ConnectionInfo, timeout: Duration) -> Result<Vec<Value>, String> {
    let owner = Wire::connect(info, SEED_CONNECT, timeout).await?;
    owner
        .wire()
        .send(&map_commands())
        .await
        .map_err(|e| format!("{e:?}"))
}

/// The layout in `addr`'s answers to `CLUSTER SHARDS` and `CLUSTER SLOTS` (the first that
/// parses), or why there is none.
fn layout_from(addr: &str, reply: Result<Vec<Value>, String>) -> Result<Layout, String> {
    let host = layout::split_addr(addr).map(|(h, _)| h).unwrap_or_default();
    let replies = reply.map_err(|e| format!("{addr}: {e}"))?;
    let mut why = format!("{addr}: no reply");
    for (value, slots) in replies.iter().zip([false, true]) {
        let parsed = match value {
            Value::ServerError(e) => Err(error_text(e)),
            v if slots => Layout::from_cluster_slots(v, &host),
            v => Layout::from_cluster_shards(v, &host),
        };
        match parsed {
            Ok(layout) if !layout.ranges.is_empty() => return Ok(layout),
            Ok(_) => why = format!("{addr}: no slot is assigned"),
            Err(e) => why = format!("{addr}: {e}"),
        }
    }
    Err(why)
}

/// The layout as the first seed that answers reports it (for `--check-config`).
pub async fn probe(spec: &ClusterSpec, timeout: Duration) -> Result<Layout, String> {
    let mut last = "no seed node answered".to_string();
    for seed in &spec.seeds {
        let Some(info) = info_for(&spec.template, seed) else {
            continue;
        };
        match layout_from(seed, ask_once(&info, timeout).await) {
            Ok(layout) => return Ok(layout),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A replica of the shard `target` names that may serve a read asking `after` (see
/// [`Via::Replica`]), if one is up.
fn replica_for(
    reads: &Reads,
    view: &View,
    target: &Target,
    any: usize,
    after: &After,
) -> Option<(Arc<Single>, Via)> {
    let key = (*view.keys.get(view.index(target, any)?)?)?;
    let shard = reads.shard(key)?;
    let need = after.for_shard(Some(key));
    if let Some(node) = shard.pick(&need) {
        return Some((node, Via::Replica(None)));
    }
    match need {
        After::At(offset) => Some((shard.pick(&After::Any)?, Via::Replica(Some(offset)))),
        _ => None,
    }
}

/// Whether `cmds` is one whole `MULTI ... EXEC` group (a redirection inside it aborts it:
/// nothing ran, and `ASKING` before `MULTI` holds for every command up to `EXEC`).
fn is_transaction(cmds: &[Command]) -> bool {
    let is = |c: Option<&Command>, name: &[u8]| c.is_some_and(|c| c.name().eq_ignore_ascii_case(name));
    cmds.len() > 1 && is(cmds.first(), b"MULTI") && is(cmds.last(), b"EXEC")
}

/// The first redirection among `replies` (a `MULTI ... EXEC` group shows it in the reply of
/// the command Redis refused to queue).
fn redirect(replies: &[Value]) -> Option<Redirect> {
    for reply in replies {
        let Value::ServerError(err) = reply else { continue };
        let text = error_text(err);
        let mut words = text.split(' ');
        return match words.next() {
            Some("MOVED") => words.nth(1).map(|a| Redirect::Moved(a.to_string())),
            Some("ASK") => words.nth(1).map(|a| Redirect::Ask(a.to_string())),
            Some("TRYAGAIN") => Some(Redirect::TryAgain),
            Some("CLUSTERDOWN") => Some(Redirect::Down(text)),
            _ => continue,
        };
    }
    None
}

async fn refresh_loop(weak: Weak<Cluster>) {
    let mut first = true;
    loop {
        let Some(cluster) = weak.upgrade() else { return };
        if !first {
            let pause = if cluster.degraded() {
                REFRESH_DEGRADED
            } else {
                REFRESH_CALM
            };
            let wake = cluster.wake.clone();
            drop(cluster);
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
            tokio::time::sleep(REFRESH_GAP).await;
        } else {
            drop(cluster);
        }
        first = false;
        let Some(cluster) = weak.upgrade() else { return };
        if let Err(e) = cluster.refresh().await {
            tracing::warn!(backend = %cluster.label, error = %e, "cannot load the cluster slot map");
        }
        cluster.ask_positions();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirections_are_recognised() {
        let moved = plan::error_value("MOVED 3999 127.0.0.1:6381");
        assert!(matches!(redirect(&[moved]), Some(Redirect::Moved(a)) if a == "127.0.0.1:6381"));
        let ask = plan::error_value("ASK 3999 127.0.0.1:6382");
        assert!(matches!(redirect(&[Value::Okay, ask]), Some(Redirect::Ask(a)) if a == "127.0.0.1:6382"));
        assert!(matches!(
            redirect(&[plan::error_value(
                "TRYAGAIN Multiple keys request during rehashing of slot"
            )]),
            Some(Redirect::TryAgain)
        ));
        assert!(matches!(
            redirect(&[plan::error_value("CLUSTERDOWN The cluster is down")]),
            Some(Redirect::Down(_))
        ));
        assert!(redirect(&[plan::error_value("ERR wrong number of arguments"), Value::Int(1)]).is_none());
    }

    #[test]
    fn only_whole_multi_exec_groups_are_transactions() {
        let c = |s: &str| Command::internal(&s.split(' ').collect::<Vec<_>>());
        assert!(is_transaction(&[c("multi"), c("INCR k"), c("EXEC")]));
        assert!(is_transaction(&[c("MULTI"), c("exec")]));
        assert!(!is_transaction(&[c("MULTI"), c("INCR k")]));
        assert!(!is_transaction(&[c("INCR k"), c("EXEC")]));
        assert!(!is_transaction(&[c("EXEC")]));
    }
}
