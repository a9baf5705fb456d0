//! The model of the vault: what `PNVault` and its `PNToken`s should do, from their NatSpec
//! alone, in exact integers, as a pure state machine over concrete [`VaultCall`]s.
//!
//! [`VaultModel::apply`] says whether a call must succeed and, if so, moves the model as the
//! contracts should: each series' collateral and token ledgers, the publications, every
//! account's ETH to the wei (gas is free on the test chain) and the holders' counts of refused
//! re-entries. The rules:
//! - `split{v}` mints `v` P and `v` N to the caller and adds `v` to the series' collateral,
//!   iff `v > 0` and the settlement is unpublished;
//! - `merge(a)` burns `a` P and `a` N of the caller and pays it `a` wei, at any time, iff
//!   `a > 0`, the caller holds both, and it takes the payment;
//! - after publication of `x`, with `(p, n) = fixd_proto::payout::pn_split(x, S)`,
//!   `redeem(a, b)` burns `a` P and `b` N and pays `⌊a·p/WAD⌋ + ⌊b·n/WAD⌋` wei, iff `a` or `b`
//!   is not zero, the caller holds both, and it takes the payment (when it is not zero);
//!   before publication it fails;
//! - tokens move by `transfer` as any ERC-20's (not to the zero address); only the vault
//!   mints, burns and initializes them;
//! - a settlement publishes once, by a quorum of the committee; a batch naming a published
//!   settlement skips it; no series is created twice, at strike 0, or after publication;
//! - a holder in a re-entering mode that is paid tries the vault again, is refused by the
//!   guard (counted in its `refused`) and keeps the payment; one in the refusing mode fails
//!   every call that would pay it.

use alloy_primitives::U256;
use fixd_proto::payout::pn_split;
use fixd_proto::value::{WAD, Wad};

use super::call::{HolderMode, Recipient, Side, Signers, VaultCall};
use super::world::{ACTORS, Actor, EOAS, HOLDERS};
use crate::model::{Committee, Expectation, START_BALANCE, fails, ok};

/// Index of the vault's own address in a token ledger, after the actors.
pub const VAULT_HOLDER: usize = ACTORS;

/// The deployment of one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultConfig {
    pub committee: Committee,
    /// The settlements' maturities, distinct.
    pub maturities: Vec<u64>,
    /// The series, as (index into `maturities`, strike): distinct, strikes above zero.
    pub series: Vec<(u8, u128)>,
    /// Each holder's starting mode.
    pub modes: [HolderMode; HOLDERS],
    /// The clock.
    pub start: u64,
}

/// One token's balances: the actors', then the vault's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ledger {
    pub supply: u128,
    pub balances: [u128; ACTORS + 1],
}

impl Ledger {
    fn mint(&mut self, to: usize, amount: u128) {
        self.supply += amount;
        self.balances[to] += amount;
    }

    fn burn(&mut self, from: usize, amount: u128) {
        self.supply -= amount;
        self.balances[from] -= amount;
    }
}

/// One series (settlement, strike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeriesModel {
    /// Index into the maturities.
    pub maturity: u8,
    pub strike: u128,
    /// ETH held for the series: split, less paid.
    pub collateral: u128,
    pub p: Ledger,
    pub n: Ledger,
    /// All ETH ever split into the series.
    pub split: u128,
    /// All ETH ever paid out of it, by merge and redeem.
    pub paid: u128,
    /// Successful redemptions.
    pub redemptions: u64,
}

impl SeriesModel {
    pub fn ledger(&self, side: Side) -> &Ledger {
        match side {
            Side::P => &self.p,
            Side::N => &self.n,
        }
    }

    fn ledger_mut(&mut self, side: Side) -> &mut Ledger {
        match side {
            Side::P => &mut self.p,
            Side::N => &mut self.n,
        }
    }
}

