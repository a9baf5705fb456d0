//! Bindings to the consumers of settlements (`contracts/consumers/`, DESIGN section 9): the
//! `PNVault` of the P/N split with its `PNToken`s, and the read adapters `SettlementReader`
//! (`ISettlementOracle`) and `GammaPriceAdapter` (Opyn Gamma's `getExpiryPrice`), generated from
//! their committed artifacts; and deploying the three over a `SettlementOracle`.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256, address};
use alloy::providers::Provider;
use fixd_proto::types::settlement::MethodologyParams;
use fixd_proto::value::Wad;

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

/// Why a vault call failed.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The vault refused the call (its custom error, decoded); nothing was sent.
    #[error("the vault refuses: {0}")]
    Refused(String),
    /// The vault has no such series.
    #[error("no series {0} in this vault: create it first with `fixd pn create`")]
    UnknownSeries(B256),
    #[error(transparent)]
    Chain(#[from] ChainError),
}

impl From<alloy::contract::Error> for VaultError {
    fn from(error: alloy::contract::Error) -> Self {
        match error.as_decoded_interface_error::<PNVault::PNVaultErrors>() {
            Some(PNVault::PNVaultErrors::UnknownSeries(e)) => return VaultError::UnknownSeries(e.seriesId),
            Some(refusal) => return VaultError::Refused(refusal_text(&refusal)),
            None => {}
        }
        match error.as_decoded_interface_error::<PNToken::PNTokenErrors>() {
            Some(refusal) => VaultError::Refused(token_refusal_text(&refusal)),
            None => VaultError::Chain(ChainError::Contract(error)),
        }
    }
}

/// A vault error as a reader should see it: its name, its argument and what to do.
fn refusal_text(error: &PNVault::PNVaultErrors) -> String {
    use PNVault::PNVaultErrors as E;
    match error {
        E::SeriesExists(e) => format!("SeriesExists({}): it exists already; use it", e.seriesId),
        E::ZeroStrike(_) => "ZeroStrike: a strike must be above zero".into(),
        E::ZeroAmount(_) => "ZeroAmount: the amount must be above zero".into(),
        E::AlreadySettled(e) => {
            format!("AlreadySettled({}): the settlement is published; redeem instead", e.settlementId)
        }
        E::SettlementNotPublished(e) => format!(
            "SettlementNotPublished({}): wait for publication to redeem, or merge equal P and N now",
            e.settlementId
        ),
        other => format!("{other:?}"),
    }
}

/// A token error bubbled up through the vault, as a reader should see it.
fn token_refusal_text(error: &PNToken::PNTokenErrors) -> String {
    match error {
        PNToken::PNTokenErrors::ERC20InsufficientBalance(e) => format!(
            "ERC20InsufficientBalance: {} holds {} of the P or N token and needs {}",
            e.sender, e.balance, e.needed
        ),
        other => format!("{other:?}"),
    }
}

/// A series' id: `keccak256(abi.encode(settlementId, uint128 strike))`, as `PNVault.seriesIdOf`.
pub fn series_id(settlement_id: B256, strike: Wad) -> B256 {
    let strike = U256::from(strike.raw()).to_be_bytes::<32>();
    alloy::primitives::keccak256([settlement_id.as_slice(), &strike].concat())
}

/// A series as the vault holds it, and what 1 P and 1 N pay once its settlement is published.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SeriesState {
    pub series_id: B256,
    pub settlement_id: B256,
    pub maturity: u64,
    pub strike: Wad,
    pub p_token: Address,
    pub n_token: Address,
    pub p_name: String,
    pub n_name: String,
    /// ETH held for the series, wei.
    #[serde(with = "fixd_proto::value::wei")]
    pub collateral_wei: u128,
    #[serde(with = "fixd_proto::value::wei")]
    pub p_supply: u128,
    #[serde(with = "fixd_proto::value::wei")]
    pub n_supply: u128,
    /// `None` until the settlement is published.
    pub settled: Option<SettledPayouts>,
    /// Collateral less every outstanding claim (0 before publication), wei.
    #[serde(with = "fixd_proto::value::wei")]
    pub dust_wei: u128,
}

/// The published value and the shares of 1 ETH it gives P and N.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SettledPayouts {
    pub value: Wad,
    /// What 1 P pays, ETH.
    pub p: Wad,
    /// What 1 N pays, ETH.
    pub n: Wad,
}

/// A sent vault transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct VaultReceipt {
    pub tx_hash: B256,
    pub block_number: u64,
    pub gas_used: u64,
}

