//! A recording JSON-RPC proxy: it listens on loopback, forwards every request to a real node
//! (anvil) and answers with its answer, and records each call's method and when it came. A test
//! points one `fixd` node's `chain.rpc_url` at it to count the RPC load that node makes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// One call: when it arrived, its JSON-RPC method and its params as JSON text (one per entry of
/// a batch).
pub type Call = (Instant, String, String);

#[derive(Clone)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct RpcRecorder {
    /// The proxy's URL, for `chain.rpc_url`.
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    _runtime: tokio::runtime::Runtime,
}

impl RpcRecorder {
    /// Starts a proxy in front of `upstream` on a free loopback port.
    pub fn start(upstream: &str) -> RpcRecorder {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the RPC recorder");
        let calls = Arc::new(Mutex::new(Vec::new()));
        let shared =
            Shared { upstream: upstream.to_owned(), client: reqwest::Client::new(), calls: calls.clone() };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port for the RPC recorder");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/", axum::routing::post(forward)).with_state(shared);
        runtime.spawn(async move { axum::serve(listener, app).await });
        RpcRecorder { url, calls, _runtime: runtime }
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// Calls that arrived in `[from, to)`.
    pub fn count_between(&self, from: Instant, to: Instant) -> usize {
        self.calls.lock().unwrap().iter().filter(|(t, ..)| *t >= from && *t < to).count()
    }

    /// The most calls in any one second (windows starting at each call) within `[from, to)`.
    pub fn peak_per_second(&self, from: Instant, to: Instant) -> usize {
        let times: Vec<Instant> =
            self.calls.lock().unwrap().iter().map(|(t, ..)| *t).filter(|t| *t >= from && *t < to).collect();
        let mut peak = 0;
        let mut end = 0;
        for (start, t) in times.iter().enumerate() {
            while end < times.len() && times[end] < *t + Duration::from_secs(1) {
                end += 1;
            }
            peak = peak.max(end - start);
        }
        peak
    }
}

/// Records the request's methods, then forwards it as is.
async fn forward(State(shared): State<Shared>, body: Bytes) -> impl IntoResponse {
    let now = Instant::now();
    let calls: Vec<(String, String)> = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Array(batch)) => batch.iter().map(method).collect(),
        Ok(one) => vec![method(&one)],
        Err(_) => vec![("<not json>".to_owned(), String::new())],
    };
    shared.calls.lock().unwrap().extend(calls.into_iter().map(|(m, p)| (now, m, p)));
    let answer = shared
        .client
        .post(&shared.upstream)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    match answer {
        Ok(answer) => {
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

fn method(call: &serde_json::Value) -> (String, String) {
    (call["method"].as_str().unwrap_or("<no method>").to_owned(), call["params"].to_string())
}
