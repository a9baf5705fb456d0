//! Node configuration: one TOML file, overridden by flags and `FIXD_*` environment variables.
//!
//! Relative paths in the file are resolved against the file's own directory, so a config can be
//! moved together with its keys. See `node/config/example.toml` for every field with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fixd_proto::types::settlement::MethodologyParams;
use serde::{Deserialize, Serialize};

use crate::venues::VenuesConfig;

/// The whole node configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the node keeps its sled store and trade archive.
    pub data_dir: PathBuf,
    /// The genesis file (TOML or JSON) shared by the committee.
    pub genesis: PathBuf,
    /// The directory holding this member's keys (`fixd init` writes it).
    pub keys_dir: PathBuf,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub observer: ObserverConfig,
    #[serde(default)]
    pub p2p: crate::network::P2pConfig,
    #[serde(default)]
    pub venues: VenuesConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub chain: ChainConfig,
    /// Settlements to schedule at start (the admin API schedules more at run time).
    #[serde(default)]
    pub settlements: Vec<ScheduledSettlement>,
}

/// The HTTP API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address the API listens on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Largest request body, bytes. Default 65536.
    pub max_body_bytes: usize,
    /// Per-request timeout. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Bearer token for admin routes (scheduling), compared in constant time. Without one,
    /// admin routes are refused, unless `admin_loopback_without_token` lets local callers in.
    /// Default: none.
    pub admin_token: Option<String>,
    /// On a loopback `listen`, serve admin routes without the token. Only for a machine whose
    /// every local user and process may schedule (the devnet sets it). Default false.
    pub admin_loopback_without_token: bool,
    /// `Host` header names (with or without `:port`) that admin routes answer to, besides the
    /// loopback names `127.0.0.1`, `localhost` and `[::1]`, which are always allowed: a request
    /// naming another host is refused, so that DNS rebinding or a confused proxy cannot reach
    /// them. Default: none.
    pub admin_hosts: Vec<String>,
    /// How many settlements that have not matured yet the node holds at most; scheduling more
    /// is refused (429). Default 10000.
    pub max_scheduled: usize,
    /// How many `/v1/events` streams the node holds open at once; one more is refused with 503
    /// and `Retry-After`. Default 256.
    pub max_event_streams: usize,
    /// How many requests the node serves at once (an event stream counts only until its headers
    /// are sent); one more is refused at once with 503 `overloaded` and `Retry-After`.
    /// Default 256.
    pub max_concurrent_requests: usize,
    /// How long a client may take to send a request's headers, the first request's or, on a
    /// kept-alive connection, the next one's; then the connection is closed. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Bond checks one client address (an IPv6 caller by its /64) may start a minute through
    /// `POST /v1/settlements/{id}/disputes`, in bursts of up to 5; past it, 429 with
    /// `Retry-After`. Each check reads the bond on this node's RPC. Default 30.
    pub bond_checks_per_client_per_minute: u32,
    /// Bond checks the API starts a second, from every client together; past it, 429 with
    /// `Retry-After`. The API's RPC load is at most six calls per check. Default 10.
    pub bond_checks_per_second: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 65_536,
            request_timeout: Duration::from_secs(10),
            admin_token: None,
            admin_loopback_without_token: false,
            admin_hosts: Vec::new(),
            max_scheduled: 10_000,
            max_event_streams: 256,
            max_concurrent_requests: 256,
            header_read_timeout: Duration::from_secs(5),
            bond_checks_per_client_per_minute: 30,
            bond_checks_per_second: 10,
        }
    }
}

/// At most this many first-value and final-report decisions run at once; more due start as
/// these decide. An expiry burst of 10,000 settlements otherwise ran 10,000 Tendermint cores and
/// their round messages together (some 12 KB each); a wave of 500 keeps the service busy (a
/// decision takes a few ms of its time) in a twentieth of that. The burst of 10,000 certified
/// as fast in waves of 500 as of 1,000 (31.9 s against 31.3 s) and peaked lower (BENCHMARKS.md,
/// session 19). Every member starts the due ones in the same order (the settlement list's:
/// maturity, then id), so they run the same wave. A decision running longer than a round
/// timeout stops counting: one that cannot decide (a missing quorum) does not hold the others
/// back.
pub const MAX_RUNNING_DECISIONS: usize = 500;

/// The observation producer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObserverConfig {
    /// How often the scheduler looks for settlements due. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
    /// At most this many first-value and final-report decisions run at once; the others due
    /// start as these decide (an expiry burst in waves). Default 500
    /// ([`MAX_RUNNING_DECISIONS`]); at least 1.
    pub max_running_decisions: usize,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        ObserverConfig { tick: Duration::from_secs(1), max_running_decisions: MAX_RUNNING_DECISIONS }
    }
}