/// `PNVault` through one provider: each call is simulated first (so a refusal comes back as the
/// vault's named error and nothing is sent), then sent and awaited up to `timeout`.
#[derive(Debug)]
pub struct VaultClient<P> {
    vault: PNVault::PNVaultInstance<P>,
    reader: SettlementReader::SettlementReaderInstance<P>,
    timeout: Duration,
}

impl<P: Provider + Clone> VaultClient<P> {
    /// The vault at `vault`, and the reader it settles from.
    pub async fn connect(provider: P, vault: Address, timeout: Duration) -> Result<Self, VaultError> {
        let instance = PNVault::new(vault, provider.clone());
        let reader = instance.settlements().call().await?;
        Ok(VaultClient { vault: instance, reader: SettlementReader::new(reader, provider), timeout })
    }

    pub fn address(&self) -> Address {
        *self.vault.address()
    }

    /// The id of the ETH-USD settlement maturing at `maturity`, by the vault's reader.
    pub async fn settlement_id_at(&self, maturity: u64) -> Result<B256, VaultError> {
        Ok(self.reader.settlementIdAt(maturity).call().await?)
    }

    /// Creates the series (maturity, strike); returns its id.
    pub async fn create(&self, maturity: u64, strike: Wad) -> Result<(B256, VaultReceipt), VaultError> {
        let call = self.vault.createSeries(maturity, strike.raw());
        let id = call.call().await?;
        let receipt = self.send(call).await?;
        Ok((id, receipt))
    }

    /// Splits `wei` into as many P and N for the sender.
    pub async fn split(&self, series: B256, wei: u128) -> Result<VaultReceipt, VaultError> {
        let call = self.vault.split(series).value(U256::from(wei));
        call.call().await?;
        self.send(call).await
    }

    /// Merges `amount` P and N of the sender back into `amount` wei.
    pub async fn merge(&self, series: B256, amount: u128) -> Result<VaultReceipt, VaultError> {
        let call = self.vault.merge(series, U256::from(amount));
        call.call().await?;
        self.send(call).await
    }

    /// Redeems the sender's `p_amount` P and `n_amount` N; returns the wei paid.
    pub async fn redeem(
        &self,
        series: B256,
        p_amount: u128,
        n_amount: u128,
    ) -> Result<(u128, VaultReceipt), VaultError> {
        let call = self.vault.redeem(series, U256::from(p_amount), U256::from(n_amount));
        let paid = call.call().await?;
        let receipt = self.send(call).await?;
        Ok((paid.saturating_to(), receipt))
    }

    /// The sender-independent state of `series`.
    pub async fn series(&self, series: B256) -> Result<SeriesState, VaultError> {
        let s = self.vault.getSeries(series).call().await?;
        if s.p == Address::ZERO {
            return Err(VaultError::UnknownSeries(series));
        }
        let provider = self.vault.provider().clone();
        let (p, n) = (PNToken::new(s.p, provider.clone()), PNToken::new(s.n, provider));
        let payouts = self.vault.payouts(series).call().await?;
        let settled = payouts.settled.then(|| SettledPayouts {
            value: Wad::from_raw(payouts.value.saturating_to()),
            p: Wad::from_raw(payouts.p.saturating_to()),
            n: Wad::from_raw(payouts.n.saturating_to()),
        });
        Ok(SeriesState {
            series_id: series,
            settlement_id: s.settlementId,
            maturity: s.maturity,
            strike: Wad::from_raw(s.strike),
            p_token: s.p,
            n_token: s.n,
            p_name: p.name().call().await?,
            n_name: n.name().call().await?,
            collateral_wei: s.collateral.saturating_to(),
            p_supply: p.totalSupply().call().await?.saturating_to(),
            n_supply: n.totalSupply().call().await?.saturating_to(),
            settled,
            dust_wei: self.vault.dust(series).call().await?.saturating_to(),
        })
    }

    /// `holder`'s P and N of `series`.
    pub async fn balances(&self, series: &SeriesState, holder: Address) -> Result<(u128, u128), VaultError> {
        let provider = self.vault.provider().clone();
        let p = PNToken::new(series.p_token, provider.clone()).balanceOf(holder).call().await?;
        let n = PNToken::new(series.n_token, provider).balanceOf(holder).call().await?;
        Ok((p.saturating_to(), n.saturating_to()))
    }

    async fn send<C: alloy::sol_types::SolCall>(
        &self,
        call: alloy::contract::SolCallBuilder<&P, C>,
    ) -> Result<VaultReceipt, VaultError> {
        let pending = call.send().await?;
        let receipt = successful_receipt(pending, self.timeout).await?;
        Ok(VaultReceipt {
            tx_hash: receipt.transaction_hash,
            block_number: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
        })
    }
}
