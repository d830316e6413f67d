//! [`Wire`]: one pipelined connection to Redis, shared by every request.
//!
//! A request encodes its commands straight into the connection's output buffer (all of them
//! at once, so a `MULTI ... EXEC` batch is contiguous on the wire) and waits for its replies.
//! A writer task sends whatever has piled up in one write, after letting the event loop run
//! once more so that the requests that became ready in the meantime join the same write:
//! under load, Redis reads many commands per system call. A reader task finds complete
//! replies ([`Scanner`]) and hands them to the waiting requests in order.
//!
//! No timer per request: a sweeper task checks the oldest waiting request a few times per
//! command timeout. A request past its deadline gets [`WireError::Timeout`] (its replies are
//! dropped when they arrive); two timeouts with no reply in between mean the connection has
//! gone silent (a black-holed path sends no FIN or RST), so it is closed and every request
//! still waiting gets the timeout error. Any I/O error closes the connection at once and
//! every waiting request gets [`WireError::Closed`]: nothing is ever retried.
//!
//! Large replies. Redis answers a connection's commands in order, so a small reply sent after
//! a large one waits until all of the large one has crossed the socket. A connection that is
//! receiving a reply of [`LARGE_REPLY`] bytes or more is therefore *heavy*
//! ([`Wire::is_heavy`]) until every request that was queued on it before that reply ended has
//! its answer; the backend sends new requests to a connection that is not heavy when it has
//! one. A large bulk string (the 8 MB `GET`) is read straight from the socket into the buffer
//! that becomes its value: no growing read buffer, no second copy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, BytesMut};
use redis::{ConnectionAddr, ConnectionInfo, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, Notify};
use tokio::task::AbortHandle;

use crate::protocol::encode::error_text;
use crate::protocol::resp::{self, RespError, Scanner};
use crate::protocol::Command;

/// Why a request on a wire failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// No reply within the command timeout.
    Timeout,
    /// The connection is gone; the text says why.
    Closed(String),
}

/// Timeouts in a row, with no reply in between, after which a connection counts as silent.
const SILENT_TIMEOUTS: u32 = 2;
/// Event-loop rounds at most that the writer waits for more commands before writing (it stops
/// at the first round that brought none).
const GATHER_ROUNDS: usize = 3;
/// The output buffer keeps its capacity between writes, up to this much.
const KEEP_CAPACITY: usize = 256 * 1024;
/// A reply at least this large makes its connection heavy, and a bulk string at least this
/// large is read straight into its own buffer. At loopback speed this many bytes take about
/// a quarter of a millisecond to arrive.
pub const LARGE_REPLY: usize = 256 * 1024;
/// A large bulk string's buffer is allocated whole when it declares at most this much;
/// beyond, it grows as the bytes arrive, so a declared length never allocates much more than
/// was received.
const PREALLOC_MAX: usize = 64 * 1024 * 1024;
/// While reading a large bulk string, the reader lets other tasks run after this many bytes:
/// the socket often has more ready at once, and reading 8 MB in one go would hold up every
/// other request for milliseconds.
const READ_SLICE: usize = 128 * 1024;

/// A handle to a pipelined connection (cheap to clone).
#[derive(Clone)]
pub struct Wire {
    shared: Arc<Shared>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer when the output buffer goes from empty to non-empty.
    writer: Notify,
    /// Mirrors `Queue::closed.is_some()`, so that [`Wire::is_closed`] (asked once per request)
    /// needs no lock; set once, by [`Wire::close`], right after the queue's.
    closed: AtomicBool,
    /// Mirrors `Queue::heavy_until != 0`, for [`Wire::is_heavy`] without a lock.
    heavy: AtomicBool,
    timeout: Duration,
}

#[derive(Default)]
struct Queue {
    /// Encoded commands not yet handed to the socket.
    out: Vec<u8>,
    /// One entry per request, in wire order.
    waiting: VecDeque<Waiter>,
    /// Why the connection closed, once it has.
    closed: Option<String>,
    timeouts_in_a_row: u32,
    /// Requests queued so far, and answered (or dropped) so far.
    sent: u64,
    answered: u64,
    /// Heavy until `answered` reaches this (`u64::MAX` while a large reply is arriving);
    /// 0: not heavy.
    heavy_until: u64,
}

