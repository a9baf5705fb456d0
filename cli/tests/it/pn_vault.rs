//! The consumers of settlements (issue 19) against a real anvil with the real
//! `SettlementOracle`: `PNVault` with its `PNToken`s, `SettlementReader` and
//! `GammaPriceAdapter`, each rule by name. Values reach the vault only as the oracle publishes
//! them, from `FinalReport`s signed by committee keys, and every payout is checked to the wei
//! against `fixd_proto::payout::pn_split` (on the values of `proto/tests/vectors/payouts.json`
//! and more), with each account's ETH before and after (less its transaction fees).
//!
//! `PNHolder` (`contracts/test/PNHolder.sol`) is a holder with code that, when the vault pays
//! it, re-enters `merge` or `redeem` or reverts. Run `pn_vault_gas_report` with `--nocapture`
//! for the gas table of `contracts/README.md`.

use std::time::Duration;

use alloy::network::Ethereum;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::{DynProvider, PendingTransactionBuilder, Provider};
use alloy::rpc::types::TransactionReceipt;
use alloy::sol_types::{Revert, SolInterface};
use fixd_node::chain::consumers::GammaPriceAdapter::{self, GammaPriceAdapterErrors};
use fixd_node::chain::consumers::PNToken::{self, PNTokenErrors, PNTokenInstance};
use fixd_node::chain::consumers::PNVault::{self, PNVaultErrors, PNVaultInstance};
use fixd_node::chain::consumers::SettlementReader::{self, SettlementReaderErrors};
use fixd_node::chain::consumers::{Consumers, NATIVE_ETH, deploy_consumers, methodology_bytes, series_id};
use fixd_proto::payout::pn_split;
use fixd_proto::types::report::FinalReport;
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::value::{WAD, Wad};

use crate::contract::{Chain, workspace_root};

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    PNHolder,
    "../contracts/out/PNHolder.json"
);

alloy::sol!(
    #[sol(rpc)]
    #[derive(Debug, PartialEq, Eq)]
    SettledForward,
    "../contracts/out/SettledForward.json"
);

const ETH: u128 = WAD;
const TIMEOUT: Duration = Duration::from_secs(30);
/// 2025-06-12T16:00:00Z.
const MATURITY: u64 = 1_749_744_000;

/// What a `PNHolder` does when the vault pays it (`PNHolder.Mode`).
const ACCEPT: u8 = 0;
const REENTER_MERGE: u8 = 1;
const REENTER_REDEEM: u8 = 2;
const REVERT: u8 = 3;

/// A fresh anvil with the oracle (committee of 4, threshold 3) and its consumers for the
/// default methodology, the Gamma adapter pricing [`NATIVE_ETH`].
struct Market {
    chain: Chain,
    consumers: Consumers,
    vault: PNVaultInstance<DynProvider>,
}

impl Market {
    async fn start() -> Market {
        let chain = Chain::start(4, 3).await;
        let consumers = deploy_consumers(
            &chain.provider,
            chain.address(),
            &MethodologyParams::default(),
            NATIVE_ETH,
            TIMEOUT,
        )
        .await
        .expect("the consumers deploy");
        let vault = PNVault::new(consumers.vault, chain.provider.clone());
        Market { chain, consumers, vault }
    }

    fn provider(&self) -> DynProvider {
        self.chain.provider.clone()
    }

    /// anvil's funded account `i` (0 deploys and publishes).
    fn account(&self, i: usize) -> Address {
        self.chain.accounts[i]
    }

    /// Creates the series (maturity, strike) and checks its id, settlement and event.
    async fn create(&self, maturity: u64, strike: Wad) -> B256 {
        let receipt = mined(self.vault.createSeries(maturity, strike.raw()).send().await).await;
        let id = series_id(settlement_id(maturity), strike);
        let created = receipt.decoded_log::<PNVault::SeriesCreated>().expect("SeriesCreated");
        assert_eq!(
            (created.seriesId, created.settlementId, created.maturity, created.strike),
            (id, settlement_id(maturity), maturity, strike.raw())
        );
        assert_eq!(self.vault.seriesIdOf(settlement_id(maturity), strike.raw()).call().await.unwrap(), id);
        let series = self.vault.getSeries(id).call().await.unwrap();
        assert_eq!((series.p, series.n), (created.p, created.n));
        assert_eq!(series.collateral, U256::ZERO);
        id
    }

    async fn tokens(&self, series: B256) -> (PNTokenInstance<DynProvider>, PNTokenInstance<DynProvider>) {
        let s = self.vault.getSeries(series).call().await.unwrap();
        (PNToken::new(s.p, self.provider()), PNToken::new(s.n, self.provider()))
    }

    /// Publishes `value` for the settlement maturing at `maturity`, signed by 3 of the 4 members.
    async fn publish(&self, maturity: u64, value: Wad) -> TransactionReceipt {
        let report =
            FinalReport { settlement_id: settlement_id(maturity), value, round: 1, outcomes: vec![] };
        self.chain.publish(&report, self.chain.sign(&report, &[0, 1, 2])).await
    }

    async fn collateral(&self, series: B256) -> U256 {
        self.vault.getSeries(series).call().await.unwrap().collateral
    }

    /// `who`'s (P, N) of `series`.
    async fn claims(&self, series: B256, who: Address) -> (U256, U256) {
        let (p, n) = self.tokens(series).await;
        (p.balanceOf(who).call().await.unwrap(), n.balanceOf(who).call().await.unwrap())
    }

    async fn supplies(&self, series: B256) -> (U256, U256) {
        let (p, n) = self.tokens(series).await;
        (p.totalSupply().call().await.unwrap(), n.totalSupply().call().await.unwrap())
    }

    /// `from` splits `wei`: it pays `wei` (and its fee), gains `wei` P and N, and the series'
    /// collateral grows by `wei`.
    async fn split(&self, from: Address, series: B256, wei: U256) -> TransactionReceipt {
        let (eth, claims, collateral) = self.snapshot(series, from).await;
        let receipt = mined(self.vault.split(series).from(from).value(wei).send().await).await;
        let split = receipt.decoded_log::<PNVault::Split>().expect("Split");
        assert_eq!((split.seriesId, split.holder, split.amount), (series, from, wei));
        assert_eq!(self.chain.balance(from).await, eth - wei - fee(&receipt));
        assert_eq!(self.claims(series, from).await, (claims.0 + wei, claims.1 + wei));
        assert_eq!(self.collateral(series).await, collateral + wei);
        receipt
    }

