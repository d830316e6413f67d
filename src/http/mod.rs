//! The client-facing (downstream) side: an HTTP/1.1 and HTTP/2 server on hyper that accepts
//! connections up to a limit, optionally over TLS ([`tls`]), serves each with a handler
//! ([`handler::handle`] for the API, [`admin::handle`] for the admin listener), and on
//! shutdown stops accepting and lets in-flight requests finish within a deadline. [`console`]
//! serves the web console on the API listener.

pub mod admin;
pub mod console;
pub mod drain;
pub mod handler;
pub mod reply;
pub mod sse;
pub mod sse_queue;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

use crate::state::AppState;
use drain::{Drain, Graceful};
use reply::HttpResponse;

/// Connection-level limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Connections served at once; more are closed right after accept.
    pub max_connections: usize,
    /// Time a client gets to send a complete request head (and, on a TLS listener, to finish
    /// the handshake).
    pub header_read_timeout: Duration,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_timeout: Duration,
}

/// Accepts and serves connections until `shutdown` flips to true, then drains. With `tls`,
/// every connection first completes a TLS handshake (bounded by the header read timeout and
/// holding its place among `max_connections`); either way HTTP/1.1 and HTTP/2 are served
/// (HTTP/2 over TLS by ALPN, on a plain listener with prior knowledge).
pub async fn serve<H, F>(
    listener: TcpListener,
    state: Arc<AppState>,
    handler: H,
    limits: ListenerLimits,
    tls: Option<(Arc<tls::Tls>, tokio_rustls::TlsAcceptor)>,
    mut shutdown: watch::Receiver<bool>,
) where
    H: Fn(Arc<AppState>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
    F: Future<Output = Result<HttpResponse, Infallible>> + Send + 'static,
{
    let drain = Arc::new(Drain::default());
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
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
        let conn = Conn {
            state: state.clone(),
            builder: builder.clone(),
            drain: drain.clone(),
            _permit: permit,
            first_bytes: limits.header_read_timeout,
        };
        state.metrics.open_connections.inc();
        match &tls {
            None => {
                tokio::spawn(conn.serve(stream, handler));
            }
            Some((certs, acceptor)) => {
                let (certs, acceptor) = (certs.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => conn.serve(stream, handler).await,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            certs.handshake_failed();
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            certs.handshake_failed();
                        }
                    }
                });
            }
        }
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

/// One accepted connection, and what serving it needs; its place among the listener's
/// connections (`permit`, and the open-connections gauge) is given back when it is dropped.
struct Conn {
    state: Arc<AppState>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    drain: Arc<Drain>,
    _permit: OwnedSemaphorePermit,
    first_bytes: Duration,
}

impl Conn {
    /// Serves HTTP/1.1 or HTTP/2 (told apart by hyper-util from the first bytes, which must
    /// come within the header read timeout) on `io` until the client or a drain ends it.
    async fn serve<I, H, F>(self, io: I, handler: H)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(Arc<AppState>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
        F: Future<Output = Result<HttpResponse, Infallible>> + Send + 'static,
    {
        let conn_state = self.state.clone();
        let service = service_fn(move |req| handler(conn_state.clone(), req));
        let io = TokioIo::new(FirstBytes::new(io, self.first_bytes));
        let conn = Box::pin(self.builder.serve_connection(io, service));
        let _ = self.drain.watch(conn).await;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state.metrics.open_connections.dec();
    }
}

impl<I, S, B> Graceful for Pin<Box<auto::Connection<'_, I, S, TokioExecutor>>>
where
    S: hyper::service::Service<Request<Incoming>, Response = hyper::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn begin_shutdown(&mut self) {
        self.as_mut().graceful_shutdown();
    }
}

/// I/O that fails reads with `TimedOut` when the client has not sent its first bytes
/// ([`FIRST_BYTES`]) before a deadline. hyper's own header read timeout covers HTTP/1
/// request heads; this covers hyper-util's look at the first bytes and an HTTP/2 handshake,
/// which no hyper timer does. Once they are in, a read costs one branch.
struct FirstBytes<I> {
    io: I,
    deadline: Option<Pin<Box<Sleep>>>,
    left: usize,
}

/// The HTTP/2 connection preface (24 bytes, what hyper-util reads before choosing a protocol)
/// and the header of the client's first frame, its SETTINGS (9): an HTTP/2 client that stops
/// after the preface is closed like an HTTP/1 client that stops in its request head. (An
/// HTTP/1 client whose first request is shorter than this keeps the deadline until it sends
/// more; if it idles past the deadline, its keep-alive connection is closed then.)
const FIRST_BYTES: usize = 24 + 9;

impl<I> FirstBytes<I> {
    fn new(io: I, within: Duration) -> Self {
        Self {
            io,
            deadline: Some(Box::pin(tokio::time::sleep(within))),
            left: FIRST_BYTES,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstBytes<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let Some(deadline) = this.deadline.as_mut() else {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        };
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n == 0 || n >= this.left {
                    this.deadline = None;
                } else {
                    this.left -= n;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if deadline.as_mut().poll(cx).is_ready() => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no request within the header read timeout",
            ))),
            other => other,
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstBytes<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
