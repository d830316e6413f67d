//! The streaming endpoints (`/subscribe/<ch>...`, `/psubscribe/<pattern>...`, `/monitor`):
//! a `text/event-stream` response whose headers and first events go out at once, fed by a
//! task that forwards Redis events as they come. The task stops, and the stream's dedicated
//! Redis connection closes, when the client goes away (a failed write, found at the latest by
//! the next heartbeat comment), when Redis closes the connection, on shutdown, or when the
//! client falls too far behind: more than `[streams] max_buffer` bytes of frames waiting for it
//! ([`sse_queue`]). Then the waiting frames are discarded, the stream ends with
//! a final `data: error,slow consumer: ...` event, and `restdis_streams_dropped_total` counts it.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use prometheus::IntCounter;
use tokio::sync::watch;

use super::reply::{Body, HttpResponse};
use super::sse_queue::{self, PushError};
use crate::backend::{StreamConn, StreamKind};
use crate::dispatch::Caller;
use crate::error::Error;
use crate::protocol::sse::{frame, Event, HEARTBEAT};

/// Limits and timing of streams.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Open streams at most, all tenants together.
    pub max_total: usize,
    /// Open streams at most per tenant.
    pub max_per_tenant: usize,
    /// Interval of heartbeat comments (they find dead clients).
    pub heartbeat: Duration,
    /// Whether `/monitor` is served at all.
    pub monitor: bool,
    /// Bytes of frames at most waiting for one client; past that the stream is dropped.
    pub max_buffer: usize,
}

/// Counts open streams against the limits (clones share the counts: one set for all workers).
#[derive(Clone)]
pub struct Streams {
    settings: StreamSettings,
    open: Arc<AtomicUsize>,
    /// Streams ended because their client fell behind.
    dropped_slow: IntCounter,
    /// Streams ended because their Redis connection closed or failed.
    dropped_redis: IntCounter,
}

