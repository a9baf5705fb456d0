//! Proposal, vote and certificate (DESIGN section 5.2-5.3).

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

use crate::signing::{Endorsement, Signable, Signed};
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
}

/// The round leader's proposed settlement value.
///
/// `round` counts every certification attempt of the settlement, including those reopened by an
/// upheld dispute, so "one signature per (settlement, round)" holds for the whole lifetime.
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

/// A member's endorsement of one proposal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Vote {
    pub settlement_id: SettlementId,
    pub round: u32,
    /// `keccak256(BCS(Signed<Proposal>))`.
    pub proposal_hash: B256,
}

/// A proposal and at least q distinct members' vote signatures over it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Certificate {
    pub proposal: Signed<Proposal>,
    /// Signatures over [`Vote`] `{settlement_id, round, proposal_hash}`, sorted by signer.
    pub votes: Vec<Endorsement>,
}

impl Signable for Proposal {
    const TAG: &'static str = "fixd/v1/proposal";
}
impl Signable for Vote {
    const TAG: &'static str = "fixd/v1/vote";
}
