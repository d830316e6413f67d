//! Copying one SCAN batch of keys: dump mode (`PTTL` + `DUMP` from the source, then one
//! `RESTORE ... ABSTTL` each) or logical mode (`TYPE` + `PTTL`, an `EXISTS` check, then the
//! value page by page, then `PEXPIREAT`), each step one pipeline per side for the whole batch.
//! Keys the destination cannot restore (another payload version, no `RESTORE`, a payload over
//! the request limit) go on to logical mode.

use std::time::{SystemTime, UNIX_EPOCH};

use super::copy::{self, Cursor, Kind};
use super::endpoint::Reply;
use super::progress::Outcome;
use super::{Conflict, Ctx};
use crate::protocol::Command;

/// Milliseconds since the Unix epoch, by the local clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn cmd(parts: &[&[u8]]) -> Command {
    Command::new(parts.iter().map(|p| p.to_vec()).collect()).unwrap_or_else(|| Command::internal(&[]))
}

/// The absolute expiry of a key from its `PTTL` read at `t0`: `Err(())` when it is gone
/// (-2), `Ok(None)` without an expiry. Taking `t0` from before the read makes the copy expire
/// no later than the original.
fn expiry(pttl: Option<i64>, t0: i64) -> Result<Option<i64>, ()> {
    match pttl {
        Some(-2) => Err(()),
        Some(p) if p >= 0 => Ok(Some(t0 + p.max(1))),
        _ => Ok(None),
    }
}

/// Copies `keys`, recording every key's outcome in the progress counters.
pub async fn copy_batch(ctx: &Ctx, keys: Vec<Vec<u8>>) {
    let logical = if ctx.use_dump() {
        match dump(ctx, &keys).await {
            Ok(rest) => rest,
            Err(e) => return fail_all(ctx, &keys, &e),
        }
    } else {
        keys
    };
    if logical.is_empty() {
        return;
    }
    if let Err(e) = self::logical(ctx, &logical).await {
        fail_all(ctx, &logical, &e);
    }
}

fn fail_all(ctx: &Ctx, keys: &[Vec<u8>], why: &str) {
    for k in keys {
        ctx.progress.record(k, Outcome::Failed(why.to_string()));
    }
}

fn conflict(ctx: &Ctx) -> Outcome {
    match ctx.opts.conflict {
        Conflict::Skip => Outcome::Skipped,
        _ => Outcome::Failed("exists at the destination (use --replace or --skip-existing)".into()),
    }
}

/// Dump mode; returns the keys that must be copied logically instead (their outcome is not
/// recorded yet). `Err` when a side's transport failed (no outcome recorded for any key).
async fn dump(ctx: &Ctx, keys: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    let mut reads = Vec::with_capacity(keys.len() * 2);
    for k in keys {
        reads.push(cmd(&[b"PTTL", k]));
        reads.push(cmd(&[b"DUMP", k]));
    }
    ctx.pace(reads.len()).await;
    let t0 = now_ms();
    let replies = ctx.src.run(&reads).await?;
    let mut fallback = Vec::new();
    let mut outcomes: Vec<(&[u8], Outcome)> = Vec::new();
    let mut writes = Vec::new();
    let mut written: Vec<&[u8]> = Vec::new();
    for (k, pair) in keys.iter().zip(replies.chunks(2)) {
        let (Some(pttl), Some(payload)) = (pair.first(), pair.get(1)) else {
            return Err("the source answered fewer replies than commands".into());
        };
        let Ok(expire_at) = expiry(pttl.int(), t0) else {
            outcomes.push((k, Outcome::Expired));
            continue;
        };
        match payload {
            Reply::Bytes(p) if p.len() + k.len() + 64 > ctx.opts.max_request => fallback.push(k.clone()),
            Reply::Bytes(p) => {
                ctx.progress.add_bytes(p.len() + k.len());
                writes.push(copy::restore(
                    k,
                    p,
                    expire_at,
                    ctx.opts.conflict == Conflict::Replace,
                ));
                written.push(k);
            }
            Reply::Error(e) if copy::dump_unavailable(e) && ctx.may_fall_back() => {
                ctx.switch_to_logical(&format!("the source refuses DUMP ({e})"));
                fallback.push(k.clone());
            }
            Reply::Error(e) => outcomes.push((k, Outcome::Failed(format!("DUMP: {e}")))),
            _ => outcomes.push((k, Outcome::Expired)),
        }
    }
    ctx.pace(writes.len()).await;
    let replies = ctx.dst.run(&writes).await?;
    for (k, r) in written.into_iter().zip(replies) {
        let outcome = match r.error() {
            None => Outcome::Copied,
            Some(e) if e.starts_with("BUSYKEY") => conflict(ctx),
            Some(e) if copy::payload_refused(e) || (copy::dump_unavailable(e) && ctx.may_fall_back()) => {
                ctx.switch_to_logical(&format!("the destination refuses the DUMP payload ({e})"));
                fallback.push(k.to_vec());
                continue;
            }
            Some(e) => Outcome::Failed(format!("RESTORE: {e}")),
        };
        outcomes.push((k, outcome));
    }
    for (k, o) in outcomes {
        ctx.progress.record(k, o);
    }
    Ok(fallback)
}

