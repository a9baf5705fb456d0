//! The API over real HTTP on loopback, with a sled store in a temporary directory: every route,
//! and every kind of bad input answered 4xx with a JSON error while the node goes on serving.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::Address;
use fixd_proto::types::genesis::{Genesis, ProtocolParams};
use serde_json::{Value, json};

use super::{AdminPolicy, ApiState, NodeInfo, router};
use crate::events::EventBus;
use crate::keys::Keys;
use crate::store::{SledStore, Store};

struct Api {
    url: String,
    client: reqwest::Client,
    /// The node's store, which the settlement service would write.
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

/// The admin policy of a loopback bind: with `token`, or open to local callers without one.
fn admin(token: Option<&str>) -> AdminPolicy {
    AdminPolicy {
        token: token.map(String::from),
        loopback_without_token: token.is_none(),
        hosts: vec![],
        max_scheduled: 10_000,
    }
}

async fn serve(admin: AdminPolicy) -> Api {
    serve_with(admin, 64, Duration::from_secs(5)).await
}

/// A node's API with `requests` concurrent requests at most and a header-read timeout.
async fn serve_with(admin: AdminPolicy, requests: usize, header_read_timeout: Duration) -> Api {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path()).unwrap());
    let keys = Keys::generate().unwrap();
    let genesis = Genesis {
        network: "api-test".into(),
        chain_id: 31337,
        contract: Address::ZERO,
        contract_block: 0,
        arbitrator: Address::ZERO,
        members: vec![keys.member("node-0", vec![])],
        params: ProtocolParams::default(),
    };
    let node = NodeInfo {
        name: "node-0".into(),
        member_index: 0,
        network_id: genesis.network_id(),
        public_key: keys.public_key(),
        version: "test",
    };
    let state = ApiState {
        store: store.clone(),
        node: Arc::new(node),
        venues: vec![],
        events: EventBus::default(),
        admin,
        network: None,
        chain: None,
        metrics: crate::metrics::Metrics::new().0,
        disputes: None,
        event_streams: Arc::new(tokio::sync::Semaphore::new(2)),
        requests: Arc::new(tokio::sync::Semaphore::new(requests)),
        member_peers: ApiState::member_peers(&genesis),
        views: Default::default(),
        status_head: Default::default(),
        genesis: Arc::new(genesis),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = router(state, 4096, Duration::from_secs(5));
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(async move { super::serve(listener, app, header_read_timeout, stop).await.unwrap() });
    Api { url, client: reqwest::Client::new(), store, _dir: dir }
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(format!("{}{path}", self.url)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The node still answers after whatever came before.
    async fn still_serving(&self) {
        assert_eq!(self.get("/v1/health").await.0, 200);
    }
}

fn is_error(body: &Value, code: &str) -> bool {
    body["error"] == code && body["message"].as_str().is_some_and(|m| !m.is_empty())
}

fn short_params() -> Value {
    json!({ "window_secs": 60, "partitions": 12, "grace_secs": 5, "min_venues": 3, "min_partitions": 9,
            "max_venue_deviation_bp": 500 })
}

#[tokio::test]
async fn scheduling_listing_filtering_and_showing() {
    let api = serve(admin(None)).await;
    let (status, created) = api
        .post(
            "/v1/settlements",
            json!({ "maturity": 4_000_000_000u64, "params": short_params() }).to_string(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "scheduled");
    assert_eq!(created["observe_at"], 4_000_000_005u64);
    let id = created["id"].as_str().unwrap().to_owned();
    let (again, _) = api
        .post(
            "/v1/settlements",
            json!({ "maturity": 4_000_000_000u64, "params": short_params() }).to_string(),
            None,
        )
        .await;
    assert_eq!(again, 200, "scheduling twice is a no-op");
    api.post("/v1/settlements", json!({ "maturity": 3_000_000_000u64 }).to_string(), None).await;

    let (status, all) = api.get("/v1/settlements").await;
    assert_eq!(status, 200);
    assert_eq!(all["settlements"].as_array().unwrap().len(), 2);
    assert_eq!(all["settlements"][0]["maturity"], 3_000_000_000u64, "listed by maturity");
    assert_eq!(all["next_cursor"], Value::Null, "one page holds both");
    let (_, scheduled) = api.get("/v1/settlements?status=scheduled").await;
    assert_eq!(scheduled["settlements"].as_array().unwrap().len(), 2);
    let (_, observed) = api.get("/v1/settlements?status=observed").await;
    assert_eq!(observed, json!({ "settlements": [], "next_cursor": null }));
    let (status, one) = api.get(&format!("/v1/settlements/{id}")).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())));
    let (status, health) = api.get("/v1/health").await;
    assert_eq!((status, &health["node"]["name"]), (200, &json!("node-0")));
    let (status, info) = api.get("/v1/status").await;
    assert_eq!((status, &info["committee"]["q"]), (200, &json!(1)));
    let keys: Vec<&str> = info.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["chain", "chain_id", "committee", "contract", "network", "node", "now", "peers", "venues"]
    );
    assert!(info["now"].as_u64().unwrap() >= 1_700_000_000 && info["peers"] == json!([]), "{info}");
    assert_eq!(api.get("/v1/status").await.1["committee"], info["committee"], "the kept head, read again");
    let (status, doc) = api.get("/v1/openapi.json").await;
    assert_eq!((status, &doc["openapi"]), (200, &json!("3.1.0")));
}

