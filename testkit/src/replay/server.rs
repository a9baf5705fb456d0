//! The HTTP routes: the four venues' trade endpoints and the `/_replay` admin API.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use fixd_proto::replay::ReplayClock;
use fixd_proto::types::venue::Venue;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::faults::{Fault, FaultError, FaultMap, parse_venue};
use super::shapes;
use super::tape::{Tape, View};

/// Coinbase: default and largest `limit`.
const COINBASE_LIMIT: (u64, u64) = (100, 1_000);
/// Kraken: default and largest `count`.
const KRAKEN_COUNT: (u64, u64) = (1_000, 1_000);
/// Gemini: default and largest `limit_trades`.
const GEMINI_LIMIT: (u64, u64) = (50, 500);
/// Below this, a Gemini `timestamp` is seconds, else ms; a Kraken `since` is seconds, else ns.
const SECONDS_BELOW: u64 = 100_000_000_000;

/// What the routes share: the tape, the faults, and the shutdown signal (which cuts `slow`
/// delays short).
#[derive(Debug)]
pub(crate) struct Shared {
    pub tape: Tape,
    pub faults: RwLock<FaultMap>,
    pub shutdown: CancellationToken,
}

impl Shared {
    pub(crate) fn faults(&self) -> FaultMap {
        self.faults.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn faults_of(&self, venue: Venue) -> Vec<Fault> {
        let faults = self.faults.read().unwrap_or_else(PoisonError::into_inner);
        faults.get(&venue).cloned().unwrap_or_default()
    }

    /// Validates, resolves (a stale fault without a time starts now) and adds a fault.
    pub(crate) fn add_fault(&self, venue: Venue, fault: Fault) -> Result<Fault, FaultError> {
        fault.validate()?;
        let fault = fault.resolved(wall_now_ms());
        tracing::info!(%venue, fault = %serde_json::to_string(&fault).unwrap_or_default(), "replay fault on");
        let mut faults = self.faults.write().unwrap_or_else(PoisonError::into_inner);
        faults.entry(venue).or_default().push(fault.clone());
        Ok(fault)
    }

    pub(crate) fn clear_faults(&self, venue: Option<Venue>) {
        let mut faults = self.faults.write().unwrap_or_else(PoisonError::into_inner);
        match venue {
            Some(venue) => {
                faults.remove(&venue);
            }
            None => faults.clear(),
        }
        tracing::info!(venue = venue.map_or("all", Venue::name), "replay faults cleared");
    }

    /// Applies the answer faults of `venue`: waits out a `slow` delay, then answers for an
    /// `http500` or `garbage` fault. `None`: answer normally.
    async fn answer_fault(&self, venue: Venue) -> Option<Response> {
        let delay: u64 = self
            .faults_of(venue)
            .iter()
            .map(|f| if let Fault::Slow { ms } = f { *ms } else { 0 })
            .fold(0, u64::saturating_add);
        if delay > 0 {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(delay)) => {}
                () = self.shutdown.cancelled() => {
                    return Some(json(StatusCode::SERVICE_UNAVAILABLE, shapes::internal_error(venue).to_owned()));
                }
            }
        }
        let faults = self.faults_of(venue);
        if faults.contains(&Fault::Http500) {
            return Some(json(StatusCode::INTERNAL_SERVER_ERROR, shapes::internal_error(venue).to_owned()));
        }
        if faults.contains(&Fault::Garbage) {
            return Some(body(StatusCode::OK, Body::from(shapes::GARBAGE)));
        }
        if let Some(bytes) =
            faults.iter().find_map(|f| if let Fault::Flood { bytes } = f { Some(*bytes) } else { None })
        {
            let page = shapes::flood(venue, usize::try_from(bytes).unwrap_or(usize::MAX), wall_now_ms());
            return Some(body(StatusCode::OK, Body::from(page)));
        }
        None
    }
}

/// The current wall time, unix ms.
pub(crate) fn wall_now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/products/{product}/trades", get(coinbase))
        .route("/0/public/Trades", get(kraken))
        .route("/api/v2/transactions/{pair}/", get(bitstamp))
        .route("/api/v2/transactions/{pair}", get(bitstamp))
        .route("/v1/trades/{symbol}", get(gemini))
        .route("/_replay/status", get(status))
        .route("/_replay/faults", get(list_faults).delete(clear_all_faults))
        .route("/_replay/faults/{venue}", get(venue_faults).put(put_fault).delete(delete_faults))
        .fallback(not_found)
        .with_state(shared)
}

