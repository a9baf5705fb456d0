//! The HTTP API, `/v1`, JSON. Reads are public; scheduling is an admin act.
//!
//! | route | what |
//! |---|---|
//! | `GET /v1/health` | liveness and this node's identity |
//! | `GET /v1/status` | committee, venue health, peers |
//! | `GET /v1/settlements?status=&limit=&cursor=` | settlements by maturity, a page at a time ([`page`]), optionally filtered by status |
//! | `POST /v1/settlements` | schedule a settlement (admin) |
//! | `GET /v1/settlements/{id}` | one settlement: spec, status, timings, observations, signed records, certificate |
//! | `GET /v1/settlements/{id}/proof` | the proof bundle that `fixd verify` checks offline |
//! | `GET /v1/settlements/{id}/disputes?limit=&cursor=` | the dispute state: phase, deadline, required bond, each dispute (a page at a time) and its outcome |
//! | `POST /v1/settlements/{id}/disputes` | submit a signed dispute whose bond is escrowed ([`disputes`]) |
//! | `POST /v1/settlements/{id}/rulings` | the arbitrator's signed ruling |
//! | `GET /v1/events` | server-sent events, one per state change |
//! | `GET /v1/openapi.json` | the OpenAPI 3.1 document of all of the above |
//! | `GET /metrics` | Prometheus text ([`crate::metrics`]) |
//!
//! Every error is a JSON body `{"error": CODE, "message": TEXT}` with a 4xx status for bad
//! input: malformed ids, unknown settlements, bad JSON, oversized bodies (413), wrong methods
//! (405), unknown routes (404). A 5xx means the node itself failed (its store), or cannot serve
//! the request now (503: no chain RPC to check a bond), never that the request was bad.
//!
//! Admin routes need `Authorization: Bearer <api.admin_token>` (compared in constant time), and
//! a `Host` header that names a loopback host or one of `api.admin_hosts`. On a loopback bind,
//! `api.admin_loopback_without_token = true` lets local callers in without the token (the
//! devnet's setting; off by default). Scheduling stops at `api.max_scheduled` settlements that
//! have not matured yet.
//!
//! Bounded work for every client: every list is paged (at most [`page::MAX_LIMIT`] items),
//! store reads run on tokio's blocking pool ([`blocking`]) so that a long scan never holds an
//! async worker, at most `api.max_concurrent_requests` requests are served at once (past them a
//! 503 `overloaded` at once), at most `api.max_event_streams` event streams are open, and a
//! client gets `api.header_read_timeout` to send its headers ([`serve`]).

pub(crate) mod disputes;
mod error;
mod events;
mod openapi;
pub mod page;
pub mod rate;
mod serve;
mod settlements;
mod status;
#[cfg(test)]
mod tests;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use fixd_proto::types::genesis::Genesis;
use serde::Serialize;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;
pub use serve::serve;

use crate::events::EventBus;
use crate::store::Store;
use crate::venues::VenueAdapter;

/// What the API reads from.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub node: Arc<NodeInfo>,
    pub genesis: Arc<Genesis>,
    pub venues: Vec<VenueAdapter>,
    pub events: EventBus,
    pub admin: AdminPolicy,
    /// The network, for the peer list; `None` when the API runs without one (tests).
    pub network: Option<crate::network::NetworkHandle>,
    /// The chain service, for the chain's status; `None` without `chain.rpc_url`.
    pub chain: Option<crate::chain::ChainHandle>,
    pub metrics: crate::metrics::Metrics,
    /// Where disputes and rulings go; `None` in tests without a settlement service.
    pub disputes: Option<DisputeDesk>,
    /// One permit per open `/v1/events` stream: `api.max_event_streams` of them.
    pub event_streams: Arc<tokio::sync::Semaphore>,
    /// One permit per request being served: `api.max_concurrent_requests` of them.
    pub requests: Arc<tokio::sync::Semaphore>,
    /// Each member's name by its libp2p peer id ([`ApiState::member_peers`]), for the peer
    /// list: worked out once, since a peer id takes a curve point's decompression.
    pub member_peers: Arc<std::collections::HashMap<libp2p::PeerId, status::MemberPeer>>,
    /// The fixed part of `/v1/status` as JSON, written on its first read ([`status`]).
    pub status_head: Arc<std::sync::OnceLock<Vec<u8>>>,
    /// The JSON of settlement views, kept while their settlement's store version and the
    /// clock's second hold ([`views::Views`]).
    pub views: Arc<views::Views>,
}

impl ApiState {
    /// Each member's name by its libp2p peer id.
    pub fn member_peers(
        genesis: &Genesis,
    ) -> Arc<std::collections::HashMap<libp2p::PeerId, status::MemberPeer>> {
        let peers = genesis.members.iter().filter_map(|m| {
            let peer = crate::network::peer_id_of(&m.ed25519).ok()?;
            Some((peer, status::MemberPeer { peer_id: peer.to_string(), name: m.name.clone() }))
        });
        Arc::new(peers.collect())
    }
}

/// What the dispute routes need besides the store.
#[derive(Clone, Debug)]
pub struct DisputeDesk {
    pub settlements: tokio::sync::mpsc::Sender<crate::settlements::Command>,
    /// Reads bonds back; `None` without `chain.rpc_url`.
    pub reader: Option<crate::chain::ChainReader>,
    /// Bond checks per client and in all ([`rate`]).
    pub bond_checks: Arc<std::sync::Mutex<rate::BondCheckLimiter>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").field("node", &self.node).finish_non_exhaustive()
    }
}

