//! Which arguments of a command are keys, from Redis's own key specifications (the
//! `key_specs` of `COMMAND`, Redis 7), so that no hand-written list of commands goes stale.
//! Servers without key specs (Redis 6) give the older first-key/last-key/step triple, used
//! then. Pure: built from a `COMMAND` reply, asked per command.

use std::collections::{HashMap, HashSet};

use redis::Value;

use crate::protocol::Command;

/// Where the keys of one key spec start.
#[derive(Debug, Clone, PartialEq)]
enum Begin {
    /// At this argument index (the command name is index 0).
    Index(usize),
    /// After the first argument equal to `word` (searched forwards from `start` when it is
    /// positive, backwards from `argc + start` when negative).
    Keyword { word: Vec<u8>, start: i64 },
}

/// Which arguments are keys, counted from where the search began.
#[derive(Debug, Clone, PartialEq)]
enum Find {
    /// From the start to `last` (negative: from the end), every `step`-th; a negative `last`
    /// with a `limit` takes 1/limit of the rest.
    Range { last: i64, step: usize, limit: i64 },
    /// The argument at `num` says how many keys follow, starting at `first`, every `step`-th.
    KeyNum { num: usize, first: usize, step: usize },
}

#[derive(Debug, Clone, PartialEq)]
struct KeySpec {
    begin: Begin,
    find: Find,
}

/// The key specifications of every command a server knows.
#[derive(Debug, Default)]
pub struct KeyTable {
    /// Lower-case name (`get`, or `object|encoding` for a subcommand) to its key specs.
    specs: HashMap<String, Vec<KeySpec>>,
    /// Commands whose keys depend on their subcommand.
    containers: HashSet<String>,
}

impl KeyTable {
    /// Builds the table from the reply to `COMMAND`.
    pub fn from_command_reply(reply: &Value) -> Self {
        let mut table = Self::default();
        if let Value::Array(entries) = reply {
            for entry in entries {
                table.add(entry, None);
            }
        }
        table
    }

    /// Commands known.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// Whether no command is known.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    fn add(&mut self, entry: &Value, parent: Option<&str>) {
        let Value::Array(parts) = entry else { return };
        let Some(name) = parts.first().and_then(text) else {
            return;
        };
        let name = name.to_ascii_lowercase();
        let mut specs: Vec<KeySpec> = match parts.get(8) {
            Some(Value::Array(list)) => list.iter().filter_map(key_spec).collect(),
            _ => Vec::new(),
        };
        let legacy = (int(parts.get(3)), int(parts.get(4)), int(parts.get(5)));
        if specs.is_empty() && parts.len() < 9 {
            // Redis 6: no key specs; the first/last/step triple.
            if let (Some(first), Some(last), Some(step)) = legacy {
                if first > 0 && step > 0 {
                    specs.push(KeySpec {
                        begin: Begin::Index(first as usize),
                        find: Find::Range {
                            last: if last < 0 { last } else { last - first },
                            step: step as usize,
                            limit: 0,
                        },
                    });
                }
            }
        }
        if let Some(Value::Array(subs)) = parts.get(9) {
            if !subs.is_empty() && parent.is_none() {
                self.containers.insert(name.clone());
                for sub in subs {
                    self.add(sub, Some(&name));
                }
            }
        }
        self.specs.insert(name, specs);
    }

    /// The keys of `cmd`, in argument order (none for a keyless or unknown command).
    pub fn keys<'a>(&self, cmd: &'a Command) -> Vec<&'a [u8]> {
        let args = cmd.args();
        let mut name = String::from_utf8_lossy(cmd.name()).to_ascii_lowercase();
        if self.containers.contains(&name) {
            if let Some(sub) = args.get(1) {
                name.push('|');
                name.push_str(&String::from_utf8_lossy(sub).to_ascii_lowercase());
            }
        }
        let Some(specs) = self.specs.get(&name) else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for spec in specs {
            for i in spec.positions(args) {
                keys.push(args[i].as_slice());
            }
        }
        keys
    }
}

