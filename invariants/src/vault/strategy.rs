//! The generator of the vault's run: a proptest state machine whose reference is the
//! [`VaultModel`], drawing each step from the state it will meet (unpublished settlements
//! first), and whose system under test is a [`VaultRun`].

use fixd_proto::value::WAD;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::{BoxedStrategy, Union};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use super::call::{Forgery, HolderMode, Recipient, Side, Signers};
use super::model::{VaultConfig, VaultModel};
use super::plan::{BadSeries, Portion, ValuePick, VaultStep};
use super::run::VaultRun;
use super::world::{ACTORS, Actor, EOAS};
use crate::strategy::committee;

/// The reference state: the deployment and the model.
#[derive(Clone)]
pub struct VaultReference {
    pub config: VaultConfig,
    pub model: VaultModel,
}

/// Only the deployment: the model follows from it and the steps.
impl std::fmt::Debug for VaultReference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultReference").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The state machine over [`VaultStep`]s.
#[derive(Debug)]
pub struct VaultMachine;

/// A maturity: mostly on the hour in 2023–2033; sometimes the ends of `uint64`, which the
/// tokens' names must still render.
fn maturity() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => (1_700_000_000u64..2_000_000_000).prop_map(|t| t - t % 3_600),
        1 => Just(0u64),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ]
}

/// A strike in USD per ETH (WAD): mostly 1,000 to 5,000 dollars, to the wei or round; and the
/// far ends: 1 wei, under a dollar, beyond any price, `uint128` max.
fn strike() -> impl Strategy<Value = u128> {
    prop_oneof![
        6 => (1_000 * WAD)..=(5_000 * WAD),
        3 => (1_000u128..=5_000).prop_map(|d| d * WAD),
        1 => Just(1u128),
        1 => 1u128..WAD,
        1 => (1u128 << 100)..=u128::MAX,
        1 => Just(u128::MAX),
    ]
}

fn mode() -> impl Strategy<Value = HolderMode> {
    prop_oneof![
        3 => Just(HolderMode::Accept),
        2 => Just(HolderMode::ReenterMerge),
        2 => Just(HolderMode::ReenterRedeem),
        1 => Just(HolderMode::Revert),
    ]
}

/// One to three maturities, one or two strikes each.
fn config() -> impl Strategy<Value = VaultConfig> {
    let strikes = proptest::collection::vec(proptest::collection::vec(strike(), 1..=2), 3);
    (committee(), proptest::collection::vec(maturity(), 1..=3), strikes, proptest::array::uniform3(mode()))
        .prop_map(|(committee, mut maturities, strikes, modes)| {
            maturities.sort_unstable();
            maturities.dedup();
            let mut series = Vec::new();
            for (m, strikes) in strikes.iter().take(maturities.len()).enumerate() {
                for strike in strikes {
                    if !series.contains(&(m as u8, *strike)) {
                        series.push((m as u8, *strike));
                    }
                }
            }
            VaultConfig { committee, maturities, series, modes, start: 1_700_000_000 }
        })
}

fn actor() -> impl Strategy<Value = Actor> + Clone {
    (0..ACTORS as u8).prop_map(Actor)
}

fn eoa() -> impl Strategy<Value = Actor> + Clone {
    (0..EOAS as u8).prop_map(Actor)
}

/// What a split sends: 1 wei, a few wei, odd amounts, up to 100 ETH, and now and then 2^90 to
/// 2^100 wei; 0 now and then, which must fail.
fn split_amount() -> impl Strategy<Value = u128> {
    prop_oneof![
        1 => Just(0u128),
        3 => Just(1u128),
        4 => 2u128..1_000,
        2 => (0u128..(1 << 80)).prop_map(|a| a | 1),
        6 => (WAD / 1_000)..(100 * WAD),
        1 => (1u128 << 90)..(1 << 100),
    ]
}

/// Mostly within the balance; sometimes one over or absurdly over, which must fail.
fn portion() -> impl Strategy<Value = Portion> {
    prop_oneof![
        1 => Just(Portion::Zero),
        2 => Just(Portion::One),
        3 => Just(Portion::All),
        8 => any::<u64>().prop_map(Portion::Part),
        1 => Just(Portion::Over),
        1 => Just(Portion::Huge),
    ]
}

/// One side of a redemption: as [`portion`], with zero (redeeming the other side alone) more often.
fn redeem_portion() -> impl Strategy<Value = Portion> {
    prop_oneof![3 => Just(Portion::Zero), 12 => portion()]
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::P), Just(Side::N)]
}

fn recipient() -> impl Strategy<Value = Recipient> {
    prop_oneof![
        8 => actor().prop_map(Recipient::Actor),
        1 => Just(Recipient::Vault),
        1 => Just(Recipient::Zero),
    ]
}

/// Values at the edges: 0, 1, `uint128` max, a strike ±1 wei or exactly, twice a strike;
/// realistic prices; anything.
fn value() -> impl Strategy<Value = ValuePick> {
    prop_oneof![
        4 => (any::<Index>(), -1i8..=1).prop_map(|(at, offset)| ValuePick::Strike { at, offset }),
        1 => any::<Index>().prop_map(|at| ValuePick::Double { at }),
        4 => ((1_000 * WAD)..=(5_000 * WAD)).prop_map(ValuePick::Of),
        1 => Just(ValuePick::Of(0)),
        1 => Just(ValuePick::Of(1)),
        1 => Just(ValuePick::Of(u128::MAX)),
        2 => any::<u128>().prop_map(ValuePick::Of),
    ]
}

