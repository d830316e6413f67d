//! The checks behind restdis's fuzz targets, shared by the libFuzzer targets
//! (`fuzz_targets/*.rs`, run with `cargo fuzz` on nightly) and the stable `replay` binary.
//!
//! Each `check_*` takes arbitrary bytes, runs one part of restdis's pure protocol layer on
//! them, and panics if an invariant breaks. Beyond "does not panic", they check:
//!
//! - `path`: a parsed command is never empty; a `_token` query parameter never becomes a
//!   Redis argument; stream routes never yield empty channel names.
//! - `body`: only valid JSON is accepted; every valid JSON array of strings, numbers and
//!   booleans is accepted, with each string's exact bytes.
//! - `pipeline`: only valid JSON is accepted; one entry per element of the outer array.
//! - `encode`: every JSON envelope (plain and base64, single and batch) parses as JSON and has
//!   the right shape; RESP2 output is produced without panicking.
//! - `resp`: Redis replies in (`protocol::resp`): the scanner finds the same replies however the
//!   bytes are split into reads; a reply the scanner calls complete parses or is refused, never
//!   panics; a parsed reply equals what redis-rs's own parser makes of the same bytes.

use redis::{PushKind, Value, VerbatimFormat};
use restdis::protocol::encode::{self, Encoding, Reply};
use restdis::protocol::route::{classify, Route};
use restdis::protocol::resp::{self, Scanner};
use restdis::protocol::{body, path, Command};
use serde::de::IgnoredAny;

/// The target names, in the order `replay all` runs them.
pub const TARGETS: &[&str] = &["path", "body", "pipeline", "encode", "resp"];

/// Runs the named target's check on one input; `false` for an unknown name.
pub fn check(target: &str, data: &[u8]) -> bool {
    match target {
        "path" => check_path(data),
        "body" => check_body(data),
        "pipeline" => check_pipeline(data),
        "encode" => check_encode(data),
        "resp" => check_resp(data),
        _ => return false,
    }
    true
}

const SECRET: &str = "restdis-fuzz-secret-token";

