//! The rules of the machine as properties over random event sequences (see `harness`).

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::B256;
use fixd_dispute::ledger::full_reward;
use fixd_dispute::{Action, Event, FinalBy, LedgerTotals, Phase};
use fixd_proto::value::Wad;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::harness::{Record, Trace, case, run};

type Check = Result<(), TestCaseError>;

/// How each accepted dispute was decided, from the actions alone.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Seen {
    Upheld,
    Rejected,
    Unresolved,
}

/// What the actions say happened to each dispute, in filing order: `(id, bond, decision)`.
fn decisions_from_actions(trace: &Trace) -> Vec<(B256, u128, Option<Seen>)> {
    let mut filed: Vec<(B256, u128, Option<Seen>)> = Vec::new();
    for (record, action) in trace.actions() {
        match action {
            Action::DisputeAccepted { dispute_id, bond_wei, .. } => {
                filed.push((*dispute_id, *bond_wei, None));
            }
            Action::ReviewDecided { upheld, dispute_ids, .. } => {
                for (id, _, seen) in filed.iter_mut() {
                    if dispute_ids.contains(id) {
                        *seen = Some(if *upheld { Seen::Upheld } else { Seen::Rejected });
                    }
                }
            }
            Action::Finalize(f) => {
                let rest = match (f.by, &record.event) {
                    (FinalBy::Ruling, Event::Ruling { upheld: true, .. }) => Seen::Upheld,
                    (FinalBy::Ruling, _) => Seen::Rejected,
                    _ => Seen::Unresolved,
                };
                for (_, _, seen) in filed.iter_mut().filter(|(_, _, s)| s.is_none()) {
                    *seen = Some(rest);
                }
            }
            _ => {}
        }
    }
    filed
}

/// The ledger is conserved to the wei, at every step and in the final report, and every
/// outcome follows its decision's rule with the pool as it stood then.
fn check_ledger_is_conserved(trace: &Trace) -> Check {
    let pool_start = trace.params.insurance_pool_wei;
    let mut accepted: u128 = 0;
    for r in &trace.records {
        for a in &r.actions {
            if let Action::DisputeAccepted { bond_wei, .. } = a {
                accepted += bond_wei;
            }
        }
        let ledger = r.after.ledger();
        prop_assert_eq!(ledger.check(), Ok(()));
        prop_assert_eq!(ledger.pool_start, pool_start);
        prop_assert_eq!(ledger.escrowed + r.after.escrow_open(), accepted, "escrow accounted for");
    }
    let decisions = decisions_from_actions(trace);
    for (_, action) in trace.actions() {
        let Action::Finalize(f) = action else { continue };
        prop_assert_eq!(f.outcomes.len(), decisions.len());
        let mut pool = pool_start;
        for (o, (id, bond, seen)) in f.outcomes.iter().zip(&decisions) {
            prop_assert_eq!((o.dispute_id, o.bond), (*id, *bond), "one outcome per dispute, in filing order");
            prop_assert_eq!(o.refund + o.pooled + o.burned, o.bond);
            match seen {
                Some(Seen::Upheld) => {
                    prop_assert_eq!((o.refund, o.pooled, o.burned), (o.bond, 0, 0));
                    prop_assert_eq!(o.reward, full_reward(o.bond, trace.params.reward_bp).min(pool));
                }
                Some(Seen::Rejected) => {
                    prop_assert_eq!((o.refund, o.reward), (0, 0));
                    prop_assert_eq!((o.pooled, o.burned), (o.bond / 2, o.bond - o.bond / 2));
                }
                Some(Seen::Unresolved) => {
                    prop_assert_eq!((o.refund, o.reward, o.pooled, o.burned), (o.bond, 0, 0, 0))
                }
                None => prop_assert!(false, "dispute {id} undecided at finality"),
            }
            pool = pool + o.pooled - o.reward;
        }
        let totals = LedgerTotals::of(pool_start, &f.outcomes);
        prop_assert_eq!(totals, Some(f.ledger));
        prop_assert_eq!(f.ledger.pool_end, pool);
        prop_assert_eq!(f.ledger.escrowed, accepted);
        prop_assert_eq!(f.ledger.check(), Ok(()));
    }
    Ok(())
}

