//! The replay venues: Coinbase, Kraken, Bitstamp and Gemini on one loopback port, each in its
//! real response shape, playing back the committed ETH-USD fixture on the wall clock, with
//! faults switched on and off per venue at run time. Tests and the devnet point every venue
//! adapter's `base_url` at it (`fixd run --venues-url http://127.0.0.1:8900`).
//!
//! ```text
//!  fixture bars ──fixd_proto::replay──▶ trades (replay time) ──ReplayClock──▶ Tape (wall time,
//!                                                          + one bust spike slot per minute)
//!                                                                   │ computed once at start
//!  GET /products/ETH-USD/trades ─┐                                  ▼
//!  GET /0/public/Trades ─────────┼─▶ answer faults ─▶ View (now, stale cut-off, busts, crashes)
//!  GET /api/v2/transactions/... ─┤   (slow, 500,        │ binary search + short walk
//!  GET /v1/trades/ethusd ────────┘    garbage)          ▼
//!                                                 venue's JSON shape
//!  PUT/DELETE /_replay/faults/{venue} ─▶ FaultMap (RwLock) ◀── --fault VENUE=SPEC at start
//! ```
//!
//! ## What is served
//! Only trades whose wall time has come: a venue never shows a trade from its future. Trade ids
//! are the replay ids (`minute·10 + j`, numeric, growing with time, so id cursors work);
//! prices and sizes are exact decimal strings. [`venue_trades`] computes exactly what a venue
//! serves, for tests that need the expected observation.
//!
//! | venue | request | answer |
//! |---|---|---|
//! | Coinbase | `GET /products/ETH-USD/trades?limit=N&after=ID` (or `before=ID`) | array, newest first; `limit` 100 by default, at most 1000; `after` gives older trades (ids below), `before` newer; headers `CB-BEFORE` (newest id) and `CB-AFTER` (oldest id) |
//! | Kraken | `GET /0/public/Trades?pair=XETHZUSD&since=NS&count=N` | `{"error":[],"result":{"XETHZUSD":[[price,volume,time,"b"/"s","l"/"m","",id],…],"last":"NS"}}`, oldest first: the first `count` (≤ 1000) trades after `since` (ns, or unix s below 10^11), or the newest without it; `time` is seconds with 3 decimals; `last` is the last row's time in ns |
//! | Bitstamp | `GET /api/v2/transactions/ethusd/?time=minute\|hour\|day` | array, newest first, of the last minute/hour (default)/day: `date` (whole seconds), `tid`, `amount`, `type` (`"0"` buy, `"1"` sell), `price`, all strings |
//! | Gemini | `GET /v1/trades/ethusd?timestamp=T&limit_trades=N` (or `since_tid=ID`) | array, newest first: the first `limit_trades` (50 by default, at most 500) trades at or after `timestamp` (ms, or s below 10^11), or with an id above `since_tid`, or the newest; `timestamp` (s), `timestampms`, `tid`, `price`, `amount`, `exchange`, `type` |
//!
//! Bitstamp reports whole seconds, so its trades' times are floored to the second (and
//! [`venue_trades`] says so too). Bad parameters get the venue's error shape.
//!
//! ## Faults ([`Fault`])
//! Each venue has a list of faults, all applied together:
//! - `flash_crash {pct, from, to}`: prices of the trades in `[from, to)` × (100 − pct)%, floored;
//! - `stale {at}`: no trade after `at` is published (default: when switched on);
//! - `http500`: HTTP 500 with the venue's error body; `garbage`: 200 with non-JSON bytes;
//! - `flood {bytes}`: 200 with a valid page of `bytes` bytes of minimal trades in the venue's
//!   shape, all in the last minute (a hostile venue, for the nodes' memory bound);
//! - `slow {ms}`: every answer waits `ms` first (several add up);
//! - `trade_bust {factor, from, to, busted_at}`: a spike trade per replay minute in `[from, to)`,
//!   at `factor` × the minute's last price and twice its volume, id `minute·10 + 7`, 6 replay
//!   seconds after the minute's last trade; shown until `busted_at`, then gone from every answer,
//!   historical ones included.
//!
//! Times are unix seconds of wall time. `slow` acts first, then `http500`, then `garbage`, then
//! `flood`.
//!
//! On the command line, `--fault VENUE=FAULT` ([`FaultSpec::parse`], [`FAULT_HELP`]):
//! `kraken=http500`, `gemini=garbage`, `bitstamp=slow:3000`, `kraken=stale`,
//! `kraken=stale:1749740400`, `coinbase=crash:30:FROM:TO`,
//! `coinbase=bust:1.5:FROM:TO:BUSTED_AT`, or a JSON fault (`gemini={"slow":{"ms":3000}}`).
//! Times are unix seconds, or `+N`: N seconds after `--wall-start`.
//!
//! ## Admin API (same port)
//! - `GET /_replay/status`: the clock, now in wall and replay time, the tape's span, the faults
//!   ([`ReplayStatus`]);
//! - `GET /_replay/faults`: every venue's faults, `{"coinbase":[…],"kraken":[…],…}` ([`FaultMap`]);
//! - `GET /_replay/faults/{venue}`: one venue's faults;
//! - `PUT /_replay/faults/{venue}` with a JSON [`Fault`]: adds it, answers the fault map; 400 for
//!   a body that is not a fault, 422 for an invalid one, 404 for an unknown venue;
//! - `DELETE /_replay/faults/{venue}`: clears the venue's faults; `DELETE /_replay/faults`
//!   clears all. Both answer the fault map.

