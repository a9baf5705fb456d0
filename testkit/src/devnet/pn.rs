//! The devnet's P/N walk-through (DESIGN section 9): before maturity it creates two series of
//! the settlement in the `PNVault`, one at a strike below the replayed hour's prices and one
//! above them, and splits 1 ETH into each from a holder account; after publication it redeems
//! every P and N, and checks that each side received `fixd_proto::payout::pn_split` of the
//! published value, to the wei.

use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail, ensure};
use fixd_node::chain::consumers::{Consumers, GammaPriceAdapter, NATIVE_ETH, VaultClient, deploy_consumers};
use fixd_proto::payout::{pn_split, usd_value};
use fixd_proto::replay::{fixture_bars, unix_seconds};
use fixd_proto::types::settlement::MethodologyParams;
use fixd_proto::value::{WAD, Wad};
use serde::Serialize;

/// The private key of anvil's second dev account (public knowledge, as anvil prints it): the
/// devnet's option holder, who splits and redeems.
pub const ANVIL_HOLDER_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// ETH split into each series.
const SPLIT_WEI: u128 = WAD;

/// The consumer contracts, and the two series split before maturity.
#[derive(Debug)]
pub struct PnSetup {
    pub consumers: Consumers,
    pub holder: Address,
    pub series: Vec<SplitSeries>,
}

/// One series as split.
#[derive(Clone, Debug, Serialize)]
pub struct SplitSeries {
    pub series_id: B256,
    pub strike: Wad,
    pub p_token: Address,
    pub n_token: Address,
    pub split_tx: B256,
}

/// What the holder received for one series, next to what `pn_split` says.
#[derive(Clone, Debug, Serialize)]
pub struct Redeemed {
    pub series_id: B256,
    pub strike: Wad,
    /// ETH split in.
    pub split: Wad,
    /// ETH received for the P, and its USD value at the settled value.
    pub p_paid: Wad,
    pub p_paid_usd: Wad,
    /// ETH received for the N, and its USD value.
    pub n_paid: Wad,
    pub n_paid_usd: Wad,
    /// `pn_split(value, strike)` for 1 ETH: what each side must receive.
    pub expected_p: Wad,
    pub expected_n: Wad,
    pub redeem_p_tx: B256,
    pub redeem_n_tx: B256,
}

/// The P/N part of the devnet's summary.
#[derive(Clone, Debug, Serialize)]
pub struct PnSummary {
    pub vault: Address,
    pub reader: Address,
    pub gamma_adapter: Address,
    pub holder: Address,
    /// `getExpiryPrice(NATIVE_ETH, maturity)` through the Gamma adapter: 8 decimals.
    pub gamma_expiry_price: String,
    pub gamma_is_finalized: bool,
    pub series: Vec<Redeemed>,
}

/// A strike below and one above every price of the replayed hour: 2% under its lowest bar and
/// over its highest, rounded out to $50.
pub fn strikes(replay_start: &str) -> anyhow::Result<(Wad, Wad)> {
    let start = unix_seconds(replay_start).map_err(|e| anyhow::anyhow!("--replay-start: {e}"))?;
    let bars: Vec<_> =
        fixture_bars().into_iter().filter(|b| (start..start + 3600).contains(&b.start)).collect();
    let low = bars
        .iter()
        .map(|b| b.low.raw() / WAD)
        .min()
        .context("the fixture has no bar in the replayed hour")?;
    let high = bars.iter().map(|b| b.high.raw() / WAD).max().unwrap_or(low);
    let below = low * 98 / 100 / 50 * 50;
    let above = (high * 102 / 100 / 50 + 1) * 50;
    Ok((Wad::from_raw(below * WAD), Wad::from_raw(above * WAD)))
}

fn holder_provider(rpc_url: &str) -> anyhow::Result<(DynProvider, Address)> {
    let key: PrivateKeySigner = ANVIL_HOLDER_KEY.parse().expect("anvil's second dev key is a valid key");
    let address = key.address();
    let url = rpc_url.parse().with_context(|| format!("RPC URL {rpc_url:?}"))?;
    Ok((ProviderBuilder::new().wallet(EthereumWallet::from(key)).connect_http(url).erased(), address))
}

/// Deploys the reader, vault and Gamma adapter (pricing [`NATIVE_ETH`]) over `oracle` from
/// `deployer`, for the settlements of `params`.
pub async fn deploy(
    deployer: &DynProvider,
    oracle: Address,
    params: &MethodologyParams,
    timeout: Duration,
) -> anyhow::Result<Consumers> {
    Ok(deploy_consumers(deployer, oracle, params, NATIVE_ETH, timeout).await?)
}

