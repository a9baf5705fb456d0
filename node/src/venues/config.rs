//! Venue configuration: the `[venues.<name>]` tables of the node config.
//!
//! ```toml
//! [venues.coinbase]
//! base_url = "https://api.exchange.coinbase.com"   # default: the venue's production URL
//! timeout = "5s"          # per request, connect to last body byte
//! retries = 3             # extra attempts after a retryable failure
//! backoff = "250ms"       # first retry delay; doubles per retry, with jitter, capped at 10s
//! min_interval = "150ms"  # least time between two requests to this venue (rate limits)
//! max_pages = 200         # hard cap on requests per fetch
//!
//! [venues.bitstamp]
//! enabled = false
//! ```
//!
//! Every field is optional, and an absent field takes the venue's default, so a table may set
//! only what it changes. Unknown fields are rejected.

use std::time::Duration;

use fixd_proto::types::venue::Venue;
use serde::{Deserialize, Serialize};

/// Settings of one venue adapter. Build one with [`VenueConfig::production`] or read it from
/// the `[venues]` table through [`VenuesConfig`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VenueConfig {
    /// Whether the node fetches this venue at all.
    pub enabled: bool,
    /// Scheme, host and optional port (and path prefix) of the venue's REST API, without a
    /// trailing slash. Tests and the devnet point it at a loopback replay server.
    pub base_url: String,
    /// Timeout of one HTTP request, from connecting to the last body byte.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How many times a retryable failure (timeout, transport error, HTTP 5xx or 429, the venue
    /// saying it is busy) is retried. 0 disables retries.
    pub retries: u32,
    /// Delay before the first retry. Each further retry doubles it (full jitter between half
    /// and the whole delay), capped at [`MAX_BACKOFF`].
    #[serde(with = "humantime_serde")]
    pub backoff: Duration,
    /// Least time between the starts of two requests to this venue, to stay within its public
    /// rate limit while paging.
    #[serde(with = "humantime_serde")]
    pub min_interval: Duration,
    /// Hard cap on HTTP requests (pages and probes) per fetch, so that a venue that never
    /// stops paging cannot loop us forever. Reaching it fails the fetch with `PageCap`.
    pub max_pages: u32,
}

/// The longest delay between two retries, whatever `backoff` and the retry count are.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl VenueConfig {
    /// The production defaults of a venue: its public REST base URL, a 5 s timeout, 3 retries
    /// from 250 ms, a request interval within the venue's public rate limit, 200 pages.
    pub fn production(venue: Venue) -> Self {
        let (base_url, min_interval_ms) = match venue {
            // Public REST: 10 requests/s per IP.
            Venue::Coinbase => ("https://api.exchange.coinbase.com", 150),
            // Public REST: a decaying counter of about 1 call/s.
            Venue::Kraken => ("https://api.kraken.com", 1_000),
            // 400 requests/s per client, 10,000 per 10 min.
            Venue::Bitstamp => ("https://www.bitstamp.net", 100),
            // Public: 120 requests/min, at most 1/s recommended.
            Venue::Gemini => ("https://api.gemini.com", 1_000),
        };
        VenueConfig {
            enabled: true,
            base_url: base_url.to_owned(),
            timeout: Duration::from_secs(5),
            retries: 3,
            backoff: Duration::from_millis(250),
            min_interval: Duration::from_millis(min_interval_ms),
            max_pages: 200,
        }
    }

    fn apply(mut self, raw: RawVenueConfig) -> Self {
        let RawVenueConfig { enabled, base_url, timeout, retries, backoff, min_interval, max_pages } = raw;
        self.enabled = enabled.unwrap_or(self.enabled);
        self.base_url = base_url.unwrap_or(self.base_url);
        self.timeout = timeout.unwrap_or(self.timeout);
        self.retries = retries.unwrap_or(self.retries);
        self.backoff = backoff.unwrap_or(self.backoff);
        self.min_interval = min_interval.unwrap_or(self.min_interval);
        self.max_pages = max_pages.unwrap_or(self.max_pages);
        self
    }
}

/// The `[venues]` table: one [`VenueConfig`] per venue, each defaulting to
/// [`VenueConfig::production`] field by field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawVenuesConfig")]
pub struct VenuesConfig {
    pub coinbase: VenueConfig,
    pub kraken: VenueConfig,
    pub bitstamp: VenueConfig,
    pub gemini: VenueConfig,
}

impl Default for VenuesConfig {
    fn default() -> Self {
        VenuesConfig {
            coinbase: VenueConfig::production(Venue::Coinbase),
            kraken: VenueConfig::production(Venue::Kraken),
            bitstamp: VenueConfig::production(Venue::Bitstamp),
            gemini: VenueConfig::production(Venue::Gemini),
        }
    }
}

