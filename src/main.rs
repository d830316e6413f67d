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
    // Every worker is a current-thread runtime: concurrent requests then coalesce into one
    // Redis write, and a request costs about 40 % less CPU than on the work-stealing runtime
    // (docs/performance.md). This thread is the first worker; `--worker-threads N` starts N - 1
    // more, each with its own listener socket and Redis connections (`server::spawn_worker`).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("restdis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let source = restdis::reload::Source { cli, env };
    match runtime.block_on(restdis::server::run(config, source)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("restdis: {e:#}");
            ExitCode::FAILURE
        }
    }
}
