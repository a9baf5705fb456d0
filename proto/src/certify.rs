//! The certification rules of DESIGN 5.2-5.3: what makes a proposal worth a vote and a
//! certificate worth trusting, checked offline from signed data alone.
//!
//! ```text
//!  genesis ──▶ committee, network_id          spec ──▶ settlement_id
//!                   │                                   │
//!  Signed<Observation> × k ──┐                          │
//!  Signed<Proposal> ─────────┼──▶ check_proposal ───────┘ (value = median, root, leader)
//!  Endorsement (votes) × m ──┴──▶ verify_certificate ──▶ certified value
//!  ProofBundle ───────────────────▶ verify_bundle ─────▶ certified value
//! ```
//!
//! # The rules, in the order they are checked
//!
//! A proposal ([`check_proposal`]):
//! 1. is for this settlement, and its source is [`ProposalSource::Observations`] (a reviewed value
//!    is certified from review votes: see the review rules below);
//! 2. is signed by a committee member, and that member is the round's leader
//!    ([`Committee::leader`]);
//! 3. lists its `inputs` strictly ascending (sorted, no repeats), and `inputs_root` is their
//!    [`merkle_root`];
//! 4. every input is the [`Signed::hash`] of one of the given observations; each of those is of
//!    this settlement, signed by a member, and no member appears twice;
//! 5. at least q = ⌊2n/3⌋+1 of those observations carry a **value**. Observations that say "no value"
//!    may be listed (they are signed statements and stay auditable) but count neither toward q
//!    nor toward the median: DESIGN 4.7 asks for the median of node values from at least a quorum
//!    of distinct members, and a "no value" is not a node value;
//! 6. `value` is [`settlement_value`] of those values, exactly;
//! 7. `challenge_deadline ≥ proposed_at`; and when a clock reading `now` is given,
//!    `|proposed_at − now| ≤ max_skew`. Whether the deadline is the *right* distance after
//!    `proposed_at` is the node's policy ([`check_challenge_deadline`]), not a validity rule: a
//!    third party checks a certificate long after the fact and cannot know the node's clock;
//! 8. every signature (the proposal's and the observations') verifies, each checked by
//!    [`verify_many`]; the first bad one is named.
//!
//! A certificate ([`verify_certificate`]) is a proposal passing 1-6 and 8 (no clock), a round
//! at or after the proposal's, plus votes that are all by members, by no member twice, sorted by
//! signer (its one canonical form), at least q of them, each a valid signature over the
//! precommit [`Certificate::precommit`]: `Vote { settlement_id, decision (from the proposal's
//! source), round, step: precommit, proposal_hash: Some(proposal.hash()) }`. The proposal,
//! observation and vote signatures are verified together in one batch.
//!
//! A round proposal ([`check_round_proposal`]) is the Tendermint frame around a candidate: signed
//! by its round's leader; fresh (no `pol_round`: the candidate is its own round's, by the same
//! signer) or a re-proposal (`candidate round ≤ pol_round < round`).
//!
//! Observations given but not listed in the inputs are ignored.
//!
//! A **review proposal** ([`check_review_proposal`]) certifies a dispute round's reviewed value
//! from the members' signed [`ReviewVote`]s instead of observations. Its rules are those above
//! with review votes for observations, plus: its source is [`ProposalSource::Review`] naming
//! the dispute under review; every listed vote reviews that dispute and the contested proposal
//! ([`ReviewTarget`]); and it lists **exactly q** votes, each with a value. Exactly q, because a
//! review is decided by the median of q values: with exactly q listed, every member feeds the
//! same q values to its dispute machine whatever order it holds them in. A review certificate
//! ([`verify_review_certificate`]) is such a proposal with q vote signatures over it, as above.

use std::collections::{BTreeSet, HashMap};

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::merkle::merkle_root;
use crate::methodology::settlement_value;
use crate::signing::{PublicKey, Signature, Signed, VerifyItem, signing_bytes, verify_many};
use crate::types::certificate::{Certificate, Proposal, ProposalSource, RoundProposal};
use crate::types::dispute::ReviewVote;
use crate::types::genesis::{Committee, Genesis, GenesisError};
use crate::types::observation::Observation;
use crate::types::report::FinalReport;
use crate::types::settlement::{SettlementId, SettlementSpec};
use crate::value::Wad;

