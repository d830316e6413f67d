//! Building responses: the JSON/RESP2 bodies with their status, and the headers every response
//! carries (`upstash-sync-token`, CORS).
//!
//! A body is complete when the response is made ([`ReplyBody`]), except for a large string
//! value ([`encode::Encoded::Around`]): that one is sent from its own buffer, and in base64
//! it is encoded a piece at a time as hyper asks for more. Every `SLICE` bytes the body
//! lets the event loop run other tasks first: hyper writes as long as the socket takes bytes,
//! and a fast client takes 8 MB in one go, which would hold up every other request on the
//! event loop for milliseconds.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::Either;
use hyper::header::{HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, VARY};
use hyper::{HeaderMap, Response, StatusCode};

use crate::error::Error;
use crate::protocol::encode::{self, Encoded, Encoding, Format, Reply};
use redis::Value;

/// A response body: a reply, or a server-sent event stream.
pub type Body = Either<ReplyBody, super::sse::SseBody>;

/// Raw bytes base64-encoded per frame of a large value (a multiple of 3, so that the pieces
/// join up to the encoding of the whole): about 64 KiB of output, some 20 µs of work.
const BASE64_PIECE: usize = 48 * 1024;
/// Bytes per frame of a large value sent as it is (no copy: slices of the value's buffer),
/// so that hyper writes it a bounded amount at a time between other work.
const PLAIN_PIECE: usize = 256 * 1024;

/// Bytes of a body handed to hyper between two turns of the event loop (some 100 µs of
/// writing on loopback).
const SLICE: usize = 256 * 1024;

/// The body of a reply: `head`, then, for a large value, the value (as it is, or
/// base64-encoded a piece per frame) and what follows it. A body built from one buffer has
/// only a head.
#[derive(Default)]
pub struct ReplyBody {
    head: Bytes,
    /// Boxed: rare, and a response is moved several times on its way out.
    large: Option<Box<Large>>,
}

/// The part of a body after the head when it carries a large value.
struct Large {
    value: Bytes,
    base64: bool,
    tail: Bytes,
    /// Bytes of value and tail not yet handed out.
    remaining: u64,
    /// Bytes handed out since the body last let other tasks run.
    since_yield: usize,
    /// The pending turn of the event loop, while the body waits for it.
    turn: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
}

impl ReplyBody {
    /// A body of `bytes`.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            head: bytes,
            large: None,
        }
    }

    /// The body of a JSON reply.
    fn encoded(encoded: Encoded) -> Self {
        match encoded {
            Encoded::Whole(body) => Self::new(Bytes::from(body)),
            Encoded::Around { value, base64 } => {
                let value_len = if base64 {
                    value.len().div_ceil(3) * 4
                } else {
                    value.len()
                };
                let tail = Bytes::from_static(encode::RESULT_TAIL);
                Self {
                    head: Bytes::from_static(encode::RESULT_HEAD),
                    large: Some(Box::new(Large {
                        remaining: (value_len + tail.len()) as u64,
                        value: Bytes::from(value),
                        base64,
                        tail,
                        since_yield: 0,
                        turn: None,
                    })),
                }
            }
        }
    }

    /// Bytes not yet handed out (the exact length, which hyper sends as Content-Length).
    fn remaining(&self) -> u64 {
        self.head.len() as u64 + self.large.as_ref().map_or(0, |l| l.remaining)
    }

    /// The next frame's bytes, `None` at the end.
    fn next_piece(&mut self) -> Option<Bytes> {
        if !self.head.is_empty() {
            return Some(std::mem::take(&mut self.head));
        }
        self.large.as_mut()?.next_piece()
    }
}

impl Large {
    fn next_piece(&mut self) -> Option<Bytes> {
        let piece = if !self.value.is_empty() {
            if self.base64 {
                let raw = self.value.split_to(self.value.len().min(BASE64_PIECE));
                let mut out = Vec::with_capacity(raw.len().div_ceil(3) * 4);
                encode::base64_piece(&mut out, &raw);
                Bytes::from(out)
            } else {
                self.value.split_to(self.value.len().min(PLAIN_PIECE))
            }
        } else if !self.tail.is_empty() {
            std::mem::take(&mut self.tail)
        } else {
            return None;
        };
        self.remaining = self.remaining.saturating_sub(piece.len() as u64);
        Some(piece)
    }

    /// Counts `sent` bytes; past `SLICE` of them, the next poll waits for a turn of the
    /// event loop first.
    fn pace(&mut self, sent: usize) {
        self.since_yield += sent;
        if self.since_yield >= SLICE && self.remaining > 0 {
            self.since_yield = 0;
            self.turn = Some(Box::pin(tokio::task::yield_now()));
        }
    }
}

