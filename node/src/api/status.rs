//! `/v1/status`: the committee, the venues' health and the connected peers.
//!
//! The status is read on every dashboard refresh. What never changes while the node runs (the
//! node, the network, the contract and the committee) is written to JSON once, on the first
//! read, and kept ([`ApiState::status_head`]); each read writes only the venues' health, the
//! peers, the chain's status and the time after it, straight from borrowed state into bytes.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::extract::State;
use fixd_proto::types::genesis::Member;
use serde::Serialize;

use super::{ApiError, ApiState, NodeInfo};
use crate::chain::ChainStatus;
use crate::venues::VenueHealth;

/// The part of `GET /v1/status` fixed while the node runs.
#[derive(Debug, Serialize)]
struct Head<'a> {
    node: &'a NodeInfo,
    network: &'a str,
    chain_id: u64,
    contract: alloy_primitives::Address,
    committee: CommitteeView<'a>,
}

/// The part of `GET /v1/status` read anew each time, after the [`Head`] in the same object.
#[derive(Debug, Serialize)]
struct Live<'a> {
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
    peer_id: Cow<'a, str>,
    member: Option<&'a str>,
}

/// A committee member's libp2p peer id, worked out once: its text and the member's name.
#[derive(Clone, Debug)]
pub struct MemberPeer {
    pub peer_id: String,
    pub name: String,
}

/// The head as JSON without its closing brace, for [`Live`] to follow.
fn head(state: &ApiState) -> Result<Vec<u8>, ApiError> {
    let committee = state.genesis.committee();
    let head = Head {
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
    };
    let mut bytes = serde_json::to_vec(&head).map_err(|e| write_error(&e))?;
    bytes.pop(); // the closing `}`
    Ok(bytes)
}

fn write_error(e: &serde_json::Error) -> ApiError {
    ApiError::internal(format!("cannot write the status: {e}"))
}

pub async fn status(
    State(state): State<std::sync::Arc<ApiState>>,
) -> Result<axum::response::Response, ApiError> {
    let head = match state.status_head.get() {
        Some(head) => head,
        None => {
            let head = head(&state)?;
            state.status_head.get_or_init(|| head)
        }
    };
    let connected = state.network.as_ref().map(|network| network.connected_peers()).unwrap_or_default();
    let peers = connected
        .iter()
        .map(|peer| match state.member_peers.get(peer) {
            Some(member) => PeerView { peer_id: Cow::Borrowed(&member.peer_id), member: Some(&member.name) },
            None => PeerView { peer_id: Cow::Owned(peer.to_string()), member: None },
        })
        .collect();
    let live = Live {
        venues: state.venues.iter().map(|v| v.health()).collect(),
        peers,
        chain: state.chain.as_ref().map(|c| c.status()),
        now: crate::clock::now(),
    };
    let mut body = Vec::with_capacity(head.len() + 1024);
    body.extend_from_slice(head);
    body.push(b',');
    let at = body.len();
    serde_json::to_writer(&mut body, &live).map_err(|e| write_error(&e))?;
    body.remove(at); // the opening `{` of `live`: its fields join the head's object
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        Bytes::from(body),
    )))
}
