//! `--verify`: walks the source again and compares each key with the destination: type,
//! length, a SHA-256 digest of the whole value (members of hashes and sets sorted first) and
//! whether it has a TTL. Each key's value is read whole on both sides, so verification of
//! very large keys costs their size in memory; `--verify-sample N` bounds the keys checked.

use sha2::{Digest, Sha256};

use super::copy::{show, Kind};
use super::endpoint::{Endpoint, Reply};
use super::Ctx;
use crate::protocol::Command;

/// Differences listed in full (the rest are only counted).
pub const SHOWN: usize = 20;

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    /// Keys compared.
    pub checked: u64,
    /// One line per differing key.
    pub differences: Vec<String>,
    /// Keys that differ.
    pub differing: u64,
}

/// One side's view of a key.
#[derive(Debug, PartialEq, Eq)]
struct Summary {
    kind: Vec<u8>,
    len: i64,
    digest: [u8; 32],
    ttl: bool,
}

fn cmd(parts: &[&[u8]]) -> Command {
    Command::new(parts.iter().map(|p| p.to_vec()).collect()).unwrap_or_else(|| Command::internal(&[]))
}

/// The commands giving a key's length and whole value.
fn reads(kind: Kind, key: &[u8]) -> [Command; 2] {
    match kind {
        Kind::String => [cmd(&[b"STRLEN", key]), cmd(&[b"GET", key])],
        Kind::Hash => [cmd(&[b"HLEN", key]), cmd(&[b"HGETALL", key])],
        Kind::List => [cmd(&[b"LLEN", key]), cmd(&[b"LRANGE", key, b"0", b"-1"])],
        Kind::Set => [cmd(&[b"SCARD", key]), cmd(&[b"SMEMBERS", key])],
        Kind::ZSet => [
            cmd(&[b"ZCARD", key]),
            cmd(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]),
        ],
        Kind::Stream => [cmd(&[b"XLEN", key]), cmd(&[b"XRANGE", key, b"-", b"+"])],
    }
}

/// Flattens a reply into its strings, in order.
fn flatten(reply: &Reply, out: &mut Vec<Vec<u8>>) {
    match reply {
        Reply::Bytes(b) => out.push(b.clone()),
        Reply::Int(i) => out.push(i.to_string().into_bytes()),
        Reply::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Reply::Nil => out.push(b"(nil)".to_vec()),
        Reply::Error(e) => out.push(e.as_bytes().to_vec()),
    }
}

/// A digest that does not depend on the order of hash fields or set members.
pub fn digest(kind: Kind, value: &Reply) -> [u8; 32] {
    let mut parts = Vec::new();
    flatten(value, &mut parts);
    let mut units: Vec<Vec<u8>> = match kind {
        Kind::Hash => parts.chunks(2).map(|p| p.concat_lengths()).collect(),
        // Servers print the same double differently (Valkey 8: 17 digits, Redis 7.0: the
        // shortest form): compare the numbers.
        Kind::ZSet => parts
            .chunks(2)
            .map(|p| [p[0].clone(), p.get(1).map(|s| score(s)).unwrap_or_default()].concat_lengths())
            .collect(),
        _ => parts.iter().map(|p| [p.as_slice()].concat_lengths()).collect(),
    };
    if matches!(kind, Kind::Hash | Kind::Set) {
        units.sort();
    }
    let mut h = Sha256::new();
    for u in units {
        h.update(u);
    }
    h.finalize().into()
}

/// A score as its shortest round-trip text (the text itself when it is not a number).
fn score(text: &[u8]) -> Vec<u8> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .map(|f| f.to_string().into_bytes())
        .unwrap_or_else(|| text.to_vec())
}

trait ConcatLengths {
    fn concat_lengths(&self) -> Vec<u8>;
}

impl<T: AsRef<[u8]>> ConcatLengths for [T] {
    /// Each part prefixed by its length, so that boundaries count.
    fn concat_lengths(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for p in self {
            out.extend_from_slice(&(p.as_ref().len() as u64).to_le_bytes());
            out.extend_from_slice(p.as_ref());
        }
        out
    }
}

