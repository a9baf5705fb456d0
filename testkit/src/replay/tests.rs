//! The replay venues over HTTP: shapes, paging, the clock, faults and the admin API.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fixd_proto::replay::ReplayClock;
use fixd_proto::types::venue::{Trade, Venue};
use fixd_proto::value::Wad;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::ReplayArgs;
use super::*;

/// 2025-06-12 14:00 UTC, the fixture's first bar.
const FIXTURE_START: u64 = 1_749_736_800;
const ALL: (u64, u64) = (0, u64::MAX);

fn now_s() -> u64 {
    server::wall_now_ms() / 1000
}

/// The whole fixture has played; it ended 10 minutes ago, so nothing changes during a test.
fn past_clock() -> ReplayClock {
    ReplayClock { replay_start: FIXTURE_START, wall_start: now_s() - 4 * 3600 - 600, speed: 1 }
}

/// Half an hour of the fixture has played; the rest is in the future.
fn live_clock() -> ReplayClock {
    ReplayClock { replay_start: FIXTURE_START, wall_start: now_s() - 1800, speed: 1 }
}

async fn start(clock: ReplayClock, faults: Vec<FaultSpec>) -> ReplayServer {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    ReplayServer::start(ReplayConfig { listen, clock, faults }).await.unwrap()
}

fn client() -> reqwest::Client {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<u64> {
        self.headers.get(name).map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

async fn get(server: &ReplayServer, path: &str) -> Answer {
    let response = client().get(format!("{}{path}", server.base_url())).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    Answer { status, headers, body: response.bytes().await.unwrap().to_vec() }
}

async fn put(server: &ReplayServer, venue: &str, body: &str) -> Answer {
    let url = format!("{}/_replay/faults/{venue}", server.base_url());
    let response = client().put(url).body(body.to_owned()).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    Answer { status, headers, body: response.bytes().await.unwrap().to_vec() }
}

async fn delete(server: &ReplayServer, path: &str) -> Answer {
    let response = client().delete(format!("{}{path}", server.base_url())).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    Answer { status, headers, body: response.bytes().await.unwrap().to_vec() }
}

fn wad(v: &Value) -> Wad {
    Wad::parse(v.as_str().unwrap_or_else(|| panic!("{v} is not a decimal string"))).unwrap()
}

fn int(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not an integer"))
}

fn digits(v: &Value) -> u64 {
    v.as_str().unwrap_or_else(|| panic!("{v} is not a string")).parse().unwrap()
}

/// A JSON number of seconds (`1749736800.47`) as ms, exactly from its text.
fn seconds_ms(v: &Value) -> u64 {
    assert!(v.is_number(), "{v} is not a number");
    let text = v.to_string();
    let (s, frac) = text.split_once('.').unwrap_or((&text, ""));
    assert!(frac.len() <= 3, "{text}");
    s.parse::<u64>().unwrap() * 1000 + format!("{frac:0<3}").parse::<u64>().unwrap()
}

fn rfc3339_ms(v: &Value) -> u64 {
    let text = v.as_str().unwrap();
    assert_eq!(text.len(), 27, "{text}");
    assert!(text.ends_with("000Z"), "{text}");
    let seconds = fixd_proto::replay::unix_seconds(&format!("{}Z", &text[..19])).unwrap();
    seconds * 1000 + text[20..23].parse::<u64>().unwrap()
}

fn coinbase_trades(rows: &Value) -> Vec<Trade> {
    let rows = rows.as_array().unwrap();
    rows.iter()
        .map(|r| {
            assert_eq!(r.as_object().unwrap().len(), 5, "{r}");
            assert!(matches!(r["side"].as_str(), Some("buy" | "sell")));
            Trade {
                venue: Venue::Coinbase,
                id: int(&r["trade_id"]).to_string(),
                time_ms: rfc3339_ms(&r["time"]),
                price: wad(&r["price"]),
                size: wad(&r["size"]),
            }
        })
        .collect()
}

fn kraken_trades(body: &Value) -> (Vec<Trade>, u64) {
    assert_eq!(body["error"], json!([]));
    let result = body["result"].as_object().unwrap();
    assert_eq!(result.len(), 2);
    let rows = result["XETHZUSD"].as_array().unwrap();
    let trades = rows
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            assert_eq!(r.len(), 7);
            assert!(matches!(r[3].as_str(), Some("b" | "s")));
            assert!(matches!(r[4].as_str(), Some("l" | "m")));
            assert_eq!(r[5], json!(""));
            Trade {
                venue: Venue::Kraken,
                id: int(&r[6]).to_string(),
                time_ms: seconds_ms(&r[2]),
                price: wad(&r[0]),
                size: wad(&r[1]),
            }
        })
        .collect();
    (trades, digits(&result["last"]))
}

