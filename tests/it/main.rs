//! restdis integration tests: one binary, one module per concern, each test with its own
//! real redis-server on a free port and restdis in-process on port 0.

// Tests may panic on unexpected values: that is how they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod auth;
mod batch;
mod cluster;
mod cluster_reads;
mod config;
mod console;
mod encoding;
mod faults;
mod hostile;
mod http;
mod metering;
mod migrate;
mod monitoring;
mod policy;
mod reload;
mod resilience;
mod sentinel;
mod single;
mod stalled;
mod streams;
mod tenancy;
mod tls;
mod wire;
mod workers;
