//! The one error type of the request path, [`Error`], and the one place where an error becomes
//! an HTTP status and a `{"error": ...}` body ([`Error::status`], [`Error::body`]).
//!
//! Errors are classified by source, as in pingora: downstream (the client sent something we
//! refuse: 400/401/405/413), upstream (Redis is unreachable: 503, or too slow: 504), and
//! internal (500). A Redis *reply* that is an error (`ERR ...`, `WRONGTYPE ...`) is not an
//! [`Error`]: it is a reply, encoded by the protocol layer (400 for a single command, an entry
//! in a pipeline). Bodies never carry internal details or tokens.

use hyper::StatusCode;

use crate::protocol::BadRequest;

/// Everything that can fail a request as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or asks for something restdis refuses (400).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or a token no tenant has (401).
    #[error("WRONGPASS invalid or missing auth token")]
    Unauthorized,
    /// A method other than GET, HEAD, POST, PUT (or OPTIONS for CORS) (405).
    #[error("ERR method not allowed: use GET, HEAD, POST or PUT")]
    MethodNotAllowed,
    /// The body is over the configured limit (413).
    #[error("ERR max request size exceeded. Limit: {limit} bytes, Actual: {actual} bytes")]
    TooLarge {
        /// The configured limit.
        limit: u64,
        /// The size seen (declared or read so far).
        actual: u64,
    },
    /// The client did not send its whole body in time (408).
    #[error("ERR the request body did not arrive within {0:?}")]
    BodyTimeout(std::time::Duration),
    /// Redis cannot be reached, or the connection broke during the request (503).
    #[error("ERR Redis is unavailable: {0}")]
    Unavailable(String),
    /// Too many requests are waiting for Redis (503).
    #[error("ERR restdis is overloaded: {0}")]
    Overloaded(String),
    /// The command did not finish within the command timeout (504).
    #[error("ERR command timed out after {0:?}; it may or may not have run")]
    Timeout(std::time::Duration),
    /// A streaming or connection limit was reached (429).
    #[error("ERR {0}")]
    TooMany(String),
    /// A tenant's quota or rate limit refused the request (429, with `Retry-After`).
    #[error("{message}")]
    Quota {
        /// Upstash's words (`ERR max daily request limit exceeded. Limit: N, Usage: M`).
        message: String,
        /// Seconds until a retry can succeed.
        retry_after: u64,
    },
    /// A bug or an unexpected failure inside restdis (500).
    #[error("ERR internal error")]
    Internal(String),
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Error::Unavailable(_) | Error::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::TooMany(_) | Error::Quota { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short fixed code for metrics labels and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "bad_request",
            Error::Unauthorized => "unauthorized",
            Error::MethodNotAllowed => "method_not_allowed",
            Error::TooLarge { .. } => "too_large",
            Error::BodyTimeout(_) => "body_timeout",
            Error::Unavailable(_) => "unavailable",
            Error::Overloaded(_) => "overloaded",
            Error::Timeout(_) => "timeout",
            Error::TooMany(_) => "too_many",
            Error::Quota { .. } => "quota",
            Error::Internal(_) => "internal",
        }
    }

    /// The JSON body: `{"error": "<message>"}`.
    pub fn body(&self) -> Vec<u8> {
        crate::protocol::encode::error_body(&self.to_string())
    }
}

impl From<BadRequest> for Error {
    fn from(e: BadRequest) -> Self {
        Error::BadRequest(e.0)
    }
}