impl http_body::Body for ReplyBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(large) = self.large.as_mut() {
            if let Some(turn) = large.turn.as_mut() {
                if turn.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                large.turn = None;
            }
        }
        let piece = self.next_piece();
        if let (Some(piece), Some(large)) = (&piece, self.large.as_mut()) {
            large.pace(piece.len());
        }
        Poll::Ready(piece.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining())
    }
}

/// The response type of every handler.
pub type HttpResponse = Response<Body>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");
/// The read-your-writes header (both SDKs read it case-insensitively).
pub const SYNC_TOKEN: HeaderName = HeaderName::from_static("upstash-sync-token");

/// A response with a body and content type.
pub fn with_body(status: StatusCode, content_type: HeaderValue, body: Vec<u8>) -> HttpResponse {
    respond(status, content_type, ReplyBody::new(Bytes::from(body)))
}

fn respond(status: StatusCode, content_type: HeaderValue, body: ReplyBody) -> HttpResponse {
    let mut resp = Response::new(Either::Left(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    with_body(status, JSON, body)
}

/// The response of an [`Error`]: its status and `{"error": ...}`.
pub fn error(err: &Error) -> HttpResponse {
    json(err.status(), err.body())
}

/// A plain string value at least this large is checked for characters that need escaping on
/// a blocking thread (about 1 ms per MiB of work that would otherwise stop the event loop).
const SCAN_OFF_LOOP: usize = 2 * 1024 * 1024;

/// [`single`], with the plain JSON encoding of a large string value (the scan that decides
/// whether it can be sent as it is, or its escaping) done on a blocking thread, so that the
/// event loop serves other requests meanwhile.
pub async fn single_off_loop(reply: Reply, format: Format) -> HttpResponse {
    let large = matches!(&reply, Ok(Value::BulkString(b)) if b.len() >= SCAN_OFF_LOOP);
    if !large || format != Format::Json(Encoding::Plain) {
        return single(reply, format);
    }
    match tokio::task::spawn_blocking(move || encode::single_owned(reply, Encoding::Plain)).await {
        Ok(encoded) => respond(StatusCode::OK, JSON, ReplyBody::encoded(encoded)),
        Err(e) => error(&Error::Internal(format!("encoding a reply failed: {e}"))),
    }
}

/// One command's reply: 200 `{"result"}`, or 400 `{"error"}` for an error reply.
pub fn single(reply: Reply, format: Format) -> HttpResponse {
    let status = if reply.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    match format {
        Format::Json(enc) => respond(status, JSON, ReplyBody::encoded(encode::single_owned(reply, enc))),
        Format::Resp2 => with_body(status, OCTETS, encode::resp2(std::slice::from_ref(&reply))),
    }
}

/// A batch's replies: always 200, one entry per command.
pub fn batch(replies: &[Reply], format: Format) -> HttpResponse {
    match format {
        Format::Json(enc) => json(StatusCode::OK, encode::batch(replies, enc)),
        Format::Resp2 => with_body(StatusCode::OK, OCTETS, encode::resp2(replies)),
    }
}

/// A transaction's replies: always JSON (Upstash ignores the RESP2 format here).
pub fn transaction(replies: &[Reply], format: Format) -> HttpResponse {
    let enc = match format {
        Format::Json(enc) => enc,
        Format::Resp2 => Encoding::Plain,
    };
    json(StatusCode::OK, encode::batch(replies, enc))
}

/// Unique per-response sync tokens: `<instance id>-<counter>`.
pub struct SyncTokens {
    /// `<instance id as 16 hex digits>-`, formatted once.
    prefix: [u8; 17],
    counter: AtomicU64,
}

impl SyncTokens {
    /// A generator with a random instance id.
    pub fn new() -> Self {
        let mut bytes = [0u8; 8];
        // Without OS randomness the process start time still separates instances.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            bytes = nanos.to_le_bytes();
        }
        let mut prefix = [b'-'; 17];
        let hex = format!("{:016x}", u64::from_le_bytes(bytes));
        prefix[..16].copy_from_slice(hex.as_bytes());
        Self {
            prefix,
            counter: AtomicU64::new(1),
        }
    }

    /// The next token.
    pub fn next(&self) -> HeaderValue {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Prefix and counter written into one stack buffer: no formatting machinery per response.
        let digits = crate::protocol::encode::itoa_buf(n as i64);
        let digits = digits.as_bytes();
        let mut buf = [0u8; 17 + 20];
        buf[..17].copy_from_slice(&self.prefix);
        let len = 17 + digits.len();
        buf[17..len].copy_from_slice(digits);
        HeaderValue::from_bytes(&buf[..len]).unwrap_or(HeaderValue::from_static("0"))
    }
}

impl Default for SyncTokens {
    fn default() -> Self {
        Self::new()
    }
}

/// Cross-origin settings for browsers.
#[derive(Debug, Clone)]
pub struct Cors {
    /// Whether CORS headers are sent at all.
    pub enabled: bool,
    /// Allowed origins; `*` allows any.
    pub origins: Vec<String>,
}

impl Cors {
    /// The `Access-Control-Allow-Origin` value for a request's `Origin`, if allowed.
    fn allow_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        if !self.enabled {
            return None;
        }
        if self.origins.iter().any(|o| o == "*") {
            return Some(HeaderValue::from_static("*"));
        }
        let origin = request.get(hyper::header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origins.iter().any(|o| o == text).then(|| origin.clone())
    }

    /// Adds the CORS headers of a normal response. Requests without `Origin` (every
    /// server-side client) are not cross-origin browser requests and get none.
    pub fn decorate(&self, request: &HeaderMap, resp: &mut HttpResponse) {
        if !request.contains_key(hyper::header::ORIGIN) {
            return;
        }
        if self.enabled && !self.origins.iter().any(|o| o == "*") {
            resp.headers_mut()
                .insert(VARY, HeaderValue::from_static("Origin"));
        }
        if let Some(origin) = self.allow_origin(request) {
            let h = resp.headers_mut();
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                hyper::header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("upstash-sync-token"),
            );
        }
    }

    /// The answer to an `OPTIONS` preflight: 204 with the allowed methods and headers, or
    /// `None` when CORS is off.
    pub fn preflight(&self, request: &HeaderMap) -> Option<HttpResponse> {
        if !self.enabled {
            return None;
        }
        let mut resp = Response::new(Either::Left(ReplyBody::default()));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        let h = resp.headers_mut();
        h.insert(
            hyper::header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PUT, HEAD, OPTIONS"),
        );
        let allow_headers = request
            .get(hyper::header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or(HeaderValue::from_static(
                "authorization, content-type, upstash-encoding, upstash-sync-token, upstash-response-format",
            ));
        h.insert(hyper::header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
        h.insert(
            hyper::header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        self.decorate(request, &mut resp);
        Some(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_value_goes_out_in_pieces_with_the_same_bytes_and_exact_length() {
        let value: Vec<u8> = (0..3 * BASE64_PIECE + 5).map(|i| (i % 256) as u8).collect();
        let ascii = vec![b'v'; 2 * PLAIN_PIECE + 1];
        for (value, enc) in [(value, Encoding::Base64), (ascii, Encoding::Plain)] {
            let reply: Reply = Ok(Value::BulkString(value));
            let whole = encode::single(&reply, enc);
            let mut body = ReplyBody::encoded(encode::single_owned(reply, enc));
            assert_eq!(
                http_body::Body::size_hint(&body).exact(),
                Some(whole.len() as u64)
            );
            let mut got = Vec::new();
            let mut frames = 0;
            while let Some(piece) = body.next_piece() {
                assert!(!piece.is_empty());
                got.extend_from_slice(&piece);
                frames += 1;
                assert_eq!(body.remaining(), (whole.len() - got.len()) as u64);
            }
            assert!(frames >= 3, "{frames} frames");
            assert_eq!(got, whole);
            assert!(http_body::Body::is_end_stream(&body));
        }
    }

    #[tokio::test]
    async fn a_large_body_lets_other_tasks_run_and_arrives_whole() {
        use http_body_util::BodyExt;
        let value: Vec<u8> = (0..4 * SLICE + 1).map(|i| b'a' + (i % 26) as u8).collect();
        let reply: Reply = Ok(Value::BulkString(value));
        let whole = encode::single(&reply, Encoding::Plain);
        let body = ReplyBody::encoded(encode::single_owned(reply, Encoding::Plain));
        // Another task on the same (current-thread) runtime gets to run while the body is read.
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let other = tokio::spawn(async move { flag.store(true, Ordering::Relaxed) });
        let got = body.collect().await.unwrap().to_bytes();
        assert!(ran.load(Ordering::Relaxed), "the other task did not run");
        assert_eq!(got, whole);
        other.await.unwrap();
    }
}
