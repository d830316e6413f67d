//! Reading from a Cluster's replicas (`read_from = "replicas"`): each shard's replicas, with
//! connections that sent `READONLY`, and each shard's read-your-writes position.
//!
//! A shard is named by its primary's node id ([`node_key`]). Its [`Replicas`] come from the
//! slot map (`CLUSTER SHARDS`, replicas whose health is `online`), each asked `ROLE` every
//! 10 ms like a Sentinel group's. Positions are per shard: every batch sent to a primary that
//! is not read-only has `ROLE` and `CLUSTER MYID` behind it in the same write, and the offset
//! is recorded under the id the node itself gives (so a write that a `MOVED` sent to a node
//! not yet in the map is covered too). A primary new to the map is asked its offset once it is
//! connected, so that tokens name every shard. A response's token ([`shard_token`]) names each
//! current primary's largest position, this instance's or the request's token's, whichever
//! is further: a client carries its writes' positions forward through any instance.
//!
//! A shard whose primary changed (a failover) gets a new name: tokens naming the old one send
//! that shard's reads to its new primary until a response names the new one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};

use redis::{ConnectionInfo, Value};

use super::layout::Layout;
use crate::backend::replicas::{node_key, After, Replicas};
use crate::backend::single::{NodeSettings, Single};
use crate::protocol::Command;

/// The replicas and positions of every shard.
pub struct Reads {
    settings: NodeSettings,
    template: ConnectionInfo,
    /// By the node key of each shard's primary.
    shards: RwLock<HashMap<u64, Arc<Replicas>>>,
    /// Primaries being asked their position now.
    asking: Mutex<HashSet<u64>>,
}

impl Reads {
    /// No shard yet; replicas are opened with `settings` and `template`'s credentials.
    pub fn new(settings: NodeSettings, template: ConnectionInfo) -> Self {
        Self {
            settings,
            template,
            shards: RwLock::new(HashMap::new()),
            asking: Mutex::new(HashSet::new()),
        }
    }

    /// The shard whose primary is `key`, if known.
    pub fn shard(&self, key: u64) -> Option<Arc<Replicas>> {
        self.shards.read().ok()?.get(&key).cloned()
    }

    /// The shard `key`, made when new (a write may reach a primary before the map names it).
    fn shard_or_new(&self, key: u64) -> Option<Arc<Replicas>> {
        if let Some(shard) = self.shard(key) {
            return Some(shard);
        }
        let mut shards = self.shards.write().ok()?;
        Some(shards.entry(key).or_default().clone())
    }

    /// Follows `layout`: each primary's shard (kept when its primary is the same) uses the
    /// replicas the map lists; shards whose primary is no longer one are dropped, closing
    /// their replicas' connections.
    pub fn follow(&self, layout: &Layout) {
        let keys: Vec<Option<u64>> = layout.primary_ids().iter().map(|id| node_key(id)).collect();
        let primaries = layout.primaries();
        for ((key, replicas), primary) in keys.iter().zip(layout.replicas_by_primary()).zip(&primaries) {
            let Some(shard) = key.and_then(|k| self.shard_or_new(k)) else {
                continue;
            };
            shard.set(&replicas, Some(primary), |addr| self.open(addr));
        }
        if let Ok(mut shards) = self.shards.write() {
            shards.retain(|k, _| keys.contains(&Some(*k)));
        }
    }

    fn open(&self, addr: &str) -> Option<Arc<Single>> {
        let info = super::info_for(&self.template, addr)?;
        Some(
            self.settings
                .open_with(addr, &info, &[Command::internal(&["READONLY"])]),
        )
    }

    /// Records the replies of `ROLE` and `CLUSTER MYID` sent behind a write.
    pub fn wrote(&self, role: &Value, id: &Value) {
        let id = match id {
            Value::BulkString(b) => std::str::from_utf8(b).ok(),
            Value::SimpleString(s) => Some(s.as_str()),
            _ => None,
        };
        let (Some(key), Some(offset)) = (
            id.and_then(node_key),
            crate::backend::replicas::master_offset(role),
        ) else {
            return;
        };
        if let Some(shard) = self.shard_or_new(key) {
            shard.wrote_at(offset);
        }
    }

    /// Marks the primary `key` as being asked its position; false when it already is.
    pub fn start_asking(&self, key: u64) -> bool {
        self.asking.lock().map(|mut a| a.insert(key)).unwrap_or(false)
    }

    /// The ask of [`start_asking`](Self::start_asking) is over.
    pub fn done_asking(&self, key: u64) {
        if let Ok(mut a) = self.asking.lock() {
            a.remove(&key);
        }
    }

    /// Whether the shard `key` has no position yet (its primary should be asked).
    pub fn unknown(&self, key: u64) -> bool {
        self.shard(key).is_none_or(|s| !s.known())
    }

    /// The positions a response names: for each current primary (`keys`), the further of
    /// this instance's and the request's (`after`); shards with none (never asked, not in the token) are left out.
    pub fn positions(&self, keys: &[Option<u64>], after: &After) -> Vec<(u64, u64)> {
        keys.iter()
            .flatten()
            .filter_map(|&k| {
                let own = self.shard(k).filter(|s| s.known()).map(|s| s.written());
                let asked = after.offset_of(k);
                match (own, asked) {
                    (None, None) => None,
                    (own, asked) => Some((k, own.unwrap_or(0).max(asked.unwrap_or(0)))),
                }
            })
            .collect()
    }
}

/// The commands that follow a write to a primary: its offset and its id.
pub fn position_commands() -> [Command; 2] {
    [
        Command::internal(&["ROLE"]),
        Command::internal(&["CLUSTER", "MYID"]),
    ]
}
