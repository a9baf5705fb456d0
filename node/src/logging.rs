//! Logs through `tracing`: text or JSON lines on stderr. `RUST_LOG` overrides the filter.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber once; later calls do nothing.
pub fn init(config: &LogConfig, force_json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    // Colours only on a terminal: log files and `docker compose logs` get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if config.json || force_json { builder.json().try_init() } else { builder.try_init() };
}
