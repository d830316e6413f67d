//! Hostile input: a corpus of malformed and abusive requests sent as raw bytes; a Redis reply
//! that is not UTF-8; read-only tokens through every route; slowloris connections and slow
//! bodies; a 100,000-command pipeline and a 9 MiB argument against the real binary (memory
//! measured); and tokens kept out of the logs.
//!
//! The corpus lives in `tests/it/corpus/*.http`, one request per file (format below, in
//! [`Case::load`], and in `tests/it/corpus/README.md`). Each file says what it expects: a JSON
//! `{"error"}` with a 4xx status, a rejection by hyper before restdis's handler runs (a
//! bodiless 4xx or a closed connection; which one is printed), or, for a few hostile-looking
//! but valid requests, a 2xx. `hostile_corpus_gets_json_4xx_or_a_clean_rejection` runs every
//! file and fails on any case that does not get what it expects.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{binary, cli_for, Gateway, TestRedis, RO_TOKEN, TOKEN};

// ---------------------------------------------------------------------------------------
// The corpus.
// ---------------------------------------------------------------------------------------

/// What a corpus request must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// This status; for 4xx a JSON body with an `error` string, for 2xx any JSON body.
    Status(u16),
    /// Any 4xx with a JSON `error`.
    Any4xx,
    /// Refused by hyper before the handler: a 4xx without a body, or the connection closed.
    Hyper,
}

/// One corpus request.
struct Case {
    name: String,
    what: String,
    expect: Expect,
    /// Shut the write side down after sending (the client is done, e.g. a truncated body).
    half_close: bool,
    request: Vec<u8>,
}

/// The values the templates of a corpus file expand to.
struct Vars {
    token: String,
    ro_token: String,
}

