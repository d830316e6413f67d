//! `restdis migrate`: copies keys, with their values and remaining TTLs, from one Redis or
//! Upstash-style REST endpoint to another (docs/migrate.md).
//!
//! The source is walked with `SCAN`; each SCAN batch is copied as a unit (`batch`), up to
//! `--concurrency` batches at a time, each step of a batch one pipeline per side. The pure
//! parts are in `copy` (what to read and write per type and page), `checkpoint` (the file and
//! the cursor that may be saved) and `progress` (counters and the progress line); `endpoint`
//! hides whether a side is Redis or REST; `verify` compares source and destination.

pub mod batch;
pub mod checkpoint;
pub mod copy;
pub mod endpoint;
pub mod progress;
pub mod verify;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::cli::MigrateArgs;
use crate::config::file::Size;
use crate::protocol::Command;
use checkpoint::{Checkpoint, Frontier};
use endpoint::{parse_target, redact, Endpoint, Reply, Target};
use progress::{Progress, Style};

/// What to do with a key that exists at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Report it as failed ("exists"); the default.
    Fail,
    /// Leave it and count it as skipped.
    Skip,
    /// Overwrite it.
    Replace,
}

/// How keys are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Dump, switching to logical when DUMP/RESTORE is refused; logical to REST destinations.
    Auto,
    /// `DUMP` + `RESTORE` (logical only for payloads the destination cannot read).
    Dump,
    /// By type.
    Logical,
}

/// The validated options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Source.
    pub from: Target,
    /// Destination.
    pub to: Target,
    from_token: Option<String>,
    to_token: Option<String>,
    db: Option<i64>,
    pattern: Option<String>,
    key_type: Option<String>,
    /// Existing destination keys.
    pub conflict: Conflict,
    /// Copy mode.
    pub mode: Mode,
    concurrency: usize,
    batch: usize,
    rate: Option<u64>,
    /// Largest request to the destination, bytes.
    pub max_request: usize,
    /// Largest write command of a collection page, bytes of arguments.
    pub chunk_limit: usize,
    limit: Option<u64>,
    checkpoint: Option<PathBuf>,
    checkpoint_every: u64,
    dry_run: bool,
    verify: bool,
    verify_sample: Option<u64>,
    progress: Style,
}

fn rest_token(given: &Option<String>, target: &Target, env: &BTreeMap<String, String>) -> Option<String> {
    if given.is_some() {
        return given.clone();
    }
    let Target::Rest(url) = target else {
        return None;
    };
    let same = |name: &str| env.get(name).is_some_and(|u| u.trim_end_matches('/') == url);
    [
        ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"),
        ("KV_REST_API_URL", "KV_REST_API_TOKEN"),
    ]
    .iter()
    .find(|(u, _)| same(u))
    .and_then(|(_, t)| env.get(*t).cloned())
}

