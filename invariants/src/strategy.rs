//! The generator: a proptest state machine whose reference is the [`Model`], drawing each step
//! from the state it will meet (unpublished settlements, existing escrows, the owner, the
//! accounts with credits), and whose system under test is a [`Run`].

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::{BoxedStrategy, Union};
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest};

use crate::call::{BatchedReport, Call, Packing, Party};
use crate::model::{Committee, Config, MAX_BOND, Model};
use crate::plan::{
    BatchPlan, MemberOrder, Pick, PublishPlan, ReportDefect, SignatureDefect, SignedPick, SignerPick, Step,
    ThresholdPick, ValuePick, party,
};
use crate::run::Run;
use crate::world::{ACTORS, ActorId, DISPUTES, KEYS, SETTLEMENTS, world};

/// The reference state: the deployment parameters and the model.
#[derive(Clone)]
pub struct Reference {
    pub config: Config,
    pub model: Model,
}

/// Only the deployment: the model follows from it and the steps, and would bury a failure
/// report (and the regression file's comments) under its every field.
impl std::fmt::Debug for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reference").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The state machine over [`Step`]s.
#[derive(Debug)]
pub struct OracleMachine;

/// A valid committee: one to five of the seven keys, ascending, its threshold above two thirds.
pub fn committee() -> impl Strategy<Value = Committee> {
    (1u8..(1 << KEYS), 0u8..3).prop_map(|(mask, above)| {
        let mut members: Vec<_> =
            (0..KEYS).filter(|i| mask & (1 << i) != 0).map(|i| world().keys[i].address()).take(5).collect();
        members.sort();
        let n = members.len();
        let threshold = (Committee::min_threshold(n) + u64::from(above)).min(n as u64);
        Committee { members, threshold }
    })
}

fn config() -> impl Strategy<Value = Config> {
    let committee = committee();
    let delay = prop_oneof![Just(0u64), Just(1), Just(3_600), Just(86_400)];
    let reward_bp = prop_oneof![Just(0u128), Just(1), 1u128..=10_000, Just(10_000), Just(20_000)];
    (committee, delay, reward_bp, any::<[bool; 2]>(), proptest::array::uniform5(0u8..4)).prop_map(
        |(committee, delay, reward_bp, delegated, modes)| Config {
            committee,
            delay,
            reward_bp,
            delegated,
            modes,
            start: 1_700_000_000,
        },
    )
}

fn eoa() -> impl Strategy<Value = ActorId> + Clone {
    (0u8..5).prop_map(ActorId)
}

fn actor() -> impl Strategy<Value = ActorId> + Clone {
    (0..ACTORS as u8).prop_map(ActorId)
}

fn bond() -> impl Strategy<Value = u128> {
    prop_oneof![
        1 => Just(0u128),
        6 => 1u128..1_000_000,
        6 => 1_000_000_000_000_000u128..100_000_000_000_000_000_000,
        1 => Just(MAX_BOND),
        1 => Just(MAX_BOND + 1),
    ]
}

fn funding() -> impl Strategy<Value = u128> {
    prop_oneof![
        1 => Just(0u128),
        3 => 1u128..1_000_000,
        4 => 1_000_000_000_000_000u128..10_000_000_000_000_000_000_000,
        1 => Just(1u128 << 80),
    ]
}

fn permille() -> impl Strategy<Value = u16> {
    prop_oneof![1 => Just(0u16), 1 => Just(1000), 3 => 0u16..=1000]
}

fn pick() -> impl Strategy<Value = Pick> {
    (any::<Index>(), permille(), permille(), permille()).prop_map(|(escrow, refund, pooled, reward)| Pick {
        escrow,
        refund,
        pooled,
        reward,
    })
}

fn value() -> impl Strategy<Value = ValuePick> {
    prop_oneof![
        10 => any::<u128>().prop_map(ValuePick::Of),
        1 => Just(ValuePick::Of(u128::MAX)),
        1 => Just(ValuePick::TooLarge),
    ]
}

fn report_defect() -> impl Strategy<Value = ReportDefect> {
    prop_oneof![
        (any::<Index>(), any::<bool>()).prop_map(|(at, up)| ReportDefect::WrongBond { at, up }),
        (any::<Index>(), any::<Index>()).prop_map(|(at, other)| ReportDefect::WrongDisputer { at, other }),
        any::<Index>().prop_map(|at| ReportDefect::NotConserved { at }),
        any::<Index>().prop_map(|at| ReportDefect::RewardAboveBudget { at }),
        (0..=DISPUTES as u8).prop_map(|dispute| ReportDefect::UnknownEscrow { dispute }),
        any::<Index>().prop_map(|at| ReportDefect::Repeated { at }),
    ]
}