/// Input: `<path>[?<query>][\n<body>]` (lossy UTF-8).
pub fn check_path(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (target, body) = text.split_once('\n').unwrap_or((&text, ""));
    let (raw_path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let route = classify(raw_path);
    assert!(!route.label().is_empty());
    match route {
        Route::Command(rest) => {
            if let Ok(cmd) = path::parse_command(rest, query, body.as_bytes()) {
                check_command(&cmd);
            }
            // The token is never an argument, wherever it sits in the query.
            let with_token = match query {
                Some(q) => format!("_token={SECRET}&{q}&_token={SECRET}"),
                None => format!("_token={SECRET}"),
            };
            if let Ok(cmd) = path::parse_command(rest, Some(&with_token), body.as_bytes()) {
                if !text.contains(SECRET) {
                    assert!(
                        cmd.args().iter().all(|a| a.as_slice() != SECRET.as_bytes()),
                        "the _token value became a Redis argument: {cmd:?}"
                    );
                }
            }
            assert_eq!(
                path::query_token(Some(&with_token)).as_deref(),
                Some(SECRET.as_bytes()),
                "the first _token is the token"
            );
        }
        Route::Subscribe(rest) | Route::PSubscribe(rest) => {
            assert!(path::segments(rest).iter().all(|s| !s.is_empty()));
        }
        Route::Root | Route::Pipeline | Route::MultiExec | Route::Monitor | Route::Console(_) => {}
    }
    let _ = path::query_args(query);
}

/// Input: the body of `POST /`.
pub fn check_body(data: &[u8]) {
    let parsed = body::parse_command(data);
    match &parsed {
        Ok(cmd) => {
            // Syntax only: numbers out of f64's range are still valid JSON.
            assert!(
                serde_json::from_slice::<IgnoredAny>(data).is_ok(),
                "accepted a body that is not valid JSON: {cmd:?}"
            );
            check_command(cmd);
        }
        Err(e) => assert!(e.0.starts_with("ERR "), "error text {:?}", e.0),
    }
    let json = serde_json::from_slice::<serde_json::Value>(data);
    // Every non-empty array of strings, numbers and booleans is a command, strings exact.
    if let Ok(serde_json::Value::Array(items)) = &json {
        let plain = !items.is_empty()
            && items.iter().all(|v| {
                matches!(
                    v,
                    serde_json::Value::String(_) | serde_json::Value::Number(_) | serde_json::Value::Bool(_)
                )
            });
        if plain {
            let cmd = parsed
                .as_ref()
                .unwrap_or_else(|e| panic!("refused a valid command body: {}", e.0));
            assert_eq!(cmd.args().len(), items.len());
            for (arg, item) in cmd.args().iter().zip(items) {
                match item {
                    serde_json::Value::String(s) => assert_eq!(arg.as_slice(), s.as_bytes()),
                    serde_json::Value::Bool(b) => assert_eq!(arg.as_slice(), b.to_string().as_bytes()),
                    _ => assert!(!arg.is_empty()),
                }
            }
        }
    }
}

/// Input: the body of `/pipeline` or `/multi-exec`.
pub fn check_pipeline(data: &[u8]) {
    let Ok(entries) = body::parse_batch(data) else {
        return;
    };
    assert!(!entries.is_empty());
    match serde_json::from_slice::<Vec<IgnoredAny>>(data) {
        Ok(outer) => assert_eq!(outer.len(), entries.len()),
        Err(e) => panic!("accepted a pipeline body that is not a JSON array ({e})"),
    }
    for entry in &entries {
        match entry {
            Ok(cmd) => check_command(cmd),
            Err(msg) => assert!(msg.starts_with("ERR "), "entry error {msg:?}"),
        }
    }
}

/// Input: decoded into up to 16 replies (values or error texts).
pub fn check_encode(data: &[u8]) {
    let mut input = Input(data);
    let mut replies: Vec<Reply> = Vec::new();
    while !input.is_empty() && replies.len() < 16 {
        if input.byte() % 8 == 0 {
            replies.push(Err(input.text()));
        } else {
            replies.push(Ok(value(&mut input, 0)));
        }
    }
    for encoding in [Encoding::Plain, Encoding::Base64] {
        for reply in &replies {
            let out = encode::single(reply, encoding);
            let json = parse_json(&out);
            let key = if reply.is_ok() { "result" } else { "error" };
            assert!(json.get(key).is_some(), "no {key} key in {json}");
            assert_eq!(json.as_object().map(|o| o.len()), Some(1), "{json}");
            if let Err(msg) = reply {
                assert_eq!(json["error"].as_str(), Some(msg.as_str()), "error text changed");
            }
        }
        let out = encode::batch(&replies, encoding);
        let json = parse_json(&out);
        assert_eq!(json.as_array().map(Vec::len), Some(replies.len()));
    }
    let _ = encode::resp2(&replies);
    let text = String::from_utf8_lossy(data);
    assert_eq!(
        parse_json(&encode::error_body(&text))["error"].as_str(),
        Some(&*text)
    );
    assert_eq!(parse_json(&encode::json_string(&text)).as_str(), Some(&*text));
}

/// Input: the bytes Redis would send; the first byte picks where a second read starts.
pub fn check_resp(data: &[u8]) {
    let whole = scan_all(data, &[data.len()]);
    let cut = data.first().map_or(0, |b| usize::from(*b) % (data.len() + 1));
    let split = scan_all(data, &[cut, data.len()]);
    assert_eq!(whole, split, "the replies depend on how the bytes were split");
    for (bytes, parsed) in &whole {
        if let (Some(ours), Ok(theirs)) = (parsed, redis::parse_redis_value(bytes)) {
            assert_eq!(ours, &theirs, "differs from redis-rs on {:?}", String::from_utf8_lossy(bytes));
        }
    }
}

/// Feeds `data` up to each of `ends` in turn and collects every complete reply (its bytes and
/// its parse, `None` if refused) until the scanner refuses the stream.
fn scan_all(data: &[u8], ends: &[usize]) -> Vec<(Vec<u8>, Option<Value>)> {
    let mut scanner = Scanner::default();
    let (mut buf, mut fed, mut out) = (Vec::new(), 0, Vec::new());
    for &end in ends {
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        loop {
            match scanner.scan(&buf) {
                Ok(Some(n)) => {
                    let bytes: Vec<u8> = buf.drain(..n).collect();
                    let parsed = resp::parse(&bytes).ok();
                    out.push((bytes, parsed));
                }
                Ok(None) => break,
                Err(_) => return out,
            }
        }
    }
    out
}

fn parse_json(out: &[u8]) -> serde_json::Value {
    serde_json::from_slice(out)
        .unwrap_or_else(|e| panic!("invalid JSON ({e}): {:?}", String::from_utf8_lossy(out)))
}

fn check_command(cmd: &Command) {
    assert!(!cmd.args().is_empty());
    assert_eq!(cmd.name(), cmd.args()[0].as_slice());
    if let Some(upper) = cmd.upper_name() {
        assert!(upper
            .as_str()
            .eq_ignore_ascii_case(&String::from_utf8_lossy(cmd.name())));
    }
    let _ = cmd.has_param("WITHTYPE");
}

/// A cursor over the fuzz input; reads past the end give zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        let n = (self.byte() as usize).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.byte()))
    }
}

