//! The HTTP shell shared by the venue adapters: one `GET` with a timeout, a body size cap, pacing
//! between requests, retries with exponential backoff, and health counters.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fixd_proto::types::venue::Venue;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::config::{MAX_BACKOFF, VenueConfig};
use super::parse::malformed;
use super::{VenueError, VenueHealth};

/// The largest body read from a venue. A day of Bitstamp ETH-USD trades is a few MB.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What a venue answered: status, headers and the whole body.
#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A paced, retrying HTTP client for one venue.
#[derive(Debug)]
pub(crate) struct HttpClient {
    venue: Venue,
    base_url: String,
    http: reqwest::Client,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
    min_interval: Duration,
    last_request: tokio::sync::Mutex<Option<Instant>>,
    health: Arc<Mutex<VenueHealth>>,
}

impl HttpClient {
    pub(crate) fn new(venue: Venue, cfg: &VenueConfig) -> Result<Self, VenueError> {
        let base_url = cfg.base_url.trim_end_matches('/').to_owned();
        let url = reqwest::Url::parse(&base_url).map_err(|e| VenueError::Config {
            venue,
            detail: format!(
                "base_url {:?} is not a URL ({e}); use e.g. \"https://api.kraken.com\"",
                cfg.base_url
            ),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.query().is_some() {
            return Err(VenueError::Config {
                venue,
                detail: format!(
                    "base_url {:?} must be an http:// or https:// URL without a query",
                    cfg.base_url
                ),
            });
        }
        if cfg.timeout.is_zero() {
            return Err(VenueError::Config { venue, detail: "timeout must be more than 0".into() });
        }
        ensure_crypto_provider();
        let mut builder = reqwest::Client::builder()
            // Coinbase rejects requests without a User-Agent.
            .user_agent(concat!("fixd/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout);
        if is_loopback(&url) {
            // A loopback replay venue is never reached through a proxy.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| VenueError::Config {
            venue,
            detail: format!("cannot build the HTTP client: {}", error_chain(&e)),
        })?;
        Ok(HttpClient {
            venue,
            base_url,
            http,
            timeout: cfg.timeout,
            retries: cfg.retries,
            backoff: cfg.backoff,
            min_interval: cfg.min_interval,
            last_request: tokio::sync::Mutex::new(None),
            health: Arc::new(Mutex::new(VenueHealth::new(venue))),
        })
    }

    pub(crate) fn health(&self) -> &Arc<Mutex<VenueHealth>> {
        &self.health
    }

    /// `GET {base_url}{path}?{query}` and `parse` the answer, retrying retryable failures
    /// (see [`VenueError::is_retryable`]) up to `retries` times with backoff. `parse` sees
    /// every answer, 2xx or not, and decides what it means. Each attempt updates the health.
    pub(crate) async fn get<T>(
        &self,
        path: &str,
        query: &[(&'static str, String)],
        parse: impl Fn(&RawResponse) -> Result<T, VenueError>,
    ) -> Result<T, VenueError> {
        let url = format!("{}{path}", self.base_url);
        let mut attempt = 0u32;
        loop {
            self.pace().await;
            let sent = std::time::Instant::now();
            let result = match self.send(&url, query).await {
                Ok(response) => parse(&response),
                Err(e) => Err(e),
            };
            self.record(&result, sent.elapsed());
            match result {
                Ok(value) => return Ok(value),
                Err(error) => {
                    if !error.is_retryable() || attempt >= self.retries {
                        return Err(error);
                    }
                    let delay = backoff_delay(self.backoff, attempt, random_u64());
                    tracing::warn!(
                        venue = %self.venue, attempt = attempt + 1, retries = self.retries,
                        delay = ?delay, error = %error, "venue request failed; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    fn record<T>(&self, result: &Result<T, VenueError>, latency: std::time::Duration) {
        let now = unix_ms_now();
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(_) => health.record_success(now, latency_ms),
            Err(error) => health.record_error(now, latency_ms, error),
        }
    }

    /// Waits until `min_interval` has passed since the previous request to this venue.
    /// Concurrent callers queue on the lock, so the interval holds across them too.
    async fn pace(&self) {
        let mut last = self.last_request.lock().await;
        if let Some(previous) = *last {
            tokio::time::sleep_until(previous + self.min_interval).await;
        }
        *last = Some(Instant::now());
    }

    async fn send(&self, url: &str, query: &[(&'static str, String)]) -> Result<RawResponse, VenueError> {
        let shown = display_url(url, query);
        let fail = |e: reqwest::Error| self.transport_error(&shown, &e);
        let mut response = self.http.get(url).query(query).send().await.map_err(fail)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let too_large = || {
            malformed(
                self.venue,
                format!("body of {shown} is larger than {MAX_BODY_BYTES} bytes; refusing to read it"),
            )
        };
        // Sized once from Content-Length when the venue sends it, so the buffer never grows
        // by copying; a body announced larger than the cap is not read at all.
        let announced = response.content_length().map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        if announced > MAX_BODY_BYTES {
            return Err(too_large());
        }
        let mut body = Vec::with_capacity(announced);
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse { status, headers, body })
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> VenueError {
        if e.is_timeout() {
            VenueError::Timeout { venue: self.venue, url: url.to_owned(), after: self.timeout }
        } else {
            VenueError::Transport { venue: self.venue, url: url.to_owned(), detail: error_chain(e) }
        }
    }
}

/// The delay before retry number `attempt + 1`: `base × 2^attempt`, capped at
/// [`MAX_BACKOFF`], with "equal jitter" (uniform between half and all of it) drawn from
/// `random`, so that a committee retrying at once does not hit the venue in lockstep.
pub fn backoff_delay(base: Duration, attempt: u32, random: u64) -> Duration {
    let cap = u64::try_from(MAX_BACKOFF.as_nanos()).unwrap_or(u64::MAX);
    let base = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
    let full = base.saturating_mul(1u64 << attempt.min(32)).min(cap);
    let half = full / 2;
    Duration::from_nanos(half + random % (full - half + 1))
}

/// The current unix time in ms.
pub fn unix_ms_now() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn random_u64() -> u64 {
    // Jitter only; if the OS has no randomness to give, no jitter is fine.
    getrandom::u64().unwrap_or(0)
}

/// reqwest builds its TLS config when a client is built and panics if no rustls crypto
/// provider is installed (the workspace uses `rustls-no-provider`). `main` installs ring;
/// this makes the adapters work in tests and embedders that did not.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn display_url(url: &str, query: &[(&'static str, String)]) -> String {
    let pairs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if pairs.is_empty() { url.to_owned() } else { format!("{url}?{}", pairs.join("&")) }
}

/// An error and its sources on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff_delay(base, 0, 0), Duration::from_millis(50));
        assert_eq!(
            backoff_delay(base, 0, u64::MAX),
            Duration::from_nanos(50_000_000 + u64::MAX % 50_000_001)
        );
        assert_eq!(backoff_delay(base, 3, 0), Duration::from_millis(400));
        for random in [0, 1, 12_345, u64::MAX] {
            let d = backoff_delay(base, 2, random);
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400), "{d:?}");
            assert!(backoff_delay(base, 60, random) <= MAX_BACKOFF);
            assert!(backoff_delay(Duration::MAX, 0, random) <= MAX_BACKOFF);
        }
        assert_eq!(backoff_delay(Duration::ZERO, 5, 7), Duration::ZERO);
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        for bad in ["api.kraken.com", "ftp://api.kraken.com", "http://127.0.0.1:1/?x=1", ""] {
            let mut cfg = VenueConfig::production(Venue::Kraken);
            cfg.base_url = bad.into();
            let err = HttpClient::new(Venue::Kraken, &cfg).unwrap_err();
            assert!(matches!(err, VenueError::Config { venue: Venue::Kraken, .. }), "{bad}: {err}");
        }
        let mut cfg = VenueConfig::production(Venue::Kraken);
        cfg.base_url = "http://127.0.0.1:9/prefix/".into();
        assert_eq!(HttpClient::new(Venue::Kraken, &cfg).unwrap().base_url, "http://127.0.0.1:9/prefix");
    }
}