fn signers() -> impl Strategy<Value = Signers> {
    prop_oneof![
        6 => any::<u8>().prop_map(|start| Signers::Quorum { start }),
        1 => any::<u8>().prop_map(|start| Signers::TooFew { start }),
    ]
}

fn step<S: Strategy<Value = VaultStep> + 'static>(weight: u32, s: S) -> (u32, BoxedStrategy<VaultStep>) {
    (weight, s.boxed())
}

impl ReferenceStateMachine for VaultMachine {
    type State = VaultReference;
    type Transition = VaultStep;

    fn init_state() -> BoxedStrategy<VaultReference> {
        config().prop_map(|config| VaultReference { model: VaultModel::new(&config), config }).boxed()
    }

    fn transitions(state: &VaultReference) -> BoxedStrategy<VaultStep> {
        let m = &state.model;
        let series = 0..m.series.len() as u8;
        let unpublished: Vec<u8> =
            (0..m.maturities.len() as u8).filter(|i| m.published[usize::from(*i)].is_none()).collect();
        let maturity: BoxedStrategy<u8> = if unpublished.is_empty() {
            (0..m.maturities.len() as u8).boxed()
        } else {
            prop_oneof![4 => select(unpublished), 1 => 0..m.maturities.len() as u8].boxed()
        };
        // Splits go mostly to series still open; redemptions and transfers mostly to an
        // actor's series where it holds P or N, merges where it holds both.
        let open: Vec<u8> = series.clone().filter(|s| m.value(usize::from(*s)).is_none()).collect();
        let splitter: BoxedStrategy<(Actor, u8)> = if open.is_empty() {
            (actor(), series.clone()).boxed()
        } else {
            prop_oneof![4 => (actor(), select(open)), 1 => (actor(), series.clone())].boxed()
        };
        let holdings: Vec<(Actor, u8)> = Actor::all()
            .flat_map(|a| series.clone().map(move |s| (a, s)))
            .filter(|(a, s)| {
                let series = &m.series[usize::from(*s)];
                series.p.balances[usize::from(a.0)] != 0 || series.n.balances[usize::from(a.0)] != 0
            })
            .collect();
        let pairs: Vec<(Actor, u8)> = holdings
            .iter()
            .copied()
            .filter(|(a, s)| {
                let series = &m.series[usize::from(*s)];
                series.p.balances[usize::from(a.0)] != 0 && series.n.balances[usize::from(a.0)] != 0
            })
            .collect();
        let any_of = |pairs: Vec<(Actor, u8)>| -> BoxedStrategy<(Actor, u8)> {
            if pairs.is_empty() {
                (actor(), series.clone()).boxed()
            } else {
                prop_oneof![4 => select(pairs), 1 => (actor(), series.clone())].boxed()
            }
        };
        let (holding, merger) = (any_of(holdings), any_of(pairs));
        let holder = (EOAS as u8..ACTORS as u8).prop_map(Actor);
        Union::new_weighted(vec![
            step(
                20,
                (splitter, split_amount()).prop_map(|((by, series), amount)| VaultStep::Split {
                    by,
                    series,
                    amount,
                }),
            ),
            step(
                10,
                (merger, portion()).prop_map(|((by, series), amount)| VaultStep::Merge {
                    by,
                    series,
                    amount,
                }),
            ),
            step(
                16,
                (holding.clone(), redeem_portion(), redeem_portion())
                    .prop_map(|((by, series), p, n)| VaultStep::Redeem { by, series, p, n }),
            ),
            step(
                10,
                (holding, side(), recipient(), portion()).prop_map(|((by, series), side, to, amount)| {
                    VaultStep::Transfer { by, series, side, to, amount }
                }),
            ),
            step(
                2,
                (maturity, value(), any::<u32>(), signers(), any::<bool>()).prop_map(
                    |(maturity, value, round, signers, batch)| VaultStep::Publish {
                        maturity,
                        value,
                        round,
                        signers,
                        batch,
                    },
                ),
            ),
            step(3, (holder, mode()).prop_map(|(holder, mode)| VaultStep::SetMode { holder, mode })),
            step(
                1,
                (
                    eoa(),
                    series.clone(),
                    side(),
                    prop_oneof![Just(Forgery::Mint), Just(Forgery::Burn), Just(Forgery::Initialize)],
                )
                    .prop_map(|(by, series, side, forgery)| VaultStep::Forge {
                        by,
                        series,
                        side,
                        forgery,
                    }),
            ),
            step(
                1,
                (
                    eoa(),
                    series,
                    prop_oneof![
                        Just(BadSeries::Duplicate),
                        Just(BadSeries::ZeroStrike),
                        Just(BadSeries::AfterPublication)
                    ],
                )
                    .prop_map(|(by, series, pick)| VaultStep::CreateSeries {
                        by,
                        series,
                        pick,
                    }),
            ),
        ])
        .boxed()
    }

    fn apply(mut state: VaultReference, step: &VaultStep) -> VaultReference {
        let call = step.resolve(&state.model);
        state.model.apply(&call);
        state
    }
}

impl StateMachineTest for VaultMachine {
    type SystemUnderTest = VaultRun;
    type Reference = Self;

    fn init_test(reference: &VaultReference) -> VaultRun {
        VaultRun::deploy(&reference.config)
    }

    fn apply(mut run: VaultRun, reference: &VaultReference, step: VaultStep) -> VaultRun {
        let call = step.resolve(&run.model);
        run.step(&call);
        assert_eq!(run.model, reference.model, "the generator's model and the run's took different paths");
        run
    }

    fn teardown(mut run: VaultRun, _reference: VaultReference) {
        run.drain();
    }
}
