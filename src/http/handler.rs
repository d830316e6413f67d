//! The request path. [`handle`] reads like the protocol: check the method, find the route,
//! authenticate, read the body, parse, run, respond. Every failure is an [`Error`] turned into
//! a JSON response in one place, and every response gets a fresh `upstash-sync-token`.

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION};
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Request, StatusCode};

use super::reply::{self, HttpResponse, SYNC_TOKEN};
use crate::auth::Auth;
use crate::backend::StreamKind;
use crate::dispatch::{self, Caller};
use crate::error::Error;
use crate::protocol::encode::{json_string, Encoding, Format};
use crate::protocol::policy::Policy;
use crate::protocol::route::{classify, Route};
use crate::protocol::{body, path};
use crate::state::AppState;

/// What `GET /` answers without a token (SRH parity, handy for container health checks).
const WELCOME: &str = "Welcome to restdis, a Redis-over-HTTP server speaking the Upstash REST protocol";

/// How much of an oversized body is read and thrown away (so the client gets the 413 instead
/// of a reset connection), and for how long at most, before the connection is closed.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves one HTTP request. Never fails: errors become JSON responses.
pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<HttpResponse, std::convert::Infallible> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let route = classify(parts.uri.path()).label();
    let seen = Seen::scan(&parts.headers);
    let mut resp = match serve(&state, &parts, &seen, body).await {
        Ok(resp) => resp,
        Err(err) => {
            if matches!(err, Error::Internal(_)) {
                tracing::error!(error = ?err, "internal error");
            }
            let mut resp = reply::error(&err);
            if matches!(err, Error::TooLarge { .. } | Error::BodyTimeout(_)) {
                resp.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            if let Error::Quota { retry_after, .. } = &err {
                resp.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            if matches!(err, Error::MethodNotAllowed) {
                resp.headers_mut().insert(
                    hyper::header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, POST, PUT, OPTIONS"),
                );
            }
            resp
        }
    };
    // A position token (`read_from = "replicas"`) is already there; else a fresh one.
    resp.headers_mut()
        .entry(SYNC_TOKEN)
        .or_insert_with(|| state.sync.next());
    if seen.origin {
        state.cors.decorate(&parts.headers, &mut resp);
    }
    state.metrics.observe(route, resp.status(), started.elapsed());
    Ok(resp)
}

/// The request headers restdis reads, found in one pass over the header list (cheaper than a
/// hashed look-up per name). The first of repeated headers wins, as with `HeaderMap::get`.
#[derive(Default)]
struct Seen<'a> {
    authorization: Option<&'a HeaderValue>,
    content_length: Option<&'a HeaderValue>,
    encoding: Option<&'a HeaderValue>,
    format: Option<&'a HeaderValue>,
    origin: bool,
    sync_token: Option<&'a HeaderValue>,
}

