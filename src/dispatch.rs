//! Runs parsed requests for a caller: every command goes through the [`Policy`] first, then
//! the [`Backend`]. Batches are *planned*: each entry becomes zero or more wire commands
//! (a blocking command becomes `MULTI`, cmd, `EXEC`; a refused one none), the wire commands go
//! to Redis as one contiguous pipeline, and the replies are mapped back to one per entry.

use std::sync::Arc;

use redis::Value;

use crate::backend::replicas::After;
use crate::backend::{Backend, TxOutcome};
use crate::error::Error;
use crate::protocol::body::Entry;
use crate::protocol::encode::{error_text, into_reply, Reply};
use crate::protocol::policy::{strip_withtype, Access, Action, CommandTable, Policy};
use crate::protocol::scope::{Scope, Unscope};
use crate::protocol::scripts::{sha1_hex, strip_unknown_flags};
use crate::protocol::Command;

/// A tenant: one Redis database reached through one backend.
pub struct Tenant {
    /// Name for logs and metrics.
    pub name: String,
    /// Where its commands go.
    pub backend: Arc<Backend>,
    /// Its database index (`SELECT` of it is a no-op).
    pub db: i64,
    /// Other tenants use other databases of the same Redis.
    pub shared: bool,
    /// Its streams open now (for the per-tenant limit).
    pub open_streams: Arc<std::sync::atomic::AtomicUsize>,
    /// Its usage, caps and metrics.
    pub meter: Arc<crate::metering::Meter>,
}

/// Who is asking: a tenant, through a full or a read-only token.
#[derive(Clone)]
pub struct Caller {
    /// The tenant the token belongs to.
    pub tenant: Arc<Tenant>,
    /// Whether the token may only read.
    pub read_only: bool,
    /// What the request's `upstash-sync-token` asks of a replica (read only with
    /// `read_from = "replicas"`).
    pub after: After,
}

impl Caller {
    fn access(&self) -> Access {
        Access {
            read_only: self.read_only,
            db: self.tenant.db,
            shared: self.tenant.shared,
        }
    }

    fn backend(&self) -> &Backend {
        &self.tenant.backend
    }

    async fn table(&self) -> Result<Option<Arc<CommandTable>>, Error> {
        if self.read_only {
            Ok(Some(self.backend().command_table().await?))
        } else {
            Ok(None)
        }
    }
}

/// How one batch entry's reply is found after the wire pipeline ran.
enum Step {
    /// The reply at this wire index.
    Wire(usize),
    /// A blocking command wrapped in MULTI/EXEC; the index of the `EXEC` reply.
    Wrapped(usize),
    /// `SCAN ... WITHTYPE`: the plain SCAN reply at this index, to be typed.
    Typed(usize),
    /// The reply at this wire index, of a command a tenant's scope rewrote; mapped back.
    Scoped(usize, Unscope),
    /// Answered without Redis.
    Local(Reply),
}

/// For a tenant on a shared Redis, the command as Redis must see it (its channels prefixed,
/// `COPY` as a script) and how the reply maps back; for others, the command as it is.
fn scoped(caller: &Caller, cmd: Command) -> (Command, Option<Unscope>) {
    match caller.backend().scope() {
        Some(scope) => scope.rewrite(cmd),
        None => (cmd, None),
    }
}

/// Pushes a forwarded command onto the wire batch; its step.
fn forward(caller: &Caller, wire: &mut Vec<Command>, cmd: Command) -> Step {
    let (cmd, unscope) = scoped(caller, cmd);
    wire.push(cmd);
    match unscope {
        Some(how) => Step::Scoped(wire.len() - 1, how),
        None => Step::Wire(wire.len() - 1),
    }
}

/// The reply of a [`Step::Scoped`] command, as the tenant expects it.
fn unscoped(caller: &Caller, how: Unscope, value: Value) -> Reply {
    match caller.backend().scope() {
        Some(scope) => into_reply(scope.unscope(how, value)),
        None => into_reply(value),
    }
}