fn bitstamp_trades(rows: &Value) -> Vec<Trade> {
    let rows = rows.as_array().unwrap();
    rows.iter()
        .map(|r| {
            assert_eq!(r.as_object().unwrap().len(), 5, "{r}");
            assert!(matches!(r["type"].as_str(), Some("0" | "1")));
            Trade {
                venue: Venue::Bitstamp,
                id: digits(&r["tid"]).to_string(),
                time_ms: digits(&r["date"]) * 1000,
                price: wad(&r["price"]),
                size: wad(&r["amount"]),
            }
        })
        .collect()
}

fn gemini_trades(rows: &Value) -> Vec<Trade> {
    let rows = rows.as_array().unwrap();
    rows.iter()
        .map(|r| {
            assert_eq!(r.as_object().unwrap().len(), 7, "{r}");
            assert_eq!(r["exchange"], json!("gemini"));
            assert!(matches!(r["type"].as_str(), Some("buy" | "sell")));
            assert_eq!(int(&r["timestamp"]), int(&r["timestampms"]) / 1000);
            Trade {
                venue: Venue::Gemini,
                id: int(&r["tid"]).to_string(),
                time_ms: int(&r["timestampms"]),
                price: wad(&r["price"]),
                size: wad(&r["amount"]),
            }
        })
        .collect()
}

fn newest_first(mut trades: Vec<Trade>) -> Vec<Trade> {
    trades.reverse();
    trades
}

fn is_newest_first(trades: &[Trade]) -> bool {
    trades.windows(2).all(|w| w[0].time_ms >= w[1].time_ms && id(&w[0]) > id(&w[1]))
}

fn id(t: &Trade) -> u64 {
    t.id.parse().unwrap()
}

