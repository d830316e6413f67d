//! Streaming subscriptions on the Redis side: each stream gets its own connection (never a
//! shared or pooled one), which closes when the stream is dropped. That is also what makes the
//! subscription count per request: two subscribers to one channel each see `1`.
//!
//! restdis reads a stream connection itself ([`StreamConn`]): bytes go from the socket through
//! the resumable RESP scanner straight to one event at a time, and the next read happens only
//! when the caller asks for the next event. Nothing here queues events, so the only buffer per
//! stream is the one the caller bounds (`http::sse_queue`), plus the socket read buffer, which
//! holds at most one message beyond what was already read. (redis-rs's async PubSub and
//! Monitor, used before, queued every message in an unbounded channel.)
//!
//! On a Redis Cluster, `/monitor` watches every primary: one MONITOR connection per primary,
//! the others' lines handed to the stream through a channel of one line per primary.
//!
//! Every stream connection is opened by [`Backend::connect_stream`]: connect, then the
//! handshake the backend's `ConnectionInfo` asks for; for a tenant on a shared Redis, then
//! the switch to its stream ACL user (`backend::isolation`), with the names it subscribes to
//! scoped to its channels (`protocol::scope`) and unscoped in every event.

use bytes::BytesMut;
use redis::{ConnectionInfo, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::wire::{self, ReadHalf, WriteHalf};
use super::Backend;
use crate::error::Error;
use crate::protocol::encode::error_text;
use crate::protocol::resp::{self, Scanner};
use crate::protocol::scope::Scope;
use crate::protocol::sse::Event;
use crate::protocol::Command;

/// What a stream listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// SUBSCRIBE to channels.
    Subscribe,
    /// PSUBSCRIBE to patterns.
    PSubscribe,
    /// MONITOR.
    Monitor,
}

/// Size of the first read buffer of a stream connection; it grows to fit the largest message.
const READ_BUFFER: usize = 16 * 1024;
/// A read buffer larger than this is given back once it is empty again, so that one large
/// message does not pin its size for the stream's whole life.
const KEEP_READ_BUFFER: usize = 256 * 1024;

/// One stream's own Redis connection, read one reply at a time.
pub struct StreamConn {
    reader: ReadHalf,
    /// Kept open: dropping a write half shuts the socket's sending side, and Redis then
    /// closes the connection.
    writer: WriteHalf,
    buf: BytesMut,
    scanner: Scanner,
    kind: StreamKind,
    /// The channel scope of a tenant on a shared Redis.
    scope: Option<Scope>,
    /// A cluster's MONITOR: the other primaries' lines, each read by a task of its own and
    /// handed over one at a time (a channel of one per primary, so nothing piles up here).
    merged: Option<tokio::sync::mpsc::Receiver<Result<Option<Event>, String>>>,
}

impl StreamConn {
    async fn send(&mut self, cmds: &[Command]) -> Result<(), String> {
        let mut out = Vec::new();
        for cmd in cmds {
            resp::encode_command(&mut out, cmd.args());
        }
        self.writer
            .write_all(&out)
            .await
            .map_err(|e| format!("write to Redis failed: {e}"))?;
        self.writer
            .flush()
            .await
            .map_err(|e| format!("write to Redis failed: {e}"))
    }

    /// The next reply; `None` when Redis closed the connection. Cancel-safe: the state lives
    /// in `self`, and a read that did not complete consumed nothing.
    async fn next_value(&mut self) -> Result<Option<Value>, String> {
        loop {
            if let Some(end) = self.scanner.scan(&self.buf).map_err(|e| e.to_string())? {
                let frame = self.buf.split_to(end);
                let value = resp::parse(&frame).map_err(|e| e.to_string())?;
                drop(frame);
                if self.buf.is_empty() && self.buf.capacity() > KEEP_READ_BUFFER {
                    self.buf = BytesMut::new();
                }
                return Ok(Some(value));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.len().max(READ_BUFFER));
            }
            match self.reader.read_buf(&mut self.buf).await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(e) => return Err(format!("read from Redis failed: {e}")),
            }
        }
    }

    /// An event with the tenant's channel prefix taken off its names.
    fn unscoped(&self, event: Event) -> Event {
        let Some(scope) = &self.scope else { return event };
        match event {
            Event::Message {
                pattern,
                channel,
                payload,
            } => Event::Message {
                pattern: pattern.map(|p| scope.unchannel(&p)),
                channel: scope.unchannel(&channel),
                payload,
            },
            Event::Subscribed { kind, name, count } => Event::Subscribed {
                kind,
                name: scope.unchannel(&name),
                count,
            },
            other => other,
        }
    }

    /// The next event of the stream; `Ok(None)` when Redis closed the connection, `Err` when
    /// it sent something unusable. Replies that are not events (e.g. a late confirmation) are
    /// skipped. Cancel-safe, like the read under it.
    pub async fn next_event(&mut self) -> Result<Option<Event>, String> {
        if let Some(mut merged) = self.merged.take() {
            // Both branches are cancel-safe; the receiver is put back whatever happens.
            let got = tokio::select! {
                event = self.own_event() => event,
                other = merged.recv() => other.unwrap_or(Ok(None)),
            };
            self.merged = Some(merged);
            return got;
        }
        self.own_event().await
    }

    /// The next event of this connection itself.
    async fn own_event(&mut self) -> Result<Option<Event>, String> {
        loop {
            let Some(value) = self.next_value().await? else {
                return Ok(None);
            };
            match to_event(self.kind, value)? {
                Some(Incoming::Event(event)) => return Ok(Some(self.unscoped(event))),
                Some(Incoming::Confirmed { .. }) | None => continue,
            }
        }
    }
}

