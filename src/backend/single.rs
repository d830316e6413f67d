//! [`Single`]: one Redis server behind a few self-repairing pipelined connections
//! ([`Slot`]s), picked round-robin. The whole backend when restdis fronts one Redis, and each
//! primary's connections when it fronts a cluster.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::{ConnectionInfo, Value};

use super::conn::Slot;
use super::wire::Wire;
use crate::error::Error;
use crate::protocol::Command;

/// The connections to one Redis server.
pub struct Single {
    slots: Vec<Arc<Slot>>,
    next: AtomicUsize,
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
        }
    }

    /// Whether at least one connection is up.
    pub fn is_connected(&self) -> bool {
        self.slots.iter().any(|s| s.is_connected())
    }

    /// Connections up now.
    pub fn connected(&self) -> usize {
        self.slots.iter().filter(|s| s.is_connected()).count()
    }

    /// Picks the next connected slot (round-robin); 503 at once when none is up.
    pub fn pick(&self) -> Result<(&Arc<Slot>, Wire, u64), Error> {
        let n = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            let slot = &self.slots[(start + i) % n];
            if let Some((wire, generation)) = slot.connection() {
                return Ok((slot, wire, generation));
            }
        }
        Err(Error::Unavailable("not connected (reconnecting)".into()))
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
}

impl NodeSettings {
    /// Opens the connections to the node at `addr` (`info`).
    pub fn open(&self, addr: &str, info: &ConnectionInfo) -> Arc<Single> {
        Arc::new(Single::start(
            &format!("{}@{addr}", self.label),
            info,
            &[],
            self.connections,
            self.timeout,
            &self.reconnections,
        ))
    }
}