impl KeySpec {
    /// The argument indexes this spec finds in `args` (all within `args`).
    fn positions(&self, args: &[Vec<u8>]) -> Vec<usize> {
        let argc = args.len() as i64;
        let start = match &self.begin {
            Begin::Index(i) => *i as i64,
            Begin::Keyword { word, start } => {
                let (mut i, step, end) = if *start > 0 {
                    (*start, 1, argc)
                } else {
                    (argc + *start, -1, 0)
                };
                let mut found = None;
                while i != end && i >= 1 && i < argc {
                    if args[i as usize].eq_ignore_ascii_case(word) {
                        found = Some(i + 1);
                        break;
                    }
                    i += step;
                }
                match found {
                    Some(s) => s,
                    None => return Vec::new(),
                }
            }
        };
        let (first, last, step) = match self.find {
            Find::Range { last, step, limit } => {
                let end = if last >= 0 {
                    start + last
                } else if limit <= 0 {
                    argc + last
                } else {
                    start + ((argc - start) / limit + last)
                };
                (start, end, step.max(1) as i64)
            }
            Find::KeyNum { num, first, step } => {
                let Some(count) = args
                    .get((start + num as i64) as usize)
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|s| s.parse::<i64>().ok())
                else {
                    return Vec::new();
                };
                let first = start + first as i64;
                (
                    first,
                    first + (count - 1) * step.max(1) as i64,
                    step.max(1) as i64,
                )
            }
        };
        let mut out = Vec::new();
        let mut i = first;
        while i <= last && i < argc && i >= 1 {
            out.push(i as usize);
            i += step;
        }
        out
    }
}

/// One key spec from its RESP2 form (a flat list of names and values); `None` for the kinds
/// Redis itself cannot resolve without running the command (`unknown`).
fn key_spec(value: &Value) -> Option<KeySpec> {
    let begin = field(value, "begin_search")?;
    let find = field(value, "find_keys")?;
    let begin = match text(field(begin, "type")?)?.as_str() {
        "index" => Begin::Index(int(field(field(begin, "spec")?, "index"))? as usize),
        "keyword" => {
            let spec = field(begin, "spec")?;
            Begin::Keyword {
                word: text(field(spec, "keyword")?)?.into_bytes(),
                start: int(field(spec, "startfrom"))?,
            }
        }
        _ => return None,
    };
    let find = match text(field(find, "type")?)?.as_str() {
        "range" => {
            let spec = field(find, "spec")?;
            Find::Range {
                last: int(field(spec, "lastkey"))?,
                step: int(field(spec, "keystep"))?.max(1) as usize,
                limit: int(field(spec, "limit")).unwrap_or(0),
            }
        }
        "keynum" => {
            let spec = field(find, "spec")?;
            Find::KeyNum {
                num: int(field(spec, "keynumidx"))?.max(0) as usize,
                first: int(field(spec, "firstkey"))?.max(0) as usize,
                step: int(field(spec, "keystep"))?.max(1) as usize,
            }
        }
        _ => return None,
    };
    Some(KeySpec { begin, find })
}

/// The value after `name` in a flat name/value list (or a RESP3-style map).
fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Array(items) => items
            .chunks(2)
            .find(|pair| text(&pair[0]).is_some_and(|t| t == name))
            .and_then(|pair| pair.get(1)),
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k).is_some_and(|t| t == name))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

