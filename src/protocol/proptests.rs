//! Property tests of the pure layer: replies encoded with base64 decode, exactly as the
//! official clients decode them, back to the original bytes; plain replies are always valid
//! JSON; the parsers never panic on any input; RESP2 replies read back whole however the
//! socket splits them.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use redis::Value;
use serde_json::Value as Json;

use super::encode::{self, Encoding};
use super::resp::{self, Scanner};
use super::{body, path, route};

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<i64>().prop_map(Value::Int),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::BulkString),
        "[ -~]{0,20}".prop_map(Value::SimpleString),
        Just(Value::Okay),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(Value::Array)
    })
}

/// What a client gets back after decoding: bytes for strings, numbers, nulls, arrays.
#[derive(Debug, PartialEq)]
enum Decoded {
    Null,
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Decoded>),
}

fn expected(v: &Value) -> Decoded {
    match v {
        Value::Nil => Decoded::Null,
        Value::Int(i) => Decoded::Int(*i),
        Value::BulkString(b) => Decoded::Bytes(b.clone()),
        Value::SimpleString(s) => Decoded::Bytes(s.as_bytes().to_vec()),
        Value::Okay => Decoded::Bytes(b"OK".to_vec()),
        Value::Array(items) => Decoded::List(items.iter().map(expected).collect()),
        other => panic!("not generated: {other:?}"),
    }
}

/// The clients' rule: a top-level "OK" is taken as is, every other string is base64.
fn client_decode(j: &Json, top: bool) -> Decoded {
    match j {
        Json::Null => Decoded::Null,
        Json::Number(n) => Decoded::Int(n.as_i64().expect("integers only")),
        Json::String(s) if top && s == "OK" => Decoded::Bytes(b"OK".to_vec()),
        Json::String(s) => Decoded::Bytes(STANDARD.decode(s).expect("strict, padded base64")),
        Json::Array(items) => Decoded::List(items.iter().map(|i| client_decode(i, false)).collect()),
        other => panic!("never emitted: {other}"),
    }
}

proptest! {
    #[test]
    fn base64_replies_decode_to_the_original_bytes(v in value()) {
        let body = encode::single(&Ok(v.clone()), Encoding::Base64);
        let json: Json = serde_json::from_slice(&body).expect("valid JSON");
        let result = json.get("result").expect("result key");
        prop_assert!(json.get("error").is_none());
        prop_assert_eq!(client_decode(result, true), expected(&v));
    }

    #[test]
    fn plain_replies_are_valid_json(v in value()) {
        let body = encode::batch(&[Ok(v), Err("ERR \"quoted\"\n".into())], Encoding::Plain);
        let json: Json = serde_json::from_slice(&body).expect("valid JSON");
        prop_assert_eq!(json.as_array().map(|a| a.len()), Some(2));
    }

    #[test]
    fn path_parsing_never_panics(p in "\\PC{0,64}", q in proptest::option::of("\\PC{0,32}"), b in proptest::collection::vec(any::<u8>(), 0..16)) {
        if let route::Route::Command(rest) = route::classify(&p) {
            if let Ok(cmd) = path::parse_command(rest, q.as_deref(), &b) {
                prop_assert!(!cmd.args().is_empty());
            }
        }
        let _ = path::query_token(q.as_deref());
    }

    #[test]
    fn body_parsing_never_panics(b in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = body::parse_command(&b);
        let _ = body::parse_batch(&b);
    }

    #[test]
    fn json_bodies_round_trip_strings(args in proptest::collection::vec("\\PC{0,12}", 1..6)) {
        let text = serde_json::to_vec(&args).unwrap();
        let cmd = body::parse_command(&text).unwrap();
        let got: Vec<String> = cmd.args().iter().map(|a| String::from_utf8(a.clone()).unwrap()).collect();
        prop_assert_eq!(got, args);
    }
}

proptest! {
    /// The hand-written fast path and serde_json agree on every body: same commands, or both
    /// refuse.
    #[test]
    fn fast_and_serde_parsers_agree(parts in proptest::collection::vec(prop_oneof![
        "\\PC{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?",
        Just("true".to_string()), Just("null".to_string()), Just("01".to_string()), Just("1.".to_string()),
        Just("\"a\\u0041\"".to_string()), Just("[]".to_string()),
    ], 0..5), ws in "[ \t\n]{0,2}") {
        let body = format!("{ws}[{ws}{}{ws}]{ws}", parts.join(&format!("{ws},{ws}")));
        let via_serde = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(&body).ok().map(|items| {
            items.iter().map(|r| r.get().to_string()).collect::<Vec<_>>()
        });
        let parsed = body::parse_command(body.as_bytes());
        if via_serde.is_none() {
            prop_assert!(parsed.is_err(), "serde refuses {body:?} but restdis accepted it");
        }
        if let Ok(cmd) = parsed {
            // Every argument must equal what serde makes of it.
            let expected: Vec<Vec<u8>> = via_serde.unwrap().iter().map(|raw| {
                if raw.starts_with('"') { serde_json::from_str::<String>(raw).unwrap().into_bytes() } else { raw.as_bytes().to_vec() }
            }).collect();
            prop_assert_eq!(cmd.args().to_vec(), expected);
        }
        let batch = format!("[{body},{body}]");
        let b = body::parse_batch(batch.as_bytes());
        if let (Ok(entries), Ok(cmd)) = (b, body::parse_command(body.as_bytes())) {
            prop_assert_eq!(entries.len(), 2);
            prop_assert_eq!(entries[0].as_ref().unwrap(), &cmd);
        }
    }
}

/// A status string "OK" reads back as `Value::Okay`, as redis-rs reads it.
fn normalized(v: Value) -> Value {
    match v {
        Value::SimpleString(s) if s == "OK" => Value::Okay,
        Value::Array(items) => Value::Array(items.into_iter().map(normalized).collect()),
        other => other,
    }
}

proptest! {
    /// Replies written back to back and cut into arbitrary reads come out whole, in order,
    /// equal to what was sent and to what redis-rs's own parser makes of each.
    #[test]
    fn resp_replies_survive_any_split(
        values in proptest::collection::vec(value(), 1..8),
        cuts in proptest::collection::vec(1usize..64, 0..40),
    ) {
        let replies: Vec<_> = values.iter().cloned().map(Ok).collect();
        let wire = encode::resp2(&replies);
        let mut scanner = Scanner::default();
        let (mut buf, mut got, mut fed) = (Vec::new(), Vec::new(), 0);
        let mut cuts = cuts.into_iter();
        while fed < wire.len() {
            let n = cuts.next().unwrap_or(wire.len()).min(wire.len() - fed);
            buf.extend_from_slice(&wire[fed..fed + n]);
            fed += n;
            while let Some(end) = scanner.scan(&buf).expect("valid RESP2") {
                let value = resp::parse(&buf[..end]).expect("complete reply");
                prop_assert_eq!(&value, &redis::parse_redis_value(&buf[..end]).expect("redis-rs parses it"));
                got.push(value);
                buf.drain(..end);
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, values.into_iter().map(normalized).collect::<Vec<_>>());
    }

    /// Arbitrary bytes never make the scanner or the parser panic.
    #[test]
    fn resp_scanner_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut scanner = Scanner::default();
        if let Ok(Some(end)) = scanner.scan(&bytes) {
            let _ = resp::parse(&bytes[..end]);
        }
        let _ = resp::parse(&bytes);
    }
}