/// A key being copied logically.
struct Item<'a> {
    key: &'a [u8],
    kind: Kind,
    expire_at: Option<i64>,
    cursor: Cursor,
    first: bool,
    failed: Option<String>,
    gone: bool,
}

/// Logical mode; records every key's outcome. `Err` when a side's transport failed.
async fn logical(ctx: &Ctx, keys: &[Vec<u8>]) -> Result<(), String> {
    let mut reads = Vec::with_capacity(keys.len() * 2);
    for k in keys {
        reads.push(cmd(&[b"TYPE", k]));
        reads.push(cmd(&[b"PTTL", k]));
    }
    ctx.pace(reads.len()).await;
    let t0 = now_ms();
    let replies = ctx.src.run(&reads).await?;
    let mut items = Vec::new();
    for (k, pair) in keys.iter().zip(replies.chunks(2)) {
        let name = pair.first().and_then(Reply::bytes).unwrap_or(b"none");
        let expire_at = expiry(pair.get(1).and_then(Reply::int), t0);
        match (Kind::parse(name), expire_at) {
            (_, Err(())) => ctx.progress.record(k, Outcome::Expired),
            (None, _) if name == b"none" => ctx.progress.record(k, Outcome::Expired),
            (None, _) => ctx.progress.record(
                k,
                Outcome::Failed(format!("type {} is not copied", String::from_utf8_lossy(name))),
            ),
            (Some(kind), Ok(expire_at)) => items.push(Item {
                key: k,
                kind,
                expire_at,
                cursor: Cursor::Start,
                first: true,
                failed: None,
                gone: false,
            }),
        }
    }
    let mut prefix = Vec::new();
    if ctx.opts.conflict == Conflict::Replace {
        prefix = items.iter().map(|i| cmd(&[b"DEL", i.key])).collect();
    } else {
        let exists: Vec<Command> = items.iter().map(|i| cmd(&[b"EXISTS", i.key])).collect();
        ctx.pace(exists.len()).await;
        let replies = ctx.dst.run(&exists).await?;
        let mut keep = Vec::new();
        for (item, r) in items.into_iter().zip(replies) {
            match r {
                Reply::Int(0) => keep.push(item),
                Reply::Int(_) => ctx.progress.record(item.key, conflict(ctx)),
                other => ctx
                    .progress
                    .record(item.key, Outcome::Failed(format!("EXISTS: {other:?}"))),
            }
        }
        items = keep;
    }
    copy_pages(ctx, &mut items, prefix).await?;
    finish(ctx, items).await
}

