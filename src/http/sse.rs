//! The streaming endpoints (`/subscribe/<ch>...`, `/psubscribe/<pattern>...`, `/monitor`):
//! a `text/event-stream` response whose headers and first events go out at once, fed by a
//! task that forwards Redis events as they come. The task stops, and the stream's dedicated
//! Redis connection closes, when the client goes away (a failed write, found at the latest by
//! the next heartbeat comment), when Redis closes the connection, or on shutdown.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http_body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use tokio::sync::{mpsc, watch};

use super::reply::{Body, HttpResponse};
use crate::backend::{EventStream, StreamKind};
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
}

/// Counts open streams against the limits.
pub struct Streams {
    settings: StreamSettings,
    open: Arc<AtomicUsize>,
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
    /// Streams with these settings.
    pub fn new(settings: StreamSettings) -> Self {
        Self {
            settings,
            open: Arc::new(AtomicUsize::new(0)),
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
        let (initial, events) = caller.tenant.backend.open_stream(kind, &names).await?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(pump(initial, events, tx, self.settings.heartbeat, shutdown, slot));
        let mut resp = Response::new(Body::Right(SseBody { rx }));
        *resp.status_mut() = StatusCode::OK;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        Ok(resp)
    }
}

async fn pump(
    initial: Vec<Event>,
    mut events: EventStream,
    tx: mpsc::Sender<Bytes>,
    heartbeat: Duration,
    mut shutdown: watch::Receiver<bool>,
    _slot: Slot,
) {
    for event in &initial {
        if tx.send(Bytes::from(frame(event))).await.is_err() {
            return;
        }
    }
    let mut beat = tokio::time::interval(heartbeat);
    beat.tick().await;
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => {
                    if tx.send(Bytes::from(frame(&event))).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            _ = beat.tick() => {
                if tx.send(Bytes::from_static(HEARTBEAT)).await.is_err() {
                    break;
                }
            }
            _ = tx.closed() => break,
            _ = shutdown.changed() => break,
        }
    }
}

/// The body of a stream: frames as the pump sends them; it ends when the pump stops.
pub struct SseBody {
    rx: mpsc::Receiver<Bytes>,
}

impl http_body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}
