//! Which commands run where. Restdis multiplexes every request onto shared Redis connections,
//! so a command that would block a connection or change its state must never reach one.
//! [`Policy::classify`] decides, for each command, one [`Action`]: forward it, run it
//! non-blocking (wrapped in MULTI/EXEC, as Upstash does), emulate it (`SCAN ... WITHTYPE`),
//! answer it locally (`SELECT` of the token's own DB), or refuse it with a message that names it.
//!
//! Read-only tokens are checked against Redis's own command flags (`COMMAND` output, parsed by
//! [`CommandTable::from_command_reply`]): a (sub)command is a read if Redis flags it
//! `readonly` and does not put it in `@dangerous` (Upstash's `+@read -@dangerous`).

use std::collections::HashSet;
use std::time::Duration;

use redis::Value;

use super::command::UpperName;
use super::Command;

/// What to do with one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send it as it is on a shared connection.
    Forward,
    /// A blocking command: wrap it in MULTI/EXEC so Redis runs it without blocking.
    NonBlocking,
    /// A blocking command in dedicated mode: the command (its timeout capped) and how long it
    /// may wait; it runs on a dedicated connection.
    Blocking(Command, Duration),
    /// `SCAN ... WITHTYPE` (Upstash extension): run SCAN without it, then TYPE each key.
    ScanWithType,
    /// Answer without Redis.
    Answer(Value),
    /// Refuse with this error text.
    Refuse(String),
}

/// How blocking commands (BLPOP, XREAD BLOCK, ...) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    /// Without blocking (wrapped in MULTI/EXEC), as Upstash does: an empty list answers nil at once.
    Emulate,
    /// Really waiting, on a dedicated connection from a bounded pool, the timeout capped.
    Dedicated,
}

/// Per-request facts the policy needs.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// The token may only read.
    pub read_only: bool,
    /// The Redis database this token's tenant uses.
    pub db: i64,
    /// Other tenants use other databases of the same Redis: commands that reach across
    /// databases are refused.
    pub shared: bool,
}

/// The commands that block a connection until data arrives (run non-blocking). A `match`,
/// not a list search: this runs for every command.
fn is_blocking(name: &str) -> bool {
    matches!(
        name,
        "BLPOP" | "BRPOP" | "BRPOPLPUSH" | "BLMOVE" | "BLMPOP" | "BZPOPMIN" | "BZPOPMAX" | "BZMPOP"
    )
}

/// The default operator deny-list (`NAME` or `NAME SUBCOMMAND`).
pub const DEFAULT_DENY: &[&str] = &[
    "SHUTDOWN",
    "DEBUG",
    "MODULE",
    "CONFIG SET",
    "CONFIG REWRITE",
    "CONFIG RESETSTAT",
    "REPLICAOF",
    "SLAVEOF",
    "SYNC",
    "PSYNC",
    "REPLCONF",
    "ACL SETUSER",
    "ACL DELUSER",
    "ACL LOAD",
    "ACL SAVE",
    "MIGRATE",
    "CLUSTER",
    "FAILOVER",
];

/// Commands a read-only token may always run although Redis does not flag them `readonly`.
const READ_ONLY_EXTRAS: &[&str] = &["ping", "echo", "eval_ro", "evalsha_ro", "fcall_ro"];

/// The operator's command policy: the deny-list and how blocking commands run. Built once at
/// start-up.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Sorted, for a binary search (cheaper than hashing a name per command).
    deny: Vec<String>,
    /// Names that appear in `deny` with a subcommand (`CONFIG` for `CONFIG SET`), sorted, so
    /// the common case needs no subcommand look-up.
    deny_with_sub: Vec<String>,
    blocking: Blocking,
    max_block: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self::new(DEFAULT_DENY.iter().copied())
    }
}

