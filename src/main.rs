//! The `restdis` binary: parse flags, resolve the configuration, start logging, run.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Parser;
use restdis::cli::Cli;
use restdis::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        return ExitCode::SUCCESS;
    }
    restdis::telemetry::init(&config.log);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = config.worker_threads {
        runtime.worker_threads(n.max(1));
    }
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
