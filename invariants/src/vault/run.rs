//! One run of the vault: the oracle, the reader, the vault and the holders deployed in revm
//! beside the [`VaultModel`]; every call goes to both, and after each the two must agree and
//! the invariants must hold ([`super::invariants`]).

use std::sync::OnceLock;

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolCall, SolConstructor};
use fixd_proto::eip712::TypedData;
use fixd_proto::types::report::FinalReportBatch;
use fixd_proto::value::WAD;

use super::call::{Forgery, HolderMode, Recipient, SeriesOnChain, Signers, VaultCall};
use super::invariants;
use super::model::{VaultConfig, VaultModel, mul_wad};
use super::world::{ACTORS, Actor, EOAS, methodology, series_id, settlement_id, vault_world};
use crate::artifact::{
    ConsumerBytecodes, PNHolder, PNToken, PNVault, SettlementOracle as Oracle, SettlementReader,
};
use crate::call::Signatures;
use crate::chain::{Chain, Outcome};
use crate::model::{Expectation, START_BALANCE};
use crate::plan::members_from;
use crate::run::{deploy_oracle, explain, must_agree};
use crate::sign;
use crate::stats::VAULT;
use crate::world::world;

fn bytecodes() -> &'static ConsumerBytecodes {
    static CODE: OnceLock<ConsumerBytecodes> = OnceLock::new();
    CODE.get_or_init(|| ConsumerBytecodes::load().unwrap_or_else(|e| panic!("{e}")))
}

/// Where the vault's creation code was read from.
pub fn vault_artifact() -> &'static std::path::Path {
    &bytecodes().vault_path
}

/// The EVM and the model, in step.
#[derive(Debug)]
pub struct VaultRun {
    pub chain: Chain,
    pub model: VaultModel,
    /// The series, in the model's order.
    pub series: Vec<SeriesOnChain>,
}

impl Drop for VaultRun {
    fn drop(&mut self) {
        VAULT.count_chain(&self.chain);
    }
}

impl VaultRun {
    /// Deploys the oracle (`config`'s committee), the reader (proto's default methodology), the
    /// vault and the holders; sets the holders' modes and creates the series; checks that the
    /// chain starts where the model does.
    pub fn deploy(config: &VaultConfig) -> Self {
        let (w, vw, code) = (world(), vault_world(), bytecodes());
        let relayer = w.relayer.address();
        let mut funded: Vec<Address> = (0..EOAS as u8).map(|a| Actor(a).address()).collect();
        funded.push(relayer);
        let mut chain = Chain::new(&funded, U256::from(START_BALANCE), config.start);
        let oracle = deploy_oracle(&mut chain, &config.committee, 0, 0);
        let deploy = |chain: &mut Chain, creation: &Bytes, args: Vec<u8>, name: &str| {
            let init: Bytes = [creation.as_ref(), &args].concat().into();
            chain.deploy(relayer, init).unwrap_or_else(|o| panic!("{name} deployment failed: {o:?}"))
        };
        let bcs = fixd_proto::encoding::to_bcs(&methodology());
        let args =
            SettlementReader::constructorCall { oracle_: oracle, methodology_: bcs.into() }.abi_encode();
        assert_eq!(deploy(&mut chain, &code.reader, args, "SettlementReader"), vw.reader);
        let args = PNVault::constructorCall { settlements_: vw.reader }.abi_encode();
        assert_eq!(deploy(&mut chain, &code.vault, args, "PNVault"), vw.vault);
        for holder in vw.holders {
            let args = PNHolder::constructorCall { vault_: vw.vault }.abi_encode();
            assert_eq!(deploy(&mut chain, &code.holder, args, "PNHolder"), holder);
        }
        VAULT.count_run();
        let mut run = Self { chain, model: VaultModel::new(config), series: Vec::new() };
        for (h, mode) in config.modes.iter().enumerate() {
            if *mode != HolderMode::Accept {
                let set = run.execute(&VaultCall::SetMode { holder: Actor((EOAS + h) as u8), mode: *mode });
                assert!(set.is_success(), "setup: setMode failed: {set:?}");
            }
        }
        for (i, maturity) in config.maturities.iter().enumerate() {
            let id = run.chain.view(vw.reader, &SettlementReader::settlementIdAtCall { maturity: *maturity });
            assert_eq!(id, settlement_id(*maturity), "the reader's id of maturity {i} is not proto's");
        }
        for (maturity, strike) in &config.series {
            let maturity = config.maturities[usize::from(*maturity)];
            let data = PNVault::createSeriesCall { maturity, strike: *strike };
            let created = run.send(relayer, vw.vault, U256::ZERO, &data);
            let Outcome::Success(returned) = created else {
                panic!("setup: createSeries({maturity}, {strike}) failed{}", explain(&created))
            };
            let id =
                PNVault::createSeriesCall::abi_decode_returns(&returned).expect("createSeries returns an id");
            let settlement = settlement_id(maturity);
            assert_eq!(id, series_id(settlement, *strike), "createSeries returned another series id");
            let got = run.chain.view(vw.vault, &PNVault::getSeriesCall { seriesId: id });
            run.series.push(SeriesOnChain { id, settlement, p: got.p, n: got.n });
        }
        invariants::check(&mut run.chain, &run.model, &run.series, "deployment");
        run
    }

