//! Steps: what the generator draws, resolved against the model into a concrete [`VaultCall`]
//! only when it runs. An amount is drawn as a [`Portion`] of what the caller holds then, so a
//! step keeps its meaning ("all of it", "a third", "one more than it holds") when shrinking
//! drops the steps before it; a value is drawn relative to the strikes it meets.

use alloy_primitives::U256;
use proptest::sample::Index;

use super::call::{Forgery, HolderMode, Recipient, Side, Signers, VaultCall};
use super::model::VaultModel;
use super::world::Actor;

/// An amount, as a part of a balance `b` met when the step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Portion {
    Zero,
    One,
    All,
    /// `⌊b · f / 2^64⌋`: any amount within the balance, odd ones included.
    Part(u64),
    /// `b + 1`: one more than held.
    Over,
    /// `2^256 − 1`.
    Huge,
}

impl Portion {
    pub fn of(self, balance: u128) -> U256 {
        let b = U256::from(balance);
        match self {
            Portion::Zero => U256::ZERO,
            Portion::One => U256::from(1),
            Portion::All => b,
            Portion::Part(f) => (b * U256::from(f)) >> 64,
            Portion::Over => b + U256::from(1),
            Portion::Huge => U256::MAX,
        }
    }
}

/// A published value, drawn before the strikes it meets are known.
#[derive(Clone, Copy, Debug)]
pub enum ValuePick {
    Of(u128),
    /// One of the maturity's strikes, moved by `offset` wei (−1, 0 or +1; saturating).
    Strike {
        at: Index,
        offset: i8,
    },
    /// Twice one of its strikes (saturating): p = n = ½ exactly.
    Double {
        at: Index,
    },
}

/// Which `createSeries` that must fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadSeries {
    /// One that exists.
    Duplicate,
    /// At strike 0.
    ZeroStrike,
    /// At a new strike for a published settlement (a duplicate while it is unpublished).
    AfterPublication,
}

/// One drawn step. Series, maturities and actors are indices into the case's.
#[derive(Clone, Debug)]
pub enum VaultStep {
    Split { by: Actor, series: u8, amount: u128 },
    Merge { by: Actor, series: u8, amount: Portion },
    Redeem { by: Actor, series: u8, p: Portion, n: Portion },
    Transfer { by: Actor, series: u8, side: Side, to: Recipient, amount: Portion },
    Publish { maturity: u8, value: ValuePick, round: u32, signers: Signers, batch: bool },
    SetMode { holder: Actor, mode: HolderMode },
    Forge { by: Actor, series: u8, side: Side, forgery: Forgery },
    CreateSeries { by: Actor, series: u8, pick: BadSeries },
}

impl VaultStep {
    /// The concrete call this step makes in `model`'s state.
    pub fn resolve(&self, model: &VaultModel) -> VaultCall {
        let holder = |by: Actor| usize::from(by.0);
        match *self {
            VaultStep::Split { by, series, amount } => VaultCall::Split { by, series, amount },
            VaultStep::Merge { by, series, amount } => {
                let s = &model.series[usize::from(series)];
                let held = s.p.balances[holder(by)].min(s.n.balances[holder(by)]);
                VaultCall::Merge { by, series, amount: amount.of(held) }
            }
            VaultStep::Redeem { by, series, p, n } => {
                let s = &model.series[usize::from(series)];
                VaultCall::Redeem {
                    by,
                    series,
                    p_amount: p.of(s.p.balances[holder(by)]),
                    n_amount: n.of(s.n.balances[holder(by)]),
                }
            }
            VaultStep::Transfer { by, series, side, to, amount } => {
                let held = model.series[usize::from(series)].ledger(side).balances[holder(by)];
                VaultCall::Transfer { by, series, side, to, amount: amount.of(held) }
            }
            VaultStep::Publish { maturity, value, round, signers, batch } => {
                let strikes: Vec<u128> =
                    model.series.iter().filter(|s| s.maturity == maturity).map(|s| s.strike).collect();
                let strike = |at: &Index| strikes.get(at.index(strikes.len().max(1))).copied().unwrap_or(1);
                let value = match value {
                    ValuePick::Of(v) => v,
                    ValuePick::Strike { at, offset } => match offset {
                        o if o < 0 => strike(&at).saturating_sub(1),
                        0 => strike(&at),
                        _ => strike(&at).saturating_add(1),
                    },
                    ValuePick::Double { at } => strike(&at).saturating_mul(2),
                };
                VaultCall::Publish { maturity, value, round, signers, batch }
            }
            VaultStep::SetMode { holder, mode } => VaultCall::SetMode { holder, mode },
            VaultStep::Forge { by, series, side, forgery } => VaultCall::Forge { by, series, side, forgery },
            VaultStep::CreateSeries { by, series, pick } => {
                let s = &model.series[usize::from(series)];
                let taken = |strike: u128| {
                    model.series.iter().any(|o| o.maturity == s.maturity && o.strike == strike)
                };
                let strike = match pick {
                    BadSeries::Duplicate => s.strike,
                    BadSeries::ZeroStrike => 0,
                    BadSeries::AfterPublication if model.published[usize::from(s.maturity)].is_some() => {
                        (1..).map(|k| s.strike.wrapping_add(k)).find(|v| *v != 0 && !taken(*v)).unwrap_or(1)
                    }
                    BadSeries::AfterPublication => s.strike,
                };
                VaultCall::CreateSeries { by, maturity: s.maturity, strike }
            }
        }
    }
}