fn int(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn arr(items: Vec<Value>) -> Value {
        Value::Array(items)
    }

    fn index(i: i64) -> Value {
        arr(vec![
            b("type"),
            b("index"),
            b("spec"),
            arr(vec![b("index"), Value::Int(i)]),
        ])
    }

    fn keyword(word: &str, from: i64) -> Value {
        arr(vec![
            b("type"),
            b("keyword"),
            b("spec"),
            arr(vec![b("keyword"), b(word), b("startfrom"), Value::Int(from)]),
        ])
    }

    fn range(last: i64, step: i64, limit: i64) -> Value {
        arr(vec![
            b("type"),
            b("range"),
            b("spec"),
            arr(vec![
                b("lastkey"),
                Value::Int(last),
                b("keystep"),
                Value::Int(step),
                b("limit"),
                Value::Int(limit),
            ]),
        ])
    }

    fn keynum(num: i64, first: i64, step: i64) -> Value {
        arr(vec![
            b("type"),
            b("keynum"),
            b("spec"),
            arr(vec![
                b("keynumidx"),
                Value::Int(num),
                b("firstkey"),
                Value::Int(first),
                b("keystep"),
                Value::Int(step),
            ]),
        ])
    }

    fn spec(begin: Value, find: Value) -> Value {
        arr(vec![
            b("flags"),
            arr(vec![]),
            b("begin_search"),
            begin,
            b("find_keys"),
            find,
        ])
    }

    fn command(name: &str, specs: Vec<Value>, subs: Vec<Value>) -> Value {
        arr(vec![
            b(name),
            Value::Int(-2),
            arr(vec![]),
            Value::Int(0),
            Value::Int(0),
            Value::Int(0),
            arr(vec![]),
            arr(vec![]),
            arr(specs),
            arr(subs),
        ])
    }

    /// A table with the shapes of real commands (specs as Redis 7.0 reports them).
    fn table() -> KeyTable {
        KeyTable::from_command_reply(&arr(vec![
            command("get", vec![spec(index(1), range(0, 1, 0))], vec![]),
            command("mset", vec![spec(index(1), range(-1, 2, 0))], vec![]),
            command("mget", vec![spec(index(1), range(-1, 1, 0))], vec![]),
            command("eval", vec![spec(index(2), keynum(0, 1, 1))], vec![]),
            command(
                "xread",
                vec![spec(keyword("STREAMS", 1), range(-1, 1, 2))],
                vec![],
            ),
            command(
                "zunionstore",
                vec![spec(index(1), range(0, 1, 0)), spec(index(2), keynum(0, 1, 1))],
                vec![],
            ),
            command(
                "object",
                vec![],
                vec![command(
                    "object|encoding",
                    vec![spec(index(2), range(0, 1, 0))],
                    vec![],
                )],
            ),
            command("ping", vec![], vec![]),
        ]))
    }

    fn keys(table: &KeyTable, parts: &[&str]) -> Vec<String> {
        let cmd = Command::from_strs(parts).unwrap();
        table
            .keys(&cmd)
            .into_iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn finds_keys_by_index_range_keynum_and_keyword() {
        let t = table();
        assert_eq!(keys(&t, &["GET", "a"]), ["a"]);
        assert_eq!(keys(&t, &["mset", "a", "1", "b", "2"]), ["a", "b"]);
        assert_eq!(keys(&t, &["MGET", "a", "b", "c"]), ["a", "b", "c"]);
        assert_eq!(
            keys(&t, &["EVAL", "return 1", "2", "k1", "k2", "arg"]),
            ["k1", "k2"]
        );
        assert!(keys(&t, &["EVAL", "return 1", "0", "arg"]).is_empty());
        assert_eq!(
            keys(&t, &["XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"]),
            ["s1", "s2"]
        );
        assert_eq!(
            keys(&t, &["ZUNIONSTORE", "dst", "2", "a", "b", "WEIGHTS", "1", "2"]),
            ["dst", "a", "b"]
        );
        assert_eq!(keys(&t, &["OBJECT", "ENCODING", "k"]), ["k"]);
        assert!(keys(&t, &["PING"]).is_empty());
        assert!(keys(&t, &["NOSUCH", "x"]).is_empty());
    }

    #[test]
    fn malformed_commands_find_no_key_outside_their_arguments() {
        let t = table();
        assert!(keys(&t, &["GET"]).is_empty());
        assert!(keys(&t, &["EVAL", "s", "5", "only"]).len() <= 1);
        assert!(keys(&t, &["EVAL", "s", "x"]).is_empty());
        assert!(keys(&t, &["XREAD", "COUNT", "2"]).is_empty());
    }

    #[test]
    fn legacy_triples_are_used_without_key_specs() {
        let t = KeyTable::from_command_reply(&arr(vec![arr(vec![
            b("mset"),
            Value::Int(-3),
            arr(vec![]),
            Value::Int(1),
            Value::Int(-1),
            Value::Int(2),
        ])]));
        assert_eq!(keys(&t, &["MSET", "a", "1", "b", "2"]), ["a", "b"]);
    }
}
