//! The path form of a command: `/<cmd>/<arg>/...`, an optional raw body appended as one final
//! argument, then the query pairs. Segments are split on the raw `/` *before* percent-decoding,
//! so `%2F` stays inside its argument; `+` is a literal plus everywhere.

use percent_encoding::percent_decode_str;

use super::{BadRequest, Command};

/// The query parameter that carries a token instead of the `Authorization` header.
pub const TOKEN_PARAM: &str = "_token";

/// Builds a command from the path-form route (`Route::Command`'s raw text), the raw query
/// string and the request body.
///
/// Order: path segments, then the body (if non-empty), then each query pair as `name`,
/// `value` (a bare `name` is one argument). `_token` is never an argument. Interior empty
/// segments are empty-string arguments (`/set/k/` sets `k` to `""`).
pub fn parse_command(route_rest: &str, query: Option<&str>, body: &[u8]) -> Result<Command, BadRequest> {
    let mut args: Vec<Vec<u8>> = route_rest.split('/').map(decode).collect();
    if args.first().is_none_or(|name| name.is_empty()) {
        return Err(BadRequest::new("ERR empty command"));
    }
    if !body.is_empty() {
        args.push(body.to_vec());
    }
    args.extend(query_args(query));
    Command::new(args).ok_or_else(|| BadRequest::new("ERR empty command"))
}

/// The query string's arguments in order, `_token` left out.
pub fn query_args(query: Option<&str>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (name, value) in query_pairs(query) {
        if name == TOKEN_PARAM.as_bytes() {
            continue;
        }
        out.push(name);
        if let Some(v) = value {
            out.push(v);
        }
    }
    out
}

/// The percent-decoded `_token` query value, if any.
pub fn query_token(query: Option<&str>) -> Option<Vec<u8>> {
    query_pairs(query)
        .find(|(name, _)| name == TOKEN_PARAM.as_bytes())
        .map(|(_, v)| v.unwrap_or_default())
}

/// Splits the path of a streaming route (`/subscribe/a/b`) into its decoded, non-empty
/// segments.
pub fn segments(rest: &str) -> Vec<Vec<u8>> {
    rest.split('/').filter(|s| !s.is_empty()).map(decode).collect()
}

fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> + '_ {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((n, v)) => (decode(n), Some(decode(v))),
            None => (decode(pair), None),
        })
}

fn decode(segment: &str) -> Vec<u8> {
    percent_decode_str(segment).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(cmd: &Command) -> Vec<String> {
        cmd.args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn path_body_then_query() {
        let cmd = parse_command("set/foo", Some("EX=100&_token=abc&NX"), b"v a l").unwrap();
        assert_eq!(strs(&cmd), ["set", "foo", "v a l", "EX", "100", "NX"]);
    }

    #[test]
    fn split_before_decoding_and_plus_is_literal() {
        let cmd = parse_command("set/a%2Fb/1+2%20x", None, b"").unwrap();
        assert_eq!(strs(&cmd), ["set", "a/b", "1+2 x"]);
        let cmd = parse_command("set/k/", None, b"").unwrap();
        assert_eq!(strs(&cmd), ["set", "k", ""]);
    }

    #[test]
    fn binary_segments_and_token() {
        let cmd = parse_command("set/k/%FF%00", None, b"").unwrap();
        assert_eq!(cmd.args()[2], vec![0xFF, 0x00]);
        assert_eq!(query_token(Some("a=1&_token=x%2By%3D")), Some(b"x+y=".to_vec()));
        assert_eq!(query_token(Some("a=1")), None);
    }

    #[test]
    fn empty_name_is_refused() {
        assert!(parse_command("", None, b"").is_err());
        assert!(parse_command("/x", None, b"").is_err());
    }
}
