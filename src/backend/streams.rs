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
        let client = redis::Client::open(self.info.clone()).map_err(unavailable)?;
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
            let label = if kind == StreamKind::PSubscribe {
                let fut = pubsub.psubscribe(name.as_slice());
                tokio::time::timeout(self.timeout, fut)
                    .await
                    .map_err(timed)?
                    .map_err(unavailable)?;
                "psubscribe"
            } else {
                let fut = pubsub.subscribe(name.as_slice());
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
        let messages = pubsub.into_on_message().map(|msg| Event::Message {
            pattern: msg.get_pattern::<Option<Vec<u8>>>().ok().flatten(),
            channel: msg.get_channel::<Vec<u8>>().unwrap_or_default(),
            payload: msg.get_payload_bytes().to_vec(),
        });
        Ok((initial, Box::pin(messages)))
    }
}

fn unavailable(e: redis::RedisError) -> Error {
    Error::Unavailable(format!("cannot open a streaming connection: {e}"))
}