/// A view is kept between reads, and a write for its settlement shows in the next read, within
/// the same second.
#[tokio::test]
async fn a_kept_view_shows_the_next_write_at_once() {
    let api = serve(admin(None)).await;
    let (status, created) =
        api.post("/v1/settlements", json!({ "maturity": 4_000_000_000u64 }).to_string(), None).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/settlements/{id}");
    let (_, first) = api.get(&path).await;
    assert_eq!(api.get(&path).await.1, first, "read twice, the same view");
    assert_eq!(first["observations"], json!([]));
    let spec = api.store.settlement(&super::parse_id(&id).unwrap()).unwrap().unwrap();
    for signer in 1..=3 {
        api.store.put_observation(&crate::store::suite::observation(&spec, signer)).unwrap();
        let (_, after) = api.get(&path).await;
        let held = after["observations"].as_array().unwrap().len();
        assert_eq!(held, usize::from(signer), "the observation written just before shows: {after}");
    }
}

#[tokio::test]
async fn bad_input_is_a_json_4xx_and_nothing_is_lost() {
    let api = serve(admin(None)).await;
    let (status, created) =
        api.post("/v1/settlements", json!({ "maturity": 4_000_000_000u64 }).to_string(), None).await;
    assert_eq!(status, 201);

    for (path, status, code) in [
        ("/v1/settlements/0x1234", 400, "bad_settlement_id"),
        ("/v1/settlements/not-hex", 400, "bad_settlement_id"),
        (
            "/v1/settlements/0xzz00000000000000000000000000000000000000000000000000000000000000",
            400,
            "bad_settlement_id",
        ),
        (
            "/v1/settlements/0x0000000000000000000000000000000000000000000000000000000000000000",
            404,
            "unknown_settlement",
        ),
        ("/v1/settlements?status=finished", 400, "bad_status"),
        ("/v1/settlements?limit=1001", 400, "bad_limit"),
        ("/v1/settlements?limit=0", 400, "bad_limit"),
        ("/v1/settlements?cursor=0x12", 400, "bad_cursor"),
        ("/v1/nowhere", 404, "no_such_route"),
    ] {
        let (got, body) = api.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(is_error(&body, code), "{path}: {body}");
    }
    for (body, status, code) in [
        ("{not json".to_owned(), 400, "bad_json"),
        (json!({ "maturity": "soon" }).to_string(), 422, "bad_json"),
        (json!({ "maturity": 1, "extra": true }).to_string(), 422, "bad_json"),
        (json!({ "maturity": 1, "params": { "partitions": 0 } }).to_string(), 422, "bad_json"),
        (json!({ "maturity": 1, "params": { "window_secs": 61, "partitions": 12, "grace_secs": 5, "min_venues": 3,
                 "min_partitions": 9, "max_venue_deviation_bp": 500 } }).to_string(), 422, "bad_params"),
        ("x".repeat(10_000), 413, "body_too_large"),
    ] {
        let (got, reply) = api.post("/v1/settlements", body.clone(), None).await;
        assert_eq!(got, status, "{}: {reply}", &body[..body.len().min(60)]);
        assert!(is_error(&reply, code), "{reply}");
    }
    let r = api.client.delete(format!("{}/v1/settlements", api.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert!(is_error(&r.json().await.unwrap(), "method_not_allowed"));
    let r = api.client.post(format!("{}/v1/settlements", api.url)).body("{}").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 415, "a body without a JSON content type");

    api.still_serving().await;
    let (_, all) = api.get("/v1/settlements").await;
    let all = &all["settlements"];
    assert_eq!(all.as_array().unwrap().len(), 1, "nothing stored was lost and nothing bad was stored");
    assert_eq!(all[0]["id"], created["id"]);
}

#[tokio::test]
async fn admin_routes_need_the_token_a_loopback_host_and_room_to_schedule() {
    let api = serve(admin(Some("s3cret"))).await;
    let body = |maturity: u64| json!({ "maturity": maturity }).to_string();
    let (status, reply) = api.post("/v1/settlements", body(4_000_000_000), None).await;
    assert_eq!(status, 401);
    assert!(is_error(&reply, "admin_token"));
    let (status, _) = api.post("/v1/settlements", body(4_000_000_000), Some("wrong")).await;
    assert_eq!(status, 401);
    let (status, _) = api.post("/v1/settlements", body(4_000_000_000), Some("s3cre")).await;
    assert_eq!(status, 401, "a prefix of the token is not the token");
    // A forged Host (DNS rebinding, a confused proxy) is refused, token or not.
    let forged = |token: Option<&'static str>| {
        let mut r = api
            .client
            .post(format!("{}/v1/settlements", api.url))
            .header("host", "attacker.example:8080")
            .header("content-type", "application/json")
            .body(body(4_000_000_000));
        if let Some(token) = token {
            r = r.bearer_auth(token);
        }
        r.send()
    };
    for token in [None, Some("s3cret")] {
        let r = forged(token).await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
        assert!(is_error(&r.json().await.unwrap(), "host_not_allowed"));
    }
    let (status, _) = api.post("/v1/settlements", body(4_000_000_000), Some("s3cret")).await;
    assert_eq!(status, 201);

    // Without a token, a loopback bind admits local callers only when told to.
    let closed = serve(AdminPolicy { loopback_without_token: false, ..admin(None) }).await;
    let (status, reply) = closed.post("/v1/settlements", body(4_000_000_000), None).await;
    assert_eq!(status, 401);
    assert!(reply["message"].as_str().unwrap().contains("admin_loopback_without_token"), "{reply}");
    let public: crate::config::ApiConfig =
        toml::from_str("listen = \"0.0.0.0:80\"\nadmin_loopback_without_token = true").unwrap();
    assert!(!AdminPolicy::new(&public).loopback_without_token, "never on a public bind");
    let local: crate::config::ApiConfig =
        toml::from_str("listen = \"127.0.0.1:80\"\nadmin_loopback_without_token = true").unwrap();
    assert!(AdminPolicy::new(&local).loopback_without_token);
    assert!(
        !format!(
            "{:?}",
            AdminPolicy::new(&crate::config::ApiConfig { admin_token: Some("s3cret".into()), ..local })
        )
        .contains("s3cret")
    );

    // Scheduling stops at max_scheduled settlements not yet matured.
    let bounded = serve(AdminPolicy { max_scheduled: 2, ..admin(None) }).await;
    for k in 0..2 {
        assert_eq!(bounded.post("/v1/settlements", body(4_000_000_000 + k), None).await.0, 201);
    }
    let (status, reply) = bounded.post("/v1/settlements", body(4_000_000_100), None).await;
    assert_eq!(status, 429);
    assert!(is_error(&reply, "too_many_scheduled"));
    assert_eq!(
        bounded.post("/v1/settlements", body(4_000_000_001), None).await.0,
        200,
        "a known one is fine"
    );
}