type Params = Query<BTreeMap<String, String>>;

fn body(status: StatusCode, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn json(status: StatusCode, text: String) -> Response {
    body(status, Body::from(text))
}

fn to_json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    json(status, serde_json::to_string(value).expect("admin answers serialise"))
}

/// A whole-number query parameter: absent, or digits that fit a `u64`.
fn number(params: &BTreeMap<String, String>, key: &str) -> Result<Option<u64>, String> {
    match params.get(key) {
        None => Ok(None),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse().map(Some).map_err(|_| format!("{key} {v:?} is too large"))
        }
        Some(v) => Err(format!("{key} {v:?} is not a whole number")),
    }
}

/// A page size: the default when absent, capped at the venue's maximum, at least 1.
fn page_size(
    params: &BTreeMap<String, String>,
    key: &str,
    (default, max): (u64, u64),
) -> Result<usize, String> {
    let n = number(params, key)?.unwrap_or(default);
    if n == 0 {
        return Err(format!("{key} must be at least 1"));
    }
    Ok(usize::try_from(n.min(max)).unwrap_or(usize::MAX))
}

/// `GET /products/ETH-USD/trades?limit=N&after=ID|before=ID`: newest first. `after` pages to
/// older trades (ids below it), `before` to newer ones (ids above it). `CB-BEFORE` holds the
/// page's newest id and `CB-AFTER` its oldest.
async fn coinbase(State(s): State<Arc<Shared>>, Path(product): Path<String>, Query(q): Params) -> Response {
    const VENUE: Venue = Venue::Coinbase;
    if let Some(answer) = s.answer_fault(VENUE).await {
        return answer;
    }
    let error = |status, message: &str| to_json(status, &serde_json::json!({ "message": message }));
    if product != "ETH-USD" {
        return error(StatusCode::NOT_FOUND, "NotFound");
    }
    let parsed = (page_size(&q, "limit", COINBASE_LIMIT), number(&q, "after"), number(&q, "before"));
    let (limit, after, before) = match parsed {
        (Ok(limit), Ok(after), Ok(before)) => (limit, after, before),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let faults = s.faults_of(VENUE);
    let view = s.tape.view(VENUE, &faults, wall_now_ms());
    let rows = match (after, before) {
        (Some(_), Some(_)) => return error(StatusCode::BAD_REQUEST, "use either before or after, not both"),
        (Some(after), None) => view.backward(0, view.first_id_at_or_above(after), limit),
        (None, Some(before)) => {
            let mut rows = view.forward(view.first_id_above(before), view.len(), limit);
            rows.reverse();
            rows
        }
        (None, None) => view.backward(0, view.len(), limit),
    };
    let mut response = json(StatusCode::OK, shapes::coinbase(&rows));
    if let (Some(newest), Some(oldest)) = (rows.first(), rows.last()) {
        let headers = response.headers_mut();
        headers.insert("cb-before", HeaderValue::from(newest.id));
        headers.insert("cb-after", HeaderValue::from(oldest.id));
    }
    response
}

/// `GET /0/public/Trades?pair=XETHZUSD&since=NS&count=N`: oldest first. With `since` (ns, or
/// unix seconds below 10^11), the first `count` trades after it; without, the newest `count`.
/// `last` is the ns time of the last trade returned (or `since` when none is).
async fn kraken(State(s): State<Arc<Shared>>, Query(q): Params) -> Response {
    const VENUE: Venue = Venue::Kraken;
    if let Some(answer) = s.answer_fault(VENUE).await {
        return answer;
    }
    // Kraken reports request errors with HTTP 200 and a non-empty `error` array.
    let error = |message: String| to_json(StatusCode::OK, &serde_json::json!({ "error": [message] }));
    let pair = q.get("pair").map(|p| p.to_ascii_uppercase());
    if !matches!(pair.as_deref(), Some("XETHZUSD" | "ETHUSD" | "ETH/USD" | "XETHUSD")) {
        return error("EQuery:Unknown asset pair".to_owned());
    }
    let (since, count) = match (number(&q, "since"), page_size(&q, "count", KRAKEN_COUNT)) {
        (Ok(since), Ok(count)) => (since, count),
        (Err(e), _) | (_, Err(e)) => return error(format!("EGeneral:Invalid arguments:{e}")),
    };
    let since_ns =
        since.map(|s| if s < SECONDS_BELOW { u128::from(s) * 1_000_000_000 } else { u128::from(s) });
    let faults = s.faults_of(VENUE);
    let view = s.tape.view(VENUE, &faults, wall_now_ms());
    let rows = match since_ns {
        Some(ns) => {
            let after_ms = u64::try_from(ns / 1_000_000).unwrap_or(u64::MAX);
            view.forward(view.first_after(after_ms), view.len(), count)
        }
        None => {
            let mut rows = view.backward(0, view.len(), count);
            rows.reverse();
            rows
        }
    };
    let last_ns = rows.last().map(|r| u128::from(r.time_ms) * 1_000_000).or(since_ns).unwrap_or(0);
    json(StatusCode::OK, shapes::kraken(&rows, last_ns))
}

/// `GET /api/v2/transactions/ethusd/?time=minute|hour|day`: the trades of the last minute,
/// hour (the default) or day before now, newest first.
async fn bitstamp(State(s): State<Arc<Shared>>, Path(pair): Path<String>, Query(q): Params) -> Response {
    const VENUE: Venue = Venue::Bitstamp;
    if let Some(answer) = s.answer_fault(VENUE).await {
        return answer;
    }
    let error = |status, reason: &str, code: &str| {
        to_json(status, &serde_json::json!({ "status": "error", "reason": reason, "code": code }))
    };
    if pair != "ethusd" {
        return error(StatusCode::NOT_FOUND, "Invalid currency pair.", "API0005");
    }
    let span_ms = match q.get("time").map(String::as_str) {
        Some("minute") => 60_000,
        None | Some("hour") => 3_600_000,
        Some("day") => 86_400_000,
        Some(_) => {
            return error(StatusCode::BAD_REQUEST, "Invalid time: use minute, hour or day.", "API0006");
        }
    };
    let now = wall_now_ms();
    let faults = s.faults_of(VENUE);
    let view = s.tape.view(VENUE, &faults, now);
    let rows = view.backward(view.first_after(now.saturating_sub(span_ms)), view.len(), usize::MAX);
    json(StatusCode::OK, shapes::bitstamp(&rows))
}

/// `GET /v1/trades/ethusd?timestamp=T&since_tid=ID&limit_trades=N`: newest first. With
/// `since_tid`, the first `limit_trades` trades with a larger id; else with `timestamp` (ms,
/// or seconds below 10^11), the first `limit_trades` trades at or after it; else the newest.
async fn gemini(State(s): State<Arc<Shared>>, Path(symbol): Path<String>, Query(q): Params) -> Response {
    const VENUE: Venue = Venue::Gemini;
    if let Some(answer) = s.answer_fault(VENUE).await {
        return answer;
    }
    let error = |reason: &str, message: String| {
        let body = serde_json::json!({ "result": "error", "reason": reason, "message": message });
        to_json(StatusCode::BAD_REQUEST, &body)
    };
    if !symbol.eq_ignore_ascii_case("ethusd") {
        return error("InvalidSymbol", format!("Supplied value '{symbol}' is not a valid symbol"));
    }
    let parsed =
        (number(&q, "timestamp"), number(&q, "since_tid"), page_size(&q, "limit_trades", GEMINI_LIMIT));
    let (timestamp, since_tid, limit) = match parsed {
        (Ok(t), Ok(id), Ok(limit)) => (t, id, limit),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return error("InvalidParameter", e),
    };
    let faults = s.faults_of(VENUE);
    let view = s.tape.view(VENUE, &faults, wall_now_ms());
    let oldest_first = |view: &View<'_>, start| {
        let mut rows = view.forward(start, view.len(), limit);
        rows.reverse();
        rows
    };
    let rows = match (since_tid, timestamp) {
        (Some(id), _) => oldest_first(&view, view.first_id_above(id)),
        (None, Some(t)) => {
            let ms = if t < SECONDS_BELOW { t.saturating_mul(1000) } else { t };
            oldest_first(&view, view.first_at_or_after(ms))
        }
        (None, None) => view.backward(0, view.len(), limit),
    };
    json(StatusCode::OK, shapes::gemini(&rows))
}

