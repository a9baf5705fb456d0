//! Fixed scenarios that pin down what the random run relies on: the digest the keys sign is the
//! contract's, EIP-7702 delegation is real, every payee mode is reached, and each way of
//! spoiling a report is refused. Each step still goes through `Run::step`, so the model and
//! every invariant are checked here too.

use alloy_primitives::{Address, U256};
use fixd_invariants::artifact::SettlementOracle;
use fixd_invariants::call::{
    BatchPublication, BatchedReport, Call, OutcomeSpec, Packing, Party, Publication, Signatures,
};
use fixd_invariants::model::{Committee, Config};
use fixd_invariants::plan::{
    BatchPlan, PublishPlan, ReportDefect, SignatureDefect, SignedPick, SignerPick, ValuePick,
};
use fixd_invariants::run::Run;
use fixd_invariants::sign;
use fixd_invariants::world::{ActorId, world};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Four members of the seven keys, three of whom must sign.
fn config() -> Config {
    let mut members: Vec<Address> = world().keys.iter().take(4).map(|k| k.address()).collect();
    members.sort();
    Config {
        committee: Committee { members, threshold: 3 },
        delay: 3_600,
        reward_bp: 500,
        delegated: [true, false],
        modes: [0; 5],
        start: 1_700_000_000,
    }
}

/// Some `Index` (proptest gives no constructor).
fn index() -> Index {
    any::<Index>().new_tree(&mut TestRunner::deterministic()).expect("an index").current()
}

fn plan(settlement: u8, picks: usize) -> PublishPlan {
    let pick = || fixd_invariants::plan::Pick { escrow: index(), refund: 400, pooled: 300, reward: 500 };
    PublishPlan {
        settlement,
        value: ValuePick::Of(2_598_500_000_000_000_000_000),
        round: 1,
        picks: (0..picks).map(|_| pick()).collect(),
        defect: ReportDefect::None,
        signers: SignerPick::Quorum { start: 1 },
        signature_defect: SignatureDefect::None,
    }
}

fn publish(run: &mut Run, plan: &PublishPlan) -> (bool, Publication) {
    let publication = plan.resolve(&run.model);
    let expected = run.step(&Call::Publish(publication.clone()));
    (expected.succeeds, publication)
}

#[test]
fn the_contract_signs_off_the_digest_proto_defines() {
    let mut run = Run::deploy(&config());
    let outcome = |dispute, bond| OutcomeSpec {
        dispute,
        disputer: ActorId(dispute),
        bond,
        refund: bond / 2,
        reward: 7,
        pooled: bond / 4,
        burned: bond - bond / 2 - bond / 4,
    };
    for outcomes in [vec![], vec![outcome(1, 1_000)], vec![outcome(3, 10), outcome(0, u128::from(u64::MAX))]]
    {
        let publication = Publication {
            settlement: 2,
            value: U256::from(2_598_500_000_000_000_000_000u128),
            round: 7,
            outcomes,
            signatures: Signatures::default(),
        };
        let report = sign::report(&publication);
        let on_chain = run.chain.view(world().oracle, &SettlementOracle::hashReportCall { report });
        assert_eq!(on_chain, sign::digest(&publication), "hashReport and fixd_proto::eip712 disagree");
    }
}

#[test]
fn the_contract_hashes_a_batch_as_proto_does() {
    let mut run = Run::deploy(&config());
    let report = |settlement, value, round| BatchedReport { settlement, value, round };
    for reports in [
        vec![report(0, 0, 0)],
        vec![report(1, u128::MAX, u32::MAX), report(7, 2_598_500_000_000_000_000_000, 3)],
        vec![report(2, 5, 1), report(2, 6, 1), report(3, 1 << 127, 0xdead_beef)],
    ] {
        let batch = BatchPublication::of(reports, Signatures::default());
        let packed = sign::packed_reports(&batch);
        assert_eq!(packed.len(), 52 * batch.reports.len(), "52 bytes per report");
        let on_chain = run.chain.view(world().oracle, &SettlementOracle::hashBatchCall { reports: packed });
        assert_eq!(on_chain, sign::batch_digest(&batch.reports), "hashBatch and fixd_proto::eip712 disagree");
    }
}

fn batch(reports: &[(u8, u128)]) -> BatchPlan {
    BatchPlan {
        reports: reports
            .iter()
            .map(|(settlement, value)| BatchedReport { settlement: *settlement, value: *value, round: 2 })
            .collect(),
        packing: Packing::Whole,
        signed: SignedPick::Own,
        signers: SignerPick::Quorum { start: 2 },
        signature_defect: SignatureDefect::None,
    }
}

fn publish_batch(run: &mut Run, plan: &BatchPlan) -> bool {
    let batch = plan.resolve(&run.model);
    run.step(&Call::PublishBatch(batch)).succeeds
}

