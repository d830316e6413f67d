//! [`Single`]: one Redis server behind a few self-repairing pipelined connections
//! ([`Slot`]s), picked round-robin. The whole backend when restdis fronts one Redis, and each
//! primary's connections when it fronts a cluster.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::{ConnectionInfo, Value};

use super::conn::Slot;
use super::large::LargeReplies;
use super::wire::Wire;
use super::SPILL_LANES;
use crate::error::Error;
use crate::protocol::Command;

/// The connections to one Redis server.
pub struct Single {
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
    /// Spill-over connections, started when every connection is heavy or a large reply is
    /// expected.
    spill: [OnceLock<Arc<Slot>>; SPILL_LANES],
    /// Commands whose last reply was large.
    pub large: LargeReplies,
    /// How a spill-over connection is made: like the others.
    label: String,
    info: ConnectionInfo,
    handshake: Vec<Command>,
    timeout: Duration,
    reconnections: prometheus::IntCounter,
}

impl Single {
    /// Opens `connections` connections (at least one) in the background.
    pub fn start(
        label: &str,
        info: &ConnectionInfo,
        handshake: &[Command],
        connections: usize,
        timeout: Duration,
        reconnections: &prometheus::IntCounter,
    ) -> Self {
        let slots = (0..connections.max(1))
            .map(|_| {
                Slot::start(
                    label.to_string(),
                    info.clone(),
                    handshake.to_vec(),
                    timeout,
                    reconnections.clone(),
                )
            })
            .collect();
        Self {
            slots,
            next: AtomicUsize::new(0),
            spill: Default::default(),
            large: Default::default(),
            label: label.to_string(),
            info: info.clone(),
            handshake: handshake.to_vec(),
            timeout,
            reconnections: reconnections.clone(),
        }
    }

    /// Whether at least one connection is up.
    pub fn is_connected(&self) -> bool {
        self.slots.iter().any(|s| s.is_connected())
    }

    /// Connections up now (spill-over connections included).
    pub fn connected(&self) -> usize {
        self.all_slots().filter(|s| s.is_connected()).count()
    }

    /// Picks the next connected slot that is not heavy (round-robin), else a spill-over
    /// connection that is not (opening the next one when all open ones are), else a heavy
    /// one; 503 at once when none is up.
    pub fn pick(&self) -> Result<(&Arc<Slot>, Wire, u64), Error> {
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
    pub fn pick_spill(&self) -> Result<(&Arc<Slot>, Wire, u64), Error> {
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

    /// Starts one more pipelined connection like the others.
    fn start_slot(&self) -> Arc<Slot> {
        Slot::start(
            self.label.clone(),
            self.info.clone(),
            self.handshake.clone(),
            self.timeout,
            self.reconnections.clone(),
        )
    }

    /// The connections and the spill-over connections opened so far.
    fn all_slots(&self) -> impl Iterator<Item = &Arc<Slot>> {
        self.slots
            .iter()
            .chain(self.spill.iter().filter_map(OnceLock::get))
    }

    /// Sends `cmds` as one contiguous batch on one connection.
    pub async fn send(&self, cmds: &[Command]) -> Result<Vec<Value>, Error> {
        let (slot, wire, generation) = self.pick()?;
        slot.send(&wire, generation, cmds).await
    }
}

/// How the connections to each node of a cluster or Sentinel group are made.
#[derive(Clone)]
pub struct NodeSettings {
    /// The backend's name (a node's connections log as `name@host:port`).
    pub label: String,
    /// Connections per node.
    pub connections: usize,
    /// The command timeout.
    pub timeout: Duration,
    /// Counts reconnections.
    pub reconnections: prometheus::IntCounter,
    /// Sent first on every connection: a tenant's switch to its ACL user on a shared Redis
    /// behind Sentinel ([`super::isolation`]; the handshake creates the user, so a node new to
    /// the group, a promoted replica among them, gets it too).
    pub handshake: Vec<Command>,
}

impl NodeSettings {
    /// Opens the connections to the node at `addr` (`info`).
    pub fn open(&self, addr: &str, info: &ConnectionInfo) -> Arc<Single> {
        self.open_with(addr, info, &[])
    }

    /// [`open`](Self::open), each connection sending `extra` after the settings' handshake
    /// (`READONLY` to a cluster replica).
    pub fn open_with(&self, addr: &str, info: &ConnectionInfo, extra: &[Command]) -> Arc<Single> {
        let handshake: Vec<Command> = self.handshake.iter().chain(extra).cloned().collect();
        Arc::new(Single::start(
            &format!("{}@{addr}", self.label),
            info,
            &handshake,
            self.connections,
            self.timeout,
            &self.reconnections,
        ))
    }
}
