//! Pub/sub and command scoping for a tenant that shares its Redis with other tenants (pure, no
//! I/O). Keys are kept apart by the tenant's database and the Redis ACL user restdis gives it
//! (`backend::isolation`); channels have no database, so each tenant's channel names get a
//! prefix of their own on the way in and lose it on the way out. The tenant never sees the
//! prefix: `PUBLISH news x` reaches `acme:news`, and its `/subscribe/news` stream reports
//! `news`.
//!
//! Two commands are rewritten because the ACL user must go without them:
//! - `COPY src dst [REPLACE]` becomes a short script (`DUMP`, `PTTL`, `RESTORE`), since Redis
//!   cannot forbid only `COPY ... DB n`, which reaches another database.
//! - `PUBSUB CHANNELS|NUMSUB|SHARDCHANNELS|SHARDNUMSUB` see only the tenant's channels
//!   (Redis's ACL does not filter them).

use redis::Value;

use super::Command;

/// The Lua form of `COPY KEYS[1] KEYS[2]`, `ARGV[1]` = `"1"` for `REPLACE`. Same replies as
/// `COPY`: 1 copied, 0 not (no source, or the destination exists without `REPLACE`).
pub const COPY_SCRIPT: &str = "\
if KEYS[1] == KEYS[2] then return redis.error_reply('ERR source and destination objects are the same') end
local v = redis.call('DUMP', KEYS[1])
if not v then return 0 end
if ARGV[1] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
if ARGV[1] == '1' then redis.call('RESTORE', KEYS[2], ttl, v, 'REPLACE') else redis.call('RESTORE', KEYS[2], ttl, v) end
return 1";

/// One tenant's channel namespace on a shared Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    prefix: Vec<u8>,
}

/// How a rewritten command's reply is turned back into what the tenant expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unscope {
    /// A list of channel names: drop the prefix from each.
    Names,
    /// `[channel, count, channel, count, ...]`: drop the prefix from each channel.
    Pairs,
}

impl Scope {
    /// The scope of tenant `name`. The prefix is the name with every byte outside
    /// `[A-Za-z0-9_.-]` written as `~HH`, then `:`; so two tenant names never give prefixes
    /// where one starts the other, and the prefix holds no glob character (ACL channel
    /// patterns and `PSUBSCRIBE` patterns take it literally).
    pub fn for_tenant(name: &str) -> Self {
        let mut prefix = Vec::with_capacity(name.len() + 1);
        for &b in name.as_bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-') {
                prefix.push(b);
            } else {
                prefix.extend_from_slice(format!("~{b:02X}").as_bytes());
            }
        }
        prefix.push(b':');
        Self { prefix }
    }

    /// The prefix, `name:`.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// The ACL channel pattern that admits exactly this tenant's channels (`&name:*`).
    pub fn acl_channels(&self) -> String {
        format!("&{}*", String::from_utf8_lossy(&self.prefix))
    }

    /// The channel (or pattern) as Redis knows it.
    pub fn channel(&self, name: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + name.len());
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(name);
        out
    }

    /// The channel (or pattern) as the tenant knows it. A name without the prefix (which
    /// Redis never sends on a scoped connection) is returned unchanged.
    pub fn unchannel(&self, name: &[u8]) -> Vec<u8> {
        name.strip_prefix(self.prefix.as_slice()).unwrap_or(name).to_vec()
    }

    /// Whether [`rewrite`](Self::rewrite) may change this command (cheap; a name check).
    pub fn affects(cmd: &Command) -> bool {
        let name = cmd.name();
        ["PUBLISH", "SPUBLISH", "PUBSUB", "COPY"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
    }

    /// The command as it must reach Redis, and how to map its reply back (`None`: as it is).
    pub fn rewrite(&self, cmd: Command) -> (Command, Option<Unscope>) {
        if !Self::affects(&cmd) {
            return (cmd, None);
        }
        let upper = cmd.upper_name();
        let name = upper.as_ref().map(|n| n.as_str()).unwrap_or("");
        match name {
            "PUBLISH" | "SPUBLISH" if cmd.params().len() == 2 => {
                let mut args = cmd.into_args();
                args[1] = self.channel(&args[1]);
                (rebuilt(args), None)
            }
            "PUBSUB" => self.pubsub(cmd),
            "COPY" => (copy(cmd), None),
            _ => (cmd, None),
        }
    }

    fn pubsub(&self, cmd: Command) -> (Command, Option<Unscope>) {
        let sub = cmd
            .params()
            .first()
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        match sub.as_slice() {
            b"CHANNELS" | b"SHARDCHANNELS" if cmd.params().len() <= 2 => {
                let mut args = cmd.into_args();
                let pattern = args.get(2).cloned().unwrap_or_else(|| b"*".to_vec());
                args.truncate(2);
                args.push(self.channel(&pattern));
                (rebuilt(args), Some(Unscope::Names))
            }
            b"NUMSUB" | b"SHARDNUMSUB" => {
                let mut args = cmd.into_args();
                for channel in args.iter_mut().skip(2) {
                    *channel = self.channel(channel);
                }
                (rebuilt(args), Some(Unscope::Pairs))
            }
            _ => (cmd, None),
        }
    }

    /// Maps a rewritten command's reply back (errors pass unchanged).
    pub fn unscope(&self, how: Unscope, reply: Value) -> Value {
        let Value::Array(items) = reply else { return reply };
        let items = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::BulkString(name) if how == Unscope::Names || i % 2 == 0 => {
                    Value::BulkString(self.unchannel(&name))
                }
                other => other,
            })
            .collect();
        Value::Array(items)
    }
}

