//! The adapters over real HTTP: a small axum server on 127.0.0.1 plays back the recorded
//! responses, with paging, faults and delays.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fixd_proto::types::venue::Venue;

use super::testdata::fixture;
use super::*;

/// 2025-06-12 15:55:00 and 16:00:00 UTC, in ms.
const T_1555: u64 = 1_749_743_700_000;
const T_1600: u64 = 1_749_744_000_000;

type Params = HashMap<String, String>;

/// Serves `router` on 127.0.0.1 and returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn config(base_url: &str) -> VenueConfig {
    VenueConfig {
        enabled: true,
        base_url: base_url.to_owned(),
        timeout: Duration::from_secs(2),
        retries: 0,
        backoff: Duration::from_millis(10),
        min_interval: Duration::ZERO,
        max_pages: 20,
    }
}

fn adapter(venue: Venue, cfg: &VenueConfig) -> VenueAdapter {
    VenueAdapter::new(venue, cfg).unwrap()
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn ids(trades: &[Trade]) -> Vec<&str> {
    trades.iter().map(|t| t.id.as_str()).collect()
}

/// Records every query it is asked, and counts them.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Params>>>);

impl Log {
    fn push(&self, q: &Params) -> usize {
        let mut log = self.0.lock().unwrap();
        log.push(q.clone());
        log.len()
    }
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn get(&self, i: usize, key: &str) -> Option<String> {
        self.0.lock().unwrap()[i].get(key).cloned()
    }
}

#[tokio::test]
async fn coinbase_walks_back_with_cb_after() {
    let log = Log::default();
    let l = log.clone();
    let router = Router::new().route(
        "/products/ETH-USD/trades",
        get(move |Query(q): Query<Params>, headers: HeaderMap| async move {
            l.push(&q);
            assert!(headers[header::USER_AGENT].to_str().unwrap().starts_with("fixd/"));
            let (name, after) = match q.get("after").map(String::as_str) {
                None => ("page1.json", Some("652118406")),
                Some("652118406") => ("page2.json", Some("652118401")),
                _ => ("empty.json", None),
            };
            let mut response = json(StatusCode::OK, fixture("coinbase", name));
            if let Some(after) = after {
                response.headers_mut().insert("cb-after", after.parse().unwrap());
                response.headers_mut().insert("cb-before", "652118410".parse().unwrap());
            }
            response
        }),
    );
    let cb = adapter(Venue::Coinbase, &config(&serve(router).await));
    let trades = cb.trades_between(T_1555, T_1600 - 1).await.unwrap();
    assert_eq!(trades.len(), 10);
    assert_eq!(ids(&trades)[..3], ["652118401", "652118402", "652118403"]);
    assert!(trades.windows(2).all(|w| w[0].time_ms <= w[1].time_ms));
    assert_eq!(trades[9].time_ms, 1_749_743_999_827);
    assert_eq!(log.len(), 3);
    assert_eq!((log.get(0, "limit").as_deref(), log.get(0, "after")), (Some("1000"), None));
    assert_eq!(log.get(2, "after").as_deref(), Some("652118401"));
    let health = cb.health();
    assert_eq!((health.total_requests, health.total_errors, health.consecutive_errors), (3, 0, 0));
    assert!(health.last_success_ms.is_some());
}

#[tokio::test]
async fn coinbase_seeks_an_old_window_over_http() {
    // A synthetic tape: trade `id` at `id × 100` ms, ids 1..=100_000.
    const LAST: u64 = 100_000;
    let log = Log::default();
    let l = log.clone();
    let router = Router::new().route(
        "/products/ETH-USD/trades",
        get(move |Query(q): Query<Params>| async move {
            l.push(&q);
            let limit: u64 = q["limit"].parse().unwrap();
            let top = q.get("after").map_or(LAST + 1, |a| a.parse::<u64>().unwrap().min(LAST + 1));
            let rows: Vec<_> = (top.saturating_sub(limit).max(1)..top)
                .rev()
                .map(|id| {
                    let (s, ms) = (id / 10, id % 10 * 100);
                    let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60);
                    serde_json::json!({
                        "time": format!("1970-01-01T{h:02}:{m:02}:{sec:02}.{ms:03}000Z"),
                        "trade_id": id, "price": "2718.60", "size": "0.01", "side": "buy"
                    })
                })
                .collect();
            let oldest = rows.last().map(|r| r["trade_id"].to_string());
            let mut response = json(StatusCode::OK, serde_json::to_vec(&rows).unwrap());
            if let Some(oldest) = oldest {
                response.headers_mut().insert("cb-after", oldest.parse().unwrap());
            }
            response
        }),
    );
    let cb = adapter(Venue::Coinbase, &config(&serve(router).await));
    let trades = cb.trades_between(2_000_000, 2_050_000).await.unwrap();
    assert_eq!(trades.len(), 501);
    assert_eq!((trades[0].id.as_str(), trades[500].id.as_str()), ("20000", "20500"));
    assert!(log.len() <= 30, "{} requests", log.len());
    assert_eq!(log.get(1, "limit").as_deref(), Some("1"), "the second request is a probe");
}

