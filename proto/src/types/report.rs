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

/// The most reports a gossiped batch carries: about 2.6 M gas at 25,700 a report, under any
/// block's gas limit, and about 6 KB of gossip.
pub const MAX_BATCH_REPORTS: usize = 100;

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
    #[error("a batch of {0} reports; a gossiped batch carries at most {MAX_BATCH_REPORTS}")]
    TooMany(usize),
    #[error(
        "settlement {0} is out of order or repeated; a batch lists its settlements in ascending order, once each"
    )]
    Unordered(SettlementId),
}

impl FinalReportBatch {
    /// Checks the form every gossiped batch has: 1 to [`MAX_BATCH_REPORTS`] reports without
    /// bond outcomes, in ascending order of settlement, so that one set of reports makes one
    /// batch and one digest.
    pub fn check(&self) -> Result<(), BatchError> {
        if self.reports.is_empty() {
            return Err(BatchError::Empty);
        }
        if self.reports.len() > MAX_BATCH_REPORTS {
            return Err(BatchError::TooMany(self.reports.len()));
        }
        if let Some(report) = self.reports.iter().find(|r| !r.outcomes.is_empty()) {
            return Err(BatchError::HasOutcomes(report.settlement_id));
        }
        if let Some(pair) = self.reports.windows(2).find(|w| w[0].settlement_id >= w[1].settlement_id) {
            return Err(BatchError::Unordered(pair[1].settlement_id));
        }
        Ok(())
    }

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

/// One member's signature over a batch of final reports (EIP-712 `FinalReportBatch`), as
/// gossiped: the publisher of a turn signs the batch it will send, and each member that signed
/// every one of its reports signs the batch too. It decides nothing: each report in it is the
/// one its settlement decided, so it is not stored, and a batch that gathers too few signatures
/// is published report by report.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchSignature {
    pub batch: FinalReportBatch,
    pub signer: Address,
    pub signature: EthSignature,
}

impl Signable for BatchSignature {
    const TAG: &'static str = "fixd/v1/batch-signature";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(byte: u8) -> FinalReport {
        FinalReport {
            settlement_id: SettlementId::repeat_byte(byte),
            value: Wad::from_raw(u128::from(byte)),
            round: 0,
            outcomes: vec![],
        }
    }

    #[test]
    fn a_gossiped_batch_is_ascending_bounded_and_free_of_outcomes() {
        let batch = |bytes: &[u8]| FinalReportBatch { reports: bytes.iter().map(|&b| report(b)).collect() };
        assert_eq!(batch(&[1, 2, 7]).check(), Ok(()));
        assert_eq!(batch(&[]).check(), Err(BatchError::Empty));
        assert_eq!(batch(&[2, 1]).check(), Err(BatchError::Unordered(SettlementId::repeat_byte(1))));
        assert_eq!(batch(&[1, 1]).check(), Err(BatchError::Unordered(SettlementId::repeat_byte(1))));
        let full: Vec<u8> = (0..=MAX_BATCH_REPORTS as u8).collect();
        assert_eq!(batch(&full).check(), Err(BatchError::TooMany(MAX_BATCH_REPORTS + 1)));
        assert_eq!(batch(&full[..MAX_BATCH_REPORTS]).check(), Ok(()));
        let mut disputed = batch(&[1, 2]);
        disputed.reports[1].outcomes.push(BondOutcome::default());
        assert_eq!(disputed.check(), Err(BatchError::HasOutcomes(SettlementId::repeat_byte(2))));
        assert_eq!(disputed.packed(), Err(BatchError::HasOutcomes(SettlementId::repeat_byte(2))));
    }
}