mod faults;
mod server;
mod shapes;
mod tape;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use fixd_proto::replay::{ReplayClock, unix_seconds};
use fixd_proto::types::venue::{Trade, Venue};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use faults::{
    FAULT_HELP, FAULT_SYNTAX, Fault, FaultError, FaultMap, FaultSpec, MAX_BUST_FACTOR, MAX_FLOOD_BYTES,
    MAX_SLOW_MS, parse_venue,
};
pub use server::ReplayStatus;
pub use tape::{Tape, venue_trades};

use server::{Shared, wall_now_ms};

/// The fastest replay: one replay trade every 6 s must stay at least 1 wall ms from the next,
/// or time cursors (Kraken's `since`) could skip trades.
pub const MAX_SPEED: u32 = 6_000;

/// Why the replay venues cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayServerError {
    #[error(
        "--replay-start {value:?} is not a UTC time such as 2025-06-12T15:00:00Z (the fixture covers \
         2025-06-12T14:00:00Z to 17:59:59Z)"
    )]
    ReplayStart { value: String },
    #[error(
        "--replay-start {value:?} is outside the fixture: choose a time from 2025-06-12T14:00:00Z to 17:59:59Z"
    )]
    OutsideFixture { value: String },
    #[error("--speed {0} is out of range: use 1 (real time) to {MAX_SPEED}")]
    Speed(u32),
    #[error(transparent)]
    Fault(#[from] FaultError),
    #[error("cannot listen on {addr}: {source}; choose a free address with --listen (port 0 picks one)")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Everything the replay venues need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// How replay time maps onto wall time.
    pub clock: ReplayClock,
    /// Faults switched on at start.
    pub faults: Vec<FaultSpec>,
}

impl ReplayConfig {
    /// The config of `fixd replay-venues`: `--replay-start` must be inside the fixture, and
    /// `--wall-start` defaults to now.
    pub fn from_args(args: &ReplayArgs) -> Result<ReplayConfig, ReplayServerError> {
        let replay_start = unix_seconds(&args.replay_start)
            .map_err(|_| ReplayServerError::ReplayStart { value: args.replay_start.clone() })?;
        let bars = fixd_proto::replay::fixture_bars();
        let (first, last) = (bars.first().map_or(0, |b| b.start), bars.last().map_or(0, |b| b.start + 59));
        if !(first..=last).contains(&replay_start) {
            return Err(ReplayServerError::OutsideFixture { value: args.replay_start.clone() });
        }
        let wall_start = args.wall_start.unwrap_or_else(|| wall_now_ms() / 1000);
        let clock = ReplayClock { replay_start, wall_start, speed: args.speed };
        let faults = args
            .faults
            .iter()
            .map(|spec| FaultSpec::parse(spec, wall_start))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReplayConfig { listen: args.listen, clock, faults })
    }
}