impl Case {
    /// Reads one corpus file. Format:
    ///
    /// ```text
    /// # What: one line saying what the request is
    /// # Expect: 400 | 401 | 405 | 413 | 4xx | hyper | 200
    /// # Then: half-close          (optional: shut down writing after sending)
    /// # Body: crlf                (optional: body line ends become CRLF; no newline stripped)
    /// # Raw: yes                  (optional: the rest is sent as is, templates expanded)
    /// POST / HTTP/1.1             request head, one line per header (sent with CRLF)
    /// Authorization: Bearer {{TOKEN}}
    /// Content-Length: {{LEN}}
    ///                             blank line
    /// ["GET","k"]                 body (one trailing newline of the file is not sent)
    /// ```
    ///
    /// Templates: `{{TOKEN}}`, `{{RO_TOKEN}}`, `{{TOKEN_PREFIX}}` (all but its last byte),
    /// `{{TOKEN_B64}}`, `{{LEN}}` (the body's length), `{{BYTES text}}` and
    /// `{{REPEAT n text}}`, where text may use `\r \n \t \0 \\ \xHH`.
    fn load(path: &Path, vars: &Vars) -> Self {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let mut what = String::new();
        let mut expect = None;
        let (mut half_close, mut raw, mut crlf_body) = (false, false, false);
        let mut rest = text.as_str();
        while let Some(line) = rest.strip_prefix("# ") {
            let (line, after) = line.split_once('\n').unwrap_or((line, ""));
            rest = after;
            let (key, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.trim();
            match key {
                "What" => what = value.to_string(),
                "Expect" => {
                    expect = Some(match value {
                        "hyper" => Expect::Hyper,
                        "4xx" => Expect::Any4xx,
                        n => Expect::Status(n.parse().unwrap_or_else(|_| panic!("{name}: bad Expect"))),
                    })
                }
                "Then" => half_close = value == "half-close",
                "Raw" => raw = value == "yes",
                "Body" => crlf_body = value == "crlf",
                other => panic!("{name}: unknown key {other}"),
            }
        }
        let request = if raw {
            expand(rest.strip_suffix('\n').unwrap_or(rest), vars, 0)
        } else {
            let (head, body) = rest.split_once("\n\n").unwrap_or((rest, ""));
            let body = if crlf_body {
                expand(&body.replace('\n', "\r\n"), vars, 0)
            } else {
                expand(body.strip_suffix('\n').unwrap_or(body), vars, 0)
            };
            let mut out = Vec::new();
            for line in head.split('\n') {
                out.extend(expand(line, vars, body.len()));
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"\r\n");
            out.extend(body);
            out
        };
        Self {
            name,
            what,
            expect: expect.unwrap_or_else(|| panic!("{}: no Expect", path.display())),
            half_close,
            request,
        }
    }

    fn is_head(&self) -> bool {
        self.request.starts_with(b"HEAD ")
    }
}

fn expand(text: &str, vars: &Vars, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").expect("unclosed {{");
        let directive = &after[..end];
        rest = &after[end + 2..];
        match directive {
            "TOKEN" => out.extend_from_slice(vars.token.as_bytes()),
            "RO_TOKEN" => out.extend_from_slice(vars.ro_token.as_bytes()),
            "TOKEN_PREFIX" => out.extend_from_slice(&vars.token.as_bytes()[..vars.token.len() - 1]),
            "TOKEN_B64" => out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("default:{}", vars.token))
                    .as_bytes(),
            ),
            "LEN" => out.extend_from_slice(len.to_string().as_bytes()),
            d => {
                if let Some(text) = d.strip_prefix("BYTES ") {
                    out.extend(unescape(text));
                } else if let Some(args) = d.strip_prefix("REPEAT ") {
                    let (n, text) = args.split_once(' ').expect("REPEAT n text");
                    let unit = unescape(text);
                    for _ in 0..n.parse::<usize>().expect("REPEAT count") {
                        out.extend_from_slice(&unit);
                    }
                } else {
                    panic!("unknown template {{{{{d}}}}}");
                }
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            i += 1;
            match bytes[i] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'0' => out.push(0),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    out
}

/// What came back for one raw request.
#[derive(Debug)]
enum Outcome {
    /// A complete HTTP response (interim 1xx skipped).
    Response {
        status: u16,
        json: Option<Value>,
        content_type: Option<String>,
        body_len: usize,
    },
    /// The server closed the connection without sending anything.
    Closed,
    /// The connection was reset before anything arrived.
    Reset(String),
    /// Some bytes, but not a complete response, before the connection ended.
    Partial(String),
    /// Nothing within the deadline.
    Timeout,
}

impl Outcome {
    fn label(&self) -> String {
        match self {
            Outcome::Response {
                status,
                json,
                body_len,
                ..
            } => match json {
                Some(j) => format!("{status} {}", truncate(&j.to_string(), 90)),
                None => format!("{status} (no JSON body, {body_len} bytes)"),
            },
            Outcome::Closed => "closed without a response".into(),
            Outcome::Reset(e) => format!("reset ({e})"),
            Outcome::Partial(p) => format!("partial: {}", truncate(p, 90)),
            Outcome::Timeout => "no answer (timeout)".into(),
        }
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}...", s.chars().take(n).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Whether an outcome meets an expectation; `is_head` responses carry no body.
fn meets(expect: Expect, outcome: &Outcome, is_head: bool) -> bool {
    let json_error = |json: &Option<Value>, content_type: &Option<String>| {
        if is_head {
            content_type.as_deref() == Some("application/json")
        } else {
            json.as_ref().is_some_and(|j| j["error"].is_string())
        }
    };
    match (expect, outcome) {
        (
            Expect::Status(want),
            Outcome::Response {
                status,
                json,
                content_type,
                ..
            },
        ) if want >= 400 => *status == want && json_error(json, content_type),
        (Expect::Status(want), Outcome::Response { status, json, .. }) => {
            *status == want && json.as_ref().is_some_and(|j| j.get("error").is_none())
        }
        (
            Expect::Any4xx,
            Outcome::Response {
                status,
                json,
                content_type,
                ..
            },
        ) => (400..500).contains(status) && json_error(json, content_type),
        (Expect::Hyper, Outcome::Response { status, json, .. }) => {
            (400..500).contains(status) && json.is_none()
        }
        (Expect::Hyper, Outcome::Closed | Outcome::Reset(_)) => true,
        _ => false,
    }
}

/// Sends one raw request on a fresh connection and reads one response.
async fn exchange(addr: &str, case: &Case, deadline: Duration) -> Outcome {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let request = case.request.clone();
    let half_close = case.half_close;
    // Written concurrently: the server may answer (and close) before it has read everything.
    let writer = tokio::spawn(async move {
        for chunk in request.chunks(64 * 1024) {
            if wr.write_all(chunk).await.is_err() {
                return;
            }
        }
        if half_close {
            let _ = wr.shutdown().await;
        }
        // Keep the write half (and so the connection) open until the reader is done.
        std::future::pending::<()>().await;
    });
    let outcome = tokio::time::timeout(deadline, read_response(&mut rd, case.is_head()))
        .await
        .unwrap_or(Outcome::Timeout);
    writer.abort();
    outcome
}

async fn read_response(rd: &mut tokio::net::tcp::OwnedReadHalf, is_head: bool) -> Outcome {
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if let Some(outcome) = parse_response(&mut buf, is_head) {
            return outcome;
        }
        match rd.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Outcome::Closed,
            Ok(0) => return Outcome::Partial(String::from_utf8_lossy(&buf).into_owned()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if buf.is_empty() => return Outcome::Reset(e.kind().to_string()),
            Err(e) => return Outcome::Partial(format!("{e} after {:?}", String::from_utf8_lossy(&buf))),
        }
    }
}

/// A complete response at the start of `buf` (1xx interim responses are consumed), if any.
fn parse_response(buf: &mut Vec<u8>, is_head: bool) -> Option<Outcome> {
    loop {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let Some(status) = status_line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) else {
            return Some(Outcome::Partial(head));
        };
        if (100..200).contains(&status) {
            buf.drain(..end + 4);
            continue;
        }
        let header = |name: &str| {
            head.split("\r\n").skip(1).find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let length: usize = if is_head || status == 204 || status == 304 {
            0
        } else {
            header("content-length")?.parse().ok()?
        };
        if buf.len() < end + 4 + length {
            return None;
        }
        let body = &buf[end + 4..end + 4 + length];
        return Some(Outcome::Response {
            status,
            json: serde_json::from_slice(body).ok(),
            content_type: header("content-type"),
            body_len: length,
        });
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/corpus")
}

fn load_corpus() -> Vec<Case> {
    let vars = Vars {
        token: TOKEN.into(),
        ro_token: RO_TOKEN.into(),
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "http"))
        .collect();
    paths.sort();
    paths.iter().map(|p| Case::load(p, &vars)).collect()
}

/// The header read timeout of the corpus and slowloris gateways.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A gateway with a short header read timeout (from a config file, its only source).
async fn gateway_with_short_header_timeout(redis: &TestRedis, dir: &tempfile::TempDir) -> Gateway {
    let path = dir.path().join("restdis.toml");
    std::fs::write(
        &path,
        format!(
            "[limits]\nheader_read_timeout = \"{}ms\"\n",
            HEADER_READ_TIMEOUT.as_millis()
        ),
    )
    .unwrap();
    let mut cli = cli_for(redis);
    cli.config = Some(path);
    Gateway::start_with(cli).await
}

/// Runs `cases` one by one (each on its own connection) and returns the failures. After each,
/// a normal request must be answered at once.
async fn run_cases(gw: &Gateway, cases: &[Case]) -> Vec<String> {
    let addr = gw.url.trim_start_matches("http://").to_string();
    // The check after each case uses a fresh connection: a pooled one may have sat idle for the
    // whole header read timeout (some cases wait that long) and be closed by restdis just as
    // it is reused, which is the keep-alive race every HTTP client has, not a server fault.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let started = Instant::now();
        let outcome = exchange(&addr, case, HEADER_READ_TIMEOUT + Duration::from_secs(8)).await;
        let ok = meets(case.expect, &outcome, case.is_head());
        let line = format!(
            "{} {:<48} expect {:<11} got {} ({} ms)",
            if ok { "ok  " } else { "FAIL" },
            case.name,
            format!("{:?}", case.expect),
            outcome.label(),
            started.elapsed().as_millis()
        );
        eprintln!("{line}");
        if !ok {
            failures.push(format!("{line}\n       ({})", case.what));
        }
        // Nothing may have broken the server for the next client.
        let resp = fresh
            .post(&gw.url)
            .bearer_auth(TOKEN)
            .json(&json!(["PING"]))
            .send()
            .await
            .unwrap_or_else(|e| panic!("the server stopped answering after {}: {e}", case.name));
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        assert_eq!(
            status, 200,
            "the server stopped answering after {}: {status} {body}",
            case.name
        );
    }
    failures
}

/// Every corpus request gets its expected answer: a JSON 4xx, a rejection by hyper, or for
/// the few valid ones a 2xx. Afterwards the server still serves normal requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_corpus_gets_json_4xx_or_a_clean_rejection() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway_with_short_header_timeout(&redis, &dir).await;
    let corpus = load_corpus();
    let refusals = corpus
        .iter()
        .filter(|c| !matches!(c.expect, Expect::Status(s) if s < 400))
        .count();
    assert!(
        refusals >= 100,
        "the corpus has only {refusals} requests that must be refused"
    );
    let failures = run_cases(&gw, &corpus).await;
    let by_hyper = corpus.iter().filter(|c| c.expect == Expect::Hyper).count();
    eprintln!(
        "corpus: {} requests ({refusals} refusals, {by_hyper} of them by hyper before the handler), \
         {} failures",
        corpus.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "corpus failures:\n{}", failures.join("\n"));
    assert_eq!(gw.cmd(json!(["SET", "after-corpus", "ok"])).await.0, 200);
    assert_eq!(
        gw.cmd(json!(["GET", "after-corpus"])).await,
        (200, json!({"result": "ok"}))
    );
}

/// A Redis error reply that is not valid UTF-8, provoked by one client (here with valid JSON:
/// an unknown command whose echo Redis cuts at 128 bytes, inside a two-byte character), must
/// be that client's 400 alone. Before the fix (the vendored redis-rs now decodes such lines
/// lossily, see `vendor/redis/PATCHES.md`), the parse failed and the shared connection was
/// dropped, so every request in flight on it, of any tenant on that Redis, got a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_error_reply_does_not_fail_other_requests() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    let poison = format!(r#"["a{}"]"#, "\u{e9}".repeat(100));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut others = Vec::new();
    for _ in 0..16 {
        let (http, url, stop) = (gw.http.clone(), gw.url.clone(), stop.clone());
        others.push(tokio::spawn(async move {
            let mut failed = Vec::new();
            let mut total = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let resp = http
                    .post(format!("{url}/"))
                    .bearer_auth(TOKEN)
                    .body(r#"["INCR","bystander"]"#)
                    .send()
                    .await
                    .unwrap();
                total += 1;
                if resp.status() != 200 {
                    failed.push(format!("{} {}", resp.status(), resp.text().await.unwrap()));
                }
            }
            (total, failed)
        }));
    }
    let mut poisoned = Vec::new();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, body) = gw
            .post_as(TOKEN, "/", serde_json::from_str(&poison).unwrap())
            .await;
        poisoned.push(format!("{status} {}", truncate(&body.to_string(), 60)));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut total, mut failed) = (0, Vec::new());
    for o in others {
        let (t, f) = o.await.unwrap();
        total += t;
        failed.extend(f);
    }
    eprintln!(
        "non-UTF-8 error reply: the sender got {:?}; {} of {total} bystander requests failed, e.g. {:?}",
        &poisoned[..3],
        failed.len(),
        failed.first()
    );
    assert!(
        poisoned.iter().all(|p| p.starts_with("400 ")),
        "the sender got {poisoned:?}"
    );
    assert!(failed.is_empty(), "{} bystander requests failed", failed.len());
}

