//! Tokens: where a request's token comes from (`Authorization: Bearer`, else `_token` in the
//! query) and which [`Caller`] it names. Comparison is constant-time in the presented token's
//! content, and every configured token is compared, so timing tells nothing about which
//! token, or how much of one, matched. Tokens never appear in logs or error bodies.

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use subtle::{Choice, ConstantTimeEq};

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

    /// Whether the request carries any token at all.
    pub fn has_credentials(headers: &HeaderMap, query: Option<&str>) -> bool {
        headers.contains_key(AUTHORIZATION) || query_token(query).is_some()
    }

    /// The caller the request's token names, or 401.
    pub fn authenticate(&self, headers: &HeaderMap, query: Option<&str>) -> Result<Caller, Error> {
        let presented = match bearer(headers) {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => std::borrow::Cow::Owned(query_token(query).ok_or(Error::Unauthorized)?),
        };
        let mut found: Option<&Caller> = None;
        for (token, caller) in &self.entries {
            if bool::from(ct_eq(&presented, token)) && found.is_none() {
                found = Some(caller);
            }
        }
        found.cloned().ok_or(Error::Unauthorized)
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any case, spaces trimmed).
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let value = value.trim_ascii();
    let (scheme, rest) = value.split_at(value.iter().position(|b| *b == b' ')?);
    if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(rest.trim_ascii())
    } else {
        None
    }
}

/// Constant-time equality; the time depends only on the configured token's length.
fn ct_eq(presented: &[u8], configured: &[u8]) -> Choice {
    let mut same = (presented.len() as u64).ct_eq(&(configured.len() as u64));
    for (i, c) in configured.iter().enumerate() {
        same &= presented.get(i).copied().unwrap_or(0).ct_eq(c);
    }
    same
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn bearer_parsing() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("  bEaReR   abc=  "));
        assert_eq!(bearer(&h), Some(&b"abc="[..]));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(bool::from(ct_eq(b"secret", b"secret")));
        assert!(!bool::from(ct_eq(b"secre", b"secret")));
        assert!(!bool::from(ct_eq(b"secret1", b"secret")));
        assert!(!bool::from(ct_eq(b"", b"secret")));
        assert!(!bool::from(ct_eq(b"secreT", b"secret")));
    }
}
