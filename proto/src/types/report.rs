//! The final report published on-chain (DESIGN section 5.5).

use alloy_primitives::{Address, B256, FixedBytes};
use serde::{Deserialize, Serialize};

use crate::signing::Signable;
use crate::types::settlement::SettlementId;
use crate::value::Wad;

/// What happens to one escrowed bond when the report is accepted.
///
/// Conservation, checked by the contract: `bond = refund + pooled + burned`. The `reward` is paid
/// from the insurance pool on top of the refund.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BondOutcome {
    pub dispute_id: B256,
    pub disputer: Address,
    /// Escrowed amount, wei.
    #[serde(with = "crate::value::wei")]
    pub bond: u128,
    /// Returned to the disputer, wei.
    #[serde(with = "crate::value::wei")]
    pub refund: u128,
    /// Paid to the disputer from the insurance pool, wei.
    #[serde(with = "crate::value::wei")]
    pub reward: u128,
    /// Added to the insurance pool, wei.
    #[serde(with = "crate::value::wei")]
    pub pooled: u128,
    /// Burned, wei.
    #[serde(with = "crate::value::wei")]
    pub burned: u128,
}

/// The final settlement value and the bond outcomes, signed by each member's secp256k1 key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FinalReport {
    pub settlement_id: SettlementId,
    pub value: Wad,
    /// The certification the value comes from: 0 for the first certified value, the dispute
    /// round for a value a review certified (a ruling keeps the round of the value in force).
    pub round: u32,
    /// One entry per dispute, in filing order.
    pub outcomes: Vec<BondOutcome>,
}

/// Final reports signed at once, for the contract's `publishBatch`: one set of committee
/// signatures over many settlements that mature together. Each report is the one its
/// settlement decided; the batch adds no decision of its own.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FinalReportBatch {
    pub reports: Vec<FinalReport>,
}

/// Bytes per report in the contract's packed `publishBatch(bytes reports, …)`.
pub const PACKED_REPORT_LENGTH: usize = 52;

/// A batch `publishBatch` cannot carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("a batch needs at least one report")]
    Empty,
    #[error(
        "the report of settlement {0} settles bonds; a batch carries only reports without bond \
         outcomes: publish it alone with `publish`"
    )]
    HasOutcomes(SettlementId),
}

impl FinalReportBatch {
    /// The reports as `publishBatch` takes them: [`PACKED_REPORT_LENGTH`] bytes each, back to
    /// back, `settlementId` ‖ `value` (16 bytes, big-endian) ‖ `round` (4 bytes, big-endian).
    /// Only reports without bond outcomes fit: the contract hashes each as
    /// `FinalReport{…, outcomes: []}`.
    pub fn packed(&self) -> Result<Vec<u8>, BatchError> {
        if self.reports.is_empty() {
            return Err(BatchError::Empty);
        }
        let mut packed = Vec::with_capacity(self.reports.len() * PACKED_REPORT_LENGTH);
        for report in &self.reports {
            if !report.outcomes.is_empty() {
                return Err(BatchError::HasOutcomes(report.settlement_id));
            }
            packed.extend_from_slice(report.settlement_id.as_slice());
            packed.extend_from_slice(&report.value.raw().to_be_bytes());
            packed.extend_from_slice(&report.round.to_be_bytes());
        }
        Ok(packed)
    }
}

/// A 65-byte secp256k1 signature (r ‖ s ‖ v), as `ecrecover` takes it.
pub type EthSignature = FixedBytes<65>;

/// One member's signature over a final report, as gossiped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReportSignature {
    pub report: FinalReport,
    pub signer: Address,
    pub signature: EthSignature,
}

/// A member's secp256k1 signature over a final report travels inside its ed25519 signature, so
/// the gossip layer authenticates its author like every other message.
impl Signable for ReportSignature {
    const TAG: &'static str = "fixd/v1/report-signature";
}
