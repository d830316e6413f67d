//! How a batch of wire commands runs on a cluster, and how the nodes' replies become one
//! reply per command. Pure: [`plan`] turns commands into [`Entry`]s (parts to send, each to
//! a slot's owner, any primary or one given primary, and how to merge them), [`merge`] puts
//! the replies together.
//!
//! - A `MULTI ... EXEC` group is one part: all its keys must hash to one slot.
//! - `MGET`, `DEL`, `UNLINK`, `EXISTS`, `TOUCH` across slots are split by slot and merged.
//! - Other commands whose keys hash to several slots get Redis's own `CROSSSLOT` error.
//! - Whole-database commands go to every primary (`DBSIZE`, `FLUSHDB`, `FLUSHALL`, `KEYS`,
//!   `RANDOMKEY`, `SCRIPT LOAD|FLUSH|EXISTS`, `FUNCTION LOAD|FLUSH|DELETE|RESTORE`); `SCAN`
//!   walks them one after the other ([`super::cursor`]).
//! - `PUBLISH` goes to the first seed, where subscription streams connect; any other keyless
//!   command goes to any primary.

use redis::Value;

use super::cursor;
use super::keys::KeyTable;
use super::slot::key_slot;
use crate::protocol::Command;

/// Redis's error for keys of one request in several slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// Where a part goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The owner of this slot.
    Slot(u16),
    /// Any primary.
    Any,
    /// The primary with this index (in slot order).
    Node(usize),
    /// The first seed node, where restdis's own subscription streams connect (`PUBLISH`
    /// goes there, so its count includes them; the cluster relays the message everywhere).
    Seed,
}

/// Commands sent together to one node, as one contiguous batch.
#[derive(Debug, Clone)]
pub struct Part {
    /// Where.
    pub target: Target,
    /// What (one command, or a `MULTI ... EXEC` group).
    pub cmds: Vec<Command>,
}

/// How the parts' replies become the entry's replies.
#[derive(Debug, Clone, PartialEq)]
pub enum Merge {
    /// One part; its replies as they are.
    Each,
    /// The sum of the parts' integers.
    Sum,
    /// `MGET`: part `i`'s values go to positions `.0[i]` of an array of `.1` values.
    Positions(Vec<Vec<usize>>, usize),
    /// The first error, else the first part's reply.
    First,
    /// The parts' arrays, one after the other.
    Concat,
    /// `SCRIPT EXISTS`: 1 where every primary has the script.
    AllTrue,
    /// `RANDOMKEY`: the first key any primary gave.
    NonNil,
    /// `SCAN` on primary `.0` of `.1`: its cursor becomes a cluster-wide one.
    Scan(usize, usize),
    /// No part: these error replies, without asking Redis.
    Fail(String, usize),
}

/// The plan of one command (or one `MULTI ... EXEC` group).
#[derive(Debug, Clone)]
pub struct Entry {
    /// What to send.
    pub parts: Vec<Part>,
    /// How to answer.
    pub merge: Merge,
}

/// Plans `cmds` for a cluster of `primaries` primaries.
pub fn plan(table: &KeyTable, cmds: &[Command], primaries: usize) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut i = 0;
    while i < cmds.len() {
        if cmds[i].name().eq_ignore_ascii_case(b"MULTI") {
            let end = cmds[i..]
                .iter()
                .position(|c| c.name().eq_ignore_ascii_case(b"EXEC"))
                .map(|p| i + p)
                .unwrap_or(cmds.len() - 1);
            let group = &cmds[i..=end];
            let keys = group.iter().flat_map(|c| table.keys(c));
            entries.push(match common_slot(keys) {
                Ok(target) => Entry {
                    parts: vec![Part {
                        target,
                        cmds: group.to_vec(),
                    }],
                    merge: Merge::Each,
                },
                Err(()) => Entry {
                    parts: Vec::new(),
                    merge: Merge::Fail(CROSSSLOT.into(), group.len()),
                },
            });
            i = end + 1;
            continue;
        }
        entries.push(plan_one(table, &cmds[i], primaries));
        i += 1;
    }
    entries
}