    /// `from` merges `amount`: it is paid exactly `amount` wei, before or after publication.
    async fn merge(&self, from: Address, series: B256, amount: U256) -> TransactionReceipt {
        let (eth, claims, collateral) = self.snapshot(series, from).await;
        let receipt = mined(self.vault.merge(series, amount).from(from).send().await).await;
        assert_eq!(self.chain.balance(from).await, eth + amount - fee(&receipt));
        assert_eq!(self.claims(series, from).await, (claims.0 - amount, claims.1 - amount));
        assert_eq!(self.collateral(series).await, collateral - amount);
        receipt
    }

    /// `from` redeems `p_amount` P and `n_amount` N; returns what it was paid, which its ETH
    /// balance, its claims and the series' collateral agree with to the wei.
    async fn redeem(
        &self,
        from: Address,
        series: B256,
        p_amount: U256,
        n_amount: U256,
    ) -> (U256, TransactionReceipt) {
        let (eth, claims, collateral) = self.snapshot(series, from).await;
        let receipt = mined(self.vault.redeem(series, p_amount, n_amount).from(from).send().await).await;
        let redeemed = receipt.decoded_log::<PNVault::Redeemed>().expect("Redeemed");
        assert_eq!(
            (redeemed.seriesId, redeemed.holder, redeemed.pAmount, redeemed.nAmount),
            (series, from, p_amount, n_amount)
        );
        let paid = redeemed.paid;
        assert_eq!(self.chain.balance(from).await, eth + paid - fee(&receipt));
        assert_eq!(self.claims(series, from).await, (claims.0 - p_amount, claims.1 - n_amount));
        assert_eq!(self.collateral(series).await, collateral - paid);
        (paid, receipt)
    }

    async fn snapshot(&self, series: B256, who: Address) -> (U256, (U256, U256), U256) {
        (self.chain.balance(who).await, self.claims(series, who).await, self.collateral(series).await)
    }

    /// The vault holds exactly `totalCollateral`, which is the sum of `series`' collateral
    /// (every series the test created).
    async fn assert_books(&self, series: &[B256]) {
        let total = self.vault.totalCollateral().call().await.unwrap();
        let mut sum = U256::ZERO;
        for &s in series {
            sum += self.collateral(s).await;
        }
        assert_eq!(total, sum, "totalCollateral is the sum of the series' collateral");
        assert_eq!(self.chain.balance(self.consumers.vault).await, total, "the vault holds totalCollateral");
    }
}

/// The ETH-USD settlement maturing at `maturity` under the default methodology, by fixd-proto.
fn settlement_id(maturity: u64) -> B256 {
    SettlementSpec { index: Index::EthUsd, maturity, params: MethodologyParams::default() }.id()
}

/// What `amount` claims pay at `share` (wei per 10^18 claims), rounded down as the vault does.
fn claim(amount: U256, share: Wad) -> U256 {
    amount * U256::from(share.raw()) / U256::from(WAD)
}

fn wei(amount: u128) -> U256 {
    U256::from(amount)
}

fn wad(value: &str) -> Wad {
    Wad::parse(value).unwrap()
}

/// What the sender of `receipt` paid for it.
fn fee(receipt: &TransactionReceipt) -> U256 {
    U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)
}

async fn mined(
    sent: Result<PendingTransactionBuilder<Ethereum>, alloy::contract::Error>,
) -> TransactionReceipt {
    let receipt = sent.expect("the transaction is sent").get_receipt().await.expect("it is mined");
    assert!(receipt.status(), "the transaction reverted: {receipt:?}");
    receipt
}

/// The custom error (of interface `E`) a reverted call gave.
fn refusal<E: SolInterface, T: std::fmt::Debug>(result: Result<T, alloy::contract::Error>) -> E {
    let error = result.expect_err("the call should revert");
    error
        .as_decoded_interface_error::<E>()
        .unwrap_or_else(|| panic!("not a {} error: {error}", std::any::type_name::<E>()))
}

fn vault_refusal<T: std::fmt::Debug>(result: Result<T, alloy::contract::Error>) -> PNVaultErrors {
    refusal(result)
}

/// A token's error, bubbled up through the vault or from a direct call.
fn token_refusal<T: std::fmt::Debug>(result: Result<T, alloy::contract::Error>) -> PNTokenErrors {
    refusal(result)
}

/// One vector of `proto/tests/vectors/payouts.json`: value, strike and the shares of 1 ETH.
struct PayoutVector {
    x: Wad,
    strike: Wad,
    p: Wad,
    n: Wad,
}

fn payout_vectors() -> Vec<PayoutVector> {
    let path = workspace_root().join("proto/tests/vectors/payouts.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
    let field = |v: &serde_json::Value, name: &str| wad(v[name].as_str().expect("a decimal string"));
    vectors["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| PayoutVector {
            x: field(v, "x"),
            strike: field(v, "strike"),
            p: field(v, "p"),
            n: field(v, "n"),
        })
        .collect()
}