impl Policy {
    /// A policy denying the given commands (`"SHUTDOWN"`, `"CONFIG SET"`; any case).
    pub fn new<'a>(deny: impl IntoIterator<Item = &'a str>) -> Self {
        let deny = deny
            .into_iter()
            .map(|d| {
                d.split_whitespace()
                    .collect::<Vec<_>>()
                    .join("|")
                    .to_ascii_uppercase()
            })
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect::<Vec<String>>();
        let deny_with_sub = deny
            .iter()
            .filter_map(|d| d.split_once('|').map(|(name, _)| name.to_string()))
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
        Self {
            deny,
            deny_with_sub,
            blocking: Blocking::Emulate,
            max_block: Duration::from_secs(30),
        }
    }

    /// Sets how blocking commands run, and the longest wait in dedicated mode.
    pub fn with_blocking(mut self, blocking: Blocking, max_block: Duration) -> Self {
        self.blocking = blocking;
        self.max_block = max_block;
        self
    }

    /// Decides what to do with `cmd` for a request with `access`. `table` is the read-only
    /// command table, needed only when `access.read_only`; without it a read-only request is
    /// refused (the caller reports the table as not loaded yet before asking).
    pub fn classify(&self, cmd: &Command, access: Access, table: Option<&CommandTable>) -> Action {
        let Some(upper) = cmd.upper_name() else {
            // Not a plausible command name: Redis answers "unknown command"; a read-only token
            // is refused as for any command Redis does not flag as a read.
            return if access.read_only {
                Action::Refuse(noperm(cmd))
            } else {
                Action::Forward
            };
        };
        let name = upper.as_str();
        if let Some(action) = connection_state(cmd, name, access) {
            return action;
        }
        // The subcommand, upper-cased, only where a rule looks at it.
        let sub = || cmd.params().first().and_then(|s| UpperName::new(s));
        if self.denied(name, sub) {
            let shown = match sub() {
                Some(sub) if self.listed(&format!("{name}|{}", sub.as_str())) => {
                    format!("{name} {}", sub.as_str())
                }
                _ => name.to_string(),
            };
            return Action::Refuse(format!("ERR {shown} is denied by the restdis command policy"));
        }
        if access.shared {
            if let Some(msg) = cross_db(cmd, name, sub()) {
                return Action::Refuse(msg);
            }
        }
        if access.read_only && !table.is_some_and(|t| t.allows(cmd)) {
            return Action::Refuse(noperm(cmd));
        }
        if is_blocking(name) || (matches!(name, "XREAD" | "XREADGROUP") && block_option(cmd).is_some()) {
            return match self.blocking {
                Blocking::Emulate => Action::NonBlocking,
                Blocking::Dedicated => {
                    let (capped, wait) = cap_timeout(cmd, name, self.max_block);
                    Action::Blocking(capped, wait)
                }
            };
        }
        if name == "SCAN" && withtype_positions(cmd).next().is_some() {
            return Action::ScanWithType;
        }
        Action::Forward
    }

    fn listed(&self, entry: &str) -> bool {
        self.deny.binary_search_by(|d| d.as_str().cmp(entry)).is_ok()
    }

    fn denied(&self, name: &str, sub: impl FnOnce() -> Option<UpperName>) -> bool {
        if self.deny.is_empty() {
            return false;
        }
        self.listed(name)
            || (self
                .deny_with_sub
                .binary_search_by(|d| d.as_str().cmp(name))
                .is_ok()
                && sub().is_some_and(|s| self.listed(&format!("{name}|{}", s.as_str()))))
    }
}