impl VenuesConfig {
    /// The settings of one venue.
    pub fn get(&self, venue: Venue) -> &VenueConfig {
        match venue {
            Venue::Coinbase => &self.coinbase,
            Venue::Kraken => &self.kraken,
            Venue::Bitstamp => &self.bitstamp,
            Venue::Gemini => &self.gemini,
        }
    }

    /// Points every venue at one base URL, such as a loopback replay server that serves all
    /// four venues' paths (`fixd run --venues-url`).
    pub fn set_base_url(&mut self, base_url: &str) {
        for venue in Venue::ALL {
            self.get_mut(venue).base_url = base_url.to_owned();
        }
    }

    /// The settings of one venue, to change.
    pub fn get_mut(&mut self, venue: Venue) -> &mut VenueConfig {
        match venue {
            Venue::Coinbase => &mut self.coinbase,
            Venue::Kraken => &mut self.kraken,
            Venue::Bitstamp => &mut self.bitstamp,
            Venue::Gemini => &mut self.gemini,
        }
    }
}

/// The `[venues]` table as written: every venue and every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVenuesConfig {
    #[serde(default)]
    coinbase: RawVenueConfig,
    #[serde(default)]
    kraken: RawVenueConfig,
    #[serde(default)]
    bitstamp: RawVenueConfig,
    #[serde(default)]
    gemini: RawVenueConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVenueConfig {
    enabled: Option<bool>,
    base_url: Option<String>,
    #[serde(default, with = "humantime_serde::option")]
    timeout: Option<Duration>,
    retries: Option<u32>,
    #[serde(default, with = "humantime_serde::option")]
    backoff: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    min_interval: Option<Duration>,
    max_pages: Option<u32>,
}

impl From<RawVenuesConfig> for VenuesConfig {
    fn from(raw: RawVenuesConfig) -> Self {
        VenuesConfig {
            coinbase: VenueConfig::production(Venue::Coinbase).apply(raw.coinbase),
            kraken: VenueConfig::production(Venue::Kraken).apply(raw.kraken),
            bitstamp: VenueConfig::production(Venue::Bitstamp).apply(raw.bitstamp),
            gemini: VenueConfig::production(Venue::Gemini).apply(raw.gemini),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_table_gives_production_defaults() {
        let cfg: VenuesConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, VenuesConfig::default());
        assert_eq!(cfg.coinbase.base_url, "https://api.exchange.coinbase.com");
        assert_eq!(cfg.kraken.base_url, "https://api.kraken.com");
        assert_eq!(cfg.bitstamp.base_url, "https://www.bitstamp.net");
        assert_eq!(cfg.gemini.base_url, "https://api.gemini.com");
        assert_eq!(cfg.gemini.timeout, Duration::from_secs(5));
        assert_eq!(cfg.kraken.max_pages, 200);
    }

    #[test]
    fn a_partial_table_keeps_the_other_defaults_of_its_venue() {
        let cfg: VenuesConfig = toml::from_str(
            "[kraken]\nbase_url = \"http://127.0.0.1:9002\"\ntimeout = \"200ms\"\n\n[bitstamp]\nenabled = false\n",
        )
        .unwrap();
        assert_eq!(cfg.kraken.base_url, "http://127.0.0.1:9002");
        assert_eq!(cfg.kraken.timeout, Duration::from_millis(200));
        assert_eq!(cfg.kraken.min_interval, Duration::from_secs(1));
        assert_eq!(cfg.kraken.retries, 3);
        assert!(!cfg.bitstamp.enabled);
        assert_eq!(cfg.bitstamp.base_url, "https://www.bitstamp.net");
        assert_eq!(cfg.coinbase, VenueConfig::production(Venue::Coinbase));
    }

    #[test]
    fn unknown_fields_and_venues_are_rejected() {
        let err = toml::from_str::<VenuesConfig>("[kraken]\ntimeout_ms = 5\n").unwrap_err().to_string();
        assert!(err.contains("timeout_ms"), "{err}");
        let err = toml::from_str::<VenuesConfig>("[binance]\nenabled = true\n").unwrap_err().to_string();
        assert!(err.contains("binance"), "{err}");
    }

    #[test]
    fn serialised_config_reads_back_the_same() {
        let mut cfg = VenuesConfig::default();
        cfg.gemini.backoff = Duration::from_millis(1500);
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.contains("backoff = \"1s 500ms\""), "{text}");
        assert_eq!(toml::from_str::<VenuesConfig>(&text).unwrap(), cfg);
    }
}