#[tokio::test]
async fn split_transfer_merge_and_redeem_pay_the_pn_split_to_the_wei() {
    let market = Market::start().await;
    let (alice, bob, carol) = (market.account(1), market.account(2), market.account(3));
    let mut cases = payout_vectors();
    assert!(cases.len() >= 10, "the payout vectors are read");
    // And values where rounding or the strike's edge matters.
    for (x, strike) in [
        ("4500", "1500"),
        ("3000.000000000000000001", "3000"),
        ("2598.5", "2600.25"),
        ("2600.25", "2598.5"),
        ("1", "0.000000000000000001"),
    ] {
        let (p, n) = pn_split(wad(x), wad(strike));
        cases.push(PayoutVector { x: wad(x), strike: wad(strike), p, n });
    }
    let mut all_series = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let maturity = MATURITY + 86_400 * i as u64;
        if case.strike == Wad::ZERO {
            // The vector of a zero strike (N takes everything) is no series here.
            let e = vault_refusal(market.vault.createSeries(maturity, 0).call().await);
            assert_eq!(e, PNVaultErrors::ZeroStrike(PNVault::ZeroStrike {}));
            continue;
        }
        let series = market.create(maturity, case.strike).await;
        all_series.push(series);
        let (p_token, n_token) = market.tokens(series).await;
        let (a, b) = (wei(3 * ETH + 7), wei(ETH));
        market.split(alice, series, a).await;
        market.split(bob, series, b).await;
        market.split(bob, series, wei(1)).await;

        // ERC-20 transfers: 1 P to carol, half an N and 3 wei to bob.
        let to_carol = mined(p_token.transfer(carol, wei(ETH)).from(alice).send().await).await;
        let moved = to_carol.decoded_log::<PNToken::Transfer>().expect("Transfer");
        assert_eq!((moved.from, moved.to, moved.value), (alice, carol, wei(ETH)));
        mined(n_token.transfer(bob, wei(ETH / 2 + 3)).from(alice).send().await).await;
        assert_eq!(market.claims(series, alice).await, (a - wei(ETH), a - wei(ETH / 2 + 3)));
        assert_eq!(market.claims(series, bob).await, (b + wei(1), b + wei(ETH / 2 + 4)));
        assert_eq!(market.claims(series, carol).await, (wei(ETH), U256::ZERO));

        // Merging before publication returns the ETH, to the wei.
        market.merge(alice, series, wei(ETH / 4)).await;

        market.publish(maturity, case.x).await;
        let (p, n) = pn_split(case.x, case.strike);
        assert_eq!((p, n), (case.p, case.n), "pn_split at x {} strike {}", case.x, case.strike);
        let payouts = market.vault.payouts(series).call().await.unwrap();
        assert_eq!(
            (payouts.settled, payouts.value, payouts.p, payouts.n),
            (true, wei(case.x.raw()), wei(p.raw()), wei(n.raw()))
        );
        // Merging after publication still pays the amount merged.
        market.merge(alice, series, wei(5)).await;

        // Everyone redeems everything: alice both at once, bob P then N, carol her P.
        let (pa, na) = market.claims(series, alice).await;
        let (paid, _) = market.redeem(alice, series, pa, na).await;
        assert_eq!(paid, claim(pa, p) + claim(na, n), "alice at x {} strike {}", case.x, case.strike);
        let (pb, nb) = market.claims(series, bob).await;
        let (paid_p, _) = market.redeem(bob, series, pb, U256::ZERO).await;
        let (paid_n, _) = market.redeem(bob, series, U256::ZERO, nb).await;
        assert_eq!(
            (paid_p, paid_n),
            (claim(pb, p), claim(nb, n)),
            "bob at x {} strike {}",
            case.x,
            case.strike
        );
        let (paid_c, _) = market.redeem(carol, series, wei(ETH), U256::ZERO).await;
        assert_eq!(paid_c, claim(wei(ETH), p), "1 P pays p");
        assert_eq!(paid_c, wei(p.raw()));

        // Every claim is gone; what rounding left is the series' dust, and nothing more.
        assert_eq!(market.supplies(series).await, (U256::ZERO, U256::ZERO));
        let left = a + b + wei(1) - wei(ETH / 4) - wei(5) - paid - paid_p - paid_n - paid_c;
        assert_eq!(market.collateral(series).await, left);
        assert_eq!(market.vault.dust(series).call().await.unwrap(), left);
        assert!(left < wei(8), "four redemptions leave under 2 wei each, not {left}");
    }
    market.assert_books(&all_series).await;
}

#[tokio::test]
async fn redeem_before_publication_reverts_settlement_not_published() {
    let market = Market::start().await;
    let alice = market.account(1);
    let series = market.create(MATURITY, wad("2500")).await;
    market.split(alice, series, wei(ETH)).await;
    let id = settlement_id(MATURITY);
    let not_published =
        PNVaultErrors::SettlementNotPublished(PNVault::SettlementNotPublished { settlementId: id });
    for (p, n) in [(1, 0), (0, 1), (ETH, ETH)] {
        let e = vault_refusal(market.vault.redeem(series, wei(p), wei(n)).from(alice).call().await);
        assert_eq!(e, not_published);
    }
    let payouts = market.vault.payouts(series).call().await.unwrap();
    assert_eq!(
        (payouts.settled, payouts.value, payouts.p, payouts.n),
        (false, U256::ZERO, U256::ZERO, U256::ZERO)
    );

    // Another maturity's publication does not publish this one.
    market.publish(MATURITY + 1, wad("2600")).await;
    let e = vault_refusal(market.vault.redeem(series, wei(ETH), wei(ETH)).from(alice).call().await);
    assert_eq!(e, not_published);

    market.publish(MATURITY, wad("2600")).await;
    let (paid, _) = market.redeem(alice, series, wei(ETH), wei(ETH)).await;
    assert_eq!(paid, wei(ETH), "1 P and 1 N together are 1 ETH");
    market.assert_books(&[series]).await;
}

#[tokio::test]
async fn at_or_below_the_strike_p_is_paid_everything() {
    let market = Market::start().await;
    let (alice, bob) = (market.account(1), market.account(2));
    let strike = wad("3000");
    let mut all_series = Vec::new();
    for (i, x) in ["3000", "2999.999999999999999999", "2500", "0"].into_iter().enumerate() {
        let maturity = MATURITY + i as u64;
        let series = market.create(maturity, strike).await;
        all_series.push(series);
        let (_, n_token) = market.tokens(series).await;
        market.split(alice, series, wei(2 * ETH)).await;
        mined(n_token.transfer(bob, wei(2 * ETH)).from(alice).send().await).await;
        market.publish(maturity, wad(x)).await;
        assert_eq!(pn_split(wad(x), strike), (Wad::ONE, Wad::ZERO));

        // 1 P pays 1 ETH, twice; 2 N pay nothing but are burned.
        let (paid, _) = market.redeem(alice, series, wei(ETH), U256::ZERO).await;
        assert_eq!(paid, wei(ETH), "1 P pays 1 ETH at x {x}");
        let (paid, _) = market.redeem(alice, series, wei(ETH), U256::ZERO).await;
        assert_eq!(paid, wei(ETH));
        let (paid, receipt) = market.redeem(bob, series, U256::ZERO, wei(2 * ETH)).await;
        assert_eq!(paid, U256::ZERO, "N pays nothing at x {x}");
        assert!(receipt.decoded_log::<PNVault::Redeemed>().is_some());
        assert_eq!(market.supplies(series).await, (U256::ZERO, U256::ZERO));
        assert_eq!(market.collateral(series).await, U256::ZERO);
        assert_eq!(market.vault.dust(series).call().await.unwrap(), U256::ZERO);
    }
    market.assert_books(&all_series).await;
}

