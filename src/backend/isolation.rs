//! Hard boundaries between tenants that share one Redis, enforced by Redis itself.
//!
//! restdis cannot read Lua, so a script could `SELECT` another tenant's database. Redis ACLs
//! are enforced inside scripts, and a connection keeps the database it selected when it
//! re-authenticates. So every connection restdis opens for such a tenant is set up as:
//! `AUTH` with the URL's (admin) credential, `SELECT` the tenant's database, `ACL SETUSER`
//! the tenant's restricted user (re-created after a Redis restart), `AUTH` as that user. The
//! four go out as one pipelined write with the handshake restdis does anyway, so isolation
//! costs no extra round trip per connection and nothing per request.
//!
//! Two users per tenant, each with a random password that never leaves this process:
//! - `restdis:<tenant>` for commands: every command but those that reach past the tenant's
//!   database or channels, or the server as a whole (the list is [`command_rules`]); its
//!   channels are `&<tenant>:*` (see [`crate::protocol::scope`]).
//! - `restdis-sub:<tenant>` for streams: `SUBSCRIBE`/`PSUBSCRIBE` and nothing else (restdis
//!   scopes the names; ACL channel rules would take a `PSUBSCRIBE` pattern literally).

use std::time::Duration;

use redis::{ConnectionInfo, Value};

use crate::protocol::encode::error_text;
use crate::protocol::scope::Scope;
use crate::protocol::Command;

/// The Redis version isolation needs at least: 6.2 (ACL channel rules, `COPY`, `RESET`).
pub const MIN_VERSION: (u32, u32) = (6, 2);

/// One restricted ACL user and the rules it is (re-)created with.
#[derive(Clone)]
pub struct Login {
    user: String,
    password: String,
    rules: Vec<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Login {
    /// The ACL user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    fn setuser(&self, reset_passwords: bool) -> Command {
        let mut parts = vec!["ACL", "SETUSER", self.user.as_str()];
        if reset_passwords {
            parts.push("resetpass");
        }
        let password = format!(">{}", self.password);
        parts.push("on");
        parts.push(&password);
        parts.extend(self.rules.iter().map(String::as_str));
        Command::internal(&parts)
    }

    fn auth(&self) -> Command {
        Command::internal(&["AUTH", &self.user, &self.password])
    }
}

/// Both users of one tenant, and its channel scope.
#[derive(Debug, Clone)]
pub struct Isolation {
    /// The user of shared and dedicated-blocking connections.
    pub commands: Login,
    /// The user of stream connections.
    pub streams: Login,
    /// The tenant's channel names.
    pub scope: Scope,
}

impl Isolation {
    /// What a new command connection sends after the URL's `AUTH` and `SELECT`: `ACL SETUSER`
    /// of both users (adding this process's password, so several restdis instances in front
    /// of one Redis can share them, and re-creating them after a Redis restart), then `AUTH`
    /// as the command user.
    pub fn handshake(&self) -> Vec<Command> {
        vec![
            self.streams.setuser(false),
            self.commands.setuser(false),
            self.commands.auth(),
        ]
    }

    /// The users of tenant `name` for a Redis of `version` (major, minor), with fresh random
    /// passwords.
    pub fn new(name: &str, version: (u32, u32)) -> Self {
        let scope = Scope::for_tenant(name);
        let id =
            String::from_utf8_lossy(scope.prefix().strip_suffix(b":").unwrap_or(scope.prefix())).into_owned();
        Self {
            commands: Login {
                user: format!("restdis:{id}"),
                password: crate::config::random_token(),
                rules: command_rules(&scope, version),
            },
            streams: Login {
                user: format!("restdis-sub:{id}"),
                password: crate::config::random_token(),
                rules: stream_rules(),
            },
            scope,
        }
    }

    /// What a new stream connection sends after the URL's `AUTH`: `ACL SETUSER` of the
    /// stream user (re-created after a Redis restart), then `AUTH` as it.
    pub fn stream_handshake(&self) -> Vec<Command> {
        vec![self.streams.setuser(false), self.streams.auth()]
    }

    /// Creates (or resets) both users through `admin`, an authenticated connection, so that
    /// a configuration Redis cannot enforce fails at start with Redis's own error.
    pub async fn provision(&self, admin: &mut redis::aio::MultiplexedConnection) -> Result<(), String> {
        for login in [&self.commands, &self.streams] {
            send(admin, &login.setuser(true))
                .await
                .map_err(|e| format!("ACL SETUSER {} failed: {e}", login.user))?;
        }
        Ok(())
    }
}

