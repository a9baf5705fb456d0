//! One settlement's story per test, with every number worked out by hand.

use fixd_dispute::{
    Action, Decision, DisputeParams, Event, FailReason, FinalBy, Ignored, LedgerTotals, Phase, Refusal,
    ReviewVoteCast, SettlementDisputes,
};
use fixd_proto::types::report::BondOutcome;
use fixd_proto::value::Wad;

use crate::support::*;

/// Certified at `M + 120` with 2000 USD under `hash(1)`; returns the machine and the deadline.
fn certified_2000(params: DisputeParams) -> (SettlementDisputes, u64) {
    let mut m = SettlementDisputes::new(params).unwrap();
    let t0 = M + 120;
    let actions = m.on(t0, certified(1, hash(1), usd(2000)));
    let deadline = t0 + CHALLENGE;
    assert_eq!(
        actions,
        vec![Action::WindowOpened { round: 1, proposal_hash: hash(1), value: usd(2000), deadline }]
    );
    assert_eq!(m.phase(), Phase::Challenge);
    assert_eq!(m.next_wakeup(), Some(deadline));
    (m, deadline)
}

fn outcome(id: u8, bond: u128, refund: u128, reward: u128, pooled: u128, burned: u128) -> BondOutcome {
    BondOutcome { dispute_id: dispute_id(id), disputer: disputer(id), bond, refund, reward, pooled, burned }
}

#[test]
fn upheld_at_round_1() {
    let (mut m, d0) = certified_2000(params());
    let t = M + 120;

    let actions = m.on(t + 600, dispute(1, hash(1), MIN_BOND));
    assert_eq!(
        actions,
        vec![
            Action::DisputeAccepted { dispute_id: dispute_id(1), dispute_round: 1, bond_wei: MIN_BOND },
            Action::StartReview { dispute_round: 1, proposal_hash: hash(1), dispute_id: dispute_id(1) },
        ]
    );
    assert_eq!(m.phase(), Phase::Review);

    // 2010 is 50 bp from 2000, beyond the 10 bp tolerance. The review is slow: the window's
    // deadline passes while it runs, and a review in progress is not a closed window.
    let t_votes = d0 + 100;
    assert!(m.on(t_votes, vote(0, 1, Some(usd(2010)))).is_empty());
    assert!(m.on(t_votes, vote(1, 1, Some(usd(2010)))).is_empty());
    let actions = m.on(t_votes, vote(2, 1, Some(usd(2010))));
    assert_eq!(
        actions,
        vec![
            Action::ReviewDecided {
                dispute_round: 1,
                reviewed: usd(2010),
                upheld: true,
                dispute_ids: vec![dispute_id(1)],
            },
            Action::CertifyReviewed { value: usd(2010), after_round: 1, dispute_id: dispute_id(1) },
        ]
    );
    assert_eq!(m.phase(), Phase::Recertifying);
    assert_refused(&mut m, t_votes + 1, dispute(2, hash(1), 2 * MIN_BOND), Refusal::NotCertified);

    // The reviewed value comes back certified in round 2: a reopened, shorter window.
    let t_cert = t_votes + 30;
    let actions = m.on(t_cert, certified(2, hash(2), usd(2010)));
    let d1 = t_cert + REOPENED;
    assert_eq!(window(&actions), Some(d1));
    assert!(d1 > d0);
    assert_eq!(m.required_bond(), Some(2 * MIN_BOND), "round 2 needs twice round 1's bond");

    assert!(m.on(d1 - 1, Event::Tick).is_empty());
    let actions = m.on(d1, Event::Tick);
    let f = finality(&actions).expect("final when the reopened window closes");
    assert_eq!((f.value, f.round, f.at, f.by), (usd(2010), 2, d1, FinalBy::WindowClosed));
    // Bond back plus 50% of it from the pool.
    assert_eq!(f.outcomes, vec![outcome(1, MIN_BOND, MIN_BOND, MIN_BOND / 2, 0, 0)]);
    assert_eq!(f.ledger.pool_end, POOL - MIN_BOND / 2);
    assert_eq!(f.ledger.check(), Ok(()));
    assert_eq!(m.phase(), Phase::Final);
    assert_eq!(m.next_wakeup(), None);

    let report = f.report(hash(0xaa));
    assert_eq!((report.settlement_id, report.value, report.round), (hash(0xaa), usd(2010), 2));
    assert_eq!(report.outcomes, f.outcomes);
}