/// Adapts a command written for Upstash to plain Redis: Lua scripts lose the shebang flags
/// Redis does not know, and `EVALSHA` of such a script's original SHA1 uses the one Redis has.
fn adapt(backend: &Backend, cmd: Command) -> Command {
    let Some(upper) = cmd.upper_name() else { return cmd };
    let (index, is_sha) = match upper.as_str() {
        "EVAL" | "EVAL_RO" => (1, false),
        "EVALSHA" | "EVALSHA_RO" => (1, true),
        "SCRIPT"
            if cmd
                .params()
                .first()
                .is_some_and(|s| s.eq_ignore_ascii_case(b"LOAD")) =>
        {
            (2, false)
        }
        _ => return cmd,
    };
    let Some(arg) = cmd.args().get(index) else {
        return cmd;
    };
    let replacement = if is_sha {
        backend.script_alias(arg).map(String::into_bytes)
    } else {
        strip_unknown_flags(arg).inspect(|new| backend.alias_script(sha1_hex(arg), sha1_hex(new)))
    };
    match replacement {
        Some(new) => {
            let mut args = cmd.into_args();
            args[index] = new;
            Command::new(args).unwrap_or_else(|| Command::internal(&["PING"]))
        }
        None => cmd,
    }
}

/// Runs one command (`POST /` or the path form).
pub async fn single(policy: &Policy, caller: &Caller, cmd: Command) -> Result<Reply, Error> {
    let table = caller.table().await?;
    let cmd = adapt(caller.backend(), cmd);
    match policy.classify(&cmd, caller.access(), table.as_deref()) {
        // The hot path: one command, no planning.
        Action::Forward if caller.backend().scope().is_none() || !Scope::affects(&cmd) => {
            let backend = caller.backend();
            if backend.reads_replicas() {
                // Boxed: only this mode needs the request's sync token, and the single-Redis
                // future stays as small as it was.
                return Ok(into_reply(
                    Box::pin(backend.execute_at(&cmd, &caller.after)).await?,
                ));
            }
            Ok(into_reply(backend.execute(&cmd).await?))
        }
        Action::Answer(v) => Ok(Ok(v)),
        Action::Refuse(msg) => Ok(Err(msg)),
        Action::Blocking(capped, wait) => Ok(into_reply(
            // Boxed: this future is large (a pool checkout and a redis-rs call) and rare, and
            // hyper keeps room for the whole request future on every connection.
            Box::pin(caller.backend().execute_blocking(&capped, wait)).await?,
        )),
        _ => {
            let mut replies = pipeline(policy, caller, vec![Ok(cmd)]).await?;
            Ok(replies.pop().unwrap_or(Ok(Value::Nil)))
        }
    }
}

/// Runs a non-atomic batch (`/pipeline`): one reply per entry, in order.
pub async fn pipeline(policy: &Policy, caller: &Caller, entries: Vec<Entry>) -> Result<Vec<Reply>, Error> {
    let table = caller.table().await?;
    let mut wire = Vec::with_capacity(entries.len());
    let mut steps = Vec::with_capacity(entries.len());
    for entry in entries {
        let cmd = match entry {
            Ok(cmd) => adapt(caller.backend(), cmd),
            Err(msg) => {
                steps.push(Step::Local(Err(msg)));
                continue;
            }
        };
        steps.push(match policy.classify(&cmd, caller.access(), table.as_deref()) {
            Action::Forward => forward(caller, &mut wire, cmd),
            // Inside a pipeline, blocking commands never wait, even in dedicated mode.
            Action::NonBlocking | Action::Blocking(..) => {
                wire.push(Command::internal(&["MULTI"]));
                wire.push(cmd);
                wire.push(Command::internal(&["EXEC"]));
                Step::Wrapped(wire.len() - 1)
            }
            Action::ScanWithType => {
                wire.push(strip_withtype(&cmd));
                Step::Typed(wire.len() - 1)
            }
            Action::Answer(v) => Step::Local(Ok(v)),
            Action::Refuse(msg) => Step::Local(Err(msg)),
        });
    }
    let mut values: Vec<Option<Value>> = caller
        .backend()
        .pipeline_at(&wire, &caller.after)
        .await?
        .into_iter()
        .map(Some)
        .collect();
    let mut replies = Vec::with_capacity(steps.len());
    for step in steps {
        let reply = match step {
            Step::Wire(i) => into_reply(take(&mut values, i)),
            Step::Scoped(i, how) => unscoped(caller, how, take(&mut values, i)),
            Step::Wrapped(exec) => unwrap_exec(take(&mut values, exec), take(&mut values, exec - 1)),
            Step::Typed(i) => match into_reply(take(&mut values, i)) {
                Ok(scan) => Ok(with_types(caller.backend(), scan).await?),
                err => err,
            },
            Step::Local(reply) => reply,
        };
        replies.push(reply);
    }
    Ok(replies)
}