/// Creates the two series of the settlement maturing at `maturity` in `consumers`' vault and
/// splits 1 ETH into each as the holder.
pub async fn split(
    consumers: Consumers,
    rpc_url: &str,
    maturity: u64,
    strikes: (Wad, Wad),
    timeout: Duration,
) -> anyhow::Result<PnSetup> {
    let (provider, holder) = holder_provider(rpc_url)?;
    let vault = VaultClient::connect(provider, consumers.vault, timeout).await?;
    let mut series = Vec::new();
    for strike in [strikes.0, strikes.1] {
        let (id, _) = vault
            .create(maturity, strike)
            .await
            .with_context(|| format!("creating the series at {strike}"))?;
        let split =
            vault.split(id, SPLIT_WEI).await.with_context(|| format!("splitting 1 ETH at {strike}"))?;
        let state = vault.series(id).await?;
        series.push(SplitSeries {
            series_id: id,
            strike,
            p_token: state.p_token,
            n_token: state.n_token,
            split_tx: split.tx_hash,
        });
    }
    Ok(PnSetup { consumers, holder, series })
}

/// After publication of `value`: redeems the holder's P, then its N, of each series, and checks
/// each payment against `pn_split(value, strike)`.
pub async fn redeem(
    setup: &PnSetup,
    rpc_url: &str,
    maturity: u64,
    value: Wad,
    timeout: Duration,
) -> anyhow::Result<PnSummary> {
    let (provider, _) = holder_provider(rpc_url)?;
    let vault = VaultClient::connect(provider.clone(), setup.consumers.vault, timeout).await?;
    let mut series = Vec::new();
    for s in &setup.series {
        let (p_paid, p_tx) = vault.redeem(s.series_id, SPLIT_WEI, 0).await.context("redeeming the P")?;
        let (n_paid, n_tx) = vault.redeem(s.series_id, 0, SPLIT_WEI).await.context("redeeming the N")?;
        let (p_paid, n_paid) = (Wad::from_raw(p_paid), Wad::from_raw(n_paid));
        let (expected_p, expected_n) = pn_split(value, s.strike);
        ensure!(
            (p_paid, n_paid) == (expected_p, expected_n),
            "series at strike {}: the vault paid P {p_paid} and N {n_paid} ETH, but pn_split({value}, {}) is \
             ({expected_p}, {expected_n})",
            s.strike,
            s.strike
        );
        series.push(Redeemed {
            series_id: s.series_id,
            strike: s.strike,
            split: Wad::from_raw(SPLIT_WEI),
            p_paid,
            p_paid_usd: usd_value(p_paid, value),
            n_paid,
            n_paid_usd: usd_value(n_paid, value),
            expected_p,
            expected_n,
            redeem_p_tx: p_tx.tx_hash,
            redeem_n_tx: n_tx.tx_hash,
        });
    }
    let gamma = GammaPriceAdapter::new(setup.consumers.gamma, provider);
    let price = gamma.getExpiryPrice(NATIVE_ETH, alloy::primitives::U256::from(maturity)).call().await?;
    let expected_price = value.raw() / 10u128.pow(10);
    if price.price != alloy::primitives::U256::from(expected_price) || !price.isFinalized {
        bail!(
            "the Gamma adapter answers ({}, {}) for the published {value}; expected ({expected_price}, true)",
            price.price,
            price.isFinalized
        );
    }
    Ok(PnSummary {
        vault: setup.consumers.vault,
        reader: setup.consumers.reader,
        gamma_adapter: setup.consumers.gamma,
        holder: setup.holder,
        gamma_expiry_price: price.price.to_string(),
        gamma_is_finalized: price.isFinalized,
        series,
    })
}

/// The P/N lines of the devnet's text summary.
pub fn lines(summary: &PnSummary, value: Wad) -> String {
    let mut text = format!(
        "\nP/N split in PNVault {} (holder {}), redeemed at ETH-USD {value}:",
        summary.vault, summary.holder
    );
    for s in &summary.series {
        text.push_str(&format!(
            "\n  strike {:>8}: {} ETH split; P received {} ETH (${}), N received {} ETH (${}); = pn_split",
            s.strike.to_string(),
            s.split,
            s.p_paid,
            s.p_paid_usd.cents(),
            s.n_paid,
            s.n_paid_usd.cents()
        ));
    }
    text.push_str(&format!(
        "\n  Opyn Gamma getExpiryPrice(ETH, maturity) through {}: ({}, {}) (8 decimals)",
        summary.gamma_adapter, summary.gamma_expiry_price, summary.gamma_is_finalized
    ));
    text
}
