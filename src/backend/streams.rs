//! Streaming subscriptions on the Redis side: each stream gets its own connection (never a
//! shared or pooled one), which closes when the stream is dropped. That is also what makes the
//! subscription count per request: two subscribers to one channel each see `1`.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};

use super::Backend;
use crate::error::Error;
use crate::protocol::sse::Event;

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

/// Events after the initial ones; ends when the Redis connection does.
pub type EventStream = Pin<Box<dyn Stream<Item = Event> + Send>>;

impl Backend {
    /// Opens a dedicated connection, subscribes (or starts MONITOR), and returns the initial
    /// confirmation events and the stream of what follows.
    pub async fn open_stream(
        &self,
        kind: StreamKind,
        names: &[Vec<u8>],
    ) -> Result<(Vec<Event>, EventStream), Error> {
        if kind == StreamKind::Monitor && self.isolation().is_some() {
            return Err(Error::BadRequest(
                "NOPERM MONITOR is not available to a tenant that shares its Redis: it would show other tenants' commands"
                    .into(),
            ));
        }
        let client = redis::Client::open(self.stream_info()).map_err(unavailable)?;
        let timed = |e: tokio::time::error::Elapsed| {
            let _ = e;
            Error::Timeout(self.timeout)
        };
        if kind == StreamKind::Monitor {
            let monitor = tokio::time::timeout(self.timeout, client.get_async_monitor())
                .await
                .map_err(timed)?
                .map_err(unavailable)?;
            let initial = vec![Event::Monitor(b"\"OK\"".to_vec())];
            let lines = monitor.into_on_message::<redis::Value>().map(|line| {
                Event::Monitor(match line {
                    redis::Value::SimpleString(s) => s.into_bytes(),
                    redis::Value::BulkString(b) => b,
                    other => format!("{other:?}").into_bytes(),
                })
            });
            return Ok((initial, Box::pin(lines)));
        }
        let mut pubsub = tokio::time::timeout(self.timeout, client.get_async_pubsub())
            .await
            .map_err(timed)?
            .map_err(unavailable)?;
        let mut initial: Vec<Event> = Vec::with_capacity(names.len());
        for name in names {
            if initial
                .iter()
                .any(|e| matches!(e, Event::Subscribed { name: n, .. } if n == name))
            {
                continue;
            }
            let scoped = match self.scope() {
                Some(scope) => scope.channel(name),
                None => name.clone(),
            };
            let label = if kind == StreamKind::PSubscribe {
                let fut = pubsub.psubscribe(scoped.as_slice());
                tokio::time::timeout(self.timeout, fut)
                    .await
                    .map_err(timed)?
                    .map_err(unavailable)?;
                "psubscribe"
            } else {
                let fut = pubsub.subscribe(scoped.as_slice());
                tokio::time::timeout(self.timeout, fut)
                    .await
                    .map_err(timed)?
                    .map_err(unavailable)?;
                "subscribe"
            };
            initial.push(Event::Subscribed {
                kind: label,
                name: name.clone(),
                count: initial.len() + 1,
            });
        }
        let scope = self.scope().cloned();
        let messages = pubsub.into_on_message().map(move |msg| {
            let pattern = msg.get_pattern::<Option<Vec<u8>>>().ok().flatten();
            let channel = msg.get_channel::<Vec<u8>>().unwrap_or_default();
            let (pattern, channel) = match &scope {
                Some(s) => (pattern.map(|p| s.unchannel(&p)), s.unchannel(&channel)),
                None => (pattern, channel),
            };
            Event::Message {
                pattern,
                channel,
                payload: msg.get_payload_bytes().to_vec(),
            }
        });
        Ok((initial, Box::pin(messages)))
    }
}

impl Backend {
    /// Where a stream connects: the backend's Redis; for a tenant on a shared Redis, as its
    /// stream ACL user (made at start, and by every command connection's handshake).
    fn stream_info(&self) -> redis::ConnectionInfo {
        match self.isolation() {
            Some(iso) => {
                let settings = self
                    .info
                    .redis_settings()
                    .clone()
                    .set_db(0)
                    .set_username(iso.streams.user())
                    .set_password(iso.streams.password());
                self.info.clone().set_redis_settings(settings)
            }
            None => self.info.clone(),
        }
    }
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable(format!("cannot open a streaming connection: {e}"))
}
