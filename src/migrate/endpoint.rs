//! A source or destination of `restdis migrate`: a Redis (one pipelined [`Wire`]) or an
//! Upstash-style REST endpoint (restdis itself, or Upstash), behind one call: run a batch of
//! commands in order and get one [`Reply`] per command.
//!
//! REST is binary-safe both ways. Reads ask for `Upstash-Encoding: base64`, so every string
//! in a reply arrives as base64 of its raw bytes (a top-level status `OK` stays `"OK"`).
//! Writes whose arguments are all UTF-8 go in `/pipeline` JSON bodies (JSON strings carry
//! UTF-8 text only); a command with any other bytes goes alone, in the path form: arguments
//! percent-encoded in the path, its largest argument as the raw request body, and the short
//! ASCII arguments after it (`REPLACE`, `ABSTTL`) as query words, which restdis appends
//! after the body (docs/protocol.md §2).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::{percent_encode, NON_ALPHANUMERIC};
use redis::{IntoConnectionInfo, Value};

use crate::backend::wire::{Wire, WireError, WireOwner};
use crate::protocol::encode::error_text;
use crate::protocol::Command;

/// One reply, the same whichever side answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Null.
    Nil,
    /// An integer.
    Int(i64),
    /// A string (bulk or status), raw bytes.
    Bytes(Vec<u8>),
    /// An array.
    Array(Vec<Reply>),
    /// An error reply's text.
    Error(String),
}

impl Reply {
    /// The bytes of a string reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// An integer reply, or a string holding one.
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            Reply::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
            _ => None,
        }
    }

    /// The text of an error reply.
    pub fn error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }

    fn from_value(value: Value) -> Self {
        match value {
            Value::Nil => Reply::Nil,
            Value::Int(i) => Reply::Int(i),
            Value::BulkString(b) => Reply::Bytes(b),
            Value::SimpleString(s) => Reply::Bytes(s.into_bytes()),
            Value::Okay => Reply::Bytes(b"OK".to_vec()),
            Value::Array(items) | Value::Set(items) => {
                Reply::Array(items.into_iter().map(Reply::from_value).collect())
            }
            Value::Map(pairs) => Reply::Array(
                pairs
                    .into_iter()
                    .flat_map(|(k, v)| [Reply::from_value(k), Reply::from_value(v)])
                    .collect(),
            ),
            Value::Double(d) => Reply::Bytes(d.to_string().into_bytes()),
            Value::Boolean(b) => Reply::Int(i64::from(b)),
            Value::ServerError(e) => Reply::Error(error_text(&e)),
            other => Reply::Error(format!("unexpected reply {other:?}")),
        }
    }

    /// A JSON reply of a base64-encoding REST endpoint.
    fn from_json(json: serde_json::Value) -> Self {
        use serde_json::Value as J;
        match json {
            J::Null => Reply::Nil,
            J::Bool(b) => Reply::Int(i64::from(b)),
            J::Number(n) => n
                .as_i64()
                .map(Reply::Int)
                .unwrap_or_else(|| Reply::Bytes(n.to_string().into_bytes())),
            // Every string is base64, except a top-level status OK (not valid base64).
            J::String(s) => Reply::Bytes(STANDARD.decode(&s).unwrap_or_else(|_| s.into_bytes())),
            J::Array(items) => Reply::Array(items.into_iter().map(Reply::from_json).collect()),
            J::Object(_) => Reply::Error("unexpected JSON object in a reply".into()),
        }
    }

    /// One `{"result": ...}` / `{"error": ...}` envelope.
    fn from_envelope(json: serde_json::Value) -> Result<Self, String> {
        match json {
            serde_json::Value::Object(mut map) => {
                if let Some(e) = map.remove("error") {
                    Ok(Reply::Error(e.as_str().unwrap_or("error").to_string()))
                } else if let Some(r) = map.remove("result") {
                    Ok(Reply::from_json(r))
                } else {
                    Err("a reply without result or error".into())
                }
            }
            other => Err(format!("unexpected reply {other}")),
        }
    }
}

/// A source or destination.
pub enum Endpoint {
    /// A Redis, over one pipelined connection.
    Redis(WireOwner),
    /// An Upstash-style REST endpoint.
    Rest(Rest),
}

/// A REST endpoint: base URL, token, an HTTP client.
pub struct Rest {
    base: String,
    token: String,
    http: reqwest::Client,
    max_request: usize,
}

/// What kind of URL an endpoint is, checked before anything connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `redis://`, `rediss://`, `unix://`.
    Redis(String),
    /// `http://`, `https://`.
    Rest(String),
}