#[tokio::test]
async fn a_second_series_on_the_same_settlement_is_independent() {
    let market = Market::start().await;
    let (alice, bob, carol) = (market.account(1), market.account(2), market.account(3));
    let (low, high) = (wad("2000"), wad("3000"));
    let a = market.create(MATURITY, low).await;
    let b = market.create(MATURITY, high).await;
    assert_ne!(a, b);
    let (a_p, a_n) = market.tokens(a).await;
    let (b_p, b_n) = market.tokens(b).await;
    let addresses = [*a_p.address(), *a_n.address(), *b_p.address(), *b_n.address()];
    for (i, x) in addresses.iter().enumerate() {
        assert!(addresses[i + 1..].iter().all(|y| y != x), "four distinct tokens");
    }
    assert_eq!(market.vault.getSeries(a).call().await.unwrap().settlementId, settlement_id(MATURITY));
    assert_eq!(market.vault.getSeries(b).call().await.unwrap().settlementId, settlement_id(MATURITY));

    market.split(alice, a, wei(2 * ETH)).await;
    market.split(alice, b, wei(ETH)).await;
    market.split(bob, b, wei(ETH + 1)).await;
    market.split(carol, a, wei(ETH)).await;
    assert_eq!(market.collateral(a).await, wei(3 * ETH));
    assert_eq!(market.collateral(b).await, wei(2 * ETH + 1));
    assert_eq!(market.supplies(a).await, (wei(3 * ETH), wei(3 * ETH)));
    assert_eq!(market.supplies(b).await, (wei(2 * ETH + 1), wei(2 * ETH + 1)));

    // Carol holds only series a: she cannot merge in b with them.
    let e = token_refusal(market.vault.merge(b, wei(ETH)).from(carol).call().await);
    assert_eq!(
        e,
        PNTokenErrors::ERC20InsufficientBalance(PNToken::ERC20InsufficientBalance {
            sender: carol,
            balance: U256::ZERO,
            needed: wei(ETH)
        })
    );
    market.merge(alice, b, wei(ETH / 2)).await;
    assert_eq!(market.collateral(a).await, wei(3 * ETH), "a merge in b leaves a alone");

    let x = wad("2500");
    market.publish(MATURITY, x).await;
    let (ap, an) = pn_split(x, low);
    let (bp, bn) = pn_split(x, high);
    assert_eq!((ap, an), (wad("0.8"), wad("0.2")));
    assert_eq!((bp, bn), (Wad::ONE, Wad::ZERO));
    let pa = market.vault.payouts(a).call().await.unwrap();
    let pb = market.vault.payouts(b).call().await.unwrap();
    assert_eq!((pa.p, pa.n), (wei(ap.raw()), wei(an.raw())));
    assert_eq!((pb.p, pb.n), (wei(bp.raw()), wei(bn.raw())));

    // Series a is redeemed in full; b's collateral and tokens do not move.
    let (paid, _) = market.redeem(alice, a, wei(2 * ETH), wei(2 * ETH)).await;
    assert_eq!(paid, wei(2 * ETH));
    let (paid, _) = market.redeem(carol, a, wei(ETH), U256::ZERO).await;
    assert_eq!(paid, claim(wei(ETH), ap));
    let (paid, _) = market.redeem(carol, a, U256::ZERO, wei(ETH)).await;
    assert_eq!(paid, claim(wei(ETH), an));
    assert_eq!(market.collateral(a).await, U256::ZERO);
    assert_eq!(market.collateral(b).await, wei(3 * ETH / 2 + 1));
    assert_eq!(market.supplies(b).await, (wei(3 * ETH / 2 + 1), wei(3 * ETH / 2 + 1)));

    // And b pays at its own strike.
    let (paid, _) = market.redeem(bob, b, wei(ETH + 1), wei(ETH + 1)).await;
    assert_eq!(paid, wei(ETH + 1));
    let (paid, _) = market.redeem(alice, b, wei(ETH / 2), U256::ZERO).await;
    assert_eq!(paid, wei(ETH / 2));
    let (paid, _) = market.redeem(alice, b, U256::ZERO, wei(ETH / 2)).await;
    assert_eq!(paid, U256::ZERO);
    assert_eq!(market.collateral(b).await, U256::ZERO);
    market.assert_books(&[a, b]).await;
}

/// A `PNHolder` of the market's vault, funded with claims of `series` split from `wei`.
async fn holder(market: &Market, series: B256, wei: U256) -> PNHolder::PNHolderInstance<DynProvider> {
    let holder = PNHolder::deploy(market.provider(), market.consumers.vault).await.expect("PNHolder deploys");
    mined(holder.split(series).value(wei).send().await).await;
    assert_eq!(market.claims(series, *holder.address()).await, (wei, wei));
    holder
}

async fn set_mode(holder: &PNHolder::PNHolderInstance<DynProvider>, mode: u8) {
    mined(holder.setMode(mode).send().await).await;
    assert_eq!(holder.mode().call().await.unwrap(), mode);
}

/// A payout the holder refuses: the call reverts with the holder's reason, a transaction of it
/// is mined reverted, and nothing changes: the holder's ETH and claims, the series, the vault.
async fn assert_refused_without_change<C: alloy::sol_types::SolCall>(
    market: &Market,
    series: B256,
    holder: &PNHolder::PNHolderInstance<DynProvider>,
    call: alloy::contract::SolCallBuilder<&DynProvider, C>,
) where
    C::Return: std::fmt::Debug,
{
    let who = *holder.address();
    let before = (
        market.snapshot(series, who).await,
        market.vault.totalCollateral().call().await.unwrap(),
        market.supplies(series).await,
        holder.refused().call().await.unwrap(),
    );
    let error = call.call().await.expect_err("a refused payment reverts the call");
    let reason =
        error.as_decoded_error::<Revert>().unwrap_or_else(|| panic!("not the holder's revert: {error}"));
    assert_eq!(reason.reason, "PNHolder: refusing payment");
    // Sent with its own gas limit (no estimate), it is mined and reverts.
    let pending = call.gas(1_000_000).send().await.expect("sent");
    let receipt = pending.get_receipt().await.unwrap();
    assert!(!receipt.status(), "the holder's own call reverts");
    let after = (
        market.snapshot(series, who).await,
        market.vault.totalCollateral().call().await.unwrap(),
        market.supplies(series).await,
        holder.refused().call().await.unwrap(),
    );
    assert_eq!(after, before, "a reverted payout changes nothing");
}

