//! Replies out: Upstash JSON envelopes (`{"result": X}` / `{"error": "msg"}`), plain or with
//! every string base64-encoded, and the optional raw RESP2 format.
//!
//! The writer goes straight from `redis::Value` into the output buffer: no intermediate
//! `serde_json::Value`. Mapping (RESP2 talked to Redis): bulk and status strings become JSON
//! strings, integers exact JSON numbers, nil `null`, arrays arrays. A top-level error is the
//! `{"error"}` envelope; an error nested inside an array becomes its text as a string. With
//! base64, every string at every depth is standard padded base64 of the raw bytes, except a
//! top-level status `OK`, which stays `"OK"`. Error texts are never encoded.
//!
//! A single reply that is one large string ([`LARGE_VALUE`] bytes or more) is not copied into
//! a body buffer: [`single_owned`] hands back the value with the envelope that goes around it
//! ([`Encoded::Around`]), so the value's own buffer is sent as it is (plain printable ASCII) or
//! base64-encoded piece by piece ([`base64_piece`]) as it is sent. The bytes are the same.

use redis::{ServerError, Value};

/// The outcome of one command: a reply, or the error text to put in `{"error": ...}`.
pub type Reply = Result<Value, String>;

/// How strings in a JSON reply are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8 JSON strings; invalid UTF-8 bytes become U+FFFD (lossy, as Upstash documents).
    Plain,
    /// Standard padded base64 of the raw bytes (`Upstash-Encoding: base64`).
    Base64,
}

/// The response body format a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON envelopes with the given string encoding.
    Json(Encoding),
    /// Raw RESP2 bytes (`Upstash-Response-Format: resp2`).
    Resp2,
}

/// The exact text Redis sent for an error reply (`ERR ...`, `WRONGTYPE ...`, `NOSCRIPT ...`).
pub fn error_text(err: &ServerError) -> String {
    match err.details() {
        Some(detail) => format!("{} {}", err.code(), detail),
        None => err.code().to_string(),
    }
}

/// Turns a top-level error value into `Err(text)`; everything else is a reply.
pub fn into_reply(value: Value) -> Reply {
    match value {
        Value::ServerError(err) => Err(error_text(&err)),
        other => Ok(other),
    }
}

/// `{"result": X}` or `{"error": "msg"}` for one command.
pub fn single(reply: &Reply, encoding: Encoding) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint(reply));
    write_entry(&mut out, reply, encoding);
    out
}

/// A string value at least this large, alone in a reply, is sent without a copy.
pub const LARGE_VALUE: usize = 64 * 1024;

/// What goes before a string value in `{"result":"..."}`.
pub const RESULT_HEAD: &[u8] = b"{\"result\":\"";
/// What goes after it.
pub const RESULT_TAIL: &[u8] = b"\"}";

/// One command's JSON reply, as [`single_owned`] returns it.
#[derive(Debug, PartialEq, Eq)]
pub enum Encoded {
    /// The whole body.
    Whole(Vec<u8>),
    /// [`RESULT_HEAD`], then `value` (as it is, or base64-encoded when `base64`), then
    /// [`RESULT_TAIL`].
    Around {
        /// The raw value.
        value: Vec<u8>,
        /// Whether the value goes out base64-encoded.
        base64: bool,
    },
}

/// [`single`], taking the reply: a large string value that needs no escaping comes back as
/// it is, with its envelope ([`Encoded::Around`]); everything else as the whole body.
pub fn single_owned(reply: Reply, encoding: Encoding) -> Encoded {
    match reply {
        Ok(Value::BulkString(value))
            if value.len() >= LARGE_VALUE && (encoding == Encoding::Base64 || is_plain_ascii(&value)) =>
        {
            Encoded::Around {
                value,
                base64: encoding == Encoding::Base64,
            }
        }
        reply => Encoded::Whole(single(&reply, encoding)),
    }
}