/// Checks a `--from`/`--to` URL: its scheme, and that a Redis URL parses.
pub fn parse_target(flag: &str, url: &str) -> Result<Target, String> {
    let scheme = url.split("://").next().unwrap_or("").to_ascii_lowercase();
    match scheme.as_str() {
        "redis" | "rediss" | "unix" => {
            url.into_connection_info()
                .map_err(|e| format!("{flag}: invalid Redis URL: {e}"))?;
            Ok(Target::Redis(url.to_string()))
        }
        "http" | "https" => Ok(Target::Rest(url.trim_end_matches('/').to_string())),
        "redis+cluster" | "redis+sentinel" | "rediss+cluster" | "rediss+sentinel" => Err(format!(
            "{flag}: {scheme}:// is not supported yet (restdis speaks to one Redis); give the URL of one primary"
        )),
        _ => Err(format!(
            "{flag}: '{}' is not a redis://, rediss://, unix://, http:// or https:// URL",
            redact(url)
        )),
    }
}

/// The URL without a password or token in it (for messages and the checkpoint).
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

impl Endpoint {
    /// Connects to a Redis target (selecting `db` when given) or sets up a REST client.
    pub async fn open(
        target: &Target,
        token: Option<&str>,
        db: Option<i64>,
        max_request: usize,
    ) -> Result<Self, String> {
        match target {
            Target::Redis(url) => {
                let mut info = url.as_str().into_connection_info().map_err(|e| e.to_string())?;
                if let Some(db) = db {
                    let settings = info.redis_settings().clone().set_db(db);
                    info = info.set_redis_settings(settings);
                }
                let owner = Wire::connect(&info, Duration::from_secs(10), Duration::from_secs(300))
                    .await
                    .map_err(|e| format!("cannot connect to {}: {e}", redact(url)))?;
                Ok(Endpoint::Redis(owner))
            }
            Target::Rest(base) => {
                let token = token.ok_or_else(|| format!("{base} needs a token"))?;
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(300))
                    .build()
                    .map_err(|e| e.to_string())?;
                let rest = Rest {
                    base: base.clone(),
                    token: token.to_string(),
                    http,
                    max_request,
                };
                // One PING: a wrong token or URL fails here, with one line.
                let reply = rest.run(&[Command::internal(&["PING"])]).await?;
                if let Some(Reply::Error(e)) = reply.first() {
                    return Err(format!("{base}: {e}"));
                }
                Ok(Endpoint::Rest(rest))
            }
        }
    }

    /// Whether this is a REST endpoint.
    pub fn is_rest(&self) -> bool {
        matches!(self, Endpoint::Rest(_))
    }

    /// Runs `cmds` in order; one reply each. `Err` when the transport failed (then any of
    /// them may or may not have run).
    pub async fn run(&self, cmds: &[Command]) -> Result<Vec<Reply>, String> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            Endpoint::Redis(owner) => wire_run(owner.wire(), cmds).await,
            Endpoint::Rest(rest) => rest.run(cmds).await,
        }
    }
}

async fn wire_run(wire: &Wire, cmds: &[Command]) -> Result<Vec<Reply>, String> {
    match wire.send(cmds).await {
        Ok(values) => Ok(values.into_iter().map(Reply::from_value).collect()),
        Err(WireError::Timeout) => Err("Redis did not answer in time".into()),
        Err(WireError::Closed(why)) => Err(format!("Redis connection lost: {why}")),
    }
}

impl Rest {
    async fn run(&self, cmds: &[Command]) -> Result<Vec<Reply>, String> {
        let mut out = Vec::with_capacity(cmds.len());
        let mut i = 0;
        while i < cmds.len() {
            if !is_text(&cmds[i]) {
                out.push(self.path_form(&cmds[i]).await?);
                i += 1;
                continue;
            }
            let mut body = b"[".to_vec();
            let start = i;
            while i < cmds.len() && is_text(&cmds[i]) {
                let mut one = Vec::new();
                json_command(&mut one, &cmds[i]);
                if i > start && body.len() + one.len() + 1 > self.max_request {
                    break;
                }
                if i > start {
                    body.push(b',');
                }
                body.extend_from_slice(&one);
                i += 1;
            }
            body.push(b']');
            out.extend(self.pipeline(body, i - start).await?);
        }
        Ok(out)
    }

