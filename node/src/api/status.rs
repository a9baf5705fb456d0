//! `/v1/status`: the committee, the venues' health and the connected peers.
//!
//! Written straight from borrowed state into the response (no `serde_json::Value` tree built
//! and walked again per request): the status is read on every dashboard refresh.

use axum::extract::State;
use fixd_proto::types::genesis::Member;
use serde::Serialize;

use super::{ApiState, NodeInfo};
use crate::chain::ChainStatus;
use crate::venues::VenueHealth;

/// The body of `GET /v1/status`.
#[derive(Debug, Serialize)]
pub struct StatusView<'a> {
    node: &'a NodeInfo,
    network: &'a str,
    chain_id: u64,
    contract: alloy_primitives::Address,
    committee: CommitteeView<'a>,
    venues: Vec<VenueHealth>,
    peers: Vec<PeerView<'a>>,
    chain: Option<ChainStatus>,
    now: u64,
}

#[derive(Debug, Serialize)]
struct CommitteeView<'a> {
    n: usize,
    f: usize,
    q: usize,
    members: &'a [Member],
}

/// A connected peer, named by its committee member when it is one.
#[derive(Debug, Serialize)]
struct PeerView<'a> {
    peer_id: String,
    member: Option<&'a String>,
}

pub async fn status(State(state): State<std::sync::Arc<ApiState>>) -> axum::response::Response {
    let committee = state.genesis.committee();
    let peers = state
        .network
        .as_ref()
        .map(|network| {
            network
                .connected_peers()
                .into_iter()
                .map(|peer| PeerView { member: state.member_peers.get(&peer), peer_id: peer.to_string() })
                .collect()
        })
        .unwrap_or_default();
    let view = StatusView {
        node: &state.node,
        network: &state.genesis.network,
        chain_id: state.genesis.chain_id,
        contract: state.genesis.contract,
        committee: CommitteeView {
            n: committee.n(),
            f: committee.f(),
            q: committee.q(),
            members: &state.genesis.members,
        },
        venues: state.venues.iter().map(|v| v.health()).collect(),
        peers,
        chain: state.chain.as_ref().map(|c| c.status()),
        now: crate::clock::now(),
    };
    // The view borrows the state: written to bytes here, while the state is held.
    match serde_json::to_vec(&view) {
        Ok(bytes) => axum::response::IntoResponse::into_response((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )),
        Err(e) => axum::response::IntoResponse::into_response(super::ApiError::internal(format!(
            "cannot write the status: {e}"
        ))),
    }
}