struct Waiter {
    /// Replies this request expects.
    want: usize,
    got: Vec<Value>,
    /// `None` once the request timed out (its replies are then dropped).
    tx: Option<oneshot::Sender<Result<Vec<Value>, WireError>>>,
    deadline: Instant,
}

/// Owns the connection's tasks: dropping it closes the connection.
pub struct WireOwner {
    wire: Wire,
    tasks: Vec<AbortHandle>,
}

impl WireOwner {
    /// A handle for sending commands.
    pub fn wire(&self) -> &Wire {
        &self.wire
    }
}

impl Drop for WireOwner {
    fn drop(&mut self) {
        self.wire.close(WireError::Closed("connection replaced".into()));
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Wire {
    /// Connects (TCP, TLS or Unix socket, as `info` says), authenticates and selects the
    /// database. `connect_timeout` bounds all of it; `timeout` is the command timeout.
    pub async fn connect(
        info: &ConnectionInfo,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<WireOwner, String> {
        Self::connect_as(info, &[], connect_timeout, timeout).await
    }

    /// [`connect`](Self::connect), then, in the same write as the URL's `AUTH` and `SELECT`,
    /// sends `then` (the switch to a tenant's ACL user, [`super::isolation`]); every reply must
    /// be OK.
    pub async fn connect_as(
        info: &ConnectionInfo,
        then: &[Command],
        connect_timeout: Duration,
        timeout: Duration,
    ) -> Result<WireOwner, String> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            writer: Notify::new(),
            closed: AtomicBool::new(false),
            heavy: AtomicBool::new(false),
            timeout,
        });
        let owner = tokio::time::timeout(connect_timeout, async {
            let tasks = open(info.addr(), &shared).await?;
            let owner = WireOwner {
                wire: Wire {
                    shared: shared.clone(),
                },
                tasks,
            };
            handshake(&owner.wire, info, then).await?;
            Ok::<_, String>(owner)
        })
        .await
        .map_err(|_| format!("no connection within {connect_timeout:?}"))??;
        Ok(owner)
    }