/// Each key's summary on one side (`None`: the key is not there).
async fn summaries(side: &Endpoint, keys: &[Vec<u8>]) -> Result<Vec<Option<Summary>>, String> {
    let meta: Vec<Command> = keys
        .iter()
        .flat_map(|k| [cmd(&[b"TYPE", k]), cmd(&[b"PTTL", k])])
        .collect();
    let meta = side.run(&meta).await?;
    let mut values = Vec::new();
    let mut kinds = Vec::new();
    for (k, pair) in keys.iter().zip(meta.chunks(2)) {
        let kind = pair.first().and_then(Reply::bytes).and_then(Kind::parse);
        if let Some(kind) = kind {
            values.extend(reads(kind, k));
        }
        kinds.push(kind);
    }
    let mut replies = side.run(&values).await?.into_iter();
    let mut out = Vec::new();
    for (kind, pair) in kinds.into_iter().zip(meta.chunks(2)) {
        let Some(kind) = kind else {
            out.push(None);
            continue;
        };
        let len = replies.next().and_then(|r| r.int()).unwrap_or(-1);
        let value = replies.next().unwrap_or(Reply::Nil);
        out.push(Some(Summary {
            kind: kind.name().as_bytes().to_vec(),
            len,
            digest: digest(kind, &value),
            ttl: pair.get(1).and_then(Reply::int).is_some_and(|t| t >= 0),
        }));
    }
    Ok(out)
}

/// Compares one batch of source keys with the destination, adding to `report`.
pub async fn batch(ctx: &Ctx, keys: &[Vec<u8>], report: &mut Report) -> Result<(), String> {
    // TYPE, PTTL, a length and a value per key, on each side.
    ctx.pace(keys.len() * 8).await;
    let src = summaries(&ctx.src, keys).await?;
    let dst = summaries(&ctx.dst, keys).await?;
    for ((k, s), d) in keys.iter().zip(src).zip(dst) {
        let Some(s) = s else {
            continue; // gone at the source since
        };
        report.checked += 1;
        let why = match d {
            None => "missing at the destination".to_string(),
            Some(d) if d.kind != s.kind => format!(
                "type {} at the source, {} at the destination",
                String::from_utf8_lossy(&s.kind),
                String::from_utf8_lossy(&d.kind)
            ),
            Some(d) if d.len != s.len => {
                format!("length {} at the source, {} at the destination", s.len, d.len)
            }
            Some(d) if d.digest != s.digest => "value differs".to_string(),
            Some(d) if d.ttl != s.ttl => format!(
                "TTL {} at the source, {} at the destination",
                if s.ttl { "set" } else { "none" },
                if d.ttl { "set" } else { "none" }
            ),
            Some(_) => continue,
        };
        report.differing += 1;
        if report.differences.len() < SHOWN {
            report.differences.push(format!("{}: {why}", show(k)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(items: &[&str]) -> Reply {
        Reply::Array(
            items
                .iter()
                .map(|s| Reply::Bytes(s.as_bytes().to_vec()))
                .collect(),
        )
    }

    #[test]
    fn hash_and_set_digests_ignore_order() {
        assert_eq!(
            digest(Kind::Hash, &arr(&["a", "1", "b", "2"])),
            digest(Kind::Hash, &arr(&["b", "2", "a", "1"]))
        );
        assert_ne!(
            digest(Kind::Hash, &arr(&["a", "1", "b", "2"])),
            digest(Kind::Hash, &arr(&["a", "2", "b", "1"]))
        );
        assert_eq!(
            digest(Kind::Set, &arr(&["x", "y"])),
            digest(Kind::Set, &arr(&["y", "x"]))
        );
        assert_ne!(
            digest(Kind::List, &arr(&["x", "y"])),
            digest(Kind::List, &arr(&["y", "x"]))
        );
        assert_ne!(
            digest(Kind::List, &arr(&["ab", "c"])),
            digest(Kind::List, &arr(&["a", "bc"]))
        );
    }
}