#[test]
fn rejected_at_round_1() {
    let (mut m, d0) = certified_2000(params());
    let t = M + 120;
    let bond = MIN_BOND + 1; // odd: the odd wei burns
    m.on(t + 60, dispute(1, hash(1), bond));

    // Median of 2001, 2000, 2002 is 2001: 5 bp, within tolerance.
    let now = t + 600;
    m.on(now, vote(3, 1, Some(usd(2001))));
    m.on(now, vote(0, 1, Some(usd(2000))));
    let actions = m.on(now, vote(1, 1, Some(usd(2002))));
    assert_eq!(
        actions,
        vec![
            Action::ReviewDecided {
                dispute_round: 1,
                reviewed: usd(2001),
                upheld: false,
                dispute_ids: vec![dispute_id(1)],
            },
            // now + 3600 is before the original deadline, which therefore stands.
            Action::WindowOpened { round: 1, proposal_hash: hash(1), value: usd(2000), deadline: d0 },
        ]
    );
    assert_eq!(m.phase(), Phase::Challenge);

    let actions = m.on(d0, Event::Tick);
    let f = finality(&actions).unwrap();
    assert_eq!((f.value, f.round, f.by), (usd(2000), 1, FinalBy::WindowClosed));
    assert_eq!(f.outcomes, vec![outcome(1, bond, 0, 0, MIN_BOND / 2, MIN_BOND / 2 + 1)]);
    assert_eq!(f.ledger.pool_end, POOL + MIN_BOND / 2);
    assert_eq!(f.ledger.check(), Ok(()));
}

#[test]
fn rejected_late_reopens_a_shorter_window_after_the_original_deadline() {
    let (mut m, d0) = certified_2000(params());
    m.on(d0 - 10, dispute(1, hash(1), MIN_BOND));
    let now = d0 + 500;
    let actions = quorum_votes(&mut m, now, 1, usd(2000));
    assert_eq!(window(&actions), Some(now + REOPENED));
    assert_eq!(m.deadline(), Some(now + REOPENED));
}

