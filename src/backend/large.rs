//! [`LargeReplies`]: which commands answered with a large reply last time, so that the next
//! one goes to a spill-over connection from the start.
//!
//! A connection becomes heavy when a large reply starts to arrive ([`super::wire`]), but a
//! small request sent between the large one and the first bytes of its reply still waits
//! behind all of it. Large values are usually read again and again (the same `GET` of the
//! same key), so a command whose last reply was large is sent where small requests are not,
//! and marks that connection heavy as it is sent. The memory is a set of hashes of whole
//! commands (name and arguments), bounded, and costs nothing while it is empty.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use redis::Value;

use super::wire::LARGE_REPLY;
use crate::protocol::Command;

/// Commands remembered at most; the set is cleared when it fills (large values are few).
const MAX_REMEMBERED: usize = 4096;

/// The commands whose last reply was large.
#[derive(Default)]
pub struct LargeReplies {
    hashes: Mutex<HashSet<u64>>,
    /// Whether `hashes` may be non-empty: lets [`predicts`](Self::predicts) skip hashing
    /// and locking for everyone who never reads a large value.
    any: AtomicBool,
    hasher: std::collections::hash_map::RandomState,
}

impl LargeReplies {
    /// Whether `cmd` answered with a large reply the last time it ran.
    pub fn predicts(&self, cmd: &Command) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let hash = self.hash(cmd);
        self.hashes.lock().is_ok_and(|set| set.contains(&hash))
    }

    /// Remembers or forgets `cmd` after its reply; `predicted`: what
    /// [`predicts`](Self::predicts) said before it ran.
    pub fn learn(&self, cmd: &Command, predicted: bool, reply: &Value) {
        let large = matches!(reply, Value::BulkString(b) if b.len() >= LARGE_REPLY);
        if large == predicted {
            return;
        }
        let hash = self.hash(cmd);
        let Ok(mut set) = self.hashes.lock() else { return };
        if large {
            if set.len() >= MAX_REMEMBERED {
                set.clear();
            }
            set.insert(hash);
            self.any.store(true, Ordering::Relaxed);
        } else {
            set.remove(&hash);
        }
    }

    fn hash(&self, cmd: &Command) -> u64 {
        self.hasher.hash_one(cmd.args())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_command_whose_reply_was_large_until_it_is_small_again() {
        let memory = LargeReplies::default();
        let get = Command::internal(&["GET", "big"]);
        let other = Command::internal(&["GET", "small"]);
        assert!(!memory.predicts(&get));
        memory.learn(&get, false, &Value::BulkString(vec![b'x'; LARGE_REPLY]));
        assert!(memory.predicts(&get));
        assert!(!memory.predicts(&other));
        memory.learn(&other, false, &Value::BulkString(vec![b'x'; LARGE_REPLY - 1]));
        assert!(!memory.predicts(&other));
        memory.learn(&get, true, &Value::Nil);
        assert!(!memory.predicts(&get));
    }
}
