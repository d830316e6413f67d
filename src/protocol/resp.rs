//! RESP2, the protocol spoken to Redis: commands out ([`encode_command`]) and replies in
//! ([`Scanner`] finds where a reply ends, [`parse`] turns it into a `redis::Value`).
//!
//! Replies are found in two steps so that a large reply arriving in many reads costs linear
//! time: the [`Scanner`] walks element headers and skips bulk payloads by their length,
//! remembering where it stopped, and only a complete reply is parsed. Redis is trusted to
//! speak RESP2, but nothing it sends can make this code panic or allocate more than the bytes
//! received: a malformed reply is an error that ends the connection.

use redis::Value;

/// Redis sent something that is not RESP2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RespError(pub &'static str);

impl std::fmt::Display for RespError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed reply from Redis: {}", self.0)
    }
}

/// Appends one command as a RESP2 array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    let mut num = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(num.format(args.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in args {
        let arg = arg.as_ref();
        out.push(b'$');
        out.extend_from_slice(num.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Finds the end of the next reply in a buffer that grows between calls. Keep calling
/// [`scan`](Self::scan) with the same (grown) buffer until it answers `Some(end)`; then the
/// reply is `buf[..end]` and the scanner is ready for the next one (positions restart at 0,
/// so the caller removes those bytes first).
#[derive(Debug, Default)]
pub struct Scanner {
    /// Where the next element header starts.
    pos: usize,
    /// Elements still expected by each open array, innermost last.
    open: Vec<u64>,
}

impl Scanner {
    /// `Ok(Some(end))` when a whole reply is in `buf`, `Ok(None)` when more bytes are needed.
    pub fn scan(&mut self, buf: &[u8]) -> Result<Option<usize>, RespError> {
        loop {
            let Some((kind, line, next)) = header(buf, self.pos)? else {
                return Ok(None);
            };
            match kind {
                b'+' | b'-' | b':' => self.pos = next,
                b'$' => match length(line)? {
                    None => self.pos = next,
                    Some(len) => {
                        let end = next.checked_add(len).and_then(|e| e.checked_add(2));
                        let end = end.ok_or(RespError("bulk length overflows"))?;
                        if buf.len() < end {
                            return Ok(None);
                        }
                        if &buf[end - 2..end] != b"\r\n" {
                            return Err(RespError("bulk string not followed by CRLF"));
                        }
                        self.pos = end;
                    }
                },
                b'*' => {
                    self.pos = next;
                    if let Some(n) = length(line)?.filter(|n| *n > 0) {
                        self.open.push(n as u64);
                        continue;
                    }
                }
                _ => return Err(RespError("unknown reply type")),
            }
            // One element is complete: count it against the arrays it closes.
            loop {
                match self.open.last_mut() {
                    None => {
                        let end = self.pos;
                        self.pos = 0;
                        return Ok(Some(end));
                    }
                    Some(left) if *left > 1 => {
                        *left -= 1;
                        break;
                    }
                    Some(_) => {
                        self.open.pop();
                    }
                }
            }
        }
    }
}

/// An element header: its type byte, the rest of its line, and where the next element starts.
type Header<'a> = (u8, &'a [u8], usize);

/// The element header at `pos`; `None` when the line is not complete yet.
fn header(buf: &[u8], pos: usize) -> Result<Option<Header<'_>>, RespError> {
    let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let Some(cr) = memchr::memchr(b'\r', rest) else {
        return Ok(None);
    };
    match rest.get(cr + 1) {
        None => Ok(None),
        Some(_) if cr == 0 => Err(RespError("a line without a reply type")),
        Some(b'\n') => Ok(Some((rest[0], &rest[1..cr], pos + cr + 2))),
        Some(_) => Err(RespError("CR not followed by LF")),
    }
}

/// The length of a bulk string or array: `None` for `-1` (nil).
fn length(line: &[u8]) -> Result<Option<usize>, RespError> {
    if line == b"-1" {
        return Ok(None);
    }
    parse_usize(line).map(Some).ok_or(RespError("bad length"))
}

fn parse_usize(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    digits.iter().try_fold(0usize, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + usize::from(d - b'0'))
    })
}

/// When `buf` starts with the complete header of a bulk string (a top-level reply, since a
/// reply buffer starts at a reply boundary): the header's length and the payload's length
/// (without its CRLF). `None` for anything else, a nil bulk string included.
pub fn bulk_header(buf: &[u8]) -> Option<(usize, usize)> {
    if buf.first() != Some(&b'$') {
        return None;
    }
    let (_, line, next) = header(buf, 0).ok()??;
    let len = length(line).ok()??;
    Some((next, len))
}

/// Parses one complete reply (as delimited by the [`Scanner`]).
pub fn parse(buf: &[u8]) -> Result<Value, RespError> {
    let mut pos = 0;
    let value = parse_at(buf, &mut pos)?;
    if pos == buf.len() {
        Ok(value)
    } else {
        Err(RespError("trailing bytes after a reply"))
    }
}