/// Everything needed to verify a settlement value offline: the committee (genesis), what was
/// settled (spec), the certificate of the value in force, and what its proposal lists: the
/// signed observations of a first certificate, or the signed review votes of a review's
/// certificate (after an upheld dispute, the value that is published is the review's).
///
/// The bundle proves the value *for this genesis*: a verifier must check that
/// `genesis.network_id()` is the network it trusts (for example, that its committee matches the
/// contract's), since anyone can make a self-consistent bundle for a committee of their own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    pub genesis: Genesis,
    pub spec: SettlementSpec,
    pub observations: Vec<Signed<Observation>>,
    pub certificate: Certificate,
    /// The review votes a review certificate lists (empty for a first certificate; a bundle
    /// written before this field existed reads as empty).
    #[serde(default)]
    pub review_votes: Vec<Signed<ReviewVote>>,
}

/// The part a signer plays in what is being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Proposer,
    Observer,
    Voter,
    /// The author of a review vote.
    Reviewer,
}

/// What a review proposal reviews: one dispute of the certified proposal it contests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReviewTarget {
    pub dispute_id: B256,
    /// Hash of the contested `Signed<Proposal>`.
    pub contested: B256,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Proposer => "proposer",
            Role::Observer => "observer",
            Role::Voter => "voter",
            Role::Reviewer => "reviewer",
        })
    }
}

/// Why a proposal, certificate or proof bundle is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertifyError {
    #[error("the genesis is invalid: {0}")]
    InvalidGenesis(#[from] GenesisError),
    #[error("the committee is empty; the genesis must list its members")]
    EmptyCommittee,
    #[error("the proposal is for settlement {got}, but the spec's id is {expected}")]
    WrongSettlement { expected: SettlementId, got: SettlementId },
    #[error("the proposal's source is a dispute review; check it against its review votes")]
    UnsupportedSource,
    #[error("{signer} signed as {role} but is not a committee member")]
    NotAMember { signer: PublicKey, role: Role },
    #[error("round {round} is led by {expected}, but the proposal is signed by {got}")]
    WrongLeader { round: u32, expected: PublicKey, got: PublicKey },
    #[error("the proposal's inputs are not strictly ascending (sorted, without repeats)")]
    InputsNotSorted,
    #[error("the proposal's inputs_root is {got}, but the Merkle root of its inputs is {expected}")]
    WrongMerkleRoot { expected: B256, got: B256 },
    #[error("input {0} is not the hash of any given observation; supply that signed observation")]
    UnknownInput(B256),
    #[error("the observation by {signer} is for settlement {got}, not {expected}")]
    ForeignObservation { signer: PublicKey, expected: SettlementId, got: SettlementId },
    #[error("member {signer} appears twice as {role}; each member counts once")]
    DuplicateMember { signer: PublicKey, role: Role },
    #[error(
        "{have} listed observations carry a value, at least {need} (the quorum, more than 2n/3) are required"
    )]
    TooFewObservations { have: usize, need: usize },
    #[error("the proposal's value is {proposed}, but the median of its observations is {recomputed}")]
    WrongValue { proposed: Wad, recomputed: Wad },
    #[error("challenge_deadline {challenge_deadline} is before proposed_at {proposed_at}")]
    DeadlineBeforeProposal { proposed_at: u64, challenge_deadline: u64 },
    #[error("challenge_deadline is {got}, but proposed_at + challenge_period is {expected}")]
    WrongChallengeDeadline { expected: u64, got: u64 },
    #[error("proposed_at {proposed_at} is more than {max_skew} s from this clock's {now}; check NTP")]
    ClockSkew { proposed_at: u64, now: u64, max_skew: u64 },
    #[error("the certificate's votes are not sorted by signer")]
    VotesNotSorted,
    #[error("{have} valid votes, at least {need} (the quorum, more than 2n/3) are required")]
    TooFewVotes { have: usize, need: usize },
    #[error("the signature of {role} {signer} does not verify (strict ed25519) on this network")]
    BadSignature { signer: PublicKey, role: Role },
    #[error("the proposal's source is the observations; a review proposal names its dispute")]
    NotAReview,
    #[error("the review is of dispute {got}, but dispute {expected} is under review")]
    ReviewOfOtherDispute { expected: B256, got: B256 },
    #[error("the review vote by {signer} is for proposal {got}, but proposal {expected} is contested")]
    ReviewOfOtherProposal { signer: PublicKey, expected: B256, got: B256 },
    #[error("the review vote by {signer} is for settlement {got}, not {expected}")]
    ForeignReviewVote { signer: PublicKey, expected: SettlementId, got: SettlementId },
    #[error("the review vote by {signer} has no value; a review proposal lists only votes with one")]
    ReviewVoteWithoutValue { signer: PublicKey },
    #[error("a review proposal lists exactly {need} (q) review votes, this one lists {have}")]
    ReviewVoteCount { have: usize, need: usize },
    #[error("the certificate's precommits are of round {round}, before its proposal's round {proposed}")]
    CertificateBeforeProposal { round: u32, proposed: u32 },
    #[error("the round proposal's pol_round {pol_round} is not below its round {round}")]
    PolRoundNotBelow { pol_round: u32, round: u32 },
    #[error(
        "a fresh round proposal (no pol_round) carries its own round's candidate by its own signer; this \
         one carries round {candidate_round}'s for round {round}"
    )]
    NotFresh { round: u32, candidate_round: u32 },
    #[error(
        "a re-proposed candidate of round {candidate_round} cannot have a polka in the earlier round {pol_round}"
    )]
    PolkaBeforeCandidate { pol_round: u32, candidate_round: u32 },
    #[error(
        "the proposed final report (value {proposed:?}) is not the one this member's fold of the dispute history \
         makes (value {ours:?}); it prevotes nil until they agree"
    )]
    OtherReport { proposed: Option<Wad>, ours: Option<Wad> },
}

