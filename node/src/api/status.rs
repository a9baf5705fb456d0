//! `/v1/status`: the committee, the venues' health and (with gossip) the peers.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiState;

pub async fn status(State(state): State<ApiState>) -> Json<Value> {
    let committee = state.genesis.committee();
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
        "now": crate::clock::now(),
    }))
}
