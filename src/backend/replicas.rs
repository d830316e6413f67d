//! Read replicas ([`Replicas`]: of a Sentinel group, or of one Cluster shard) and the
//! read-your-writes positions that `upstash-sync-token` carries with `read_from = "replicas"`
//! ([`After`], [`token`], [`shard_token`]).
//!
//! A position is an offset in a primary's replication stream. After every batch that is not
//! read-only, restdis sends `ROLE` on the same connection, right behind it: the offset it
//! answers is at or past the end of that batch's writes, and the largest such offset seen
//! ([`Replicas::written`]) goes into the token of every later response. Each replica's own
//! offset comes from `ROLE` on it every [`POLL`]; a read carrying a position goes to a replica
//! whose offset is known to be at or past it, else to the primary. Offsets are the primary's,
//! so they mean the same to every restdis instance in front of it.
//!
//! Token formats: `rp1.<hex offset>.<unique>` (a Sentinel group: one stream) and
//! `rc1.<node>:<hex offset>[,<node>:<hex offset>...].<unique>` (a Cluster: one stream per
//! shard, each named by the first 12 hex digits of its primary's node id, [`node_key`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use redis::Value;

use super::single::Single;
use crate::protocol::Command;

/// How often each replica's offset is asked.
pub const POLL: Duration = Duration::from_millis(10);
/// A replica whose offset was not confirmed for this long serves no reads.
const STALE: Duration = Duration::from_millis(1000);
/// The longest a read waits for a replica before the primary serves it.
pub const REPLICA_WAIT: Duration = Duration::from_secs(1);
/// The most shard positions a cluster token may carry.
const MAX_SHARDS: usize = 1024;

/// Where read-only commands go (`--read-from`, `read_from`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadFrom {
    /// Everything to the primary (the default).
    #[default]
    Primary,
    /// Read-only commands to a replica that is up and caught up enough.
    Replicas,
}

impl ReadFrom {
    /// Parses `primary` or `replicas`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "primary" => Ok(Self::Primary),
            "replicas" => Ok(Self::Replicas),
            other => Err(format!(
                "read_from must be \"primary\" or \"replicas\", not {other:?}"
            )),
        }
    }
}

/// What a request's `upstash-sync-token` asks of the node that serves its reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum After {
    /// No position token (none, or another format): any replica that is up.
    #[default]
    Any,
    /// A replica known to be at or past this replication offset, else the primary.
    At(u64),
    /// A Cluster token: per shard (by [`node_key`] of its primary), the offset a replica of
    /// it must have reached; a shard it does not name is read from its primary.
    Shards(Arc<[(u64, u64)]>),
    /// The primary (a token in our format that does not parse).
    Primary,
}

impl After {
    /// What this asks of the shard whose primary is `node` ([`node_key`]): a cluster token's
    /// offset for it, or the primary when the token does not name it (its writes may have
    /// reached another node that is no longer its primary). A Sentinel position means
    /// nothing to a cluster: the primary.
    pub fn for_shard(&self, node: Option<u64>) -> After {
        match self {
            After::Any => After::Any,
            After::Shards(all) => node
                .and_then(|n| all.iter().find(|(k, _)| *k == n))
                .map_or(After::Primary, |(_, offset)| After::At(*offset)),
            After::At(_) | After::Primary => After::Primary,
        }
    }

    /// The offset this names for `node`, if it does.
    pub fn offset_of(&self, node: u64) -> Option<u64> {
        match self {
            After::Shards(all) => all.iter().find(|(k, _)| *k == node).map(|(_, o)| *o),
            _ => None,
        }
    }
}

/// The token prefix of a replication position.
const PREFIX: &str = "rp1.";
/// The token prefix of a Cluster's positions.
const CLUSTER_PREFIX: &str = "rc1.";