// ---------------------------------------------------------------------------------------
// Read-only tokens, through every route.
// ---------------------------------------------------------------------------------------

/// Percent-encodes everything but unreserved characters (a path segment or query value).
fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `DEBUG DIGEST` of the whole dataset (every database), read directly from Redis.
fn digest(redis: &TestRedis) -> redis::Value {
    redis.query(&["DEBUG", "DIGEST"])
}

/// A read-only token cannot change anything, whatever the route, method, token placement or
/// response format, and whichever writing command (scripts, STORE options, cross-database
/// moves, admin commands) it tries: every attempt is a JSON 4xx, and the dataset's digest is
/// unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_token_cannot_write_through_any_route() {
    let redis = TestRedis::start();
    let gw = Gateway::start(&redis).await;
    for cmd in [
        json!(["SET", "k", "v"]),
        json!(["RPUSH", "l", "b", "a"]),
        json!(["HSET", "h", "f", "v"]),
        json!(["PFADD", "hll", "a"]),
        json!(["GEOADD", "g", 13.36, 38.11, "p"]),
        json!(["XADD", "s", "1-1", "f", "v"]),
        json!(["SETBIT", "bits", 1, 1]),
    ] {
        assert_eq!(gw.cmd(cmd).await.0, 200);
    }
    assert_eq!(
        gw.cmd(json!(["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('w', function(k) return redis.call('SET', k[1], 'x') end)"]))
            .await
            .0,
        200
    );
    let before = digest(&redis);
    let writes: Vec<Vec<Value>> = [
        json!(["SET", "k", "w"]),
        json!(["sEt", "k", "w"]),
        json!(["DEL", "k"]),
        json!(["UNLINK", "k"]),
        json!(["EXPIRE", "k", 1]),
        json!(["PERSIST", "k"]),
        json!(["GETDEL", "k"]),
        json!(["GETEX", "k", "EX", 1]),
        json!(["RENAME", "k", "k2"]),
        json!(["COPY", "k", "k3"]),
        json!(["MOVE", "k", 1]),
        json!(["SWAPDB", 0, 1]),
        json!(["FLUSHDB"]),
        json!(["FLUSHALL"]),
        json!(["RESTORE", "k4", 0, "x"]),
        json!(["SORT", "l", "ALPHA", "STORE", "dst"]),
        json!(["GEORADIUS", "g", 15, 37, 200, "km", "STORE", "dst"]),
        json!(["BITFIELD", "bits", "SET", "u8", 0, 255]),
        json!(["LMOVE", "l", "l2", "LEFT", "RIGHT"]),
        json!(["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]),
        json!(["XGROUP", "CREATE", "s", "grp", "0"]),
        json!(["EVAL", "return redis.call('SET','k','w')", 0]),
        json!(["EVAL_RO", "return redis.call('SET','k','w')", 0]),
        json!(["EVALSHA", "0000000000000000000000000000000000000000", 0]),
        json!(["SCRIPT", "LOAD", "return 1"]),
        json!(["SCRIPT", "FLUSH"]),
        json!(["FCALL", "w", 1, "k"]),
        json!(["FCALL_RO", "w", 1, "k"]),
        json!(["FUNCTION", "FLUSH"]),
        json!(["FUNCTION", "DELETE", "lib"]),
        json!(["PUBLISH", "c", "m"]),
        json!(["CONFIG", "SET", "maxmemory", "1"]),
        json!(["CLIENT", "KILL", "TYPE", "normal"]),
        json!(["KEYS", "*"]),
        json!(["MULTI"]),
        json!(["SELECT", "1"]),
    ]
    .into_iter()
    .map(|v| v.as_array().unwrap().clone())
    .collect();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let attempts = std::cell::Cell::new(0);
    let refused = |what: String, status: u16, body: Option<Value>| {
        attempts.set(attempts.get() + 1);
        assert!(
            (400..500).contains(&status),
            "read-only {what} was not refused: {status} {body:?}"
        );
        if let Some(body) = body {
            assert!(body["error"].is_string(), "read-only {what}: {body}");
        }
    };
    for cmd in &writes {
        let args: Vec<String> = cmd.iter().map(text).collect();
        let body = Value::Array(cmd.clone()).to_string();
        let path = args.iter().map(|a| pct(a)).collect::<Vec<_>>().join("/");
        let name = &args[0];
        // POST / with the header, with _token, and asking for RESP2.
        let (status, json) = gw.post_as(RO_TOKEN, "/", Value::Array(cmd.clone())).await;
        refused(format!("POST / {name}"), status, Some(json));
        let resp = gw
            .http
            .post(format!("{}/?_token={RO_TOKEN}", gw.url))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        refused(format!("POST /?_token {name}"), status, resp.json().await.ok());
        let resp = gw
            .http
            .post(format!("{}/", gw.url))
            .bearer_auth(RO_TOKEN)
            .header("Upstash-Response-Format", "resp2")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        refused(format!("POST / resp2 {name}"), resp.status().as_u16(), None);
        // The path form: GET, HEAD, PUT and POST (the last argument as the body).
        for method in ["GET", "HEAD", "PUT"] {
            let resp = gw
                .http
                .request(
                    method.parse().unwrap(),
                    format!("{}/{path}?_token={RO_TOKEN}", gw.url),
                )
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let json = if method == "HEAD" {
                None
            } else {
                resp.json().await.ok()
            };
            refused(format!("{method} /{path}"), status, json);
        }
        if args.len() > 1 {
            let (init, last) = args.split_at(args.len() - 1);
            let resp = gw
                .http
                .post(format!(
                    "{}/{}",
                    gw.url,
                    init.iter().map(|a| pct(a)).collect::<Vec<_>>().join("/")
                ))
                .bearer_auth(RO_TOKEN)
                .body(last[0].clone())
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            refused(format!("POST /{path} (body)"), status, resp.json().await.ok());
        }
        // Batches: a pipeline answers 200 with the entry refused; a transaction is refused whole.
        let (status, json) = gw
            .post_as(
                RO_TOKEN,
                "/pipeline",
                json!([["GET", "k"], Value::Array(cmd.clone())]),
            )
            .await;
        assert_eq!(status, 200, "{json}");
        assert!(json[1]["error"].is_string(), "read-only /pipeline {name}: {json}");
        attempts.set(attempts.get() + 1);
        // (A read-only script that tries to write is queued, then fails when it runs.)
        let (status, json) = gw
            .post_as(
                RO_TOKEN,
                "/multi-exec",
                json!([["GET", "k"], Value::Array(cmd.clone())]),
            )
            .await;
        if status == 200 {
            assert!(
                json[1]["error"].is_string(),
                "read-only /multi-exec {name}: {json}"
            );
            attempts.set(attempts.get() + 1);
        } else {
            refused(format!("/multi-exec {name}"), status, Some(json));
        }
    }
    // The streams: MONITOR is refused; SUBSCRIBE (a read) is not a way to write.
    let resp = gw
        .http
        .get(format!("{}/monitor?_token={RO_TOKEN}", gw.url))
        .send()
        .await
        .unwrap();
    refused(
        "GET /monitor".into(),
        resp.status().as_u16(),
        resp.json().await.ok(),
    );
    assert_eq!(digest(&redis), before, "a read-only token changed the dataset");
    assert_eq!(
        gw.post_as(RO_TOKEN, "/", json!(["GET", "k"])).await,
        (200, json!({"result": "v"}))
    );
    // PFCOUNT is a read for Redis (flags readonly, may_replicate; ACL @read), so it is allowed,
    // although it may rewrite the HyperLogLog's cached cardinality: the count stays the same.
    let (status, count) = gw.post_as(RO_TOKEN, "/", json!(["PFCOUNT", "hll"])).await;
    assert_eq!((status, &count), (200, &json!({"result": 1})));
    eprintln!(
        "read-only: PFCOUNT allowed; dataset digest {} by it",
        if digest(&redis) == before {
            "unchanged"
        } else {
            "changed (HLL cache)"
        }
    );
    let attempts = attempts.get();
    eprintln!("read-only: {attempts} write attempts through every route, all refused; digest unchanged");
}

// ---------------------------------------------------------------------------------------
// Slowloris.
// ---------------------------------------------------------------------------------------

/// `RESTDIS_TEST_SLOWLORIS` slow connections (default 200), each sending one header byte every
/// 200 ms, do not stop a normal client from being served promptly over new connections; the
/// header read timeout closes every one of them (and an idle connection) on time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_cut_and_do_not_starve_others() {
    let count: usize = std::env::var("RESTDIS_TEST_SLOWLORIS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway_with_short_header_timeout(&redis, &dir).await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    let give_up = HEADER_READ_TIMEOUT + Duration::from_secs(4);
    let mut slow = Vec::new();
    for i in 0..=count {
        let addr = addr.clone();
        // The last one never sends anything at all (an idle connection).
        let idle = i == count;
        slow.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await.unwrap();
            let opened = Instant::now();
            let (mut rd, mut wr) = stream.into_split();
            let trickle = async move {
                if !idle {
                    let _ = wr
                        .write_all(b"GET /get/k HTTP/1.1\r\nHost: restdis\r\nX-Slow: ")
                        .await;
                    loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if wr.write_all(b"a").await.is_err() {
                            break;
                        }
                    }
                }
                std::future::pending::<()>().await;
            };
            let mut byte = [0u8; 1];
            tokio::select! {
                _ = trickle => unreachable!(),
                r = rd.read(&mut byte) => match r {
                    Ok(0) | Err(_) => Some(opened.elapsed()),
                    Ok(_) => panic!("the server answered a request head that never ended"),
                },
                _ = tokio::time::sleep(give_up) => None,
            }
        }));
    }
    // Meanwhile a normal client, on a new connection each time, is served promptly.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while started.elapsed() < HEADER_READ_TIMEOUT + Duration::from_millis(500) {
        let t = Instant::now();
        let resp = fresh
            .post(format!("{}/", gw.url))
            .bearer_auth(TOKEN)
            .body(r#"["INCR","normal"]"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        slowest = slowest.max(t.elapsed());
        served += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut closed_after = Vec::new();
    for (i, t) in slow.into_iter().enumerate() {
        let after = t
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("slow connection {i} was still open after {give_up:?}"));
        closed_after.push(after);
    }
    let earliest = closed_after.iter().min().unwrap();
    let latest = closed_after.iter().max().unwrap();
    eprintln!(
        "slowloris: {count} slow + 1 idle connections closed after {earliest:?}..{latest:?} \
         (header read timeout {HEADER_READ_TIMEOUT:?}); normal client: {served} requests, slowest {slowest:?}"
    );
    assert!(*earliest >= HEADER_READ_TIMEOUT - Duration::from_millis(100));
    assert!(*latest <= HEADER_READ_TIMEOUT + Duration::from_millis(1500));
    assert!(
        slowest < Duration::from_millis(500),
        "normal client took {slowest:?}"
    );
}