/// `COPY src dst [REPLACE]` as [`COPY_SCRIPT`]; anything else (a `DB` option, which the
/// policy refuses first, or a malformed call) goes to Redis as it is, where the ACL user
/// is refused `COPY`.
fn copy(cmd: Command) -> Command {
    let params = cmd.params();
    let replace = match params {
        [_, _] => "0",
        [_, _, opt] if opt.eq_ignore_ascii_case(b"REPLACE") => "1",
        _ => return cmd,
    };
    rebuilt(vec![
        b"EVAL".to_vec(),
        COPY_SCRIPT.as_bytes().to_vec(),
        b"2".to_vec(),
        params[0].clone(),
        params[1].clone(),
        replace.as_bytes().to_vec(),
    ])
}

fn rebuilt(args: Vec<Vec<u8>>) -> Command {
    Command::new(args).unwrap_or_else(|| Command::internal(&["PING"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(parts: &[&str]) -> Command {
        Command::internal(parts)
    }

    fn strs(cmd: &Command) -> Vec<String> {
        cmd.args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn prefixes_are_distinct_and_glob_free() {
        assert_eq!(Scope::for_tenant("acme").prefix(), b"acme:");
        assert_eq!(Scope::for_tenant("a:b").prefix(), b"a~3Ab:");
        assert_eq!(Scope::for_tenant("x*y").acl_channels(), "&x~2Ay:*");
        // "a" + "b:x" and "a:b" + "x" no longer meet.
        assert_ne!(
            Scope::for_tenant("a").channel(b"b:x"),
            Scope::for_tenant("a:b").channel(b"x")
        );
    }

    #[test]
    fn publish_and_pubsub_are_scoped() {
        let s = Scope::for_tenant("t1");
        let (c, u) = s.rewrite(cmd(&["publish", "news", "hi"]));
        assert_eq!(strs(&c), ["publish", "t1:news", "hi"]);
        assert_eq!(u, None);
        let (c, u) = s.rewrite(cmd(&["PUBSUB", "CHANNELS"]));
        assert_eq!(strs(&c), ["PUBSUB", "CHANNELS", "t1:*"]);
        assert_eq!(u, Some(Unscope::Names));
        let (c, u) = s.rewrite(cmd(&["PUBSUB", "numsub", "a", "b"]));
        assert_eq!(strs(&c), ["PUBSUB", "numsub", "t1:a", "t1:b"]);
        let reply = Value::Array(vec![
            Value::BulkString(b"t1:a".to_vec()),
            Value::Int(2),
            Value::BulkString(b"t1:b".to_vec()),
            Value::Int(0),
        ]);
        assert_eq!(
            s.unscope(u.unwrap_or(Unscope::Names), reply),
            Value::Array(vec![
                Value::BulkString(b"a".to_vec()),
                Value::Int(2),
                Value::BulkString(b"b".to_vec()),
                Value::Int(0),
            ])
        );
        // Other commands are left alone.
        let (c, u) = s.rewrite(cmd(&["GET", "news"]));
        assert_eq!(strs(&c), ["GET", "news"]);
        assert_eq!(u, None);
    }

    #[test]
    fn copy_becomes_a_script_but_not_with_db() {
        let s = Scope::for_tenant("t1");
        let (c, _) = s.rewrite(cmd(&["COPY", "a", "b", "replace"]));
        assert_eq!(strs(&c)[0], "EVAL");
        assert_eq!(strs(&c)[2..], ["2", "a", "b", "1"]);
        let (c, _) = s.rewrite(cmd(&["COPY", "a", "b", "DB", "2"]));
        assert_eq!(strs(&c), ["COPY", "a", "b", "DB", "2"]);
    }
}