/// Appends the standard padded base64 of `bytes` (SIMD where the CPU has it: `base64-simd`
/// picks AVX2, SSSE3 or NEON at run time). Pieces whose lengths (all but the last) are
/// multiples of 3 append up to the base64 of the whole.
pub fn base64_piece(out: &mut Vec<u8>, bytes: &[u8]) {
    base64_simd::STANDARD.encode_append(bytes, out);
}

/// `[{"result": X}, {"error": "msg"}, ...]` for a pipeline or transaction: one entry per
/// command, in order; a success has no `error` key and an error no `result` key.
pub fn batch(replies: &[Reply], encoding: Encoding) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + replies.iter().map(size_hint).sum::<usize>());
    out.push(b'[');
    for (i, reply) in replies.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_entry(&mut out, reply, encoding);
    }
    out.push(b']');
    out
}

/// A capacity that holds the usual reply without growing: the envelope, and a bulk string
/// at its base64 size (plain text is never longer, except for escapes).
fn size_hint(reply: &Reply) -> usize {
    match reply {
        Ok(Value::BulkString(b)) => 16 + b.len().div_ceil(3) * 4,
        Ok(Value::Array(items)) => 16 + items.len() * 24,
        Err(msg) => 16 + msg.len(),
        _ => 32,
    }
}

/// `{"error": "msg"}`: the body of every error response, whatever the status.
pub fn error_body(msg: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 16);
    out.extend_from_slice(b"{\"error\":");
    write_str(&mut out, msg);
    out.push(b'}');
    out
}

/// A JSON string literal (used for the welcome answer of `GET /`).
pub fn json_string(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    write_str(&mut out, text);
    out
}

/// The raw RESP2 bytes of a sequence of replies (one for a single command).
pub fn resp2(replies: &[Reply]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for reply in replies {
        match reply {
            Ok(v) => write_resp(&mut out, v),
            Err(msg) => write_resp_error(&mut out, msg),
        }
    }
    out
}

fn write_entry(out: &mut Vec<u8>, reply: &Reply, encoding: Encoding) {
    match reply {
        Ok(value) => {
            out.extend_from_slice(b"{\"result\":");
            write_value(out, value, encoding, true);
        }
        Err(msg) => {
            out.extend_from_slice(b"{\"error\":");
            write_str(out, msg);
        }
    }
    out.push(b'}');
}

/// Writes one reply value as JSON. `top` is true only for the value directly inside the
/// envelope (where a status `OK` may stay raw).
pub fn write_value(out: &mut Vec<u8>, value: &Value, encoding: Encoding, top: bool) {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Int(i) => write_int(out, *i),
        Value::BulkString(bytes) => write_bytes(out, bytes, encoding),
        Value::SimpleString(s) => write_bytes(out, s.as_bytes(), encoding),
        Value::Okay if top => out.extend_from_slice(b"\"OK\""),
        Value::Okay => write_bytes(out, b"OK", encoding),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            write_array(out, items.iter(), encoding)
        }
        Value::Map(pairs) => write_array(out, pairs.iter().flat_map(|(k, v)| [k, v]), encoding),
        Value::Attribute { data, .. } => write_value(out, data, encoding, top),
        Value::Double(d) => write_bytes(out, format_double(*d).as_bytes(), encoding),
        Value::Boolean(b) => write_int(out, i64::from(*b)),
        Value::VerbatimString { text, .. } => write_bytes(out, text.as_bytes(), encoding),
        Value::BigNumber(n) => write_bytes(out, n, encoding),
        Value::ServerError(err) => write_bytes(out, error_text(err).as_bytes(), encoding),
        // `Value` is non-exhaustive; anything new is written as nil rather than guessed at.
        #[allow(unreachable_patterns)]
        _ => out.extend_from_slice(b"null"),
    }
}

fn write_array<'a>(out: &mut Vec<u8>, items: impl Iterator<Item = &'a Value>, encoding: Encoding) {
    out.push(b'[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(out, item, encoding, false);
    }
    out.push(b']');
}

fn write_int(out: &mut Vec<u8>, i: i64) {
    out.extend_from_slice(itoa_buf(i).as_bytes());
}