#[tokio::test]
async fn a_re_entering_receiver_gains_nothing_and_a_reverting_one_only_fails_itself() {
    let market = Market::start().await;
    let alice = market.account(1);
    let strike = wad("2000");
    let series = market.create(MATURITY, strike).await;
    let holder = holder(&market, series, wei(3 * ETH)).await;
    let who = *holder.address();
    market.split(alice, series, wei(ETH)).await;
    assert_eq!(market.chain.balance(who).await, U256::ZERO);

    // Before publication, paid for a merge, it tries to merge the same again.
    set_mode(&holder, REENTER_MERGE).await;
    mined(holder.merge(series, wei(ETH)).send().await).await;
    assert_eq!(market.chain.balance(who).await, wei(ETH), "exactly the amount merged");
    assert_eq!(market.claims(series, who).await, (wei(2 * ETH), wei(2 * ETH)));
    assert_eq!(
        (holder.reentered().call().await.unwrap(), holder.refused().call().await.unwrap()),
        (U256::ZERO, wei(1))
    );
    assert_eq!(market.collateral(series).await, wei(3 * ETH));
    market.assert_books(&[series]).await;

    // A receiver that reverts fails its own merge, and nothing else.
    set_mode(&holder, REVERT).await;
    assert_refused_without_change(&market, series, &holder, holder.merge(series, wei(ETH))).await;
    market.merge(alice, series, wei(ETH / 2)).await;

    let x = wad("2500");
    market.publish(MATURITY, x).await;
    let (p, n) = pn_split(x, strike);

    // Paid for a redeem, it tries to redeem the same again, then to merge.
    set_mode(&holder, REENTER_REDEEM).await;
    let before = market.chain.balance(who).await;
    let (pa, na) = (wei(ETH / 2 + 1), wei(ETH / 4 + 3));
    mined(holder.redeem(series, pa, na).send().await).await;
    assert_eq!(
        market.chain.balance(who).await - before,
        claim(pa, p) + claim(na, n),
        "exactly its entitlement"
    );
    assert_eq!(market.claims(series, who).await, (wei(2 * ETH) - pa, wei(2 * ETH) - na));
    assert_eq!(
        (holder.reentered().call().await.unwrap(), holder.refused().call().await.unwrap()),
        (U256::ZERO, wei(2))
    );

    set_mode(&holder, REENTER_MERGE).await;
    let before = market.chain.balance(who).await;
    mined(holder.redeem(series, wei(ETH / 2), U256::ZERO).send().await).await;
    assert_eq!(market.chain.balance(who).await - before, claim(wei(ETH / 2), p));
    assert_eq!(
        (holder.reentered().call().await.unwrap(), holder.refused().call().await.unwrap()),
        (U256::ZERO, wei(3))
    );
    let before = market.chain.balance(who).await;
    mined(holder.merge(series, wei(ETH / 4)).send().await).await;
    assert_eq!(
        market.chain.balance(who).await - before,
        wei(ETH / 4),
        "a merge after publication pays the amount"
    );
    assert_eq!(
        (holder.reentered().call().await.unwrap(), holder.refused().call().await.unwrap()),
        (U256::ZERO, wei(4))
    );

    // Refusing a redemption's payment fails only that redemption; alice redeems meanwhile.
    set_mode(&holder, REVERT).await;
    let (hp, hn) = market.claims(series, who).await;
    assert_refused_without_change(&market, series, &holder, holder.redeem(series, hp, hn)).await;
    let (paid, _) = market.redeem(alice, series, wei(ETH / 2), wei(ETH / 2)).await;
    assert_eq!(paid, wei(ETH / 2));

    // Accepting again, it redeems the rest for exactly its entitlement.
    set_mode(&holder, ACCEPT).await;
    let before = market.chain.balance(who).await;
    mined(holder.redeem(series, hp, hn).send().await).await;
    assert_eq!(market.chain.balance(who).await - before, claim(hp, p) + claim(hn, n));
    assert_eq!(holder.reentered().call().await.unwrap(), U256::ZERO);
    assert_eq!(market.supplies(series).await, (U256::ZERO, U256::ZERO));
    let dust = market.vault.dust(series).call().await.unwrap();
    assert_eq!(market.collateral(series).await, dust);
    assert!(dust < wei(8));
    market.assert_books(&[series]).await;
}

#[tokio::test]
async fn create_series_twice_reverts_series_exists() {
    let market = Market::start().await;
    let series = market.create(MATURITY, wad("2600.5")).await;
    let e = vault_refusal(
        market.vault.createSeries(MATURITY, wad("2600.5").raw()).from(market.account(2)).call().await,
    );
    assert_eq!(e, PNVaultErrors::SeriesExists(PNVault::SeriesExists { seriesId: series }));
    // Another strike or another maturity is another series.
    market.create(MATURITY, wad("2600.500000000000000001")).await;
    market.create(MATURITY + 1, wad("2600.5")).await;
}

#[tokio::test]
async fn split_and_create_after_publication_revert_already_settled() {
    let market = Market::start().await;
    let alice = market.account(1);
    let series = market.create(MATURITY, wad("2500")).await;
    market.split(alice, series, wei(ETH)).await;
    market.publish(MATURITY, wad("2400")).await;
    let settled =
        PNVaultErrors::AlreadySettled(PNVault::AlreadySettled { settlementId: settlement_id(MATURITY) });
    let e = vault_refusal(market.vault.split(series).from(alice).value(wei(ETH)).call().await);
    assert_eq!(e, settled);
    let e = vault_refusal(market.vault.createSeries(MATURITY, wad("2600").raw()).call().await);
    assert_eq!(e, settled);
    // Merge and redeem still work.
    market.merge(alice, series, wei(ETH / 2)).await;
    let (paid, _) = market.redeem(alice, series, wei(ETH / 2), wei(ETH / 2)).await;
    assert_eq!(paid, wei(ETH / 2));
    market.assert_books(&[series]).await;
}