fn signers() -> impl Strategy<Value = SignerPick> {
    prop_oneof![
        3 => any::<u8>().prop_map(|start| SignerPick::Quorum { start }),
        1 => Just(SignerPick::All),
        1 => any::<u8>().prop_map(|start| SignerPick::TooFew { start }),
        1 => (any::<u8>(), any::<u8>())
            .prop_map(|(start, outsider)| SignerPick::Outsider { start, outsider }),
        1 => (any::<u8>(), any::<bool>())
            .prop_map(|(start, pending)| SignerPick::Stale { start, pending }),
        1 => (0u8..(1 << KEYS)).prop_map(|mask| SignerPick::Keys { mask }),
    ]
}

fn signature_defect() -> impl Strategy<Value = SignatureDefect> {
    prop_oneof![
        Just(SignatureDefect::Swapped),
        any::<Index>().prop_map(|at| SignatureDefect::Duplicated { at }),
        any::<Index>().prop_map(|at| SignatureDefect::HighS { at }),
        any::<Index>().prop_map(|at| SignatureDefect::BadV { at }),
        any::<Index>().prop_map(|at| SignatureDefect::WrongDigest { at }),
        Just(SignatureDefect::ExtraByte),
        Just(SignatureDefect::Truncated),
    ]
}

/// Half the reports are meant to be valid (a quorum of the committee in force, outcomes that
/// match and fit); the others have spoiled outcomes under good signatures, spoiled signatures
/// over good outcomes, or anything at all.
fn publish(settlement: BoxedStrategy<u8>) -> impl Strategy<Value = Step> {
    let quorum = || {
        prop_oneof![
            3 => any::<u8>().prop_map(|start| SignerPick::Quorum { start }),
            1 => Just(SignerPick::All),
        ]
    };
    let picks = || proptest::collection::vec(pick(), 0..=DISPUTES);
    let valid = (
        any::<u128>().prop_map(ValuePick::Of),
        picks(),
        Just(ReportDefect::None),
        quorum(),
        Just(SignatureDefect::None),
    );
    let bad_outcomes = (
        any::<u128>().prop_map(ValuePick::Of),
        picks(),
        report_defect(),
        quorum(),
        Just(SignatureDefect::None),
    );
    let bad_signatures = (
        any::<u128>().prop_map(ValuePick::Of),
        picks(),
        Just(ReportDefect::None),
        signers(),
        signature_defect(),
    );
    let anything = (
        value(),
        picks(),
        prop_oneof![Just(ReportDefect::None), report_defect()],
        signers(),
        prop_oneof![Just(SignatureDefect::None), signature_defect()],
    );
    (
        settlement,
        any::<u32>(),
        prop_oneof![
            6 => valid,
            2 => bad_outcomes,
            3 => bad_signatures,
            1 => anything,
        ],
    )
        .prop_map(|(settlement, round, (value, picks, defect, signers, signature_defect))| {
            Step::Publish(PublishPlan { settlement, value, round, picks, defect, signers, signature_defect })
        })
}

/// Reports of a batch: from one to six, over settlements drawn like a report's (so often the
/// same one twice, and already published ones), values often at the edges of `uint128`.
fn batched_reports(settlement: BoxedStrategy<u8>) -> impl Strategy<Value = Vec<BatchedReport>> + Clone {
    let value = prop_oneof![8 => any::<u128>(), 1 => Just(u128::MAX), 1 => Just(0u128)];
    let report = (settlement, value, any::<u32>()).prop_map(|(settlement, value, round)| BatchedReport {
        settlement,
        value,
        round,
    });
    proptest::collection::vec(report, 1..=6)
}

/// Signatures of something other than the batch (which may happen to be the batch).
fn signed_elsewhere() -> impl Strategy<Value = SignedPick> {
    prop_oneof![
        Just(SignedPick::WithoutLast),
        Just(SignedPick::WithOneMore),
        any::<Index>().prop_map(|at| SignedPick::ValueOff { at }),
        Just(SignedPick::Reversed),
        any::<Index>().prop_map(|at| SignedPick::SingleReport { at }),
    ]
}

