//! [`Slot`]: one multiplexed Redis connection that repairs itself. While it is down,
//! [`Slot::connection`] answers `None` at once (the request gets a 503, never a wait), and one
//! background task reconnects with a short capped backoff, so service resumes within about a
//! quarter of a second of Redis coming back. A health PING every second finds a connection
//! that Redis closed while idle and replaces it, so a Redis restart between requests more
//! than a second apart costs no failed request.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionInfo, RedisError};

use crate::error::Error;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_START: Duration = Duration::from_millis(25);
const BACKOFF_MAX: Duration = Duration::from_millis(250);
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Timeouts in a row after which a connection is taken for dead.
const SILENT_TIMEOUTS: u32 = 2;

/// One self-repairing multiplexed connection.
pub struct Slot {
    label: String,
    info: ConnectionInfo,
    conn: RwLock<Option<MultiplexedConnection>>,
    reconnecting: AtomicBool,
    /// Counts connections made, so a late failure of an old connection cannot take down its
    /// replacement.
    generation: AtomicU64,
    /// Timeouts since the last reply on this connection.
    timeouts_in_a_row: AtomicU32,
}

impl Slot {
    /// Creates the slot and starts connecting in the background.
    pub fn start(label: String, info: ConnectionInfo) -> Arc<Self> {
        let slot = Arc::new(Self {
            label,
            info,
            conn: RwLock::new(None),
            reconnecting: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            timeouts_in_a_row: AtomicU32::new(0),
        });
        slot.reconnect();
        tokio::spawn(health_loop(Arc::downgrade(&slot)));
        slot
    }

    /// A handle to the live connection, or `None` while reconnecting.
    pub fn connection(&self) -> Option<MultiplexedConnection> {
        self.conn.read().ok().and_then(|c| c.clone())
    }

    /// Whether the connection is up.
    pub fn is_connected(&self) -> bool {
        self.conn.read().map(|c| c.is_some()).unwrap_or(false)
    }

    /// Turns a (timed) redis-rs result into ours, marking the connection broken when the
    /// transport failed.
    pub fn settle<T>(
        self: &Arc<Self>,
        result: Result<Result<T, RedisError>, tokio::time::error::Elapsed>,
        timeout: Duration,
    ) -> Result<T, Error> {
        match result {
            Err(_) => {
                // A connection that stays silent (a black-holed path sends no FIN or RST) is
                // replaced after a few timeouts in a row; any reply resets the count.
                let silent = self.timeouts_in_a_row.fetch_add(1, Ordering::AcqRel) + 1;
                if silent >= SILENT_TIMEOUTS {
                    tracing::warn!(backend = %self.label, "Redis stopped answering on this connection; reconnecting");
                    self.timeouts_in_a_row.store(0, Ordering::Release);
                    self.mark_broken();
                }
                Err(Error::Timeout(timeout))
            }
            Ok(Ok(v)) => {
                self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => {
                tracing::warn!(backend = %self.label, error = %e, "Redis connection failed; reconnecting");
                self.mark_broken();
                Err(Error::Unavailable("connection lost".into()))
            }
        }
    }

    /// Marks the connection of `generation` broken (no-op if it was already replaced).
    fn mark_broken_if(self: &Arc<Self>, generation: u64) {
        if self.generation.load(Ordering::Acquire) == generation {
            self.mark_broken();
        }
    }

    fn mark_broken(self: &Arc<Self>) {
        if let Ok(mut c) = self.conn.write() {
            *c = None;
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
        let generation = slot.generation.load(Ordering::Acquire) + 1;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(None);
        let attempt = match redis::Client::open(slot.info.clone()) {
            Ok(client) => client.get_multiplexed_async_connection_with_config(&config).await,
            Err(e) => Err(e),
        };
        match attempt {
            Ok(conn) => {
                slot.generation.store(generation, Ordering::Release);
                if let Ok(mut c) = slot.conn.write() {
                    *c = Some(conn);
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

/// PINGs the connection every second while it is up; a transport failure (not mere slowness)
/// marks it broken, which starts a reconnect.
async fn health_loop(weak: Weak<Slot>) {
    let ping = redis::cmd("PING");
    loop {
        tokio::time::sleep(HEALTH_INTERVAL).await;
        let Some(slot) = weak.upgrade() else { return };
        let generation = slot.generation.load(Ordering::Acquire);
        let Some(mut conn) = slot.connection() else {
            continue;
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, conn.send_packed_command(&ping)).await {
            Ok(Err(e)) => {
                tracing::warn!(backend = %slot.label, error = %e, "Redis connection lost while idle; reconnecting");
                slot.mark_broken_if(generation);
            }
            Ok(Ok(_)) => slot.timeouts_in_a_row.store(0, Ordering::Relaxed),
            Err(_) => {
                if slot.timeouts_in_a_row.fetch_add(1, Ordering::AcqRel) + 1 >= SILENT_TIMEOUTS {
                    tracing::warn!(backend = %slot.label, "Redis stopped answering on this connection; reconnecting");
                    slot.timeouts_in_a_row.store(0, Ordering::Release);
                    slot.mark_broken_if(generation);
                }
            }
        }
    }
}