    /// Runs `call` on the model and the chain; panics unless they agree, and `redeem` returns
    /// what the model pays, and every invariant holds afterwards. What the model expected.
    pub fn step(&mut self, call: &VaultCall) -> Expectation {
        let refused: u64 = self.model.refused.iter().sum();
        let expected = self.model.apply(call);
        VAULT.record(call.kind(), expected.because);
        if self.model.refused.iter().sum::<u64>() > refused {
            VAULT.record(call.kind(), "… and a re-entering holder was refused");
        }
        if let VaultCall::Redeem { series, .. } = call {
            let s = usize::from(*series);
            if expected.succeeds && self.model.dust(s) > u128::from(self.model.series[s].redemptions) {
                VAULT.record(call.kind(), "… and left more wei of dust than redemptions");
            }
        }
        let outcome = self.execute(call);
        must_agree(&outcome, &expected, call);
        if let (VaultCall::Redeem { series, p_amount, n_amount, .. }, Outcome::Success(returned)) =
            (call, &outcome)
        {
            let (p, n) =
                self.model.shares(usize::from(*series)).expect("a redeem that succeeds is published");
            let want = mul_wad(p_amount.to(), p) + mul_wad(n_amount.to(), n);
            let paid =
                PNVault::redeemCall::abi_decode_returns(returned).expect("redeem returns what it paid");
            assert_eq!(paid, U256::from(want), "redeem returned {paid}, the model pays {want}: {call:?}");
        }
        invariants::check(&mut self.chain, &self.model, &self.series, &format!("{call:?}"));
        expected
    }

    /// Sends `call` to the chain.
    pub fn execute(&mut self, call: &VaultCall) -> Outcome {
        let vw = vault_world();
        let relayer = world().relayer.address();
        let id = |series: &u8| self.series[usize::from(*series)].id;
        match call {
            VaultCall::Split { by, series, amount } => {
                let value = U256::from(*amount);
                if by.is_eoa() {
                    self.send(by.address(), vw.vault, value, &PNVault::splitCall { seriesId: id(series) })
                } else {
                    self.send(relayer, by.address(), value, &PNHolder::splitCall { seriesId: id(series) })
                }
            }
            VaultCall::Merge { by, series, amount } => {
                if by.is_eoa() {
                    let data = PNVault::mergeCall { seriesId: id(series), amount: *amount };
                    self.send(by.address(), vw.vault, U256::ZERO, &data)
                } else {
                    let data = PNHolder::mergeCall { seriesId: id(series), amount: *amount };
                    self.send(relayer, by.address(), U256::ZERO, &data)
                }
            }
            VaultCall::Redeem { by, series, p_amount, n_amount } => {
                let (p, n) = (*p_amount, *n_amount);
                if by.is_eoa() {
                    let data = PNVault::redeemCall { seriesId: id(series), pAmount: p, nAmount: n };
                    self.send(by.address(), vw.vault, U256::ZERO, &data)
                } else {
                    let data = PNHolder::redeemCall { seriesId: id(series), pAmount: p, nAmount: n };
                    self.send(relayer, by.address(), U256::ZERO, &data)
                }
            }
            VaultCall::Transfer { by, series, side, to, amount } => {
                let token = self.series[usize::from(*series)].token(*side);
                let to = match to {
                    Recipient::Actor(actor) => actor.address(),
                    Recipient::Vault => vw.vault,
                    Recipient::Zero => Address::ZERO,
                };
                if by.is_eoa() {
                    self.send(by.address(), token, U256::ZERO, &PNToken::transferCall { to, value: *amount })
                } else {
                    let data = PNHolder::transferCall { token, to, amount: *amount };
                    self.send(relayer, by.address(), U256::ZERO, &data)
                }
            }
            VaultCall::Publish { maturity, value, round, signers, batch } => {
                let committee = &self.model.committee;
                let t = committee.threshold as usize;
                let keys = match *signers {
                    Signers::Quorum { start } => members_from(committee, start, t),
                    Signers::TooFew { start } => members_from(committee, start, t.saturating_sub(1)),
                };
                let id = settlement_id(self.model.maturities[usize::from(*maturity)]);
                let report = sign::bare_report(id, *value, *round);
                let domain = sign::domain();
                if *batch {
                    let batch = FinalReportBatch { reports: vec![report] };
                    let signatures = sign::sign(batch.eip712_digest(&domain), &Signatures::by(&keys));
                    let reports = batch.packed().expect("a batch of one report packs").into();
                    self.send(
                        relayer,
                        world().oracle,
                        U256::ZERO,
                        &Oracle::publishBatchCall { reports, signatures },
                    )
                } else {
                    let signatures = sign::sign(report.eip712_digest(&domain), &Signatures::by(&keys));
                    let report = Oracle::FinalReport {
                        settlementId: id,
                        value: U256::from(*value),
                        round: *round,
                        outcomes: Vec::new(),
                    };
                    self.send(
                        relayer,
                        world().oracle,
                        U256::ZERO,
                        &Oracle::publishCall { report, signatures },
                    )
                }
            }
            VaultCall::SetMode { holder, mode } => self.send(
                relayer,
                holder.address(),
                U256::ZERO,
                &PNHolder::setModeCall { mode_: *mode as u8 },
            ),
            VaultCall::Forge { by, series, side, forgery } => {
                let token = self.series[usize::from(*series)].token(*side);
                let from = by.address();
                match forgery {
                    Forgery::Mint => self.send(
                        from,
                        token,
                        U256::ZERO,
                        &PNToken::mintCall { to: from, amount: U256::from(1) },
                    ),
                    Forgery::Burn => {
                        let data = PNToken::burnCall { from: Actor(0).address(), amount: U256::from(1) };
                        self.send(from, token, U256::ZERO, &data)
                    }
                    Forgery::Initialize => {
                        let data = PNToken::initializeCall { name_: "forged".into(), symbol_: "F".into() };
                        self.send(from, token, U256::ZERO, &data)
                    }
                }
            }
            VaultCall::CreateSeries { by, maturity, strike } => {
                let maturity = self.model.maturities[usize::from(*maturity)];
                self.send(
                    by.address(),
                    vw.vault,
                    U256::ZERO,
                    &PNVault::createSeriesCall { maturity, strike: *strike },
                )
            }
        }
    }