/// The Ethereum side: where final reports are published and read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// JSON-RPC endpoint of the chain named in the genesis (`chain_id`, `contract`). Without one
    /// the node still signs and gossips final reports but neither publishes nor reads the
    /// contract. Default: none.
    pub rpc_url: Option<String>,
    /// How often the contract and pending transactions are checked. Default `1s`.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Timeout of one RPC call. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub rpc_timeout: Duration,
    /// A sent transaction with no receipt after this long is replaced (same nonce, doubled
    /// fees). Default `30s`.
    #[serde(with = "humantime_serde")]
    pub replace_after: Duration,
    /// Longest wait between retries while the RPC endpoint fails. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// The highest `maxFeePerGas` this node ever offers, wei: first sends and every
    /// replacement are capped by it. At the cap the node stops raising, says so in its log and
    /// at `/v1/status` (`chain.fee_capped`), and waits for the base fee to fall. Default
    /// 500 gwei.
    pub max_fee_per_gas: u128,
    /// The most gas one `publishBatch` may use: the reports this member publishes in the same
    /// turn go out in batches of as many as fit (about 26,000 gas each over 55,000, at most 100
    /// a batch). Under 107,000 nothing is batched. Default 3,000,000.
    pub max_batch_gas: u64,
}

/// Gas of a `publishBatch` over its reports, measured at threshold 5 (contracts/README.md)
/// with a margin: 52,900 and 25,200 a report.
pub const BATCH_BASE_GAS: u64 = 55_000;
/// See [`BATCH_BASE_GAS`].
pub const BATCH_REPORT_GAS: u64 = 26_000;

impl ChainConfig {
    /// How many reports fit in one batch under `max_batch_gas` (fewer than 2: no batches).
    pub fn max_batch_reports(&self) -> usize {
        let reports = self.max_batch_gas.saturating_sub(BATCH_BASE_GAS) / BATCH_REPORT_GAS;
        (reports as usize).min(fixd_proto::types::report::MAX_BATCH_REPORTS)
    }
}

impl Default for ChainConfig {
    fn default() -> Self {
        ChainConfig {
            rpc_url: None,
            poll_interval: Duration::from_secs(1),
            rpc_timeout: Duration::from_secs(5),
            replace_after: Duration::from_secs(30),
            max_backoff: Duration::from_secs(10),
            max_fee_per_gas: 500_000_000_000,
            max_batch_gas: 3_000_000,
        }
    }
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `tracing` filter, e.g. `info` or `fixd_node=debug,info`. `RUST_LOG` overrides it.
    pub filter: String,
    /// One JSON object per line instead of text.
    pub json: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { filter: "info".into(), json: false }
    }
}

/// A settlement named in the config: index ETH-USD, its maturity and methodology parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledSettlement {
    /// Maturity, unix seconds UTC.
    pub maturity: u64,
    /// Methodology parameters; the CME CF-style defaults when absent.
    #[serde(default)]
    pub params: MethodologyParams,
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}; pass --config with the path `fixd init` printed")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: settlement with maturity {maturity}: {source}")]
    Settlement { path: PathBuf, maturity: u64, source: fixd_proto::types::settlement::ParamsError },
}

impl Config {
    /// Reads a TOML config. Unknown fields, bad types and bad values are refused with the
    /// field's name; relative paths are resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config =
            Self::parse(&text).map_err(|message| ConfigError::Parse { path: path.to_owned(), message })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        for s in &config.settlements {
            s.params.validate().map_err(|source| ConfigError::Settlement {
                path: path.to_owned(),
                maturity: s.maturity,
                source,
            })?;
        }
        Ok(config)
    }

    /// Parses TOML text, with an error that names the field and line.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
    }

    fn resolve_paths(&mut self, base: &Path) {
        for p in [&mut self.data_dir, &mut self.genesis, &mut self.keys_dir] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.api.listen.port(), 8080);
        assert!(config.keys_dir.is_absolute());
        assert_eq!(config.venues.coinbase.base_url, "https://api.exchange.coinbase.com");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let err = Config::parse("data_dir = 'd'\ngenesis = 'g'\nkeys_dir = 'k'\n[api]\nlisten_addr = '1'\n")
            .unwrap_err();
        assert!(err.contains("unknown field `listen_addr`"), "{err}");
        assert!(err.contains("expected one of"), "the error lists the valid fields: {err}");
    }

    #[test]
    fn a_bad_value_is_named_with_its_line() {
        let err =
            Config::parse("data_dir = 'd'\ngenesis = 'g'\nkeys_dir = 'k'\n[api]\nrequest_timeout = 'soon'\n")
                .unwrap_err();
        assert!(err.contains("request_timeout") && err.contains("line 5"), "{err}");
        let err = Config::parse("genesis = 'g'\nkeys_dir = 'k'\n").unwrap_err();
        assert!(err.contains("missing field `data_dir`"), "{err}");
    }
}