#[test]
fn escalated_twice_with_doubling_bonds_then_the_arbitrator_rules() {
    let (mut m, _) = certified_2000(params());
    let mut now = M + 200;

    // Round 1: rejected.
    m.on(now, dispute(1, hash(1), MIN_BOND));
    quorum_votes(&mut m, now, 1, usd(2000));
    assert_eq!(m.required_bond(), Some(2 * MIN_BOND));

    // Round 2 needs twice round 1's bond: one wei short is refused. Then upheld.
    now += 60;
    let short = Refusal::BondTooSmall { required: 2 * MIN_BOND, offered: 2 * MIN_BOND - 1 };
    assert_refused(&mut m, now, dispute(2, hash(1), 2 * MIN_BOND - 1), short);
    let actions = m.on(now, dispute(2, hash(1), 2 * MIN_BOND));
    assert!(actions.contains(&Action::StartReview {
        dispute_round: 2,
        proposal_hash: hash(1),
        dispute_id: dispute_id(2),
    }));
    let actions = quorum_votes(&mut m, now, 2, usd(2100));
    assert!(actions.contains(&Action::CertifyReviewed {
        value: usd(2100),
        after_round: 1,
        dispute_id: dispute_id(2),
    }));
    now += 30;
    m.on(now, certified(3, hash(3), usd(2100)));

    // Round 3 is past max_rounds = 2: it goes to the arbitrator, with twice round 2's bond.
    now += 60;
    let short = Refusal::BondTooSmall { required: 4 * MIN_BOND, offered: 4 * MIN_BOND - 1 };
    assert_refused(&mut m, now, dispute(3, hash(3), 4 * MIN_BOND - 1), short);
    let actions = m.on(now, dispute(3, hash(3), 4 * MIN_BOND));
    assert_eq!(
        actions,
        vec![
            Action::DisputeAccepted { dispute_id: dispute_id(3), dispute_round: 3, bond_wei: 4 * MIN_BOND },
            Action::EscalateToArbitrator {
                dispute_round: 3,
                proposal_hash: hash(3),
                dispute_id: dispute_id(3),
                inconclusive_review: false,
            },
        ]
    );
    assert_eq!(m.phase(), Phase::Arbitration);
    // A second disputer joins the arbitration round with the same bond.
    let actions = m.on(now + 1, dispute(4, hash(3), 4 * MIN_BOND));
    assert_eq!(
        actions,
        vec![Action::DisputeAccepted { dispute_id: dispute_id(4), dispute_round: 3, bond_wei: 4 * MIN_BOND }]
    );
    // Votes mean nothing to an arbitration.
    assert_eq!(m.on(now + 2, vote(0, 3, Some(usd(1)))), vec![Action::Ignored { reason: Ignored::NoReview }]);

    // The ruling is final at once: its value stands and it upholds both disputes of round 3.
    let actions = m.on(now + 100, ruling(3, usd(2050), true));
    let f = finality(&actions).unwrap();
    assert_eq!((f.value, f.round, f.by), (usd(2050), 3, FinalBy::Ruling));
    assert_eq!(
        f.outcomes,
        vec![
            outcome(1, MIN_BOND, 0, 0, MIN_BOND / 2, MIN_BOND / 2),
            outcome(2, 2 * MIN_BOND, 2 * MIN_BOND, MIN_BOND, 0, 0),
            outcome(3, 4 * MIN_BOND, 4 * MIN_BOND, 2 * MIN_BOND, 0, 0),
            outcome(4, 4 * MIN_BOND, 4 * MIN_BOND, 2 * MIN_BOND, 0, 0),
        ]
    );
    assert_eq!(f.ledger.pool_end, POOL + MIN_BOND / 2 - 5 * MIN_BOND);
    assert_eq!(LedgerTotals::of(POOL, &f.outcomes), Some(f.ledger));
    let decisions: Vec<_> = m.disputes().iter().map(|d| d.decision).collect();
    assert_eq!(
        decisions,
        vec![
            Some(Decision::Rejected),
            Some(Decision::Upheld),
            Some(Decision::Upheld),
            Some(Decision::Upheld)
        ]
    );
}

