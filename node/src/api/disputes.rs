//! Disputes and rulings: `POST /v1/settlements/{id}/disputes`, `GET` of the same, and
//! `POST /v1/settlements/{id}/rulings`.
//!
//! A dispute is checked cheapest first, and nothing is stored unless every check passes: the
//! JSON, the path id, the settlement, the evidence size, the disputer's EIP-712 signature, a
//! replay, a certificate to contest, the bond on-chain (this node's RPC), and then the dispute
//! machine's own answer at this moment (window, proposal, bond size). Only then does the
//! settlement service sign the relay, store it durably and gossip it; the answer is `202`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use fixd_dispute::{DisputeParams, Refusal};
use fixd_proto::eip712::{SignedDispute, SignedRuling, verify_typed};
use fixd_proto::types::settlement::SettlementSpec;
use serde_json::{Value, json};

use super::rate::{ClientAddr, Limited};
use super::{ApiError, ApiState, parse_id};
use crate::chain::BondError;
use crate::settlements::{Command, MAX_EVIDENCE_BYTES, SubmitError};
use fixd_decision::driver::{Rejected, agreed_events};
use fixd_decision::publication::timeline::{Timeline, agreed};

/// The longest evidence the API takes, in characters: a quarter of a relay's byte limit, so
/// that any UTF-8 text this long fits.
pub const MAX_EVIDENCE_CHARS: usize = MAX_EVIDENCE_BYTES / 4;

fn settlement(state: &ApiState, id: &str) -> Result<SettlementSpec, ApiError> {
    let id = parse_id(id)?;
    state
        .store
        .settlement(&id)?
        .ok_or_else(|| ApiError::not_found("unknown_settlement", format!("this node has no settlement {id}")))
}

fn domain(state: &ApiState) -> alloy::sol_types::Eip712Domain {
    fixd_proto::eip712::domain(state.genesis.chain_id, state.genesis.contract)
}

/// `POST /v1/settlements/{id}/disputes`.
pub async fn submit(
    State(state): State<std::sync::Arc<ApiState>>,
    client: Option<Extension<ClientAddr>>,
    Path(id): Path<String>,
    body: Result<Json<SignedDispute>, JsonRejection>,
) -> Response {
    let client = client.map(|Extension(ClientAddr(ip))| ip);
    let answer = submit_checked(&state, client, &id, body).await;
    let outcome = match &answer {
        Ok(_) => "accepted",
        // Not a refusal: the disputer is told to try again in a few blocks.
        Err(Refused { error, .. }) if error.code == "bond_unconfirmed" => "unconfirmed",
        Err(Refused { retry_after: Some(_), .. }) => "limited",
        Err(_) => "refused",
    };
    state.metrics.dispute(outcome);
    match answer {
        Ok(accepted) => accepted.into_response(),
        Err(Refused { error, retry_after }) => {
            let mut response = error.into_response();
            if let Some(after) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after));
            }
            response
        }
    }
}

/// A refusal, with the seconds after which to retry when a rate limit refused.
struct Refused {
    error: ApiError,
    retry_after: Option<u64>,
}

impl From<ApiError> for Refused {
    fn from(error: ApiError) -> Self {
        Refused { error, retry_after: None }
    }
}

async fn submit_checked(
    state: &ApiState,
    client: Option<std::net::IpAddr>,
    id: &str,
    body: Result<Json<SignedDispute>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), Refused> {
    let (signed, desk, reader) = free_checks(state, id, body)?;
    let admitted =
        desk.bond_checks.lock().expect("bond check limiter").admit(client, std::time::Instant::now());
    if let Err(limited) = admitted {
        return Err(rate_limited(limited));
    }
    let d = &signed.dispute;
    let escrow = reader.verify_bond(d).await.map_err(bond_error)?;
    let accepted =
        ask(desk, |reply| Command::SubmitDispute { dispute: signed.clone(), escrow: escrow.clone(), reply })
            .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "dispute_id": signed.dispute.dispute_id,
            "status": "accepted",
            "dispute_round": accepted.dispute_round,
            "accepted_at": accepted.accepted_at,
            "escrow": escrow,
        })),
    ))
}

