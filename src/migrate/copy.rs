//! The two copy modes as pure planning, no I/O: which command reads the next page of a key,
//! what a page reply holds, and the write commands that recreate it, split so that none is
//! over a size limit. **dump** is one `RESTORE ... ABSTTL` per key; **logical** reads by type
//! (`GET`, `HSCAN`, `SSCAN`, `ZSCAN`, `LRANGE`, `XRANGE` pages) and writes `SET`/`APPEND`,
//! `HSET`, `SADD`, `ZADD`, `RPUSH`, `XADD` with the same IDs, then the expiry.

use super::endpoint::Reply;
use crate::protocol::Command;

/// Items per read page of a collection (the SCAN-family COUNT hint, the LRANGE/XRANGE span).
pub const PAGE: usize = 512;

/// A Redis data type restdis can copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// String.
    String,
    /// Hash.
    Hash,
    /// List.
    List,
    /// Set.
    Set,
    /// Sorted set.
    ZSet,
    /// Stream.
    Stream,
}

impl Kind {
    /// From a `TYPE` reply; `None` for `none` (gone) and for types we cannot copy.
    pub fn parse(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"string" => Kind::String,
            b"hash" => Kind::Hash,
            b"list" => Kind::List,
            b"set" => Kind::Set,
            b"zset" => Kind::ZSet,
            b"stream" => Kind::Stream,
            _ => return None,
        })
    }

    /// The `TYPE` name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }
}

/// Where the reading of one key stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// Nothing read yet.
    Start,
    /// A SCAN-family cursor (not `0`).
    Scan(Vec<u8>),
    /// The next list index.
    Index(usize),
    /// After this stream ID.
    After(Vec<u8>),
    /// Everything read.
    Done,
}

/// One page of a key's value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// Flat items: the string value; hash field, value...; members; member, score...; elements.
    pub items: Vec<Vec<u8>>,
    /// Stream entries: ID and field, value...
    pub entries: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
}

impl Page {
    /// Bytes of data in the page.
    pub fn bytes(&self) -> usize {
        let flat: usize = self.items.iter().map(Vec::len).sum();
        let entries: usize = self
            .entries
            .iter()
            .map(|(id, f)| id.len() + f.iter().map(Vec::len).sum::<usize>())
            .sum();
        flat + entries
    }
}