/// Like [`publish`]'s: half the batches meant to be valid (a quorum of the committee in force
/// over the batch's own digest, packed whole); the others signed over another batch or one
/// report, with spoiled signatures, badly packed, or anything at all.
fn publish_batch(settlement: BoxedStrategy<u8>) -> impl Strategy<Value = Step> {
    let quorum = || {
        prop_oneof![
            3 => any::<u8>().prop_map(|start| SignerPick::Quorum { start }),
            1 => Just(SignerPick::All),
        ]
    };
    let reports = batched_reports(settlement);
    let whole = || reports.clone().prop_map(|reports| (reports, Packing::Whole));
    let ragged = prop_oneof![
        1 => Just((Vec::new(), Packing::Whole)),
        2 => reports.clone().prop_map(|reports| (reports, Packing::ExtraByte)),
        2 => reports.clone().prop_map(|reports| (reports, Packing::MissingByte)),
    ];
    let valid = (whole(), Just(SignedPick::Own), quorum(), Just(SignatureDefect::None));
    let other_digest = (whole(), signed_elsewhere(), quorum(), Just(SignatureDefect::None));
    let bad_signatures = (whole(), Just(SignedPick::Own), signers(), signature_defect());
    let bad_packing = (ragged, Just(SignedPick::Own), quorum(), Just(SignatureDefect::None));
    let anything = (
        whole(),
        prop_oneof![Just(SignedPick::Own), signed_elsewhere()],
        signers(),
        prop_oneof![Just(SignatureDefect::None), signature_defect()],
    );
    prop_oneof![
        6 => valid,
        2 => other_digest,
        3 => bad_signatures,
        1 => bad_packing,
        1 => anything,
    ]
    .prop_map(|((reports, packing), signed, signers, signature_defect)| {
        Step::PublishBatch(BatchPlan { reports, packing, signed, signers, signature_defect })
    })
}

fn post_bond(settlement: BoxedStrategy<u8>) -> impl Strategy<Value = Call> {
    (actor(), settlement, 0..DISPUTES as u8, bond())
        .prop_map(|(by, settlement, dispute, amount)| Call::PostBond { by, settlement, dispute, amount })
}

fn reclaim(escrow: BoxedStrategy<(u8, u8)>) -> impl Strategy<Value = Call> {
    (eoa(), escrow).prop_map(|(by, (settlement, dispute))| Call::ReclaimBond { by, settlement, dispute })
}

/// A withdrawal to the withdrawer itself, the relayer, or anyone (the oracle included).
fn withdraw(withdrawer: BoxedStrategy<ActorId>) -> impl Strategy<Value = Call> {
    let to = prop_oneof![
        3 => Just(None),
        3 => Just(Some(ACTORS)),
        2 => (0..=ACTORS + 1).prop_map(Some),
    ];
    (withdrawer, to).prop_map(|(by, to)| Call::Withdraw { by, to: to.map_or(Party::Actor(by), party) })
}

/// `Payee.arm` at Dave, Erin (a no-op while undelegated) or a `Payee`, in any mode.
fn arm() -> impl Strategy<Value = Call> {
    (3u8..ACTORS as u8, 0u8..4, 0..SETTLEMENTS as u8, 0..DISPUTES as u8).prop_map(
        |(target, mode, settlement, dispute)| Call::Arm {
            target: ActorId(target),
            mode,
            settlement,
            dispute,
        },
    )
}

fn propose_committee(by: BoxedStrategy<ActorId>) -> impl Strategy<Value = Step> {
    let threshold = prop_oneof![
        6 => (0u8..3).prop_map(|above| ThresholdPick::Valid { above }),
        1 => Just(ThresholdPick::TwoThirds),
        1 => Just(ThresholdPick::Zero),
        1 => Just(ThresholdPick::AboveMembers),
    ];
    let order = prop_oneof![
        6 => Just(MemberOrder::Ascending),
        1 => Just(MemberOrder::Descending),
        1 => Just(MemberOrder::Repeated),
        1 => Just(MemberOrder::WithZero),
    ];
    (by, 0u8..(1 << KEYS), threshold, order).prop_map(|(by, keys, threshold, order)| Step::ProposeCommittee {
        by,
        keys,
        threshold,
        order,
    })
}