/// A reply read from a stream connection.
enum Incoming {
    Event(Event),
    /// A (P)SUBSCRIBE confirmation: the name and the connection's count after it.
    Confirmed {
        name: Vec<u8>,
        count: usize,
    },
}

fn bulk(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::Okay => Some(b"OK".to_vec()),
        _ => None,
    }
}

/// What a reply on a stream connection means; `None` for replies that mean nothing to a
/// stream (`pong`, `unsubscribe`).
fn to_event(kind: StreamKind, value: Value) -> Result<Option<Incoming>, String> {
    if let Value::ServerError(err) = &value {
        return Err(error_text(err));
    }
    if kind == StreamKind::Monitor {
        return Ok(bulk(value).map(|line| Incoming::Event(Event::Monitor(line))));
    }
    let Value::Array(items) = value else {
        return Ok(None);
    };
    let mut items = items.into_iter();
    let Some(tag) = items.next().and_then(bulk) else {
        return Ok(None);
    };
    let mut next = || items.next().and_then(bulk).unwrap_or_default();
    Ok(match tag.as_slice() {
        b"message" => {
            let channel = next();
            let payload = next();
            Some(Incoming::Event(Event::Message {
                pattern: None,
                channel,
                payload,
            }))
        }
        b"pmessage" => {
            let pattern = next();
            let channel = next();
            let payload = next();
            Some(Incoming::Event(Event::Message {
                pattern: Some(pattern),
                channel,
                payload,
            }))
        }
        b"subscribe" | b"psubscribe" => {
            let name = next();
            let count = match items.next() {
                Some(Value::Int(n)) => usize::try_from(n).unwrap_or(0),
                _ => 0,
            };
            Some(Incoming::Confirmed { name, count })
        }
        _ => None,
    })
}

/// Connects to `info`'s server and runs the handshake `info` asks for (`AUTH`, `SELECT`),
/// then `then`.
async fn connect(
    info: &ConnectionInfo,
    then: &[Command],
    kind: StreamKind,
    scope: Option<Scope>,
) -> Result<StreamConn, String> {
    let (reader, writer) = wire::dial(info.addr()).await?;
    let mut conn = StreamConn {
        reader,
        writer,
        buf: BytesMut::with_capacity(READ_BUFFER),
        scanner: Scanner::default(),
        kind,
        scope,
        merged: None,
    };
    let mut cmds = wire::handshake_commands(info);
    cmds.extend_from_slice(then);
    if !cmds.is_empty() {
        conn.send(&cmds).await?;
        for _ in &cmds {
            match conn.next_value().await? {
                Some(Value::ServerError(err)) => return Err(error_text(&err)),
                Some(_) => {}
                None => return Err("Redis closed the connection during the handshake".into()),
            }
        }
    }
    Ok(conn)
}

impl Backend {
    /// Opens a new connection for one stream: connect and handshake, within the command
    /// timeout. The only place stream connections are opened.
    pub async fn connect_stream(&self, kind: StreamKind) -> Result<StreamConn, Error> {
        let (_, server) = self.server_info();
        let (info, then, scope) = match self.isolation() {
            // Pub/sub has no database: no SELECT, and the stream user could not run it.
            Some(iso) => {
                let settings = server.redis_settings().clone().set_db(0);
                let info = server.set_redis_settings(settings);
                (info, iso.stream_handshake(), Some(iso.scope.clone()))
            }
            None => (server, Vec::new(), None),
        };
        tokio::time::timeout(self.timeout, connect(&info, &then, kind, scope))
            .await
            .map_err(|_| Error::Timeout(self.timeout))?
            .map_err(unavailable)
    }

    /// Opens a dedicated connection, subscribes (or starts MONITOR), and returns the initial
    /// confirmation events (with any message that arrived among them) and the connection,
    /// to be read with [`StreamConn::next_event`].
    pub async fn open_stream(
        &self,
        kind: StreamKind,
        names: &[Vec<u8>],
    ) -> Result<(Vec<Event>, StreamConn), Error> {
        if kind == StreamKind::Monitor && self.isolation().is_some() {
            return Err(Error::BadRequest(
                "NOPERM MONITOR is not available to a tenant that shares its Redis: it would show \
                 other tenants' commands"
                    .into(),
            ));
        }
        let mut conn = self.connect_stream(kind).await?;
        let started = tokio::time::timeout(self.timeout, start(&mut conn, kind, names))
            .await
            .map_err(|_| Error::Timeout(self.timeout))?
            .map_err(unavailable)?;
        if kind == StreamKind::Monitor {
            if let Some(cluster) = self.cluster() {
                self.merge_monitors(&mut conn, cluster.primary_infos()).await?;
            }
        }
        Ok((started, conn))
    }