impl Options {
    /// Checks the flags; `Err` is one line for the user (exit code 2).
    pub fn from_args(a: &MigrateArgs, env: &BTreeMap<String, String>) -> Result<Self, String> {
        let from = parse_target("--from", &a.from)?;
        let to = parse_target("--to", &a.to)?;
        if from == to && a.db.is_none() {
            return Err("--from and --to are the same endpoint".into());
        }
        let from_token = rest_token(&a.from_token, &from, env);
        let to_token = rest_token(&a.to_token, &to, env);
        if matches!(from, Target::Rest(_)) && from_token.is_none() {
            return Err(
                "--from is a REST endpoint: give --from-token (or RESTDIS_MIGRATE_FROM_TOKEN)".into(),
            );
        }
        if matches!(to, Target::Rest(_)) && to_token.is_none() {
            return Err("--to is a REST endpoint: give --to-token (or RESTDIS_MIGRATE_TO_TOKEN)".into());
        }
        if a.db.is_some() && matches!(from, Target::Rest(_)) {
            return Err("--db applies to Redis sources only (a REST endpoint has one database)".into());
        }
        let mode = match a.mode.as_str() {
            "auto" => Mode::Auto,
            "dump" => Mode::Dump,
            "logical" => Mode::Logical,
            other => return Err(format!("--mode: '{other}' is not auto, dump or logical")),
        };
        if let Some(t) = &a.key_type {
            if copy::Kind::parse(t.as_bytes()).is_none() {
                return Err(format!(
                    "--type: '{t}' is not string, hash, list, set, zset or stream"
                ));
            }
        }
        let rest_dst = matches!(to, Target::Rest(_));
        let max_request = match &a.max_request_size {
            Some(s) => crate::config::parse_size("--max-request-size", &Size::Text(s.clone()))?,
            None if rest_dst => 1 << 20,
            None => 64 << 20,
        };
        let max_request = usize::try_from(max_request).map_err(|_| "--max-request-size is too large")?;
        if max_request < 1024 {
            return Err("--max-request-size must be at least 1KiB".into());
        }
        if a.concurrency == 0 || a.batch == 0 {
            return Err("--concurrency and --batch must be at least 1".into());
        }
        if a.rate == Some(0) {
            return Err("--rate must be at least 1 command per second".into());
        }
        // REST writes with non-UTF-8 arguments travel in the URL (all but one argument):
        // keep their commands well under hyper's 64 KiB URI limit.
        let chunk_limit = if rest_dst { 16 << 10 } else { 1 << 20 }.min(max_request / 2);
        Ok(Self {
            from,
            to,
            from_token,
            to_token,
            db: a.db,
            pattern: a.pattern.clone(),
            key_type: a.key_type.clone(),
            conflict: match (a.replace, a.skip_existing) {
                (true, _) => Conflict::Replace,
                (_, true) => Conflict::Skip,
                _ => Conflict::Fail,
            },
            mode,
            concurrency: a.concurrency,
            batch: a.batch,
            rate: a.rate,
            max_request,
            chunk_limit,
            limit: a.limit,
            checkpoint: a.checkpoint.clone(),
            checkpoint_every: a.checkpoint_every.max(1),
            dry_run: a.dry_run,
            verify: a.verify || a.verify_sample.is_some(),
            verify_sample: a.verify_sample,
            progress: Style::parse(&a.progress)?,
        })
    }

    fn show(t: &Target) -> String {
        match t {
            Target::Redis(u) | Target::Rest(u) => redact(u),
        }
    }
}

/// Pacing for `--rate`: the moment the next command may be sent.
struct Rate {
    per_sec: u64,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

/// Everything a batch needs.
pub struct Ctx {
    /// Source.
    pub src: Endpoint,
    /// Destination.
    pub dst: Endpoint,
    /// Options.
    pub opts: Options,
    /// Counters.
    pub progress: Arc<Progress>,
    logical_only: AtomicBool,
    notes: Mutex<HashSet<String>>,
    rate: Option<Rate>,
    style: Style,
    /// Set by the first Ctrl-C: no new batch starts.
    stop: AtomicBool,
}

impl Ctx {
    /// Whether the next keys go through DUMP/RESTORE.
    pub fn use_dump(&self) -> bool {
        self.opts.mode != Mode::Logical && !self.logical_only.load(Ordering::Relaxed)
    }

    /// Whether a refused DUMP/RESTORE may send keys to logical mode (always in auto mode).
    pub fn may_fall_back(&self) -> bool {
        self.opts.mode == Mode::Auto
    }

    /// From now on every key is copied logically; says why, once.
    pub fn switch_to_logical(&self, why: &str) {
        if !self.logical_only.swap(true, Ordering::Relaxed) {
            self.note(&format!("{why}: copying logically from now on"));
        }
    }

    /// Prints a note on stderr, once per distinct text.
    pub fn note(&self, text: &str) {
        let new = self
            .notes
            .lock()
            .map(|mut n| n.len() < 1000 && n.insert(text.to_string()));
        if new.unwrap_or(false) {
            progress::clear(self.style);
            eprintln!("restdis migrate: {text}");
        }
    }

