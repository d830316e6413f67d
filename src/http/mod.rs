//! The client-facing (downstream) side: an HTTP/1.1 server on hyper that accepts connections
//! up to a limit, serves each with a handler ([`handler::handle`] for the API,
//! [`admin::handle`] for the admin listener), and on shutdown stops accepting and lets
//! in-flight requests finish within a deadline. [`console`] serves the web console on the API
//! listener.

pub mod admin;
pub mod console;
pub mod drain;
pub mod handler;
pub mod reply;
pub mod sse;
pub mod sse_queue;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::state::AppState;
use drain::{Drain, Graceful};
use reply::HttpResponse;

/// Connection-level limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Connections served at once; more are closed right after accept.
    pub max_connections: usize,
    /// Time a client gets to send a complete request head.
    pub header_read_timeout: Duration,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_timeout: Duration,
}

/// Accepts and serves connections until `shutdown` flips to true, then drains.
pub async fn serve<H, F>(
    listener: TcpListener,
    state: Arc<AppState>,
    handler: H,
    limits: ListenerLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Arc<AppState>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<HttpResponse, Infallible>> + Send + 'static,
{
    let drain = Arc::new(Drain::default());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn_state = state.clone();
        let service = service_fn(move |req| handler(conn_state.clone(), req));
        let conn = drain.watch(builder.serve_connection(TokioIo::new(stream), service));
        let metrics_state = state.clone();
        metrics_state.metrics.open_connections.inc();
        metrics_state.accepted.inc();
        tokio::spawn(async move {
            let _ = conn.await;
            metrics_state.metrics.open_connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    drain.start();
    // Every connection holds a permit until it ends: all permits back means all drained.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = permits.acquire_many(all) => {}
        _ = tokio::time::sleep(limits.shutdown_timeout) => {
            tracing::warn!("shutdown deadline passed with requests still in flight");
        }
    }
}

impl<I, S, B> Graceful for http1::Connection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn begin_shutdown(&mut self) {
        std::pin::Pin::new(self).graceful_shutdown();
    }
}