#[tokio::test]
async fn zero_strikes_zero_amounts_and_unknown_series_are_refused() {
    let market = Market::start().await;
    let alice = market.account(1);
    let e = vault_refusal(market.vault.createSeries(MATURITY, 0).call().await);
    assert_eq!(e, PNVaultErrors::ZeroStrike(PNVault::ZeroStrike {}));
    let series = market.create(MATURITY, wad("0.000000000000000001")).await;
    let zero = PNVaultErrors::ZeroAmount(PNVault::ZeroAmount {});
    assert_eq!(vault_refusal(market.vault.split(series).from(alice).call().await), zero);
    market.split(alice, series, wei(ETH)).await;
    assert_eq!(vault_refusal(market.vault.merge(series, U256::ZERO).from(alice).call().await), zero);
    market.publish(MATURITY, wad("2500")).await;
    assert_eq!(
        vault_refusal(market.vault.redeem(series, U256::ZERO, U256::ZERO).from(alice).call().await),
        zero
    );

    // More than one holds is the token's named error.
    let e = token_refusal(market.vault.merge(series, wei(ETH + 1)).from(alice).call().await);
    assert_eq!(
        e,
        PNTokenErrors::ERC20InsufficientBalance(PNToken::ERC20InsufficientBalance {
            sender: alice,
            balance: wei(ETH),
            needed: wei(ETH + 1)
        })
    );

    let unknown = B256::repeat_byte(0x5e);
    let e = PNVaultErrors::UnknownSeries(PNVault::UnknownSeries { seriesId: unknown });
    assert_eq!(vault_refusal(market.vault.split(unknown).from(alice).value(wei(1)).call().await), e);
    assert_eq!(vault_refusal(market.vault.merge(unknown, wei(1)).from(alice).call().await), e);
    assert_eq!(vault_refusal(market.vault.redeem(unknown, wei(1), U256::ZERO).from(alice).call().await), e);
    assert_eq!(vault_refusal(market.vault.payouts(unknown).call().await), e);
    assert_eq!(vault_refusal(market.vault.dust(unknown).call().await), e);
    market.assert_books(&[series]).await;
}

#[tokio::test]
async fn token_names_and_symbols_say_the_strike_and_maturity() {
    let market = Market::start().await;
    // (maturity, strike, date and time, compact date, strike as written).
    let cases = [
        (MATURITY, "2600", "2025-06-12T16:00:00Z", "20250612", "2600"),
        (MATURITY, "2600.5", "2025-06-12T16:00:00Z", "20250612", "2600.5"),
        (1_767_600_000, "1234.05", "2026-01-05T08:00:00Z", "20260105", "1234.05"),
        (1_835_424_005, "0.000000000000000001", "2028-02-29T08:00:05Z", "20280229", "0.000000000000000001"),
        (0, "100000", "1970-01-01T00:00:00Z", "19700101", "100000"),
    ];
    for (maturity, strike, at, day, written) in cases {
        let series = market.create(maturity, wad(strike)).await;
        let (p, n) = market.tokens(series).await;
        for (side, token) in [("P", &p), ("N", &n)] {
            assert_eq!(
                token.name().call().await.unwrap(),
                format!("fixd ETH-USD {side} {at} strike {written}")
            );
            assert_eq!(token.symbol().call().await.unwrap(), format!("{side}-ETHUSD-{day}-{written}"));
            assert_eq!(token.decimals().call().await.unwrap(), 18);
            assert_eq!(token.vault().call().await.unwrap(), market.consumers.vault);
        }
    }
    // Spelt out once, for a reader of this test.
    let series = series_id(settlement_id(MATURITY), wad("2600.5"));
    let (p, _) = market.tokens(series).await;
    assert_eq!(p.name().call().await.unwrap(), "fixd ETH-USD P 2025-06-12T16:00:00Z strike 2600.5");
    assert_eq!(p.symbol().call().await.unwrap(), "P-ETHUSD-20250612-2600.5");
}

#[tokio::test]
async fn only_the_vault_mints_and_burns_and_a_token_is_initialized_once() {
    let market = Market::start().await;
    let alice = market.account(1);
    let series = market.create(MATURITY, wad("2500")).await;
    let (p, _) = market.tokens(series).await;
    let only = PNTokenErrors::OnlyVault(PNToken::OnlyVault { caller: alice });
    assert_eq!(token_refusal(p.mint(alice, wei(ETH)).from(alice).call().await), only);
    assert_eq!(token_refusal(p.burn(alice, wei(ETH)).from(alice).call().await), only);
    let again = PNTokenErrors::AlreadyInitialized(PNToken::AlreadyInitialized {});
    assert_eq!(token_refusal(p.initialize("x".into(), "x".into()).from(alice).call().await), again);
    let implementation =
        PNToken::new(market.vault.tokenImplementation().call().await.unwrap(), market.provider());
    assert_eq!(
        token_refusal(implementation.initialize("x".into(), "x".into()).from(alice).call().await),
        again
    );
}