fn cmd(parts: Vec<Vec<u8>>) -> Command {
    Command::new(parts).unwrap_or_else(|| Command::internal(&["PING"]))
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// The command reading the page of `key` at `cursor` (never called with `Done`).
pub fn read_page(kind: Kind, key: &[u8], cursor: &Cursor) -> Command {
    let key = key.to_vec();
    let count = PAGE.to_string();
    let scan_cursor = match cursor {
        Cursor::Scan(c) => c.clone(),
        _ => b("0"),
    };
    match kind {
        Kind::String => cmd(vec![b("GET"), key]),
        Kind::Hash | Kind::Set | Kind::ZSet => {
            let name = match kind {
                Kind::Hash => "HSCAN",
                Kind::Set => "SSCAN",
                _ => "ZSCAN",
            };
            cmd(vec![b(name), key, scan_cursor, b("COUNT"), b(&count)])
        }
        Kind::List => {
            let start = match cursor {
                Cursor::Index(i) => *i,
                _ => 0,
            };
            let stop = start + PAGE - 1;
            cmd(vec![
                b("LRANGE"),
                key,
                b(&start.to_string()),
                b(&stop.to_string()),
            ])
        }
        Kind::Stream => {
            let start = match cursor {
                Cursor::After(id) => [b"(".as_slice(), id].concat(),
                _ => b("-"),
            };
            cmd(vec![b("XRANGE"), key, start, b("+"), b("COUNT"), b(&count)])
        }
    }
}

fn strings(reply: Reply) -> Result<Vec<Vec<u8>>, String> {
    match reply {
        Reply::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Reply::Bytes(b) => Ok(b),
                other => Err(format!("unexpected item {other:?}")),
            })
            .collect(),
        Reply::Error(e) => Err(e),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

/// The page in `reply` to [`read_page`] at `cursor`, and the cursor after it.
pub fn parse_page(kind: Kind, cursor: &Cursor, reply: Reply) -> Result<(Page, Cursor), String> {
    if let Reply::Error(e) = reply {
        return Err(e);
    }
    let mut page = Page::default();
    let next = match kind {
        Kind::String => {
            match reply {
                Reply::Bytes(v) => page.items.push(v),
                Reply::Nil => {}
                other => return Err(format!("unexpected reply {other:?}")),
            }
            Cursor::Done
        }
        Kind::Hash | Kind::Set | Kind::ZSet => {
            let Reply::Array(mut parts) = reply else {
                return Err("unexpected SCAN reply".into());
            };
            if parts.len() != 2 {
                return Err("unexpected SCAN reply".into());
            }
            page.items = strings(parts.pop().unwrap_or(Reply::Nil))?;
            match parts.pop() {
                Some(Reply::Bytes(c)) if c == b"0" => Cursor::Done,
                Some(Reply::Bytes(c)) => Cursor::Scan(c),
                _ => return Err("unexpected SCAN cursor".into()),
            }
        }
        Kind::List => {
            page.items = strings(reply)?;
            let start = match cursor {
                Cursor::Index(i) => *i,
                _ => 0,
            };
            if page.items.len() < PAGE {
                Cursor::Done
            } else {
                Cursor::Index(start + PAGE)
            }
        }
        Kind::Stream => {
            let Reply::Array(entries) = reply else {
                return Err("unexpected XRANGE reply".into());
            };
            for e in entries {
                let Reply::Array(mut pair) = e else {
                    return Err("unexpected XRANGE entry".into());
                };
                let fields = strings(pair.pop().unwrap_or(Reply::Nil))?;
                let Some(Reply::Bytes(id)) = pair.pop() else {
                    return Err("unexpected XRANGE entry".into());
                };
                page.entries.push((id, fields));
            }
            match page.entries.last() {
                Some((id, _)) if page.entries.len() >= PAGE => Cursor::After(id.clone()),
                _ => Cursor::Done,
            }
        }
    };
    Ok((page, next))
}

/// The write commands for one page, each with at most about `limit` bytes of arguments (a
/// single item over it goes alone; a string over it is `SET` then `APPEND`s). `first` says
/// whether this is the key's first page.
pub fn plan_page(kind: Kind, key: &[u8], page: &Page, first: bool, limit: usize) -> Vec<Command> {
    let limit = limit.max(1);
    match kind {
        Kind::String => {
            let Some(value) = page.items.first() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            let mut chunks = value.chunks(limit);
            let head = chunks.next().unwrap_or(&[]);
            let verb = if first { "SET" } else { "APPEND" };
            out.push(cmd(vec![b(verb), key.to_vec(), head.to_vec()]));
            for c in chunks {
                out.push(cmd(vec![b("APPEND"), key.to_vec(), c.to_vec()]));
            }
            out
        }
        Kind::Hash => grouped("HSET", key, &page.items, 2, false, limit),
        Kind::Set => grouped("SADD", key, &page.items, 1, false, limit),
        Kind::ZSet => grouped("ZADD", key, &page.items, 2, true, limit),
        Kind::List => grouped("RPUSH", key, &page.items, 1, false, limit),
        Kind::Stream => page
            .entries
            .iter()
            .map(|(id, fields)| {
                let mut parts = vec![b("XADD"), key.to_vec(), id.clone()];
                parts.extend(fields.iter().cloned());
                cmd(parts)
            })
            .collect(),
    }
}

/// `NAME key item...` commands, `width` items per element (`swap`: written in reverse, for
/// ZSCAN's member, score → ZADD's score, member).
fn grouped(
    name: &str,
    key: &[u8],
    items: &[Vec<u8>],
    width: usize,
    swap: bool,
    limit: usize,
) -> Vec<Command> {
    let mut out = Vec::new();
    let mut parts = vec![b(name), key.to_vec()];
    let mut size = 0;
    for el in items.chunks(width) {
        if el.len() != width {
            break;
        }
        let el_size: usize = el.iter().map(Vec::len).sum();
        if parts.len() > 2 && size + el_size > limit {
            out.push(cmd(std::mem::replace(&mut parts, vec![b(name), key.to_vec()])));
            size = 0;
        }
        if swap {
            parts.extend(el.iter().rev().cloned());
        } else {
            parts.extend(el.iter().cloned());
        }
        size += el_size;
    }
    if parts.len() > 2 {
        out.push(cmd(parts));
    }
    out
}

/// `RESTORE key ttl payload [REPLACE] [ABSTTL]`: `expire_at_ms` is the absolute expiry (unix
/// ms), `None` for a key without one.
pub fn restore(key: &[u8], payload: &[u8], expire_at_ms: Option<i64>, replace: bool) -> Command {
    let ttl = expire_at_ms.unwrap_or(0).to_string();
    let mut parts = vec![b("RESTORE"), key.to_vec(), b(&ttl), payload.to_vec()];
    if replace {
        parts.push(b("REPLACE"));
    }
    if expire_at_ms.is_some() {
        parts.push(b("ABSTTL"));
    }
    cmd(parts)
}

/// Whether a RESTORE error says the destination cannot read this DUMP payload (another
/// Redis/Valkey version), so the key must be copied logically.
pub fn payload_refused(error: &str) -> bool {
    error.contains("payload version or checksum")
}

/// Whether an error says the destination (or source) does not offer DUMP/RESTORE at all.
pub fn dump_unavailable(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("unknown command")
        || e.starts_with("noperm")
        || e.contains("not allowed")
        || e.contains("not supported")
}

/// A key for humans: printable ASCII as it is, other bytes as `\xNN`, quoted.
pub fn show(key: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in key {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

/// The `XINFO` reply (field, value, ...) as pairs.
pub fn info_pairs(reply: &Reply) -> Vec<(&[u8], &Reply)> {
    match reply {
        Reply::Array(items) => items
            .chunks(2)
            .filter_map(|p| match p {
                [Reply::Bytes(k), v] => Some((k.as_slice(), v)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What a logical copy of a stream adds after its entries, from `XINFO STREAM` and `XINFO
/// GROUPS`: `XSETID` (the last ID, so new IDs continue as at the source), and one `XGROUP
/// CREATE ... ENTRIESREAD` per group; plus a note per group whose pending entries (PEL) and
/// consumers are not copied.
pub fn stream_extras(key: &[u8], info: &Reply, groups: &Reply) -> (Vec<Command>, Vec<String>) {
    let mut cmds = Vec::new();
    let mut notes = Vec::new();
    let field = |pairs: &[(&[u8], &Reply)], name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name.as_bytes())
            .map(|(_, v)| (*v).clone())
    };
    let info = info_pairs(info);
    let mut setid = None;
    if let Some(Reply::Bytes(last)) = field(&info, "last-generated-id") {
        let mut parts = vec![b("XSETID"), key.to_vec(), last];
        if let (Some(added), Some(Reply::Bytes(max_del))) = (
            field(&info, "entries-added").and_then(|r| r.int()),
            field(&info, "max-deleted-entry-id"),
        ) {
            parts.extend([
                b("ENTRIESADDED"),
                b(&added.to_string()),
                b("MAXDELETEDID"),
                max_del,
            ]);
        }
        setid = Some(cmd(parts));
    }
    if let Reply::Array(list) = groups {
        for g in list {
            let g = info_pairs(g);
            let Some(Reply::Bytes(name)) = field(&g, "name") else {
                continue;
            };
            let last = match field(&g, "last-delivered-id") {
                Some(Reply::Bytes(id)) => id,
                _ => b("0"),
            };
            let mut parts = vec![
                b("XGROUP"),
                b("CREATE"),
                key.to_vec(),
                name.clone(),
                last,
                b("MKSTREAM"),
            ];
            if let Some(read) = field(&g, "entries-read").and_then(|r| r.int()) {
                parts.extend([b("ENTRIESREAD"), b(&read.to_string())]);
            }
            cmds.push(cmd(parts));
            let pending = field(&g, "pending").and_then(|r| r.int()).unwrap_or(0);
            let consumers = field(&g, "consumers").and_then(|r| r.int()).unwrap_or(0);
            if pending > 0 || consumers > 0 {
                notes.push(format!(
                    "stream {} group {}: {pending} pending entries (PEL) and {consumers} consumers not copied in logical mode",
                    show(key),
                    show(&name)
                ));
            }
        }
    }
    // Last: an empty stream exists only once a group made it (MKSTREAM).
    cmds.extend(setid);
    (cmds, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(c: &Command) -> Vec<String> {
        c.args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn hash_pages_are_split_by_size() {
        let page = Page {
            items: (0..10)
                .flat_map(|i| [format!("f{i}").into_bytes(), vec![b'v'; 8]])
                .collect(),
            entries: vec![],
        };
        let cmds = plan_page(Kind::Hash, b"h", &page, true, 25);
        // Each field+value is 10 bytes: two per command.
        assert_eq!(cmds.len(), 5);
        assert_eq!(strs(&cmds[0])[..4], ["HSET", "h", "f0", "vvvvvvvv"]);
        let all: usize = cmds.iter().map(|c| c.args().len() - 2).sum();
        assert_eq!(all, 20);
    }

    #[test]
    fn zadd_swaps_member_and_score() {
        let page = Page {
            items: vec![b("m"), b("1.5")],
            entries: vec![],
        };
        assert_eq!(
            strs(&plan_page(Kind::ZSet, b"z", &page, true, 100)[0]),
            ["ZADD", "z", "1.5", "m"]
        );
    }

    #[test]
    fn big_strings_are_set_then_appended() {
        let page = Page {
            items: vec![vec![b'x'; 10]],
            entries: vec![],
        };
        let cmds = plan_page(Kind::String, b"s", &page, true, 4);
        let names: Vec<String> = cmds.iter().map(|c| strs(c)[0].clone()).collect();
        assert_eq!(names, ["SET", "APPEND", "APPEND"]);
        assert_eq!(strs(&cmds[2])[2], "xx");
    }

    #[test]
    fn pages_and_cursors() {
        let reply = Reply::Array(vec![
            Reply::Bytes(b("17")),
            Reply::Array(vec![Reply::Bytes(b("a")), Reply::Bytes(b("1"))]),
        ]);
        let (page, next) = parse_page(Kind::Hash, &Cursor::Start, reply).unwrap();
        assert_eq!(next, Cursor::Scan(b("17")));
        assert_eq!(page.items.len(), 2);
        assert_eq!(strs(&read_page(Kind::Hash, b"h", &next))[2], "17");
        let full = Reply::Array((0..PAGE).map(|_| Reply::Bytes(b("e"))).collect());
        let (_, next) = parse_page(Kind::List, &Cursor::Index(PAGE), full).unwrap();
        assert_eq!(next, Cursor::Index(2 * PAGE));
        let entry = Reply::Array(vec![
            Reply::Bytes(b("1-1")),
            Reply::Array(vec![Reply::Bytes(b("f")), Reply::Bytes(b("v"))]),
        ]);
        let (page, next) = parse_page(Kind::Stream, &Cursor::Start, Reply::Array(vec![entry])).unwrap();
        assert_eq!(next, Cursor::Done);
        assert_eq!(
            strs(&plan_page(Kind::Stream, b"x", &page, true, 10)[0]),
            ["XADD", "x", "1-1", "f", "v"]
        );
        assert_eq!(
            strs(&read_page(Kind::Stream, b"x", &Cursor::After(b("1-1"))))[2],
            "(1-1"
        );
    }

    #[test]
    fn restore_takes_an_absolute_expiry() {
        assert_eq!(
            strs(&restore(b"k", b"p", Some(1700000000000), true))[2..],
            ["1700000000000", "p", "REPLACE", "ABSTTL"]
        );
        assert_eq!(strs(&restore(b"k", b"p", None, false)).len(), 4);
        assert!(payload_refused("ERR DUMP payload version or checksum are wrong"));
    }

    #[test]
    fn stream_groups_become_xgroup_create() {
        let info = Reply::Array(vec![
            Reply::Bytes(b("last-generated-id")),
            Reply::Bytes(b("5-0")),
            Reply::Bytes(b("entries-added")),
            Reply::Int(5),
            Reply::Bytes(b("max-deleted-entry-id")),
            Reply::Bytes(b("0-0")),
        ]);
        let group = Reply::Array(vec![
            Reply::Bytes(b("name")),
            Reply::Bytes(b("g")),
            Reply::Bytes(b("consumers")),
            Reply::Int(1),
            Reply::Bytes(b("pending")),
            Reply::Int(2),
            Reply::Bytes(b("last-delivered-id")),
            Reply::Bytes(b("3-0")),
            Reply::Bytes(b("entries-read")),
            Reply::Int(3),
        ]);
        let (cmds, notes) = stream_extras(b"x", &info, &Reply::Array(vec![group]));
        assert_eq!(
            strs(&cmds[1]),
            ["XSETID", "x", "5-0", "ENTRIESADDED", "5", "MAXDELETEDID", "0-0"]
        );
        assert_eq!(
            strs(&cmds[0]),
            [
                "XGROUP",
                "CREATE",
                "x",
                "g",
                "3-0",
                "MKSTREAM",
                "ENTRIESREAD",
                "3"
            ]
        );
        assert_eq!(notes.len(), 1);
        assert_eq!(show(b"a\xff\""), "\"a\\xff\\\"\"");
    }
}