#[tokio::test]
async fn kraken_walks_forward_with_last_and_paces_requests() {
    let log = Log::default();
    let l = log.clone();
    let router = Router::new().route(
        "/0/public/Trades",
        get(move |Query(q): Query<Params>| async move {
            l.push(&q);
            assert_eq!(q["pair"], "XETHZUSD");
            let name = match q["since"].as_str() {
                "1749743699999999999" => "page1.json",
                "1749743820000000000" => "page2.json",
                _ => "empty.json",
            };
            json(StatusCode::OK, fixture("kraken", name))
        }),
    );
    let mut cfg = config(&serve(router).await);
    cfg.min_interval = Duration::from_millis(60);
    let kraken = adapter(Venue::Kraken, &cfg);
    let started = Instant::now();
    let trades = kraken.trades_between(T_1555, T_1600).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(120), "3 requests, 60 ms apart");
    assert_eq!(trades.len(), 10);
    assert_eq!((trades[0].id.as_str(), trades[0].time_ms), ("86412301", 1_749_743_702_084));
    assert_eq!(trades[9].price.raw(), 2_718_600_000_000_000_000_000);
    assert_eq!(log.len(), 3);
    assert_eq!(log.get(2, "since").as_deref(), Some("1749743999827736900"));
}

#[tokio::test]
async fn gemini_walks_forward_and_drops_repeated_trades() {
    let log = Log::default();
    let l = log.clone();
    let router = Router::new().route(
        "/v1/trades/ethusd",
        get(move |Query(q): Query<Params>| async move {
            l.push(&q);
            assert_eq!(q["limit_trades"], "500");
            let name = match q["timestamp"].as_str() {
                "1749743700000" => "page1.json",
                "1749743820000" => "page2.json",
                _ => "empty.json",
            };
            json(StatusCode::OK, fixture("gemini", name))
        }),
    );
    let gemini = adapter(Venue::Gemini, &config(&serve(router).await));
    let trades = gemini.trades_between(T_1555, T_1600).await.unwrap();
    assert_eq!(trades.len(), 10, "trade 2843018205 is on both pages and kept once");
    assert_eq!(ids(&trades).iter().filter(|id| **id == "2843018205").count(), 1);
    assert_eq!(log.len(), 3);
    assert_eq!(log.get(2, "timestamp").as_deref(), Some("1749743999827"));
}

#[tokio::test]
async fn bitstamp_asks_the_span_that_covers_the_window() {
    let log = Log::default();
    let l = log.clone();
    let router = Router::new().route(
        "/api/v2/transactions/ethusd/",
        get(move |Query(q): Query<Params>| async move {
            l.push(&q);
            json(StatusCode::OK, fixture("bitstamp", "normal.json"))
        }),
    );
    let bitstamp = adapter(Venue::Bitstamp, &config(&serve(router).await));
    let now = T_1600 + 120_000;
    let trades = bitstamp.trades_between_at(now, T_1555, T_1600).await.unwrap();
    assert_eq!(trades.len(), 10);
    assert_eq!(trades[0].time_ms, 1_749_743_702_000);
    assert_eq!(log.get(0, "time").as_deref(), Some("hour"));
    bitstamp.trades_between_at(now, T_1600 - 3_600_000, T_1600).await.unwrap();
    assert_eq!(log.get(1, "time").as_deref(), Some("day"));
    // Today is long after June 2025: no request is sent for a window Bitstamp cannot serve.
    let err = bitstamp.trades_between(T_1555, T_1600).await.unwrap_err();
    assert!(matches!(err, VenueError::WindowTooOld { venue: Venue::Bitstamp, .. }), "{err}");
    assert_eq!(log.len(), 2);
}

#[tokio::test]
async fn http_500_is_retried_with_backoff_then_succeeds() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let router = Router::new().route(
        "/0/public/Trades",
        get(move || async move {
            match c.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => (StatusCode::INTERNAL_SERVER_ERROR, fixture("kraken", "malformed_html.json"))
                    .into_response(),
                _ => json(StatusCode::OK, fixture("kraken", "normal.json")),
            }
        }),
    );
    let mut cfg = config(&serve(router).await);
    cfg.retries = 3;
    cfg.backoff = Duration::from_millis(40);
    let kraken = adapter(Venue::Kraken, &cfg);
    let started = Instant::now();
    // The window ends before the page's newest trade, so one page covers it.
    let trades = kraken.trades_between(T_1555, T_1555 + 4 * 60_000).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(20 + 40), "backoff of at least 20 ms then 40 ms");
    assert_eq!(
        ids(&trades),
        ["86412301", "86412302", "86412303", "86412304", "86412305", "86412306", "86412307", "86412308"]
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let health = kraken.health();
    assert_eq!((health.total_requests, health.total_errors, health.consecutive_errors), (3, 2, 0));
    assert!(health.last_error.unwrap().starts_with("kraken: HTTP 500: <html>"));
    assert!(health.last_success_ms >= health.last_error_ms);
}