#[tokio::test]
async fn coinbase_pages_back_with_after_and_forward_with_before() {
    let server = start(past_clock(), vec![]).await;
    let all = server.venue_trades(Venue::Coinbase, u64::MAX, ALL);
    assert_eq!(all.len(), 240 * 7);

    let first = get(&server, "/products/ETH-USD/trades?limit=5").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers["content-type"], "application/json");
    let page = coinbase_trades(&first.json());
    assert_eq!(page, newest_first(all[all.len() - 5..].to_vec()));
    assert_eq!(first.header("cb-before"), Some(id(&page[0])));
    assert_eq!(first.header("cb-after"), Some(id(&page[4])));

    // Walking back with the CB-AFTER cursor yields the whole tape, newest first.
    let default = coinbase_trades(&get(&server, "/products/ETH-USD/trades").await.json());
    assert_eq!(default.len(), 100);
    let mut walked = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let query = after.map_or(String::new(), |a| format!("&after={a}"));
        let answer = get(&server, &format!("/products/ETH-USD/trades?limit=1000{query}")).await;
        let page = coinbase_trades(&answer.json());
        if page.is_empty() {
            assert_eq!(answer.header("cb-after"), None);
            break;
        }
        assert!(page.len() <= 1000);
        after = answer.header("cb-after");
        walked.extend(page);
    }
    assert!(is_newest_first(&walked));
    assert_eq!(walked, newest_first(all.clone()));

    // `before` pages forward: the oldest trades above the id, still newest first.
    let pivot = id(&all[100]);
    let answer = get(&server, &format!("/products/ETH-USD/trades?limit=3&before={pivot}")).await;
    assert_eq!(coinbase_trades(&answer.json()), newest_first(all[101..104].to_vec()));
    assert_eq!(answer.header("cb-before"), Some(id(&all[103])));
    // A one-trade probe (the adapter's seek) finds the trade just below an id.
    let probe = coinbase_trades(
        &get(&server, &format!("/products/ETH-USD/trades?limit=1&after={pivot}")).await.json(),
    );
    assert_eq!(probe, vec![all[99].clone()]);

    for (path, status) in [
        ("/products/BTC-USD/trades", StatusCode::NOT_FOUND),
        ("/products/ETH-USD/trades?limit=x", StatusCode::BAD_REQUEST),
        ("/products/ETH-USD/trades?limit=0", StatusCode::BAD_REQUEST),
        ("/products/ETH-USD/trades?after=1&before=2", StatusCode::BAD_REQUEST),
    ] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, status, "{path}");
        assert!(answer.json()["message"].is_string(), "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn kraken_pages_forward_with_since_and_last() {
    let server = start(past_clock(), vec![]).await;
    let all = server.venue_trades(Venue::Kraken, u64::MAX, ALL);

    let (newest, _) = kraken_trades(&get(&server, "/0/public/Trades?pair=XETHZUSD&count=10").await.json());
    assert_eq!(newest, all[all.len() - 10..]);

    let mut walked: Vec<Trade> = Vec::new();
    let mut since = 0u64;
    loop {
        let answer = get(&server, &format!("/0/public/Trades?pair=XETHZUSD&since={since}")).await;
        assert_eq!(answer.status, StatusCode::OK);
        let (page, last) = kraken_trades(&answer.json());
        if page.is_empty() {
            assert_eq!(last, since);
            break;
        }
        assert!(page.len() <= 1000);
        assert_eq!(last, page.last().unwrap().time_ms * 1_000_000);
        since = last;
        walked.extend(page);
    }
    assert_eq!(walked, all);
    assert_eq!(walked.len(), 240 * 7);
    assert!(walked.windows(2).all(|w| w[0].time_ms < w[1].time_ms));

    // `since` in whole seconds works too, and is exclusive.
    let t = all[50].time_ms;
    let (page, _) = kraken_trades(
        &get(&server, &format!("/0/public/Trades?pair=XETHZUSD&since={}", t / 1000)).await.json(),
    );
    assert_eq!(page[0], *all.iter().find(|x| x.time_ms > t / 1000 * 1000).unwrap());
    let (page, _) = kraken_trades(
        &get(&server, &format!("/0/public/Trades?pair=ETHUSD&since={}&count=2", t * 1_000_000)).await.json(),
    );
    assert_eq!(page, all[51..53]);

    // Errors come back as HTTP 200 with a non-empty error array, as on Kraken.
    for path in
        ["/0/public/Trades?pair=XBTZUSD", "/0/public/Trades", "/0/public/Trades?pair=XETHZUSD&since=-1"]
    {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, StatusCode::OK);
        let body = answer.json();
        assert!(body["error"][0].as_str().unwrap().starts_with('E'), "{body}");
        assert!(body.get("result").is_none());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn bitstamp_serves_the_last_minute_hour_or_day() {
    let server = start(past_clock(), vec![]).await;
    let all = server.venue_trades(Venue::Bitstamp, u64::MAX, ALL);
    assert!(all.iter().all(|t| t.time_ms.is_multiple_of(1000)));

    let day = get(&server, "/api/v2/transactions/ethusd/?time=day").await;
    assert_eq!(day.status, StatusCode::OK);
    let day = bitstamp_trades(&day.json());
    assert_eq!(day, newest_first(all.clone()));
    assert!(is_newest_first(&day));

    // The fixture ended 10 minutes ago: the last hour holds its last 50 minutes.
    let now = server::wall_now_ms();
    let hour = bitstamp_trades(&get(&server, "/api/v2/transactions/ethusd/").await.json());
    let want: Vec<Trade> = all.iter().filter(|t| t.time_ms + 3_600_000 > now).cloned().collect();
    assert!((want.len() as i64 - hour.len() as i64).abs() <= 1, "{} vs {}", want.len(), hour.len());
    assert_eq!(hour[0], *all.last().unwrap());
    assert!(hour.len() > 300 && hour.len() < 360);
    let hour2 = bitstamp_trades(&get(&server, "/api/v2/transactions/ethusd?time=hour").await.json());
    assert_eq!(hour2[0], hour[0]);
    assert_eq!(get(&server, "/api/v2/transactions/ethusd/?time=minute").await.json(), json!([]));

    for (path, status) in [
        ("/api/v2/transactions/btcusd/", StatusCode::NOT_FOUND),
        ("/api/v2/transactions/ethusd/?time=week", StatusCode::BAD_REQUEST),
    ] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, status);
        let body = answer.json();
        assert_eq!(body["status"], json!("error"));
        assert!(body["reason"].is_string() && body["code"].is_string());
    }
    server.shutdown().await;
}

