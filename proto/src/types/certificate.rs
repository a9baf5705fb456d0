//! Proposal, round proposal, vote and certificate (DESIGN section 5.2-5.3): the messages of
//! the Tendermint instance that decides each of a settlement's values.

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::signing::{Endorsement, Signable, Signed};
use crate::types::report::{BondOutcome, FinalReport};
use crate::types::settlement::SettlementId;
use crate::value::Wad;

/// What a proposal's value was derived from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalSource {
    /// The median of the node values in the listed observations (`inputs` are observation
    /// hashes).
    Observations,
    /// The reviewed value of an upheld dispute (`inputs` are review-vote hashes).
    Review { dispute_id: B256 },
    /// The settlement's final report, as its proposer's fold of the agreed dispute history makes
    /// it: `value` is the report's value, `inputs` are empty. Members sign the report (EIP-712)
    /// only once a decision of the committee has chosen it ([`Proposal::report`]).
    Report { round: u32, outcomes: Vec<BondOutcome> },
}

/// A candidate settlement value, built and signed by the leader of the round it was first
/// proposed in (`round`). It is the value a decision decides: its id is its
/// [`Signed::hash`], so a later round's leader re-proposes it unchanged
/// ([`RoundProposal::pol_round`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Proposal {
    pub settlement_id: SettlementId,
    pub round: u32,
    pub value: Wad,
    pub source: ProposalSource,
    /// Hashes of the signed inputs (see [`ProposalSource`]), sorted ascending, no repeats.
    pub inputs: Vec<B256>,
    /// [`crate::merkle::merkle_root`] of `inputs`.
    pub inputs_root: B256,
    /// Unix seconds at which the challenge window closes.
    pub challenge_deadline: u64,
    /// Unix seconds at which the leader proposed.
    pub proposed_at: u64,
}

impl Proposal {
    /// The final report a report candidate carries; `None` for a value's candidate.
    pub fn report(&self) -> Option<FinalReport> {
        match &self.source {
            ProposalSource::Report { round, outcomes } => Some(FinalReport {
                settlement_id: self.settlement_id,
                value: self.value,
                round: *round,
                outcomes: outcomes.clone(),
            }),
            _ => None,
        }
    }
}

/// Which of a settlement's decisions a vote or round proposal belongs to. Each is its own
/// Tendermint instance, with rounds counted from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionId {
    /// The first certified value, from the members' observations.
    Value,
    /// The review of one dispute round, from the members' review votes.
    Review { dispute_id: B256 },
    /// The final report.
    Report,
}

impl DecisionId {
    /// The decision a proposal of this source is for.
    pub fn of_source(source: &ProposalSource) -> Self {
        match source {
            ProposalSource::Observations => DecisionId::Value,
            ProposalSource::Review { dispute_id } => DecisionId::Review { dispute_id: *dispute_id },
            ProposalSource::Report { .. } => DecisionId::Report,
        }
    }
}

/// The two votes of a Tendermint round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteStep {
    Prevote,
    Precommit,
}

/// A round leader's proposal of a candidate in its round: a fresh candidate it built and signed
/// for this round (`pol_round` none, `proposal.round == round`, `polka` empty), or one that q
/// members prevoted in round `pol_round < round`, re-proposed unchanged with those q prevotes
/// (`polka`, sorted by signer): a member that missed some of them still sees the polka.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoundProposal {
    pub round: u32,
    pub pol_round: Option<u32>,
    pub proposal: Signed<Proposal>,
    /// Signatures over the prevote `{settlement_id, decision, pol_round, prevote,
    /// Some(proposal.hash())}`.
    pub polka: Vec<Endorsement>,
}

impl RoundProposal {
    /// The decision it is for, from its candidate's source.
    pub fn decision(&self) -> DecisionId {
        DecisionId::of_source(&self.proposal.payload.source)
    }

    /// The prevote each polka signature is over; `None` for a fresh proposal.
    pub fn polka_prevote(&self) -> Option<Vote> {
        Some(Vote {
            settlement_id: self.proposal.payload.settlement_id,
            decision: self.decision(),
            round: self.pol_round?,
            step: VoteStep::Prevote,
            proposal_hash: Some(self.proposal.hash()),
        })
    }
}

/// A member's prevote or precommit in one round of one decision: for a candidate
/// (`proposal_hash`, the [`Signed::hash`] of its `Signed<Proposal>`) or for nothing (nil).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    pub settlement_id: SettlementId,
    pub decision: DecisionId,
    pub round: u32,
    pub step: VoteStep,
    pub proposal_hash: Option<B256>,
}

/// A decided candidate: at least q distinct members' precommits for it in one round.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Certificate {
    pub proposal: Signed<Proposal>,
    /// The round the precommits are of (at or after `proposal.round`).
    pub round: u32,
    /// Signatures over [`Vote`] `{settlement_id, decision of the proposal's source, round,
    /// precommit, proposal_hash: Some(proposal.hash())}`, sorted by signer.
    pub votes: Vec<Endorsement>,
}

impl Certificate {
    /// The precommit each of the certificate's signatures is over.
    pub fn precommit(&self) -> Vote {
        let p = &self.proposal.payload;
        Vote {
            settlement_id: p.settlement_id,
            decision: DecisionId::of_source(&p.source),
            round: self.round,
            step: VoteStep::Precommit,
            proposal_hash: Some(self.proposal.hash()),
        }
    }
}

impl Signable for Proposal {
    const TAG: &'static str = "fixd/v1/proposal";
}
impl Signable for RoundProposal {
    const TAG: &'static str = "fixd/v1/round-proposal";
}
impl Signable for Vote {
    const TAG: &'static str = "fixd/v1/vote";
}
