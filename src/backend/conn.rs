//! [`Slot`]: one [`Wire`] that repairs itself. While it is down, [`Slot::connection`] answers
//! `None` at once (the request gets a 503, never a wait), and one background task reconnects
//! with a short capped backoff, so service resumes within about a quarter of a second of
//! Redis coming back. A health PING every second finds a connection that Redis closed while
//! idle and replaces it, so a Redis restart between requests more than a second apart costs
//! no failed request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::{ConnectionInfo, Value};

use super::wire::{Wire, WireError, WireOwner};
use crate::error::Error;
use crate::protocol::Command;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_START: Duration = Duration::from_millis(25);
const BACKOFF_MAX: Duration = Duration::from_millis(250);
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// One self-repairing pipelined connection.
pub struct Slot {
    label: String,
    info: ConnectionInfo,
    /// Sent after the URL's AUTH/SELECT on every connection (a shared-Redis tenant's switch
    /// to its ACL user), or nothing.
    handshake: Vec<Command>,
    /// The command timeout.
    timeout: Duration,
    conn: RwLock<Option<WireOwner>>,
    reconnecting: AtomicBool,
    /// Counts connections made, so a late failure of an old connection cannot take down its
    /// replacement.
    generation: AtomicU64,
    /// Counts connections made again after a loss.
    reconnections: prometheus::IntCounter,
}

impl Slot {
    /// Creates the slot and starts connecting in the background.
    pub fn start(
        label: String,
        info: ConnectionInfo,
        handshake: Vec<Command>,
        timeout: Duration,
        reconnections: prometheus::IntCounter,
    ) -> Arc<Self> {
        let slot = Arc::new(Self {
            label,
            info,
            handshake,
            timeout,
            conn: RwLock::new(None),
            reconnecting: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            reconnections,
        });
        slot.reconnect();
        tokio::spawn(health_loop(Arc::downgrade(&slot)));
        slot
    }

    /// A handle to the live connection, or `None` while reconnecting.
    pub fn connection(self: &Arc<Self>) -> Option<(Wire, u64)> {
        let found = {
            let conn = self.conn.read().ok()?;
            let owner = conn.as_ref()?;
            (owner.wire().clone(), self.generation.load(Ordering::Acquire))
        };
        if found.0.is_closed() {
            self.mark_broken_if(found.1);
            return None;
        }
        Some(found)
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.conn
            .read()
            .map(|c| c.as_ref().is_some_and(|o| !o.wire().is_closed()))
            .unwrap_or(false)
    }

    /// Sends `cmds` on connection `generation` (from [`connection`](Self::connection)) and
    /// turns the outcome into ours; a lost connection starts a reconnect.
    pub async fn send(
        self: &Arc<Self>,
        wire: &Wire,
        generation: u64,
        cmds: &[Command],
    ) -> Result<Vec<Value>, Error> {
        match wire.send(cmds).await {
            Ok(values) => Ok(values),
            Err(WireError::Timeout) => Err(Error::Timeout(self.timeout)),
            Err(WireError::Closed(_)) => {
                self.mark_broken_if(generation);
                Err(Error::Unavailable("connection lost".into()))
            }
        }
    }

    /// Marks the connection of `generation` broken (no-op if it was already replaced).
    fn mark_broken_if(self: &Arc<Self>, generation: u64) {
        let Ok(mut conn) = self.conn.write() else { return };
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if let Some(old) = conn.take() {
            tracing::warn!(backend = %self.label, "Redis connection lost; reconnecting");
            drop(conn);
            drop(old);
        }
        self.reconnect();
    }

    fn reconnect(self: &Arc<Self>) {
        if self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(reconnect_loop(weak));
    }
}

async fn reconnect_loop(weak: Weak<Slot>) {
    let mut backoff = BACKOFF_START;
    let mut logged = false;
    loop {
        let Some(slot) = weak.upgrade() else { return };
        match Wire::connect_as(&slot.info, &slot.handshake, CONNECT_TIMEOUT, slot.timeout).await {
            Ok(owner) => {
                if let Ok(mut c) = slot.conn.write() {
                    if slot.generation.fetch_add(1, Ordering::AcqRel) > 0 {
                        slot.reconnections.inc();
                    }
                    *c = Some(owner);
                }
                slot.reconnecting.store(false, Ordering::Release);
                tracing::info!(backend = %slot.label, "connected to Redis");
                return;
            }
            Err(e) => {
                if !logged {
                    tracing::warn!(backend = %slot.label, error = %e, "cannot connect to Redis; retrying");
                    logged = true;
                }
            }
        }
        drop(slot);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// PINGs the connection every second while it is up. A closed connection is replaced; a
/// PING that gets no answer counts towards the connection's silence like any request.
async fn health_loop(weak: Weak<Slot>) {
    let ping = [Command::internal(&["PING"])];
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        let Some(slot) = weak.upgrade() else { return };
        let Some((wire, generation)) = slot.connection() else {
            continue;
        };
        let answer = tokio::time::timeout(CONNECT_TIMEOUT, wire.send(&ping)).await;
        if let Ok(Err(WireError::Closed(why))) = answer {
            tracing::debug!(backend = %slot.label, %why, "health PING failed");
            slot.mark_broken_if(generation);
        }
    }
}