/// The 429 of a bond check that a rate limit refused ([`super::rate`]).
fn rate_limited(limited: Limited) -> Refused {
    let (code, message, after) = match limited {
        Limited::Client { retry_after } => (
            "too_many_bond_checks",
            "this client started api.bond_checks_per_client_per_minute bond checks in the last minute",
            retry_after,
        ),
        Limited::Node { retry_after } => (
            "node_busy",
            "this node starts api.bond_checks_per_second bond checks a second, from all clients, and has none left",
            retry_after,
        ),
    };
    let secs = after.as_secs_f64().ceil().max(1.0) as u64;
    let error =
        ApiError::too_many(code, format!("{message}; retry in {secs} s, or submit to another member"));
    Refused { error, retry_after: Some(secs) }
}

/// Every check that costs this node no RPC call, cheapest first: what a bond check needs.
fn free_checks<'a>(
    state: &'a ApiState,
    id: &str,
    body: Result<Json<SignedDispute>, JsonRejection>,
) -> Result<(SignedDispute, &'a super::DisputeDesk, &'a crate::chain::ChainReader), ApiError> {
    let Json(signed) = body.map_err(ApiError::from_json)?;
    let spec = settlement(state, id)?;
    let d = &signed.dispute;
    if d.settlement_id != spec.id() {
        return Err(ApiError::unprocessable(
            "settlement_mismatch",
            format!("the dispute is for settlement {}, but was posted under {}", d.settlement_id, spec.id()),
        ));
    }
    // Counted in characters, as the API document says (JSON Schema's maxLength); at most four
    // bytes each, so what passes always fits a relay's MAX_EVIDENCE_BYTES.
    let chars = d.evidence.chars().count();
    if chars > MAX_EVIDENCE_CHARS {
        return Err(ApiError::unprocessable(
            "evidence_too_long",
            format!("evidence is {chars} characters; at most {MAX_EVIDENCE_CHARS}: link to longer material"),
        ));
    }
    verify_typed(&domain(state), d, &signed.signature, d.disputer).map_err(|e| {
        ApiError::unprocessable(
            "bad_signature",
            format!("the EIP-712 signature does not sign this dispute as {}: {e}", d.disputer),
        )
    })?;
    if state.store.has_dispute(&spec.id(), &d.dispute_id)? {
        return Err(ApiError::conflict(
            "duplicate_dispute",
            format!("dispute {} was accepted already; a dispute id is used once", d.dispute_id),
        ));
    }
    if state.store.certificate(&spec.id())?.is_none() {
        return Err(ApiError::conflict(
            "not_certified",
            "no value is certified yet; there is nothing to dispute",
        ));
    }
    let Some(desk) = &state.disputes else {
        return Err(ApiError::unavailable("disputes_unavailable", "this node does not take disputes"));
    };
    let Some(reader) = &desk.reader else {
        return Err(ApiError::unavailable(
            "chain_unavailable",
            "this node has no chain.rpc_url, so it cannot check bonds; submit to another member",
        ));
    };
    Ok((signed, desk, reader))
}

/// Hands a command to the settlement service and waits for its answer.
async fn ask<T>(
    desk: &super::DisputeDesk,
    command: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, SubmitError>>) -> Command,
) -> Result<T, ApiError> {
    let stopped = || ApiError::unavailable("node_stopping", "the node is shutting down; try another member");
    let (reply, answer) = tokio::sync::oneshot::channel();
    desk.settlements.send(command(reply)).await.map_err(|_| stopped())?;
    answer.await.map_err(|_| stopped())?.map_err(submit_error)
}

fn bond_error(e: BondError) -> ApiError {
    let message = e.to_string();
    match e {
        BondError::NotFound(_) => ApiError::unprocessable("bond_not_found", message),
        BondError::Unconfirmed { .. } => ApiError::conflict("bond_unconfirmed", message),
        BondError::Reverted(_) => ApiError::unprocessable("bond_reverted", message),
        BondError::NoBondPosted(_) => ApiError::unprocessable("bond_not_escrowed", message),
        BondError::WrongDisputer { .. } | BondError::WrongAmount { .. } => {
            ApiError::unprocessable("bond_mismatch", message)
        }
        BondError::Reorged(_) => ApiError::conflict("bond_reorged", message),
        BondError::EscrowGone => ApiError::unprocessable("bond_not_escrowed", message),
        BondError::Rpc(_) => ApiError::unavailable("chain_unavailable", message),
    }
}