/// A signature still to verify, with whose it is.
struct Pending {
    signer: PublicKey,
    signature: Signature,
    message: Vec<u8>,
    role: Role,
}

/// The checks of [`check_proposal`] except the signatures, which it returns for one batch.
fn proposal_without_signatures(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
    observations: &[Signed<Observation>],
) -> Result<Vec<Pending>, CertifyError> {
    check_settlement(committee, spec, proposal)?;
    let p = &proposal.payload;
    let settlement_id = spec.id();
    if p.source != ProposalSource::Observations {
        return Err(CertifyError::UnsupportedSource);
    }
    let mut pending = check_header(committee, network_id, proposal)?;
    let by_hash: HashMap<B256, &Signed<Observation>> = observations.iter().map(|o| (o.hash(), o)).collect();
    let mut observers = BTreeSet::new();
    let mut values = Vec::with_capacity(p.inputs.len());
    for input in &p.inputs {
        let obs = by_hash.get(input).ok_or(CertifyError::UnknownInput(*input))?;
        if obs.payload.settlement_id != settlement_id {
            return Err(CertifyError::ForeignObservation {
                signer: obs.signer,
                expected: settlement_id,
                got: obs.payload.settlement_id,
            });
        }
        if committee.index_of(&obs.signer).is_none() {
            return Err(CertifyError::NotAMember { signer: obs.signer, role: Role::Observer });
        }
        if !observers.insert(obs.signer) {
            return Err(CertifyError::DuplicateMember { signer: obs.signer, role: Role::Observer });
        }
        values.extend(obs.payload.computation.value.value());
        pending.push(Pending {
            signer: obs.signer,
            signature: obs.signature,
            message: signing_bytes(network_id, &obs.payload),
            role: Role::Observer,
        });
    }
    let need = committee.q();
    if values.len() < need {
        return Err(CertifyError::TooFewObservations { have: values.len(), need });
    }
    check_value_and_deadline(p, &values)?;
    Ok(pending)
}

/// The committee exists and the proposal is for this settlement.
fn check_settlement(
    committee: &Committee,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
) -> Result<(), CertifyError> {
    if committee.n() == 0 {
        return Err(CertifyError::EmptyCommittee);
    }
    let settlement_id = spec.id();
    let got = proposal.payload.settlement_id;
    if got != settlement_id {
        return Err(CertifyError::WrongSettlement { expected: settlement_id, got });
    }
    Ok(())
}

