//! Tokens: where a request's token comes from (`Authorization: Bearer`, else `_token` in the
//! query) and which [`Caller`] it names. Tokens never appear in logs or error bodies.
//!
//! Every comparison is constant-time in the presented token's content. With a few tokens
//! (`SCAN_MAX` or fewer) every one is compared. With more, the look-up costs the same with
//! 10 tokens or 1,000: the presented token is hashed with a keyed hash (SipHash under a random
//! key drawn at start), and only the configured tokens with that hash (one, unless two
//! collide) are compared. The hash is keyed with a secret, so the time either look-up takes
//! tells an attacker nothing about which token, or how much of one, matched.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;

use hyper::header::HeaderValue;

use crate::dispatch::Caller;
use crate::error::Error;
use crate::protocol::path::query_token;

/// Up to this many tokens, each request compares every one (cheaper than hashing).
const SCAN_MAX: usize = 4;

/// The token table: token -> caller.
pub struct Auth {
    entries: Vec<(Vec<u8>, Caller)>,
    /// Keyed hash of a token -> the entries with that hash, in configuration order.
    by_hash: HashMap<u64, Vec<usize>>,
    /// The secret key of the hash (random per process).
    key: RandomState,
}

impl Auth {
    /// Builds the table from `(token, caller)` pairs.
    pub fn new(entries: Vec<(String, Caller)>) -> Self {
        let entries: Vec<(Vec<u8>, Caller)> = entries.into_iter().map(|(t, c)| (t.into_bytes(), c)).collect();
        let key = RandomState::new();
        let mut by_hash: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, (token, _)) in entries.iter().enumerate() {
            by_hash.entry(key.hash_one(token.as_slice())).or_default().push(i);
        }
        Self {
            entries,
            by_hash,
            key,
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
        let all = self.entries.len() <= SCAN_MAX;
        let hashed: &[usize] = if all {
            &[]
        } else {
            let hash = self.key.hash_one(presented.as_ref());
            self.by_hash.get(&hash).map_or(&[], Vec::as_slice)
        };
        let every = 0..if all { self.entries.len() } else { 0 };
        let mut found: Option<&Caller> = None;
        for i in every.chain(hashed.iter().copied()) {
            let (token, caller) = &self.entries[i];
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