impl<'a> Seen<'a> {
    fn scan(headers: &'a HeaderMap) -> Self {
        let mut seen = Self::default();
        for (name, value) in headers {
            let slot = match name.as_str() {
                "authorization" => &mut seen.authorization,
                "content-length" => &mut seen.content_length,
                "upstash-encoding" => &mut seen.encoding,
                "upstash-response-format" => &mut seen.format,
                "upstash-sync-token" => &mut seen.sync_token,
                "origin" => {
                    seen.origin = true;
                    continue;
                }
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        seen
    }
}

async fn serve(
    state: &AppState,
    parts: &Parts,
    seen: &Seen<'_>,
    body: Incoming,
) -> Result<HttpResponse, Error> {
    if parts.method == Method::OPTIONS {
        return state
            .cors
            .preflight(&parts.headers)
            .ok_or(Error::MethodNotAllowed);
    }
    if !matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::POST | Method::PUT
    ) {
        return Err(Error::MethodNotAllowed);
    }
    let query = parts.uri.query();
    let route = classify(parts.uri.path());
    if let Route::Console(rest) = route {
        return Ok(super::console::serve(state, parts, rest));
    }
    let reads = matches!(parts.method, Method::GET | Method::HEAD);
    if route == Route::Root && reads && !Auth::has_credentials(seen.authorization, query) {
        return Ok(reply::json(StatusCode::OK, json_string(WELCOME)));
    }
    let tenancy = state.tenancy();
    let mut caller = tenancy.auth.authenticate(seen.authorization, query)?;
    let replicas = caller.tenant.backend.reads_replicas();
    if replicas {
        caller.after = crate::backend::replicas::after(seen.sync_token.map(HeaderValue::as_bytes));
    }
    let result = serve_caller(state, &tenancy.policy, parts, seen, body, &caller, route).await;
    count_outcome(&caller, &result);
    if replicas {
        return result.map(|resp| with_position(resp, &caller, state));
    }
    result
}

/// Serves an authenticated request: reads and parses it, lets the tenant's meter admit it
/// (nothing of a refused request reaches Redis), runs it and answers.
async fn serve_caller(
    state: &AppState,
    policy: &Policy,
    parts: &Parts,
    seen: &Seen<'_>,
    body: Incoming,
    caller: &Caller,
    route: Route<'_>,
) -> Result<HttpResponse, Error> {
    let query = parts.uri.query();
    let format = response_format(seen.encoding, seen.format)?;
    let body = read_body(
        body,
        seen.content_length,
        state.max_request_size,
        state.body_read_timeout,
    )
    .await?;
    let admit = |commands: usize| admit(state, caller, commands, body.len());
    match route {
        Route::Root => {
            if body.is_empty() {
                return Err(Error::BadRequest("ERR empty command".into()));
            }
            let cmd = body::parse_command(&body)?;
            admit(1)?;
            Ok(reply::single_off_loop(dispatch::single(policy, caller, cmd).await?, format).await)
        }
        Route::Command(rest) => {
            let cmd = path::parse_command(rest, query, &body)?;
            admit(1)?;
            Ok(reply::single_off_loop(dispatch::single(policy, caller, cmd).await?, format).await)
        }
        Route::Pipeline => {
            let entries = body::parse_batch(&body)?;
            admit(entries.len())?;
            Ok(reply::batch(
                &dispatch::pipeline(policy, caller, entries).await?,
                format,
            ))
        }
        Route::MultiExec => {
            let entries = body::parse_batch(&body)?;
            admit(entries.len())?;
            Ok(reply::transaction(
                &dispatch::transaction(policy, caller, entries).await?,
                format,
            ))
        }
        Route::Subscribe(rest) => {
            admit(1)?;
            Box::pin(stream(state, caller, StreamKind::Subscribe, rest)).await
        }
        Route::PSubscribe(rest) => {
            admit(1)?;
            Box::pin(stream(state, caller, StreamKind::PSubscribe, rest)).await
        }
        Route::Monitor => {
            admit(1)?;
            Box::pin(stream(state, caller, StreamKind::Monitor, "")).await
        }
        // Answered by `serve` before authentication; never a command.
        Route::Console(_) => Err(Error::Internal("console route on the command path".into())),
    }
}

/// The tenant's meter admits `commands` commands and `bytes` body bytes, or the request gets
/// a 429 with the quota's words and `Retry-After`.
fn admit(state: &AppState, caller: &Caller, commands: usize, bytes: usize) -> Result<(), Error> {
    let now = state.metering.clock.now();
    caller
        .tenant
        .meter
        .admit(now, commands as u64, bytes as u64)
        .map_err(|r| Error::Quota {
            message: r.message,
            retry_after: r.retry_after,
        })
}

/// `resp` with the replication positions of every write acknowledged so far (or named by the
/// request's token, if further) as its `upstash-sync-token` (`read_from = "replicas"`, see
/// [`crate::backend::replicas`]).
fn with_position(mut resp: HttpResponse, caller: &Caller, state: &AppState) -> HttpResponse {
    if let Some(token) = caller
        .tenant
        .backend
        .sync_token(&caller.after, state.sync.next().as_bytes())
    {
        if let Ok(token) = HeaderValue::from_bytes(&token) {
            resp.headers_mut().insert(SYNC_TOKEN, token);
        }
    }
    resp
}

/// Counts an authenticated request's outcome on its tenant: bytes sent, and errors by kind
/// (`redis` for a command answered with an error, whether Redis's or the policy's).
fn count_outcome(caller: &Caller, result: &Result<HttpResponse, Error>) {
    let meter = &caller.tenant.meter;
    meter.metrics().requests.inc();
    match result {
        Ok(resp) => {
            if let Some(len) = http_body::Body::size_hint(resp.body()).exact() {
                meter.sent(len);
            }
            if resp.status().is_client_error() {
                if let Some(c) = meter.metrics().error("redis") {
                    c.inc();
                }
            }
        }
        Err(e) => {
            if let Some(c) = meter.metrics().error(e.code()) {
                c.inc();
            }
        }
    }
}

/// Opens a server-sent event stream. (Called boxed: hyper keeps room for the largest request
/// future on every connection, so rare, large branches stay off it.) The request body (`[]` from the TS client) is ignored;
/// the channels or patterns are the path segments.
async fn stream(
    state: &AppState,
    caller: &Caller,
    kind: StreamKind,
    rest: &str,
) -> Result<HttpResponse, Error> {
    let names = path::segments(rest);
    state
        .streams
        .open(caller, kind, names, state.shutdown.clone())
        .await
}

/// The body format from `Upstash-Encoding` and `Upstash-Response-Format`.
fn response_format(encoding: Option<&HeaderValue>, format: Option<&HeaderValue>) -> Result<Format, Error> {
    let base64 = encoding.is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"base64"));
    let encoding = if base64 { Encoding::Base64 } else { Encoding::Plain };
    match format.map(|v| v.as_bytes().trim_ascii()) {
        None => Ok(Format::Json(encoding)),
        Some(v) if v.eq_ignore_ascii_case(b"json") => Ok(Format::Json(encoding)),
        Some(v) if v.eq_ignore_ascii_case(b"resp2") => {
            if base64 {
                Err(Error::BadRequest(
                    "ERR Upstash-Response-Format: resp2 cannot be combined with Upstash-Encoding: base64"
                        .into(),
                ))
            } else {
                Ok(Format::Resp2)
            }
        }
        Some(_) => Err(Error::BadRequest(
            "ERR invalid Upstash-Response-Format: use json or resp2".into(),
        )),
    }
}

