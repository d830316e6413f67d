//! Opt-in true blocking (`[blocking] mode = "dedicated"`): a blocking command waits on a
//! connection of its own, from a small bounded pool (deadpool-redis) that is separate from the
//! shared pipelined connections, so a BLPOP never stalls anyone else. When every dedicated
//! connection is busy, the request is refused at once with a clear error instead of queueing.
//! A connection whose command timed out or failed is removed from the pool, never reused with
//! a reply still pending. On a Redis Cluster each node gets a pool of its own, and a blocking
//! command waits on the node that owns its keys.

use std::time::Duration;

use deadpool_redis::{Connection, Hook, HookError, Manager, Pool, Runtime, Timeouts};
use redis::aio::ConnectionLike;
use redis::{AsyncConnectionConfig, Value};

use super::Backend;
use crate::error::Error;
use crate::protocol::encode::error_text;
use crate::protocol::Command;

impl Backend {
    /// Runs a blocking command on a dedicated connection; it may wait up to `wait`.
    pub async fn execute_blocking(&self, cmd: &Command, wait: Duration) -> Result<Value, Error> {
        let pool = match self.cluster() {
            // A cluster: the pool of the node that owns the command's keys.
            Some(cluster) => match cluster.owner_of(cmd).await? {
                Some((addr, info)) => self.node_pool(addr, info)?,
                None => self.blocking_pool()?.clone(),
            },
            None => match self.server_info() {
                // Sentinel: the pool of the primary now in use.
                (Some(addr), info) => self.node_pool(addr, info)?,
                (None, _) => self.blocking_pool()?.clone(),
            },
        };
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
            Ok(Ok(value)) if self.reads_replicas() => {
                self.record_position(&mut conn).await;
                Ok(value)
            }
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

    /// With `read_from = "replicas"`: asks the primary the blocking command ran on (the same
    /// connection, right after it) for its replication position (`ROLE`, and `CLUSTER MYID` in
    /// a cluster) and records it, so that the next responses' sync tokens cover the command's
    /// writes (`BLMOVE`, `BLPOP`, ...). A connection that does not answer in time is dropped.
    async fn record_position(&self, conn: &mut Connection) {
        let mut pipe = redis::pipe();
        pipe.cmd("ROLE");
        if self.cluster().is_some() {
            pipe.cmd("CLUSTER").arg("MYID");
        }
        let count = if self.cluster().is_some() { 2 } else { 1 };
        let asked = tokio::time::timeout(self.timeout, conn.req_packed_commands(&pipe, 0, count)).await;
        match asked {
            Ok(Ok(replies)) => self.wrote(&replies),
            _ => tracing::debug!("no replication position after a blocking command"),
        }
    }

    fn blocking_pool(&self) -> Result<&Pool, Error> {
        if let Some(pool) = self.blocking.get() {
            return Ok(pool);
        }
        let pool = self.new_pool(self.info.clone())?;
        Ok(self.blocking.get_or_init(|| pool))
    }

    /// The dedicated pool of cluster node `addr` (made on first use).
    fn node_pool(&self, addr: String, info: redis::ConnectionInfo) -> Result<Pool, Error> {
        let mut pools = self.node_pools.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = pools.get(&addr) {
            return Ok(pool.clone());
        }
        let pool = self.new_pool(info)?;
        pools.insert(addr, pool.clone());
        Ok(pool)
    }

    fn new_pool(&self, info: redis::ConnectionInfo) -> Result<Pool, Error> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        let manager = Manager::new_with_config(info, config)
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
        builder
            .build()
            .map_err(|e| Error::Internal(format!("blocking pool: {e}")))
    }
}
