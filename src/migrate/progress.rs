//! Progress of `restdis migrate`: shared counters, failure reasons with example keys, and
//! the reporter (a single updating line on a terminal, plain periodic lines otherwise).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::checkpoint::Counts;
use super::copy::show;

/// Example keys kept per failure reason.
const EXAMPLES: usize = 5;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// One line rewritten in place (stderr is a terminal).
    Live,
    /// A line every few seconds.
    Plain,
    /// Nothing until the summary.
    Off,
}

impl Style {
    /// From `--progress auto|plain|off`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "auto" if std::io::stderr().is_terminal() => Ok(Style::Live),
            "auto" | "plain" => Ok(Style::Plain),
            "off" => Ok(Style::Off),
            other => Err(format!("--progress: '{other}' is not auto, plain or off")),
        }
    }
}

/// Counters shared by every batch.
#[derive(Debug, Default)]
pub struct Progress {
    seen: AtomicU64,
    copied: AtomicU64,
    skipped: AtomicU64,
    expired: AtomicU64,
    failed: AtomicU64,
    bytes: AtomicU64,
    reasons: Mutex<BTreeMap<String, (u64, Vec<String>)>>,
}

/// What happened to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Copied,
    /// Left alone: it exists at the destination.
    Skipped,
    /// Gone at the source before it could be copied.
    Expired,
    /// Not copied, for this reason.
    Failed(String),
}

impl Progress {
    /// Starts from the counts of a checkpoint.
    pub fn resume(c: &Counts) -> Self {
        let p = Self::default();
        p.seen.store(c.seen, Ordering::Relaxed);
        p.copied.store(c.copied, Ordering::Relaxed);
        p.skipped.store(c.skipped, Ordering::Relaxed);
        p.expired.store(c.expired, Ordering::Relaxed);
        p.failed.store(c.failed, Ordering::Relaxed);
        p.bytes.store(c.bytes, Ordering::Relaxed);
        p
    }

    /// Counts one key's outcome.
    pub fn record(&self, key: &[u8], outcome: Outcome) {
        self.seen.fetch_add(1, Ordering::Relaxed);
        let counter = match outcome {
            Outcome::Copied => &self.copied,
            Outcome::Skipped => &self.skipped,
            Outcome::Expired => &self.expired,
            Outcome::Failed(reason) => {
                if let Ok(mut r) = self.reasons.lock() {
                    let e = r.entry(reason).or_default();
                    e.0 += 1;
                    if e.1.len() < EXAMPLES {
                        e.1.push(show(key));
                    }
                }
                &self.failed
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds bytes read.
    pub fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn counts(&self) -> Counts {
        Counts {
            seen: self.seen.load(Ordering::Relaxed),
            copied: self.copied.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }

    /// Failure reasons with their count and example keys.
    pub fn reasons(&self) -> Vec<(String, u64, Vec<String>)> {
        self.reasons
            .lock()
            .map(|r| r.iter().map(|(k, (n, ex))| (k.clone(), *n, ex.clone())).collect())
            .unwrap_or_default()
    }
}

/// One progress line: keys done of the estimate, keys/s, bytes, ETA.
pub fn line(c: &Counts, since_start: u64, estimate: Option<u64>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(0.001);
    let rate = since_start as f64 / secs;
    let mut s = format!("{} keys", c.seen);
    if let Some(total) = estimate {
        s.push_str(&format!(" of ~{total}"));
    }
    s.push_str(&format!(", {rate:.0} keys/s, {}", human_bytes(c.bytes)));
    if let Some(total) = estimate {
        if rate > 0.0 && total > c.seen {
            let eta = ((total - c.seen) as f64 / rate) as u64;
            s.push_str(&format!(", ETA {}m{:02}s", eta / 60, eta % 60));
        }
    }
    if c.failed > 0 {
        s.push_str(&format!(", {} failed", c.failed));
    }
    s
}

/// Bytes with a binary unit.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Prints progress until the task is aborted.
pub async fn report(
    progress: std::sync::Arc<Progress>,
    style: Style,
    estimate: Option<u64>,
    start_seen: u64,
) {
    let every = match style {
        Style::Live => Duration::from_millis(500),
        Style::Plain => Duration::from_secs(5),
        Style::Off => return,
    };
    let started = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let c = progress.counts();
        let text = line(&c, c.seen.saturating_sub(start_seen), estimate, started.elapsed());
        let mut err = std::io::stderr().lock();
        let _ = match style {
            Style::Live => write!(err, "\r\x1b[2K{text}"),
            _ => writeln!(err, "progress: {text}"),
        };
        let _ = err.flush();
    }
}

/// Ends a live line before other output.
pub fn clear(style: Style) {
    if style == Style::Live {
        eprint!("\r\x1b[2K");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_with_eta() {
        let c = Counts {
            seen: 50,
            bytes: 2048,
            ..Counts::default()
        };
        let l = line(&c, 50, Some(100), Duration::from_secs(10));
        assert_eq!(l, "50 keys of ~100, 5 keys/s, 2.0 KiB, ETA 0m10s");
    }

    #[test]
    fn failures_keep_examples() {
        let p = Progress::default();
        for i in 0..7u8 {
            p.record(&[b'k', b'0' + i], Outcome::Failed("exists".into()));
        }
        p.record(b"x", Outcome::Copied);
        let r = p.reasons();
        assert_eq!(r[0].1, 7);
        assert_eq!(r[0].2.len(), EXAMPLES);
        assert_eq!(p.counts().seen, 8);
    }
}