/// The state the contracts should be in, and every balance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultModel {
    pub committee: Committee,
    pub maturities: Vec<u64>,
    /// Per maturity: `(value, publishedAt)` once published.
    pub published: Vec<Option<(u128, u64)>>,
    pub now: u64,
    pub series: Vec<SeriesModel>,
    /// ETH of each actor.
    pub eth: [u128; ACTORS],
    pub relayer_eth: u128,
    pub vault_eth: u128,
    pub modes: [HolderMode; HOLDERS],
    /// Each holder's refused re-entries (`PNHolder.refused`).
    pub refused: [u64; HOLDERS],
}

/// `⌊amount · share / WAD⌋`, exactly.
pub fn mul_wad(amount: u128, share: u128) -> u128 {
    (U256::from(amount) * U256::from(share) / U256::from(WAD)).to::<u128>()
}

impl VaultModel {
    /// The state right after deployment: series created, holders in their modes.
    pub fn new(config: &VaultConfig) -> Self {
        let series = config
            .series
            .iter()
            .map(|(maturity, strike)| SeriesModel {
                maturity: *maturity,
                strike: *strike,
                collateral: 0,
                p: Ledger::default(),
                n: Ledger::default(),
                split: 0,
                paid: 0,
                redemptions: 0,
            })
            .collect();
        Self {
            committee: config.committee.clone(),
            maturities: config.maturities.clone(),
            published: vec![None; config.maturities.len()],
            now: config.start,
            series,
            eth: std::array::from_fn(|i| if i < EOAS { START_BALANCE } else { 0 }),
            relayer_eth: START_BALANCE,
            vault_eth: 0,
            modes: config.modes,
            refused: [0; HOLDERS],
        }
    }

    /// All ETH there is: the funded EOAs' and the relayer's, never more or less.
    pub fn total_eth() -> u128 {
        START_BALANCE * (EOAS as u128 + 1)
    }

    /// The published value of series `s`' settlement.
    pub fn value(&self, s: usize) -> Option<u128> {
        self.published[usize::from(self.series[s].maturity)].map(|(value, _)| value)
    }

    /// `(p, n)` of series `s` once its settlement is published: `pn_split(x, S)`.
    pub fn shares(&self, s: usize) -> Option<(u128, u128)> {
        let strike = self.series[s].strike;
        self.value(s).map(|x| {
            let (p, n) = pn_split(Wad::from_raw(x), Wad::from_raw(strike));
            (p.raw(), n.raw())
        })
    }

    /// What every outstanding P and N of series `s` would be paid if redeemed now: the P supply
    /// (= the N supply) before publication, `⌊P·p/WAD⌋ + ⌊N·n/WAD⌋` after.
    pub fn claims(&self, s: usize) -> u128 {
        let series = &self.series[s];
        match self.shares(s) {
            None => series.p.supply,
            Some((p, n)) => mul_wad(series.p.supply, p) + mul_wad(series.n.supply, n),
        }
    }

    /// The series' rounding dust: collateral less claims (`PNVault.dust`).
    pub fn dust(&self, s: usize) -> u128 {
        self.series[s].collateral - self.claims(s)
    }

    /// Whether `actor` takes a payment from the vault.
    pub fn accepts(&self, actor: Actor) -> bool {
        actor.holder().is_none_or(|h| self.modes[h] != HolderMode::Revert)
    }

    /// Who pays the value of `by`'s call: the actor, or the relayer for a holder.
    fn payer_eth(&mut self, by: Actor) -> &mut u128 {
        if by.is_eoa() { &mut self.eth[usize::from(by.0)] } else { &mut self.relayer_eth }
    }

    /// The vault pays `amount` to `to`, which takes it (a re-entering holder is refused first).
    fn pay(&mut self, to: Actor, amount: u128) {
        if amount == 0 {
            return;
        }
        self.vault_eth -= amount;
        self.eth[usize::from(to.0)] += amount;
        if let Some(h) = to.holder()
            && matches!(self.modes[h], HolderMode::ReenterMerge | HolderMode::ReenterRedeem)
        {
            self.refused[h] += 1;
        }
    }