/// Commands that would change or block the shared connection itself.
fn connection_state(cmd: &Command, name: &str, access: Access) -> Option<Action> {
    let refuse = |why: &str| Some(Action::Refuse(format!("ERR {name} is not allowed: {why}")));
    match name {
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" => {
            refuse("each request is independent; send transactions to /multi-exec")
        }
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE" | "SUNSUBSCRIBE" => {
            refuse("use the /subscribe/<channel> or /psubscribe/<pattern> streaming endpoints")
        }
        "MONITOR" => refuse("use the /monitor streaming endpoint"),
        "HELLO" | "AUTH" | "RESET" | "QUIT" => refuse("it would change the state of a shared connection"),
        "WAIT" | "WAITAOF" => refuse("restdis does not run WAIT or WAITAOF"),
        "SELECT" => {
            let own = access.db.to_string();
            match cmd.params() {
                // A client selecting 0 (what Upstash allows) means "my database".
                [db] if db.as_slice() == own.as_bytes() || db.as_slice() == b"0" => {
                    Some(Action::Answer(Value::Okay))
                }
                _ => refuse(&format!(
                    "this token's database is {own}, and connections are shared"
                )),
            }
        }
        "CLIENT" => {
            let sub = cmd.params().first().and_then(|s| UpperName::new(s))?;
            match sub.as_str() {
                "REPLY" | "TRACKING" | "CACHING" | "PAUSE" | "UNPAUSE" | "KILL" | "NO-EVICT" | "NO-TOUCH" => {
                    Some(Action::Refuse(format!(
                        "ERR CLIENT {} is not allowed: it would change the state of a shared connection",
                        sub.as_str()
                    )))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// Commands that would reach another tenant's database on a shared Redis.
fn cross_db(cmd: &Command, name: &str, sub: Option<UpperName>) -> Option<String> {
    let reaches = match name {
        "FLUSHALL" | "SWAPDB" | "MOVE" => true,
        // COPY source destination [DB n] [REPLACE]: options follow the two keys.
        "COPY" => cmd.params().iter().skip(2).any(|a| a.eq_ignore_ascii_case(b"DB")),
        "FUNCTION" => sub.is_some_and(|s| matches!(s.as_str(), "FLUSH" | "DELETE" | "LOAD" | "RESTORE")),
        _ => false,
    };
    reaches.then(|| {
        let shown = match sub {
            Some(s) if name == "FUNCTION" => format!("{name} {}", s.as_str()),
            _ => name.to_string(),
        };
        format!("ERR {shown} is not allowed: other tenants share this Redis (use FLUSHDB for your database)")
    })
}

/// The NOPERM error a read-only token gets, worded like Upstash's.
fn noperm(cmd: &Command) -> String {
    format!(
        "NOPERM this user has no permissions to run the '{}' command or its subcommand",
        String::from_utf8_lossy(cmd.name()).to_lowercase()
    )
}

/// Which (sub)commands a read-only token may run, from Redis's `COMMAND` reply.
#[derive(Debug, Clone, Default)]
pub struct CommandTable {
    /// Lower-case `name` or `name|sub` of every allowed command.
    allowed: HashSet<String>,
    /// Lower-case names of commands that have subcommands (`config`, `object`, ...).
    containers: HashSet<String>,
}

impl CommandTable {
    /// Parses the reply of `COMMAND` (Redis 6 and 7 shapes).
    pub fn from_command_reply(reply: &Value) -> Self {
        let mut table = Self::default();
        if let Value::Array(entries) = reply {
            for entry in entries {
                table.add_entry(entry);
            }
        }
        table
            .allowed
            .extend(READ_ONLY_EXTRAS.iter().map(|s| s.to_string()));
        // Upstash restricts SCAN (and KEYS, which @dangerous already covers) for read-only
        // tokens: walking the whole keyspace is not a read of known keys.
        table.allowed.remove("scan");
        table
    }

    /// How many (sub)commands are allowed (for logs and tests).
    pub fn len(&self) -> usize {
        self.allowed.len()
    }

    /// Whether no command is allowed.
    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// Whether a read-only token may run `cmd`.
    pub fn allows(&self, cmd: &Command) -> bool {
        let name = String::from_utf8_lossy(cmd.name()).to_lowercase();
        if self.containers.contains(&name) {
            return match cmd.params().first() {
                Some(sub) => {
                    let full = format!("{name}|{}", String::from_utf8_lossy(sub).to_lowercase());
                    self.allowed.contains(&full)
                }
                None => false,
            };
        }
        self.allowed.contains(&name)
    }

    fn add_entry(&mut self, entry: &Value) {
        let Value::Array(fields) = entry else { return };
        let Some(name) = fields.first().and_then(text) else {
            return;
        };
        let name = name.to_lowercase();
        let flags = fields.get(2).map(texts).unwrap_or_default();
        let categories = fields.get(6).map(texts).unwrap_or_default();
        if flags.iter().any(|f| f == "readonly") && !categories.iter().any(|c| c == "@dangerous") {
            self.allowed.insert(name.clone());
        }
        if let Some(Value::Array(subs)) = fields.get(9) {
            if !subs.is_empty() {
                if let Some(container) = name.split('|').next() {
                    self.containers.insert(container.to_string());
                }
            }
            for sub in subs {
                self.add_entry(sub);
            }
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

fn texts(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

/// The position (in `params`) of the `BLOCK` option of XREAD/XREADGROUP: only among the
/// options before `STREAMS`, never a stream key or ID that happens to be spelled `block`.
fn block_option(cmd: &Command) -> Option<usize> {
    cmd.params()
        .iter()
        .take_while(|a| !a.eq_ignore_ascii_case(b"STREAMS"))
        .position(|a| a.eq_ignore_ascii_case(b"BLOCK"))
}

/// A blocking command with its timeout capped to `max` (a timeout of 0, "forever", too), and
/// the wait that results. Where the timeout is: the last argument (BLPOP, BRPOP, BRPOPLPUSH,
/// BLMOVE, BZPOPMIN, BZPOPMAX; seconds), the first (BLMPOP, BZMPOP; seconds), or after BLOCK
/// (XREAD, XREADGROUP; milliseconds). An unreadable timeout is left for Redis to refuse.
pub fn cap_timeout(cmd: &Command, name: &str, max: Duration) -> (Command, Duration) {
    let params = cmd.params();
    let (index, millis) = match name {
        "BLMPOP" | "BZMPOP" => (Some(0), false),
        "XREAD" | "XREADGROUP" => (block_option(cmd).map(|i| i + 1), true),
        _ => (params.len().checked_sub(1), false),
    };
    let Some(index) = index.filter(|i| *i < params.len()) else {
        return (cmd.clone(), max);
    };
    let Some(asked) = std::str::from_utf8(&params[index])
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
    else {
        return (cmd.clone(), max);
    };
    if asked < 0.0 {
        // Redis refuses a negative timeout at once; leave that to it.
        return (cmd.clone(), Duration::ZERO);
    }
    let asked_secs = if millis { asked / 1000.0 } else { asked };
    if asked_secs > 0.0 && asked_secs <= max.as_secs_f64() {
        return (cmd.clone(), Duration::from_secs_f64(asked_secs));
    }
    let text = if millis {
        max.as_millis().to_string()
    } else {
        format!("{}", max.as_secs_f64())
    };
    let mut args = cmd.args().to_vec();
    args[index + 1] = text.into_bytes();
    (Command::new(args).unwrap_or_else(|| cmd.clone()), max)
}

/// Positions (in `params`) of `WITHTYPE` flags in `SCAN cursor [MATCH p] [COUNT n] [TYPE t]
/// [WITHTYPE]`: only where an option name stands, never as the value of MATCH, COUNT or TYPE.
fn withtype_positions(cmd: &Command) -> impl Iterator<Item = usize> + '_ {
    let params = cmd.params();
    let mut i = 1;
    std::iter::from_fn(move || {
        while i < params.len() {
            let at = i;
            let word = &params[at];
            if word.eq_ignore_ascii_case(b"WITHTYPE") {
                i += 1;
                return Some(at);
            }
            let takes_value = [&b"MATCH"[..], b"COUNT", b"TYPE"]
                .iter()
                .any(|o| word.eq_ignore_ascii_case(o));
            i += if takes_value { 2 } else { 1 };
        }
        None
    })
}

/// `SCAN cursor ... WITHTYPE ...` without its `WITHTYPE` flag(s).
pub fn strip_withtype(cmd: &Command) -> Command {
    let drop: Vec<usize> = withtype_positions(cmd).collect();
    let mut args = vec![cmd.name().to_vec()];
    args.extend(
        cmd.params()
            .iter()
            .enumerate()
            .filter(|(i, _)| !drop.contains(i))
            .map(|(_, a)| a.clone()),
    );
    Command::new(args).unwrap_or_else(|| cmd.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RW: Access = Access {
        read_only: false,
        db: 0,
        shared: false,
    };

    fn cmd(parts: &[&str]) -> Command {
        Command::from_strs(parts).unwrap()
    }

    fn refused(a: Action) -> String {
        match a {
            Action::Refuse(msg) => msg,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn stateful_commands_are_refused_by_name() {
        let p = Policy::default();
        for name in ["multi", "WATCH", "subscribe", "monitor", "hello", "wait"] {
            let msg = refused(p.classify(&cmd(&[name, "x"]), RW, None));
            assert!(msg.contains(&name.to_uppercase()), "{msg}");
        }
        assert!(refused(p.classify(&cmd(&["client", "reply", "off"]), RW, None)).contains("CLIENT REPLY"));
        assert_eq!(
            p.classify(&cmd(&["client", "setname", "x"]), RW, None),
            Action::Forward
        );
    }

    #[test]
    fn select_own_db_is_a_no_op() {
        let p = Policy::default();
        assert_eq!(
            p.classify(&cmd(&["select", "0"]), RW, None),
            Action::Answer(Value::Okay)
        );
        assert!(matches!(
            p.classify(&cmd(&["select", "1"]), RW, None),
            Action::Refuse(_)
        ));
        let db3 = Access {
            read_only: false,
            db: 3,
            shared: true,
        };
        assert_eq!(
            p.classify(&cmd(&["SELECT", "3"]), db3, None),
            Action::Answer(Value::Okay)
        );
        for c in [
            &["flushall"][..],
            &["swapdb", "0", "1"],
            &["move", "k", "1"],
            &["copy", "a", "b", "DB", "1"],
            &["function", "flush"],
        ] {
            assert!(refused(p.classify(&cmd(c), db3, None)).contains("share"), "{c:?}");
        }
        assert_eq!(p.classify(&cmd(&["copy", "a", "b"]), db3, None), Action::Forward);
        assert_eq!(p.classify(&cmd(&["copy", "db", "x"]), db3, None), Action::Forward);
        assert_eq!(p.classify(&cmd(&["flushdb"]), db3, None), Action::Forward);
        assert_eq!(p.classify(&cmd(&["flushall"]), RW, None), Action::Forward);
    }

    #[test]
    fn deny_list_and_blocking_and_scan() {
        let p = Policy::default();
        assert!(refused(p.classify(&cmd(&["config", "set", "a", "b"]), RW, None)).contains("CONFIG SET"));
        assert_eq!(
            p.classify(&cmd(&["config", "get", "a"]), RW, None),
            Action::Forward
        );
        assert_eq!(p.classify(&cmd(&["flushall"]), RW, None), Action::Forward);
        assert_eq!(
            p.classify(&cmd(&["blpop", "q", "5"]), RW, None),
            Action::NonBlocking
        );
        assert_eq!(
            p.classify(&cmd(&["xread", "block", "0", "streams", "s", "$"]), RW, None),
            Action::NonBlocking
        );
        assert_eq!(
            p.classify(&cmd(&["xread", "streams", "s", "0"]), RW, None),
            Action::Forward
        );
        assert_eq!(
            p.classify(&cmd(&["scan", "0", "withType"]), RW, None),
            Action::ScanWithType
        );
        assert_eq!(
            strip_withtype(&cmd(&["scan", "0", "MATCH", "*", "WITHTYPE"])),
            cmd(&["scan", "0", "MATCH", "*"])
        );
        assert_eq!(
            Policy::new([]).classify(&cmd(&["shutdown"]), RW, None),
            Action::Forward
        );
    }

    fn entry(name: &str, flags: &[&str], cats: &[&str], subs: Vec<Value>) -> Value {
        let st = |v: &[&str]| Value::Array(v.iter().map(|s| Value::SimpleString(s.to_string())).collect());
        Value::Array(vec![
            Value::BulkString(name.as_bytes().to_vec()),
            Value::Int(-1),
            st(flags),
            Value::Int(1),
            Value::Int(1),
            Value::Int(1),
            st(cats),
            Value::Array(vec![]),
            Value::Array(vec![]),
            Value::Array(subs),
        ])
    }

    #[test]
    fn read_only_table_from_command_flags() {
        let reply = Value::Array(vec![
            entry("get", &["readonly", "fast"], &["@read", "@string"], vec![]),
            entry("set", &["write"], &["@write"], vec![]),
            entry("keys", &["readonly"], &["@read", "@dangerous"], vec![]),
            entry(
                "object",
                &[],
                &[],
                vec![entry("object|encoding", &["readonly"], &["@read"], vec![])],
            ),
        ]);
        let t = CommandTable::from_command_reply(&reply);
        let p = Policy::default();
        let ro = Access {
            read_only: true,
            db: 0,
            shared: false,
        };
        assert_eq!(p.classify(&cmd(&["GET", "k"]), ro, Some(&t)), Action::Forward);
        assert_eq!(p.classify(&cmd(&["ping"]), ro, Some(&t)), Action::Forward);
        assert!(refused(p.classify(&cmd(&["set", "k", "v"]), ro, Some(&t))).starts_with("NOPERM"));
        assert!(matches!(
            p.classify(&cmd(&["keys", "*"]), ro, Some(&t)),
            Action::Refuse(_)
        ));
        assert_eq!(
            p.classify(&cmd(&["object", "encoding", "k"]), ro, Some(&t)),
            Action::Forward
        );
        assert!(matches!(
            p.classify(&cmd(&["object", "freq", "k"]), ro, Some(&t)),
            Action::Refuse(_)
        ));
        assert!(matches!(
            p.classify(&cmd(&["get", "k"]), ro, None),
            Action::Refuse(_)
        ));
    }

    #[test]
    fn dedicated_blocking_caps_timeouts() {
        let max = Duration::from_secs(30);
        let p = Policy::default().with_blocking(Blocking::Dedicated, max);
        let blocking = |c: &[&str], wait: Duration| Action::Blocking(cmd(c), wait);
        assert_eq!(
            p.classify(&cmd(&["blpop", "q", "2"]), RW, None),
            blocking(&["blpop", "q", "2"], Duration::from_secs(2))
        );
        assert_eq!(
            p.classify(&cmd(&["BLPOP", "q", "0"]), RW, None),
            blocking(&["BLPOP", "q", "30"], max)
        );
        assert_eq!(
            p.classify(&cmd(&["blmpop", "100", "1", "q", "LEFT"]), RW, None),
            blocking(&["blmpop", "30", "1", "q", "LEFT"], max)
        );
        assert_eq!(
            p.classify(&cmd(&["xread", "BLOCK", "0", "STREAMS", "s", "$"]), RW, None),
            blocking(&["xread", "BLOCK", "30000", "STREAMS", "s", "$"], max)
        );
        assert_eq!(
            p.classify(&cmd(&["blpop", "q", "0.5"]), RW, None),
            blocking(&["blpop", "q", "0.5"], Duration::from_millis(500))
        );
        // A stream key spelled "block" is not the option; a negative timeout is Redis's to refuse.
        assert_eq!(
            p.classify(&cmd(&["xread", "STREAMS", "block", "0"]), RW, None),
            Action::Forward
        );
        assert_eq!(
            p.classify(&cmd(&["blpop", "q", "-1"]), RW, None),
            blocking(&["blpop", "q", "-1"], Duration::ZERO)
        );
    }

    #[test]
    fn withtype_is_a_flag_only_where_an_option_name_stands() {
        let p = Policy::default();
        assert_eq!(
            p.classify(&cmd(&["scan", "0", "MATCH", "withtype"]), RW, None),
            Action::Forward
        );
        assert_eq!(
            p.classify(&cmd(&["scan", "0", "TYPE", "WITHTYPE"]), RW, None),
            Action::Forward
        );
        assert_eq!(
            p.classify(&cmd(&["scan", "0", "MATCH", "withtype", "WITHTYPE"]), RW, None),
            Action::ScanWithType
        );
        assert_eq!(
            strip_withtype(&cmd(&["scan", "0", "MATCH", "withtype", "WITHTYPE"])),
            cmd(&["scan", "0", "MATCH", "withtype"])
        );
    }
}