fn parse_at(buf: &[u8], pos: &mut usize) -> Result<Value, RespError> {
    let start = *pos;
    let (kind, line, next) = header(buf, start)?.ok_or(RespError("truncated reply"))?;
    *pos = next;
    match kind {
        b'+' if line == b"OK" => Ok(Value::Okay),
        b'+' => Ok(Value::SimpleString(String::from_utf8_lossy(line).into_owned())),
        b':' => std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Value::Int)
            .ok_or(RespError("bad integer")),
        // Errors are rare; redis-rs builds its `ServerError` (code, detail) from the line.
        b'-' => redis::parse_redis_value(&buf[start..next]).map_err(|_| RespError("bad error line")),
        b'$' => match length(line)? {
            None => Ok(Value::Nil),
            Some(len) => {
                let data = buf
                    .get(next..next + len)
                    .ok_or(RespError("truncated bulk string"))?;
                *pos = next + len + 2;
                Ok(Value::BulkString(data.to_vec()))
            }
        },
        b'*' => match length(line)? {
            None => Ok(Value::Nil),
            Some(n) => {
                // Every element takes at least 3 bytes, so this never over-allocates.
                let mut items = Vec::with_capacity(n.min((buf.len() - next) / 3));
                for _ in 0..n {
                    items.push(parse_at(buf, pos)?);
                }
                Ok(Value::Array(items))
            }
        },
        _ => Err(RespError("unknown reply type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_all(bytes: &[u8]) -> Vec<Value> {
        let mut scanner = Scanner::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        // Feed one byte at a time: every split point must work.
        for b in bytes {
            buf.push(*b);
            while let Some(end) = scanner.scan(&buf).unwrap() {
                out.push(parse(&buf[..end]).unwrap());
                buf.drain(..end);
            }
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        out
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode_command(&mut out, &[b"GET".as_slice(), b"k"]);
        encode_command(&mut out, &[b"SET".to_vec(), b"".to_vec(), b"a\r\nb".to_vec()]);
        assert_eq!(
            out,
            b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$0\r\n\r\n$4\r\na\r\nb\r\n"
        );
    }

    #[test]
    fn scans_and_parses_every_reply_type_at_every_split() {
        let wire = b"+OK\r\n+QUEUED\r\n:-42\r\n$-1\r\n$0\r\n\r\n$4\r\na\r\nb\r\n*-1\r\n*0\r\n\
            *3\r\n:1\r\n*2\r\n$1\r\nx\r\n*0\r\n$1\r\ny\r\n-ERR bad thing\r\n*1\r\n-WRONGTYPE no\r\n";
        let values = scan_all(wire);
        assert_eq!(values.len(), 11);
        assert_eq!(values[0], Value::Okay);
        assert_eq!(values[1], Value::SimpleString("QUEUED".into()));
        assert_eq!(values[2], Value::Int(-42));
        assert_eq!(values[3], Value::Nil);
        assert_eq!(values[4], Value::BulkString(vec![]));
        assert_eq!(values[5], Value::BulkString(b"a\r\nb".to_vec()));
        assert_eq!(values[6], Value::Nil);
        assert_eq!(values[7], Value::Array(vec![]));
        assert_eq!(
            values[8],
            Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![Value::BulkString(b"x".to_vec()), Value::Array(vec![])]),
                Value::BulkString(b"y".to_vec()),
            ])
        );
        let Value::ServerError(err) = &values[9] else {
            panic!("{:?}", values[9])
        };
        assert_eq!((err.code(), err.details()), ("ERR", Some("bad thing")));
        let Value::Array(items) = &values[10] else {
            panic!("{:?}", values[10])
        };
        assert!(matches!(&items[0], Value::ServerError(e) if e.code() == "WRONGTYPE"));
    }

    #[test]
    fn agrees_with_redis_rs_on_odd_lines() {
        for wire in [
            &b"+caf\xc3\r\n"[..],
            b"-ERR unknown command 'caf\xc3'\r\n",
            b":0\r\n",
        ] {
            let mut scanner = Scanner::default();
            let end = scanner.scan(wire).unwrap().unwrap();
            assert_eq!(end, wire.len());
            assert_eq!(parse(wire).unwrap(), redis::parse_redis_value(wire).unwrap());
        }
    }

    #[test]
    fn refuses_what_is_not_resp2() {
        for wire in [
            &b"?x\r\n"[..],
            b"$3\r\nabcd\r\n",
            b"*x\r\n",
            b"$99999999999999999999\r\n",
            b"+a\rb\r\n",
            b"\r\n",
            b"*2\r\n\r\n",
        ] {
            assert!(Scanner::default().scan(wire).is_err(), "{wire:?}");
        }
        assert!(parse(b"\r\n").is_err());
        assert!(parse(b":1\r\n:2\r\n").is_err());
        assert!(parse(b":x\r\n").is_err());
        assert!(parse(b"*2\r\n:1\r\n").is_err());
    }

    #[test]
    fn finds_a_bulk_header_at_the_start_only() {
        assert_eq!(bulk_header(b"$5\r\nab"), Some((4, 5)));
        assert_eq!(bulk_header(b"$0\r\n\r\n"), Some((4, 0)));
        assert_eq!(bulk_header(b"$1048576\r\n"), Some((10, 1 << 20)));
        for buf in [
            &b"$-1\r\n"[..],
            b"$5\r",
            b"$5",
            b"",
            b":5\r\n",
            b"*1\r\n$5\r\n",
            b"$x\r\n",
        ] {
            assert_eq!(bulk_header(buf), None, "{buf:?}");
        }
    }

    #[test]
    fn a_huge_declared_array_does_not_allocate_ahead() {
        let mut scanner = Scanner::default();
        assert_eq!(scanner.scan(b"*1000000000\r\n:1\r\n").unwrap(), None);
        assert!(parse(b"*1000000000\r\n:1\r\n").is_err());
    }
}