/// The `upstash-sync-token` of a response once writes up to `offset` are acknowledged;
/// `unique` (the per-response token) follows it, so that no two responses share a token (the
/// clients' tests expect that).
pub fn token(offset: u64, unique: &[u8]) -> Vec<u8> {
    let mut token = Vec::with_capacity(PREFIX.len() + 17 + unique.len());
    token.extend_from_slice(PREFIX.as_bytes());
    push_hex(&mut token, offset, 1);
    token.push(b'.');
    token.extend_from_slice(unique);
    token
}

/// Appends `value` in lower-case hex, zero-padded to `width` digits (on every response, so
/// not through `format!`).
fn push_hex(out: &mut Vec<u8>, value: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut n = 0;
    let mut rest = value;
    while n < 16 && (rest != 0 || n < width.max(1)) {
        buf[15 - n] = DIGITS[(rest & 15) as usize];
        rest >>= 4;
        n += 1;
    }
    out.extend_from_slice(&buf[16 - n..]);
}

/// The `upstash-sync-token` of a Cluster response: each shard's position (`(node key,
/// offset)`), then `unique`.
pub fn shard_token(positions: &[(u64, u64)], unique: &[u8]) -> Vec<u8> {
    let mut token = Vec::with_capacity(CLUSTER_PREFIX.len() + positions.len() * 30 + unique.len() + 1);
    token.extend_from_slice(CLUSTER_PREFIX.as_bytes());
    for (i, (node, offset)) in positions.iter().enumerate() {
        if i > 0 {
            token.push(b',');
        }
        push_hex(&mut token, *node, 12);
        token.push(b':');
        push_hex(&mut token, *offset, 1);
    }
    token.push(b'.');
    token.extend_from_slice(unique);
    token
}

/// The key a cluster token names a shard by: the first 12 hex digits of its primary's node
/// id (48 bits; `None` for an id that is not hex).
pub fn node_key(id: &str) -> Option<u64> {
    let head = id.get(..12)?;
    u64::from_str_radix(head, 16).ok()
}

fn hex(text: &[u8], digits: usize) -> Option<u64> {
    std::str::from_utf8(text)
        .ok()
        .filter(|h| !h.is_empty() && h.len() <= digits)
        .and_then(|h| u64::from_str_radix(h, 16).ok())
}

/// What a request's `upstash-sync-token` header asks (see [`After`]).
pub fn after(header: Option<&[u8]>) -> After {
    let Some(value) = header else {
        return After::Any;
    };
    // What follows the positions (`.` and a per-response id) only makes tokens unique.
    if let Some(rest) = value.strip_prefix(PREFIX.as_bytes()) {
        let head = rest.split(|b| *b == b'.').next().unwrap_or_default();
        return hex(head, 16).map_or(After::Primary, After::At);
    }
    let Some(rest) = value.strip_prefix(CLUSTER_PREFIX.as_bytes()) else {
        return After::Any;
    };
    let head = rest.split(|b| *b == b'.').next().unwrap_or_default();
    let mut positions = Vec::new();
    for entry in head.split(|b| *b == b',').filter(|e| !e.is_empty()) {
        let mut halves = entry.splitn(2, |b| *b == b':');
        let (Some(node), Some(offset)) = (
            halves.next().and_then(|n| hex(n, 12)),
            halves.next().and_then(|o| hex(o, 16)),
        ) else {
            return After::Primary;
        };
        if positions.len() == MAX_SHARDS {
            return After::Primary;
        }
        positions.push((node, offset));
    }
    After::Shards(positions.into())
}

/// A replica's refusal to serve (the command did not run): loading, stale data, busy.
pub fn replica_refused(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if matches!(e.code(), "LOADING" | "MASTERDOWN" | "BUSY" | "READONLY"))
}