#[test]
fn an_arbitrator_who_never_rules_until_the_hard_deadline() {
    let (mut m, _) = certified_2000(params());
    let now = M + 300;
    m.on(now, dispute(1, hash(1), MIN_BOND));
    quorum_votes(&mut m, now, 1, usd(2000));
    m.on(now, dispute(2, hash(1), 2 * MIN_BOND));
    quorum_votes(&mut m, now, 2, usd(2000));
    let actions = m.on(now, dispute(3, hash(1), 4 * MIN_BOND));
    assert!(matches!(actions[1], Action::EscalateToArbitrator { dispute_round: 3, .. }));

    // The window's deadline passes; with the round open, nothing becomes final.
    assert!(m.on(now + CHALLENGE + 1, Event::Tick).is_empty());
    assert_refused(
        &mut m,
        now + CHALLENGE + 2,
        dispute(4, hash(1), 4 * MIN_BOND),
        Refusal::WindowClosed { deadline: M + 120 + CHALLENGE },
    );
    assert_eq!(m.next_wakeup(), Some(HARD));
    // A ruling on a dispute of another round is not a ruling on this one.
    assert_eq!(
        m.on(HARD - 10, ruling(1, usd(1), true)),
        vec![Action::Ignored { reason: Ignored::NotInRound { dispute_id: dispute_id(1) } }]
    );
    assert!(m.on(HARD - 1, Event::Tick).is_empty());
    assert_eq!(m.phase(), Phase::Arbitration);

    // At the hard deadline the last certified value stands; the open round is unresolved.
    let actions = m.on(HARD, Event::Tick);
    let f = finality(&actions).unwrap();
    assert_eq!((f.value, f.round, f.at, f.by), (usd(2000), 1, HARD, FinalBy::HardDeadline));
    assert_eq!(f.outcomes[2], outcome(3, 4 * MIN_BOND, 4 * MIN_BOND, 0, 0, 0));
    assert_eq!(m.disputes()[2].decision, Some(Decision::Unresolved));
    assert_eq!(f.ledger.check(), Ok(()));

    // Too late for the arbitrator, and for anyone else.
    let final_state = m.clone();
    assert_eq!(m.on(HARD + 1, ruling(3, usd(3000), true)), vec![Action::Ignored { reason: Ignored::Final }]);
    assert_refused(
        &mut m,
        HARD + 1,
        dispute(9, hash(1), 8 * MIN_BOND),
        Refusal::WindowClosed { deadline: M + 120 + CHALLENGE },
    );
    assert_eq!(m, final_state);
}

#[test]
fn a_dispute_one_second_after_the_deadline() {
    let (m, d0) = certified_2000(params());

    // One second before: accepted.
    let mut before = m.clone();
    let actions = before.on(d0 - 1, dispute(1, hash(1), MIN_BOND));
    assert!(matches!(actions[0], Action::DisputeAccepted { .. }));

    // At the deadline the window is already closed (half-open windows).
    let mut at = m.clone();
    assert_refused(&mut at, d0, dispute(1, hash(1), MIN_BOND), Refusal::WindowClosed { deadline: d0 });

    // One second after, with no tick in between: the window closes first (the value is
    // final), then the dispute is refused.
    let mut after = m.clone();
    let actions = after.on(d0 + 1, dispute(1, hash(1), MIN_BOND));
    assert_eq!(actions.len(), 2);
    let f = finality(&actions).unwrap();
    assert_eq!((f.value, f.at, f.by), (usd(2000), d0 + 1, FinalBy::WindowClosed));
    assert!(f.outcomes.is_empty());
    assert_eq!(
        actions[1],
        Action::DisputeRefused { dispute_id: dispute_id(1), reason: Refusal::WindowClosed { deadline: d0 } }
    );
    assert!(after.disputes().is_empty());
}

#[test]
fn a_bond_one_wei_too_small() {
    let (mut m, _) = certified_2000(params());
    let now = M + 500;
    assert_refused(
        &mut m,
        now,
        dispute(1, hash(1), MIN_BOND - 1),
        Refusal::BondTooSmall { required: MIN_BOND, offered: MIN_BOND - 1 },
    );
    assert!(m.disputes().is_empty());
    // The same id with the right bond is a new filing: the refused one left no trace.
    assert!(matches!(m.on(now, dispute(1, hash(1), MIN_BOND))[0], Action::DisputeAccepted { .. }));
    // A disputer joining the round must post the round's bond too.
    assert_refused(
        &mut m,
        now,
        dispute(2, hash(1), MIN_BOND - 1),
        Refusal::BondTooSmall { required: MIN_BOND, offered: MIN_BOND - 1 },
    );
}

#[test]
fn the_same_dispute_filed_twice_changes_nothing() {
    let (mut m, d0) = certified_2000(params());
    m.on(M + 500, dispute(1, hash(1), MIN_BOND));
    assert_refused(&mut m, M + 501, dispute(1, hash(1), MIN_BOND), Refusal::Duplicate);
    // Even with another bond, or after the settlement is final.
    assert_refused(&mut m, M + 502, dispute(1, hash(1), 5 * MIN_BOND), Refusal::Duplicate);
    quorum_votes(&mut m, M + 600, 1, usd(2000));
    m.on(d0, Event::Tick);
    assert_eq!(m.phase(), Phase::Final);
    assert_refused(&mut m, d0 + 5, dispute(1, hash(1), MIN_BOND), Refusal::Duplicate);
    assert_eq!(m.finality().unwrap().outcomes.len(), 1);
}

