//! [`Command`]: one Redis command as the byte strings that go on the wire.

use std::fmt;

/// The longest command name we uppercase on the stack for policy look-ups. Longer names are
/// not Redis commands; they are forwarded as they are and Redis answers "unknown command".
const MAX_NAME: usize = 32;

/// One Redis command: the name (as the client sent it) followed by its arguments, all
/// binary-safe. Invariant: `args` is never empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    args: Vec<Vec<u8>>,
}

impl Command {
    /// Builds a command from its parts; `None` when `args` is empty.
    pub fn new(args: Vec<Vec<u8>>) -> Option<Self> {
        if args.is_empty() {
            None
        } else {
            Some(Self { args })
        }
    }

    /// Builds a command from string parts (tests and internal commands).
    pub fn from_strs(parts: &[&str]) -> Option<Self> {
        Self::new(parts.iter().map(|p| p.as_bytes().to_vec()).collect())
    }

    /// A command restdis itself sends (`MULTI`, `EXEC`, `PING`, `TYPE k`, ...). An empty
    /// `parts` gives `PING`.
    pub fn internal(parts: &[&str]) -> Self {
        match Self::from_strs(parts) {
            Some(cmd) => cmd,
            None => Self {
                args: vec![b"PING".to_vec()],
            },
        }
    }

    /// The command name exactly as sent (forwarded as given).
    pub fn name(&self) -> &[u8] {
        &self.args[0]
    }

    /// All parts, the name first.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.args
    }

    /// The parts after the name.
    pub fn params(&self) -> &[Vec<u8>] {
        &self.args[1..]
    }

    /// Consumes the command, giving its parts.
    pub fn into_args(self) -> Vec<Vec<u8>> {
        self.args
    }

    /// The name in upper case, for policy decisions; `None` for names that are not plausible
    /// Redis command names (too long or not ASCII).
    pub fn upper_name(&self) -> Option<UpperName> {
        UpperName::new(self.name())
    }

    /// Whether any parameter equals `word`, ignoring ASCII case.
    pub fn has_param(&self, word: &str) -> bool {
        self.params()
            .iter()
            .any(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.args.iter().map(|a| String::from_utf8_lossy(a)))
            .finish()
    }
}

/// An upper-cased command name held on the stack (no allocation on the request path).
#[derive(Clone, Copy)]
pub struct UpperName {
    buf: [u8; MAX_NAME],
    len: usize,
}

impl UpperName {
    /// Upper-cases `name`; `None` if it is longer than any Redis command or not ASCII.
    pub fn new(name: &[u8]) -> Option<Self> {
        if name.len() > MAX_NAME || !name.is_ascii() {
            return None;
        }
        let mut buf = [0u8; MAX_NAME];
        for (dst, src) in buf.iter_mut().zip(name) {
            *dst = src.to_ascii_uppercase();
        }
        Some(Self { buf, len: name.len() })
    }

    /// The upper-cased name.
    pub fn as_str(&self) -> &str {
        // ASCII in, ASCII out: always valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_name_folds_ascii_and_refuses_odd_names() {
        let cmd = Command::from_strs(&["hGetAll", "k"]).unwrap();
        assert_eq!(cmd.upper_name().unwrap().as_str(), "HGETALL");
        assert!(UpperName::new("é".as_bytes()).is_none());
        assert!(UpperName::new(&[b'a'; 40]).is_none());
        assert!(Command::new(vec![]).is_none());
    }
}
