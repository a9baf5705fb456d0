//! Reading the contract without sending anything: [`ChainReader::verify_bond`] checks that a
//! dispute's bond really sits in escrow before a member accepts the dispute. It never signs, so
//! it may run beside the chain service without touching nonces.
//!
//! The checks, in order (each failure says what is wrong and what to do):
//! 1. the bond transaction has a receipt (else it is unknown, or not yet mined);
//! 2. it succeeded;
//! 3. it emitted the contract's `BondPosted(settlementId, disputeId, disputer, amount)` for this
//!    dispute, from this disputer, for exactly this amount;
//! 4. it has `confirmations` blocks on top of it;
//! 5. its block is still on the chain (a reorg did not replace it);
//! 6. the escrow is still held (`getEscrow`), not already paid out or reclaimed.
//!
//! The answer, [`DisputeEscrow`], carries the bond's block and log position and the insurance
//! pool at that block, which every member reads alike.

use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use fixd_proto::types::dispute::{Dispute, DisputeEscrow};

use super::contract::SettlementOracle::{self, SettlementOracleInstance};

/// Why a bond does not back a dispute.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BondError {
    #[error("bond transaction {0} is unknown to the chain; escrow the bond with postBond and pass its hash")]
    NotFound(B256),
    #[error(
        "bond transaction {tx} has {have} of the {need} confirmations needed; submit again in a few blocks"
    )]
    Unconfirmed { tx: B256, have: u64, need: u64 },
    #[error("bond transaction {0} reverted; it escrowed nothing")]
    Reverted(B256),
    #[error("transaction {0} posted no bond for this settlement and dispute id on the SettlementOracle")]
    NoBondPosted(B256),
    #[error("the bond was escrowed by {escrowed_by}, but the dispute names disputer {claimed}")]
    WrongDisputer { escrowed_by: Address, claimed: Address },
    #[error("the escrow holds {escrowed} wei, but the dispute claims a bond of {claimed} wei")]
    WrongAmount { escrowed: u128, claimed: u128 },
    #[error("the bond's block {0} is no longer on the chain (a reorg); escrow the bond again")]
    Reorged(u64),
    #[error("the escrow of this dispute is no longer held (paid out or reclaimed)")]
    EscrowGone,
    #[error("the chain RPC failed: {0}; the dispute was not checked, try again")]
    Rpc(String),
}

/// A read-only view of the `SettlementOracle`.
#[derive(Clone)]
pub struct ChainReader {
    provider: DynProvider,
    oracle: SettlementOracleInstance<DynProvider>,
    rpc_timeout: Duration,
    confirmations: u64,
}

impl std::fmt::Debug for ChainReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainReader").field("contract", self.oracle.address()).finish_non_exhaustive()
    }
}

impl ChainReader {
    /// A reader of `contract` at `rpc_url`, counting a bond once it has `confirmations` blocks.
    pub fn new(
        rpc_url: &str,
        contract: Address,
        rpc_timeout: Duration,
        confirmations: u64,
    ) -> Result<Self, super::ChainError> {
        let url = rpc_url
            .parse()
            .map_err(|e| super::ChainError::Setup(format!("chain.rpc_url is not a URL ({e})")))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let oracle = SettlementOracle::new(contract, provider.clone());
        Ok(ChainReader { provider, oracle, rpc_timeout, confirmations: confirmations.max(1) })
    }

    async fn rpc<T, E: std::fmt::Display>(
        &self,
        what: &str,
        call: impl std::future::IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, BondError> {
        super::service::timed(self.rpc_timeout, what, call).await.map_err(BondError::Rpc)
    }

    /// Checks that `dispute`'s bond is escrowed (see the module docs) and says where.
    pub async fn verify_bond(&self, dispute: &Dispute) -> Result<DisputeEscrow, BondError> {
        let tx = dispute.bond_tx;
        let receipt =
            self.rpc("eth_getTransactionReceipt", self.provider.get_transaction_receipt(tx)).await?;
        let Some(receipt) = receipt else {
            let known =
                self.rpc("eth_getTransactionByHash", self.provider.get_transaction_by_hash(tx)).await?;
            return Err(match known {
                Some(_) => BondError::Unconfirmed { tx, have: 0, need: self.confirmations },
                None => BondError::NotFound(tx),
            });
        };
        if !receipt.status() {
            return Err(BondError::Reverted(tx));
        }
        let posted = receipt
            .logs()
            .iter()
            .filter(|log| log.address() == *self.oracle.address())
            .filter_map(|log| log.log_decode::<SettlementOracle::BondPosted>().ok().map(|d| (log, d)))
            .find(|(_, d)| {
                d.inner.settlementId == dispute.settlement_id && d.inner.disputeId == dispute.dispute_id
            });
        let Some((log, event)) = posted else {
            return Err(BondError::NoBondPosted(tx));
        };
        let event = &event.inner.data;
        if event.disputer != dispute.disputer {
            return Err(BondError::WrongDisputer { escrowed_by: event.disputer, claimed: dispute.disputer });
        }
        let escrowed = u128::try_from(event.amount).unwrap_or(u128::MAX);
        if escrowed != dispute.bond_wei {
            return Err(BondError::WrongAmount { escrowed, claimed: dispute.bond_wei });
        }
        let (Some(block_number), Some(block_hash)) = (receipt.block_number, receipt.block_hash) else {
            return Err(BondError::Unconfirmed { tx, have: 0, need: self.confirmations });
        };
        let head = self.rpc("eth_blockNumber", self.provider.get_block_number()).await?;
        let have = head.saturating_sub(block_number) + 1;
        if have < self.confirmations {
            return Err(BondError::Unconfirmed { tx, have, need: self.confirmations });
        }
        let block =
            self.rpc("eth_getBlockByNumber", self.provider.get_block_by_number(block_number.into())).await?;
        let Some(block) = block.filter(|b| b.header.hash == block_hash) else {
            return Err(BondError::Reorged(block_number));
        };
        let held = self
            .rpc("getEscrow", self.oracle.getEscrow(dispute.settlement_id, dispute.dispute_id).call())
            .await?;
        if held.disputer != dispute.disputer || u128::try_from(held.amount).ok() != Some(dispute.bond_wei) {
            return Err(BondError::EscrowGone);
        }
        // Fixed by the settlement's first bond until publication: any block after this one
        // gives the same, so no historical state is needed.
        let reserved = self.rpc("reservation", self.oracle.reservation(dispute.settlement_id).call()).await?;
        Ok(DisputeEscrow {
            block_number,
            block_hash,
            block_timestamp: block.header.timestamp,
            log_index: log.log_index.unwrap_or_default(),
            pool_wei: u128::try_from(reserved).unwrap_or(u128::MAX),
        })
    }
}
