//! The `restdis` binary: parse flags, resolve the configuration, start logging, run.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: fewer cycles per request than the system allocator on the hot path (measured in
/// docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use restdis::cli::{Cli, Command};
use restdis::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Migrate(args)) = &cli.command {
        return restdis::migrate::main(args);
    }
    if let Some(Command::Healthcheck { addr }) = &cli.command {
        let addr = addr
            .clone()
            .or(cli.admin_listen.clone())
            .unwrap_or_else(|| restdis::config::defaults::ADMIN_LISTEN.to_string());
        let checked = restdis::healthcheck::target(&addr)
            .and_then(|a| restdis::healthcheck::check(a, std::time::Duration::from_secs(2)));
        return match checked {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("restdis healthcheck: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let config = match Config::resolve(&cli, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("restdis: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!("{}", restdis::config::summary(&config));
        print!("{}", restdis::config::topology::probe_report(&config.tenants));
        return ExitCode::SUCCESS;
    }
    restdis::telemetry::init(&config.log);
    // One thread (the default) runs everything on a current-thread runtime: concurrent
    // requests then coalesce into one Redis write, and a request costs about 40 % less CPU
    // than on the work-stealing runtime (docs/performance.md). More threads scale across cores.
    let mut runtime = match config.worker_threads {
        n if n <= 1 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            // As much stack as the main thread: replies are parsed and encoded recursively, and
            // Redis nests a Lua reply up to about 8,000 levels (tests/it/wire.rs).
            b.worker_threads(n).thread_stack_size(8 << 20);
            b
        }
    };
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("restdis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(restdis::server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restdis: {e:#}");
            ExitCode::FAILURE
        }
    }
}