fn submit_error(e: SubmitError) -> ApiError {
    let message = e.to_string();
    match e {
        SubmitError::Rejected(Rejected::UnknownSettlement(_)) => {
            ApiError::not_found("unknown_settlement", message)
        }
        SubmitError::Rejected(Rejected::Duplicate(_)) => ApiError::conflict("duplicate_dispute", message),
        SubmitError::Rejected(Rejected::DuplicateRuling(_)) => {
            ApiError::conflict("duplicate_ruling", message)
        }
        SubmitError::Rejected(Rejected::NotInArbitration(_)) => ApiError::conflict("no_arbitration", message),
        SubmitError::Rejected(Rejected::TooLate { .. }) => ApiError::unprocessable("too_late", message),
        SubmitError::Rejected(Rejected::BondTooOld { .. }) => {
            ApiError::unprocessable("bond_too_old", message)
        }
        SubmitError::Store(e) => ApiError::from(e),
        SubmitError::Rejected(Rejected::Refused(refusal)) => {
            let code = match refusal {
                Refusal::Final => "final",
                Refusal::Duplicate => "duplicate_dispute",
                Refusal::NotCertified => "not_certified",
                Refusal::WrongProposal { .. } => "wrong_proposal",
                Refusal::WindowClosed { .. } => "window_closed",
                Refusal::BondTooSmall { .. } => "bond_too_small",
                Refusal::BondTooLarge { .. } => "bond_too_large",
            };
            match refusal {
                Refusal::Final | Refusal::Duplicate | Refusal::NotCertified => {
                    ApiError::conflict(code, message)
                }
                _ => ApiError::unprocessable(code, message),
            }
        }
    }
}

/// `POST /v1/settlements/{id}/rulings`: the arbitrator's signed ruling.
pub async fn rule(
    State(state): State<std::sync::Arc<ApiState>>,
    Path(id): Path<String>,
    body: Result<Json<SignedRuling>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(signed) = body.map_err(ApiError::from_json)?;
    let spec = settlement(&state, &id)?;
    let r = &signed.ruling;
    if r.settlement_id != spec.id() {
        return Err(ApiError::unprocessable(
            "settlement_mismatch",
            format!("the ruling is for settlement {}, but was posted under {}", r.settlement_id, spec.id()),
        ));
    }
    let arbitrator = state.genesis.arbitrator;
    if arbitrator == alloy_primitives::Address::ZERO {
        return Err(ApiError::conflict("no_arbitrator", "this network's genesis names no arbitrator"));
    }
    verify_typed(&domain(&state), r, &signed.signature, arbitrator).map_err(|e| {
        ApiError::unprocessable(
            "bad_signature",
            format!("the ruling is not signed by the arbitrator {arbitrator}: {e}"),
        )
    })?;
    let Some(desk) = &state.disputes else {
        return Err(ApiError::unavailable("disputes_unavailable", "this node does not take rulings"));
    };
    let accepted_at = ask(desk, |reply| Command::SubmitRuling { ruling: signed.clone(), reply }).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "dispute_id": r.dispute_id, "status": "accepted", "accepted_at": accepted_at })),
    ))
}

/// `GET /v1/settlements/{id}/disputes?limit=&cursor=`: the dispute state with every event this
/// node holds; its `disputes` a page at a time, by `(accepted_at, dispute_id)`, with
/// `next_cursor` (`null` on the last page). Read on the blocking pool.
pub async fn list(
    State(state): State<std::sync::Arc<ApiState>>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<super::page::PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = query.page()?;
    super::blocking(&state, move |state| {
        let spec = settlement(state, &id)?;
        let mut answer = dispute_state(state, &spec)?;
        let key = |d: &Value| {
            let at = d["accepted_at"].as_u64().unwrap_or_default();
            let id =
                serde_json::from_value::<alloy_primitives::B256>(d["dispute_id"].clone()).unwrap_or_default();
            super::page::Cursor(at, id)
        };
        let mut disputes: Vec<Value> = match answer["disputes"].take() {
            Value::Array(all) => {
                all.into_iter().filter(|d| page.after.is_none_or(|after| key(d) > after)).collect()
            }
            _ => Vec::new(),
        };
        disputes.sort_by_key(key);
        let more = disputes.len() > page.limit;
        disputes.truncate(page.limit);
        let next_cursor = disputes.last().filter(|_| more).map(|d| key(d).encode());
        answer["disputes"] = Value::Array(disputes);
        answer["next_cursor"] = json!(next_cursor);
        Ok(Json(answer))
    })
    .await
}