#[tokio::test]
async fn busy_and_rate_limited_answers_are_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let router = Router::new()
        .route(
            "/0/public/Trades",
            get(move || async move {
                let name =
                    if c1.fetch_add(1, Ordering::SeqCst) == 0 { "error_busy.json" } else { "normal.json" };
                json(StatusCode::OK, fixture("kraken", name))
            }),
        )
        .route(
            "/v1/trades/ethusd",
            get(move || async move {
                match c2.fetch_add(1, Ordering::SeqCst) {
                    2 => json(StatusCode::TOO_MANY_REQUESTS, fixture("gemini", "error_rate_limit.json")),
                    _ => json(StatusCode::OK, fixture("gemini", "normal.json")),
                }
            }),
        );
    let mut cfg = config(&serve(router).await);
    cfg.retries = 1;
    let kraken = adapter(Venue::Kraken, &cfg);
    assert_eq!(kraken.trades_between(T_1555, T_1555 + 60_000).await.unwrap().len(), 2);
    assert_eq!(kraken.health().total_errors, 1);
    assert!(kraken.health().last_error.unwrap().contains("EGeneral:Too many requests"));
    let gemini = adapter(Venue::Gemini, &cfg);
    assert_eq!(gemini.trades_between(T_1555, T_1555 + 60_000).await.unwrap().len(), 2);
    assert_eq!(gemini.health().total_errors, 1);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_slow_venue_times_out_after_each_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let router = Router::new().route(
        "/v1/trades/ethusd",
        get(move || async move {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(2)).await;
            json(StatusCode::OK, fixture("gemini", "normal.json"))
        }),
    );
    let mut cfg = config(&serve(router).await);
    cfg.timeout = Duration::from_millis(200);
    cfg.retries = 1;
    let gemini = adapter(Venue::Gemini, &cfg);
    let started = Instant::now();
    let err = gemini.trades_between(T_1555, T_1600).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, VenueError::Timeout { venue: Venue::Gemini, after, url }
            if *after == Duration::from_millis(200) && url.contains("/v1/trades/ethusd?timestamp=1749743700000")),
        "{err:?}"
    );
    assert!(err.to_string().contains("within 200ms"), "{err}");
    assert!(elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let health = gemini.health();
    assert_eq!((health.total_requests, health.total_errors, health.consecutive_errors), (2, 2, 2));
    assert_eq!(health.last_success_ms, None);
}

#[tokio::test]
async fn client_errors_and_malformed_bodies_are_not_retried() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let router = Router::new()
        .route(
            "/products/ETH-USD/trades",
            get(move || async move {
                c1.fetch_add(1, Ordering::SeqCst);
                json(StatusCode::NOT_FOUND, fixture("coinbase", "error.json"))
            }),
        )
        .route(
            "/v1/trades/ethusd",
            get(move || async move {
                c2.fetch_add(1, Ordering::SeqCst);
                json(StatusCode::OK, fixture("gemini", "malformed_truncated.json"))
            }),
        );
    let mut cfg = config(&serve(router).await);
    cfg.retries = 3;
    let err = adapter(Venue::Coinbase, &cfg).trades_between(T_1555, T_1600).await.unwrap_err();
    assert_eq!(err, VenueError::Http { venue: Venue::Coinbase, status: 404, message: "NotFound".into() });
    let gemini = adapter(Venue::Gemini, &cfg);
    let err = gemini.trades_between(T_1555, T_1600).await.unwrap_err();
    assert!(
        matches!(&err, VenueError::Malformed { detail, .. } if detail.starts_with("truncated JSON")),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(gemini.health().consecutive_errors, 1);
}