/// Redis nests replies at most this deep (redis-rs refuses deeper ones), well under
/// serde_json's own limit of 128 when the output is read back.
const MAX_DEPTH: usize = 48;

/// A reply value from the input: the first byte picks the kind.
fn value(input: &mut Input<'_>, depth: usize) -> Value {
    let tag = input.byte();
    let leaf_only = depth >= MAX_DEPTH;
    let items = |input: &mut Input<'_>| -> Vec<Value> {
        let n = input.byte() % 6;
        (0..n).map(|_| value(input, depth + 1)).collect()
    };
    match tag % 16 {
        0 => Value::Nil,
        1 => Value::Int(input.u64() as i64),
        2 => Value::BulkString(input.bytes()),
        3 => Value::SimpleString(input.text()),
        4 => Value::Okay,
        5 if !leaf_only => Value::Array(items(input)),
        6 if !leaf_only => {
            let n = input.byte() % 4;
            Value::Map(
                (0..n)
                    .map(|_| (value(input, depth + 1), value(input, depth + 1)))
                    .collect(),
            )
        }
        7 if !leaf_only => Value::Set(items(input)),
        8 => Value::Double(f64::from_bits(input.u64())),
        9 => Value::Boolean(input.byte() % 2 == 1),
        10 => Value::VerbatimString {
            format: match input.byte() % 3 {
                0 => VerbatimFormat::Text,
                1 => VerbatimFormat::Markdown,
                _ => VerbatimFormat::Unknown(input.text()),
            },
            text: input.text(),
        },
        11 => {
            // Built through the parser, whichever type BigNumber has in this build.
            let digits: String = input.bytes().iter().map(|b| char::from(b'0' + b % 10)).collect();
            let digits = if digits.is_empty() { "0".into() } else { digits };
            redis::parse_redis_value(format!("({digits}\r\n").as_bytes()).unwrap_or(Value::Nil)
        }
        12 => {
            // ServerError has no public constructor: parse one. Its text is one line.
            let text: String = input
                .text()
                .chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .collect();
            let text = if text.trim().is_empty() {
                "ERR".into()
            } else {
                text
            };
            redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap_or(Value::Nil)
        }
        13 if !leaf_only => Value::Push {
            kind: PushKind::Message,
            data: items(input),
        },
        14 if !leaf_only => Value::Attribute {
            data: Box::new(value(input, depth + 1)),
            attributes: vec![(value(input, depth + 1), value(input, depth + 1))],
        },
        15 => Value::Int(if input.byte().is_multiple_of(2) {
            i64::MIN
        } else {
            i64::MAX
        }),
        _ => Value::BulkString(input.bytes()),
    }
}