/// What every proposal must be whatever its source: signed by the round's leader, with sorted
/// inputs under the right Merkle root. Returns the proposer's signature to verify.
fn check_header(
    committee: &Committee,
    network_id: &B256,
    proposal: &Signed<Proposal>,
) -> Result<Vec<Pending>, CertifyError> {
    let p = &proposal.payload;
    if committee.index_of(&proposal.signer).is_none() {
        return Err(CertifyError::NotAMember { signer: proposal.signer, role: Role::Proposer });
    }
    let leader = committee.members()[committee.leader(&p.settlement_id, p.round)].ed25519;
    if proposal.signer != leader {
        return Err(CertifyError::WrongLeader { round: p.round, expected: leader, got: proposal.signer });
    }
    if !p.inputs.windows(2).all(|w| w[0] < w[1]) {
        return Err(CertifyError::InputsNotSorted);
    }
    let root = merkle_root(&p.inputs);
    if p.inputs_root != root {
        return Err(CertifyError::WrongMerkleRoot { expected: root, got: p.inputs_root });
    }
    Ok(vec![Pending {
        signer: proposal.signer,
        signature: proposal.signature,
        message: signing_bytes(network_id, p),
        role: Role::Proposer,
    }])
}

/// `value` is the median of `values` exactly, and the deadline is not before the proposal.
fn check_value_and_deadline(p: &Proposal, values: &[Wad]) -> Result<(), CertifyError> {
    let recomputed = settlement_value(values).expect("at least q ≥ 1 values");
    if p.value != recomputed {
        return Err(CertifyError::WrongValue { proposed: p.value, recomputed });
    }
    if p.challenge_deadline < p.proposed_at {
        return Err(CertifyError::DeadlineBeforeProposal {
            proposed_at: p.proposed_at,
            challenge_deadline: p.challenge_deadline,
        });
    }
    Ok(())
}

/// The checks of [`check_review_proposal`] except the signatures, which it returns.
fn review_without_signatures(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
    target: &ReviewTarget,
    votes: &[Signed<ReviewVote>],
) -> Result<Vec<Pending>, CertifyError> {
    check_settlement(committee, spec, proposal)?;
    let p = &proposal.payload;
    let settlement_id = spec.id();
    match p.source {
        ProposalSource::Observations | ProposalSource::Report { .. } => return Err(CertifyError::NotAReview),
        ProposalSource::Review { dispute_id } if dispute_id != target.dispute_id => {
            return Err(CertifyError::ReviewOfOtherDispute { expected: target.dispute_id, got: dispute_id });
        }
        ProposalSource::Review { .. } => {}
    }
    let mut pending = check_header(committee, network_id, proposal)?;
    let by_hash: HashMap<B256, &Signed<ReviewVote>> = votes.iter().map(|v| (v.hash(), v)).collect();
    let mut reviewers = BTreeSet::new();
    let mut values = Vec::with_capacity(p.inputs.len());
    for input in &p.inputs {
        let vote = by_hash.get(input).ok_or(CertifyError::UnknownInput(*input))?;
        let v = &vote.payload;
        if v.settlement_id != settlement_id {
            return Err(CertifyError::ForeignReviewVote {
                signer: vote.signer,
                expected: settlement_id,
                got: v.settlement_id,
            });
        }
        if committee.index_of(&vote.signer).is_none() {
            return Err(CertifyError::NotAMember { signer: vote.signer, role: Role::Reviewer });
        }
        if !reviewers.insert(vote.signer) {
            return Err(CertifyError::DuplicateMember { signer: vote.signer, role: Role::Reviewer });
        }
        if v.dispute_id != target.dispute_id {
            return Err(CertifyError::ReviewOfOtherDispute {
                expected: target.dispute_id,
                got: v.dispute_id,
            });
        }
        if v.proposal_hash != target.contested {
            return Err(CertifyError::ReviewOfOtherProposal {
                signer: vote.signer,
                expected: target.contested,
                got: v.proposal_hash,
            });
        }
        let value = v.value.value().ok_or(CertifyError::ReviewVoteWithoutValue { signer: vote.signer })?;
        values.push(value);
        pending.push(Pending {
            signer: vote.signer,
            signature: vote.signature,
            message: signing_bytes(network_id, v),
            role: Role::Reviewer,
        });
    }
    let need = committee.q();
    if values.len() != need {
        return Err(CertifyError::ReviewVoteCount { have: values.len(), need });
    }
    check_value_and_deadline(p, &values)?;
    Ok(pending)
}