/// Runs an atomic batch (`/multi-exec`). Any entry that cannot be queued (malformed, refused
/// by the policy, or rejected by Redis at queue time) discards the whole transaction: a 400
/// with that entry's error.
pub async fn transaction(policy: &Policy, caller: &Caller, entries: Vec<Entry>) -> Result<Vec<Reply>, Error> {
    let table = caller.table().await?;
    let mut wire = Vec::with_capacity(entries.len());
    let mut steps = Vec::with_capacity(entries.len());
    for entry in entries {
        let cmd = adapt(caller.backend(), entry.map_err(Error::BadRequest)?);
        steps.push(match policy.classify(&cmd, caller.access(), table.as_deref()) {
            // Inside MULTI, Redis itself runs blocking commands without blocking.
            Action::Forward | Action::NonBlocking | Action::Blocking(..) => forward(caller, &mut wire, cmd),
            Action::ScanWithType => {
                wire.push(strip_withtype(&cmd));
                Step::Typed(wire.len() - 1)
            }
            Action::Answer(v) => Step::Local(Ok(v)),
            Action::Refuse(msg) => return Err(Error::BadRequest(msg)),
        });
    }
    let values = if wire.is_empty() {
        Vec::new()
    } else {
        match caller.backend().transaction(&wire).await? {
            TxOutcome::Executed(values) => values,
            TxOutcome::Discarded(msg) => return Err(Error::BadRequest(msg)),
        }
    };
    let mut values: Vec<Option<Value>> = values.into_iter().map(Some).collect();
    let mut replies = Vec::with_capacity(steps.len());
    for step in steps {
        replies.push(match step {
            Step::Wire(i) | Step::Wrapped(i) => into_reply(take(&mut values, i)),
            Step::Scoped(i, how) => unscoped(caller, how, take(&mut values, i)),
            Step::Typed(i) => match into_reply(take(&mut values, i)) {
                Ok(scan) => Ok(with_types(caller.backend(), scan).await?),
                err => err,
            },
            Step::Local(reply) => reply,
        });
    }
    Ok(replies)
}

fn take(values: &mut [Option<Value>], i: usize) -> Value {
    values.get_mut(i).and_then(Option::take).unwrap_or(Value::Nil)
}

/// The reply of a blocking command run as `MULTI; cmd; EXEC`. If Redis refused to queue the
/// command (wrong arity), its own error is the reply.
fn unwrap_exec(exec: Value, queued: Value) -> Reply {
    if let Value::ServerError(e) = queued {
        return Err(error_text(&e));
    }
    match exec {
        Value::Array(mut items) if items.len() == 1 => into_reply(items.remove(0)),
        Value::ServerError(e) => Err(error_text(&e)),
        other => Ok(other),
    }
}

/// Emulates Upstash's `SCAN ... WITHTYPE`: `[cursor, [k1, k2]]` becomes
/// `[cursor, [k1, type1, k2, type2]]`, the types read with one pipeline of TYPE commands.
async fn with_types(backend: &Backend, scan: Value) -> Result<Value, Error> {
    let Value::Array(mut parts) = scan else {
        return Ok(scan);
    };
    let Some(Value::Array(keys)) = parts.get_mut(1).map(std::mem::take) else {
        return Ok(Value::Array(parts));
    };
    let types: Vec<Command> = keys
        .iter()
        .filter_map(|k| match k {
            Value::BulkString(b) => Command::new(vec![b"TYPE".to_vec(), b.clone()]),
            _ => None,
        })
        .collect();
    let kinds = backend.pipeline(&types).await?;
    let mut typed = Vec::with_capacity(keys.len() * 2);
    for (key, kind) in keys.into_iter().zip(kinds) {
        typed.push(key);
        typed.push(kind);
    }
    parts[1] = Value::Array(typed);
    Ok(Value::Array(parts))
}