/// `fixd replay-venues`: starts the replay venues described by the command line.
pub async fn serve(args: &ReplayArgs) -> Result<ReplayServer, ReplayServerError> {
    ReplayServer::start(ReplayConfig::from_args(args)?).await
}

/// The running replay venues. Dropping it leaves the server running until the runtime ends;
/// call [`ReplayServer::shutdown`] to stop it.
#[derive(Debug)]
pub struct ReplayServer {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl ReplayServer {
    /// Computes the tape, binds `config.listen` and serves in a background task.
    pub async fn start(config: ReplayConfig) -> Result<ReplayServer, ReplayServerError> {
        let ReplayConfig { listen, clock, faults } = config;
        if !(1..=MAX_SPEED).contains(&clock.speed) {
            return Err(ReplayServerError::Speed(clock.speed));
        }
        let shared = Arc::new(Shared {
            tape: Tape::new(clock),
            faults: RwLock::new(FaultMap::new()),
            shutdown: CancellationToken::new(),
        });
        for FaultSpec { venue, fault } in faults {
            shared.add_fault(venue, fault)?;
        }
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| ReplayServerError::Bind { addr: listen, source })?;
        let local_addr =
            listener.local_addr().map_err(|source| ReplayServerError::Bind { addr: listen, source })?;
        let router = server::router(shared.clone());
        let stop = shared.shutdown.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await;
            if let Err(e) = served {
                tracing::error!(error = %e, "replay venues stopped with an error");
            }
        });
        tracing::info!(
            %local_addr, replay_start = clock.replay_start, wall_start = clock.wall_start, speed = clock.speed,
            "replay venues listening"
        );
        Ok(ReplayServer { local_addr, shared, task })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://{local_addr}`: the base URL of all four venues.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The replay clock.
    pub fn clock(&self) -> ReplayClock {
        self.shared.tape.clock()
    }

    /// The faults now switched on.
    pub fn faults(&self) -> FaultMap {
        self.shared.faults()
    }

    /// Switches a fault on (as `PUT /_replay/faults/{venue}` does) and returns it as stored.
    pub fn add_fault(&self, venue: Venue, fault: Fault) -> Result<Fault, FaultError> {
        self.shared.add_fault(venue, fault)
    }

    /// Switches a venue's faults off, or every venue's with `None`.
    pub fn clear_faults(&self, venue: Option<Venue>) {
        self.shared.clear_faults(venue);
    }

    /// [`venue_trades`] with the server's tape and current faults.
    pub fn venue_trades(&self, venue: Venue, wall_now_ms: u64, range: (u64, u64)) -> Vec<Trade> {
        self.shared.tape.trades(venue, &self.shared.faults_of(venue), wall_now_ms, range)
    }

    /// Stops accepting connections, cuts `slow` delays short, and waits for open requests.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "replay venues task failed");
        }
    }
}

/// `fixd replay-venues`' flags.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8900")]
    pub listen: SocketAddr,
    /// Replay instant (RFC 3339, UTC) that plays at --wall-start.
    #[arg(long, default_value = "2025-06-12T15:00:00Z")]
    pub replay_start: String,
    /// Unix seconds at which --replay-start plays; default: now.
    #[arg(long)]
    pub wall_start: Option<u64>,
    /// Replay seconds per wall second (60 plays an hour of market in a minute).
    #[arg(long, default_value_t = 1)]
    pub speed: u32,
    /// A fault to start with, as VENUE=FAULT (repeatable); `--help` lists the faults.
    #[arg(long = "fault", long_help = FAULT_HELP)]
    pub faults: Vec<String>,
}
