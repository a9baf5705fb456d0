//! `/v1/settlements`: what this node knows of each settlement, and scheduling.

use alloy_primitives::B256;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use fixd_proto::certify::ProofBundle;
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::Certificate;
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiState, parse_id};
use crate::events::NodeEvent;
use crate::store::{SignedKind, SigningSlot};
use fixd_decision::consensus::Equivocation;
use fixd_proto::types::certificate::DecisionId;

mod waiting;

/// Where a settlement is, as this node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Known; its observation is not yet due or not yet made.
    Scheduled,
    /// This node has signed and stored its observation.
    Observed,
    /// A quorum certified a value; its challenge window is open until the deadline.
    Certified,
    /// The window closed: the value is final and this node signed the final report.
    Final,
    /// The contract holds the final value with the required confirmations.
    Published,
}

impl Status {
    /// The status from the facts that decide it, latest first.
    fn of(published: bool, is_final: bool, certified: bool, observed: bool) -> Status {
        match () {
            _ if published => Status::Published,
            _ if is_final => Status::Final,
            _ if certified => Status::Certified,
            _ if observed => Status::Observed,
            _ => Status::Scheduled,
        }
    }

    /// The status of settlement `id` read from the store alone, without building its view:
    /// the latest fact first, and no further read once one holds (a scheduled settlement costs
    /// four point reads).
    fn read(state: &ApiState, id: &B256) -> Result<Status, ApiError> {
        let store = &state.store;
        if let Some(final_record) = store.final_record(id)? {
            let required = state.genesis.params.confirmations.max(1);
            let published =
                store.publication(id)?.is_some_and(|p| p.publishes(final_record.report.value, required));
            return Ok(Status::of(published, true, true, true));
        }
        if store.certificate(id)?.is_some() {
            return Ok(Status::Certified);
        }
        let observed = store.signed(crate::observer::observation_slot_of(*id))?.is_some();
        Ok(Status::of(false, false, false, observed))
    }

    fn parse(name: &str) -> Result<Status, ApiError> {
        Status::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
            let valid: Vec<_> = Status::ALL.iter().map(|s| s.name()).collect();
            ApiError::bad_request("bad_status", format!("unknown status {name:?}; use one of {valid:?}"))
        })
    }

    const ALL: [Status; 5] =
        [Status::Scheduled, Status::Observed, Status::Certified, Status::Final, Status::Published];

    fn name(self) -> &'static str {
        match self {
            Status::Scheduled => "scheduled",
            Status::Observed => "observed",
            Status::Certified => "certified",
            Status::Final => "final",
            Status::Published => "published",
        }
    }
}

/// One settlement as this node sees it.
#[derive(Debug, Serialize)]
pub struct SettlementView {
    pub id: B256,
    pub spec: SettlementSpec,
    pub status: Status,
    /// Unix seconds: the window `(window_start, maturity]` and when nodes observe it.
    pub window_start: u64,
    pub maturity: u64,
    pub observe_at: u64,
    /// This node's signed observation, once made.
    pub observation: Option<Signed<Observation>>,
    /// The venues this node's observation left out, and why (a failed fetch, no trade in the
    /// window, or dropped by the methodology); node-local, not part of the signed observation.
    pub left_out: Vec<crate::venues::LeftOut>,
    /// Every signed observation this node holds, its own and its peers'.
    pub observations: Vec<Signed<Observation>>,
    /// What this node has recorded as signed: kind, round and message hash.
    pub signed: Vec<SignedRecord>,
    /// The certified value, once certified.
    pub value: Option<fixd_proto::value::Wad>,
    /// The certificate: the leader's signed proposal and a quorum of vote signatures.
    pub certificate: Option<Certificate>,
    /// Unix seconds: disputes are accepted until then (exclusive), once certified.
    pub challenge_deadline: Option<u64>,
    /// The final report this node signed, with the members' signatures it holds.
    pub final_report: Option<FinalReportView>,
    /// The publication on-chain, as this node last read the contract.
    pub publication: Option<PublicationView>,
    /// What the settlement waits for next, once its observations are due; `null` once published.
    pub waiting_for: Option<String>,
    /// Members caught signing two different messages for one slot, with both messages.
    pub equivocations: Vec<EquivocationView>,
}