/// A client that sends a request head promptly and then its body slowly, or not at all
/// ("slow POST"), is answered with a JSON 408 and the connection closed once
/// `limits.body_read_timeout` has passed since the head, whether the body stalls or trickles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_bodies_get_a_json_408_in_bounded_time() {
    let redis = TestRedis::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restdis.toml");
    let body_timeout = Duration::from_secs(2);
    std::fs::write(
        &path,
        format!(
            "[limits]\nbody_read_timeout = \"{}ms\"\n",
            body_timeout.as_millis()
        ),
    )
    .unwrap();
    let mut cli = cli_for(&redis);
    cli.config = Some(path);
    let gw = Gateway::start_with(cli).await;
    let addr = gw.url.trim_start_matches("http://").to_string();
    let mut tasks = Vec::new();
    for trickle in [false, true] {
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await.unwrap();
            let (mut rd, mut wr) = stream.into_split();
            let head = format!(
                "POST / HTTP/1.1\r\nHost: restdis\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Length: 1000\r\n\r\n[\"PI"
            );
            wr.write_all(head.as_bytes()).await.unwrap();
            let opened = Instant::now();
            let writer = tokio::spawn(async move {
                if trickle {
                    loop {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if wr.write_all(b" ").await.is_err() {
                            return;
                        }
                    }
                }
                std::future::pending::<()>().await;
            });
            let outcome = tokio::time::timeout(Duration::from_secs(10), read_response(&mut rd, false))
                .await
                .unwrap_or(Outcome::Timeout);
            let elapsed = opened.elapsed();
            // After the answer the server closes the connection.
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(2), rd.read_to_end(&mut rest))
                .await
                .is_ok();
            writer.abort();
            (trickle, outcome, elapsed, closed)
        }));
    }
    for t in tasks {
        let (trickle, outcome, elapsed, closed) = t.await.unwrap();
        let what = if trickle {
            "a trickling body"
        } else {
            "a stalled body"
        };
        eprintln!(
            "{what}: {} after {elapsed:?}; closed after: {closed}",
            outcome.label()
        );
        assert!(
            meets(Expect::Status(408), &outcome, false),
            "{what}: {}",
            outcome.label()
        );
        assert!(
            elapsed >= body_timeout - Duration::from_millis(100)
                && elapsed <= body_timeout + Duration::from_millis(1500),
            "{what}: answered after {elapsed:?}"
        );
        assert!(closed, "{what}: the connection stayed open after the 408");
    }
    assert_eq!(gw.cmd(json!(["PING"])).await.0, 200);
}