#[tokio::test]
async fn gemini_pages_forward_with_timestamp_and_since_tid() {
    let server = start(past_clock(), vec![]).await;
    let all = server.venue_trades(Venue::Gemini, u64::MAX, ALL);

    let recent = gemini_trades(&get(&server, "/v1/trades/ethusd").await.json());
    assert_eq!(recent, newest_first(all[all.len() - 50..].to_vec()));
    let capped = gemini_trades(&get(&server, "/v1/trades/ethusd?limit_trades=5000").await.json());
    assert_eq!(capped.len(), 500);

    // `timestamp` is inclusive: each page starts with the previous page's newest trade.
    let mut walked: Vec<Trade> = Vec::new();
    let mut timestamp = all[0].time_ms;
    loop {
        let answer = get(&server, &format!("/v1/trades/ethusd?timestamp={timestamp}&limit_trades=500")).await;
        let page = gemini_trades(&answer.json());
        assert!(is_newest_first(&page));
        let fresh: Vec<Trade> = page.into_iter().rev().filter(|t| !walked.contains(t)).collect();
        if fresh.is_empty() {
            break;
        }
        timestamp = fresh.last().unwrap().time_ms;
        walked.extend(fresh);
    }
    assert_eq!(walked, all);

    // Seconds work as well as ms; `since_tid` is exclusive.
    let t = &all[70];
    let by_seconds = gemini_trades(
        &get(&server, &format!("/v1/trades/ethusd?timestamp={}&limit_trades=1", t.time_ms / 1000))
            .await
            .json(),
    );
    assert_eq!(by_seconds[0], *all.iter().find(|x| x.time_ms >= t.time_ms / 1000 * 1000).unwrap());
    let by_tid = gemini_trades(
        &get(&server, &format!("/v1/trades/ethusd?since_tid={}&limit_trades=2", t.id)).await.json(),
    );
    assert_eq!(by_tid, newest_first(all[71..73].to_vec()));

    for path in ["/v1/trades/btcusd", "/v1/trades/ethusd?limit_trades=many"] {
        let answer = get(&server, path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        let body = answer.json();
        assert_eq!(body["result"], json!("error"));
        assert!(body["reason"].is_string() && body["message"].is_string());
    }
    let upper = get(&server, "/v1/trades/ETHUSD?limit_trades=1").await;
    assert_eq!(gemini_trades(&upper.json()).len(), 1);
    server.shutdown().await;
}

/// For each venue, the newest trade its recent endpoint shows.
async fn newest(server: &ReplayServer, venue: Venue) -> Vec<Trade> {
    match venue {
        Venue::Coinbase => coinbase_trades(&get(server, "/products/ETH-USD/trades?limit=1000").await.json()),
        Venue::Kraken => {
            newest_first(kraken_trades(&get(server, "/0/public/Trades?pair=XETHZUSD").await.json()).0)
        }
        Venue::Bitstamp => {
            bitstamp_trades(&get(server, "/api/v2/transactions/ethusd/?time=day").await.json())
        }
        Venue::Gemini => gemini_trades(&get(server, "/v1/trades/ethusd?limit_trades=500").await.json()),
    }
}

#[tokio::test]
async fn future_trades_are_never_served() {
    let server = start(live_clock(), vec![]).await;
    for venue in Venue::ALL {
        let before = server::wall_now_ms();
        let shown = newest(&server, venue).await;
        let after = server::wall_now_ms();
        let played = server.venue_trades(venue, before, ALL);
        let by_end = server.venue_trades(venue, after, ALL);
        assert!(is_newest_first(&shown), "{venue}");
        assert!(shown.len() >= played.len().min(500) && shown.len() <= by_end.len(), "{venue}");
        assert!(shown[0] == *played.last().unwrap() || by_end.contains(&shown[0]), "{venue}");
        assert!(shown.iter().all(|t| t.time_ms <= after), "{venue}: a trade from the future");
        // The rest of the fixture exists, but has not happened yet.
        assert!(server.venue_trades(venue, u64::MAX, ALL).len() > by_end.len() + 1000);
    }
    let status = get(&server, "/_replay/status").await.json();
    let status: ReplayStatus = serde_json::from_value(status).unwrap();
    assert_eq!((status.replay_start, status.speed), (FIXTURE_START, 1));
    assert!(status.replay_now_ms >= (FIXTURE_START + 1800) * 1000);
    assert!(status.replay_now_ms < (FIXTURE_START + 1900) * 1000);
    assert_eq!(status.first_trade_ms, Some(status.wall_start * 1000 + 620));
    assert_eq!(status.faults.len(), 4);
    assert!(status.faults.values().all(Vec::is_empty));
    server.shutdown().await;
}

#[tokio::test]
async fn http500_and_garbage_answer_in_every_venue_shape() {
    let server = start(past_clock(), vec![]).await;
    let paths = [
        (Venue::Coinbase, "/products/ETH-USD/trades", "message"),
        (Venue::Kraken, "/0/public/Trades?pair=XETHZUSD", "error"),
        (Venue::Bitstamp, "/api/v2/transactions/ethusd/", "reason"),
        (Venue::Gemini, "/v1/trades/ethusd", "reason"),
    ];
    for (venue, path, key) in paths {
        let answer = put(&server, venue.name(), r#""http500""#).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.json()[venue.name()], json!(["http500"]));
        let answer = get(&server, path).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR, "{venue}");
        assert!(!answer.json()[key].is_null(), "{venue}");
        // Other venues are unaffected.
        let other = paths.iter().find(|(v, _, _)| *v != venue).unwrap();
        assert_eq!(get(&server, other.1).await.status, StatusCode::OK);

        delete(&server, &format!("/_replay/faults/{venue}")).await;
        put(&server, venue.name(), r#""garbage""#).await;
        let answer = get(&server, path).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(serde_json::from_slice::<Value>(&answer.body).is_err(), "{venue}");
        let answer = delete(&server, &format!("/_replay/faults/{venue}")).await;
        assert_eq!(answer.json()[venue.name()], json!([]));
        assert_eq!(get(&server, path).await.status, StatusCode::OK);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_venue_answers_late_and_times_clients_out() {
    let server = start(past_clock(), vec![FaultSpec::parse("gemini=slow:300", 0).unwrap()]).await;
    let started = Instant::now();
    let answer = get(&server, "/v1/trades/ethusd?limit_trades=1").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(gemini_trades(&answer.json()).len(), 1);

    let impatient =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(100)).build().unwrap();
    let err = impatient.get(format!("{}/v1/trades/ethusd", server.base_url())).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");

    // Only Gemini is slow.
    let started = Instant::now();
    get(&server, "/products/ETH-USD/trades?limit=1").await;
    assert!(started.elapsed() < Duration::from_millis(300));
    server.shutdown().await;
}

#[tokio::test]
async fn a_flash_crash_cuts_the_prices_in_its_range() {
    let server = start(past_clock(), vec![]).await;
    let clean = server.venue_trades(Venue::Coinbase, u64::MAX, ALL);
    let from = clean[0].time_ms / 1000 + 600;
    let to = from + 300;
    let answer =
        put(&server, "coinbase", &format!(r#"{{"flash_crash":{{"pct":30,"from":{from},"to":{to}}}}}"#)).await;
    assert_eq!(answer.status, StatusCode::OK);

    let mut served = Vec::new();
    let mut after = String::new();
    loop {
        let answer = get(&server, &format!("/products/ETH-USD/trades?limit=1000{after}")).await;
        let page = coinbase_trades(&answer.json());
        if page.is_empty() {
            break;
        }
        after = format!("&after={}", answer.header("cb-after").unwrap());
        served.extend(page);
    }
    let served = newest_first(served);
    assert_eq!(served, server.venue_trades(Venue::Coinbase, u64::MAX, ALL));
    let mut crashed = 0;
    for (c, s) in clean.iter().zip(&served) {
        if (from * 1000..to * 1000).contains(&c.time_ms) {
            crashed += 1;
            assert_eq!(s.price.raw(), c.price.raw() * 70 / 100);
        } else {
            assert_eq!(s, c);
        }
    }
    assert_eq!(crashed, 5 * 7);
    server.shutdown().await;
}

#[tokio::test]
async fn a_stale_venue_stops_publishing() {
    let server = start(live_clock(), vec![]).await;
    let answer = put(&server, "kraken", r#"{"stale":{}}"#).await;
    let at = int(&answer.json()["kraken"][0]["stale"]["at"]);
    assert!(at * 1000 >= server::wall_now_ms() - 1000 && at * 1000 <= server::wall_now_ms() + 1000);
    let shown = newest(&server, Venue::Kraken).await;
    assert!(shown[0].time_ms <= at * 1000);

    // A stale time in the past hides what came after it, on every endpoint.
    let at = server.clock().wall_start + 600;
    delete(&server, "/_replay/faults/kraken").await;
    put(&server, "kraken", &format!(r#"{{"stale":{{"at":{at}}}}}"#)).await;
    let shown = newest(&server, Venue::Kraken).await;
    let all = server.venue_trades(Venue::Kraken, u64::MAX, ALL);
    assert_eq!(shown[0], *all.iter().rfind(|t| t.time_ms <= at * 1000).unwrap());
    let (after, _) =
        kraken_trades(&get(&server, &format!("/0/public/Trades?pair=XETHZUSD&since={at}")).await.json());
    assert_eq!(after, vec![]);
    // Other venues carry on.
    assert!(newest(&server, Venue::Coinbase).await[0].time_ms > at * 1000 + 600_000);
    server.shutdown().await;
}

#[tokio::test]
async fn busted_trades_show_until_busted_at_then_vanish_from_every_answer() {
    let server = start(past_clock(), vec![]).await;
    let clean = server.venue_trades(Venue::Gemini, u64::MAX, ALL);
    let from = clean[0].time_ms / 1000 + 600;
    let (to, busted_at) = (from + 300, now_s() + 2);
    let bust =
        format!(r#"{{"trade_bust":{{"factor":"1.5","from":{from},"to":{to},"busted_at":{busted_at}}}}}"#);
    assert_eq!(put(&server, "gemini", &bust).await.status, StatusCode::OK);

    let query = format!("/v1/trades/ethusd?timestamp={}&limit_trades=500", from * 1000);
    let live = gemini_trades(&get(&server, &query).await.json());
    let spikes: Vec<&Trade> = live.iter().filter(|t| !clean.contains(t)).collect();
    assert_eq!(spikes.len(), 5);
    for spike in &spikes {
        let last = clean.iter().find(|t| id(t) == id(spike) - 1).unwrap();
        assert_eq!(spike.price.raw(), last.price.raw() * 3 / 2);
        assert!(spike.size > last.size);
    }
    assert!(is_newest_first(&live));
    assert_eq!(
        newest_first(live.clone()),
        server.venue_trades(Venue::Gemini, server::wall_now_ms(), (from * 1000, u64::MAX))[..500]
    );

    tokio::time::sleep(Duration::from_millis(busted_at * 1000 - server::wall_now_ms() + 50)).await;
    let after = gemini_trades(&get(&server, &query).await.json());
    assert!(after.iter().all(|t| clean.contains(t)));
    assert_eq!(after.len(), 500);
    let recent = gemini_trades(&get(&server, "/v1/trades/ethusd?limit_trades=500").await.json());
    assert!(recent.iter().all(|t| clean.contains(t)));
    server.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_lists_adds_and_clears_faults() {
    let start_fault = FaultSpec::parse("bitstamp=http500", 0).unwrap();
    let server = start(past_clock(), vec![start_fault]).await;
    let listed = get(&server, "/_replay/faults").await.json();
    assert_eq!(listed, json!({"coinbase": [], "kraken": [], "bitstamp": ["http500"], "gemini": []}));
    let map: FaultMap = serde_json::from_value(listed).unwrap();
    assert_eq!(map[&Venue::Bitstamp], vec![Fault::Http500]);

    assert_eq!(put(&server, "kraken", r#"{"slow":{"ms":5}}"#).await.status, StatusCode::OK);
    let answer = put(&server, "kraken", r#""garbage""#).await;
    assert_eq!(answer.json()["kraken"], json!([{"slow": {"ms": 5}}, "garbage"]));
    assert_eq!(get(&server, "/_replay/faults/kraken").await.json(), json!([{"slow": {"ms": 5}}, "garbage"]));
    assert_eq!(server.faults()[&Venue::Kraken].len(), 2);

    for (venue, body, status, says) in [
        ("binance", r#""http500""#, StatusCode::NOT_FOUND, "unknown venue \"binance\""),
        ("kraken", "{", StatusCode::BAD_REQUEST, "the body is not a fault"),
        ("kraken", r#"{"explode":{}}"#, StatusCode::BAD_REQUEST, "unknown variant `explode`"),
        (
            "kraken",
            r#"{"flash_crash":{"pct":0,"from":1,"to":2}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "1 to 99",
        ),
        ("kraken", r#"{"slow":{"ms":0}}"#, StatusCode::UNPROCESSABLE_ENTITY, "slow delay of 0 ms"),
    ] {
        let answer = put(&server, venue, body).await;
        assert_eq!(answer.status, status, "{body}");
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(says), "{error}");
    }
    assert_eq!(server.faults()[&Venue::Kraken].len(), 2);

    let answer = delete(&server, "/_replay/faults/kraken").await;
    assert_eq!(answer.json()["kraken"], json!([]));
    assert_eq!(answer.json()["bitstamp"], json!(["http500"]));
    let answer = delete(&server, "/_replay/faults").await;
    assert_eq!(answer.json(), json!({"coinbase": [], "kraken": [], "bitstamp": [], "gemini": []}));
    assert_eq!(delete(&server, "/_replay/faults/nope").await.status, StatusCode::NOT_FOUND);

    let answer = get(&server, "/nowhere").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.json()["error"].as_str().unwrap().contains("/_replay/faults"));
    server.shutdown().await;
}

fn args(replay_start: &str, speed: u32, faults: &[&str]) -> ReplayArgs {
    ReplayArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        replay_start: replay_start.to_owned(),
        wall_start: Some(2_000_000_000),
        speed,
        faults: faults.iter().map(|f| (*f).to_owned()).collect(),
    }
}

#[tokio::test]
async fn serve_checks_the_command_line() {
    let server = serve(&args("2025-06-12T15:00:00Z", 60, &["coinbase=crash:30:+60:+120", "kraken=stale"]))
        .await
        .unwrap();
    assert!(server.local_addr().ip().is_loopback());
    let clock = server.clock();
    assert_eq!(clock, ReplayClock { replay_start: 1_749_740_400, wall_start: 2_000_000_000, speed: 60 });
    let faults = server.faults();
    assert_eq!(
        faults[&Venue::Coinbase],
        vec![Fault::FlashCrash { pct: 30, from: 2_000_000_060, to: 2_000_000_120 }]
    );
    assert!(matches!(faults[&Venue::Kraken][..], [Fault::Stale { at: Some(at) }] if at + 1 >= now_s()));
    server.shutdown().await;

    for (args, says) in [
        (args("2025-06-12 15:00", 1, &[]), "--replay-start \"2025-06-12 15:00\" is not a UTC time"),
        (args("2025-06-12T13:59:59Z", 1, &[]), "outside the fixture"),
        (args("2025-06-12T18:00:00Z", 1, &[]), "outside the fixture"),
        (args("2025-06-12T15:00:00Z", 0, &[]), "--speed 0 is out of range"),
        (args("2025-06-12T15:00:00Z", 6001, &[]), "--speed 6001 is out of range"),
        (args("2025-06-12T15:00:00Z", 1, &["kraken=boom"]), "unknown fault \"boom\""),
    ] {
        let err = serve(&args).await.unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    let taken = start(past_clock(), vec![]).await;
    let mut busy = args("2025-06-12T15:00:00Z", 1, &[]);
    busy.listen = taken.local_addr();
    let err = serve(&busy).await.unwrap_err().to_string();
    assert!(err.contains("cannot listen on") && err.contains("--listen"), "{err}");
    taken.shutdown().await;
}

fn adapter(server: &ReplayServer, venue: Venue) -> fixd_node::venues::VenueAdapter {
    let mut config = fixd_node::venues::VenueConfig::production(venue);
    config.base_url = server.base_url();
    config.min_interval = Duration::ZERO;
    config.retries = 0;
    fixd_node::venues::VenueAdapter::new(venue, &config).unwrap()
}

#[tokio::test]
async fn the_venue_adapters_read_exactly_what_venue_trades_says() {
    // An old window (a dispute review): Coinbase seeks back, Bitstamp needs `time=day`.
    let server = start(past_clock(), vec![]).await;
    let m = server.clock().wall_start + 7200;
    let (lo, hi) = ((m - 3600) * 1000 + 1, m * 1000);
    server.add_fault(Venue::Coinbase, Fault::FlashCrash { pct: 30, from: m - 1200, to: m - 900 }).unwrap();
    let factor = Wad::parse("1.02").unwrap();
    let bust = Fault::TradeBust { factor, from: m - 1800, to: m - 1500, busted_at: now_s() + 3600 };
    server.add_fault(Venue::Gemini, bust).unwrap();
    for venue in Venue::ALL {
        let got = adapter(&server, venue).trades_between(lo, hi).await.unwrap();
        let want = server.venue_trades(venue, server::wall_now_ms(), (lo, hi));
        let spikes = if venue == Venue::Gemini { 5 } else { 0 };
        assert_eq!(want.len(), 60 * 7 + spikes, "{venue}");
        assert_eq!(got, want, "{venue}");
    }
    server.shutdown().await;

    // A recent window (the observation at M + 2 min): Bitstamp's `time=hour`.
    let server = start(live_clock(), vec![]).await;
    let now = server::wall_now_ms();
    let (lo, hi) = (now - 20 * 60_000, now - 60_000);
    for venue in Venue::ALL {
        let got = adapter(&server, venue).trades_between(lo, hi).await.unwrap();
        assert_eq!(got, server.venue_trades(venue, server::wall_now_ms(), (lo, hi)), "{venue}");
        assert!(got.len() >= 19 * 7 - 1, "{venue}: {}", got.len());
    }

    // Answer faults reach the adapters as the venue's errors.
    for venue in Venue::ALL {
        server.add_fault(venue, Fault::Http500).unwrap();
        let err = adapter(&server, venue).trades_between(lo, hi).await.unwrap_err();
        assert!(matches!(err, fixd_node::venues::VenueError::Http { status: 500, .. }), "{venue}: {err}");
        assert!(err.to_string().to_ascii_lowercase().contains("internal"), "{err}");
    }
    server.shutdown().await;
}
