//! The HTTP API, `/v1`, JSON. Reads are public.
//!
//! Every error is a JSON body `{"error": CODE, "message": TEXT}` with a 4xx status for bad
//! input; a 5xx means the node itself failed (its store), never the request.

mod error;
mod settlements;

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use axum::Router;
use axum::routing::get;
use serde::Serialize;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use error::ApiError;

use crate::store::Store;

/// What the API reads from.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub node: Arc<NodeInfo>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").field("node", &self.node).finish_non_exhaustive()
    }
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
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/settlements", get(settlements::list))
        .route("/v1/settlements/{id}", get(settlements::show))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, timeout))
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<ApiState>,
) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok", "node": &*state.node }))
}
