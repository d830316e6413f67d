//! restdis: a self-hostable server that speaks the Upstash Redis REST protocol and forwards
//! commands, multiplexed and pipelined, to a real Redis.
//!
//! # Layout
//!
//! A request flows top to bottom; each module has one job.
//!
//! - [`cli`]: command-line flags and their `RESTDIS_*` environment twins.
//! - [`config`]: the validated [`config::Config`] from flags, env, TOML file, SRH variables, defaults;
//!   [`config::topology`] says which topology a Redis URL names (one Redis, a Redis Cluster, or
//!   a primary found through Sentinel).
//! - [`server`]: start-up (state, listeners, the workers of `--worker-threads`, each a
//!   current-thread runtime with its own listener socket and backends), the printed URL/token
//!   lines, SIGHUP, graceful shutdown.
//! - [`http`]: the client-facing side: hyper accept loop (HTTP/1.1 and HTTP/2), connection
//!   limits, [`http::tls`] (the listener's certificate: loading, checks, reload), [`http::handler`]
//!   (the request path), [`http::reply`] (responses, sync token, CORS), [`http::sse`]
//!   (server-sent event streams), [`http::sse_queue`] (a stream's byte-bounded frame queue),
//!   [`http::admin`] (`/healthz`, `/readyz`, `/metrics`), [`http::console`] (the web
//!   console at `/console`: its files from `assets/console/`, embedded at build, and its
//!   session and usage endpoints).
//! - [`auth`]: token extraction and constant-time lookup of the caller.
//! - [`protocol`]: pure translation, no I/O: routes, JSON and path-form parsing, the command
//!   policy, reply encoding (JSON plain/base64, RESP2), SSE frames, Upstash script flags, and
//!   RESP2 to Redis (command encoding, reply scanning and parsing), and the channel scope of a
//!   tenant on a shared Redis ([`protocol::scope`]).
//! - [`dispatch`]: runs parsed requests: policy first, then the backend; plans batches.
//! - [`backend`]: the Redis side behind one facade (execute, pipeline, transaction, streams,
//!   dedicated blocking), its topology chosen once at start: one Redis (`backend::single`),
//!   a Redis Cluster ([`backend::cluster`]: slot map, key to slot from the server's key specs,
//!   redirections, fan-out and merge, the cluster-wide SCAN cursor) or a primary found and
//!   followed through Redis Sentinel ([`backend::sentinel`]); with `read_from = "replicas"`,
//!   [`backend::replicas`] (and `backend::cluster::reads` per shard) routes reads to replicas
//!   and turns `upstash-sync-token` into a replication position; each server over
//!   self-repairing pipelined connections (`backend::wire`: one
//!   socket, commands of concurrent requests coalesced into one write); each stream reads a
//!   connection of its own (`backend::streams`, opened only by `Backend::connect_stream`);
//!   `backend::isolation` gives each tenant on a shared Redis its own Redis ACL user;
//!   `backend::large` remembers which commands got a large reply, so that the next one
//!   goes to a spill-over connection and small requests do not wait behind it.
//! - [`error`]: the one request-path error type and its status/body mapping.
//! - [`state`]: the shared state handed to every request.
//! - [`tenancy`]: the tenants as requests see them (tokens, policy, a backend per Redis),
//!   resolved once per configuration ([`tenancy::Plan`]) and built per worker.
//! - [`reload`]: live reload (SIGHUP, `POST /reload`): re-read, validate, build, swap whole.
//! - [`metering`]: usage per tenant, quotas and the rate limit (admission before Redis),
//!   usage kept in Redis, quota alerts and their webhook.
//! - [`metrics`]: Prometheus metrics.
//! - [`healthcheck`]: `restdis healthcheck`, the container health check (asks `/readyz`).
//! - [`devredis`]: the private redis-server of the dev default.
//! - [`migrate`]: `restdis migrate`, copying keys between Redis and REST endpoints: the command
//!   and its copy loop ([`migrate`]), sources and destinations ([`migrate::endpoint`]), dump
//!   and logical copy planning ([`migrate::copy`]), one batch's I/O ([`migrate::batch`]),
//!   progress ([`migrate::progress`]), the checkpoint ([`migrate::checkpoint`]) and
//!   `--verify` ([`migrate::verify`]).
//! - [`telemetry`]: logging set-up.

pub mod auth;
pub mod backend;
pub mod cli;
pub mod config;
pub mod devredis;
pub mod dispatch;
pub mod error;
pub mod healthcheck;
pub mod http;
pub mod metering;
pub mod metrics;
pub mod migrate;
pub mod protocol;
pub mod reload;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod tenancy;
