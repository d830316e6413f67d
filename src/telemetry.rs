//! Logging: `tracing` to stderr, filtered by `--log` / `RESTDIS_LOG` (env-filter syntax).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (a second call is a no-op, which tests rely on).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
