//! Tokens: where a request's token comes from (`Authorization: Bearer`, else `_token` in the
//! query) and which [`Caller`] it names. Comparison is constant-time in the presented token's
//! content, and every configured token is compared, so timing tells nothing about which
//! token, or how much of one, matched. Tokens never appear in logs or error bodies.

use hyper::header::HeaderValue;

use crate::dispatch::Caller;
use crate::error::Error;
use crate::protocol::path::query_token;

/// The token table: token -> caller.
pub struct Auth {
    entries: Vec<(Vec<u8>, Caller)>,
}

impl Auth {
    /// Builds the table from `(token, caller)` pairs.
    pub fn new(entries: Vec<(String, Caller)>) -> Self {
        Self {
            entries: entries.into_iter().map(|(t, c)| (t.into_bytes(), c)).collect(),
        }
    }

    /// Whether the request carries any token at all (an `Authorization` header, or `_token`).
    pub fn has_credentials(authorization: Option<&HeaderValue>, query: Option<&str>) -> bool {
        authorization.is_some() || query_token(query).is_some()
    }

    /// The caller the request's token names, or 401. `authorization` is the request's
    /// `Authorization` header, if any.
    pub fn authenticate(
        &self,
        authorization: Option<&HeaderValue>,
        query: Option<&str>,
    ) -> Result<Caller, Error> {
        let presented = match authorization.and_then(bearer) {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(query_token(query).ok_or(Error::Unauthorized)?),
        };
        let mut found: Option<&Caller> = None;
        for (token, caller) in &self.entries {
            if ct_eq(&presented, token) && found.is_none() {
                found = Some(caller);
            }
        }
        found.cloned().ok_or(Error::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any case, spaces trimmed).
pub fn bearer(value: &HeaderValue) -> Option<&[u8]> {
    let value = value.as_bytes().trim_ascii();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(rest.trim_ascii())
    } else {
        None
    }
}

/// Constant-time equality; the time depends only on the configured token's length. The
/// differences are OR-ed together with no branch on the data, and the result passes through
/// `black_box` so the compiler cannot turn the loop into an early exit.
pub fn ct_eq(presented: &[u8], configured: &[u8]) -> bool {
    let mut diff = (presented.len() ^ configured.len()) as u64;
    for (i, c) in configured.iter().enumerate() {
        diff |= u64::from(presented.get(i).copied().unwrap_or(0) ^ c);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        let h = |v| HeaderValue::from_static(v);
        assert_eq!(bearer(&h("  bEaReR   abc=  ")), Some(&b"abc="[..]));
        assert_eq!(bearer(&h("Basic abc")), None);
        assert_eq!(bearer(&h("Bearer")), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secre", b"secret"));
        assert!(!ct_eq(b"secret1", b"secret"));
        assert!(!ct_eq(b"", b"secret"));
        assert!(!ct_eq(b"secreT", b"secret"));
        assert!(!ct_eq(b"secret\0", b"secret"));
        assert!(!ct_eq(&[0; 6], &[0; 5]));
    }
}
