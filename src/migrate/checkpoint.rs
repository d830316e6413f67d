//! The checkpoint file of `restdis migrate --checkpoint FILE`: where the source SCAN stands
//! (the cursor after the last batch that, with every batch before it, is fully copied) and
//! the counts so far, as JSON. Written atomically (a temporary file renamed over it), so an
//! interrupted write leaves the previous checkpoint whole.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The format version written today.
const VERSION: u32 = 1;

/// Keys counted by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Keys SCAN returned and that were handled.
    pub seen: u64,
    /// Keys written to the destination.
    pub copied: u64,
    /// Keys left alone because they exist at the destination (`--skip-existing`).
    pub skipped: u64,
    /// Keys gone (expired or deleted) before they could be copied.
    pub expired: u64,
    /// Keys that could not be copied.
    pub failed: u64,
    /// Bytes of keys and values read.
    pub bytes: u64,
}

/// What a checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Format version.
    pub version: u32,
    /// The source, without credentials.
    pub from: String,
    /// The destination, without credentials.
    pub to: String,
    /// The SCAN cursor to continue from (`0` with `finished` means the walk is over).
    pub cursor: String,
    /// Whether the whole source was walked.
    pub finished: bool,
    /// Counts so far.
    pub counts: Counts,
}

impl Checkpoint {
    /// A fresh checkpoint at the start of the walk.
    pub fn new(from: &str, to: &str) -> Self {
        Self {
            version: VERSION,
            from: from.into(),
            to: to.into(),
            cursor: "0".into(),
            finished: false,
            counts: Counts::default(),
        }
    }

    /// Reads `path`; `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read the checkpoint {}: {e}", path.display())),
        };
        let cp: Self = serde_json::from_slice(&text)
            .map_err(|e| format!("{} is not a restdis migrate checkpoint: {e}", path.display()))?;
        if cp.version != VERSION {
            return Err(format!(
                "{}: checkpoint version {} is not {VERSION}",
                path.display(),
                cp.version
            ));
        }
        Ok(Some(cp))
    }

    /// Writes `path` atomically: a temporary file beside it, then a rename.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let text = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| format!("cannot write the checkpoint {}: {e}", path.display()))
    }
}

/// Finished batches in SCAN order: the checkpoint cursor moves only past a batch once every
/// batch before it has finished too (batches run concurrently and finish in any order).
#[derive(Debug, Default)]
pub struct Frontier {
    next: u64,
    done: std::collections::BTreeMap<u64, String>,
}

impl Frontier {
    /// Batch `seq` (numbered from 0 in SCAN order), whose SCAN returned `cursor_after`, has
    /// finished; returns the cursor the checkpoint may now hold, if it moved.
    pub fn finish(&mut self, seq: u64, cursor_after: String) -> Option<String> {
        self.done.insert(seq, cursor_after);
        let mut moved = None;
        while let Some(c) = self.done.remove(&self.next) {
            moved = Some(c);
            self.next += 1;
        }
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontier_waits_for_earlier_batches() {
        let mut f = Frontier::default();
        assert_eq!(f.finish(1, "20".into()), None);
        assert_eq!(f.finish(0, "10".into()), Some("20".into()));
        assert_eq!(f.finish(2, "0".into()), Some("0".into()));
    }

    #[test]
    fn save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp.json");
        assert_eq!(Checkpoint::load(&path).unwrap(), None);
        let mut cp = Checkpoint::new("redis://a", "redis://b");
        cp.counts.copied = 3;
        cp.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), Some(cp));
        std::fs::write(&path, "nope").unwrap();
        assert!(Checkpoint::load(&path).is_err());
    }
}