/// Equivocation evidence as the API shows it: the slot, then both signed messages (each one
/// verifies on its own, so the pair proves the member signed twice).
#[derive(Debug, Serialize)]
pub struct EquivocationView {
    pub signer: fixd_proto::signing::PublicKey,
    pub kind: crate::network::MessageKind,
    pub round: u32,
    pub first: crate::network::GossipMessage,
    pub second: crate::network::GossipMessage,
}

impl From<Equivocation> for EquivocationView {
    fn from(e: Equivocation) -> Self {
        EquivocationView {
            signer: *e.signer(),
            kind: e.kind(),
            round: e.round(),
            first: e.first,
            second: e.second,
        }
    }
}

/// The final report and the signatures collected for it.
#[derive(Debug, Serialize)]
pub struct FinalReportView {
    pub report: fixd_proto::types::report::FinalReport,
    /// How it became final: `window_closed`, `ruling` or `hard_deadline`.
    pub by: fixd_dispute::FinalBy,
    /// Unix seconds this node saw it become final.
    pub at: u64,
    /// Members whose valid signature of exactly this report this node holds.
    pub signatures: Vec<ReportSigner>,
    /// Signatures the contract needs (q).
    pub signatures_needed: usize,
}

#[derive(Debug, Serialize)]
pub struct ReportSigner {
    pub member: String,
    pub address: alloy_primitives::Address,
    pub signature: fixd_proto::eip712::EthSignature,
}

/// The contract's record of the settlement.
#[derive(Debug, Serialize)]
pub struct PublicationView {
    pub value: fixd_proto::value::Wad,
    pub tx_hash: B256,
    pub block_number: u64,
    pub confirmations: u64,
    pub confirmations_required: u64,
    /// The account that sent the transaction.
    pub publisher: alloy_primitives::Address,
    /// `confirmations ≥ confirmations_required`.
    pub confirmed: bool,
}

#[derive(Debug, Serialize)]
pub struct SignedRecord {
    pub kind: SignedKind,
    /// The decision a round proposal or vote belongs to (`value`, or a dispute's `review`).
    pub decision: DecisionId,
    pub round: u32,
    pub hash: B256,
}