/// Who may use admin routes, and how much they may schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminPolicy {
    /// `api.admin_token`: requests carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// A loopback bind with `api.admin_loopback_without_token`: local callers need no token.
    pub loopback_without_token: bool,
    /// `api.admin_hosts`: `Host` names admitted besides the loopback names.
    pub hosts: Vec<String>,
    /// `api.max_scheduled`.
    pub max_scheduled: usize,
}

impl std::fmt::Debug for AdminPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminPolicy")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("loopback_without_token", &self.loopback_without_token)
            .field("hosts", &self.hosts)
            .field("max_scheduled", &self.max_scheduled)
            .finish()
    }
}

impl AdminPolicy {
    /// The policy of an `[api]` config.
    pub fn new(api: &crate::config::ApiConfig) -> Self {
        AdminPolicy {
            token: api.admin_token.clone(),
            loopback_without_token: api.admin_loopback_without_token && api.listen.ip().is_loopback(),
            hosts: api.admin_hosts.clone(),
            max_scheduled: api.max_scheduled,
        }
    }

    /// Whether a request with these headers may use an admin route; the refusal says what to do.
    pub fn authorise(&self, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
        let host = headers.get(axum::http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        if !self.admits_host(host) {
            return Err(ApiError::forbidden(
                "host_not_allowed",
                format!(
                    "admin routes do not answer to Host {host:?}: call the node on 127.0.0.1 or localhost, \
                     or list the name in api.admin_hosts"
                ),
            ));
        }
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match (&self.token, given) {
            (Some(token), Some(given)) if constant_time_eq(token.as_bytes(), given.as_bytes()) => Ok(()),
            (_, None) if self.loopback_without_token => Ok(()),
            (Some(_), _) => {
                Err(ApiError::unauthorized("admin_token", "send Authorization: Bearer <api.admin_token>"))
            }
            (None, _) => Err(ApiError::unauthorized(
                "admin_token",
                "admin routes need a token: set api.admin_token and send Authorization: Bearer <token> \
                 (on a loopback bind, api.admin_loopback_without_token = true lets local callers in)",
            )),
        }
    }

    /// A loopback name (any port) or one of `hosts` (as written, or its name without the port).
    fn admits_host(&self, host: &str) -> bool {
        let name = match host.rsplit_once(':') {
            Some((name, port)) if !name.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.to_ascii_lowercase();
        matches!(name.as_str(), "127.0.0.1" | "localhost" | "[::1]")
            || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(&name))
    }
}

/// Equal bytes, in a time that depends on the lengths only ([`subtle`]).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Static facts about this node, shown by `/v1/health`.
#[derive(Clone, Debug, Serialize)]
pub struct NodeInfo {
    pub name: String,
    pub member_index: usize,
    pub network_id: B256,
    pub public_key: fixd_proto::signing::PublicKey,
    pub version: &'static str,
}

/// The API router.
pub fn router(state: ApiState, max_body_bytes: usize, timeout: Duration) -> Router {
    // Shared, not cloned per request: axum hands each handler (and the middleware) its own
    // copy of the state.
    let state = Arc::new(state);
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/status", get(status::status))
        .route("/v1/settlements", get(settlements::list).post(settlements::schedule))
        .route("/v1/settlements/{id}", get(settlements::show))
        .route("/v1/settlements/{id}/proof", get(settlements::proof))
        .route("/v1/settlements/{id}/disputes", get(disputes::list).post(disputes::submit))
        .route("/v1/settlements/{id}/rulings", axum::routing::post(disputes::rule))
        .route("/v1/events", get(events::stream))
        .route("/v1/openapi.json", get(openapi::document))
        .route("/metrics", get(metrics))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), at_most_concurrent))
        .with_state(state)
}

/// Serves the request while fewer than `api.max_concurrent_requests` are being served, else
/// answers 503 `overloaded` with `Retry-After` at once: nothing queues. The permit is held until
/// the response's headers are ready, so an event stream counts only while it starts (streams
/// have their own bound, `api.max_event_streams`).
async fn at_most_concurrent(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let Ok(_permit) = state.requests.clone().try_acquire_owned() else {
        let error = ApiError::unavailable(
            "overloaded",
            "this node serves api.max_concurrent_requests requests already; retry in a second",
        );
        let mut response = axum::response::IntoResponse::into_response(error);
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// Runs store work on tokio's blocking pool, so that a scan of a large store never holds one of
/// the async workers that serve every other request (`/v1/health` included).
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Arc<ApiState>,
    work: impl FnOnce(&ApiState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&state))
        .await
        .map_err(|e| ApiError::internal(format!("a store read stopped: {e}")))?
}

/// `GET /metrics`: Prometheus text (see [`crate::metrics`]).
async fn metrics(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
) -> Result<axum::response::Response, ApiError> {
    let statuses = blocking(&state, settlements::count_by_status).await?;
    let text = state
        .metrics
        .encode(&state.venues, &statuses)
        .map_err(|e| ApiError::internal(format!("cannot encode the metrics: {e}")))?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        text,
    )))
}

async fn health(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "node": &*state.node }))
}

/// Parses a settlement id path segment.
pub fn parse_id(id: &str) -> Result<B256, ApiError> {
    let hex = id.strip_prefix("0x").unwrap_or(id);
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "bad_settlement_id",
            format!("{id:?} is not a settlement id: expected 0x and 64 hex digits"),
        ));
    }
    Ok(hex.parse().expect("64 hex digits parse"))
}
