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
use hyper::server::conn::http1;
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
/// (HTTP/2 over TLS by ALPN, on a plain listener with prior knowledge). A connection whose
/// ALPN or first bytes (`first_look`) say HTTP/1.1 is served by hyper's HTTP/1 connection,
/// any other by hyper-util's automatic builder.
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
    let builders = Arc::new(Builders::new(limits.header_read_timeout));
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
            builders: builders.clone(),
            drain: drain.clone(),
            _permit: permit,
            first_bytes: limits.header_read_timeout,
        };
        state.metrics.open_connections.inc();
        state.accepted.inc();
        match &tls {
            None => {
                tokio::spawn(async move {
                    match tokio::time::timeout(limits.header_read_timeout, first_look(&stream)).await {
                        Ok(Ok(FirstLook::Http1)) => conn.serve_http1(stream, handler).await,
                        Ok(Ok(FirstLook::MaybeHttp2)) => conn.serve_auto(stream, handler).await,
                        // Closed, failed, or silent for the whole header read timeout.
                        Ok(Ok(FirstLook::Closed) | Err(_)) | Err(_) => {}
                    }
                });
            }
            Some((certs, acceptor)) => {
                let (certs, acceptor) = (certs.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"http/1.1") => {
                            conn.serve_http1(stream, handler).await
                        }
                        Ok(Ok(stream)) => conn.serve_auto(stream, handler).await,
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

/// The connection builders of a listener: hyper's HTTP/1 one for connections known to be
/// HTTP/1.1, hyper-util's automatic one (HTTP/1.1 or HTTP/2 by the first bytes) for the rest.
struct Builders {
    http1: http1::Builder,
    auto: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(header_read_timeout: Duration) -> Self {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .keep_alive(true);
        let mut auto = auto::Builder::new(TokioExecutor::new());
        auto.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout)
            .keep_alive(true);
        auto.http2().timer(TokioTimer::new());
        Self { http1, auto }
    }
}

/// The HTTP/2 connection preface, which a client with prior knowledge (h2c) starts with.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes of a plain connection say.
enum FirstLook {
    /// They are not the HTTP/2 preface: HTTP/1.
    Http1,
    /// The preface, or a start of it: hyper-util's automatic builder decides.
    MaybeHttp2,
    /// The client closed without sending anything.
    Closed,
}

/// Peeks at the first bytes of a plain connection (without consuming them) to rule HTTP/2
/// out. HTTP/1.1 connections then go straight to hyper's HTTP/1 connection: through
/// hyper-util's automatic builder every read passes two more layers (its rewind buffer and a
/// second `TokioIo`), about 3 % more instructions per request (docs/performance.md).
async fn first_look(stream: &tokio::net::TcpStream) -> io::Result<FirstLook> {
    let mut buf = [0u8; PREFACE.len()];
    let n = stream.peek(&mut buf).await?;
    Ok(match n {
        0 => FirstLook::Closed,
        n if buf[..n] != PREFACE[..n] => FirstLook::Http1,
        _ => FirstLook::MaybeHttp2,
    })
}

/// One accepted connection, and what serving it needs; its place among the listener's
/// connections (`permit`, and the open-connections gauge) is given back when it is dropped.
struct Conn {
    state: Arc<AppState>,
    builders: Arc<Builders>,
    drain: Arc<Drain>,
    _permit: OwnedSemaphorePermit,
    first_bytes: Duration,
}

/// A byte stream a connection is served on (TCP, or TLS over TCP).
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

impl Conn {
    /// Serves HTTP/1.1 on `io` until the client or a drain ends it (hyper's header read
    /// timeout bounds every request head).
    async fn serve_http1<H, F>(self, io: impl Io, handler: H)
    where
        H: Fn(Arc<AppState>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
        F: Future<Output = Result<HttpResponse, Infallible>> + Send + 'static,
    {
        let service = self.service(handler);
        let conn = self.builders.http1.serve_connection(TokioIo::new(io), service);
        let _ = self.drain.watch(conn).await;
    }

    /// Serves HTTP/1.1 or HTTP/2 on `io` (hyper-util's automatic builder tells them apart by
    /// the first bytes, which must come within the header read timeout) until the client or a
    /// drain ends it.
    async fn serve_auto<H, F>(self, io: impl Io, handler: H)
    where
        H: Fn(Arc<AppState>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
        F: Future<Output = Result<HttpResponse, Infallible>> + Send + 'static,
    {
        let service = self.service(handler);
        let io = TokioIo::new(FirstBytes::new(io, self.first_bytes));
        let conn = Box::pin(self.builders.auto.serve_connection(io, service));
        let _ = self.drain.watch(conn).await;
    }

    /// `handler` with this connection's state, as a hyper service.
    fn service<H, F>(
        &self,
        handler: H,
    ) -> impl hyper::service::Service<Request<Incoming>, Response = HttpResponse, Error = Infallible, Future = F>
    where
        H: Fn(Arc<AppState>, Request<Incoming>) -> F + Copy + Send + Sync + 'static,
        F: Future<Output = Result<HttpResponse, Infallible>> + Send + 'static,
    {
        let state = self.state.clone();
        service_fn(move |req| handler(state.clone(), req))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state.metrics.open_connections.dec();
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
        Pin::new(self).graceful_shutdown();
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
/// ([`FIRST_BYTES`]) before a deadline: on connections served by hyper-util's automatic
/// builder, it bounds the builder's look at the first bytes and an HTTP/2 handshake, which
/// no hyper timer does (hyper's header read timeout covers HTTP/1 request heads). Once they
/// are in, a read costs one branch.
struct FirstBytes<I> {
    io: I,
    deadline: Option<Pin<Box<Sleep>>>,
    left: usize,
}

/// The HTTP/2 connection preface (24 bytes, what hyper-util reads before choosing a protocol)
/// and the header of the client's first frame, its SETTINGS (9): an HTTP/2 client that stops
/// after the preface is closed like an HTTP/1 client that stops in its request head. (On a
/// TLS connection without ALPN, an HTTP/1 client whose first request is shorter than this
/// keeps the deadline until it sends more; if it idles past it, its connection is closed then.)
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
