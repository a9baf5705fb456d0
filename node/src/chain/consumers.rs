//! Bindings to the consumers of settlements (`contracts/consumers/`, DESIGN section 9): the
//! `PNVault` of the P/N split with its `PNToken`s, and the read adapters `SettlementReader`
//! (`ISettlementOracle`) and `GammaPriceAdapter` (Opyn Gamma's `getExpiryPrice`), generated from
//! their committed artifacts; and deploying the three over a `SettlementOracle`.

use std::time::Duration;

use alloy::primitives::{Address, address};
use alloy::providers::Provider;
use fixd_proto::types::settlement::MethodologyParams;

use super::ChainError;
use super::contract::successful_receipt;

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    SettlementReader,
    "../contracts/out/SettlementReader.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    GammaPriceAdapter,
    "../contracts/out/GammaPriceAdapter.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    PNVault,
    "../contracts/out/PNVault.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    PNToken,
    "../contracts/out/PNToken.json"
);

/// The address many protocols use for native ETH; a chain without WETH prices it under this in
/// the Gamma adapter.
pub const NATIVE_ETH: Address = address!("0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE");

/// The consumer contracts of one `SettlementOracle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumers {
    /// `SettlementReader`: `ISettlementOracle` for the network's methodology.
    pub reader: Address,
    /// `PNVault`, reading through `reader`.
    pub vault: Address,
    /// `GammaPriceAdapter`, reading through `reader`, pricing `asset`.
    pub gamma: Address,
}

/// BCS of the methodology parameters: what `SettlementReader` appends to (index, maturity) to
/// hash a settlement's id.
pub fn methodology_bytes(params: &MethodologyParams) -> Vec<u8> {
    fixd_proto::encoding::to_bcs(params)
}

/// Deploys the reader over `oracle` for `params`, then the vault and the Gamma adapter (for
/// `asset`) over the reader, from the provider's default sender; waits up to `timeout` for each.
pub async fn deploy_consumers<P: Provider>(
    provider: &P,
    oracle: Address,
    params: &MethodologyParams,
    asset: Address,
    timeout: Duration,
) -> Result<Consumers, ChainError> {
    let pending =
        SettlementReader::deploy_builder(provider, oracle, methodology_bytes(params).into()).send().await?;
    let reader = created(pending, timeout).await?;
    let pending = PNVault::deploy_builder(provider, reader).send().await?;
    let vault = created(pending, timeout).await?;
    let pending = GammaPriceAdapter::deploy_builder(provider, reader, asset).send().await?;
    let gamma = created(pending, timeout).await?;
    Ok(Consumers { reader, vault, gamma })
}

async fn created(
    pending: alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
    timeout: Duration,
) -> Result<Address, ChainError> {
    let tx = *pending.tx_hash();
    let receipt = successful_receipt(pending, timeout).await?;
    receipt.contract_address.ok_or(ChainError::NoContract(tx))
}
