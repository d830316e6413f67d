//! Runs the fuzz targets' checks without libFuzzer, on stable Rust: over files (a corpus, or
//! a crash artifact to reproduce), or over inputs generated from the seeds by random mutation.
//!
//! ```text
//! replay <target|all> [FILE|DIR ...]       each file (each file of each DIR) once
//! replay <target|all> --smoke N [--seed S] the seeds, then N mutated inputs per target
//! replay seeds [DIR]                       write the seeds to DIR/<target>/ (default: corpus)
//! ```
//!
//! A failing input is written to `artifacts/<target>/crash-<hash>` and the exit code is 1.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use restdis_fuzz::{check, mutate, seeds, Rng, TARGETS};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(first) = args.first() else {
        eprintln!("usage: replay <path|body|pipeline|encode|resp|all> [FILE|DIR ...] [--smoke N [--seed S]]");
        eprintln!("       replay seeds [DIR]");
        return ExitCode::from(2);
    };
    if first == "seeds" {
        let dir = PathBuf::from(args.get(1).map(String::as_str).unwrap_or("corpus"));
        for target in TARGETS {
            let sub = dir.join(target);
            std::fs::create_dir_all(&sub).expect("create the corpus folder");
            for (i, seed) in seeds(target).iter().enumerate() {
                std::fs::write(sub.join(format!("seed-{i:03}")), seed).expect("write a seed");
            }
        }
        println!("seeds written to {}", dir.display());
        return ExitCode::SUCCESS;
    }
    let targets: Vec<&str> = if first == "all" {
        TARGETS.to_vec()
    } else if TARGETS.contains(&first.as_str()) {
        vec![first.as_str()]
    } else {
        eprintln!("unknown target {first}; targets: {}", TARGETS.join(", "));
        return ExitCode::from(2);
    };
    let mut smoke: Option<u64> = None;
    let mut seed: u64 = 1;
    let mut files: Vec<PathBuf> = Vec::new();
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--smoke" => smoke = rest.next().and_then(|n| n.parse().ok()),
            "--seed" => seed = rest.next().and_then(|n| n.parse().ok()).unwrap_or(1),
            path => collect(Path::new(path), &mut files),
        }
    }
    // Panics are reported with the input that caused them, not as a bare backtrace.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    let mut failed = false;
    for target in targets {
        let mut ran = 0u64;
        let mut run = |input: &[u8]| {
            ran += 1;
            if std::panic::catch_unwind(|| check(target, input)).is_err() {
                failed = true;
                let saved = save_crash(target, input);
                eprintln!("{target}: failing input saved to {}", saved.display());
            }
        };
        for file in &files {
            run(&std::fs::read(file).expect("read an input file"));
        }
        if let Some(n) = smoke {
            let pool = seeds(target);
            for s in &pool {
                run(s);
            }
            let mut rng = Rng::new(seed ^ target.len() as u64);
            let mut last: Vec<u8> = Vec::new();
            for i in 0..n {
                let base = if i % 4 == 3 && !last.is_empty() {
                    &last
                } else {
                    &pool[rng.below(pool.len())]
                };
                let other = &pool[rng.below(pool.len())];
                let input = mutate(&mut rng, base, other);
                run(&input);
                last = input;
            }
        }
        println!(
            "{target}: {ran} inputs, {}",
            if failed { "FAILURES" } else { "no failures" }
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .expect("read a corpus folder")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, files);
        }
    } else {
        files.push(path.to_path_buf());
    }
}

fn save_crash(target: &str, input: &[u8]) -> PathBuf {
    let mut h = DefaultHasher::new();
    input.hash(&mut h);
    let dir = Path::new("artifacts").join(target);
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(format!("crash-{:016x}", h.finish()));
    let _ = std::fs::write(&path, input);
    path
}