#[test]
fn several_disputes_share_one_review_and_are_paid_in_filing_order() {
    // A pool of 0.06 ETH: the first upheld dispute's 0.05 ETH reward is paid in full, the
    // second gets the 0.01 ETH left, the third nothing.
    let mut p = params();
    p.insurance_pool_wei = 60_000_000_000_000_000;
    let (mut m, _) = certified_2000(p);
    let now = M + 500;
    m.on(now, dispute(1, hash(1), MIN_BOND));
    let joined = m.on(now + 1, dispute(2, hash(1), MIN_BOND));
    assert_eq!(
        joined,
        vec![Action::DisputeAccepted { dispute_id: dispute_id(2), dispute_round: 1, bond_wei: MIN_BOND }],
        "a joining dispute starts no second review"
    );
    m.on(now + 2, dispute(3, hash(1), 3 * MIN_BOND));
    assert_eq!(m.escrow_open(), 5 * MIN_BOND);

    // Votes may name any dispute of the round; a member counts once.
    assert!(m.on(now + 3, vote(0, 1, Some(usd(2100)))).is_empty());
    assert_eq!(
        m.on(now + 3, vote(0, 2, Some(usd(1)))),
        vec![Action::Ignored { reason: Ignored::AlreadyVoted { member: 0 } }]
    );
    assert_eq!(
        m.on(now + 3, vote(7, 2, Some(usd(1)))),
        vec![Action::Ignored { reason: Ignored::UnknownMember { member: 7, committee_size: 4 } }]
    );
    assert_eq!(
        m.on(now + 3, vote(1, 9, Some(usd(1)))),
        vec![Action::Ignored { reason: Ignored::NotInRound { dispute_id: dispute_id(9) } }]
    );
    assert!(m.on(now + 4, vote(1, 2, Some(usd(2100)))).is_empty());
    let actions = m.on(now + 5, vote(2, 3, Some(usd(2100))));
    assert_eq!(
        actions[0],
        Action::ReviewDecided {
            dispute_round: 1,
            reviewed: usd(2100),
            upheld: true,
            dispute_ids: vec![dispute_id(1), dispute_id(2), dispute_id(3)],
        }
    );
    let outcomes: Vec<_> = m.disputes().iter().map(|d| d.outcome.clone().unwrap()).collect();
    assert_eq!(
        outcomes,
        vec![
            outcome(1, MIN_BOND, MIN_BOND, MIN_BOND / 2, 0, 0),
            outcome(2, MIN_BOND, MIN_BOND, 10_000_000_000_000_000, 0, 0),
            outcome(3, 3 * MIN_BOND, 3 * MIN_BOND, 0, 0, 0),
        ]
    );
    assert_eq!(m.insurance_pool(), 0);
    assert_eq!(m.escrow_open(), 0);

    // The next round needs twice the round's largest bond.
    m.on(now + 10, certified(2, hash(2), usd(2100)));
    assert_eq!(m.required_bond(), Some(6 * MIN_BOND));
}

#[test]
fn wrong_proposal_and_not_yet_certified_are_refused() {
    let mut m = machine();
    assert_eq!(m.required_bond(), None);
    assert_refused(&mut m, M + 60, dispute(1, hash(1), MIN_BOND), Refusal::NotCertified);
    m.on(M + 120, certified(1, hash(1), usd(2000)));
    assert_refused(
        &mut m,
        M + 130,
        dispute(1, hash(7), MIN_BOND),
        Refusal::WrongProposal { current: hash(1) },
    );
    // A later certificate of the same settlement while one is in force is ignored.
    let before = m.clone();
    assert_eq!(
        m.on(M + 140, certified(2, hash(2), usd(1))),
        vec![Action::Ignored { reason: Ignored::UnexpectedCertificate { round: 2 } }]
    );
    assert_eq!(m.certified(), before.certified());
}

