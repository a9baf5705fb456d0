//! The vault's property run, and a few cases by hand that pin down what it relies on: at least `FIXD_VAULT_CALLS` calls (50,000 by default) in random
//! sequences against `PNVault` over a real `SettlementOracle`, each checked against the vault
//! model (see `fixd_invariants::vault` for what is asserted). A failing sequence is shrunk,
//! reported, and its seed kept in `invariants/proptest-regressions/vault.txt`, which every later
//! run replays first.

use alloy_primitives::U256;
use fixd_invariants::artifact::PNToken;
use fixd_invariants::model::Committee;
use fixd_invariants::stats::VAULT;
use fixd_invariants::vault::call::{HolderMode, Signers, VaultCall};
use fixd_invariants::vault::model::VaultConfig;
use fixd_invariants::vault::run::{VaultRun, vault_artifact};
use fixd_invariants::vault::strategy::VaultMachine;
use fixd_invariants::vault::world::Actor;
use fixd_invariants::world::world;
use fixd_proto::value::WAD;

use crate::support::{Campaign, run_campaign};

/// Calls made at least, unless `FIXD_VAULT_CALLS` says otherwise.
const DEFAULT_CALLS: u64 = 50_000;
/// Steps per case: enough for splits, transfers and merges before a publication and
/// redemptions after it; short enough that a failure shrinks quickly.
const STEPS: std::ops::RangeInclusive<usize> = 20..=100;
/// Calls per case, counted low (a case also deploys, creates its series, publishes what is
/// left and redeems every balance), so the run makes at least the calls asked for.
const CALLS_PER_CASE: u64 = 72;

#[test]
fn pn_vault_invariants_hold() {
    run_campaign::<VaultMachine>(Campaign {
        name: "vault run",
        calls_var: "FIXD_VAULT_CALLS",
        default_calls: DEFAULT_CALLS,
        steps: STEPS,
        calls_per_case: CALLS_PER_CASE,
        regressions: "proptest-regressions/vault.txt",
        artifact: vault_artifact(),
        tally: &VAULT,
    });
}

/// A case by hand: one series at 2,600 dollars maturing 2025-06-12T16:00:00Z (and two at the
/// ends of `uint64`), a committee of four of which three sign, holders accepting, re-entering
/// `merge`, and refusing.
fn config(modes: [HolderMode; 3]) -> VaultConfig {
    let mut members: Vec<_> = world().keys.iter().take(4).map(|k| k.address()).collect();
    members.sort();
    VaultConfig {
        committee: Committee { members, threshold: 3 },
        maturities: vec![1_749_744_000, 0, u64::MAX],
        series: vec![(0, 2_600 * WAD), (0, 2_600 * WAD + WAD / 2), (1, 1), (2, u128::MAX)],
        modes,
        start: 1_700_000_000,
    }
}

fn step(run: &mut VaultRun, call: VaultCall) -> bool {
    run.step(&call).succeeds
}

fn redeem(by: u8, series: u8, p: u128, n: u128) -> VaultCall {
    VaultCall::Redeem { by: Actor(by), series, p_amount: U256::from(p), n_amount: U256::from(n) }
}

fn publish(maturity: u8, value: u128) -> VaultCall {
    VaultCall::Publish { maturity, value, round: 1, signers: Signers::Quorum { start: 1 }, batch: false }
}

#[test]
fn tokens_are_named_by_maturity_and_strike_at_any_maturity() {
    let run = &mut VaultRun::deploy(&config([HolderMode::Accept; 3]));
    let named = |run: &mut VaultRun, s: usize| {
        let token = run.series[s].p;
        (run.chain.view(token, &PNToken::nameCall {}), run.chain.view(token, &PNToken::symbolCall {}))
    };
    assert_eq!(
        named(run, 0),
        ("fixd ETH-USD P 2025-06-12T16:00:00Z strike 2600".to_owned(), "P-ETHUSD-20250612-2600".to_owned())
    );
    assert_eq!(named(run, 1).1, "P-ETHUSD-20250612-2600.5");
    assert_eq!(named(run, 2).1, "P-ETHUSD-19700101-0.000000000000000001");
    assert!(named(run, 3).0.starts_with("fixd ETH-USD P "), "a token at maturity 2^64 − 1 has a name");
}

/// 3 wei split at x = 2S: p = n = ½, each side's claim of 1.5 wei rounds down to 1, so 1 wei
/// is dust before anyone redeems; redeeming 1 P and 1 N pays 0, and the last holder is paid
/// what is left but the dust.
#[test]
fn rounding_leaves_dust_in_the_vault_and_never_owes_more_than_it_holds() {
    let run = &mut VaultRun::deploy(&config([HolderMode::Accept; 3]));
    assert!(step(run, VaultCall::Split { by: Actor(0), series: 0, amount: 3 }));
    assert!(!step(run, redeem(0, 0, 1, 1)), "no redemption before publication");
    assert!(step(run, publish(0, 5_200 * WAD)));
    assert_eq!(run.model.shares(0), Some((WAD / 2, WAD / 2)));
    assert_eq!((run.model.claims(0), run.model.dust(0)), (2, 1));
    assert!(step(run, redeem(0, 0, 1, 1)), "pays ⌊½⌋ + ⌊½⌋ = 0");
    assert!(!step(run, redeem(0, 0, 3, 0)), "only 2 P are left");
    assert!(step(run, redeem(0, 0, 2, 2)));
    assert_eq!(run.model.eth[0], run.model.eth[1] - 1, "Alice put in 3 wei and got 2 back");
    assert_eq!((run.model.series[0].collateral, run.model.dust(0)), (1, 1));
    assert!(
        !step(run, VaultCall::Split { by: Actor(1), series: 0, amount: 1 }),
        "no split after publication"
    );
    run.drain();
}

/// A holder that re-enters `merge` when paid is refused by the guard and keeps its payment; one
/// that refuses payment cannot merge, nor redeem what pays it, but can redeem what pays nothing.
#[test]
fn holders_that_re_enter_are_refused_and_holders_that_refuse_are_not_paid() {
    let run = &mut VaultRun::deploy(&config([
        HolderMode::ReenterMerge,
        HolderMode::ReenterRedeem,
        HolderMode::Revert,
    ]));
    for h in 3..6 {
        assert!(step(run, VaultCall::Split { by: Actor(h), series: 0, amount: 10 * WAD }));
    }
    assert!(step(run, VaultCall::Merge { by: Actor(3), series: 0, amount: U256::from(4 * WAD) }));
    assert!(!step(run, VaultCall::Merge { by: Actor(5), series: 0, amount: U256::from(1) }));
    assert!(step(run, publish(0, 2_000 * WAD)), "x ≤ S: P takes all");
    assert!(step(run, redeem(4, 0, 10 * WAD, 0)));
    assert!(!step(run, redeem(5, 0, 1, 0)));
    assert!(step(run, redeem(5, 0, 0, 10 * WAD)), "N pays nothing at x ≤ S, so nothing is refused");
    assert_eq!(run.model.refused[..2], [1, 1]);
    run.drain();
}