    /// Whether the connection has closed (it never reopens; make a new one).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire)
    }

    /// Whether a large reply is arriving, or has arrived ahead of requests still waiting:
    /// a new request sent here would wait behind it.
    pub fn is_heavy(&self) -> bool {
        self.shared.heavy.load(Ordering::Relaxed)
    }

    /// Marks the connection heavy until the next request sent on it has its answer: that
    /// request is expected to get a large reply.
    pub fn expect_large(&self) {
        let mut queue = self.shared.lock();
        queue.heavy_until = queue.heavy_until.max(queue.sent + 1);
        self.shared.heavy.store(true, Ordering::Relaxed);
    }

    /// Marks the connection heavy while a large reply arrives.
    fn mark_heavy(&self) {
        self.shared.lock().heavy_until = u64::MAX;
        self.shared.heavy.store(true, Ordering::Relaxed);
    }

    /// Sends `cmds` as one contiguous batch and waits for one reply per command.
    pub async fn send(&self, cmds: &[Command]) -> Result<Vec<Value>, WireError> {
        let rx = {
            let mut queue = self.shared.lock();
            if let Some(why) = &queue.closed {
                return Err(WireError::Closed(why.clone()));
            }
            let was_empty = queue.out.is_empty();
            for cmd in cmds {
                resp::encode_command(&mut queue.out, cmd.args());
            }
            let (tx, rx) = oneshot::channel();
            queue.waiting.push_back(Waiter {
                want: cmds.len(),
                got: Vec::with_capacity(cmds.len()),
                tx: Some(tx),
                deadline: Instant::now() + self.shared.timeout,
            });
            queue.sent += 1;
            if was_empty {
                self.shared.writer.notify_one();
            }
            rx
        };
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(WireError::Closed("connection lost".into())),
        }
    }

    /// Closes the connection: every waiting request gets `why`, new ones fail at once.
    fn close(&self, why: WireError) {
        let waiting = {
            let mut queue = self.shared.lock();
            if queue.closed.is_some() {
                return;
            }
            queue.closed = Some(match &why {
                WireError::Timeout => "Redis stopped answering".into(),
                WireError::Closed(text) => text.clone(),
            });
            queue.out = Vec::new();
            std::mem::take(&mut queue.waiting)
        };
        self.shared.closed.store(true, Ordering::Release);
        self.shared.writer.notify_one();
        for waiter in waiting {
            if let Some(tx) = waiter.tx {
                let _ = tx.send(Err(why.clone()));
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock cannot leave the queue half-updated in a way that
        // matters more than losing the connection; keep serving.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The read half of a Redis connection, whatever its transport.
pub(super) type ReadHalf = Box<dyn AsyncRead + Unpin + Send>;
/// The write half of a Redis connection, whatever its transport.
pub(super) type WriteHalf = Box<dyn AsyncWrite + Unpin + Send>;

/// Opens the socket (TCP, TLS or Unix, as `addr` says) and splits it. Shared connections and
/// stream connections (`backend::streams`) both open theirs here.
pub(super) async fn dial(addr: &ConnectionAddr) -> Result<(ReadHalf, WriteHalf), String> {
    match addr {
        ConnectionAddr::Tcp(host, port) => {
            let (r, w) = tcp(host, *port).await?.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        ConnectionAddr::TcpTls {
            host, port, insecure, ..
        } => {
            let stream = tcp(host, *port).await?;
            let config = tls_config(*insecure)?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("invalid TLS server name {host:?}: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
            let (r, w) = tokio::io::split(stream);
            Ok((Box::new(r), Box::new(w)))
        }
        #[cfg(unix)]
        ConnectionAddr::Unix(path) => {
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
            let (r, w) = stream.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        #[allow(unreachable_patterns)]
        other => Err(format!("unsupported Redis address {other}")),
    }
}

/// Opens the socket and starts the writer, reader and sweeper tasks.
async fn open(addr: &ConnectionAddr, shared: &Arc<Shared>) -> Result<Vec<AbortHandle>, String> {
    let (r, w) = dial(addr).await?;
    let mut tasks = spawn_io(r, w, shared);
    tasks.push(tokio::spawn(sweeper(Arc::downgrade(shared))).abort_handle());
    Ok(tasks)
}

async fn tcp(host: &str, port: u16) -> Result<tokio::net::TcpStream, String> {
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The rustls client configuration (system trust store, or no verification for `#insecure`),
/// built once per process.
fn tls_config(insecure: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    type Config = Result<Arc<rustls::ClientConfig>, String>;
    static VERIFIED: OnceLock<Config> = OnceLock::new();
    static INSECURE: OnceLock<Config> = OnceLock::new();
    let cell = if insecure { &INSECURE } else { &VERIFIED };
    cell.get_or_init(|| {
        redis::create_rustls_config(insecure, None)
            .map(Arc::new)
            .map_err(|e| format!("cannot set up TLS: {e}"))
    })
    .clone()
}

fn spawn_io<R, W>(reader: R, writer: W, shared: &Arc<Shared>) -> Vec<AbortHandle>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let w = Wire {
        shared: shared.clone(),
    };
    let r = w.clone();
    vec![
        tokio::spawn(write_loop(writer, w)).abort_handle(),
        tokio::spawn(read_loop(reader, r)).abort_handle(),
    ]
}

/// `AUTH` and `SELECT` as the URL asks (none when it asks for neither).
pub(super) fn handshake_commands(info: &ConnectionInfo) -> Vec<Command> {
    let settings = info.redis_settings();
    let mut cmds = Vec::new();
    if let Some(password) = settings.password() {
        let mut auth = vec!["AUTH"];
        auth.extend(settings.username());
        auth.push(password);
        cmds.push(Command::internal(&auth));
    }
    let db = settings.db().to_string();
    if settings.db() != 0 {
        cmds.push(Command::internal(&["SELECT", &db]));
    }
    cmds
}

/// `AUTH` and `SELECT` as the URL asks, then `then`, all in one write, checked before the
/// connection is used.
async fn handshake(wire: &Wire, info: &ConnectionInfo, then: &[Command]) -> Result<(), String> {
    let mut cmds = handshake_commands(info);
    cmds.extend_from_slice(then);
    if cmds.is_empty() {
        return Ok(());
    }
    let replies = wire.send(&cmds).await.map_err(|e| match e {
        WireError::Timeout => "Redis did not answer the handshake (AUTH/SELECT/ACL)".to_string(),
        WireError::Closed(why) => why,
    })?;
    for reply in replies {
        if let Value::ServerError(err) = reply {
            return Err(error_text(&err));
        }
    }
    Ok(())
}

/// Closes the connection when an I/O task ends for any reason, a panic included, so that no
/// request waits on a connection that nobody reads or writes any more.
struct CloseOnExit(Wire);

impl Drop for CloseOnExit {
    fn drop(&mut self) {
        self.0.close(WireError::Closed("connection task ended".into()));
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut socket: W, wire: Wire) {
    let _guard = CloseOnExit(wire.clone());
    let shared = &wire.shared;
    let mut spare = Vec::new();
    loop {
        shared.writer.notified().await;
        // Let the event loop run again while that brings more: requests that became ready
        // meanwhile append to the buffer and go out in this same write.
        let mut seen = shared.lock().out.len();
        for _ in 0..GATHER_ROUNDS {
            tokio::task::yield_now().await;
            let len = shared.lock().out.len();
            if len == seen {
                break;
            }
            seen = len;
        }
        let mut batch = {
            let mut queue = shared.lock();
            if queue.closed.is_some() {
                return;
            }
            std::mem::swap(&mut queue.out, &mut spare);
            std::mem::take(&mut spare)
        };
        if batch.is_empty() {
            spare = batch;
            continue;
        }
        if let Err(e) = write_all(&mut socket, &batch).await {
            wire.close(WireError::Closed(format!("write to Redis failed: {e}")));
            return;
        }
        batch.clear();
        if batch.capacity() <= KEEP_CAPACITY {
            spare = batch;
        }
    }
}

async fn write_all<W: AsyncWrite + Unpin>(socket: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    socket.write_all(bytes).await?;
    socket.flush().await
}

async fn read_loop<R: AsyncRead + Unpin>(mut socket: R, wire: Wire) {
    let _guard = CloseOnExit(wire.clone());
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut scanner = Scanner::default();
    let mut replies = Vec::new();
    // Whether the reply at the front of `buf` is a large one (the connection is heavy).
    let mut large = false;
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(buf.len().max(16 * 1024));
        }
        match socket.read_buf(&mut buf).await {
            Ok(0) => {
                wire.close(WireError::Closed("Redis closed the connection".into()));
                return;
            }
            Ok(_) => {}
            Err(e) => {
                wire.close(WireError::Closed(format!("read from Redis failed: {e}")));
                return;
            }
        }
        let mut large_done = false;
        loop {
            match scanner.scan(&buf) {
                Ok(Some(end)) => {
                    let frame = buf.split_to(end);
                    large_done |= std::mem::take(&mut large);
                    match resp::parse(&frame) {
                        Ok(value) => replies.push(value),
                        Err(e) => return wire.close(WireError::Closed(e.to_string())),
                    }
                }
                Ok(None) => break,
                Err(e) => return wire.close(WireError::Closed(e.to_string())),
            }
        }
        if !replies.is_empty() && !deliver(&wire, &mut replies, large_done) {
            return wire.close(WireError::Closed("Redis sent a reply nobody asked for".into()));
        }
        // A large bulk string at the front: read the rest of it straight into its own buffer.
        if let Some((header, len)) = resp::bulk_header(&buf).filter(|(_, len)| *len >= LARGE_REPLY) {
            wire.mark_heavy();
            let value = match read_bulk(&mut socket, &mut buf, header, len).await {
                Ok(value) => value,
                Err(why) => return wire.close(WireError::Closed(why)),
            };
            large = false;
            if !deliver(&wire, &mut vec![Value::BulkString(value)], true) {
                return wire.close(WireError::Closed("Redis sent a reply nobody asked for".into()));
            }
        } else if !large && buf.len() >= LARGE_REPLY {
            // Any other reply (a long array) that is this large and still incomplete.
            large = true;
            wire.mark_heavy();
        }
    }
}

/// Reads a bulk string of `len` bytes whose header (`header` bytes) is at the start of `buf`:
/// what `buf` already holds is copied, the rest is read from the socket straight into the
/// value's buffer. Leaves in `buf` only what follows the bulk string.
async fn read_bulk<R: AsyncRead + Unpin>(
    socket: &mut R,
    buf: &mut BytesMut,
    header: usize,
    len: usize,
) -> Result<Vec<u8>, String> {
    let total = len
        .checked_add(2)
        .ok_or_else(|| RespError("bulk length overflows").to_string())?;
    let mut value = Vec::with_capacity(total.min(PREALLOC_MAX));
    let have = (buf.len() - header).min(total);
    value.extend_from_slice(&buf[header..header + have]);
    buf.advance(header + have);
    let mut slice_end = value.len() + READ_SLICE;
    while value.len() < total {
        if value.len() >= slice_end {
            tokio::task::yield_now().await;
            slice_end = value.len() + READ_SLICE;
        }
        if value.len() == value.capacity() {
            value.reserve_exact((total - value.len()).min(value.capacity()));
        }
        let room = (total - value.len()).min(value.capacity() - value.len());
        match socket.read_buf(&mut (&mut value).limit(room)).await {
            Ok(0) => return Err("Redis closed the connection".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("read from Redis failed: {e}")),
        }
    }
    if value[len..] != *b"\r\n" {
        return Err(RespError("bulk string not followed by CRLF").to_string());
    }
    value.truncate(len);
    Ok(value)
}

/// Hands replies to the waiting requests in order; `false` on a reply with no request.
/// `large_done`: a large reply is among them, so the connection stays heavy only until the
/// requests queued so far have their answers.
fn deliver(wire: &Wire, replies: &mut Vec<Value>, large_done: bool) -> bool {
    let mut done = Vec::new();
    {
        let mut queue = wire.shared.lock();
        queue.timeouts_in_a_row = 0;
        if large_done {
            queue.heavy_until = queue.sent;
        }
        for value in replies.drain(..) {
            let Some(front) = queue.waiting.front_mut() else {
                return false;
            };
            front.got.push(value);
            if front.got.len() >= front.want {
                if let Some(waiter) = queue.waiting.pop_front() {
                    queue.answered += 1;
                    done.push(waiter);
                }
            }
        }
        if queue.heavy_until != 0 && queue.answered >= queue.heavy_until {
            queue.heavy_until = 0;
            wire.shared.heavy.store(false, Ordering::Relaxed);
        }
    }
    // Wake the requests outside the lock.
    for waiter in done {
        if let Some(tx) = waiter.tx {
            let _ = tx.send(Ok(waiter.got));
        }
    }
    true
}

/// Times out requests past their deadline, a few times per command timeout, and closes the
/// connection once it has gone silent.
async fn sweeper(shared: std::sync::Weak<Shared>) {
    let tick = match shared.upgrade() {
        Some(s) => (s.timeout / 20).clamp(Duration::from_millis(5), Duration::from_millis(100)),
        None => return,
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else { return };
        let now = Instant::now();
        let mut expired = Vec::new();
        let silent = {
            let mut queue = shared.lock();
            if queue.closed.is_some() {
                return;
            }
            // Deadlines grow along the queue: stop at the first one still in time.
            for waiter in queue.waiting.iter_mut() {
                if waiter.deadline > now {
                    break;
                }
                if let Some(tx) = waiter.tx.take() {
                    expired.push(tx);
                }
            }
            queue.timeouts_in_a_row += expired.len() as u32;
            queue.timeouts_in_a_row >= SILENT_TIMEOUTS
        };
        for tx in expired {
            let _ = tx.send(Err(WireError::Timeout));
        }
        if silent {
            Wire { shared }.close(WireError::Timeout);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_wire() -> Wire {
        Wire {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                writer: Notify::new(),
                closed: AtomicBool::new(false),
                heavy: AtomicBool::new(false),
                timeout: Duration::from_secs(1),
            }),
        }
    }

    fn push_waiter(wire: &Wire, want: usize) -> oneshot::Receiver<Result<Vec<Value>, WireError>> {
        let (tx, rx) = oneshot::channel();
        let mut q = wire.shared.lock();
        q.waiting.push_back(Waiter {
            want,
            got: Vec::new(),
            tx: Some(tx),
            deadline: Instant::now(),
        });
        q.sent += 1;
        rx
    }

    #[test]
    fn deliver_completes_batches_in_order_and_refuses_unasked_replies() {
        let wire = test_wire();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        {
            let mut q = wire.shared.lock();
            for (want, tx) in [(2, tx1), (1, tx2)] {
                q.waiting.push_back(Waiter {
                    want,
                    got: Vec::new(),
                    tx: Some(tx),
                    deadline: Instant::now(),
                });
            }
        }
        assert!(deliver(&wire, &mut vec![Value::Int(1)], false));
        assert!(rx1.try_recv().is_err());
        assert!(deliver(&wire, &mut vec![Value::Int(2), Value::Okay], false));
        assert_eq!(rx1.try_recv().unwrap(), Ok(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(rx2.try_recv().unwrap(), Ok(vec![Value::Okay]));
        assert!(!deliver(&wire, &mut vec![Value::Nil], false));
    }

    #[test]
    fn heavy_until_the_requests_queued_behind_a_large_reply_are_answered() {
        let wire = test_wire();
        let _big = push_waiter(&wire, 1);
        let _small = push_waiter(&wire, 1);
        wire.mark_heavy();
        assert!(wire.is_heavy());
        // The large reply arrives; a request sent before it ended is still behind it.
        assert!(deliver(&wire, &mut vec![Value::BulkString(vec![b'x'; 4])], true));
        assert!(wire.is_heavy());
        let _later = push_waiter(&wire, 1);
        assert!(deliver(&wire, &mut vec![Value::Okay], false));
        assert!(
            !wire.is_heavy(),
            "the request sent after the large reply ended does not count"
        );
        assert!(deliver(&wire, &mut vec![Value::Okay], false));
        assert!(!wire.is_heavy());

        // Expected large: heavy as it is sent, until it has its answer.
        let _small = push_waiter(&wire, 1);
        wire.expect_large();
        let _big = push_waiter(&wire, 1);
        assert!(wire.is_heavy());
        assert!(deliver(&wire, &mut vec![Value::Okay], false));
        assert!(wire.is_heavy());
        assert!(deliver(&wire, &mut vec![Value::Nil], false));
        assert!(!wire.is_heavy());
    }

    #[tokio::test]
    async fn reads_a_large_bulk_string_into_its_own_buffer() {
        let len = LARGE_REPLY + 3;
        let mut wire_bytes = format!("${len}\r\n").into_bytes();
        wire_bytes.extend((0..len).map(|i| (i % 251) as u8));
        wire_bytes.extend_from_slice(b"\r\n:7\r\n");
        // Part of it is already in the read buffer; the rest comes from the socket in pieces.
        let mut buf = BytesMut::from(&wire_bytes[..1000]);
        let (header, declared) = resp::bulk_header(&buf).unwrap();
        assert_eq!(declared, len);
        let mut socket = tokio_test_reader(&wire_bytes[1000..]);
        let value = read_bulk(&mut socket, &mut buf, header, len).await.unwrap();
        assert_eq!(value, &wire_bytes[header..header + len]);
        // What follows stays for the next reply.
        let mut rest = buf.to_vec();
        socket.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b":7\r\n");

        let mut bad = format!("${len}\r\n").into_bytes();
        bad.extend(std::iter::repeat_n(b'a', len + 2));
        let mut buf = BytesMut::from(&bad[..10]);
        let mut socket = tokio_test_reader(&bad[10..]);
        assert!(read_bulk(&mut socket, &mut buf, header, len).await.is_err());
        let mut buf = BytesMut::from(&wire_bytes[..10]);
        let mut short = tokio_test_reader(&wire_bytes[10..len]);
        assert!(read_bulk(&mut short, &mut buf, header, len).await.is_err());
    }

    /// A reader that hands out `bytes` a few kilobytes at a time, then ends.
    fn tokio_test_reader(bytes: &[u8]) -> impl AsyncRead + Unpin {
        let (mut tx, rx) = tokio::io::duplex(7 * 1024);
        let bytes = bytes.to_vec();
        tokio::spawn(async move { tx.write_all(&bytes).await });
        rx
    }
}
