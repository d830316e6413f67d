//! JSON request bodies: `["CMD", arg, ...]` for `/` and `[[...], [...]]` for `/pipeline` and
//! `/multi-exec`. Content-Type is never consulted (curl sends form-encoded).
//!
//! Argument rules: a string becomes its UTF-8 bytes (every JSON escape allowed, `\u0000`
//! included); a number becomes its exact lexeme as written (`1.0` stays `1.0`, integers
//! above 2^64 keep every digit); `true`/`false` become `"true"`/`"false"`; `null`, arrays
//! and objects are refused with a message naming the position.

use serde_json::value::RawValue;

use super::{BadRequest, Command};

/// A batch entry: a command, or the reason this entry alone was refused.
pub type Entry = Result<Command, String>;

/// Parses the body of `POST /`: one JSON array of arguments.
pub fn parse_command(body: &[u8]) -> Result<Command, BadRequest> {
    if let Some(cmd) = fast::array(body, 0)
        .filter(|(_, end)| fast::ws(body, *end) == body.len())
        .and_then(|(args, _)| Command::new(args))
    {
        return Ok(cmd);
    }
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
        BadRequest::new(format!(
            "ERR failed to parse command: expected a JSON array of strings and numbers ({e})"
        ))
    })?;
    command_from_items(&items).map_err(BadRequest)
}

/// Parses the body of `/pipeline` or `/multi-exec`: a JSON array of command arrays.
///
/// A malformed *entry* (an empty array, a `null` argument, a non-array) is refused on its own
/// (`Err` in its slot) so the rest of a pipeline still runs; a body that is not a non-empty
/// JSON array at all is a [`BadRequest`].
pub fn parse_batch(body: &[u8]) -> Result<Vec<Entry>, BadRequest> {
    if let Some(batch) = fast::batch(body) {
        return Ok(batch.into_iter().map(Ok).collect());
    }
    // The shape every client sends, with escapes or other number forms.
    let entries: Vec<Entry> = match serde_json::from_slice::<Vec<Vec<&RawValue>>>(body) {
        Ok(batch) => batch.iter().map(|items| command_from_items(items)).collect(),
        Err(_) => {
            let outer: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                BadRequest::new(format!(
                    "ERR failed to parse pipeline: expected a JSON array of command arrays ({e})"
                ))
            })?;
            // `["GET","k"]`: one command, not a batch of them. Upstash refuses the request
            // whole; running each string as a command would answer 200 with nonsense.
            if !outer.is_empty() && !outer.iter().any(|raw| raw.get().starts_with('[')) {
                return Err(BadRequest::new(
                    "ERR failed to parse pipeline: expected a JSON array of command arrays, got a \
                     single command (send it to / instead)",
                ));
            }
            outer.iter().map(|raw| entry_from_raw(raw)).collect()
        }
    };
    if entries.is_empty() {
        return Err(BadRequest::new("ERR empty pipeline: no commands"));
    }
    Ok(entries)
}

fn entry_from_raw(raw: &RawValue) -> Entry {
    match serde_json::from_str::<Vec<&RawValue>>(raw.get()) {
        Ok(items) => command_from_items(&items),
        Err(_) => Err("ERR each pipeline entry must be a JSON array of strings and numbers".into()),
    }
}

fn command_from_items(items: &[&RawValue]) -> Result<Command, String> {
    let args = items
        .iter()
        .enumerate()
        .map(|(i, raw)| argument(i, raw))
        .collect::<Result<Vec<_>, _>>()?;
    Command::new(args).ok_or_else(|| "ERR empty command".to_string())
}

/// Converts one JSON value to the bytes of a Redis argument.
fn argument(position: usize, raw: &RawValue) -> Result<Vec<u8>, String> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => {
            let inner = &text[1..text.len() - 1];
            if inner.contains('\\') {
                serde_json::from_str::<String>(text)
                    .map(String::into_bytes)
                    .map_err(|e| format!("ERR invalid string at position {position}: {e}"))
            } else {
                Ok(inner.as_bytes().to_vec())
            }
        }
        Some(b'-' | b'0'..=b'9' | b't' | b'f') => Ok(text.as_bytes().to_vec()),
        Some(b'n') => Err(format!("ERR null argument at position {position}")),
        _ => Err(format!(
            "ERR argument at position {position} is an array or object; only strings, numbers and booleans are allowed"
        )),
    }
}

/// A hand-written scanner for the shape nearly every request has: arrays of strings without
/// escapes and of plain numbers. Anything else (escapes, booleans, nulls, odd whitespace,
/// malformed input) makes it give up (`None`), and serde_json parses the body instead, so
/// both paths accept and refuse exactly the same bodies.
mod fast {
    use super::Command;