#[test]
fn an_inconclusive_review_goes_to_the_arbitrator() {
    let (mut m, _) = certified_2000(params());
    let now = M + 500;
    m.on(now, dispute(1, hash(1), MIN_BOND));
    assert!(m.on(now, vote(0, 1, None)).is_empty());
    // 2 of 4 members have no value: 3 values can no longer come.
    let actions = m.on(now, vote(1, 1, None));
    assert_eq!(
        actions,
        vec![Action::EscalateToArbitrator {
            dispute_round: 1,
            proposal_hash: hash(1),
            dispute_id: dispute_id(1),
            inconclusive_review: true,
        }]
    );
    assert_eq!(m.phase(), Phase::Arbitration);
    let actions = m.on(now + 900, ruling(1, usd(2000), false));
    let f = finality(&actions).unwrap();
    assert_eq!((f.value, f.by), (usd(2000), FinalBy::Ruling));
    assert_eq!(f.outcomes, vec![outcome(1, MIN_BOND, 0, 0, MIN_BOND / 2, MIN_BOND / 2)]);
}

#[test]
fn a_quorum_saying_the_median_does_not_recompute_upholds_a_miscomputed_dispute() {
    let (mut m, _) = certified_2000(params());
    let now = M + 500;
    m.on(now, dispute(1, hash(1), MIN_BOND));
    let off_by_one_wei = Wad::from_raw(usd(2000).raw() + 1);
    let mut last = Vec::new();
    for member in 0..3 {
        last = m.on(
            now,
            Event::ReviewVote(ReviewVoteCast {
                member,
                dispute_id: dispute_id(1),
                value: Some(off_by_one_wei),
                median_recomputes: false,
            }),
        );
    }
    assert!(matches!(last[0], Action::ReviewDecided { upheld: true, .. }), "{last:?}");
    assert!(matches!(last[1], Action::CertifyReviewed { value, .. } if value == off_by_one_wei));
}

#[test]
fn late_votes_of_a_decided_round_do_not_count_in_the_next() {
    let (mut m, _) = certified_2000(params());
    let now = M + 500;
    m.on(now, dispute(1, hash(1), MIN_BOND));
    quorum_votes(&mut m, now, 1, usd(2000));
    m.on(now + 1, dispute(2, hash(1), 2 * MIN_BOND));
    // Member 3's round-1 vote arrives late: it names a round-1 dispute.
    assert_eq!(
        m.on(now + 2, vote(3, 1, Some(usd(2100)))),
        vec![Action::Ignored { reason: Ignored::NotInRound { dispute_id: dispute_id(1) } }]
    );
    assert_eq!(m.dispute_round(), 2);
}

#[test]
fn never_certified_fails_at_the_hard_deadline() {
    let mut m = machine();
    assert_eq!(m.next_wakeup(), Some(HARD));
    assert!(m.on(HARD - 1, Event::Tick).is_empty());
    assert_eq!(m.on(HARD, Event::Tick), vec![Action::Fail { reason: FailReason::NeverCertified }]);
    assert_eq!(m.phase(), Phase::Failed);
    assert_eq!(
        m.on(HARD + 1, certified(1, hash(1), usd(2000))),
        vec![Action::Ignored { reason: Ignored::Final }]
    );
    assert_refused(&mut m, HARD + 1, dispute(1, hash(1), MIN_BOND), Refusal::WindowClosed { deadline: HARD });
}