#[tokio::test]
async fn the_reader_computes_fixd_proto_settlement_ids_and_reads_publications() {
    let market = Market::start().await;
    let provider = market.provider();
    let default = SettlementReader::new(market.consumers.reader, provider.clone());
    let other_params = MethodologyParams {
        window_secs: 1800,
        partitions: 6,
        grace_secs: 30,
        min_venues: 2,
        min_partitions: 5,
        max_venue_deviation_bp: 250,
        two_venue_agreement_bp: 50,
        max_two_venue_partitions: 3,
    };
    assert!(other_params.validate().is_ok());
    let other = SettlementReader::deploy(
        provider.clone(),
        market.chain.address(),
        methodology_bytes(&other_params).into(),
    )
    .await
    .expect("a reader for other parameters deploys");
    assert_eq!(
        default.methodology().call().await.unwrap(),
        Bytes::from(methodology_bytes(&MethodologyParams::default()))
    );
    for maturity in [0, 1, 255, 256, MATURITY, 1_767_600_000, u64::MAX] {
        let spec = |params| SettlementSpec { index: Index::EthUsd, maturity, params };
        let default_id = spec(MethodologyParams::default()).id();
        let other_id = spec(other_params).id();
        assert_ne!(default_id, other_id);
        assert_eq!(default.settlementIdAt(maturity).call().await.unwrap(), default_id, "maturity {maturity}");
        assert_eq!(other.settlementIdAt(maturity).call().await.unwrap(), other_id, "maturity {maturity}");
    }

    // Reading a settlement: unsettled until published, then its value and when.
    let id = settlement_id(MATURITY);
    assert!(!default.isSettled(id).call().await.unwrap());
    let e = refusal::<SettlementReaderErrors, _>(default.settledValue(id).call().await);
    assert_eq!(e, SettlementReaderErrors::NotSettled(SettlementReader::NotSettled { settlementId: id }));
    let receipt = market.publish(MATURITY, wad("2434.34")).await;
    let block = provider.get_block_by_number(receipt.block_number.unwrap().into()).await.unwrap().unwrap();
    assert!(default.isSettled(id).call().await.unwrap());
    let settled = default.settledValue(id).call().await.unwrap();
    assert_eq!((settled.value, settled.publishedAt), (wei(wad("2434.34").raw()), block.header.timestamp));
    // The other methodology's settlement at the same maturity is another one, still open.
    assert!(!other.isSettled(other.settlementIdAt(MATURITY).call().await.unwrap()).call().await.unwrap());
}

/// The README's example of reading a settlement from another contract, as the README shows it:
/// `settle` reverts `NotSettled(id)` before publication and stores the value after.
#[tokio::test]
async fn the_readme_example_settles_from_the_reader() {
    let source =
        std::fs::read_to_string(workspace_root().join("contracts/examples/SettledForward.sol")).unwrap();
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let body =
        &source[source.find("import {ISettlementOracle}").expect("the example imports the interface")..];
    assert!(
        readme.contains(body.trim_end()),
        "README.md shows contracts/examples/SettledForward.sol as it is"
    );

    let market = Market::start().await;
    let forward = SettledForward::deploy(market.provider(), market.consumers.reader, MATURITY)
        .await
        .expect("the example deploys");
    let id = settlement_id(MATURITY);
    let e = refusal::<SettlementReaderErrors, _>(forward.settle().call().await);
    assert_eq!(e, SettlementReaderErrors::NotSettled(SettlementReader::NotSettled { settlementId: id }));
    market.publish(MATURITY, wad("2750.913776791666666666")).await;
    mined(forward.settle().send().await).await;
    assert_eq!(forward.settledPrice().call().await.unwrap(), wei(wad("2750.913776791666666666").raw()));
}

#[tokio::test]
async fn the_gamma_adapter_prices_a_published_settlement_with_8_decimals() {
    let market = Market::start().await;
    let gamma = GammaPriceAdapter::new(market.consumers.gamma, market.provider());
    assert_eq!(gamma.asset().call().await.unwrap(), NATIVE_ETH);
    assert_eq!(gamma.settlements().call().await.unwrap(), market.consumers.reader);
    let expiry = wei(MATURITY.into());
    let price = gamma.getExpiryPrice(NATIVE_ETH, expiry).call().await.unwrap();
    assert_eq!((price.price, price.isFinalized), (U256::ZERO, false));
    assert!(!gamma.isDisputePeriodOver(NATIVE_ETH, expiry).call().await.unwrap());

    let usdc = Address::repeat_byte(0xc0);
    let unsupported =
        GammaPriceAdapterErrors::UnsupportedAsset(GammaPriceAdapter::UnsupportedAsset { asset: usdc });
    assert_eq!(
        refusal::<GammaPriceAdapterErrors, _>(gamma.getExpiryPrice(usdc, expiry).call().await),
        unsupported
    );
    assert_eq!(
        refusal::<GammaPriceAdapterErrors, _>(gamma.isDisputePeriodOver(usdc, expiry).call().await),
        unsupported
    );

    let value = wad("2750.867975958333333333");
    market.publish(MATURITY, value).await;
    let price = gamma.getExpiryPrice(NATIVE_ETH, expiry).call().await.unwrap();
    assert_eq!((price.price, price.isFinalized), (wei(value.raw() / 10_000_000_000), true));
    assert_eq!(price.price, wei(275_086_797_595), "truncated to 8 decimals");
    assert!(gamma.isDisputePeriodOver(NATIVE_ETH, expiry).call().await.unwrap());
    assert_eq!(
        refusal::<GammaPriceAdapterErrors, _>(gamma.getExpiryPrice(usdc, expiry).call().await),
        unsupported
    );

    // A second later, or past any u64 maturity, is no published settlement.
    for other in [expiry + wei(1), wei(u128::from(u64::MAX)) + wei(1 + u128::from(MATURITY))] {
        let price = gamma.getExpiryPrice(NATIVE_ETH, other).call().await.unwrap();
        assert_eq!((price.price, price.isFinalized), (U256::ZERO, false), "expiry {other}");
    }
    // The adapter refuses an asset of zero at deployment.
    let bad = GammaPriceAdapter::deploy_builder(market.provider(), market.consumers.reader, Address::ZERO)
        .call()
        .await;
    assert_eq!(
        refusal::<GammaPriceAdapterErrors, _>(bad),
        GammaPriceAdapterErrors::BadAdapter(GammaPriceAdapter::BadAdapter {})
    );
}