#[tokio::test]
async fn endless_paging_stops_at_the_page_cap() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let router = Router::new().route(
        "/products/ETH-USD/trades",
        get(move || async move {
            // Always the same trades, with a cursor that keeps moving back.
            let n = c.fetch_add(1, Ordering::SeqCst);
            let mut response = json(StatusCode::OK, fixture("coinbase", "page1.json"));
            response.headers_mut().insert("cb-after", (652_118_406 - n).to_string().parse().unwrap());
            response
        }),
    );
    let mut cfg = config(&serve(router).await);
    cfg.max_pages = 5;
    let err = adapter(Venue::Coinbase, &cfg).trades_between(T_1555, T_1600).await.unwrap_err();
    assert_eq!(
        err,
        VenueError::PageCap { venue: Venue::Coinbase, pages: 5, start_ms: T_1555, end_ms: T_1600 }
    );
    assert!(err.to_string().contains("raise venues.coinbase.max_pages"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = adapter(Venue::Kraken, &config(&base)).trades_between(T_1555, T_1600).await.unwrap_err();
    assert!(
        matches!(&err, VenueError::Transport { venue: Venue::Kraken, url, .. } if url.starts_with(&base)),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert!(err.to_string().contains("check network access"), "{err}");
}

#[tokio::test]
async fn all_venues_are_fetched_and_one_failure_spares_the_others() {
    let router = Router::new()
        .route(
            "/products/ETH-USD/trades",
            get(|| async { json(StatusCode::OK, fixture("coinbase", "normal.json")) }),
        )
        .route("/0/public/Trades", get(|| async { json(StatusCode::OK, fixture("kraken", "normal.json")) }))
        .route(
            "/api/v2/transactions/ethusd/",
            get(|| async { (StatusCode::BAD_GATEWAY, "<html>502 Bad Gateway</html>").into_response() }),
        )
        .route("/v1/trades/ethusd", get(|| async { json(StatusCode::OK, fixture("gemini", "normal.json")) }));
    let mut config = VenuesConfig::default();
    config.set_base_url(&serve(router).await);
    for venue in Venue::ALL {
        config.get_mut(venue).retries = 0;
    }
    let adapters = VenueAdapter::all(&config).unwrap();
    // A window the first page of every venue passes, so that each answers with one page.
    // Bitstamp cannot serve a 2025 window today and is skipped without a request.
    let (start, end) = (T_1555 + 60_000, T_1555 + 180_000);
    let fetches = adapters.iter().map(|a| async move { (a.venue(), a.trades_between(start, end).await) });
    let results = futures::future::join_all(fetches).await;
    let summary: Vec<_> =
        results.iter().map(|(v, r)| (*v, r.as_ref().map(Vec::len).map_err(|e| e.is_retryable()))).collect();
    assert_eq!(
        summary,
        [
            (Venue::Coinbase, Ok(3)),
            (Venue::Kraken, Ok(3)),
            (Venue::Bitstamp, Err(false)),
            (Venue::Gemini, Ok(3))
        ]
    );
    let now = unix_ms_now();
    let err = adapters[2].trades_between(now, now).await.unwrap_err();
    assert_eq!(
        err,
        VenueError::Http {
            venue: Venue::Bitstamp,
            status: 502,
            message: "<html>502 Bad Gateway</html>".into()
        }
    );
    let errors: Vec<_> = adapters.iter().map(|a| a.health().total_errors).collect();
    assert_eq!(errors, [0, 0, 1, 0]);
}

/// A venue whose every page is 100,000 trades inside the window, with a cursor that moves: the
/// fetch stops keeping them past MAX_FETCH_TRADES and fails, rather than keep paging.
#[tokio::test]
async fn a_window_past_the_fetch_cap_fails_with_too_many_trades() {
    let log = Log::default();
    let l = log.clone();
    let router = Router::new().route(
        "/0/public/Trades",
        get(move |Query(q): Query<Params>| {
            let page = l.push(&q) as u64;
            async move {
                let rows: Vec<String> = (0..MAX_PAGE_ROWS as u64)
                    .map(|i| format!(r#"["1","1",1749743701.5,"b","l","",{}]"#, page * 1_000_000 + i))
                    .collect();
                let body = format!(
                    r#"{{"error":[],"result":{{"XETHZUSD":[{}],"last":"{}"}}}}"#,
                    rows.join(","),
                    1_749_743_701_000_000_000 + page
                );
                json(StatusCode::OK, body.into_bytes())
            }
        }),
    );
    let url = serve(router).await;
    let err = adapter(Venue::Kraken, &config(&url)).trades_between(T_1555, T_1600).await.unwrap_err();
    assert_eq!(
        err,
        VenueError::TooManyTrades {
            venue: Venue::Kraken,
            limit: MAX_FETCH_TRADES,
            start_ms: T_1555,
            end_ms: T_1600
        }
    );
    assert_eq!(log.len(), MAX_FETCH_TRADES / MAX_PAGE_ROWS + 1, "it stops at the page that passes the cap");
    assert!(err.to_string().contains("more than 250000 trades"), "{err}");
    assert_eq!(LeftOut::failed(&err).reason, LeftOutReason::TooManyTrades);
}