    fn send(&mut self, from: Address, to: Address, value: U256, call: &impl SolCall) -> Outcome {
        self.chain.transact(from, to, value, call.abi_encode().into())
    }

    /// Ends the run: every holder takes payments again, every settlement is published (odd
    /// maturities in a batch), and every actor redeems all its P and N of every series. Then
    /// nothing is left in the vault but what the tokens stuck at its own address claim and the
    /// dust, and not one wei was made or lost.
    pub fn drain(&mut self) {
        for h in 0..self.model.modes.len() {
            if self.model.modes[h] == HolderMode::Revert {
                let set = self
                    .step(&VaultCall::SetMode { holder: Actor((EOAS + h) as u8), mode: HolderMode::Accept });
                assert!(set.succeeds);
            }
        }
        for m in 0..self.model.maturities.len() as u8 {
            if self.model.published[usize::from(m)].is_none() {
                let value = 2_500 * WAD + u128::from(m);
                let call = VaultCall::Publish {
                    maturity: m,
                    value,
                    round: 0,
                    signers: Signers::Quorum { start: m },
                    batch: m % 2 == 1,
                };
                assert!(self.step(&call).succeeds, "drain: the model refused a quorum's publication");
            }
        }
        for s in 0..self.series.len() {
            for by in Actor::all() {
                let series = &self.model.series[s];
                let (p, n) = (series.p.balances[usize::from(by.0)], series.n.balances[usize::from(by.0)]);
                if p != 0 || n != 0 {
                    let call = VaultCall::Redeem {
                        by,
                        series: s as u8,
                        p_amount: U256::from(p),
                        n_amount: U256::from(n),
                    };
                    let redeemed = self.step(&call);
                    assert!(redeemed.succeeds, "drain: actor {} could not redeem all of series {s}", by.0);
                }
            }
        }
        let m = &self.model;
        for (s, series) in m.series.iter().enumerate() {
            let stuck = (series.p.supply, series.n.supply);
            let at_vault = (series.p.balances[ACTORS], series.n.balances[ACTORS]);
            assert_eq!(stuck, at_vault, "drain: series {s} has P or N left outside the vault's own address");
            assert_eq!(series.collateral, m.claims(s) + m.dust(s), "drain: series {s}");
        }
        let mut on_chain =
            self.chain.balance(vault_world().vault) + self.chain.balance(world().relayer.address());
        for actor in Actor::all() {
            on_chain += self.chain.balance(actor.address());
        }
        assert_eq!(on_chain, U256::from(VaultModel::total_eth()), "ETH on chain was made or lost");
    }
}