/// The first certificate's value, and each later window's value, is what "last certified"
/// means; a final value is emitted at most once and never changes afterwards.
fn check_at_most_one_final_value(trace: &Trace) -> Check {
    let mut ends = 0;
    let mut settled = None;
    for (r, a) in trace.actions() {
        if let Action::Finalize(f) = a {
            ends += 1;
            settled = Some(f.clone());
            prop_assert_eq!(r.after.finality(), Some(f));
        }
        if let Action::Fail { .. } = a {
            ends += 1;
        }
    }
    prop_assert!(ends <= 1, "{} final or failed actions", ends);
    if let Some(f) = settled {
        for r in &trace.records {
            if r.before.is_terminal() {
                prop_assert_eq!(r.after.finality(), Some(&f));
            }
        }
    }
    Ok(())
}

/// Finality comes from a closed window with no dispute open, a ruling before the hard
/// deadline, or the hard deadline; with the right value in each case.
fn check_finality_only_after_a_deadline_with_no_dispute_open(trace: &Trace) -> Check {
    let hard = trace.machine().hard_deadline();
    let mut open: BTreeSet<B256> = BTreeSet::new();
    let mut certified: Option<Wad> = None;
    for r in &trace.records {
        let now = r.effective_now();
        for a in &r.actions {
            match a {
                Action::WindowOpened { value, .. } => certified = Some(*value),
                Action::DisputeAccepted { dispute_id, .. } => {
                    open.insert(*dispute_id);
                }
                Action::ReviewDecided { dispute_ids, .. } => {
                    for id in dispute_ids {
                        open.remove(id);
                    }
                }
                Action::Finalize(f) => {
                    prop_assert_eq!(f.at, now);
                    match f.by {
                        FinalBy::WindowClosed => {
                            let deadline = r.after.deadline();
                            prop_assert!(
                                deadline.is_some_and(|d| now >= d),
                                "closed at {now}, deadline {deadline:?}"
                            );
                            prop_assert!(open.is_empty(), "final with disputes open: {open:?}");
                            prop_assert_eq!(Some(f.value), certified);
                        }
                        FinalBy::HardDeadline => {
                            prop_assert!(now >= hard);
                            prop_assert_eq!(Some(f.value), certified);
                        }
                        FinalBy::Ruling => {
                            prop_assert!(now < hard);
                            prop_assert!(!open.is_empty(), "a ruling decides an open dispute");
                            let Event::Ruling { value, .. } = r.event else {
                                return Err(TestCaseError::fail("final by ruling without a ruling"));
                            };
                            prop_assert_eq!(f.value, value);
                        }
                    }
                    open.clear();
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// At the hard deadline every settlement is final, or failed if nothing was ever certified.
fn check_final_by_the_hard_deadline(trace: Trace) -> Check {
    let trace = trace.finish();
    let hard = trace.machine().hard_deadline();
    let ever_certified = trace.actions().any(|(_, a)| matches!(a, Action::WindowOpened { .. }));
    for r in &trace.records {
        if r.effective_now() >= hard {
            prop_assert!(r.after.is_terminal(), "open at {} ≥ H = {hard}", r.effective_now());
        }
        if let Some(w) = r.after.next_wakeup() {
            prop_assert!(w <= hard);
        }
    }
    let m = trace.machine();
    let expected = if ever_certified { Phase::Final } else { Phase::Failed };
    prop_assert_eq!(m.phase(), expected);
    if ever_certified {
        prop_assert!(m.finality().is_some_and(|f| f.at <= hard.max(m.clock())));
    }
    Ok(())
}

/// The deadline never moves backwards and never passes the hard deadline.
fn check_deadlines_never_move_backwards(trace: &Trace) -> Check {
    let mut last_window = 0;
    for r in &trace.records {
        let hard = r.after.hard_deadline();
        match (r.before.deadline(), r.after.deadline()) {
            (Some(b), Some(a)) => prop_assert!(a >= b, "deadline moved back from {b} to {a}"),
            (Some(b), None) => prop_assert!(false, "deadline {b} vanished"),
            _ => {}
        }
        if let Some(d) = r.after.deadline() {
            prop_assert!(d <= hard);
        }
        for a in &r.actions {
            if let Action::WindowOpened { deadline, .. } = a {
                prop_assert!(*deadline >= last_window);
                prop_assert_eq!(Some(*deadline), r.after.deadline());
                last_window = *deadline;
            }
        }
    }
    Ok(())
}

/// After Final or Failed, no event changes the machine and the only answers are refusals and
/// ignores.
fn check_nothing_happens_after_final(trace: &Trace) -> Check {
    for r in &trace.records {
        if !r.before.is_terminal() {
            continue;
        }
        prop_assert_eq!(&r.after, &r.before);
        for a in &r.actions {
            prop_assert!(
                matches!(a, Action::DisputeRefused { .. } | Action::Ignored { .. }),
                "after final: {a:?}"
            );
        }
        if matches!(r.event, Event::Tick) {
            prop_assert!(r.actions.is_empty());
        }
    }
    Ok(())
}

/// A refused dispute (or an ignored certificate, vote or ruling) changes nothing: the machine
/// ends exactly as a tick at the same time would leave it, and says only that plus the
/// refusal. Each dispute gets exactly one answer; duplicates are refused as such.
fn check_refused_changes_no_state(trace: &Trace) -> Check {
    let mut accepted: BTreeSet<B256> = BTreeSet::new();
    for r in &trace.records {
        let answers: Vec<&Action> = r
            .actions
            .iter()
            .filter(|a| matches!(a, Action::DisputeRefused { .. } | Action::DisputeAccepted { .. }))
            .collect();
        if let Event::DisputeFiled(f) = &r.event {
            prop_assert_eq!(answers.len(), 1, "one answer per dispute: {:?}", r.actions);
            let duplicate = accepted.contains(&f.dispute_id);
            let refused_as_duplicate =
                matches!(answers[0], Action::DisputeRefused { reason: fixd_dispute::Refusal::Duplicate, .. });
            prop_assert_eq!(duplicate, refused_as_duplicate);
            if matches!(answers[0], Action::DisputeAccepted { .. }) {
                accepted.insert(f.dispute_id);
            }
        } else {
            prop_assert!(answers.is_empty());
        }
        let Some((last, before_last)) = r.actions.split_last() else { continue };
        let no_change = |a: &Action| matches!(a, Action::DisputeRefused { .. } | Action::Ignored { .. });
        if !no_change(last) {
            let any_refusal = r.actions.iter().any(no_change);
            prop_assert!(!any_refusal, "a refusal amid changes: {:?}", r.actions);
            continue;
        }
        let mut ticked = r.before.clone();
        let tick_actions = ticked.on(r.now, Event::Tick);
        prop_assert_eq!(&r.after, &ticked, "a refusal changed the state");
        prop_assert_eq!(before_last, &tick_actions[..]);
    }
    Ok(())
}

/// Bonds follow the escalation rule, disputes are accepted only inside an open window, and
/// rounds past `max_rounds` go to the arbitrator.
fn check_bonds_follow_the_escalation_rule(trace: &Trace) -> Check {
    let p = &trace.params;
    let mut largest: BTreeMap<u16, u128> = BTreeMap::new();
    let mut reviews = 0u16;
    for r in &trace.records {
        let now = r.effective_now();
        for a in &r.actions {
            match a {
                Action::DisputeAccepted { dispute_round, bond_wei, .. } => {
                    let k = *dispute_round;
                    prop_assert!(k >= 1 && k <= u16::from(p.max_rounds) + 1);
                    let previous = if k == 1 { 0 } else { largest.get(&(k - 1)).copied().unwrap_or(0) };
                    prop_assert!(k == 1 || previous > 0, "round {k} without round {}", k - 1);
                    let required = p.min_bond_wei.max(previous.saturating_mul(2));
                    prop_assert!(*bond_wei >= required, "bond {bond_wei} < {required} in round {k}");
                    prop_assert!(r.before.required_bond().is_some_and(|b| *bond_wei >= b));
                    prop_assert!(r.before.deadline().is_some_and(|d| now < d));
                    prop_assert!(now < r.after.hard_deadline());
                    let l = largest.entry(k).or_insert(0);
                    *l = (*l).max(*bond_wei);
                }
                Action::StartReview { dispute_round, .. } => {
                    reviews += 1;
                    prop_assert!(*dispute_round <= u16::from(p.max_rounds));
                }
                Action::EscalateToArbitrator { dispute_round, inconclusive_review, .. } => {
                    prop_assert!(*inconclusive_review || *dispute_round == u16::from(p.max_rounds) + 1);
                }
                _ => {}
            }
        }
    }
    prop_assert!(reviews <= u16::from(p.max_rounds));
    Ok(())
}

/// The same events at the same times give the same actions and the same state.
fn check_same_events_same_actions(trace: &Trace) -> Check {
    let mut m = fixd_dispute::SettlementDisputes::new(trace.params.clone()).expect("valid");
    for Record { now, event, actions, after, .. } in &trace.records {
        prop_assert_eq!(&m.on(*now, event.clone()), actions);
        prop_assert_eq!(&m, after);
    }
    Ok(())
}

/// Thousands of cases each: generating and running one costs about 0.1 ms in a debug build.
const CASES: u32 = 5000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn ledger_is_conserved_to_the_wei(c in case()) {
        check_ledger_is_conserved(&run(&c).finish())?;
    }

    #[test]
    fn finality_comes_only_after_a_deadline_with_no_dispute_open(c in case()) {
        check_finality_only_after_a_deadline_with_no_dispute_open(&run(&c).finish())?;
    }

    #[test]
    fn a_refused_dispute_changes_no_state(c in case()) {
        check_refused_changes_no_state(&run(&c))?;
    }

    #[test]
    fn every_settlement_is_final_by_the_hard_deadline(c in case()) {
        check_final_by_the_hard_deadline(run(&c))?;
    }

    #[test]
    fn deadlines_never_move_backwards(c in case()) {
        check_deadlines_never_move_backwards(&run(&c).finish())?;
    }

    #[test]
    fn nothing_happens_after_final(c in case()) {
        check_nothing_happens_after_final(&run(&c))?;
    }

    #[test]
    fn bonds_follow_the_escalation_rule(c in case()) {
        check_bonds_follow_the_escalation_rule(&run(&c))?;
    }

    #[test]
    fn there_is_at_most_one_final_value(c in case()) {
        check_at_most_one_final_value(&run(&c).finish())?;
    }

    #[test]
    fn the_same_events_give_the_same_actions(c in case()) {
        check_same_events_same_actions(&run(&c))?;
    }
}

/// The properties above are only as strong as the cases they see: this checks that the
/// generator reaches every outcome that matters, and prints how often (under --nocapture).
#[test]
fn the_generator_reaches_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    fn variant(debug: String) -> String {
        debug.split([' ', '{', '(']).next().unwrap_or_default().to_owned()
    }
    fn kind(a: &Action) -> String {
        match a {
            Action::DisputeRefused { reason, .. } => format!("refused {}", variant(format!("{reason:?}"))),
            Action::Ignored { reason } => format!("ignored {}", variant(format!("{reason:?}"))),
            Action::Finalize(f) => format!("final {:?}, with outcomes: {}", f.by, !f.outcomes.is_empty()),
            Action::DisputeAccepted { dispute_round, .. } => format!("accepted in round {dispute_round}"),
            Action::ReviewDecided { upheld, dispute_ids, .. } => {
                format!("review upheld: {upheld}, several disputes: {}", dispute_ids.len() > 1)
            }
            Action::EscalateToArbitrator { inconclusive_review, .. } => {
                format!("escalate, inconclusive: {inconclusive_review}")
            }
            other => variant(format!("{other:?}")),
        }
    }

    let mut runner = TestRunner::deterministic();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let cases = 1000;
    for _ in 0..cases {
        let c = case().new_tree(&mut runner).expect("a case").current();
        for (_, a) in run(&c).finish().actions() {
            *counts.entry(kind(a)).or_default() += 1;
        }
    }
    eprintln!("actions over {cases} cases:");
    for (k, v) in &counts {
        eprintln!("{v:8}  {k}");
    }
    let reached =
        |prefix: &str| counts.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum::<usize>();
    for outcome in [
        "accepted in round 1",
        "accepted in round 2",
        "review upheld: true",
        "review upheld: false",
        "escalate",
        "refused BondTooSmall",
        "refused WindowClosed",
        "refused Duplicate",
        "final",
    ] {
        assert!(reached(outcome) >= 10, "only {} of {cases} cases reach {outcome:?}", reached(outcome));
    }
}