/// Hand-written starting inputs for a target (also written out by `replay seeds` for
/// `cargo fuzz`).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text: &[&str] = match target {
        "path" => &[
            "/set/k/v",
            "/get/k?_token=abc",
            "//pipeline",
            "/pipeline/",
            "/multi-exec",
            "/monitor",
            "/subscribe/a/b",
            "/psubscribe/user:*",
            "/subscribe//x//",
            "/set/a%2Fb/1+2%20x?EX=100&NX\nbody bytes",
            "/set/k/%FF%00?_token=&_token",
            "/%zz/%/%%41",
            "/a?b=c&&d=&=e&_token=x%2By",
            "",
            "/",
            "///",
            "/set/k/?a=1&_token=t\n\u{0}\u{ff}",
            "/SHUTDOWN",
            "/scan/0/WITHTYPE",
            "/zadd/k/1/a?_token=t&_token=u",
        ],
        "body" => &[
            r#"["SET","k","v"]"#,
            r#"["SET","k",1.0,12345678901234567890123,-0.5e-3,true,false]"#,
            " [ \"set\" , \"a\\u0000b\\n\\\"\" , \"é\" ] ",
            r#"["set",null]"#,
            r#"["set",[1]]"#,
            r#"["set",{"a":1}]"#,
            "[]",
            "{}",
            "not json",
            r#"["a"] x"#,
            r#"["SET","k","\ud800"]"#,
            r#"["SET","k","\ud83d\ude00"]"#,
            r#"["\u0000"]"#,
            "[1e999999]",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
            r#"["GET","k\/v"]"#,
            r#"["a\tb","\u00e9"]"#,
        ],
        "pipeline" => &[
            r#"[["SET","a",1],[],"x",["GET","a"],["SET",null]]"#,
            r#"[["PING"]]"#,
            "[]",
            r#"{"a":1}"#,
            r#"[["MULTI"],["EXEC"]]"#,
            r#"[["SET","k","\ud800"],["PING"]]"#,
            r#"[["a",1.5e3,true],["b",false]]"#,
            "[[[[[[[[[[[[[[[[",
            r#"[["x"], ["y"] ] "#,
            r#"[1,"2",null,{},[]]"#,
        ],
        _ => &[],
    };
    let resp_seeds: &[&[u8]] = &[
        b"+OK\r\n",
        b"\x00+QUEUED\r\n:-42\r\n$-1\r\n*-1\r\n*0\r\n",
        b"\x07$5\r\nhe\r\no\r\n$0\r\n\r\n",
        b"\x03*3\r\n:1\r\n*2\r\n$1\r\nx\r\n*0\r\n$1\r\ny\r\n",
        b"-ERR unknown command 'caf\xc3'\r\n+caf\xc3\r\n",
        b"*2\r\n-WRONGTYPE no\r\n:9223372036854775807\r\n",
        b"$3\r\nabcd\r\n",
        b"*1000000000\r\n:1\r\n",
        b":+5\r\n:x\r\n",
        b"+a\rb\r\n",
    ];
    if target == "resp" {
        return resp_seeds.iter().map(|s| s.to_vec()).collect();
    }
    let mut seeds: Vec<Vec<u8>> = text.iter().map(|s| s.as_bytes().to_vec()).collect();
    if target == "encode" {
        seeds.extend([
            vec![],
            vec![0],
            vec![
                5, 5, 2, 3, b'a', 0xff, b'\n', 4, 0, 8, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1,
            ],
            vec![
                6, 3, 2, 1, b'k', 2, 1, b'v', 12, 5, b'E', b'R', b'R', b' ', b'x', 11, 3, 1, 2, 3,
            ],
            vec![
                8, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0, 8, 0xff, 0xf0, 0, 0, 0, 0, 0, 0, 8, 0x7f, 0xf8, 0, 0, 0, 0,
                0, 0,
            ],
            vec![
                10, 2, 3, b'x', b'y', b'z', 5, b'h', 0xc3, 0xa9, b'"', b'\\', 13, 2, 15, 0, 15, 1,
            ],
            vec![14, 2, 1, b'a', 0, 4, 7, 3, 9, 1, 9, 0, 3, 2, b'\r', b'\n'],
            [5u8, 1].repeat(60),
        ]);
    }
    seeds
}

/// A tiny deterministic generator for the stable smoke run (xorshift64*).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Fragments the mutator splices in: the characters that matter to the parsers.
const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"\"",
    b",",
    b":",
    b"\\",
    b"\\u",
    b"\\ud800",
    b"\\u0000",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"%",
    b"%2F",
    b"%FF",
    b"%00",
    b"/",
    b"?",
    b"&",
    b"=",
    b"_token=",
    b"+",
    b"\n",
    b"\r\n",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x82",
    b"\0",
    b"pipeline",
    b"subscribe/",
    b"WITHTYPE",
];

/// One random mutation (or several) of `input`, sometimes spliced with `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let pos = if out.is_empty() {
            0
        } else {
            rng.below(out.len() + 1)
        };
        match rng.below(7) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.next_u64() as u8;
            }
            2 if !out.is_empty() => {
                let end = (pos + 1 + rng.below(8)).min(out.len());
                out.drain(pos.min(end)..end);
            }
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                out.splice(pos..pos, t.iter().copied());
            }
            4 if !out.is_empty() => {
                let start = rng.below(out.len());
                let end = (start + 1 + rng.below(16)).min(out.len());
                let chunk = out[start..end].to_vec();
                for _ in 0..=rng.below(8) {
                    out.splice(pos..pos, chunk.iter().copied());
                }
            }
            5 if !other.is_empty() => {
                let start = rng.below(other.len());
                out.truncate(pos);
                out.extend_from_slice(&other[start..]);
            }
            _ => out.insert(pos, rng.next_u64() as u8),
        }
    }
    out.truncate(64 * 1024);
    out
}