/// Checks that a review `proposal` of `target` deserves a vote: the rules of [`check_proposal`]
/// with review votes for observations (see the module docs). `votes` must include every vote
/// the proposal lists; others are ignored.
#[allow(clippy::too_many_arguments)]
pub fn check_review_proposal(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
    target: &ReviewTarget,
    votes: &[Signed<ReviewVote>],
    now: Option<u64>,
    max_skew: u64,
) -> Result<(), CertifyError> {
    let pending = review_without_signatures(committee, network_id, spec, proposal, target, votes)?;
    check_skew(&proposal.payload, now, max_skew)?;
    verify_pending(&pending)
}

/// What a review certificate reviews: its dispute, and the contested proposal that the review
/// votes it lists name. `None` for a first certificate, or when no listed vote is given.
pub fn review_target(certificate: &Certificate, votes: &[Signed<ReviewVote>]) -> Option<ReviewTarget> {
    let ProposalSource::Review { dispute_id } = certificate.proposal.payload.source else { return None };
    let listed = &certificate.proposal.payload.inputs;
    let contested = votes.iter().find(|v| listed.contains(&v.hash()))?.payload.proposal_hash;
    Some(ReviewTarget { dispute_id, contested })
}

/// Checks a review certificate of `target` and returns its reviewed value.
pub fn verify_review_certificate(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    certificate: &Certificate,
    target: &ReviewTarget,
    votes: &[Signed<ReviewVote>],
) -> Result<Wad, CertifyError> {
    let mut pending =
        review_without_signatures(committee, network_id, spec, &certificate.proposal, target, votes)?;
    push_votes(committee, network_id, certificate, &mut pending)?;
    verify_pending(&pending)?;
    Ok(certificate.proposal.payload.value)
}

fn check_skew(p: &Proposal, now: Option<u64>, max_skew: u64) -> Result<(), CertifyError> {
    if let Some(now) = now
        && p.proposed_at.abs_diff(now) > max_skew
    {
        return Err(CertifyError::ClockSkew { proposed_at: p.proposed_at, now, max_skew });
    }
    Ok(())
}

/// Verifies every `pending` signature and names the first bad one.
fn verify_pending(pending: &[Pending]) -> Result<(), CertifyError> {
    let items: Vec<VerifyItem<'_>> = pending
        .iter()
        .map(|p| VerifyItem { signer: &p.signer, signature: &p.signature, message: &p.message })
        .collect();
    match verify_many(&items).iter().position(Result::is_err) {
        None => Ok(()),
        Some(i) => Err(CertifyError::BadSignature { signer: pending[i].signer, role: pending[i].role }),
    }
}

/// Checks that `proposal` deserves a vote (see the module docs for the rules and their order).
///
/// `observations` must include every observation the proposal lists; others are ignored.
/// `now`, when given, is the clock reading to hold `proposed_at` against, within `max_skew`
/// seconds either way. A node passes the time the proposal *arrived*, not the time it checks it.
pub fn check_proposal(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
    observations: &[Signed<Observation>],
    now: Option<u64>,
    max_skew: u64,
) -> Result<(), CertifyError> {
    let pending = proposal_without_signatures(committee, network_id, spec, proposal, observations)?;
    check_skew(&proposal.payload, now, max_skew)?;
    verify_pending(&pending)
}

/// [`check_proposal`] without a clock and without verifying any signature: for a member whose
/// network layer verified every observation on arrival, and that verifies the proposal's own
/// signature once. Returns the same errors as [`check_proposal`] otherwise.
pub fn check_proposal_content(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
    observations: &[Signed<Observation>],
) -> Result<(), CertifyError> {
    proposal_without_signatures(committee, network_id, spec, proposal, observations).map(drop)
}

