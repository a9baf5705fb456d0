//! `/v1/status`: the committee, the venues' health and the connected peers.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiState;

pub async fn status(State(state): State<std::sync::Arc<ApiState>>) -> Json<Value> {
    let committee = state.genesis.committee();
    let mut peers = Vec::new();
    if let Some(network) = &state.network {
        for peer in network.connected_peers() {
            // Name each connected peer by its committee member, when it is one.
            let member = state.member_peers.get(&peer);
            peers.push(json!({ "peer_id": peer.to_string(), "member": member }));
        }
    }
    let venues: Vec<_> = state.venues.iter().map(|v| v.health()).collect();
    Json(json!({
        "node": &*state.node,
        "network": state.genesis.network,
        "chain_id": state.genesis.chain_id,
        "contract": state.genesis.contract,
        "committee": {
            "n": committee.n(),
            "f": committee.f(),
            "q": committee.q(),
            "members": committee.members(),
        },
        "venues": venues,
        "peers": peers,
        "chain": state.chain.as_ref().map(|c| c.status()),
        "now": crate::clock::now(),
    }))
}