/// The replies of read-only `cmds` on the replica `node`, if it served them: not when it
/// failed (down, no answer within `wait`), refused ([`replica_refused`]), or, with `check`,
/// had not reached that offset before the read (`ROLE` goes first in the same write). Nothing
/// was changed, so the primary may serve them then.
pub async fn read_on(
    node: &Single,
    cmds: &[Command],
    check: Option<u64>,
    wait: Duration,
) -> Option<Vec<Value>> {
    let sent = match check {
        Some(_) => {
            let mut batch = Vec::with_capacity(cmds.len() + 1);
            batch.push(Command::internal(&["ROLE"]));
            batch.extend_from_slice(cmds);
            tokio::time::timeout(wait, node.send(&batch)).await
        }
        None => tokio::time::timeout(wait, node.send(cmds)).await,
    };
    let mut replies = sent.ok()?.ok()?;
    if let Some(need) = check {
        let role = (!replies.is_empty()).then(|| replies.remove(0))?;
        if replica_offset(&role).is_none_or(|at| at < need) {
            return None;
        }
    }
    (replies.len() == cmds.len() && !replies.iter().any(replica_refused)).then_some(replies)
}

/// One replica's connections and what its last `ROLE` said.
pub struct Replica {
    /// `host:port`.
    pub addr: String,
    node: Arc<Single>,
    /// Its replication offset as last seen.
    offset: AtomicU64,
    /// When `ROLE` last said it is a connected replica (ms since [`Replicas::epoch`]; 0: never).
    confirmed_ms: AtomicU64,
}

/// The replicas in use and the positions restdis knows.
pub struct Replicas {
    list: RwLock<Arc<Vec<Arc<Replica>>>>,
    next: std::sync::atomic::AtomicUsize,
    /// The largest primary offset `ROLE` answered after a write.
    written: AtomicU64,
    /// Whether `written` was ever set (an offset of 0 is a position too).
    known: std::sync::atomic::AtomicBool,
    epoch: Instant,
}

impl Default for Replicas {
    fn default() -> Self {
        Self {
            list: RwLock::new(Arc::new(Vec::new())),
            next: Default::default(),
            written: AtomicU64::new(0),
            known: Default::default(),
            epoch: Instant::now(),
        }
    }
}

impl Replicas {
    /// The position every later response carries: all writes acknowledged so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Records the primary's offset `ROLE` answered behind a write (its reply).
    pub fn wrote(&self, role: &Value) {
        if let Some(offset) = master_offset(role) {
            self.wrote_at(offset);
        }
    }

    /// Records a primary offset reached by acknowledged writes.
    pub fn wrote_at(&self, offset: u64) {
        self.written.fetch_max(offset, Ordering::AcqRel);
        self.known.store(true, Ordering::Release);
    }

    /// Whether a position was ever recorded.
    pub fn known(&self) -> bool {
        self.known.load(Ordering::Acquire)
    }

    /// The replica addresses in use.
    pub fn addrs(&self) -> Vec<String> {
        self.current().iter().map(|r| r.addr.clone()).collect()
    }

    fn current(&self) -> Arc<Vec<Arc<Replica>>> {
        self.list.read().map(|l| l.clone()).unwrap_or_default()
    }

    /// A replica that may serve a read asking `after` (round-robin among them), if any.
    pub fn pick(&self, after: &After) -> Option<Arc<Single>> {
        let need = match after {
            After::Any => 0,
            After::At(offset) => *offset,
            After::Shards(_) | After::Primary => return None,
        };
        let list = self.current();
        let now = self.epoch.elapsed().as_millis() as u64;
        let n = list.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|i| &list[(start + i) % n]).find_map(|r| {
            let confirmed = r.confirmed_ms.load(Ordering::Acquire);
            let fresh = confirmed != 0 && now.saturating_sub(confirmed) < STALE.as_millis() as u64;
            (fresh && r.offset.load(Ordering::Acquire) >= need && r.node.is_connected())
                .then(|| r.node.clone())
        })
    }

    /// Uses the replicas at `addrs` (the primary's `primary` left out): keeps the connections
    /// of those already in use, opens the others, drops the rest; starts polling new ones.
    pub fn set(
        self: &Arc<Self>,
        addrs: &[String],
        primary: Option<&str>,
        open: impl Fn(&str) -> Option<Arc<Single>>,
    ) {
        let old = self.current();
        let mut list = Vec::new();
        for addr in addrs {
            if Some(addr.as_str()) == primary || list.iter().any(|r: &Arc<Replica>| &r.addr == addr) {
                continue;
            }
            if let Some(kept) = old.iter().find(|r| &r.addr == addr) {
                list.push(kept.clone());
                continue;
            }
            let Some(node) = open(addr) else { continue };
            let replica = Arc::new(Replica {
                addr: addr.clone(),
                node,
                offset: AtomicU64::new(0),
                confirmed_ms: AtomicU64::new(0),
            });
            tokio::spawn(poll_loop(Arc::downgrade(self), Arc::downgrade(&replica)));
            tracing::info!(replica = %addr, "read replica");
            list.push(replica);
        }
        let changed = list.len() != old.len() || list.iter().zip(old.iter()).any(|(a, b)| !Arc::ptr_eq(a, b));
        if changed {
            if let Ok(mut l) = self.list.write() {
                *l = Arc::new(list);
            }
        }
    }

    fn still_listed(&self, replica: &Arc<Replica>) -> bool {
        self.current().iter().any(|r| Arc::ptr_eq(r, replica))
    }
}