#[tokio::test]
async fn dust_is_collateral_less_outstanding_claims_and_the_vault_covers_its_books() {
    let market = Market::start().await;
    let (alice, bob) = (market.account(1), market.account(2));
    let strike = wad("1500");
    let series = market.create(MATURITY, strike).await;
    market.split(alice, series, wei(ETH + 2)).await;
    market.split(bob, series, wei(10)).await;
    assert_eq!(market.vault.dust(series).call().await.unwrap(), U256::ZERO, "none before publication");

    let x = wad("4500");
    market.publish(MATURITY, x).await;
    let (p, n) = pn_split(x, strike);
    assert_eq!((p, n), (wad("0.333333333333333333"), wad("0.666666666666666667")));

    let expected_dust = |collateral: U256, (ps, ns): (U256, U256)| collateral - claim(ps, p) - claim(ns, n);
    let mut max_dust = U256::ZERO;
    let steps: [(Address, u128, u128, bool); 8] = [
        (bob, 1, 0, false),
        (bob, 3, 0, false),
        (bob, 0, 1, false),
        (bob, 0, 2, false),
        (alice, 7, 0, true),
        (alice, ETH / 3, ETH / 7, false),
        (bob, 6, 7, false),
        (alice, 0, 5, false),
    ];
    for (who, pa, na, merge) in steps {
        if merge {
            market.merge(who, series, wei(pa)).await;
        } else {
            let (paid, _) = market.redeem(who, series, wei(pa), wei(na)).await;
            assert_eq!(paid, claim(wei(pa), p) + claim(wei(na), n));
        }
        let dust = market.vault.dust(series).call().await.unwrap();
        assert_eq!(dust, expected_dust(market.collateral(series).await, market.supplies(series).await));
        max_dust = max_dust.max(dust);
        market.assert_books(&[series]).await;
    }
    assert!(max_dust > U256::ZERO, "rounding left dust on the way");

    // ETH forced into the vault (as a self-destruct could) is no series' collateral.
    let vault = market.consumers.vault;
    let balance = market.chain.balance(vault).await;
    let _: () =
        market.provider().raw_request("anvil_setBalance".into(), (vault, balance + wei(ETH))).await.unwrap();
    let total = market.vault.totalCollateral().call().await.unwrap();
    assert_eq!(market.chain.balance(vault).await, total + wei(ETH));
    assert_eq!(total, market.collateral(series).await);
    let dust = market.vault.dust(series).call().await.unwrap();
    assert_eq!(dust, expected_dust(market.collateral(series).await, market.supplies(series).await));

    // Everything redeems; the series keeps only its dust.
    for who in [alice, bob] {
        let (pa, na) = market.claims(series, who).await;
        if pa != U256::ZERO || na != U256::ZERO {
            let (paid, _) = market.redeem(who, series, pa, na).await;
            assert_eq!(paid, claim(pa, p) + claim(na, n));
        }
    }
    assert_eq!(market.supplies(series).await, (U256::ZERO, U256::ZERO));
    assert_eq!(market.vault.dust(series).call().await.unwrap(), market.collateral(series).await);
    assert!(market.chain.balance(vault).await >= market.vault.totalCollateral().call().await.unwrap());
}

/// Gas of the vault's entry points and of Gamma's read through the adapter. Run with
/// `--nocapture` to see the table (`contracts/README.md`); the test asserts what each call did,
/// not its gas. `getExpiryPrice` is measured as a transaction calling it (its receipt's gas,
/// so 21,000 and its calldata are included), before and after publication.
#[tokio::test]
async fn pn_vault_gas_report() {
    let market = Market::start().await;
    let (alice, bob) = (market.account(1), market.account(2));
    let strike = wad("2000");
    let mut rows: Vec<(&str, u64)> = Vec::new();

    let receipt = mined(market.vault.createSeries(MATURITY, strike.raw()).send().await).await;
    let series = series_id(settlement_id(MATURITY), strike);
    assert_eq!(receipt.decoded_log::<PNVault::SeriesCreated>().unwrap().seriesId, series);
    rows.push(("createSeries (two token clones, named)", receipt.gas_used));
    let receipt = market.split(alice, series, wei(10 * ETH)).await;
    rows.push((
        "split, the vault's first (collateral, totalCollateral, supplies, balances from zero)",
        receipt.gas_used,
    ));
    let receipt = market.split(bob, series, wei(10 * ETH)).await;
    rows.push(("split, a new holder of a funded series (balances from zero)", receipt.gas_used));
    let receipt = market.split(alice, series, wei(5 * ETH)).await;
    rows.push(("split, again by the same holder", receipt.gas_used));
    let receipt = market.merge(alice, series, wei(ETH)).await;
    rows.push(("merge (part of the holder's claims)", receipt.gas_used));

    let gamma = GammaPriceAdapter::new(market.consumers.gamma, market.provider());
    let expiry = wei(MATURITY.into());
    let receipt = mined(gamma.getExpiryPrice(NATIVE_ETH, expiry).send().await).await;
    rows.push(("getExpiryPrice through the adapter, unpublished (a transaction)", receipt.gas_used));

    let x = wad("2500");
    market.publish(MATURITY, x).await;
    let (p, n) = pn_split(x, strike);
    let (paid, receipt) = market.redeem(alice, series, wei(ETH), U256::ZERO).await;
    assert_eq!(paid, wei(p.raw()));
    rows.push(("redeem, P only", receipt.gas_used));
    let (paid, receipt) = market.redeem(alice, series, U256::ZERO, wei(ETH)).await;
    assert_eq!(paid, wei(n.raw()));
    rows.push(("redeem, N only", receipt.gas_used));
    let (paid, receipt) = market.redeem(alice, series, wei(ETH), wei(ETH)).await;
    assert_eq!(paid, wei(ETH));
    rows.push(("redeem, P and N", receipt.gas_used));
    let (paid, receipt) = market.redeem(bob, series, wei(10 * ETH), wei(10 * ETH)).await;
    assert_eq!(paid, wei(10 * ETH));
    rows.push(("redeem, P and N, all the holder's (balances to zero)", receipt.gas_used));

    let price = gamma.getExpiryPrice(NATIVE_ETH, expiry).call().await.unwrap();
    assert_eq!((price.price, price.isFinalized), (wei(x.raw() / 10_000_000_000), true));
    let call = gamma.getExpiryPrice(NATIVE_ETH, expiry);
    let calldata_gas: u64 = call.calldata().iter().map(|&b| if b == 0 { 4 } else { 16 }).sum();
    let receipt = mined(call.send().await).await;
    rows.push(("getExpiryPrice through the adapter, published (a transaction)", receipt.gas_used));
    rows.push((
        "getExpiryPrice, published: its execution (less 21,000 and the calldata)",
        receipt.gas_used - 21_000 - calldata_gas,
    ));
    let estimate = gamma.getExpiryPrice(NATIVE_ETH, expiry).estimate_gas().await.unwrap();
    rows.push(("getExpiryPrice, published: eth_estimateGas of the call", estimate));
    market.assert_books(&[series]).await;

    let lines: Vec<String> = rows.iter().map(|(what, gas)| format!("| {what} | {gas} |")).collect();
    println!("| call | gas |\n|---|---:|\n{}", lines.join("\n"));
}
