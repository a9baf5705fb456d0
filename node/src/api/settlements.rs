//! `/v1/settlements`: what this node knows of each settlement.

use alloy_primitives::B256;
use axum::Json;
use axum::extract::{Path, State};
use fixd_proto::signing::Signed;
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::SettlementSpec;
use serde::Serialize;

use super::{ApiError, ApiState};
use crate::store::{SignedKind, SigningSlot};

/// One settlement as this node sees it.
#[derive(Debug, Serialize)]
pub struct SettlementView {
    pub id: B256,
    pub spec: SettlementSpec,
    pub status: &'static str,
    /// Unix seconds at which nodes compute their observations.
    pub observe_at: u64,
    /// This node's signed observation, once made.
    pub observation: Option<Signed<Observation>>,
    /// Every signed observation this node holds, its own and its peers'.
    pub observations: Vec<Signed<Observation>>,
    /// What this node has recorded as signed: kind, round and message hash.
    pub signed: Vec<SignedRecord>,
}

#[derive(Debug, Serialize)]
pub struct SignedRecord {
    pub kind: SignedKind,
    pub round: u32,
    pub hash: B256,
}

fn view(state: &ApiState, spec: SettlementSpec) -> Result<SettlementView, ApiError> {
    let id = spec.id();
    let observations = state.store.observations(&id)?;
    let slot = SigningSlot { settlement: id, kind: SignedKind::Observation, round: 0 };
    let signed_hash = state.store.signed(slot)?;
    let own = observations.iter().find(|o| o.signer == state.node.public_key).cloned();
    let signed = signed_hash
        .map(|hash| SignedRecord { kind: slot.kind, round: slot.round, hash })
        .into_iter()
        .collect();
    let status = if own.is_some() { "observed" } else { "scheduled" };
    Ok(SettlementView {
        id,
        observe_at: spec.observe_at(),
        spec,
        status,
        observation: own,
        observations,
        signed,
    })
}

pub async fn list(State(state): State<ApiState>) -> Result<Json<Vec<SettlementView>>, ApiError> {
    let specs = state.store.settlements()?;
    specs.into_iter().map(|s| view(&state, s)).collect::<Result<Vec<_>, _>>().map(Json)
}

pub async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<SettlementView>, ApiError> {
    let id: B256 = id.parse().map_err(|_| {
        ApiError::bad_request(
            "bad_settlement_id",
            format!("{id:?} is not a settlement id: expected 0x and 64 hex digits"),
        )
    })?;
    let spec = state.store.settlement(&id)?.ok_or_else(|| {
        ApiError::not_found("unknown_settlement", format!("this node has no settlement {id}"))
    })?;
    Ok(Json(view(&state, spec)?))
}