/// The view of `spec` as the store holds it, at unix second `now`.
fn view(state: &ApiState, spec: SettlementSpec, now: u64) -> Result<SettlementView, ApiError> {
    let id = spec.id();
    let observations = state.store.observations(&id)?;
    let mut signed = Vec::new();
    // The rounds of each decision that this node holds messages of.
    let proposals = state.store.proposals(&id)?.into_iter().map(|p| (p.payload.decision(), p.payload.round));
    let rounds: std::collections::BTreeSet<(DecisionId, u32)> = proposals
        .chain(state.store.votes(&id)?.into_iter().map(|v| (v.payload.decision, v.payload.round)))
        .collect();
    // Review votes are per dispute round (1 up to the rounds a committee reviews).
    let dispute_rounds = 1..=u32::from(state.genesis.params.max_rounds);
    let value = DecisionId::Value;
    let round_kinds = [SignedKind::Proposal, SignedKind::Prevote, SignedKind::Precommit];
    let slots = std::iter::once((SignedKind::Observation, value, 0))
        .chain(rounds.iter().flat_map(|&(d, r)| round_kinds.map(|kind| (kind, d, r))))
        .chain(dispute_rounds.map(|k| (SignedKind::ReviewVote, value, k)))
        .chain(std::iter::once((
            SignedKind::FinalReport,
            value,
            fixd_decision::publication::FINAL_REPORT_ROUND,
        )));
    for (kind, decision, round) in slots {
        if let Some(hash) = state.store.signed(SigningSlot { settlement: id, kind, decision, round })? {
            signed.push(SignedRecord { kind, decision, round, hash });
        }
    }
    let own = observations.iter().find(|o| o.signer == state.node.public_key).cloned();
    let certificate = state.store.certificate(&id)?;
    let committee = state.genesis.committee();
    let quorum = committee.q();
    let params = &state.genesis.params;
    let final_record = state.store.final_record(&id)?;
    let final_report = final_record.map(|record| {
        // The store holds only signatures checked when they arrived (the driver keeps a
        // report signature once it recovers to its author's address), so none is checked here.
        let signatures = state.store.report_signatures(&id).unwrap_or_default();
        let signers = committee
            .members()
            .iter()
            .filter_map(|m| {
                let s =
                    signatures.iter().find(|s| s.signer == m.ed25519 && s.payload.report == record.report)?;
                Some(ReportSigner {
                    member: m.name.clone(),
                    address: m.eth_address,
                    signature: s.payload.signature,
                })
            })
            .collect();
        FinalReportView {
            by: record.finality.by,
            at: record.finality.at,
            report: record.report,
            signatures: signers,
            signatures_needed: quorum,
        }
    });
    let required = params.confirmations.max(1);
    let on_chain = state.store.publication(&id)?;
    let published =
        matches!((&on_chain, &final_report), (Some(p), Some(f)) if p.publishes(f.report.value, required));
    let publication = on_chain.map(|p| PublicationView {
        value: p.value,
        tx_hash: p.tx_hash,
        block_number: p.block_number,
        confirmations: p.confirmations,
        confirmations_required: required,
        publisher: p.publisher,
        confirmed: p.is_confirmed(required),
    });
    // The window as disputes left it (reopened by a review), and the phase they are in.
    let disputes = match &certificate {
        Some(_) => Some(super::disputes::disputes_machine(state, &spec, now)?),
        None => None,
    };
    let challenge_deadline = disputes.as_ref().and_then(|d| d.deadline()).or_else(|| {
        let hard = spec.maturity.saturating_add(params.hard_deadline_secs);
        certificate.as_ref().map(|c| c.proposal.payload.challenge_deadline.min(hard))
    });
    let phase = disputes.as_ref().map(fixd_dispute::SettlementDisputes::phase);
    let with_value = observations.iter().filter(|o| o.payload.computation.value.value().is_some()).count();
    let waiting_for = waiting::waiting_for(&waiting::Progress {
        now,
        observe_at: spec.observe_at(),
        published,
        with_value,
        quorum,
        certified: certificate.is_some(),
        phase,
        challenge_deadline,
        hard_deadline: spec.maturity.saturating_add(params.hard_deadline_secs),
        settle_secs: fixd_decision::publication::PublicationParams::from_protocol(params).settle_secs,
        report_signatures: final_report.as_ref().map(|f| f.signatures.len()),
        confirmations: publication.as_ref().map(|p| p.confirmations),
        confirmations_required: required,
    });
    let status = Status::of(published, final_report.is_some(), certificate.is_some(), own.is_some());
    Ok(SettlementView {
        id,
        status,
        window_start: spec.window_start(),
        maturity: spec.maturity,
        observe_at: spec.observe_at(),
        spec,
        observation: own,
        left_out: state.store.left_out(&id)?,
        observations,
        signed,
        // The value in force: an upheld review's replaces the first certificate's.
        value: disputes
            .as_ref()
            .and_then(|d| d.certified().map(|c| c.value))
            .or_else(|| certificate.as_ref().map(|c| c.proposal.payload.value)),
        certificate,
        challenge_deadline,
        final_report,
        publication,
        waiting_for,
        equivocations: state.store.equivocations(&id)?.into_iter().map(Into::into).collect(),
    })
}

/// How many settlements this node knows in each status, for the metrics.
pub fn count_by_status(state: &ApiState) -> Result<Vec<(String, i64)>, ApiError> {
    let mut counts: Vec<(String, i64)> = Status::ALL.iter().map(|s| (s.name().to_owned(), 0)).collect();
    for spec in state.store.settlements()? {
        let name = Status::read(state, &spec.id())?.name();
        if let Some(entry) = counts.iter_mut().find(|(n, _)| n == name) {
            entry.1 += 1;
        }
    }
    Ok(counts)
}