fn plan_one(table: &KeyTable, cmd: &Command, primaries: usize) -> Entry {
    let name = cmd.upper_name();
    let name = name.as_ref().map(|n| n.as_str()).unwrap_or("");
    let sub = || {
        cmd.params()
            .first()
            .map(|s| String::from_utf8_lossy(s).to_ascii_uppercase())
            .unwrap_or_default()
    };
    let everywhere = |merge: Merge| Entry {
        parts: (0..primaries)
            .map(|n| Part {
                target: Target::Node(n),
                cmds: vec![cmd.clone()],
            })
            .collect(),
        merge,
    };
    match name {
        "DBSIZE" => return everywhere(Merge::Sum),
        "FLUSHDB" | "FLUSHALL" => return everywhere(Merge::First),
        "KEYS" => return everywhere(Merge::Concat),
        "RANDOMKEY" => return everywhere(Merge::NonNil),
        "SCAN" => return scan(cmd, primaries),
        "PUBLISH" => {
            return Entry {
                parts: vec![Part {
                    target: Target::Seed,
                    cmds: vec![cmd.clone()],
                }],
                merge: Merge::Each,
            }
        }
        "SCRIPT" => match sub().as_str() {
            "LOAD" | "FLUSH" => return everywhere(Merge::First),
            "EXISTS" => return everywhere(Merge::AllTrue),
            _ => {}
        },
        "FUNCTION" => {
            if matches!(sub().as_str(), "LOAD" | "FLUSH" | "DELETE" | "RESTORE") {
                return everywhere(Merge::First);
            }
        }
        _ => {}
    }
    let keys = table.keys(cmd);
    match common_slot(keys.iter().copied()) {
        Ok(target) => Entry {
            parts: vec![Part {
                target,
                cmds: vec![cmd.clone()],
            }],
            merge: Merge::Each,
        },
        Err(()) => match name {
            "MGET" => split(cmd, &keys, true),
            "DEL" | "UNLINK" | "EXISTS" | "TOUCH" => split(cmd, &keys, false),
            _ => Entry {
                parts: Vec::new(),
                merge: Merge::Fail(CROSSSLOT.into(), 1),
            },
        },
    }
}

/// The one slot all `keys` hash to (`Any` for none); `Err` when they hash to several.
fn common_slot<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Result<Target, ()> {
    let mut found = None;
    for key in keys {
        let slot = key_slot(key);
        match found {
            None => found = Some(slot),
            Some(s) if s != slot => return Err(()),
            Some(_) => {}
        }
    }
    Ok(found.map(Target::Slot).unwrap_or(Target::Any))
}

/// A command whose keys are independent, one part per slot (keys in their order).
fn split(cmd: &Command, keys: &[&[u8]], positions: bool) -> Entry {
    let mut slots: Vec<(u16, Vec<Vec<u8>>, Vec<usize>)> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let slot = key_slot(key);
        match slots.iter_mut().find(|(s, _, _)| *s == slot) {
            Some((_, args, at)) => {
                args.push(key.to_vec());
                at.push(i);
            }
            None => slots.push((slot, vec![cmd.name().to_vec(), key.to_vec()], vec![i])),
        }
    }
    let mut parts = Vec::with_capacity(slots.len());
    let mut places = Vec::with_capacity(slots.len());
    for (slot, args, at) in slots {
        let Some(part) = Command::new(args) else { continue };
        parts.push(Part {
            target: Target::Slot(slot),
            cmds: vec![part],
        });
        places.push(at);
    }
    let merge = if positions {
        Merge::Positions(places, keys.len())
    } else {
        Merge::Sum
    };
    Entry { parts, merge }
}

/// `SCAN cursor ...` as the same SCAN with the node's own cursor, on the node the cursor names.
fn scan(cmd: &Command, primaries: usize) -> Entry {
    let decoded = cmd
        .params()
        .first()
        .and_then(|c| cursor::decode(c, primaries.max(1)));
    let Some((node, node_cursor)) = decoded.filter(|_| primaries > 0) else {
        return Entry {
            parts: Vec::new(),
            merge: Merge::Fail("ERR invalid cursor".into(), 1),
        };
    };
    let mut args = cmd.args().to_vec();
    args[1] = node_cursor.to_string().into_bytes();
    match Command::new(args) {
        Some(c) => Entry {
            parts: vec![Part {
                target: Target::Node(node),
                cmds: vec![c],
            }],
            merge: Merge::Scan(node, primaries),
        },
        None => Entry {
            parts: Vec::new(),
            merge: Merge::Fail("ERR invalid cursor".into(), 1),
        },
    }
}