/// The rules of a tenant's command user: all keys of its database (the database is fixed by
/// the handshake, and `SELECT` is denied), its own channels, and every command except those
/// listed here. A container command is denied whole and the harmless subcommands allowed
/// back, which Redis 6.2 and 7 both accept.
pub fn command_rules(scope: &Scope, version: (u32, u32)) -> Vec<String> {
    let mut rules: Vec<String> = [
        "resetkeys",
        "~*",
        "resetchannels",
        &scope.acl_channels(),
        "-@all",
        "+@all",
        // Server administration (CONFIG, ACL, DEBUG, MONITOR, MODULE, SHUTDOWN, SLOWLOG,
        // replication, persistence, CLIENT KILL/LIST/PAUSE, ...).
        "-@admin",
        // Other databases.
        "-select",
        "-swapdb",
        "-move",
        "-copy",
        "-migrate",
        "-flushall",
        // The connection itself and server-wide views.
        "-reset",
        "-failover",
        "-info",
        "-latency",
        "-config",
        "-acl",
        "-monitor",
        "-debug",
        "-module",
        "-client",
        "+client|id",
        "+client|getname",
        "-memory",
        "+memory|usage",
        "-script",
        "+script|load",
        "+script|exists",
        "-pubsub",
        "+pubsub|channels",
        "+pubsub|numsub",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if version >= (7, 0) {
        rules.extend(
            [
                "+client|info",
                "-function",
                "+function|list",
                "+function|dump",
                "+function|stats",
                "+pubsub|shardchannels",
                "+pubsub|shardnumsub",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    } else {
        rules.push("+client|info".into());
    }
    rules
}

/// The rules of a tenant's stream user: subscribing, nothing else.
fn stream_rules() -> Vec<String> {
    [
        "resetkeys",
        "resetchannels",
        "allchannels",
        "-@all",
        "+subscribe",
        "+psubscribe",
        "+unsubscribe",
        "+punsubscribe",
        "+ping",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The `redis_version` (major, minor) in an `INFO server` reply.
pub fn parse_version(info: &str) -> Option<(u32, u32)> {
    let line = info.lines().find_map(|l| l.strip_prefix("redis_version:"))?;
    let mut parts = line.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// What `INFO server` says of a Redis: its version and its `run_id`, which tells two URLs
/// of one server apart from two servers (`localhost` and `127.0.0.1` are one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// (major, minor).
    pub version: (u32, u32),
    /// The server's `run_id` (new at every Redis start).
    pub run_id: String,
}

/// Connects with the URL's credential and reads [`ServerInfo`]; `None` when Redis does not
/// answer within `deadline` (isolation is then still set up by every connection's handshake,
/// which fails closed).
pub async fn admin_connection(
    info: &ConnectionInfo,
    deadline: Duration,
) -> Result<Option<(redis::aio::MultiplexedConnection, ServerInfo)>, String> {
    let client = redis::Client::open(info.clone()).map_err(|e| e.to_string())?;
    let start = tokio::time::Instant::now();
    let mut conn = loop {
        match tokio::time::timeout(deadline, client.get_multiplexed_async_connection()).await {
            Ok(Ok(conn)) => break conn,
            Ok(Err(e)) if is_auth_error(&e) => return Err(e.to_string()),
            _ if start.elapsed() >= deadline => return Ok(None),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let reply = send(&mut conn, &Command::internal(&["INFO", "server"]))
        .await
        .map_err(|e| format!("INFO server failed: {e}"))?;
    let info = match reply {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        other => return Err(format!("INFO server gave {other:?}")),
    };
    let version = parse_version(&info).ok_or_else(|| "INFO server has no redis_version".to_string())?;
    let run_id = info
        .lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .unwrap_or_default()
        .trim()
        .to_string();
    Ok(Some((conn, ServerInfo { version, run_id })))
}

fn is_auth_error(e: &redis::RedisError) -> bool {
    matches!(e.kind(), redis::ErrorKind::AuthenticationFailed) || e.code().is_some()
}

async fn send(conn: &mut redis::aio::MultiplexedConnection, cmd: &Command) -> Result<Value, String> {
    let packed = super::redis_cmd(cmd);
    match conn.send_packed_command(&packed).await {
        Ok(Value::ServerError(e)) => Err(error_text(&e)),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_info() {
        assert_eq!(
            parse_version("# Server\r\nredis_version:7.0.15\r\n"),
            Some((7, 0))
        );
        assert_eq!(parse_version("redis_version:6.2.1\n"), Some((6, 2)));
        assert_eq!(parse_version("nothing"), None);
    }

    #[test]
    fn rules_keep_the_tenant_in_its_database_and_channels() {
        let iso = Isolation::new("acme", (7, 0));
        let rules = command_rules(&iso.scope, (7, 0));
        for must in [
            "-select",
            "-swapdb",
            "-move",
            "-copy",
            "-flushall",
            "-@admin",
            "&acme:*",
        ] {
            assert!(rules.iter().any(|r| r == must), "{must}");
        }
        assert_eq!(iso.commands.user(), "restdis:acme");
        assert_eq!(iso.streams.user(), "restdis-sub:acme");
        // Redis 6.2 has no FUNCTION.
        assert!(!command_rules(&iso.scope, (6, 2))
            .iter()
            .any(|r| r.contains("function")));
        // The password is in the handshake, not in Debug output.
        let handshake = iso.handshake();
        assert_eq!(
            handshake[1].args()[..3],
            [b"ACL".to_vec(), b"SETUSER".to_vec(), b"restdis:acme".to_vec()]
        );
        assert_eq!(handshake[2].args()[0], b"AUTH".to_vec());
        assert!(!format!("{:?}", iso.commands).contains(&iso.commands.password));
    }
}