#[test]
fn a_batch_publishes_what_is_unpublished_skips_the_rest_and_releases_reservations() {
    let mut run = Run::deploy(&config());
    run.step(&Call::FundPool { by: ActorId(0), amount: 1_000_000_000 });
    assert!(
        run.step(&Call::PostBond { by: ActorId(5), settlement: 2, dispute: 1, amount: 1_000_000 }).succeeds
    );
    let reserved = run.model.settlements[2].reserved;
    assert!(reserved > 0, "the bond reserved a reward");
    let (published, _) = publish(&mut run, &plan(4, 0));
    assert!(published);
    let before = run.model.settlements[4].published;
    run.step(&Call::Warp { seconds: 5 });
    // 2 twice (the first wins), 4 already published, 6 at the top of uint128.
    assert!(publish_batch(&mut run, &batch(&[(2, 11), (4, 12), (2, 13), (6, u128::MAX)])));
    let now = run.model.now;
    let settlement = |run: &mut Run, i: u8| {
        let got = run.chain.view(
            world().oracle,
            &SettlementOracle::getSettlementCall { id: fixd_invariants::world::settlement_id(i) },
        );
        (got.value, got.publishedAt, got.status)
    };
    assert_eq!(settlement(&mut run, 2), (U256::from(11), now, 1));
    assert_eq!(settlement(&mut run, 4), (before.unwrap().0, before.unwrap().1, 1), "a published value stays");
    assert_eq!(settlement(&mut run, 6), (U256::from(u128::MAX), now, 1));
    let pool = run.chain.view(world().oracle, &SettlementOracle::poolCall {});
    assert_eq!(pool, U256::from(1_000_000_000u128), "the reservation is back in the pool");
    assert!(
        publish_batch(&mut run, &batch(&[(4, 1), (6, 1)])),
        "a batch of published settlements changes nothing"
    );
    // The escrow of 2 was not settled: its disputer reclaims it.
    assert!(run.step(&Call::ReclaimBond { by: ActorId(1), settlement: 2, dispute: 1 }).succeeds);
    assert!(!run.step(&Call::PostBond { by: ActorId(1), settlement: 6, dispute: 0, amount: 1 }).succeeds);
    run.drain();
}

#[test]
fn no_spoiled_batch_publishes() {
    let mut run = Run::deploy(&config());
    let reports = [(0, 1), (1, 2), (3, u128::MAX)];
    let signed_elsewhere = [
        SignedPick::WithoutLast,
        SignedPick::WithOneMore,
        SignedPick::ValueOff { at: index() },
        SignedPick::Reversed,
        SignedPick::SingleReport { at: index() },
    ];
    for signed in signed_elsewhere {
        assert!(!publish_batch(&mut run, &BatchPlan { signed, ..batch(&reports) }), "{signed:?} published");
    }
    // A batch of one signed over its report's own digest: the same fields, another type.
    let single = BatchPlan { signed: SignedPick::SingleReport { at: index() }, ..batch(&reports[..1]) };
    assert!(!publish_batch(&mut run, &single), "a report's digest passed for a batch's");
    // A batch that reads the same both ways is signed by its reverse.
    let palindrome = BatchPlan { signed: SignedPick::Reversed, ..batch(&[(5, 9)]) };
    assert!(publish_batch(&mut run, &palindrome), "a batch of one is its own reverse");
    for packing in [Packing::ExtraByte, Packing::MissingByte] {
        assert!(!publish_batch(&mut run, &BatchPlan { packing, ..batch(&reports) }), "{packing:?} published");
    }
    assert!(!publish_batch(&mut run, &batch(&[])), "an empty batch published");
    for signature_defect in signature_defects() {
        let spoiled = BatchPlan { signature_defect, ..batch(&reports) };
        assert!(!publish_batch(&mut run, &spoiled), "{signature_defect:?} published");
    }
    for signers in [
        SignerPick::TooFew { start: 0 },
        SignerPick::Outsider { start: 0, outsider: 0 },
        SignerPick::Keys { mask: 0b111_0000 },
    ] {
        assert!(!publish_batch(&mut run, &BatchPlan { signers, ..batch(&reports) }), "{signers:?} published");
    }
    assert!(publish_batch(&mut run, &batch(&reports)), "the unspoiled batch did not publish");
    run.drain();
}

#[test]
fn a_valid_report_publishes_whatever_the_payees_do() {
    let mut run = Run::deploy(&config());
    run.step(&Call::FundPool { by: ActorId(0), amount: 1_000_000_000 });
    for mode in 0..4u8 {
        for target in [3u8, 5, 6, 7] {
            run.step(&Call::Arm { target: ActorId(target), mode, settlement: mode, dispute: 0 });
        }
        for (dispute, by) in [3u8, 5, 6, 7].into_iter().enumerate() {
            let posted = run.step(&Call::PostBond {
                by: ActorId(by),
                settlement: mode,
                dispute: dispute as u8,
                amount: 1_000_000,
            });
            assert!(posted.succeeds);
        }
        let (published, publication) = publish(&mut run, &plan(mode, 4));
        assert!(published, "a valid report with payees in mode {mode} must publish");
        assert_eq!(publication.outcomes.len(), 4);
        for o in &publication.outcomes {
            let credited =
                run.chain.view(world().oracle, &SettlementOracle::creditsCall(o.disputer.address()));
            assert_eq!(
                credited > U256::ZERO,
                mode != 0,
                "mode {mode}: a refused payout is credited, a taken one is not"
            );
        }
    }
    run.drain();
}