#[test]
fn windows_never_pass_the_hard_deadline() {
    let mut m = machine();
    let actions = m.on(HARD - 100, certified(1, hash(1), usd(2000)));
    assert_eq!(window(&actions), Some(HARD));
    m.on(HARD - 90, dispute(1, hash(1), MIN_BOND));
    let actions = quorum_votes(&mut m, HARD - 50, 1, usd(2000));
    assert_eq!(window(&actions), Some(HARD), "the reopened window is clamped too");
    let f = m.on(HARD, Event::Tick);
    assert_eq!(finality(&f).unwrap().by, FinalBy::WindowClosed);
}

#[test]
fn at_the_hard_deadline_an_uncertified_reviewed_value_does_not_become_final() {
    let (mut m, _) = certified_2000(params());
    m.on(M + 500, dispute(1, hash(1), MIN_BOND));
    quorum_votes(&mut m, M + 600, 1, usd(2100));
    assert_eq!(m.phase(), Phase::Recertifying);
    // A certificate of another value, or of a round not after the replaced one, is ignored.
    let expect =
        |round, value| Ignored::CertificateMismatch { expected: usd(2100), after_round: 1, round, value };
    assert_eq!(
        m.on(M + 700, certified(2, hash(2), usd(2000))),
        vec![Action::Ignored { reason: expect(2, usd(2000)) }]
    );
    assert_eq!(
        m.on(M + 700, certified(1, hash(2), usd(2100))),
        vec![Action::Ignored { reason: expect(1, usd(2100)) }]
    );
    let actions = m.on(HARD, Event::Tick);
    let f = finality(&actions).unwrap();
    assert_eq!((f.value, f.round, f.by), (usd(2000), 1, FinalBy::HardDeadline));
    assert_eq!(f.outcomes, vec![outcome(1, MIN_BOND, MIN_BOND, MIN_BOND / 2, 0, 0)]);
}

#[test]
fn with_no_review_rounds_the_first_dispute_goes_to_the_arbitrator() {
    let mut p = params();
    p.max_rounds = 0;
    let (mut m, _) = certified_2000(p);
    let actions = m.on(M + 500, dispute(1, hash(1), MIN_BOND));
    assert!(matches!(actions[1], Action::EscalateToArbitrator { dispute_round: 1, .. }));
}

#[test]
fn time_never_runs_backwards() {
    let (mut m, d0) = certified_2000(params());
    m.on(d0 - 5, Event::Tick);
    // Stamped before the last event: treated as happening at d0 - 5, so still in the window.
    let actions = m.on(M, dispute(1, hash(1), MIN_BOND));
    assert!(matches!(actions[0], Action::DisputeAccepted { .. }));
    assert_eq!(m.disputes()[0].filed_at, d0 - 5);
    assert_eq!(m.clock(), d0 - 5);
}

#[test]
fn the_machine_survives_a_store_round_trip() {
    let (mut m, _) = certified_2000(params());
    m.on(M + 500, dispute(1, hash(1), MIN_BOND));
    m.on(M + 500, vote(0, 1, Some(usd(2100))));
    let json = serde_json::to_string(&m).unwrap();
    let mut back: SettlementDisputes = serde_json::from_str(&json).unwrap();
    assert_eq!(back, m);
    let bytes = bcs::to_bytes(&m).unwrap();
    assert_eq!(bcs::from_bytes::<SettlementDisputes>(&bytes).unwrap(), m);
    assert_eq!(back.on(M + 501, vote(0, 1, None)), m.on(M + 501, vote(0, 1, None)));

    // Events and actions travel as JSON too (API, event stream).
    let event = dispute(2, hash(1), MIN_BOND);
    let json = serde_json::to_string(&event).unwrap();
    assert!(json.contains(r#""kind":"dispute_filed""#), "{json}");
    assert!(json.contains(r#""bond_wei":"100000000000000000""#), "wei as a string: {json}");
    assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), event);
    let actions = m.on(HARD, Event::Tick);
    let json = serde_json::to_string(&actions).unwrap();
    assert!(json.contains(r#""kind":"finalize""#), "{json}");
    assert_eq!(serde_json::from_str::<Vec<Action>>(&json).unwrap(), actions);
}