#[tokio::test]
async fn the_event_stream_carries_state_changes() {
    use futures::StreamExt;
    let api = serve(admin(None)).await;
    let response = api.client.get(format!("{}/v1/events", api.url)).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    api.post("/v1/settlements", json!({ "maturity": 4_000_000_000u64 }).to_string(), None).await;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk =
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: scheduled"), "{text}");
    let data: Value =
        serde_json::from_str(text.split("data: ").nth(1).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(data["detail"]["maturity"], 4_000_000_000u64);
}

/// Every 4xx is JSON, the ones the extractors and the timeout layer make too: a repeated query
/// parameter, a path that is not UTF-8, an empty 408.
#[tokio::test]
async fn rejections_of_the_extractors_and_the_timeout_are_json() {
    let api = serve(admin(None)).await;
    for path in
        ["/v1/settlements?status=final&status=published", "/v1/settlements/%ff", "/v1/settlements?status"]
    {
        let r = api.client.get(format!("{}{path}", api.url)).send().await.unwrap();
        let status = r.status().as_u16();
        let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!((400..500).contains(&status), "{path}: {status}");
        assert!(kind.starts_with("application/json"), "{path}: {kind}");
        assert!(body["error"].is_string() && body["message"].is_string(), "{path}: {body}");
    }
    let empty = axum::response::IntoResponse::into_response(axum::http::StatusCode::REQUEST_TIMEOUT);
    let answered = super::error::json_errors(empty).await;
    assert_eq!(answered.status(), 408);
    let bytes = axum::body::to_bytes(answered.into_body(), 4096).await.unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"], "timeout", "{body}");
    api.still_serving().await;
}

/// At most `api.max_event_streams` event streams (2 here): the next is refused with a JSON 503
/// and `Retry-After`, and a stream that closes frees its place.
#[tokio::test]
async fn event_streams_are_bounded_and_a_closed_one_frees_its_place() {
    let api = serve(admin(None)).await;
    let open = || api.client.get(format!("{}/v1/events", api.url)).send();
    let first = open().await.unwrap();
    let second = open().await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open().await.unwrap();
    assert_eq!(third.status().as_u16(), 503);
    assert_eq!(third.headers().get("retry-after").unwrap(), "10");
    assert!(is_error(&third.json().await.unwrap(), "too_many_streams"));
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let again = open().await.unwrap();
        if again.status().as_u16() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a closed stream never freed its place");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);
    api.still_serving().await;
}

/// Pages follow each other by cursor in (maturity, id) order, none served twice, a settlement
/// scheduled meanwhile shifts no page, and the last page says so with a null `next_cursor`.
#[tokio::test]
async fn lists_are_paged_by_cursor() {
    let api = serve(admin(None)).await;
    for k in [5u64, 1, 4, 2, 3, 6, 7] {
        let body = json!({ "maturity": 4_000_000_000u64 + k }).to_string();
        assert_eq!(api.post("/v1/settlements", body, None).await.0, 201);
    }
    let (status, first) = api.get("/v1/settlements?limit=3").await;
    assert_eq!(status, 200, "{first}");
    let maturities = |page: &Value| -> Vec<u64> {
        page["settlements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["maturity"].as_u64().unwrap() - 4_000_000_000)
            .collect()
    };
    assert_eq!(maturities(&first), vec![1, 2, 3]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    // Scheduled before the cursor: never shows up later, nor shifts the next page.
    api.post("/v1/settlements", json!({ "maturity": 4_000_000_000u64 }).to_string(), None).await;
    let (_, second) = api.get(&format!("/v1/settlements?limit=3&cursor={cursor}")).await;
    assert_eq!(maturities(&second), vec![4, 5, 6]);
    let cursor = second["next_cursor"].as_str().unwrap().to_owned();
    let (_, last) = api.get(&format!("/v1/settlements?limit=3&cursor={cursor}")).await;
    assert_eq!(maturities(&last), vec![7]);
    assert_eq!(last["next_cursor"], Value::Null);
    // A full last page ends with null too (no empty page after it).
    let (_, exact) = api.get(&format!("/v1/settlements?limit=1&cursor={cursor}")).await;
    assert_eq!((maturities(&exact), &exact["next_cursor"]), (vec![7], &Value::Null));
    // A filter pages the same way.
    let (_, filtered) = api.get("/v1/settlements?status=scheduled&limit=4").await;
    assert_eq!(maturities(&filtered), vec![0, 1, 2, 3]);
    assert!(filtered["next_cursor"].is_string());
    // The dispute list of a settlement takes the same parameters.
    let id = first["settlements"][0]["id"].as_str().unwrap();
    let (status, disputes) = api.get(&format!("/v1/settlements/{id}/disputes?limit=10")).await;
    assert_eq!(status, 200, "{disputes}");
    assert_eq!((&disputes["disputes"], &disputes["next_cursor"]), (&json!([]), &Value::Null));
    let (status, bad) = api.get(&format!("/v1/settlements/{id}/disputes?limit=5000")).await;
    assert_eq!(status, 400);
    assert!(is_error(&bad, "bad_limit"), "{bad}");
}

/// Past `api.max_concurrent_requests` a request is refused at once with a JSON 503 and
/// `Retry-After`; open event streams do not count once started.
#[tokio::test]
async fn requests_past_the_concurrency_limit_are_shed_with_a_json_503() {
    let api = serve_with(admin(None), 1, Duration::from_secs(5)).await;
    // An open event stream holds no request permit.
    let stream = api.client.get(format!("{}/v1/events", api.url)).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    api.still_serving().await;
    // A request that never finishes its body holds the only permit.
    let (sender, body) = futures::channel::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let slow = api
        .client
        .post(format!("{}/v1/settlements", api.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let slow = tokio::spawn(slow);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let r = api.client.get(format!("{}/v1/health", api.url)).send().await.unwrap();
        if r.status().as_u16() == 503 {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "the limit never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.headers().get("retry-after").unwrap(), "1");
    assert!(is_error(&refused.json().await.unwrap(), "overloaded"));
    drop(sender);
    let _ = slow.await;
    api.still_serving().await;
    drop(stream);
}

/// A client that sends its headers a byte at a time loses its connection after
/// `api.header_read_timeout`, and so does one that sends nothing.
#[tokio::test]
async fn headers_must_arrive_within_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = serve_with(admin(None), 64, Duration::from_millis(500)).await;
    let addr = api.url.trim_start_matches("http://").to_owned();
    for dribble in [true, false] {
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let started = std::time::Instant::now();
        let request = b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
        let closed = async {
            let mut sent = 0;
            loop {
                if dribble {
                    // One byte every 100 ms: the headers would take many seconds.
                    if socket.write_all(&request[sent % request.len()..][..1]).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
                let mut buf = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(100), socket.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return,
                    Ok(Ok(_)) => return, // a 408 answer, then the close
                    Err(_) => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), closed).await.expect("the connection was never closed");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(400) && took < Duration::from_secs(3), "{dribble}: {took:?}");
    }
    api.still_serving().await;
}