    async fn pipeline(&self, body: Vec<u8>, n: usize) -> Result<Vec<Reply>, String> {
        let json = self.post(format!("{}/pipeline", self.base), body).await?;
        let serde_json::Value::Array(items) = json else {
            return Err(format!("{}/pipeline: {}", self.base, envelope_error(json)));
        };
        if items.len() != n {
            return Err(format!(
                "{}/pipeline: {} replies for {n} commands",
                self.base,
                items.len()
            ));
        }
        items.into_iter().map(Reply::from_envelope).collect()
    }

    /// One command in the path form (for arguments that are not UTF-8).
    async fn path_form(&self, cmd: &Command) -> Result<Reply, String> {
        let args = cmd.args();
        let (body_at, tail) = body_argument(args);
        let mut url = self.base.clone();
        for a in &args[..body_at] {
            url.push('/');
            url.extend(percent_encode(a, NON_ALPHANUMERIC));
        }
        let body = args[body_at].clone();
        if body.is_empty() {
            // An empty body is no argument: name it in the path (one trailing slash is dropped).
            url.push_str("//");
        }
        if !tail.is_empty() {
            url.push('?');
            let words: Vec<String> = tail
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            url.push_str(&words.join("&"));
        }
        Reply::from_envelope(self.post(url, body).await?)
    }

    async fn post(&self, url: String, body: Vec<u8>) -> Result<serde_json::Value, String> {
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header("Upstash-Encoding", "base64")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.base))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("{}: {e}", self.base))?;
        serde_json::from_slice(&bytes).map_err(|_| {
            format!(
                "{}: HTTP {status}: {}",
                self.base,
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            )
        })
    }
}

fn envelope_error(json: serde_json::Value) -> String {
    match json.get("error").and_then(|e| e.as_str()) {
        Some(e) => e.to_string(),
        None => format!("unexpected reply {json}"),
    }
}

/// Whether every argument is UTF-8 (so the command can go in a JSON body).
fn is_text(cmd: &Command) -> bool {
    cmd.args().iter().all(|a| std::str::from_utf8(a).is_ok())
}

fn json_command(out: &mut Vec<u8>, cmd: &Command) {
    out.push(b'[');
    for (i, a) in cmd.args().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Checked by `is_text`; serializing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, std::str::from_utf8(a).unwrap_or(""));
    }
    out.push(b']');
}

/// Which argument of a path-form command travels as the body: the last one, or an earlier
/// one when only short ASCII words follow it (they go in the query, after the body).
fn body_argument(args: &[Vec<u8>]) -> (usize, &[Vec<u8>]) {
    let last = args.len() - 1;
    let word = |a: &Vec<u8>| !a.is_empty() && a.len() <= 16 && a.iter().all(u8::is_ascii_alphanumeric);
    let mut at = last;
    while at > 1 && word(&args[at]) && args[at] != b"_token" {
        at -= 1;
    }
    if at >= 1 && args[at].len() > 64 {
        (at, &args[at + 1..])
    } else {
        (last, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn restore_payload_is_the_body() {
        let payload = vec![0xffu8; 100];
        let a = args(&[b"RESTORE", b"k", b"0", &payload, b"REPLACE", b"ABSTTL"]);
        let (at, tail) = body_argument(&a);
        assert_eq!(at, 3);
        assert_eq!(tail.len(), 2);
        let a = args(&[b"SET", b"k", b"\xff"]);
        assert_eq!(body_argument(&a), (2, &[][..]));
    }

    #[test]
    fn targets() {
        assert!(parse_target("--from", "redis://127.0.0.1:6379/2").is_ok());
        assert!(matches!(
            parse_target("--to", "https://x.upstash.io/"),
            Ok(Target::Rest(u)) if u == "https://x.upstash.io"
        ));
        let e = parse_target("--from", "redis+cluster://h:1").unwrap_err();
        assert!(e.contains("not supported yet"), "{e}");
        assert!(parse_target("--from", "ftp://h").is_err());
        assert_eq!(redact("redis://u:pw@h:1/0"), "redis://***@h:1/0");
    }

    #[test]
    fn base64_replies() {
        let j = serde_json::json!({"result": ["AP8=", 3, null, "OK"]});
        assert_eq!(
            Reply::from_envelope(j).unwrap(),
            Reply::Array(vec![
                Reply::Bytes(vec![0, 255]),
                Reply::Int(3),
                Reply::Nil,
                Reply::Bytes(b"OK".to_vec())
            ])
        );
        let j = serde_json::json!({"result": "OK"});
        assert_eq!(Reply::from_envelope(j).unwrap(), Reply::Bytes(b"OK".to_vec()));
    }
}