// ---------------------------------------------------------------------------------------
// The real binary: memory under big requests, tokens and logs.
// ---------------------------------------------------------------------------------------

/// The binary running as a child, its stdout and stderr going to files.
struct Binary {
    child: Child,
    url: String,
    stdout: PathBuf,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stdout = dir.path().join("stdout");
        let stderr = dir.path().join("stderr");
        let mut cmd = std::process::Command::new(binary());
        for (k, _) in std::env::vars() {
            if k.starts_with("RESTDIS_") || k.starts_with("SRH_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "off"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let url = loop {
            let out = std::fs::read_to_string(&stdout).unwrap_or_default();
            if let Some(line) = out
                .lines()
                .find_map(|l| l.strip_prefix("UPSTASH_REDIS_REST_URL="))
            {
                break line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "restdis did not start: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Self {
            child,
            url,
            stdout,
            stderr,
            _dir: dir,
        }
    }

    /// `VmHWM` and `VmRSS` in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap()
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// SIGTERM, wait, and everything it printed.
    fn stop(mut self) -> String {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("restdis did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        format!(
            "{}{}",
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        )
    }
}

/// A 100,000-command pipeline and a 9 MiB argument get clear answers from the real binary,
/// and its peak memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_pipeline_and_big_argument_in_bounded_memory() {
    let redis = TestRedis::start();
    let child = Binary::start(&["--redis-url", &redis.url(), "--token", TOKEN, "--log", "warn"]);
    let http = reqwest::Client::new();
    let post = |path: &str, body: Vec<u8>, base64: bool| {
        let mut req = http
            .post(format!("{}{path}", child.url))
            .bearer_auth(TOKEN)
            .body(body);
        if base64 {
            req = req.header("Upstash-Encoding", "base64");
        }
        req.send()
    };
    let (hwm_idle, _) = child.memory_kib();