/// [`check_review_proposal`] without a clock and without verifying any signature (see
/// [`check_proposal_content`]).
pub fn check_review_proposal_content(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
    target: &ReviewTarget,
    votes: &[Signed<ReviewVote>],
) -> Result<(), CertifyError> {
    review_without_signatures(committee, network_id, spec, proposal, target, votes).map(drop)
}

/// Checks a final-report candidate (source [`ProposalSource::Report`]) without its
/// signatures: for this settlement, by its round's leader, and listing no inputs. Whether its
/// report is the right one is each member's own fold of the dispute history.
pub fn check_report_proposal_content(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    proposal: &Signed<Proposal>,
) -> Result<(), CertifyError> {
    check_settlement(committee, spec, proposal)?;
    if !matches!(proposal.payload.source, ProposalSource::Report { .. }) {
        return Err(CertifyError::UnsupportedSource);
    }
    if !proposal.payload.inputs.is_empty() {
        return Err(CertifyError::UnknownInput(proposal.payload.inputs[0]));
    }
    check_header(committee, network_id, proposal).map(drop)
}

/// Checks the certificate of a final report (q precommits for a report candidate) and returns
/// the report the committee decided.
pub fn verify_report_certificate(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    certificate: &Certificate,
) -> Result<FinalReport, CertifyError> {
    let proposal = &certificate.proposal;
    check_report_proposal_content(committee, network_id, spec, proposal)?;
    let mut pending = check_header(committee, network_id, proposal)?;
    push_votes(committee, network_id, certificate, &mut pending)?;
    verify_pending(&pending)?;
    proposal.payload.report().ok_or(CertifyError::UnsupportedSource)
}

/// The node's deadline policy (DESIGN 5.2-5.3): an honest leader sets
/// `challenge_deadline = proposed_at + challenge_period_secs` from one clock reading, so a member
/// that has checked `proposed_at` against its own clock ([`check_proposal`] with `now`) knows the
/// deadline is within skew of `its now + challenge_period_secs`. Not part of certificate validity.
pub fn check_challenge_deadline(proposal: &Proposal, challenge_period_secs: u64) -> Result<(), CertifyError> {
    let expected = proposal.proposed_at.saturating_add(challenge_period_secs);
    if proposal.challenge_deadline != expected {
        return Err(CertifyError::WrongChallengeDeadline { expected, got: proposal.challenge_deadline });
    }
    Ok(())
}

/// Checks a certificate and returns its certified value. The proposal is checked as by
/// [`check_proposal`] without a clock; then the votes (see the module docs). All signatures are
/// verified in one batch.
pub fn verify_certificate(
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    certificate: &Certificate,
    observations: &[Signed<Observation>],
) -> Result<Wad, CertifyError> {
    let proposal = &certificate.proposal;
    let mut pending = proposal_without_signatures(committee, network_id, spec, proposal, observations)?;
    push_votes(committee, network_id, certificate, &mut pending)?;
    verify_pending(&pending)?;
    Ok(proposal.payload.value)
}

/// Checks a certificate's votes (members, once each, sorted, at least q) and adds their
/// signatures to `pending`.
fn push_votes(
    committee: &Committee,
    network_id: &B256,
    certificate: &Certificate,
    pending: &mut Vec<Pending>,
) -> Result<(), CertifyError> {
    let proposed = certificate.proposal.payload.round;
    if certificate.round < proposed {
        return Err(CertifyError::CertificateBeforeProposal { round: certificate.round, proposed });
    }
    let message = signing_bytes(network_id, &certificate.precommit());
    push_endorsements(committee, &message, &certificate.votes, pending)
}