    /// Skips JSON whitespace from `i`.
    pub fn ws(b: &[u8], mut i: usize) -> usize {
        while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            i += 1;
        }
        i
    }

    /// `[[...], ...]` of non-empty command arrays.
    pub fn batch(b: &[u8]) -> Option<Vec<Command>> {
        let mut i = ws(b, 0);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        i = ws(b, i + 1);
        let mut out = Vec::new();
        loop {
            let (args, end) = array(b, i)?;
            out.push(Command::new(args)?);
            i = ws(b, end);
            match b.get(i)? {
                b',' => i = ws(b, i + 1),
                b']' => return (ws(b, i + 1) == b.len()).then_some(out),
                _ => return None,
            }
        }
    }

    /// One non-empty array of plain strings and numbers starting at `i`; its arguments and
    /// the position after its `]`.
    pub fn array(b: &[u8], i: usize) -> Option<(Vec<Vec<u8>>, usize)> {
        let mut i = ws(b, i);
        if b.get(i) != Some(&b'[') {
            return None;
        }
        i = ws(b, i + 1);
        let mut args = Vec::with_capacity(4);
        loop {
            let (arg, end) = match b.get(i)? {
                b'"' => string(b, i + 1)?,
                b'-' | b'0'..=b'9' => number(b, i)?,
                _ => return None,
            };
            args.push(arg);
            i = ws(b, end);
            match b.get(i)? {
                b',' => i = ws(b, i + 1),
                b']' => return Some((args, i + 1)),
                _ => return None,
            }
        }
    }

    fn string(b: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
        let len = b[start..]
            .iter()
            .position(|c| *c == b'"' || *c == b'\\' || *c < 0x20)?;
        let end = start + len;
        if b[end] != b'"' {
            return None;
        }
        let text = &b[start..end];
        std::str::from_utf8(text).ok()?;
        Some((text.to_vec(), end + 1))
    }

    /// A JSON number (`-?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?`), kept as written.
    fn number(b: &[u8], start: usize) -> Option<(Vec<u8>, usize)> {
        let digits = |mut i: usize| {
            let from = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i > from).then_some(i)
        };
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        i = match b.get(i)? {
            b'0' => i + 1,
            b'1'..=b'9' => digits(i)?,
            _ => return None,
        };
        if b.get(i) == Some(&b'.') {
            i = digits(i + 1)?;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = digits(i)?;
        }
        Some((b[start..i].to_vec(), i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(cmd: &Command) -> Vec<String> {
        cmd.args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn numbers_keep_their_lexeme() {
        let cmd = parse_command(br#"["SET","k",1.0,12345678901234567890123,-0.5e-3,true,false]"#).unwrap();
        assert_eq!(
            strs(&cmd),
            [
                "SET",
                "k",
                "1.0",
                "12345678901234567890123",
                "-0.5e-3",
                "true",
                "false"
            ]
        );
    }

    #[test]
    fn escapes_and_whitespace() {
        let cmd = parse_command(b" [ \"set\" , \"a\\u0000b\\n\\\"\" , \"\xc3\xa9\" ] ").unwrap();
        assert_eq!(cmd.args()[1], b"a\0b\n\"".to_vec());
        assert_eq!(cmd.args()[2], "é".as_bytes().to_vec());
    }

    #[test]
    fn refusals() {
        assert!(parse_command(b"[]").is_err());
        assert!(parse_command(b"{}").is_err());
        assert!(parse_command(b"[\"set\",null]")
            .unwrap_err()
            .0
            .contains("position 1"));
        assert!(parse_command(b"[\"set\",[1]]").is_err());
        assert!(parse_command(b"not json").is_err());
        assert!(parse_command(b"[\"a\"] x").is_err());
    }

    #[test]
    fn batch_entries_fail_alone() {
        let b = parse_batch(br#"[["set","a",1],[],"x",["get","a"],["set",null]]"#).unwrap();
        assert_eq!(b.len(), 5);
        assert!(b[0].is_ok() && b[1].is_err() && b[2].is_err() && b[3].is_ok() && b[4].is_err());
        assert!(parse_batch(b"[]").is_err());
        assert!(parse_batch(b"{\"a\":1}").is_err());
    }

    #[test]
    fn a_flat_command_is_not_a_batch() {
        for body in [
            &br#"["GET","k"]"#[..],
            br#"["SET","k",1]"#,
            br#"[1,true,null]"#,
            br#"[{"a":1}]"#,
        ] {
            let err = parse_batch(body).unwrap_err();
            assert!(err.0.contains("single command"), "{}", err.0);
        }
        // One real entry among scalars keeps per-entry errors.
        let b = parse_batch(br#"["x",["get","a"]]"#).unwrap();
        assert!(b[0].is_err() && b[1].is_ok());
    }
}
