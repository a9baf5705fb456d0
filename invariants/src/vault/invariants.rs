//! The vault's invariants, read through the contracts' own getters and balances after every
//! call and compared with the model (see [`super`] for why each matters).

use alloy_primitives::U256;
use fixd_proto::value::WAD;

use super::call::SeriesOnChain;
use super::model::{VAULT_HOLDER, VaultModel};
use super::world::{Actor, vault_world};
use crate::artifact::{PNHolder, PNToken, PNVault};
use crate::chain::Chain;
use crate::world::world;

/// Panics with what the run was doing.
macro_rules! check {
    ($cond:expr, $context:expr, $($what:tt)+) => {
        if !$cond {
            panic!("vault invariant broken after {}: {}", $context, format!($($what)+));
        }
    };
}

fn word(x: u128) -> U256 {
    U256::from(x)
}

/// Every invariant, against the chain; `after` names the call.
pub fn check(chain: &mut Chain, m: &VaultModel, series: &[SeriesOnChain], after: &str) {
    let vw = vault_world();
    let v = vw.vault;
    let wad = U256::from(WAD);

    // The vault's balance is its total collateral, the model's, and the sum over the series.
    let balance = chain.balance(v);
    let total = chain.view(v, &PNVault::totalCollateralCall {});
    check!(
        balance == total && total == word(m.vault_eth),
        after,
        "the vault holds {balance}, totalCollateral is {total}, the model says {}",
        m.vault_eth
    );
    let (mut collaterals, mut claims) = (U256::ZERO, U256::ZERO);
    for (s, (want, on)) in m.series.iter().zip(series).enumerate() {
        let got = chain.view(v, &PNVault::getSeriesCall { seriesId: on.id });
        let maturity = m.maturities[usize::from(want.maturity)];
        check!(
            (got.settlementId, got.maturity, got.strike, got.p, got.n)
                == (on.settlement, maturity, want.strike, on.p, on.n),
            after,
            "series {s} reads {got:?}, deployed as {on:?} at maturity {maturity} and strike {}",
            want.strike
        );
        check!(
            got.collateral == word(want.collateral),
            after,
            "series {s} holds {} collateral, the model says {}",
            got.collateral,
            want.collateral
        );
        collaterals += got.collateral;

        // Paid out never exceeds split in: the collateral is exactly their difference.
        check!(
            want.paid <= want.split && got.collateral == word(want.split - want.paid),
            after,
            "series {s} paid {} of {} split, and holds {}",
            want.paid,
            want.split,
            got.collateral
        );

        // Supplies and every holder's balance, to the unit.
        let p_supply = chain.view(on.p, &PNToken::totalSupplyCall {});
        let n_supply = chain.view(on.n, &PNToken::totalSupplyCall {});
        check!(
            (p_supply, n_supply) == (word(want.p.supply), word(want.n.supply)),
            after,
            "series {s} has supplies (P, N) = ({p_supply}, {n_supply}), the model says ({}, {})",
            want.p.supply,
            want.n.supply
        );
        if want.redemptions == 0 {
            check!(
                p_supply == n_supply,
                after,
                "series {s}: P supply {p_supply} != N supply {n_supply} before any redemption"
            );
        }
        for (token, ledger, side) in [(on.p, &want.p, "P"), (on.n, &want.n, "N")] {
            let mut sum = U256::ZERO;
            for (i, address) in Actor::all().map(Actor::address).chain([v]).enumerate() {
                let held = chain.view(token, &PNToken::balanceOfCall { account: address });
                check!(
                    held == word(ledger.balances[i]),
                    after,
                    "{} holds {held} {side} of series {s}, the model says {}",
                    if i == VAULT_HOLDER { "the vault".to_owned() } else { format!("actor {i}") },
                    ledger.balances[i]
                );
                sum += held;
            }
            check!(sum == word(ledger.supply), after, "series {s}: Σ {side} balances {sum} != its supply");
        }

        // What 1 P and 1 N pay, and the claims on the collateral from the chain's own reads.
        let payouts = chain.view(v, &PNVault::payoutsCall { seriesId: on.id });
        let want_payouts = match (m.value(s), m.shares(s)) {
            (Some(x), Some((p, n))) => (true, word(x), word(p), word(n)),
            _ => (false, U256::ZERO, U256::ZERO, U256::ZERO),
        };
        check!(
            (payouts.settled, payouts.value, payouts.p, payouts.n) == want_payouts,
            after,
            "series {s} payouts read ({}, {}, {}, {}), the model says {want_payouts:?}",
            payouts.settled,
            payouts.value,
            payouts.p,
            payouts.n
        );
        let owed = if payouts.settled {
            // Solvency in exact terms: WAD · collateral ≥ P·p + N·n, rounding aside.
            let exact = p_supply * payouts.p + n_supply * payouts.n;
            check!(
                got.collateral * wad >= exact,
                after,
                "series {s} holds {} but its P and N are owed {exact} / 10^18 wei",
                got.collateral
            );
            p_supply * payouts.p / wad + n_supply * payouts.n / wad
        } else {
            p_supply
        };
        check!(owed == word(m.claims(s)), after, "series {s} owes {owed}, the model says {}", m.claims(s));
        check!(owed <= got.collateral, after, "series {s} owes {owed} but holds {}", got.collateral);
        claims += owed;

        // Dust: the collateral less the claims, bounded by the rounding of each redemption.
        let dust = chain.view(v, &PNVault::dustCall { seriesId: on.id });
        check!(
            dust == got.collateral - owed,
            after,
            "series {s} dust {dust} != collateral {} − claims {owed}",
            got.collateral
        );
        let bound = 2 * u128::from(want.redemptions) + 1;
        check!(
            dust <= word(bound),
            after,
            "series {s} has {dust} wei of dust after {} redemptions (at most 2·redemptions + 1)",
            want.redemptions
        );
    }
    check!(collaterals == total, after, "Σ series collateral {collaterals} != totalCollateral {total}");
    check!(balance >= claims, after, "the vault holds {balance} but owes {claims}");

    // Every account's ETH, to the wei, and not one wei made or lost.
    let mut eth = balance;
    for actor in Actor::all() {
        let got = chain.balance(actor.address());
        check!(
            got == word(m.eth[usize::from(actor.0)]),
            after,
            "actor {} holds {got} wei, the model says {}",
            actor.0,
            m.eth[usize::from(actor.0)]
        );
        eth += got;
    }
    let relayer = chain.balance(world().relayer.address());
    check!(
        relayer == word(m.relayer_eth),
        after,
        "the relayer holds {relayer}, the model says {}",
        m.relayer_eth
    );
    eth += relayer;
    check!(
        eth == word(VaultModel::total_eth()),
        after,
        "{eth} wei exist, {} were funded",
        VaultModel::total_eth()
    );

    // Holders: every re-entry was refused, as often as the model counts; modes as set.
    for (h, holder) in vw.holders.iter().enumerate() {
        let reentered = chain.view(*holder, &PNHolder::reenteredCall {});
        let refused = chain.view(*holder, &PNHolder::refusedCall {});
        let mode = chain.view(*holder, &PNHolder::modeCall {});
        check!(reentered.is_zero(), after, "holder {h} re-entered the vault {reentered} times");
        check!(
            refused == U256::from(m.refused[h]) && mode == m.modes[h] as u8,
            after,
            "holder {h} reads (refused, mode) = ({refused}, {mode}), the model says ({}, {:?})",
            m.refused[h],
            m.modes[h]
        );
    }
}
