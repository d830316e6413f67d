//! Lua scripts written for Upstash. Upstash accepts a shebang flag that Redis does not know,
//! `#!lua flags=allow-key-locking` (the current `@upstash/ratelimit` and Python
//! `upstash-ratelimit` put it on every script); Redis refuses such a script outright. Restdis
//! removes the flags Redis does not know and keeps the others, and remembers the script's
//! SHA1 so that an `EVALSHA` of the original text finds the rewritten one.

/// The shebang flags Redis 7 knows.
const REDIS_FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// The script without shebang flags Redis does not know, or `None` when nothing is to change.
pub fn strip_unknown_flags(script: &[u8]) -> Option<Vec<u8>> {
    let rest = script.strip_prefix(b"#!lua")?;
    let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let line = std::str::from_utf8(&rest[..end]).ok()?;
    let mut words: Vec<String> = Vec::new();
    let mut changed = false;
    for word in line.split_whitespace() {
        match word.strip_prefix("flags=") {
            Some(list) => {
                let kept: Vec<&str> = list
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .filter(|f| {
                        let known = REDIS_FLAGS.contains(f);
                        changed |= !known;
                        known
                    })
                    .collect();
                words.push(format!("flags={}", kept.join(",")));
            }
            None => words.push(word.to_string()),
        }
    }
    if !changed {
        return None;
    }
    let mut out = b"#!lua".to_vec();
    for w in &words {
        out.push(b' ');
        out.extend_from_slice(w.as_bytes());
    }
    out.extend_from_slice(&rest[end..]);
    Some(out)
}

/// The lower-case hex SHA1 Redis names a script by.
pub fn sha1_hex(script: &[u8]) -> String {
    sha1_smol::Sha1::from(script).digest().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_unknown_flags() {
        let s = b"#!lua flags=allow-key-locking\nreturn 1";
        assert_eq!(strip_unknown_flags(s).unwrap(), b"#!lua flags=\nreturn 1");
        let s = b"#!lua flags=no-writes,allow-key-locking\nreturn 1";
        assert_eq!(
            strip_unknown_flags(s).unwrap(),
            b"#!lua flags=no-writes\nreturn 1"
        );
        assert_eq!(strip_unknown_flags(b"#!lua flags=no-writes\nreturn 1"), None);
        assert_eq!(strip_unknown_flags(b"return 1"), None);
        assert_eq!(strip_unknown_flags(b"#!lua\nreturn 1"), None);
    }

    #[test]
    fn sha1_matches_redis() {
        // SCRIPT LOAD "return 1" answers this in Redis.
        assert_eq!(sha1_hex(b"return 1"), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    }
}