/// Checks q or more endorsements of one message (members, once each, sorted by signer) and adds
/// their signatures to `pending`.
fn push_endorsements(
    committee: &Committee,
    message: &[u8],
    endorsements: &[crate::signing::Endorsement],
    pending: &mut Vec<Pending>,
) -> Result<(), CertifyError> {
    let mut voters = BTreeSet::new();
    for endorsement in endorsements {
        if committee.index_of(&endorsement.signer).is_none() {
            return Err(CertifyError::NotAMember { signer: endorsement.signer, role: Role::Voter });
        }
        if !voters.insert(endorsement.signer) {
            return Err(CertifyError::DuplicateMember { signer: endorsement.signer, role: Role::Voter });
        }
        pending.push(Pending {
            signer: endorsement.signer,
            signature: endorsement.signature,
            message: message.to_vec(),
            role: Role::Voter,
        });
    }
    if !endorsements.windows(2).all(|w| w[0].signer < w[1].signer) {
        return Err(CertifyError::VotesNotSorted);
    }
    let need = committee.q();
    if voters.len() < need {
        return Err(CertifyError::TooFewVotes { have: voters.len(), need });
    }
    Ok(())
}

/// Checks the frame of a round proposal, before its candidate is checked ([`check_proposal`] or
/// [`check_review_proposal`]): it is signed by a member who leads its round; a fresh one (no
/// `pol_round`) carries a candidate of its own round by its own signer; a re-proposal names a
/// `pol_round` below its round and at or after its candidate's round. Its signature is checked
/// as well.
pub fn check_round_proposal(
    committee: &Committee,
    network_id: &B256,
    proposal: &Signed<RoundProposal>,
) -> Result<(), CertifyError> {
    let rp = &proposal.payload;
    let candidate = &rp.proposal;
    if committee.index_of(&proposal.signer).is_none() {
        return Err(CertifyError::NotAMember { signer: proposal.signer, role: Role::Proposer });
    }
    let leader = committee.members()[committee.leader(&candidate.payload.settlement_id, rp.round)].ed25519;
    if proposal.signer != leader {
        return Err(CertifyError::WrongLeader { round: rp.round, expected: leader, got: proposal.signer });
    }
    let candidate_round = candidate.payload.round;
    match rp.pol_round {
        None if candidate_round != rp.round
            || candidate.signer != proposal.signer
            || !rp.polka.is_empty() =>
        {
            return Err(CertifyError::NotFresh { round: rp.round, candidate_round });
        }
        Some(pol_round) if pol_round >= rp.round => {
            return Err(CertifyError::PolRoundNotBelow { pol_round, round: rp.round });
        }
        Some(pol_round) if pol_round < candidate_round => {
            return Err(CertifyError::PolkaBeforeCandidate { pol_round, candidate_round });
        }
        _ => {}
    }
    let mut pending = vec![Pending {
        signer: proposal.signer,
        signature: proposal.signature,
        message: signing_bytes(network_id, rp),
        role: Role::Proposer,
    }];
    if let Some(prevote) = rp.polka_prevote() {
        push_endorsements(committee, &signing_bytes(network_id, &prevote), &rp.polka, &mut pending)?;
    }
    verify_pending(&pending)
}

/// Checks a [`ProofBundle`] on its own and returns the certified value: the genesis is valid, the
/// certificate is for the bundle's spec, and [`verify_certificate`] passes with the bundle's
/// committee, network id and observations. See [`ProofBundle`] for what the caller must still
/// check (that the genesis is the one it trusts).
pub fn verify_bundle(bundle: &ProofBundle) -> Result<Wad, CertifyError> {
    bundle.genesis.validate()?;
    let committee = bundle.genesis.committee();
    let network_id = bundle.genesis.network_id();
    let expected = bundle.spec.id();
    let got = bundle.certificate.proposal.payload.settlement_id;
    if got != expected {
        return Err(CertifyError::WrongSettlement { expected, got });
    }
    match bundle.certificate.proposal.payload.source {
        ProposalSource::Report { .. } => Err(CertifyError::UnsupportedSource),
        ProposalSource::Observations => verify_certificate(
            &committee,
            &network_id,
            &bundle.spec,
            &bundle.certificate,
            &bundle.observations,
        ),
        ProposalSource::Review { .. } => {
            let listed = bundle.certificate.proposal.payload.inputs.first().copied().unwrap_or_default();
            let target = review_target(&bundle.certificate, &bundle.review_votes)
                .ok_or(CertifyError::UnknownInput(listed))?;
            verify_review_certificate(
                &committee,
                &network_id,
                &bundle.spec,
                &bundle.certificate,
                &target,
                &bundle.review_votes,
            )
        }
    }
}