/// Reads and writes pages until every key is read to its end.
async fn copy_pages(ctx: &Ctx, items: &mut [Item<'_>], mut prefix: Vec<Command>) -> Result<(), String> {
    loop {
        let active: Vec<usize> = (0..items.len())
            .filter(|&i| items[i].failed.is_none() && items[i].cursor != Cursor::Done)
            .collect();
        if active.is_empty() {
            return Ok(());
        }
        let reads: Vec<Command> = active
            .iter()
            .map(|&i| copy::read_page(items[i].kind, items[i].key, &items[i].cursor))
            .collect();
        ctx.pace(reads.len()).await;
        let replies = ctx.src.run(&reads).await?;
        let mut writes = std::mem::take(&mut prefix);
        let mut owner = vec![usize::MAX; writes.len()];
        for (&i, reply) in active.iter().zip(replies) {
            let item = &mut items[i];
            match copy::parse_page(item.kind, &item.cursor, reply) {
                Ok((page, next)) => {
                    if item.first && item.kind == Kind::String && page.items.is_empty() {
                        item.gone = true;
                    }
                    ctx.progress.add_bytes(page.bytes() + item.key.len());
                    let cmds = copy::plan_page(item.kind, item.key, &page, item.first, ctx.opts.chunk_limit);
                    owner.extend(std::iter::repeat_n(i, cmds.len()));
                    writes.extend(cmds);
                    item.first = false;
                    item.cursor = next;
                }
                Err(e) => item.failed = Some(format!("read: {e}")),
            }
        }
        ctx.pace(writes.len()).await;
        let replies = ctx.dst.run(&writes).await?;
        for (i, r) in owner.into_iter().zip(replies) {
            if let (Some(item), Some(e)) = (items.get_mut(i), r.error()) {
                item.failed.get_or_insert_with(|| format!("write: {e}"));
            }
        }
    }
}

/// Streams' groups and last ID, then the expiries; records each key's outcome.
async fn finish(ctx: &Ctx, items: Vec<Item<'_>>) -> Result<(), String> {
    let streams: Vec<&Item> = items
        .iter()
        .filter(|i| i.kind == Kind::Stream && i.failed.is_none())
        .collect();
    if !streams.is_empty() {
        let reads: Vec<Command> = streams
            .iter()
            .flat_map(|i| {
                [
                    cmd(&[b"XINFO", b"STREAM", i.key]),
                    cmd(&[b"XINFO", b"GROUPS", i.key]),
                ]
            })
            .collect();
        let replies = ctx.src.run(&reads).await?;
        let mut writes = Vec::new();
        for (item, pair) in streams.iter().zip(replies.chunks(2)) {
            if let [info, groups] = pair {
                let (cmds, notes) = copy::stream_extras(item.key, info, groups);
                writes.extend(cmds);
                notes.iter().for_each(|n| ctx.note(n));
            }
        }
        for r in ctx.dst.run(&writes).await? {
            if let Some(e) = r.error() {
                ctx.note(&format!("stream groups or last ID not fully copied: {e}"));
            }
        }
    }
    let now = now_ms();
    let mut expires = Vec::new();
    let mut owners = Vec::new();
    for item in &items {
        if let (None, Some(at)) = (&item.failed, item.expire_at) {
            expires.push(cmd(&[b"PEXPIREAT", item.key, at.to_string().as_bytes()]));
            owners.push(item.key);
        }
    }
    ctx.pace(expires.len()).await;
    let mut expire_errors = std::collections::HashMap::new();
    for (k, r) in owners.into_iter().zip(ctx.dst.run(&expires).await?) {
        if let Some(e) = r.error() {
            expire_errors.insert(k, e.to_string());
        }
    }
    for item in items {
        let outcome = match (item.failed, expire_errors.remove(item.key)) {
            (Some(e), _) => Outcome::Failed(e),
            (None, Some(e)) => Outcome::Failed(format!("PEXPIREAT: {e}")),
            (None, None) if item.gone || item.expire_at.is_some_and(|at| at <= now) => Outcome::Expired,
            (None, None) => Outcome::Copied,
        };
        ctx.progress.record(item.key, outcome);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_absolute() {
        assert_eq!(expiry(Some(-2), 1000), Err(()));
        assert_eq!(expiry(Some(-1), 1000), Ok(None));
        assert_eq!(expiry(Some(500), 1000), Ok(Some(1500)));
        assert_eq!(expiry(Some(0), 1000), Ok(Some(1001)));
    }
}
