//! The pure protocol layer: HTTP request parts in, Redis commands out; Redis replies in, JSON
//! (or RESP2) bytes out. Nothing here does I/O or knows about hyper, tokio or sockets, which is
//! what lets it be unit-tested, property-tested, fuzzed and benchmarked on its own.
//!
//! - [`route`] decides which endpoint a request path names.
//! - [`body`] parses the JSON bodies of `/`, `/pipeline` and `/multi-exec`.
//! - [`path`] parses the path form `/cmd/arg/...?k=v` with an optional raw body.
//! - [`command`] is the parsed command type.
//! - [`policy`] classifies commands: forward, run non-blocking, answer locally, or refuse.
//! - [`encode`] writes replies as Upstash JSON envelopes (plain or base64) or RESP2.
//! - [`resp`] speaks RESP2 to Redis: commands out, replies in.
//! - [`sse`] frames server-sent events for the streaming endpoints.
//! - [`scope`] keeps a tenant on a shared Redis to its own channels (names prefixed, replies
//!   unprefixed) and rewrites the commands its ACL user goes without.
//! - [`scripts`] adapts Lua scripts written for Upstash (shebang flags Redis does not know).

pub mod body;
pub mod command;
pub mod encode;
pub mod path;
pub mod policy;
pub mod resp;
pub mod route;
pub mod scope;
pub mod scripts;
pub mod sse;

#[cfg(test)]
mod proptests;

pub use command::Command;

/// A request the client got wrong; it becomes a 400 with `{"error": message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl BadRequest {
    /// Builds a bad-request error from any message.
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