/// Holds one stream's place in the counts until dropped.
struct Slot {
    total: Arc<AtomicUsize>,
    tenant: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        self.tenant.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Streams {
    /// Streams with these settings; `dropped_slow` counts the streams ended because their
    /// client fell behind, `dropped_redis` those whose Redis connection ended under them.
    pub fn new(settings: StreamSettings, dropped_slow: IntCounter, dropped_redis: IntCounter) -> Self {
        Self {
            settings,
            open: Arc::new(AtomicUsize::new(0)),
            dropped_slow,
            dropped_redis,
        }
    }

    /// Streams open now.
    pub fn open_now(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn reserve(&self, caller: &Caller) -> Result<Slot, Error> {
        let tenant = caller.tenant.open_streams.clone();
        let total = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        let mine = tenant.fetch_add(1, Ordering::AcqRel) + 1;
        let slot = Slot {
            total: self.open.clone(),
            tenant,
        };
        if total > self.settings.max_total {
            return Err(Error::TooMany(format!(
                "too many open streams ({} at most)",
                self.settings.max_total
            )));
        }
        if mine > self.settings.max_per_tenant {
            return Err(Error::TooMany(format!(
                "too many open streams for this tenant ({} at most)",
                self.settings.max_per_tenant
            )));
        }
        Ok(slot)
    }

    /// Opens a stream for `caller` and answers with it.
    pub async fn open(
        &self,
        caller: &Caller,
        kind: StreamKind,
        names: Vec<Vec<u8>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<HttpResponse, Error> {
        if kind == StreamKind::Monitor {
            if !self.settings.monitor {
                return Err(Error::BadRequest("ERR MONITOR is disabled on this server".into()));
            }
            if caller.read_only {
                return Err(Error::BadRequest(
                    "NOPERM this user has no permissions to run the 'monitor' command".into(),
                ));
            }
        } else if names.is_empty() {
            return Err(Error::BadRequest(
                "ERR name at least one channel or pattern: /subscribe/<channel>".into(),
            ));
        }
        let slot = self.reserve(caller)?;
        let (initial, conn) = caller.tenant.backend.open_stream(kind, &names).await?;
        let (tx, rx) = sse_queue::channel(self.settings.max_buffer);
        tokio::spawn(pump(Pump {
            initial,
            conn,
            tx,
            heartbeat: self.settings.heartbeat,
            shutdown,
            dropped_slow: self.dropped_slow.clone(),
            dropped_redis: self.dropped_redis.clone(),
            max_buffer: self.settings.max_buffer,
        }));
        // The body holds the stream's place under the caps: a dropped stream whose client has
        // not yet read its final event still counts (and still holds hyper's buffer).
        let body = SseBody { rx, _slot: slot };
        let mut resp = Response::new(Body::Right(body));
        *resp.status_mut() = StatusCode::OK;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(resp)
    }
}

/// What a stream's task needs.
struct Pump {
    initial: Vec<Event>,
    conn: StreamConn,
    tx: sse_queue::Sender,
    heartbeat: Duration,
    shutdown: watch::Receiver<bool>,
    dropped_slow: IntCounter,
    dropped_redis: IntCounter,
    max_buffer: usize,
}

/// The final event of a stream whose client fell behind.
pub fn slow_consumer_frame(max_buffer: usize) -> Bytes {
    Bytes::from(format!(
        "data: error,slow consumer: more than {max_buffer} bytes of events were waiting for this \
         client, so restdis closed the stream; messages after the last one received are lost\n\n"
    ))
}

/// The final event of a stream whose Redis connection closed or failed.
pub fn redis_closed_frame(why: &str) -> Bytes {
    Bytes::from(format!(
        "data: error,the Redis connection of this stream closed ({why}); subscribe again\n\n"
    ))
}

/// Forwards Redis events to the body as frames, reading from Redis only when the last event
/// has been queued; ends as the module doc says.
async fn pump(p: Pump) {
    let Pump {
        initial,
        mut conn,
        tx,
        heartbeat,
        mut shutdown,
        dropped_slow,
        dropped_redis,
        max_buffer,
    } = p;
    let mut full = false;
    for event in &initial {
        match tx.push(Bytes::from(frame(event))) {
            Ok(()) => {}
            Err(PushError::Gone) => return,
            Err(PushError::Full) => full = true,
        }
    }
    let mut beat = tokio::time::interval(heartbeat);
    beat.tick().await;
    while !full {
        tokio::select! {
            event = conn.next_event() => match event {
                Ok(Some(event)) => match tx.push(Bytes::from(frame(&event))) {
                    Ok(()) => {}
                    Err(PushError::Gone) => {
                        tracing::debug!("stream ended: its client went away");
                        return;
                    }
                    Err(PushError::Full) => full = true,
                },
                Ok(None) => {
                    dropped_redis.inc();
                    tx.end_with(redis_closed_frame("Redis closed it"));
                    return;
                }
                Err(why) => {
                    tracing::debug!(%why, "stream connection failed");
                    dropped_redis.inc();
                    tx.end_with(redis_closed_frame(&why));
                    return;
                }
            },
            _ = beat.tick() => {
                if tx.push_if_idle(Bytes::from_static(HEARTBEAT)).is_err() {
                    return;
                }
            }
            _ = tx.gone() => {
                tracing::debug!("stream ended: its client went away");
                return;
            }
            _ = shutdown.changed() => return,
        }
    }
    dropped_slow.inc();
    tracing::info!(max_buffer, "stream dropped: its client fell too far behind");
    // Frees the backlog now; the Redis connection closes as `conn` drops.
    tx.end_with(slow_consumer_frame(max_buffer));
    drop(conn);
}

/// The body of a stream: frames as the pump sends them; it ends when the pump stops.
pub struct SseBody {
    rx: sse_queue::Receiver,
    _slot: Slot,
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_next(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
