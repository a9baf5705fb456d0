//! Logs through `tracing`: text or JSON lines on stderr. `RUST_LOG` overrides the filter.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the global subscriber once; later calls do nothing.
pub fn init(config: &LogConfig, force_json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if config.json || force_json { builder.json().try_init() } else { builder.try_init() };
}
