//! Building responses: the JSON/RESP2 bodies with their status, and the headers every response
//! carries (`upstash-sync-token`, CORS).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CONTENT_TYPE, VARY};
use hyper::{HeaderMap, Response, StatusCode};

use crate::error::Error;
use crate::protocol::encode::{self, Encoding, Format, Reply};

/// A response body: complete bytes, or a server-sent event stream.
pub type Body = Either<Full<Bytes>, super::sse::SseBody>;

/// The response type of every handler.
pub type HttpResponse = Response<Body>;

const JSON: HeaderValue = HeaderValue::from_static("application/json");
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");
/// The read-your-writes header (both SDKs read it case-insensitively).
pub const SYNC_TOKEN: HeaderName = HeaderName::from_static("upstash-sync-token");

/// A response with a body and content type.
pub fn with_body(status: StatusCode, content_type: HeaderValue, body: Vec<u8>) -> HttpResponse {
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(body))));
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

/// One command's reply: 200 `{"result"}`, or 400 `{"error"}` for an error reply.
pub fn single(reply: &Reply, format: Format) -> HttpResponse {
    let status = if reply.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    match format {
        Format::Json(enc) => json(status, encode::single(reply, enc)),
        Format::Resp2 => with_body(status, OCTETS, encode::resp2(std::slice::from_ref(reply))),
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
        let mut resp = Response::new(Either::Left(Full::new(Bytes::new())));
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