/// Asks `ROLE` of one replica every [`POLL`] while it is listed.
async fn poll_loop(owner: Weak<Replicas>, replica: Weak<Replica>) {
    let role = [Command::internal(&["ROLE"])];
    loop {
        tokio::time::sleep(POLL).await;
        let (Some(all), Some(r)) = (owner.upgrade(), replica.upgrade()) else {
            return;
        };
        if !all.still_listed(&r) {
            return;
        }
        let answer = match r.node.pick() {
            Ok(_) => tokio::time::timeout(STALE, r.node.send(&role))
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        match answer.as_ref().and_then(|v| v.first()).and_then(replica_offset) {
            Some(offset) => {
                r.offset.store(offset, Ordering::Release);
                let now = (all.epoch.elapsed().as_millis() as u64).max(1);
                r.confirmed_ms.store(now, Ordering::Release);
            }
            None => r.confirmed_ms.store(0, Ordering::Release),
        }
    }
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

/// The offset in a primary's `ROLE` reply (`master`, offset, replicas).
pub fn master_offset(role: &Value) -> Option<u64> {
    match role {
        Value::Array(parts) if parts.first().and_then(text) == Some("master") => match parts.get(1)? {
            Value::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The processed offset in a replica's `ROLE` reply (`slave`, host, port, state, offset),
/// when it is connected to its primary.
pub fn replica_offset(role: &Value) -> Option<u64> {
    match role {
        Value::Array(parts)
            if parts.first().and_then(text) == Some("slave")
                && parts.get(3).and_then(text) == Some("connected") =>
        {
            match parts.get(4)? {
                Value::Int(n) => u64::try_from(*n).ok(),
                _ => None,
            }
        }
        _ => None,
    }
}

/// The replicas in a `SENTINEL REPLICAS <master>` reply that are usable: not down, not
/// disconnected, their link to the primary up. `host:port` each.
pub fn usable_replicas(reply: &Value) -> Vec<String> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(fields) = entry else {
                return None;
            };
            let get = |key: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv.first().and_then(text) == Some(key))
                    .and_then(|kv| kv.get(1))
                    .and_then(text)
            };
            let flags = get("flags").unwrap_or("");
            let down = flags
                .split(',')
                .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"));
            if down || get("master-link-status") != Some("ok") {
                return None;
            }
            let port = get("port")?.parse::<u16>().ok()?;
            Some(super::cluster::layout::join_addr(get("ip")?, port))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_mean_the_primary() {
        assert_eq!(
            after(Some(&token(0x1234, b"0123456789abcdef-7"))),
            After::At(0x1234)
        );
        assert_eq!(after(Some(&token(u64::MAX, b"x"))), After::At(u64::MAX));
        assert_eq!(after(Some(b"rp1.ff")), After::At(255));
        assert_eq!(after(None), After::Any);
        assert_eq!(after(Some(b"0123456789abcdef-42")), After::Any);
        assert_eq!(after(Some(b"rp1.")), After::Primary);
        assert_eq!(after(Some(b"rp1..5")), After::Primary);
        assert_eq!(after(Some(b"rp1.zz")), After::Primary);
        assert_eq!(after(Some(b"rp1.1ffffffffffffffff")), After::Primary);
        assert_eq!(ReadFrom::parse("Replicas"), Ok(ReadFrom::Replicas));
        assert!(ReadFrom::parse("replica").is_err());
    }

    #[test]
    fn hex_is_written_like_format() {
        for (v, w) in [
            (0u64, 1),
            (0, 12),
            (1, 1),
            (0xabc, 12),
            (u64::MAX, 1),
            (u64::MAX, 12),
            (0x10, 3),
        ] {
            let mut out = Vec::new();
            push_hex(&mut out, v, w);
            assert_eq!(String::from_utf8(out).unwrap(), format!("{v:0w$x}"));
        }
    }

    #[test]
    fn cluster_tokens_round_trip_and_name_shards() {
        let id = "07c37dfeb235213a872192d90877d0cd55635b91";
        let key = node_key(id).unwrap();
        assert_eq!(key, 0x07c37dfeb235);
        assert_eq!(node_key("short"), None);
        assert_eq!(node_key("zzzzzzzzzzzzzzzz"), None);
        let text = shard_token(&[(key, 0x10), (1, 0xffff)], b"abc-1");
        assert_eq!(text, b"rc1.07c37dfeb235:10,000000000001:ffff.abc-1");
        let back = after(Some(&text));
        assert_eq!(back, After::Shards(vec![(key, 0x10), (1, 0xffff)].into()));
        assert_eq!(back.for_shard(Some(key)), After::At(0x10));
        assert_eq!(back.offset_of(1), Some(0xffff));
        assert_eq!(back.offset_of(3), None);
        // A shard the token does not name: its primary.
        assert_eq!(back.for_shard(Some(2)), After::Primary);
        assert_eq!(back.for_shard(None), After::Primary);
        assert_eq!(After::Any.for_shard(Some(2)), After::Any);
        assert_eq!(After::At(5).for_shard(Some(2)), After::Primary);
        // No position at all yet: still ours, so every shard's primary.
        assert_eq!(after(Some(b"rc1..x")), After::Shards(Vec::new().into()));
        for bad in [
            &b"rc1.zz:1.x"[..],
            b"rc1.1:.x",
            b"rc1.1.x",
            b"rc1.1234567890123:1.x",
            b"rc1.1:12345678901234567.x",
        ] {
            assert_eq!(
                after(Some(bad)),
                After::Primary,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn role_replies_give_offsets() {
        let master = Value::Array(vec![bulk("master"), Value::Int(77), Value::Array(vec![])]);
        assert_eq!(master_offset(&master), Some(77));
        let replica = |state: &str| {
            Value::Array(vec![
                bulk("slave"),
                bulk("127.0.0.1"),
                Value::Int(6379),
                bulk(state),
                Value::Int(70),
            ])
        };
        assert_eq!(replica_offset(&replica("connected")), Some(70));
        assert_eq!(replica_offset(&replica("sync")), None);
        assert_eq!(master_offset(&replica("connected")), None);
    }

    #[test]
    fn sentinel_replicas_reply_keeps_the_usable_ones() {
        let entry = |port: &str, flags: &str, link: &str| {
            Value::Array(
                [
                    ("name", "x"),
                    ("ip", "127.0.0.1"),
                    ("port", port),
                    ("flags", flags),
                    ("master-link-status", link),
                ]
                .iter()
                .flat_map(|(k, v)| [bulk(k), bulk(v)])
                .collect(),
            )
        };
        let reply = Value::Array(vec![
            entry("7001", "slave", "ok"),
            entry("7002", "s_down,slave", "ok"),
            entry("7003", "slave", "err"),
            entry("7004", "slave,disconnected", "ok"),
        ]);
        assert_eq!(usable_replicas(&reply), ["127.0.0.1:7001"]);
    }
}