fn write_bytes(out: &mut Vec<u8>, bytes: &[u8], encoding: Encoding) {
    match encoding {
        // Most values are plain printable ASCII: copy them without the UTF-8 and escape passes.
        Encoding::Plain if is_plain_ascii(bytes) => {
            out.reserve(bytes.len() + 2);
            out.push(b'"');
            out.extend_from_slice(bytes);
            out.push(b'"');
        }
        Encoding::Plain => write_str(out, &String::from_utf8_lossy(bytes)),
        Encoding::Base64 => {
            out.push(b'"');
            base64_piece(out, bytes);
            out.push(b'"');
        }
    }
}

/// Whether `bytes` is printable ASCII without `"` or `\`, so it can stand in a JSON string
/// as it is. Written as a reduction without early exit, which the compiler vectorises.
fn is_plain_ascii(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| {
        ok & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\')
    })
}

/// A JSON string literal with full escaping.
fn write_str(out: &mut Vec<u8>, text: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn format_double(d: f64) -> String {
    if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{d}")
    }
}

/// An `i64` formatted without allocation.
pub struct IntBuf {
    buf: [u8; 20],
    start: usize,
}

impl IntBuf {
    /// The digits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// The decimal text of `i`, on the stack.
pub fn itoa_buf(i: i64) -> IntBuf {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    IntBuf { buf, start: pos }
}

fn write_resp(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Nil => out.extend_from_slice(b"$-1\r\n"),
        Value::Int(i) => {
            out.push(b':');
            write_int(out, *i);
            out.extend_from_slice(b"\r\n");
        }
        Value::BulkString(b) => write_resp_bulk(out, b),
        Value::SimpleString(s) => {
            out.push(b'+');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Value::Okay => out.extend_from_slice(b"+OK\r\n"),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            out.push(b'*');
            write_int(out, items.len() as i64);
            out.extend_from_slice(b"\r\n");
            items.iter().for_each(|v| write_resp(out, v));
        }
        Value::Map(pairs) => {
            out.push(b'*');
            write_int(out, (pairs.len() * 2) as i64);
            out.extend_from_slice(b"\r\n");
            for (k, v) in pairs {
                write_resp(out, k);
                write_resp(out, v);
            }
        }
        Value::Attribute { data, .. } => write_resp(out, data),
        Value::Double(d) => write_resp_bulk(out, format_double(*d).as_bytes()),
        Value::Boolean(b) => write_resp(out, &Value::Int(i64::from(*b))),
        Value::VerbatimString { text, .. } => write_resp_bulk(out, text.as_bytes()),
        Value::BigNumber(n) => write_resp_bulk(out, n),
        Value::ServerError(err) => write_resp_error(out, &error_text(err)),
        #[allow(unreachable_patterns)]
        _ => out.extend_from_slice(b"$-1\r\n"),
    }
}