/// Settlements a status filter reads at most for one page; past them the page ends early, with
/// fewer than `limit` settlements (maybe none) and a `next_cursor` to go on from.
pub const MAX_SCANNED: usize = 10_000;

/// The query of `GET /v1/settlements`; another parameter is refused (400), as the API
/// document says.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// One page of `GET /v1/settlements`, by maturity then id.
#[derive(Debug, Serialize)]
pub struct SettlementPage {
    pub settlements: Vec<SettlementView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /v1/settlements?status=&limit=&cursor=`: settlements in (maturity, id) order. Only the
/// settlements of the page are built into views; a status filter reads each candidate's status
/// from the store (a few point reads) and stops when the page is full or after [`MAX_SCANNED`].
pub async fn list(
    State(state): State<std::sync::Arc<ApiState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<SettlementPage>, ApiError> {
    let page = super::page::PageQuery { limit: query.limit, cursor: query.cursor }.page()?;
    let wanted = query.status.as_deref().map(Status::parse).transpose()?;
    super::blocking(&state, move |state| {
        let mut specs = Vec::new();
        let (mut scanned, mut last, mut more, mut failed) = (0usize, page.after, false, None);
        state.store.settlements_by_maturity(page.after.map(|c| (c.0, c.1)), &mut |spec| {
            if specs.len() == page.limit || scanned == MAX_SCANNED {
                // One more exists past a full page: the page is not the last.
                more = true;
                return Ok(false);
            }
            scanned += 1;
            last = Some(super::page::Cursor(spec.maturity, spec.id()));
            match wanted.map(|w| Status::read(state, &spec.id()).map(|s| s == w)) {
                None | Some(Ok(true)) => specs.push(spec),
                Some(Ok(false)) => {}
                Some(Err(e)) => {
                    failed = Some(e);
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let now = crate::clock::now();
        let settlements = specs.into_iter().map(|spec| view(state, spec, now)).collect::<Result<_, _>>()?;
        let next_cursor = if more { last.map(|c| c.encode()) } else { None };
        Ok(Json(SettlementPage { settlements, next_cursor }))
    })
    .await
}

pub async fn show(
    State(state): State<std::sync::Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let id = parse_id(&id)?;
    let json = |bytes| {
        axum::response::IntoResponse::into_response(([(header::CONTENT_TYPE, "application/json")], bytes))
    };
    // The version first: a write made while the view is built moves it, and the next read
    // builds again.
    let from = super::views::BuiltFrom { version: state.store.version(&id), now: crate::clock::now() };
    if let Some(bytes) = state.views.get(&id, from) {
        return Ok(json(bytes));
    }
    // One settlement's keys, read from sled's cache in microseconds: served on this worker,
    // not handed to the blocking pool (a hop each way) as the scans of many settlements are.
    let spec = state.store.settlement(&id)?.ok_or_else(|| {
        ApiError::not_found("unknown_settlement", format!("this node has no settlement {id}"))
    })?;
    let view = view(&state, spec, from.now)?;
    let bytes = axum::body::Bytes::from(
        serde_json::to_vec(&view).map_err(|e| ApiError::internal(format!("cannot write the view: {e}")))?,
    );
    state.views.put(id, from, bytes.clone());
    Ok(json(bytes))
}

/// The latest maturity scheduled through the API: 9999-12-31 23:59:59 UTC, so that every
/// deadline counted from it (grace, challenge window, hard deadline) fits in unix seconds.
pub const MAX_MATURITY: u64 = 253_402_300_799;

/// The body of `POST /v1/settlements`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Unix seconds UTC.
    pub maturity: u64,
    /// Defaults to the CME CF-style parameters.
    #[serde(default)]
    pub params: MethodologyParams,
}

pub async fn schedule(
    State(state): State<std::sync::Arc<ApiState>>,
    headers: HeaderMap,
    body: Result<Json<ScheduleRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<SettlementView>), ApiError> {
    state.admin.authorise(&headers)?;
    let Json(request) = body.map_err(ApiError::from_json)?;
    request.params.validate().map_err(|e| ApiError::unprocessable("bad_params", e.to_string()))?;
    if request.maturity > MAX_MATURITY {
        return Err(ApiError::unprocessable(
            "bad_maturity",
            format!(
                "maturity {} is past {MAX_MATURITY} (9999-12-31 23:59:59 UTC); give unix seconds",
                request.maturity
            ),
        ));
    }
    let spec = SettlementSpec { index: Index::EthUsd, maturity: request.maturity, params: request.params };
    super::blocking(&state, move |state| schedule_spec(state, spec)).await
}

/// Stores a new settlement, unless `api.max_scheduled` have not matured yet.
fn schedule_spec(
    state: &ApiState,
    spec: SettlementSpec,
) -> Result<(StatusCode, Json<SettlementView>), ApiError> {
    let known = state.store.settlement(&spec.id())?.is_some();
    if !known {
        let now = crate::clock::now();
        // Those maturing after now, in maturity order from just past `now`: the count stops at
        // the limit.
        let mut pending = 0usize;
        state.store.settlements_by_maturity(Some((now, B256::repeat_byte(0xff))), &mut |_| {
            pending += 1;
            Ok(pending < state.admin.max_scheduled)
        })?;
        if pending >= state.admin.max_scheduled {
            return Err(ApiError::too_many(
                "too_many_scheduled",
                format!(
                    "this node holds {pending} settlements that have not matured, its api.max_scheduled; \
                     schedule more once some have matured, or raise the limit"
                ),
            ));
        }
        state.store.put_settlement(&spec)?;
        state.store.durable()?;
        state.events.publish(NodeEvent {
            settlement_id: spec.id(),
            kind: crate::events::EventKind::Scheduled,
            at: crate::clock::now(),
            detail: serde_json::json!({ "maturity": spec.maturity }),
        });
    }
    let status = if known { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(view(state, spec, crate::clock::now())?)))
}

/// `GET /v1/settlements/{id}/proof`: everything needed to verify the value in force offline
/// (`fixd verify`): the genesis, the spec, the certificate of the value the dispute history has
/// in force (a review's after an upheld dispute, else the first), and what it lists.
pub async fn proof(
    State(state): State<std::sync::Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<ProofBundle>, ApiError> {
    let id = parse_id(&id)?;
    super::blocking(&state, move |state| proof_of(state, id).map(Json)).await
}

fn proof_of(state: &ApiState, id: B256) -> Result<ProofBundle, ApiError> {
    let spec = state.store.settlement(&id)?.ok_or_else(|| {
        ApiError::not_found("unknown_settlement", format!("this node has no settlement {id}"))
    })?;
    let first = state.store.certificate(&id)?.ok_or_else(|| {
        ApiError::not_found("not_certified", format!("settlement {id} is not certified yet; see its status"))
    })?;
    let in_force = super::disputes::disputes_machine(state, &spec, crate::clock::now())?
        .certified()
        .map(|c| c.proposal_hash);
    let certificate = match in_force {
        Some(hash) if hash != first.proposal.hash() => state
            .store
            .review_certificates(&id)?
            .into_iter()
            .map(|(_, c)| c)
            .find(|c| c.proposal.hash() == hash)
            .unwrap_or(first),
        _ => first,
    };
    let inputs: std::collections::BTreeSet<B256> =
        certificate.proposal.payload.inputs.iter().copied().collect();
    let observations =
        state.store.observations(&id)?.into_iter().filter(|o| inputs.contains(&o.hash())).collect();
    let review_votes =
        state.store.review_votes(&id)?.into_iter().filter(|v| inputs.contains(&v.hash())).collect();
    Ok(ProofBundle { genesis: (*state.genesis).clone(), spec, observations, certificate, review_votes })
}
