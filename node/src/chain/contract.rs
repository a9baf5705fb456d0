//! Bindings to `contracts/SettlementOracle.sol`, from its committed artifact, and the
//! conversions from the proto types the committee signs.

use std::time::Duration;

use alloy::primitives::{Address, Bytes};
use alloy::providers::Provider;
use fixd_proto::eip712::{self, EthSignature, TypedData};
use fixd_proto::types::report::{BatchError, FinalReport, FinalReportBatch};

use super::ChainError;

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    SettlementOracle,
    "../contracts/out/SettlementOracle.json"
);

impl From<eip712::sol::BondOutcome> for SettlementOracle::BondOutcome {
    fn from(o: eip712::sol::BondOutcome) -> Self {
        Self {
            disputeId: o.disputeId,
            disputer: o.disputer,
            bond: o.bond,
            refund: o.refund,
            reward: o.reward,
            pooled: o.pooled,
            burned: o.burned,
        }
    }
}

impl From<eip712::sol::FinalReport> for SettlementOracle::FinalReport {
    fn from(r: eip712::sol::FinalReport) -> Self {
        Self {
            settlementId: r.settlementId,
            value: r.value,
            round: r.round,
            outcomes: r.outcomes.into_iter().map(Into::into).collect(),
        }
    }
}

/// The report as the contract's `publish` takes it: the same fields the members signed.
pub fn report_to_sol(report: &FinalReport) -> SettlementOracle::FinalReport {
    report.to_sol().into()
}

/// The reports as `publishBatch` takes them ([`FinalReportBatch::packed`]).
pub fn packed_batch(batch: &FinalReportBatch) -> Result<Bytes, BatchError> {
    batch.packed().map(Bytes::from)
}

/// The signatures as `publish` takes them: 65 bytes `r ‖ s ‖ v` each, packed back to back in
/// strictly ascending order of signer address. A signer listed twice keeps one signature.
pub fn ordered_signatures(signatures: &[(Address, EthSignature)]) -> Bytes {
    let mut sorted = signatures.to_vec();
    sorted.sort_by_key(|(signer, _)| *signer);
    sorted.dedup_by_key(|(signer, _)| *signer);
    sorted.iter().flat_map(|(_, signature)| signature.as_slice().iter().copied()).collect::<Vec<u8>>().into()
}

/// How the contract is deployed: its owner, first committee and rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// Proposes committee changes and moves ownership (in two steps).
    pub owner: Address,
    /// The committee's report signers, any order (sorted here).
    pub members: Vec<Address>,
    /// Signatures a report needs: the committee's q.
    pub threshold: usize,
    /// Seconds between proposing a committee and its taking effect. Production: above the
    /// hard deadline, so the old committee can publish what it certified.
    pub committee_delay_secs: u64,
    /// The genesis `reward_bp`: a settlement's first bond reserves this share of itself.
    pub reward_bp: u32,
}

/// Deploys `SettlementOracle` from the provider's default sender with `deployment`'s owner,
/// committee and rules, and waits up to `timeout` for the receipt. Returns the contract's
/// address and the block it was deployed in (the genesis `contract_block`).
pub async fn deploy<P: Provider>(
    provider: &P,
    deployment: &Deployment,
    timeout: Duration,
) -> Result<(Address, u64), ChainError> {
    let mut members = deployment.members.clone();
    members.sort();
    let pending = SettlementOracle::deploy_builder(
        provider,
        deployment.owner,
        members,
        alloy::primitives::U256::from(deployment.threshold),
        alloy::primitives::U256::from(deployment.committee_delay_secs),
        alloy::primitives::U256::from(deployment.reward_bp),
    )
    .send()
    .await?;
    let tx = *pending.tx_hash();
    let receipt = successful_receipt(pending, timeout).await?;
    let address = receipt.contract_address.ok_or(ChainError::NoContract(tx))?;
    Ok((address, receipt.block_number.unwrap_or_default()))
}

/// Waits up to `timeout` for a sent transaction's receipt; a revert is an error.
pub async fn successful_receipt(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
    timeout: Duration,
) -> Result<alloy::rpc::types::TransactionReceipt, ChainError> {
    let tx = *pending.tx_hash();
    let receipt = tokio::time::timeout(timeout, pending.get_receipt())
        .await
        .map_err(|_| ChainError::ReceiptTimeout(timeout))??;
    if receipt.status() { Ok(receipt) } else { Err(ChainError::Reverted(tx)) }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;
    use alloy::signers::local::PrivateKeySigner;
    use fixd_proto::types::report::BondOutcome;
    use fixd_proto::value::Wad;

    use super::*;

    #[test]
    fn report_converts_field_for_field() {
        let report = FinalReport {
            settlement_id: B256::repeat_byte(7),
            value: Wad::parse("2598.5").unwrap(),
            round: 2,
            outcomes: vec![BondOutcome {
                dispute_id: B256::repeat_byte(9),
                disputer: Address::repeat_byte(3),
                bond: 11,
                refund: 1,
                reward: 2,
                pooled: 5,
                burned: 5,
            }],
        };
        let sol = report_to_sol(&report);
        assert_eq!(sol.settlementId, report.settlement_id);
        assert_eq!(sol.value, alloy::primitives::U256::from(report.value.raw()));
        assert_eq!(sol.round, 2);
        let o = &sol.outcomes[0];
        assert_eq!((o.disputeId, o.disputer), (B256::repeat_byte(9), Address::repeat_byte(3)));
        assert_eq!(
            [o.bond, o.refund, o.reward, o.pooled, o.burned].map(|x| x.to::<u128>()),
            [11, 1, 2, 5, 5]
        );
    }

    #[test]
    fn signatures_are_ordered_by_signer_and_deduplicated() {
        let keys: Vec<_> =
            (1..=3u8).map(|b| PrivateKeySigner::from_bytes(&B256::repeat_byte(b)).unwrap()).collect();
        let mut pairs: Vec<_> =
            keys.iter().map(|k| (k.address(), EthSignature::repeat_byte(k.address()[0]))).collect();
        pairs.push(pairs[0]);
        pairs.reverse();
        let ordered = ordered_signatures(&pairs);
        let mut addresses: Vec<_> = keys.iter().map(|k| k.address()).collect();
        addresses.sort();
        let expected: Vec<u8> = addresses.iter().flat_map(|a| vec![a[0]; 65]).collect();
        assert_eq!(ordered, Bytes::from(expected));
    }
}