    /// Waits until `n` more commands fit under `--rate`.
    pub async fn pace(&self, n: usize) {
        let Some(rate) = &self.rate else {
            return;
        };
        let at = {
            let mut next = rate.next.lock().await;
            let now = tokio::time::Instant::now();
            let at = (*next).max(now);
            *next = at + Duration::from_secs_f64(n as f64 / rate.per_sec as f64);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// The walk is complete.
    Finished,
    /// `--limit` reached; a re-run with the checkpoint continues.
    Limited,
    /// Ctrl-C.
    Interrupted,
}

/// `SCAN cursor [MATCH p] COUNT n [TYPE t]`.
fn scan_command(opts: &Options, cursor: &str) -> Command {
    let mut parts = vec!["SCAN", cursor];
    if let Some(p) = &opts.pattern {
        parts.extend(["MATCH", p]);
    }
    let count = opts.batch.to_string();
    parts.extend(["COUNT", &count]);
    if let Some(t) = &opts.key_type {
        parts.extend(["TYPE", t]);
    }
    Command::internal(&parts)
}

/// One SCAN step: the next cursor and the keys.
async fn scan(ctx: &Ctx, cursor: &str) -> Result<(String, Vec<Vec<u8>>), String> {
    ctx.pace(1).await;
    let reply = ctx.src.run(&[scan_command(&ctx.opts, cursor)]).await?;
    match reply.into_iter().next() {
        Some(Reply::Array(parts)) if parts.len() == 2 => {
            let mut parts = parts.into_iter();
            let next = parts
                .next()
                .and_then(|c| c.bytes().map(|b| String::from_utf8_lossy(b).into_owned()));
            let keys = match parts.next() {
                Some(Reply::Array(keys)) => keys
                    .into_iter()
                    .filter_map(|k| k.bytes().map(<[u8]>::to_vec))
                    .collect(),
                _ => Vec::new(),
            };
            next.map(|n| (n, keys))
                .ok_or_else(|| "unexpected SCAN reply".into())
        }
        Some(Reply::Error(e)) => Err(format!("SCAN: {e}")),
        other => Err(format!("unexpected SCAN reply {other:?}")),
    }
}

/// Walks the source from the checkpoint's cursor and copies every batch; updates `cp`.
async fn walk(ctx: Arc<Ctx>, cp: &mut Checkpoint) -> Result<Ending, String> {
    let mut cursor = cp.cursor.clone();
    let mut frontier = Frontier::default();
    let mut running = JoinSet::new();
    let mut seq = 0u64;
    let mut scanned = 0u64;
    let mut saved_at = cp.counts.seen;
    let mut ending = Ending::Finished;
    let mut error = None;
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            ending = Ending::Interrupted;
            break;
        }
        if ctx.opts.limit.is_some_and(|l| scanned >= l) {
            ending = Ending::Limited;
            break;
        }
        let (next, keys) = match scan(&ctx, &cursor).await {
            Ok(step) => step,
            Err(e) => {
                error = Some(e);
                break;
            }
        };
        scanned += keys.len() as u64;
        let (c, s, after) = (ctx.clone(), seq, next.clone());
        running.spawn(async move {
            batch::copy_batch(&c, keys).await;
            (s, after)
        });
        seq += 1;
        while running.len() >= ctx.opts.concurrency {
            settle(&ctx, &mut running, &mut frontier, cp, &mut saved_at).await?;
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    while !running.is_empty() {
        settle(&ctx, &mut running, &mut frontier, cp, &mut saved_at).await?;
    }
    cp.counts = ctx.progress.counts();
    cp.finished = ending == Ending::Finished && error.is_none() && cp.cursor == "0" && seq > 0;
    if let Some(path) = &ctx.opts.checkpoint {
        cp.save(path)?;
    }
    match error {
        Some(e) => Err(e),
        None => Ok(ending),
    }
}

/// Waits for one batch to finish and moves the checkpoint.
async fn settle(
    ctx: &Ctx,
    running: &mut JoinSet<(u64, String)>,
    frontier: &mut Frontier,
    cp: &mut Checkpoint,
    saved_at: &mut u64,
) -> Result<(), String> {
    let Some(done) = running.join_next().await else {
        return Ok(());
    };
    let (seq, after) = done.map_err(|e| format!("a copy task failed: {e}"))?;
    if let Some(c) = frontier.finish(seq, after) {
        cp.cursor = c;
        cp.counts = ctx.progress.counts();
        if let Some(path) = &ctx.opts.checkpoint {
            if cp.counts.seen >= *saved_at + ctx.opts.checkpoint_every {
                cp.save(path)?;
                *saved_at = cp.counts.seen;
            }
        }
    }
    Ok(())
}

/// `--dry-run`: lists the keys (key, type, PTTL) that a copy would take.
async fn dry_run(ctx: &Ctx) -> Result<u64, String> {
    let mut cursor = "0".to_string();
    let mut listed = 0u64;
    loop {
        let (next, keys) = scan(ctx, &cursor).await?;
        let meta: Vec<Command> = keys
            .iter()
            .flat_map(|k| {
                [b"TYPE".as_slice(), b"PTTL"].map(|c| {
                    Command::new(vec![c.to_vec(), k.clone()]).unwrap_or_else(|| Command::internal(&[]))
                })
            })
            .collect();
        let replies = ctx.src.run(&meta).await?;
        let mut out = String::new();
        for (k, pair) in keys.iter().zip(replies.chunks(2)) {
            let kind = pair.first().and_then(Reply::bytes).unwrap_or(b"none");
            let pttl = pair.get(1).and_then(Reply::int).unwrap_or(-2);
            out.push_str(&format!(
                "{}\t{}\t{pttl}\n",
                copy::show(k),
                String::from_utf8_lossy(kind)
            ));
            listed += 1;
        }
        print!("{out}");
        if next == "0" || ctx.opts.limit.is_some_and(|l| listed >= l) || ctx.stop.load(Ordering::Relaxed) {
            return Ok(listed);
        }
        cursor = next;
    }
}

/// `--verify`: walks the source and compares (up to `--verify-sample` keys).
async fn verify_all(ctx: &Ctx) -> Result<verify::Report, String> {
    let mut report = verify::Report::default();
    let mut cursor = "0".to_string();
    loop {
        let (next, mut keys) = scan(ctx, &cursor).await?;
        if let Some(n) = ctx.opts.verify_sample {
            keys.truncate(usize::try_from(n.saturating_sub(report.checked)).unwrap_or(usize::MAX));
        }
        verify::batch(ctx, &keys, &mut report).await?;
        if next == "0"
            || ctx.opts.verify_sample.is_some_and(|n| report.checked >= n)
            || ctx.stop.load(Ordering::Relaxed)
        {
            return Ok(report);
        }
        cursor = next;
    }
}

/// The first Ctrl-C stops new batches (the copy then saves its checkpoint and exits 130); a
/// second one exits at once.
async fn watch_ctrl_c(ctx: Arc<Ctx>) {
    while tokio::signal::ctrl_c().await.is_ok() {
        progress::clear(ctx.style);
        if ctx.stop.swap(true, Ordering::Relaxed) {
            eprintln!("restdis migrate: interrupted again: exiting now");
            std::process::exit(130);
        }
        eprintln!("restdis migrate: interrupted: finishing the batches in flight, then saving the checkpoint (Ctrl-C again to quit now)");
    }
}

/// The source's key count (`DBSIZE`), for the progress estimate.
async fn estimate(src: &Endpoint) -> Option<u64> {
    let reply = src.run(&[Command::internal(&["DBSIZE"])]).await.ok()?;
    reply
        .first()
        .and_then(Reply::int)
        .and_then(|n| u64::try_from(n).ok())
}

/// Opens both sides and runs the copy (or dry run), then verification; returns the exit code.
pub async fn run(opts: Options) -> Result<ExitCode, String> {
    let (from, to) = (Options::show(&opts.from), Options::show(&opts.to));
    let src = Endpoint::open(&opts.from, opts.from_token.as_deref(), opts.db, 64 << 20)
        .await
        .map_err(|e| format!("source: {e}"))?;
    let dst = Endpoint::open(&opts.to, opts.to_token.as_deref(), None, opts.max_request)
        .await
        .map_err(|e| format!("destination: {e}"))?;
    let mut cp = match &opts.checkpoint {
        Some(path) => match Checkpoint::load(path)? {
            Some(cp) if cp.from != from || cp.to != to => {
                return Err(format!(
                    "the checkpoint {} is for {} -> {}; remove it or give another file",
                    path.display(),
                    cp.from,
                    cp.to
                ))
            }
            Some(cp) => cp,
            None => Checkpoint::new(&from, &to),
        },
        None => Checkpoint::new(&from, &to),
    };
    let style = opts.progress;
    let rest_dst = dst.is_rest();
    let ctx = Arc::new(Ctx {
        src,
        dst,
        progress: Arc::new(Progress::resume(&cp.counts)),
        // DUMP payloads are binary: through REST each RESTORE is a request of its own (the path
        // form), against one /pipeline per batch for logical writes; auto mode therefore copies
        // to a REST destination logically.
        logical_only: AtomicBool::new(opts.mode == Mode::Logical || (opts.mode == Mode::Auto && rest_dst)),
        notes: Mutex::new(HashSet::new()),
        rate: opts.rate.map(|per_sec| Rate {
            per_sec,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }),
        style,
        stop: AtomicBool::new(false),
        opts,
    });
    tokio::spawn(watch_ctrl_c(ctx.clone()));
    if ctx.opts.dry_run {
        let n = dry_run(&ctx).await?;
        eprintln!("restdis migrate: dry run: {n} keys would be copied from {from} to {to}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut code = ExitCode::SUCCESS;
    if cp.finished {
        eprintln!(
            "restdis migrate: the checkpoint says this copy finished; remove it to copy again{}",
            if ctx.opts.verify { " (verifying only)" } else { "" }
        );
    } else {
        let (ending, failed) = copy_with_progress(&ctx, &mut cp, &from, &to).await?;
        if ending == Ending::Interrupted {
            return Ok(ExitCode::from(130));
        }
        if failed {
            code = ExitCode::FAILURE;
        }
    }
    if ctx.opts.verify && !ctx.stop.load(Ordering::Relaxed) {
        let report = verify_all(&ctx).await?;
        if ctx.stop.load(Ordering::Relaxed) {
            println!(
                "restdis migrate: verification interrupted after {} keys",
                report.checked
            );
            return Ok(ExitCode::from(130));
        }
        for d in &report.differences {
            println!("differs: {d}");
        }
        println!(
            "restdis migrate: verified {} keys: {} differ{}",
            report.checked,
            report.differing,
            if report.differing as usize > report.differences.len() {
                " (first ones listed)"
            } else {
                ""
            }
        );
        if report.differing > 0 {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// The copy with its progress reporter and Ctrl-C watcher; prints the summary. Returns how
/// the walk ended and whether any key failed.
async fn copy_with_progress(
    ctx: &Arc<Ctx>,
    cp: &mut Checkpoint,
    from: &str,
    to: &str,
) -> Result<(Ending, bool), String> {
    let started = Instant::now();
    let start_seen = cp.counts.seen;
    let est = estimate(&ctx.src).await;
    if cp.counts.seen > 0 {
        eprintln!(
            "restdis migrate: continuing from the checkpoint ({} keys done)",
            cp.counts.seen
        );
    }
    let reporter = tokio::spawn(progress::report(ctx.progress.clone(), ctx.style, est, start_seen));
    let result = walk(ctx.clone(), cp).await;
    reporter.abort();
    progress::clear(ctx.style);
    let ending = result?;
    let c = ctx.progress.counts();
    let secs = started.elapsed().as_secs_f64();
    let this_run = c.seen - start_seen;
    println!(
        "restdis migrate: {from} -> {to}: {} keys in {secs:.1}s ({:.0} keys/s): {} copied, {} skipped (exist), {} expired, {} failed; {} read",
        c.seen,
        this_run as f64 / secs.max(0.001),
        c.copied,
        c.skipped,
        c.expired,
        c.failed,
        progress::human_bytes(c.bytes)
    );
    for (reason, n, examples) in ctx.progress.reasons() {
        println!("failed: {n} keys: {reason} (e.g. {})", examples.join(", "));
    }
    match ending {
        Ending::Finished => {}
        Ending::Limited => {
            println!("restdis migrate: stopped at --limit; re-run with the same --checkpoint to continue")
        }
        Ending::Interrupted => {
            println!("restdis migrate: interrupted; re-run with the same --checkpoint to continue")
        }
    }
    Ok((ending, c.failed > 0))
}

/// The `restdis migrate` entry point: checks the flags (one line and exit code 2 when they
/// are wrong), runs on a two-thread runtime, maps failures to exit code 1.
pub fn main(args: &MigrateArgs) -> ExitCode {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let opts = match Options::from_args(args, &env) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("restdis migrate: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("restdis migrate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("restdis migrate: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn opts(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let cli = crate::cli::Cli::try_parse_from(["restdis", "migrate"].iter().chain(args))
            .map_err(|e| e.to_string())?;
        let Some(crate::cli::Command::Migrate(a)) = cli.command else {
            return Err("no subcommand".into());
        };
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Options::from_args(&a, &env)
    }

    #[test]
    fn upstash_variables_give_the_token() {
        let env = [
            ("UPSTASH_REDIS_REST_URL", "https://x.upstash.io/"),
            ("UPSTASH_REDIS_REST_TOKEN", "tok"),
        ];
        let o = opts(&["--from", "https://x.upstash.io", "--to", "redis://h:1"], &env).unwrap();
        assert_eq!(o.from_token.as_deref(), Some("tok"));
        assert!(opts(&["--from", "https://y.upstash.io", "--to", "redis://h:1"], &env).is_err());
    }

    #[test]
    fn rest_destinations_get_small_requests() {
        let o = opts(
            &["--from", "redis://h:1", "--to", "http://h:2", "--to-token", "t"],
            &[],
        )
        .unwrap();
        assert_eq!(
            (o.max_request, o.chunk_limit, o.mode),
            (1 << 20, 16 << 10, Mode::Auto)
        );
        let o = opts(
            &[
                "--from",
                "redis://h:1",
                "--to",
                "redis://h:2",
                "--max-request-size",
                "4KiB",
            ],
            &[],
        )
        .unwrap();
        assert_eq!((o.max_request, o.chunk_limit), (4096, 2048));
        let e = opts(
            &[
                "--from",
                "http://h:2",
                "--from-token",
                "t",
                "--to",
                "redis://h:1",
                "--db",
                "2",
            ],
            &[],
        )
        .unwrap_err();
        assert!(e.contains("--db"), "{e}");
        assert!(opts(
            &[
                "--from",
                "redis://h:1",
                "--to",
                "redis://h:2",
                "--replace",
                "--skip-existing"
            ],
            &[]
        )
        .is_err());
    }

    #[test]
    fn scan_takes_match_count_and_type() {
        let o = opts(
            &[
                "--from",
                "redis://h:1",
                "--to",
                "redis://h:2",
                "--match",
                "u:*",
                "--type",
                "hash",
            ],
            &[],
        )
        .unwrap();
        let args: Vec<String> = scan_command(&o, "17")
            .args()
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            args,
            ["SCAN", "17", "MATCH", "u:*", "COUNT", "500", "TYPE", "hash"]
        );
    }
}
