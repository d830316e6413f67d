//! Server-sent event frames for `/subscribe`, `/psubscribe` and `/monitor`, in Upstash's
//! format: `data: subscribe,<channel>,<count>`, `data: message,<channel>,<payload>`,
//! `data: psubscribe,<pattern>,<count>`, `data: pmessage,<pattern>,<channel>,<payload>`,
//! MONITOR lines as `data: <line>`. Payloads are never base64.
//!
//! Framing choices (Upstash does not document them): text is sent as UTF-8 with invalid bytes
//! replaced by U+FFFD (publish base64 or JSON if you need binary); a payload containing line
//! breaks is split over several `data:` lines, as the SSE standard prescribes, so an
//! `EventSource` receives it exactly (each of `\r\n`, `\r`, `\n` arrives as `\n`).

/// One event of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A SUBSCRIBE or PSUBSCRIBE confirmation: kind (`subscribe`/`psubscribe`), the channel or
    /// pattern, and the connection's subscription count after it.
    Subscribed {
        /// `subscribe` or `psubscribe`.
        kind: &'static str,
        /// The channel or pattern.
        name: Vec<u8>,
        /// Subscriptions on this connection so far.
        count: usize,
    },
    /// A published message; `pattern` is set for pattern subscriptions.
    Message {
        /// The matching pattern (psubscribe only).
        pattern: Option<Vec<u8>>,
        /// The channel it was published to.
        channel: Vec<u8>,
        /// The payload.
        payload: Vec<u8>,
    },
    /// One line of MONITOR output (or its initial `"OK"`).
    Monitor(Vec<u8>),
}

/// The SSE comment sent as a heartbeat (clients ignore lines not starting with `data: `).
pub const HEARTBEAT: &[u8] = b": ping\n\n";

/// The bytes of one event: one or more `data:` lines and the blank line that ends it.
pub fn frame(event: &Event) -> Vec<u8> {
    let mut text = Vec::with_capacity(64);
    match event {
        Event::Subscribed { kind, name, count } => {
            text.extend_from_slice(kind.as_bytes());
            text.push(b',');
            text.extend_from_slice(name);
            text.push(b',');
            text.extend_from_slice(count.to_string().as_bytes());
        }
        Event::Message {
            pattern,
            channel,
            payload,
        } => {
            match pattern {
                Some(p) => {
                    text.extend_from_slice(b"pmessage,");
                    text.extend_from_slice(p);
                    text.push(b',');
                }
                None => text.extend_from_slice(b"message,"),
            }
            text.extend_from_slice(channel);
            text.push(b',');
            text.extend_from_slice(payload);
        }
        Event::Monitor(line) => text.extend_from_slice(line),
    }
    data_lines(&String::from_utf8_lossy(&text))
}

fn data_lines(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalized.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn upstash_frames() {
        let sub = Event::Subscribed {
            kind: "subscribe",
            name: b"chat".to_vec(),
            count: 1,
        };
        assert_eq!(s(frame(&sub)), "data: subscribe,chat,1\n\n");
        let msg = Event::Message {
            pattern: None,
            channel: b"chat".to_vec(),
            payload: b"a,b {\"x\":1}".to_vec(),
        };
        assert_eq!(s(frame(&msg)), "data: message,chat,a,b {\"x\":1}\n\n");
        let pmsg = Event::Message {
            pattern: Some(b"c*".to_vec()),
            channel: b"chat".to_vec(),
            payload: b"hi".to_vec(),
        };
        assert_eq!(s(frame(&pmsg)), "data: pmessage,c*,chat,hi\n\n");
        assert_eq!(s(frame(&Event::Monitor(b"\"OK\"".to_vec()))), "data: \"OK\"\n\n");
    }

    #[test]
    fn newlines_and_invalid_utf8() {
        let msg = Event::Message {
            pattern: None,
            channel: b"c".to_vec(),
            payload: b"one\ntwo\r\nthree\xff".to_vec(),
        };
        assert_eq!(
            s(frame(&msg)),
            "data: message,c,one\ndata: two\ndata: three\u{FFFD}\n\n"
        );
    }
}