/// To an EOA, to nobody (the zero address), or to a contract that can never accept.
fn transfer_ownership(by: BoxedStrategy<ActorId>) -> impl Strategy<Value = Call> {
    let to = prop_oneof![
        4 => eoa().prop_map(Some),
        1 => Just(None),
        1 => (5u8..8).prop_map(|a| Some(ActorId(a))),
    ];
    (by, to).prop_map(|(by, to)| Call::TransferOwnership { by, to })
}

fn boxed<S: Strategy<Value = Step> + 'static>(weight: u32, s: S) -> (u32, BoxedStrategy<Step>) {
    (weight, s.boxed())
}

fn call<S: Strategy<Value = Call> + 'static>(weight: u32, s: S) -> (u32, BoxedStrategy<Step>) {
    boxed(weight, s.prop_map(Step::Call))
}

impl ReferenceStateMachine for OracleMachine {
    type State = Reference;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Reference> {
        config().prop_map(|config| Reference { model: Model::new(&config), config }).boxed()
    }

    fn transitions(state: &Reference) -> BoxedStrategy<Step> {
        let m = &state.model;
        let unpublished: Vec<u8> =
            (0..SETTLEMENTS as u8).filter(|s| m.settlements[usize::from(*s)].published.is_none()).collect();
        let settlement: BoxedStrategy<u8> = if unpublished.is_empty() {
            (0..SETTLEMENTS as u8).boxed()
        } else {
            prop_oneof![4 => select(unpublished), 1 => 0..SETTLEMENTS as u8].boxed()
        };
        let any_escrow = (0..SETTLEMENTS as u8, 0..DISPUTES as u8);
        let escrow: BoxedStrategy<(u8, u8)> = if m.escrows.is_empty() {
            any_escrow.boxed()
        } else {
            prop_oneof![3 => select(m.escrows.keys().copied().collect::<Vec<_>>()), 1 => any_escrow].boxed()
        };
        let owner = prop_oneof![3 => Just(m.owner), 1 => eoa()];
        let claimant = match m.pending_owner.filter(|a| a.is_eoa()) {
            Some(pending) => prop_oneof![3 => Just(pending), 1 => eoa()].boxed(),
            None => eoa().boxed(),
        };
        let creditors: Vec<ActorId> = ActorId::all().filter(|a| m.credits[usize::from(a.0)] > 0).collect();
        let withdrawer = if creditors.is_empty() {
            actor().boxed()
        } else {
            prop_oneof![3 => select(creditors), 1 => actor()].boxed()
        };
        let delay = m.delay;
        let warp = prop_oneof![
            Just(1u64),
            Just(delay.saturating_sub(1)),
            Just(delay),
            Just(delay + 1),
            1u64..100_000,
        ];
        Union::new_weighted(vec![
            call(24, post_bond(settlement.clone())),
            call(6, (eoa(), funding()).prop_map(|(by, amount)| Call::FundPool { by, amount })),
            boxed(12, publish(settlement.clone())),
            boxed(8, publish_batch(settlement)),
            call(10, reclaim(escrow)),
            call(8, withdraw(withdrawer)),
            call(6, arm()),
            call(3, (3u8..5, any::<bool>()).prop_map(|(eoa, on)| Call::Delegate { eoa: ActorId(eoa), on })),
            boxed(4, propose_committee(owner.clone().boxed())),
            call(2, owner.clone().prop_map(|by| Call::CancelCommittee { by })),
            call(3, eoa().prop_map(|by| Call::ApplyCommittee { by })),
            call(2, transfer_ownership(owner.clone().boxed())),
            call(2, claimant.prop_map(|by| Call::AcceptOwnership { by })),
            call(1, owner.prop_map(|by| Call::RenounceOwnership { by })),
            call(6, warp.prop_map(|seconds| Call::Warp { seconds })),
        ])
        .boxed()
    }

    fn apply(mut state: Reference, step: &Step) -> Reference {
        let call = step.resolve(&state.model);
        state.model.apply(&call);
        state
    }
}

impl StateMachineTest for OracleMachine {
    type SystemUnderTest = Run;
    type Reference = Self;

    fn init_test(reference: &Reference) -> Run {
        Run::deploy(&reference.config)
    }

    fn apply(mut run: Run, reference: &Reference, step: Step) -> Run {
        let call = step.resolve(&run.model);
        run.step(&call);
        assert_eq!(run.model, reference.model, "the generator's model and the run's took different paths");
        run
    }

    fn teardown(mut run: Run, _reference: Reference) {
        run.drain();
    }
}
