//! Opt-in true blocking (`[blocking] mode = "dedicated"`): a blocking command waits on a
//! connection of its own, from a small bounded pool (deadpool-redis) that is separate from the
//! shared pipelined connections, so a BLPOP never stalls anyone else. When every dedicated
//! connection is busy, the request is refused at once with a clear error instead of queueing.
//! A connection whose command timed out or failed is removed from the pool, never reused with
//! a reply still pending.

use std::time::Duration;

use deadpool_redis::{Connection, Hook, HookError, Manager, Pool, Runtime, Timeouts};
use redis::{AsyncConnectionConfig, Value};

use super::Backend;
use crate::error::Error;
use crate::protocol::encode::error_text;
use crate::protocol::Command;

impl Backend {
    /// Runs a blocking command on a dedicated connection; it may wait up to `wait`.
    pub async fn execute_blocking(&self, cmd: &Command, wait: Duration) -> Result<Value, Error> {
        let pool = self.blocking_pool()?;
        let timeouts = Timeouts {
            wait: Some(Duration::ZERO),
            create: Some(Duration::from_secs(2)),
            recycle: Some(Duration::from_secs(2)),
        };
        let mut conn = pool.timeout_get(&timeouts).await.map_err(|e| match e {
            deadpool_redis::PoolError::Timeout(deadpool_redis::TimeoutType::Wait) => Error::TooMany(format!(
                "all {} dedicated connections for blocking commands are busy; retry later",
                pool.status().max_size
            )),
            other => Error::Unavailable(format!("cannot open a dedicated connection: {other}")),
        })?;
        let limit = wait + self.timeout;
        let packed = super::redis_cmd(cmd);
        match tokio::time::timeout(limit, conn.send_packed_command(&packed)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                drop(Connection::take(conn));
                Err(Error::Unavailable(format!("dedicated connection lost: {e}")))
            }
            Err(_) => {
                drop(Connection::take(conn));
                Err(Error::Timeout(limit))
            }
        }
    }

    fn blocking_pool(&self) -> Result<&Pool, Error> {
        if let Some(pool) = self.blocking.get() {
            return Ok(pool);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        let manager = Manager::new_with_config(self.info.clone(), config)
            .map_err(|e| Error::Internal(format!("blocking pool: {e}")))?;
        let mut builder = Pool::builder(manager)
            .max_size(self.blocking_pool_size)
            .runtime(Runtime::Tokio1);
        if let Some(isolation) = self.isolation() {
            // A tenant on a shared Redis: each new connection switches to its ACL user.
            let handshake = isolation.handshake();
            builder = builder.post_create(Hook::async_fn(move |conn, _| {
                let cmds = handshake.clone();
                Box::pin(async move {
                    for cmd in &cmds {
                        let packed = super::redis_cmd(cmd);
                        match conn.send_packed_command(&packed).await {
                            Ok(Value::ServerError(e)) => return Err(HookError::message(error_text(&e))),
                            Ok(_) => {}
                            Err(e) => return Err(HookError::message(e.to_string())),
                        }
                    }
                    Ok(())
                })
            }));
        }
        let pool = builder
            .build()
            .map_err(|e| Error::Internal(format!("blocking pool: {e}")))?;
        Ok(self.blocking.get_or_init(|| pool))
    }
}