    let mut body = Vec::with_capacity(100_000 * 16);
    body.push(b'[');
    for i in 0..100_000 {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(br#"["INCR","c"]"#);
    }
    body.push(b']');
    let started = Instant::now();
    let resp = post("/pipeline", body, false).await.unwrap();
    assert_eq!(resp.status(), 200);
    let replies: Value = resp.json().await.unwrap();
    let replies = replies.as_array().unwrap();
    assert_eq!(replies.len(), 100_000);
    assert_eq!(replies[0], json!({"result": 1}));
    assert_eq!(replies[99_999], json!({"result": 100_000}));
    let pipeline_time = started.elapsed();

    let big = "x".repeat(9 * 1024 * 1024);
    let started = Instant::now();
    let resp = post("/", format!(r#"["SET","big","{big}"]"#).into_bytes(), false)
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"result": "OK"}));
    let resp = post("/", br#"["GET","big"]"#.to_vec(), false).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["result"].as_str().map(str::len), Some(big.len()));
    let resp = post("/", br#"["GET","big"]"#.to_vec(), true).await.unwrap();
    assert_eq!(resp.status(), 200);
    let got: Value = resp.json().await.unwrap();
    assert_eq!(got["result"].as_str().map(str::len), Some(big.len() / 3 * 4));
    let big_time = started.elapsed();

    // Three more rounds of both: the peak must not keep growing.
    let (hwm_once, _) = child.memory_kib();
    for _ in 0..3 {
        let resp = post("/", format!(r#"["SET","big","{big}"]"#).into_bytes(), false)
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let resp = post("/", br#"["GET","big"]"#.to_vec(), true).await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
    }
    let (hwm, rss) = child.memory_kib();
    eprintln!(
        "big requests: 100,000-command pipeline {pipeline_time:?}, 9 MiB SET + 2 GETs {big_time:?}; \
         VmHWM idle {} MiB, after one round {} MiB, after four {} MiB; VmRSS now {} MiB",
        hwm_idle / 1024,
        hwm_once / 1024,
        hwm / 1024,
        rss / 1024
    );
    assert!(hwm < 512 * 1024, "peak RSS {} MiB", hwm / 1024);
    assert!(
        hwm <= hwm_once + 64 * 1024,
        "peak RSS grew from {} to {} MiB over repeated rounds",
        hwm_once / 1024,
        hwm / 1024
    );
    child.stop();
}

/// Tokens, right or wrong, in the header or in `_token`, never reach the logs, even at
/// debug and trace level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_appear_in_logs() {
    let full = "log-test-full-token-7f3a9c";
    let ro = "log-test-ro-token-51be02";
    let wrong_header = "log-test-wrong-header-token-c0ffee";
    let wrong_query = "log-test-wrong-query-token-beef42";
    for level in ["debug", "trace"] {
        let mut redis = TestRedis::start();
        let child = Binary::start(&[
            "--redis-url",
            &redis.url(),
            "--token",
            full,
            "--read-only-token",
            ro,
            "--log",
            level,
            "--max-request-size",
            "1KiB",
        ]);
        let http = reqwest::Client::new();
        let url = child.url.clone();
        let send = |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status().as_u16() };
        assert_eq!(
            send(
                http.post(format!("{url}/"))
                    .bearer_auth(full)
                    .body(r#"["SET","k","v"]"#)
            )
            .await,
            200
        );
        assert_eq!(
            send(
                http.post(format!("{url}/"))
                    .bearer_auth(wrong_header)
                    .body(r#"["GET","k"]"#)
            )
            .await,
            401
        );
        assert_eq!(send(http.get(format!("{url}/get/k?_token={full}"))).await, 200);
        assert_eq!(
            send(http.get(format!("{url}/get/k?_token={wrong_query}"))).await,
            401
        );
        assert_eq!(send(http.get(format!("{url}/set/k/w?_token={ro}"))).await, 400);
        assert_eq!(
            send(
                http.post(format!("{url}/"))
                    .bearer_auth(ro)
                    .body(r#"["DEL","k"]"#)
            )
            .await,
            400
        );
        assert_eq!(
            send(
                http.post(format!("{url}/pipeline?_token={full}"))
                    .body(r#"[["GET","k"],["NOSUCH"]]"#)
            )
            .await,
            200
        );
        assert_eq!(
            send(http.post(format!("{url}/?_token={full}")).body(vec![b'x'; 4096])).await,
            413
        );
        assert_eq!(
            send(
                http.post(format!("{url}/"))
                    .header("Authorization", format!("Basic {wrong_header}"))
            )
            .await,
            401
        );
        // Malformed HTTP carrying the token: rejected by hyper before restdis sees it.
        let mut s = TcpStream::connect(url.trim_start_matches("http://"))
            .await
            .unwrap();
        s.write_all(
            format!("GET /get/k?_token={full} HTTP/9.9\r\nAuthorization: Bearer {wrong_header}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        // Redis failing under requests that carry the token (warnings are logged).
        redis.kill();
        assert_eq!(send(http.get(format!("{url}/get/k?_token={full}"))).await, 503);
        assert_eq!(
            send(
                http.post(format!("{url}/"))
                    .bearer_auth(full)
                    .body(r#"["GET","k"]"#)
            )
            .await,
            503
        );
        let log = child.stop();
        assert!(
            log.contains("restdis is serving"),
            "no log captured at {level}: {log}"
        );
        assert!(log.contains("shutting down"), "no shutdown log at {level}: {log}");
        for secret in [full, ro, wrong_header, wrong_query] {
            assert!(
                !log.contains(secret),
                "a token ({secret}) appears in the {level} log:\n{}",
                log.lines()
                    .filter(|l| l.contains(secret))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        eprintln!(
            "tokens: {level} log, {} lines, no token in it",
            log.lines().count()
        );
    }
}