/// The settlement's dispute machine with every agreed event this node holds folded in, at unix
/// second `now`.
pub fn disputes_machine(
    state: &ApiState,
    spec: &SettlementSpec,
    now: u64,
) -> Result<fixd_dispute::SettlementDisputes, ApiError> {
    let committee = state.genesis.committee();
    let params = DisputeParams::for_committee(&state.genesis.params, spec.maturity, &committee, 0);
    let mut timeline = Timeline::new(params)
        .map_err(|e| ApiError::internal(format!("the dispute rules are invalid: {e}")))?;
    let (store, id) = (&state.store, spec.id());
    let events = agreed_events(
        &committee,
        store.certificate(&id)?.as_ref(),
        &store.review_certificates(&id)?,
        &store.review_votes(&id)?,
        &store.disputes(&id)?,
        &store.rulings(&id)?,
        &store.late_relays(&id)?,
    );
    // As this member folds them: a relay that reached it late counts only once a decided
    // report takes it (the report is shown beside this).
    let in_time = |e: &fixd_decision::publication::Event| {
        !matches!(
            e,
            fixd_decision::publication::Event::Dispute { late: true, .. }
                | fixd_decision::publication::Event::Ruling { late: true, .. }
        )
    };
    for event in events.into_iter().filter(in_time) {
        if let Ok((at, event)) = agreed(event) {
            timeline.insert(at, event);
        }
    }
    Ok(timeline.latest(now))
}

/// The settlement's dispute state as JSON, as the API shows it.
pub fn dispute_state(state: &ApiState, spec: &SettlementSpec) -> Result<Value, ApiError> {
    let machine = disputes_machine(state, spec, crate::clock::now())?;
    let relayed = state.store.disputes(&spec.id())?;
    let disputes: Vec<Value> = machine
        .disputes()
        .iter()
        .map(|record| {
            let relay =
                relayed.iter().find(|r| r.payload.dispute.dispute.dispute_id == record.filing.dispute_id);
            json!({
                "dispute_id": record.filing.dispute_id,
                "disputer": record.filing.disputer,
                "bond_wei": record.filing.bond_wei.to_string(),
                "reason": record.filing.reason,
                "proposal_hash": record.filing.proposal_hash,
                "dispute_round": record.dispute_round,
                "accepted_at": record.filed_at,
                "status": record.decision.map_or("open", |d| match d {
                    fixd_dispute::Decision::Upheld => "upheld",
                    fixd_dispute::Decision::Rejected => "rejected",
                    fixd_dispute::Decision::Unresolved => "unresolved",
                }),
                "outcome": record.outcome,
                "escrow": relay.map(|r| &r.payload.escrow),
                "evidence": relay.map(|r| &r.payload.dispute.dispute.evidence),
            })
        })
        .collect();
    let reviews: Vec<Value> = state
        .store
        .review_certificates(&spec.id())?
        .into_iter()
        .map(|(dispute_id, c)| {
            json!({ "dispute_id": dispute_id, "round": c.proposal.payload.round, "value": c.proposal.payload.value,
                    "proposal_hash": c.proposal.hash(), "votes": c.proposal.payload.inputs })
        })
        .collect();
    Ok(json!({
        "phase": format!("{:?}", machine.phase()).to_lowercase(),
        "deadline": machine.deadline(),
        "hard_deadline": machine.hard_deadline(),
        "dispute_round": machine.dispute_round(),
        "required_bond_wei": machine.required_bond().map(|b| b.to_string()),
        "certified": machine.certified(),
        "insurance_pool_wei": machine.insurance_pool().to_string(),
        "ledger": machine.ledger(),
        "arbitrator": state.genesis.arbitrator,
        "disputes": disputes,
        "reviews": reviews,
    }))
}