    /// Applies `call`: whether it must succeed, and if so its effects.
    pub fn apply(&mut self, call: &VaultCall) -> Expectation {
        match *call {
            VaultCall::Split { by, series, amount } => {
                let s = usize::from(series);
                if amount == 0 {
                    return fails("nothing to split");
                }
                if self.value(s).is_some() {
                    return fails("split after publication");
                }
                let payer = self.payer_eth(by);
                *payer = payer.checked_sub(amount).expect("the run never splits more than the payer holds");
                self.vault_eth += amount;
                let holder = usize::from(by.0);
                let series = &mut self.series[s];
                series.collateral += amount;
                series.split += amount;
                series.p.mint(holder, amount);
                series.n.mint(holder, amount);
                ok(if amount == 1 { "split of 1 wei" } else { "split" })
            }
            VaultCall::Merge { by, series, amount } => {
                let (s, holder) = (usize::from(series), usize::from(by.0));
                if amount.is_zero() {
                    return fails("nothing to merge");
                }
                let held = self.series[s].p.balances[holder].min(self.series[s].n.balances[holder]);
                if amount > U256::from(held) {
                    return fails("merge of more P or N than the caller holds");
                }
                if !self.accepts(by) {
                    return fails("merge to a holder that refuses the payment");
                }
                let amount = amount.to::<u128>();
                let series = &mut self.series[s];
                series.p.burn(holder, amount);
                series.n.burn(holder, amount);
                series.collateral -= amount;
                series.paid += amount;
                self.pay(by, amount);
                ok(if self.value(s).is_some() {
                    "merge after publication"
                } else {
                    "merge before publication"
                })
            }
            VaultCall::Redeem { by, series, p_amount, n_amount } => {
                let (s, holder) = (usize::from(series), usize::from(by.0));
                if p_amount.is_zero() && n_amount.is_zero() {
                    return fails("nothing to redeem");
                }
                let Some((p, n)) = self.shares(s) else {
                    return fails("redeem before publication");
                };
                let series = &self.series[s];
                if p_amount > U256::from(series.p.balances[holder])
                    || n_amount > U256::from(series.n.balances[holder])
                {
                    return fails("redeem of more P or N than the caller holds");
                }
                let (a, b) = (p_amount.to::<u128>(), n_amount.to::<u128>());
                let paid = mul_wad(a, p) + mul_wad(b, n);
                if paid != 0 && !self.accepts(by) {
                    return fails("redeem to a holder that refuses the payment");
                }
                let series = &mut self.series[s];
                series.p.burn(holder, a);
                series.n.burn(holder, b);
                series.collateral = series
                    .collateral
                    .checked_sub(paid)
                    .expect("the model pays a redemption no more than the series holds");
                series.paid += paid;
                series.redemptions += 1;
                self.pay(by, paid);
                ok(if paid == 0 { "redeem that rounds to 0 wei" } else { "redeem" })
            }
            VaultCall::Transfer { by, series, side, to, amount } => {
                let to = match to {
                    Recipient::Zero => return fails("transfer to the zero address"),
                    Recipient::Vault => VAULT_HOLDER,
                    Recipient::Actor(actor) => usize::from(actor.0),
                };
                let from = usize::from(by.0);
                let ledger = self.series[usize::from(series)].ledger_mut(side);
                if amount > U256::from(ledger.balances[from]) {
                    return fails("transfer of more than the sender holds");
                }
                let amount = amount.to::<u128>();
                ledger.balances[from] -= amount;
                ledger.balances[to] += amount;
                ok(if to == VAULT_HOLDER { "transfer to the vault itself" } else { "transfer" })
            }
            VaultCall::Publish { maturity, value, signers, batch, .. } => {
                if matches!(signers, Signers::TooFew { .. }) {
                    return fails("publication one signature short of a quorum");
                }
                let published = &mut self.published[usize::from(maturity)];
                match (published.is_some(), batch) {
                    (true, false) => fails("publication of a settlement already published"),
                    (true, true) => ok("batch that skips a settlement already published"),
                    (false, _) => {
                        *published = Some((value, self.now));
                        ok("publication")
                    }
                }
            }
            VaultCall::SetMode { holder, mode } => {
                let h = holder.holder().expect("only holders have a mode");
                self.modes[h] = mode;
                ok("set mode")
            }
            VaultCall::Forge { .. } => fails("a token's vault-only call by an EOA"),
            VaultCall::CreateSeries { maturity, strike, .. } => {
                if strike == 0 {
                    return fails("series at strike 0");
                }
                if self.series.iter().any(|s| s.maturity == maturity && s.strike == strike) {
                    return fails("series created twice");
                }
                assert!(
                    self.published[usize::from(maturity)].is_some(),
                    "the run creates new series at deployment only: {call:?}"
                );
                fails("series after publication")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(strike: u128) -> VaultModel {
        VaultModel::new(&VaultConfig {
            committee: Committee { members: Vec::new(), threshold: 1 },
            maturities: vec![1],
            series: vec![(0, strike)],
            modes: [HolderMode::Accept; HOLDERS],
            start: 0,
        })
    }

    fn publish(m: &mut VaultModel, value: u128) {
        let call = VaultCall::Publish {
            maturity: 0,
            value,
            round: 0,
            signers: Signers::Quorum { start: 0 },
            batch: false,
        };
        assert!(m.apply(&call).succeeds);
    }

    /// 3 wei split at x = 2S pay 1.5 wei a side: each side's claim rounds down, so the series
    /// holds 1 wei of dust before anyone redeems. Dust is below `2·redemptions + 2`, not
    /// `2·redemptions + 1`.
    #[test]
    fn dust_can_be_one_wei_before_any_redemption() {
        let mut m = model(1_000 * WAD);
        let split = VaultCall::Split { by: Actor(0), series: 0, amount: 3 };
        assert!(m.apply(&split).succeeds);
        publish(&mut m, 2_000 * WAD);
        assert_eq!(m.shares(0), Some((WAD / 2, WAD / 2)));
        assert_eq!((m.claims(0), m.dust(0), m.series[0].redemptions), (2, 1, 0));
    }

    /// Redeeming one P at a time at p = ½ pays 0 wei each time: every redemption leaves at most
    /// 2 wei behind, and the claims never exceed the collateral.
    #[test]
    fn redemptions_that_round_down_leave_dust_behind() {
        let mut m = model(1_000 * WAD);
        assert!(m.apply(&VaultCall::Split { by: Actor(1), series: 0, amount: 5 }).succeeds);
        publish(&mut m, 2_000 * WAD);
        for _ in 0..5 {
            let one = VaultCall::Redeem {
                by: Actor(1),
                series: 0,
                p_amount: U256::from(1),
                n_amount: U256::from(1),
            };
            let before = m.dust(0);
            assert!(m.apply(&one).succeeds);
            assert!(m.dust(0) <= before + 2);
            assert!(m.claims(0) <= m.series[0].collateral);
        }
        assert_eq!((m.series[0].collateral, m.claims(0), m.eth[1]), (5, 0, START_BALANCE - 5));
    }

    #[test]
    fn a_refusing_holder_fails_only_calls_that_pay_it() {
        let mut m = model(u128::MAX);
        m.modes[0] = HolderMode::Revert;
        let holder = Actor(EOAS as u8);
        assert!(m.apply(&VaultCall::Split { by: holder, series: 0, amount: 10 }).succeeds);
        assert!(!m.apply(&VaultCall::Merge { by: holder, series: 0, amount: U256::from(1) }).succeeds);
        publish(&mut m, 2_500 * WAD);
        // x ≤ S: n = 0, so redeeming N alone pays nothing and goes through.
        let n_only =
            VaultCall::Redeem { by: holder, series: 0, p_amount: U256::ZERO, n_amount: U256::from(10) };
        assert!(m.apply(&n_only).succeeds);
        let p_only =
            VaultCall::Redeem { by: holder, series: 0, p_amount: U256::from(10), n_amount: U256::ZERO };
        assert!(!m.apply(&p_only).succeeds);
    }
}