#[test]
fn an_eoa_delegates_to_payee_and_back() {
    let mut run = Run::deploy(&config());
    let erin = ActorId(4);
    let delegation = [&[0xef, 0x01, 0x00][..], world().payee_impl.as_slice()].concat();
    assert!(run.chain.code(erin.address()).is_empty());
    run.step(&Call::PostBond { by: erin, settlement: 0, dispute: 0, amount: 5_000 });
    run.step(&Call::Delegate { eoa: erin, on: true });
    assert_eq!(run.chain.code(erin.address()).as_ref(), delegation.as_slice());
    run.step(&Call::Arm { target: erin, mode: 1, settlement: 0, dispute: 0 });
    let (published, _) = publish(&mut run, &plan(0, 1));
    assert!(published);
    let credited = run.chain.view(world().oracle, &SettlementOracle::creditsCall(erin.address()));
    assert!(credited > U256::ZERO, "the delegated EOA refused its payout, which was credited");
    assert!(
        !run.step(&Call::Withdraw { by: erin, to: Party::Actor(erin) }).succeeds,
        "it refuses its withdrawal too"
    );
    run.step(&Call::Delegate { eoa: erin, on: false });
    assert!(run.chain.code(erin.address()).is_empty());
    assert!(
        run.step(&Call::Withdraw { by: erin, to: Party::Actor(erin) }).succeeds,
        "undelegated, it takes it"
    );
    run.drain();
}

#[test]
fn no_spoiled_report_publishes() {
    let mut run = Run::deploy(&config());
    run.step(&Call::FundPool { by: ActorId(0), amount: 1_000_000_000 });
    for (dispute, by) in [0u8, 5, 3].into_iter().enumerate() {
        run.step(&Call::PostBond { by: ActorId(by), settlement: 1, dispute: dispute as u8, amount: 77_777 });
    }
    let report_defects = [
        ReportDefect::WrongBond { at: index(), up: true },
        ReportDefect::WrongBond { at: index(), up: false },
        ReportDefect::WrongDisputer { at: index(), other: index() },
        ReportDefect::NotConserved { at: index() },
        ReportDefect::RewardAboveBudget { at: index() },
        ReportDefect::UnknownEscrow { dispute: 3 },
        ReportDefect::Repeated { at: index() },
    ];
    for defect in report_defects {
        let (published, publication) = publish(&mut run, &PublishPlan { defect, ..plan(1, 3) });
        assert!(!published, "{defect:?} published: {publication:?}");
    }
    for signature_defect in signature_defects() {
        let (published, _) = publish(&mut run, &PublishPlan { signature_defect, ..plan(1, 3) });
        assert!(!published, "{signature_defect:?} published");
    }
    for signers in [
        SignerPick::TooFew { start: 0 },
        SignerPick::Outsider { start: 0, outsider: 0 },
        SignerPick::Keys { mask: 0b111_0000 },
    ] {
        let (published, _) = publish(&mut run, &PublishPlan { signers, ..plan(1, 3) });
        assert!(!published, "{signers:?} published");
    }
    let (published, _) = publish(&mut run, &PublishPlan { value: ValuePick::TooLarge, ..plan(1, 3) });
    assert!(!published, "a value past 128 bits published");

    // The committee changes: the old one's quorum no longer publishes, the new one's does.
    let mut members: Vec<Address> = world().keys[3..7].iter().map(|k| k.address()).collect();
    members.sort();
    assert!(run.step(&Call::ProposeCommittee { by: ActorId(0), members, threshold: 3 }).succeeds);
    let (published, _) = publish(
        &mut run,
        &PublishPlan { signers: SignerPick::Stale { start: 0, pending: true }, ..plan(1, 3) },
    );
    assert!(!published, "the pending committee published before it applied");
    assert!(!run.step(&Call::ApplyCommittee { by: ActorId(2) }).succeeds, "applied before its delay");
    run.step(&Call::Warp { seconds: 3_600 });
    assert!(run.step(&Call::ApplyCommittee { by: ActorId(2) }).succeeds);
    let (published, _) = publish(
        &mut run,
        &PublishPlan { signers: SignerPick::Stale { start: 0, pending: false }, ..plan(1, 3) },
    );
    assert!(!published, "the previous committee published");
    let (published, _) = publish(&mut run, &plan(1, 3));
    assert!(published, "the committee in force could not publish");
    run.drain();
}

/// Every way a signature set is spoiled, for `publish` and `publishBatch` alike.
fn signature_defects() -> [SignatureDefect; 7] {
    [
        SignatureDefect::Swapped,
        SignatureDefect::Duplicated { at: index() },
        SignatureDefect::HighS { at: index() },
        SignatureDefect::BadV { at: index() },
        SignatureDefect::WrongDigest { at: index() },
        SignatureDefect::ExtraByte,
        SignatureDefect::Truncated,
    ]
}
