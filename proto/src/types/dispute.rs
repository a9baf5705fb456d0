//! Disputes, review votes and arbitrator rulings (DESIGN section 6).

use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::signing::Signable;
use crate::types::observation::NodeValue;
use crate::types::report::EthSignature;
use crate::types::settlement::SettlementId;
use crate::value::Wad;

/// Why a disputer contests a certified value. Variant order is part of the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeReason {
    /// The median does not follow from the certified observations.
    Miscomputed,
    /// The observations rest on wrong trades (a bust, a bad print).
    BadData,
    /// Trades that should have counted are missing.
    MissingData,
    Other,
}

impl DisputeReason {
    /// The code used in the EIP-712 struct (`uint8`).
    pub const fn code(self) -> u8 {
        match self {
            DisputeReason::Miscomputed => 0,
            DisputeReason::BadData => 1,
            DisputeReason::MissingData => 2,
            DisputeReason::Other => 3,
        }
    }

    /// The reason for an EIP-712 code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(DisputeReason::Miscomputed),
            1 => Some(DisputeReason::BadData),
            2 => Some(DisputeReason::MissingData),
            3 => Some(DisputeReason::Other),
            _ => None,
        }
    }
}

/// A bonded challenge of a certified proposal, signed (EIP-712) by the disputer's Ethereum key.
///
/// The disputer picks `dispute_id` (any unused `bytes32`), escrows `bond_wei` on-chain with
/// `postBond(settlement_id, dispute_id)` in transaction `bond_tx`, and then submits this.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Dispute {
    pub settlement_id: SettlementId,
    pub dispute_id: B256,
    /// Hash of the certified `Signed<Proposal>` being contested.
    pub proposal_hash: B256,
    /// The value the disputer believes is right, if it claims one.
    pub claimed_value: Option<Wad>,
    pub reason: DisputeReason,
    /// Free text or links.
    pub evidence: String,
    /// The escrowed bond in wei.
    #[serde(with = "crate::value::wei")]
    pub bond_wei: u128,
    /// The transaction that escrowed the bond.
    pub bond_tx: B256,
    pub disputer: Address,
}

/// Where a dispute's bond sits on-chain, as each member reads it back before it accepts the
/// dispute: the `BondPosted` event's position, and the insurance pool at its block.
///
/// The block timestamp and the position order disputes the same way on every member, whatever
/// order they arrived in; the block hash lets a member notice that a reorg removed the bond.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DisputeEscrow {
    pub block_number: u64,
    pub block_hash: B256,
    /// Unix seconds of the bond's block.
    pub block_timestamp: u64,
    /// The `BondPosted` log's index in its block.
    pub log_index: u64,
    /// The settlement's reward reservation (`reservation(settlementId)`), wei: made by its first
    /// bond and fixed until publication, the budget its rewards are capped by.
    #[serde(with = "crate::value::wei")]
    pub pool_wei: u128,
}

/// A member's review of one dispute (round 1, the committee review).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReviewVote {
    pub settlement_id: SettlementId,
    pub dispute_id: B256,
    /// Hash of the contested `Signed<Proposal>`.
    pub proposal_hash: B256,
    /// Whether the certified median recomputes exactly from the certified observations.
    pub median_recomputes: bool,
    /// The member's value recomputed from its archive and the venues' historical trades.
    pub value: NodeValue,
    /// Digest of the trades the recomputation used.
    pub trade_digest: B256,
}

/// The arbitrator's final word on an escalated dispute, signed (EIP-712) by the arbitrator
/// address in genesis.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ArbitratorRuling {
    pub settlement_id: SettlementId,
    pub dispute_id: B256,
    /// The value that stands.
    pub value: Wad,
    /// Whether the dispute is upheld (the disputer is paid) or rejected (the bond is forfeit).
    pub upheld: bool,
}

/// A dispute as a member accepted it, signed (ed25519) by that member and gossiped to the
/// others: the disputer's signed dispute, where its bond sits on-chain, and when the member
/// accepted it.
///
/// `accepted_at` is the dispute's agreed time: every member feeds it to the dispute machine
/// at that moment, so they agree on whether it came before the window's deadline. Receivers
/// check the disputer's EIP-712 signature and the escrow again on their own chain RPC.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelayedDispute {
    pub dispute: SignedDispute,
    pub escrow: DisputeEscrow,
    /// Unix seconds, the accepting member's clock.
    pub accepted_at: u64,
}

/// An arbitrator's ruling as a member accepted it, signed (ed25519) by that member and
/// gossiped. `accepted_at` is its agreed time, as for [`RelayedDispute`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RelayedRuling {
    pub ruling: SignedRuling,
    /// Unix seconds, the accepting member's clock.
    pub accepted_at: u64,
}

/// A signed dispute as submitted to a node's API.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedDispute {
    pub dispute: Dispute,
    pub signature: EthSignature,
}

/// A signed arbitrator ruling.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedRuling {
    pub ruling: ArbitratorRuling,
    pub signature: EthSignature,
}

impl Signable for ReviewVote {
    const TAG: &'static str = "fixd/v1/review-vote";
}
/// A dispute (or ruling) a member accepted, relayed to the others under its ed25519 signature.
impl Signable for RelayedDispute {
    const TAG: &'static str = "fixd/v1/relayed-dispute";
}
impl Signable for RelayedRuling {
    const TAG: &'static str = "fixd/v1/relayed-ruling";
}