fn write_resp_bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    write_int(out, bytes.len() as i64);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn write_resp_error(out: &mut Vec<u8>, msg: &str) {
    out.push(b'-');
    // An error line cannot hold CR/LF; Redis's own never do, ours are written without them.
    out.extend(
        msg.bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    /// The body an [`Encoded`] stands for, the base64 form put together from pieces of
    /// `piece` raw bytes.
    fn assemble(encoded: Encoded, piece: usize) -> Vec<u8> {
        match encoded {
            Encoded::Whole(body) => body,
            Encoded::Around { value, base64 } => {
                let mut out = RESULT_HEAD.to_vec();
                if base64 {
                    for chunk in value.chunks(piece) {
                        base64_piece(&mut out, chunk);
                    }
                } else {
                    out.extend_from_slice(&value);
                }
                out.extend_from_slice(RESULT_TAIL);
                out
            }
        }
    }

    #[test]
    fn base64_pieces_agree_with_the_base64_crate() {
        use base64::Engine as _;
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 256) as u8).collect();
        for len in [
            0, 1, 2, 3, 4, 31, 32, 33, 47, 48, 49, 95, 96, 97, 1000, 4999, 5000,
        ] {
            let mut out = b"x".to_vec();
            base64_piece(&mut out, &data[..len]);
            let want = base64::engine::general_purpose::STANDARD.encode(&data[..len]);
            assert_eq!(&out[1..], want.as_bytes(), "{len} bytes");
        }
    }

    #[test]
    fn large_values_come_back_uncopied_and_assemble_to_the_same_bytes() {
        let ascii: Vec<u8> = (0..LARGE_VALUE + 7).map(|i| b'a' + (i % 26) as u8).collect();
        let mut quoted = ascii.clone();
        quoted[5] = b'"';
        let mut binary: Vec<u8> = (0..LARGE_VALUE + 2).map(|i| (i % 256) as u8).collect();
        binary[0] = 0xff;
        for value in [ascii.clone(), quoted, binary, ascii[..LARGE_VALUE - 1].to_vec()] {
            for encoding in [Encoding::Plain, Encoding::Base64] {
                let reply: Reply = Ok(Value::BulkString(value.clone()));
                let whole = single(&reply, encoding);
                let encoded = single_owned(reply, encoding);
                let around = matches!(encoded, Encoded::Around { .. });
                let expect_around =
                    value.len() >= LARGE_VALUE && (encoding == Encoding::Base64 || is_plain_ascii(&value));
                assert_eq!(around, expect_around, "{} bytes, {encoding:?}", value.len());
                assert_eq!(assemble(encoded, 3 * 1000), whole, "{encoding:?}");
            }
        }
        let small: Reply = Ok(Value::BulkString(b"abc".to_vec()));
        assert_eq!(
            single_owned(small.clone(), Encoding::Plain),
            Encoded::Whole(single(&small, Encoding::Plain))
        );
    }

    #[test]
    fn envelopes_plain() {
        assert_eq!(s(single(&Ok(Value::Okay), Encoding::Plain)), r#"{"result":"OK"}"#);
        assert_eq!(s(single(&Ok(Value::Nil), Encoding::Plain)), r#"{"result":null}"#);
        assert_eq!(
            s(single(&Ok(Value::Int(i64::MIN)), Encoding::Plain)),
            r#"{"result":-9223372036854775808}"#
        );
        assert_eq!(
            s(single(&Err("ERR x \"y\"".into()), Encoding::Plain)),
            r#"{"error":"ERR x \"y\""}"#
        );
        let bad = Value::BulkString(vec![b'a', 0xFF, b'\n']);
        assert_eq!(
            s(single(&Ok(bad), Encoding::Plain)),
            "{\"result\":\"a\u{FFFD}\\n\"}"
        );
    }

    #[test]
    fn base64_everywhere_but_top_level_ok() {
        let v = Value::Array(vec![
            Value::Okay,
            Value::SimpleString("PONG".into()),
            Value::BulkString(vec![]),
            Value::Int(3),
            Value::Nil,
        ]);
        assert_eq!(
            s(single(&Ok(v), Encoding::Base64)),
            r#"{"result":["T0s=","UE9ORw==","",3,null]}"#
        );
        assert_eq!(
            s(single(&Ok(Value::Okay), Encoding::Base64)),
            r#"{"result":"OK"}"#
        );
        assert_eq!(
            s(single(&Ok(Value::BulkString(b"bar".to_vec())), Encoding::Base64)),
            r#"{"result":"YmFy"}"#
        );
        assert_eq!(
            s(single(&Err("ERR e".into()), Encoding::Base64)),
            r#"{"error":"ERR e"}"#
        );
    }

    #[test]
    fn batch_key_shapes() {
        let out = batch(
            &[Ok(Value::Okay), Err("ERR no".into()), Ok(Value::Int(2))],
            Encoding::Plain,
        );
        assert_eq!(s(out), r#"[{"result":"OK"},{"error":"ERR no"},{"result":2}]"#);
    }

    #[test]
    fn resp2_bytes() {
        let out = resp2(&[
            Ok(Value::Array(vec![Value::BulkString(b"a".to_vec()), Value::Nil])),
            Err("ERR x".into()),
        ]);
        assert_eq!(out, b"*2\r\n$1\r\na\r\n$-1\r\n-ERR x\r\n");
    }
}