    /// A cluster's MONITOR shows every primary: a MONITOR connection to each one but the
    /// first seed (which `conn` already watches), merged into `conn`.
    async fn merge_monitors(
        &self,
        conn: &mut StreamConn,
        primaries: Vec<(String, ConnectionInfo)>,
    ) -> Result<(), Error> {
        let seed = self.info.addr().to_string();
        let (tx, rx) = tokio::sync::mpsc::channel(primaries.len().max(1));
        for (_, info) in primaries
            .into_iter()
            .filter(|(_, i)| i.addr().to_string() != seed)
        {
            let mut other = tokio::time::timeout(self.timeout, async {
                let mut c = connect(&info, &[], StreamKind::Monitor, None).await?;
                start(&mut c, StreamKind::Monitor, &[]).await?;
                Ok::<_, String>(c)
            })
            .await
            .map_err(|_| Error::Timeout(self.timeout))?
            .map_err(unavailable)?;
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    let event = other.own_event().await;
                    let end = !matches!(event, Ok(Some(_)));
                    // The stream is gone when nobody receives: drop this connection too.
                    if tx.send(event).await.is_err() || end {
                        return;
                    }
                }
            });
        }
        conn.merged = Some(rx);
        Ok(())
    }
}

/// Sends SUBSCRIBE, PSUBSCRIBE or MONITOR and reads until every confirmation is in.
async fn start(conn: &mut StreamConn, kind: StreamKind, names: &[Vec<u8>]) -> Result<Vec<Event>, String> {
    if kind == StreamKind::Monitor {
        conn.send(&[Command::internal(&["MONITOR"])]).await?;
        return match conn.next_value().await? {
            Some(Value::ServerError(err)) => Err(error_text(&err)),
            Some(_) => Ok(vec![Event::Monitor(b"\"OK\"".to_vec())]),
            None => Err("Redis closed the connection".into()),
        };
    }
    let mut distinct: Vec<&Vec<u8>> = Vec::with_capacity(names.len());
    for name in names {
        if !distinct.contains(&name) {
            distinct.push(name);
        }
    }
    let (verb, label) = match kind {
        StreamKind::PSubscribe => (&b"PSUBSCRIBE"[..], "psubscribe"),
        _ => (&b"SUBSCRIBE"[..], "subscribe"),
    };
    let mut args = vec![verb.to_vec()];
    args.extend(distinct.iter().map(|n| match &conn.scope {
        Some(scope) => scope.channel(n),
        None => n.to_vec(),
    }));
    let cmd = Command::new(args).ok_or("no command to send")?;
    conn.send(&[cmd]).await?;
    let mut confirmed = Vec::with_capacity(distinct.len());
    let mut early = Vec::new();
    while confirmed.len() < distinct.len() {
        let Some(value) = conn.next_value().await? else {
            return Err("Redis closed the connection".into());
        };
        match to_event(kind, value)? {
            Some(Incoming::Confirmed { name, count }) => confirmed.push(conn.unscoped(Event::Subscribed {
                kind: label,
                name,
                count,
            })),
            Some(Incoming::Event(event)) => early.push(conn.unscoped(event)),
            None => {}
        }
    }
    confirmed.extend(early);
    Ok(confirmed)
}

fn unavailable(e: String) -> Error {
    Error::Unavailable(format!("cannot open a streaming connection: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_become_events() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let msg = Value::Array(vec![bulk("message"), bulk("c"), bulk("hi")]);
        assert!(matches!(
            to_event(StreamKind::Subscribe, msg),
            Ok(Some(Incoming::Event(Event::Message { pattern: None, .. })))
        ));
        let pmsg = Value::Array(vec![bulk("pmessage"), bulk("c*"), bulk("c1"), bulk("hi")]);
        match to_event(StreamKind::PSubscribe, pmsg) {
            Ok(Some(Incoming::Event(Event::Message {
                pattern,
                channel,
                payload,
            }))) => {
                assert_eq!(pattern.as_deref(), Some(&b"c*"[..]));
                assert_eq!((channel.as_slice(), payload.as_slice()), (&b"c1"[..], &b"hi"[..]));
            }
            _ => panic!("not a pmessage"),
        }
        let conf = Value::Array(vec![bulk("subscribe"), bulk("c"), Value::Int(2)]);
        assert!(matches!(
            to_event(StreamKind::Subscribe, conf),
            Ok(Some(Incoming::Confirmed { count: 2, .. }))
        ));
        let line = Value::SimpleString("1.0 [0 127.0.0.1:1] \"GET\" \"k\"".into());
        assert!(matches!(
            to_event(StreamKind::Monitor, line),
            Ok(Some(Incoming::Event(Event::Monitor(_))))
        ));
        let pong = Value::Array(vec![bulk("pong"), bulk("")]);
        assert!(matches!(to_event(StreamKind::Subscribe, pong), Ok(None)));
    }
}