/// Reads the whole body within `timeout`, refusing anything over `limit` (after draining a
/// bounded amount for a bounded time, so the client sees the 413 rather than a reset).
async fn read_body(
    body: Incoming,
    content_length: Option<&HeaderValue>,
    limit: u64,
    timeout: std::time::Duration,
) -> Result<Bytes, Error> {
    let declared = content_length
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|d| *d > limit) {
        let _ = tokio::time::timeout(DRAIN_TIME, drain(body)).await;
        return Err(Error::TooLarge {
            limit,
            actual: declared,
        });
    }
    // No timer for a body that is there at once: hyper reads a body only when it is asked
    // for, so the first poll is Pending and the second (after hyper has read it, within the
    // same wake-up) usually Ready. Only a body still missing then gets the timer; the
    // self-wake makes sure that second poll happens even if no byte ever arrives.
    let mut collecting = std::pin::pin!(collect(body, declared, limit));
    let mut first = true;
    let early = std::future::poll_fn(|cx| match collecting.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(Some(result)),
        Poll::Pending if first => {
            first = false;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Poll::Pending => Poll::Ready(None),
    })
    .await;
    if let Some(result) = early {
        return result;
    }
    match tokio::time::timeout(timeout, collecting).await {
        Ok(result) => result,
        Err(_) => Err(Error::BodyTimeout(timeout)),
    }
}

async fn collect(mut body: Incoming, declared: Option<u64>, limit: u64) -> Result<Bytes, Error> {
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(0).min(1 << 20) as usize);
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Error::BadRequest(format!("ERR could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        if (buf.len() + data.len()) as u64 > limit {
            let seen = buf.len() as u64 + data.len() as u64;
            let _ = tokio::time::timeout(DRAIN_TIME, drain(body)).await;
            return Err(Error::TooLarge { limit, actual: seen });
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Reads and discards up to [`DRAIN_LIMIT`] bytes.
async fn drain(mut body: Incoming) {
    let mut seen: u64 = 0;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_LIMIT {
                return;
            }
        }
    }
}