/// An error reply with `text` (`CODE detail`).
pub fn error_value(text: &str) -> Value {
    redis::parse_redis_value(format!("-{text}\r\n").as_bytes())
        .unwrap_or_else(|_| Value::SimpleString(text.to_string()))
}

/// The entry's replies from its parts' replies (one list per part, in part order).
pub fn merge(how: &Merge, mut parts: Vec<Vec<Value>>) -> Vec<Value> {
    if let Merge::Fail(text, n) = how {
        return vec![error_value(text); *n];
    }
    if *how == Merge::Each {
        return parts.pop().unwrap_or_default();
    }
    let mut firsts: Vec<Value> = parts
        .into_iter()
        .map(|mut p| {
            if p.is_empty() {
                Value::Nil
            } else {
                p.swap_remove(0)
            }
        })
        .collect();
    if let Some(err) = firsts.iter().find(|v| matches!(v, Value::ServerError(_))) {
        return vec![err.clone()];
    }
    let one = match how {
        Merge::Sum => Value::Int(
            firsts
                .iter()
                .map(|v| if let Value::Int(n) = v { *n } else { 0 })
                .sum(),
        ),
        Merge::Positions(places, len) => {
            let mut out = vec![Value::Nil; *len];
            for (values, at) in firsts.into_iter().zip(places) {
                if let Value::Array(values) = values {
                    for (v, &i) in values.into_iter().zip(at) {
                        if let Some(slot) = out.get_mut(i) {
                            *slot = v;
                        }
                    }
                }
            }
            Value::Array(out)
        }
        Merge::Concat => Value::Array(
            firsts
                .into_iter()
                .flat_map(|v| if let Value::Array(a) = v { a } else { Vec::new() })
                .collect(),
        ),
        Merge::AllTrue => {
            let mut out: Option<Vec<Value>> = None;
            for v in firsts {
                let Value::Array(items) = v else { continue };
                out = Some(match out {
                    None => items,
                    Some(prev) => prev
                        .into_iter()
                        .zip(items)
                        .map(|(a, b)| match (a, b) {
                            (Value::Int(x), Value::Int(y)) => Value::Int(x.min(y)),
                            (a, _) => a,
                        })
                        .collect(),
                });
            }
            Value::Array(out.unwrap_or_default())
        }
        Merge::NonNil => firsts
            .into_iter()
            .find(|v| !matches!(v, Value::Nil))
            .unwrap_or(Value::Nil),
        Merge::Scan(node, primaries) => match firsts.pop() {
            Some(Value::Array(mut reply)) if reply.len() == 2 => {
                let node_cursor = match &reply[0] {
                    Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()),
                    _ => None,
                }
                .unwrap_or(0);
                reply[0] = Value::BulkString(cursor::next(*node, node_cursor, *primaries).into_bytes());
                Value::Array(reply)
            }
            other => other.unwrap_or(Value::Nil),
        },
        Merge::First | Merge::Each | Merge::Fail(..) => firsts.into_iter().next().unwrap_or(Value::Nil),
    };
    vec![one]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KeyTable {
        // The key specs of the few commands used here, in the shape Redis 7 gives them.
        let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let spec = |last: i64| {
            Value::Array(vec![
                b("begin_search"),
                Value::Array(vec![
                    b("type"),
                    b("index"),
                    b("spec"),
                    Value::Array(vec![b("index"), Value::Int(1)]),
                ]),
                b("find_keys"),
                Value::Array(vec![
                    b("type"),
                    b("range"),
                    b("spec"),
                    Value::Array(vec![
                        b("lastkey"),
                        Value::Int(last),
                        b("keystep"),
                        Value::Int(1),
                        b("limit"),
                        Value::Int(0),
                    ]),
                ]),
            ])
        };
        let cmd = |name: &str, last: i64| {
            Value::Array(vec![
                b(name),
                Value::Int(-2),
                Value::Array(vec![]),
                Value::Int(1),
                Value::Int(last),
                Value::Int(1),
                Value::Array(vec![]),
                Value::Array(vec![]),
                Value::Array(vec![spec(last)]),
                Value::Array(vec![]),
            ])
        };
        KeyTable::from_command_reply(&Value::Array(vec![
            cmd("get", 0),
            cmd("set", 0),
            cmd("mget", -1),
            cmd("del", -1),
            cmd("rename", 1),
        ]))
    }

    fn c(parts: &[&str]) -> Command {
        Command::from_strs(parts).unwrap()
    }

    #[test]
    fn one_slot_goes_to_its_owner_and_keyless_anywhere() {
        let entries = plan(
            &table(),
            &[c(&["GET", "foo"]), c(&["PING"]), c(&["PUBLISH", "ch", "m"])],
            3,
        );
        assert_eq!(entries[0].parts[0].target, Target::Slot(12182));
        assert_eq!(entries[1].parts[0].target, Target::Any);
        assert_eq!(entries[2].parts[0].target, Target::Seed);
    }

    #[test]
    fn multi_exec_groups_stay_whole_or_fail_with_crossslot() {
        let same = [
            c(&["MULTI"]),
            c(&["SET", "{u}a", "1"]),
            c(&["GET", "{u}b"]),
            c(&["EXEC"]),
        ];
        let entries = plan(&table(), &same, 3);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].parts[0].cmds.len(), 4);
        let cross = [
            c(&["MULTI"]),
            c(&["SET", "a", "1"]),
            c(&["GET", "b"]),
            c(&["EXEC"]),
            c(&["PING"]),
        ];
        let entries = plan(&table(), &cross, 3);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].merge, Merge::Fail(CROSSSLOT.into(), 4));
        assert_eq!(merge(&entries[0].merge, vec![]).len(), 4);
    }

    #[test]
    fn independent_keys_are_split_and_merged_in_order() {
        let entries = plan(&table(), &[c(&["MGET", "a", "b", "{a}x"])], 3);
        let e = &entries[0];
        assert_eq!(e.parts.len(), 2);
        assert_eq!(e.parts[0].cmds[0].args().len(), 3); // MGET a {a}x
        let replies = vec![
            vec![Value::Array(vec![Value::Int(1), Value::Int(3)])],
            vec![Value::Array(vec![Value::Int(2)])],
        ];
        assert_eq!(
            merge(&e.merge, replies),
            [Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)])]
        );
        let del = &plan(&table(), &[c(&["DEL", "a", "b"])], 3)[0];
        assert_eq!(
            merge(&del.merge, vec![vec![Value::Int(1)], vec![Value::Int(1)]]),
            [Value::Int(2)]
        );
        let rename = &plan(&table(), &[c(&["RENAME", "a", "b"])], 3)[0];
        assert_eq!(rename.merge, Merge::Fail(CROSSSLOT.into(), 1));
    }

    #[test]
    fn whole_database_commands_reach_every_primary() {
        let e = &plan(&table(), &[c(&["DBSIZE"])], 3)[0];
        let targets: Vec<_> = e.parts.iter().map(|p| p.target.clone()).collect();
        assert_eq!(targets, [Target::Node(0), Target::Node(1), Target::Node(2)]);
        assert_eq!(
            merge(
                &e.merge,
                vec![vec![Value::Int(1)], vec![Value::Int(2)], vec![Value::Int(3)]]
            ),
            [Value::Int(6)]
        );
        let err = error_value("ERR boom");
        assert_eq!(
            merge(&Merge::First, vec![vec![Value::Okay], vec![err.clone()]]),
            [err]
        );
    }

    #[test]
    fn scan_walks_the_primaries_in_turn() {
        let e = &plan(&table(), &[c(&["SCAN", "0", "COUNT", "10"])], 2)[0];
        assert_eq!(e.parts[0].target, Target::Node(0));
        let done = Value::Array(vec![Value::BulkString(b"0".to_vec()), Value::Array(vec![])]);
        let Value::Array(r) = &merge(&e.merge, vec![vec![done.clone()]])[0] else {
            panic!()
        };
        assert_eq!(r[0], Value::BulkString(b"1".to_vec()));
        let e = &plan(&table(), &[c(&["SCAN", "1"])], 2)[0];
        assert_eq!(e.parts[0].target, Target::Node(1));
        assert_eq!(e.parts[0].cmds[0].args()[1], b"0");
        let Value::Array(r) = &merge(&e.merge, vec![vec![done]])[0] else {
            panic!()
        };
        assert_eq!(r[0], Value::BulkString(b"0".to_vec()));
        let bad = &plan(&table(), &[c(&["SCAN", "9"])], 2)[0];
        assert!(matches!(bad.merge, Merge::Fail(..)));
    }
}