/// The replay clock and what it has played, as `GET /_replay/status` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayStatus {
    /// Replay instant (unix s) that plays at `wall_start`.
    pub replay_start: u64,
    /// Wall instant (unix s) at which `replay_start` plays.
    pub wall_start: u64,
    /// Replay seconds per wall second.
    pub speed: u32,
    /// The server's wall clock, unix ms.
    pub wall_now_ms: u64,
    /// The latest replay instant played by now, unix ms.
    pub replay_now_ms: u64,
    /// Wall times (unix ms) of the first and last trade of the tape; `null` if nothing plays.
    pub first_trade_ms: Option<u64>,
    pub last_trade_ms: Option<u64>,
    /// The faults now switched on, per venue (every venue listed).
    pub faults: FaultMap,
}

impl ReplayStatus {
    pub(crate) fn new(clock: ReplayClock, span: Option<(u64, u64)>, faults: FaultMap, now_ms: u64) -> Self {
        ReplayStatus {
            replay_start: clock.replay_start,
            wall_start: clock.wall_start,
            speed: clock.speed,
            wall_now_ms: now_ms,
            replay_now_ms: clock.to_replay_ms(now_ms),
            first_trade_ms: span.map(|(first, _)| first),
            last_trade_ms: span.map(|(_, last)| last),
            faults,
        }
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    let status = ReplayStatus::new(s.tape.clock(), s.tape.span_ms(), all_faults(&s), wall_now_ms());
    to_json(StatusCode::OK, &status)
}

fn admin_error(status: StatusCode, message: String) -> Response {
    to_json(status, &serde_json::json!({ "error": message }))
}

fn all_faults(s: &Shared) -> FaultMap {
    let mut map = s.faults();
    for venue in Venue::ALL {
        map.entry(venue).or_default();
    }
    map
}

async fn list_faults(State(s): State<Arc<Shared>>) -> Response {
    to_json(StatusCode::OK, &all_faults(&s))
}

async fn venue_faults(State(s): State<Arc<Shared>>, Path(venue): Path<String>) -> Response {
    match parse_venue(&venue) {
        Ok(venue) => to_json(StatusCode::OK, &s.faults_of(venue)),
        Err(e) => admin_error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

async fn put_fault(State(s): State<Arc<Shared>>, Path(venue): Path<String>, bytes: Bytes) -> Response {
    let venue = match parse_venue(&venue) {
        Ok(venue) => venue,
        Err(e) => return admin_error(StatusCode::NOT_FOUND, e.to_string()),
    };
    let fault: Fault = match serde_json::from_slice(&bytes) {
        Ok(fault) => fault,
        Err(e) => {
            let hint = r#"e.g. "http500", "garbage", {"slow":{"ms":3000}}, {"stale":{}}, {"flash_crash":{"pct":30,"from":S,"to":S}}, {"trade_bust":{"factor":"1.5","from":S,"to":S,"busted_at":S}}"#;
            return admin_error(StatusCode::BAD_REQUEST, format!("the body is not a fault ({e}); {hint}"));
        }
    };
    match s.add_fault(venue, fault) {
        Ok(_) => to_json(StatusCode::OK, &all_faults(&s)),
        Err(e) => admin_error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    }
}

async fn delete_faults(State(s): State<Arc<Shared>>, Path(venue): Path<String>) -> Response {
    match parse_venue(&venue) {
        Ok(venue) => {
            s.clear_faults(Some(venue));
            to_json(StatusCode::OK, &all_faults(&s))
        }
        Err(e) => admin_error(StatusCode::NOT_FOUND, e.to_string()),
    }
}

async fn clear_all_faults(State(s): State<Arc<Shared>>) -> Response {
    s.clear_faults(None);
    to_json(StatusCode::OK, &all_faults(&s))
}

async fn not_found() -> Response {
    let routes = "GET /products/ETH-USD/trades, /0/public/Trades?pair=XETHZUSD, /api/v2/transactions/ethusd/, \
                  /v1/trades/ethusd, /_replay/status, /_replay/faults; PUT|DELETE /_replay/faults/{venue}";
    admin_error(StatusCode::NOT_FOUND, format!("no such route; the replay venues serve {routes}"))
}
