//! The publication machine with a real committee of secp256k1 keys and no I/O.

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use fixd_dispute::{DisputeParams, FinalBy};
use fixd_proto::eip712::{self, ReportSignature};
use fixd_proto::signing::PublicKey;
use fixd_proto::types::genesis::{Committee, Member, ProtocolParams};
use fixd_proto::types::report::FinalReport;
use fixd_proto::value::Wad;

use super::{Action, Event, OnChain, Publication, PublicationParams};

const CHAIN: u64 = 31337;
const CONTRACT: Address = Address::repeat_byte(0xc0);
const MATURITY: u64 = 1_000_000;
const PROPOSED_AT: u64 = MATURITY + 10;
const PERIOD: u64 = 30;
const TIMEOUT: u64 = 20;

pub(super) struct Fixture {
    pub(super) keys: Vec<PrivateKeySigner>,
    pub(super) committee: Committee,
    id: B256,
}

/// Four members with real secp256k1 keys.
pub(super) fn fixture() -> Fixture {
    let keys: Vec<_> =
        (1..=4u8).map(|b| PrivateKeySigner::from_bytes(&B256::repeat_byte(b)).unwrap()).collect();
    let members = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Member {
            name: format!("node-{i}"),
            ed25519: PublicKey(B256::repeat_byte(i as u8 + 1)),
            eth_address: k.address(),
            listen: vec![],
        })
        .collect();
    Fixture { keys, committee: Committee::new(members), id: B256::repeat_byte(0x5e) }
}

fn protocol() -> ProtocolParams {
    ProtocolParams {
        challenge_period_secs: PERIOD,
        publish_timeout_secs: TIMEOUT,
        confirmations: 2,
        ..ProtocolParams::default()
    }
}

/// A member whose committee decides at once the report its fold makes (the report decision
/// itself is [`crate::consensus`]'s; these tests are about the publication around it).
struct Deciding(Publication);

impl Deciding {
    fn on(&mut self, now: u64, event: Event) -> Vec<Action> {
        self.on_all(now, vec![event])
    }

    fn on_all(&mut self, now: u64, events: Vec<Event>) -> Vec<Action> {
        let mut out = self.0.on_all(now, events);
        let ready: Vec<FinalReport> = out
            .iter()
            .filter_map(|a| match a {
                Action::ReportReady { reports, .. } => reports.first().cloned(),
                _ => None,
            })
            .collect();
        out.retain(|a| !matches!(a, Action::ReportReady { .. }));
        for report in ready {
            out.extend(self.0.decided(now, report));
        }
        out
    }
}

impl std::ops::Deref for Deciding {
    type Target = Publication;
    fn deref(&self) -> &Publication {
        &self.0
    }
}

impl Fixture {
    fn machine(&self, me: usize) -> Deciding {
        let dispute = DisputeParams::for_committee(&protocol(), MATURITY, &self.committee, 0);
        Deciding(
            Publication::new(
                self.committee.clone(),
                me,
                self.id,
                dispute,
                // The fold does not lag the clock here; `timeline_*` tests cover the lag.
                PublicationParams { settle_secs: 0, ..PublicationParams::from_protocol(&protocol()) },
                CHAIN,
                CONTRACT,
            )
            .unwrap(),
        )
    }

    fn certified(&self) -> Event {
        Event::Certified {
            // The first certification (the driver's `certified_event`).
            round: 0,
            proposal_hash: B256::repeat_byte(0xaa),
            value: value(),
            proposed_at: PROPOSED_AT,
        }
    }

    /// The leader of the certified round, who publishes in turn 0.
    fn leader(&self) -> usize {
        self.committee.leader(&self.id, 0)
    }

    fn report(&self) -> FinalReport {
        FinalReport { settlement_id: self.id, value: value(), round: 0, outcomes: vec![] }
    }

    fn signature(&self, member: usize, report: &FinalReport) -> Event {
        let domain = eip712::domain(CHAIN, CONTRACT);
        let signature = ReportSignature {
            report: report.clone(),
            signer: self.keys[member].address(),
            signature: eip712::sign_typed(&self.keys[member], &domain, report),
        };
        Event::Signature { author: member, signature }
    }
}

fn value() -> Wad {
    Wad::parse("2750.5").unwrap()
}

fn publishes(actions: &[Action]) -> Vec<u64> {
    actions
        .iter()
        .filter_map(|a| if let Action::Publish { turn, .. } = a { Some(*turn) } else { None })
        .collect()
}

#[test]
fn every_member_opens_the_same_window_and_signs_the_same_report_at_its_close() {
    let fx = fixture();
    let deadline = PROPOSED_AT + PERIOD;
    // One member hears of the certificate at once, another 7 s later: the same deadline.
    for arrival in [PROPOSED_AT, PROPOSED_AT + 7] {
        let mut m = fx.machine(2);
        let out = m.on(arrival, fx.certified());
        assert_eq!(out, vec![Action::WindowOpened { round: 0, deadline }]);
        assert!(m.on(deadline - 1, Event::Tick).is_empty(), "still open one second before");
        let out = m.on(deadline, Event::Tick);
        let [Action::SignReport { report, finality }] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(report, &fx.report());
        assert_eq!(finality.by, FinalBy::WindowClosed);
        assert!(m.on(deadline + 1, Event::Tick).is_empty(), "signs once");
    }
}

#[test]
fn the_leader_publishes_in_turn_zero_with_a_quorum_and_the_next_member_in_turn_one() {
    let fx = fixture();
    let deadline = PROPOSED_AT + PERIOD;
    let leader = fx.leader();
    let mut machines: Vec<_> = (0..4).map(|i| fx.machine(i)).collect();
    for m in &mut machines {
        m.on(PROPOSED_AT, fx.certified());
        m.on(deadline, Event::Tick);
    }
    let report = fx.report();
    // Two signatures are not a quorum of 3: nobody publishes.
    for m in &mut machines {
        for signer in [0, 1] {
            assert!(publishes(&m.on(deadline, fx.signature(signer, &report))).is_empty());
        }
    }
    // The third makes q; only the leader, whose turn it is, asks to publish, and once.
    for (i, m) in machines.iter_mut().enumerate() {
        let out = m.on(deadline + 1, fx.signature(3, &report));
        assert_eq!(publishes(&out), if i == leader { vec![0] } else { vec![] }, "member {i}");
        assert!(publishes(&m.on(deadline + 2, Event::Tick)).is_empty());
    }
    // Turn 1 belongs to the next member.
    let next = (leader + 1) % 4;
    assert_eq!(machines[leader].publisher_at(deadline + TIMEOUT), Some((1, next)));
    assert!(publishes(&machines[leader].on(deadline + TIMEOUT, Event::Tick)).is_empty());
    let out = machines[next].on(deadline + TIMEOUT, Event::Tick);
    let [Action::Publish { signatures, turn: 1, report: r }] = out.as_slice() else { panic!("{out:?}") };
    assert_eq!(r, &report);
    let mut signers: Vec<_> = signatures.iter().map(|(a, _)| *a).collect();
    signers.sort();
    let mut expected: Vec<_> = [0, 1, 3].iter().map(|&i| fx.keys[i].address()).collect();
    expected.sort();
    assert_eq!(signers, expected);
    // Once the chain holds it, nobody asks again, in any turn; confirmed at 2 blocks.
    let on_chain = OnChain {
        value: value(),
        tx_hash: B256::repeat_byte(7),
        block_number: 10,
        confirmations: 1,
        publisher: fx.keys[next].address(),
    };
    for m in &mut machines {
        assert!(
            m.on(deadline + TIMEOUT, Event::Chain(Some(on_chain.clone()))).is_empty(),
            "1 of 2 confirmations"
        );
        assert!(publishes(&m.on(deadline + 5 * TIMEOUT, Event::Tick)).is_empty());
        assert!(!m.is_published());
        let confirmed = OnChain { confirmations: 2, ..on_chain.clone() };
        assert_eq!(
            m.on(deadline + 5 * TIMEOUT, Event::Chain(Some(confirmed.clone()))),
            vec![Action::Published(confirmed)]
        );
        assert!(m.is_published());
    }
}

#[test]
fn signatures_that_do_not_sign_this_report_do_not_count() {
    let fx = fixture();
    let deadline = PROPOSED_AT + PERIOD;
    // The round's leader: it publishes in turn 0.
    let mut m = fx.machine(fx.leader());
    m.on(PROPOSED_AT, fx.certified());
    let report = fx.report();
    // Before this member is final: a valid one, and a forged one (member 2's key for member 3).
    m.on(PROPOSED_AT + 1, fx.signature(1, &report));
    let Event::Signature { signature: mut forged, .. } = fx.signature(2, &report) else { unreachable!() };
    forged.signer = fx.keys[3].address();
    // It cannot be checked before this member knows its own report: it is held until then.
    assert!(m.on(PROPOSED_AT + 1, Event::Signature { author: 3, signature: forged.clone() }).is_empty());
    // A signature claimed by the wrong committee member.
    let Event::Signature { signature: member2, .. } = fx.signature(2, &report) else { unreachable!() };
    let out = m.on(PROPOSED_AT + 1, Event::Signature { author: 1, signature: member2 });
    assert!(matches!(out.as_slice(), [Action::Ignored { author: 1, .. }]), "{out:?}");
    let out = m.on(deadline, Event::Tick);
    assert!(
        matches!(out.as_slice(), [Action::SignReport { .. }, Action::Ignored { author: 3, .. }]),
        "{out:?}"
    );
    assert_eq!(m.signers(), vec![1]);
    // Another value, or a bit flipped in the signature.
    let mut other = report.clone();
    other.value = Wad::parse("1").unwrap();
    let out = m.on(deadline, fx.signature(2, &other));
    assert!(matches!(out.as_slice(), [Action::Ignored { author: 2, .. }]), "{out:?}");
    let Event::Signature { signature: mut flipped, .. } = fx.signature(3, &report) else { unreachable!() };
    flipped.signature[10] ^= 1;
    let out = m.on(deadline, Event::Signature { author: 3, signature: flipped });
    assert!(matches!(out.as_slice(), [Action::Ignored { author: 3, .. }]), "{out:?}");
    assert_eq!(m.signers(), vec![1]);
    // Member 0's and member 3's real ones make q = 3: this member leads, so it publishes.
    m.on(deadline, fx.signature(0, &report));
    let out = m.on(deadline, fx.signature(3, &report));
    assert_eq!(publishes(&out), vec![0]);
    assert_eq!(m.signers(), vec![0, 1, 3]);
}

#[test]
fn another_value_on_chain_is_a_conflict_and_a_reorg_brings_publication_back() {
    let fx = fixture();
    let deadline = PROPOSED_AT + PERIOD;
    // The round's leader: it publishes in turn 0.
    let mut m = fx.machine(fx.leader());
    m.on(PROPOSED_AT, fx.certified());
    m.on(deadline, Event::Tick);
    let report = fx.report();
    for i in [0, 1] {
        m.on(deadline, fx.signature(i, &report));
    }
    let on_chain = OnChain {
        value: value(),
        tx_hash: B256::repeat_byte(1),
        block_number: 5,
        confirmations: 3,
        publisher: fx.keys[0].address(),
    };
    assert!(matches!(
        m.on(deadline, Event::Chain(Some(on_chain.clone()))).as_slice(),
        [Action::Published(_)]
    ));
    // A reorg removes it: with a quorum, the member whose turn it is publishes again.
    assert!(m.on(deadline, Event::Chain(None)).is_empty());
    assert!(!m.is_published());
    assert_eq!(publishes(&m.on(deadline + 1, fx.signature(2, &report))), vec![0]);
    let wrong = OnChain { value: Wad::parse("1").unwrap(), ..on_chain };
    let out = m.on(deadline + 2, Event::Chain(Some(wrong)));
    assert_eq!(
        out,
        vec![Action::Conflict {
            on_chain: Wad::parse("1").unwrap(),
            ours: value(),
            tx_hash: B256::repeat_byte(1)
        }]
    );
    assert!(publishes(&m.on(deadline + 3 * TIMEOUT * 4, Event::Tick)).is_empty(), "never overwrites");
}

#[test]
fn nothing_certified_by_the_hard_deadline_fails_loudly_once() {
    let fx = fixture();
    let mut m = fx.machine(0);
    let hard = MATURITY + protocol().hard_deadline_secs;
    assert!(m.on(hard - 1, Event::Tick).is_empty());
    let out = m.on(hard, Event::Tick);
    assert!(matches!(out.as_slice(), [Action::Failed { .. }]), "{out:?}");
    assert!(m.on(hard + 1, Event::Tick).is_empty());
}

const SETTLE: u64 = 11;
const BOND: u128 = 100_000_000_000_000_000;

impl Fixture {
    /// A machine whose fold lags the clock by [`SETTLE`].
    fn lagging(&self, me: usize) -> Deciding {
        let dispute = DisputeParams::for_committee(&protocol(), MATURITY, &self.committee, 0);
        let params =
            PublicationParams { settle_secs: SETTLE, ..PublicationParams::from_protocol(&protocol()) };
        Deciding(
            Publication::new(self.committee.clone(), me, self.id, dispute, params, CHAIN, CONTRACT).unwrap(),
        )
    }

    fn dispute(&self, id: u8, bond_wei: u128, accepted_at: u64) -> Event {
        Event::Dispute {
            filing: fixd_dispute::DisputeFiling {
                dispute_id: B256::repeat_byte(id),
                disputer: Address::repeat_byte(id),
                bond_wei,
                proposal_hash: B256::repeat_byte(0xaa),
                claimed_value: None,
                reason: fixd_proto::types::dispute::DisputeReason::BadData,
            },
            pool_wei: 0,
            accepted_at,
            late: false,
        }
    }

    /// Certifies, then two reviews reject disputes 1 and 2 and dispute 3 goes to the
    /// arbitrator; returns the time dispute 3 was filed.
    fn to_arbitration(&self, on: &mut dyn FnMut(u64, Event) -> Vec<Action>) -> u64 {
        on(PROPOSED_AT, self.certified());
        let mut t = PROPOSED_AT;
        for (id, bond) in [(1u8, BOND), (2, 2 * BOND)] {
            t += 2;
            on(t, self.dispute(id, bond, t));
            t += 1;
            let out = on(t, self.review(id, value(), t));
            assert!(signs(&out).is_none(), "not final while disputes go on");
        }
        t += 2;
        on(t, self.dispute(3, 4 * BOND, t));
        t
    }

    /// A review of dispute `id` by members 0..3 that all recompute `reviewed`.
    fn review(&self, id: u8, reviewed: Wad, proposed_at: u64) -> Event {
        let votes = (0..3)
            .map(|member| fixd_dispute::ReviewVoteCast {
                member,
                dispute_id: B256::repeat_byte(id),
                value: Some(reviewed),
                median_recomputes: true,
            })
            .collect();
        Event::ReviewCertified {
            votes,
            round: 7,
            proposal_hash: B256::repeat_byte(0xbb),
            value: reviewed,
            proposed_at,
        }
    }
}

fn starts_review(actions: &[Action]) -> bool {
    actions.iter().any(|a| matches!(a, Action::StartReview { dispute_round: 1, .. }))
}

fn signs(actions: &[Action]) -> Option<&FinalReport> {
    actions.iter().find_map(|a| if let Action::SignReport { report, .. } = a { Some(report) } else { None })
}

#[test]
fn timeline_a_dispute_one_second_before_the_deadline_counts_on_every_member_whenever_it_arrives() {
    let fx = fixture();
    let deadline = PROPOSED_AT + PERIOD;
    // Accepted by some member at deadline − 1; members hear of it 0 s or 9 s later, so one of
    // them holds it only after the window has closed by its own clock.
    for delay in [0, 9] {
        let mut m = fx.lagging(1);
        let mut out = m.on(PROPOSED_AT + 1, fx.certified());
        out.extend(m.on(deadline - 1 + delay, fx.dispute(1, BOND, deadline - 1)));
        for now in deadline - 1 + delay..deadline + 2 * SETTLE {
            out.extend(m.on(now, Event::Tick));
        }
        assert!(starts_review(&out), "delay {delay}: {out:?}");
        assert!(signs(&out).is_none(), "delay {delay}: final despite a dispute in time");
        let accepted = out.iter().any(|a| matches!(a, Action::Disputes { at, action: fixd_dispute::Action::DisputeAccepted { .. } } if *at == deadline - 1));
        assert!(accepted, "delay {delay}: {out:?}");
    }
    // One second later it is refused, wherever it arrived from.
    let mut m = fx.lagging(1);
    m.on(PROPOSED_AT + 1, fx.certified());
    let mut out = m.on(deadline + 1, fx.dispute(2, BOND, deadline));
    for now in deadline + 1..deadline + 2 * SETTLE {
        out.extend(m.on(now, Event::Tick));
    }
    assert!(!starts_review(&out));
    assert!(
        out.iter().any(|a| matches!(
            a,
            Action::Disputes { action: fixd_dispute::Action::DisputeRefused { .. }, .. }
        ))
    );
    assert_eq!(signs(&out), Some(&fx.report()), "final on the certified value");
}

#[test]
fn timeline_a_rejected_review_reopens_the_window_and_the_report_carries_the_forfeit_bond() {
    let fx = fixture();
    let deadline = PROPOSED_AT + PERIOD;
    let mut m = fx.lagging(0);
    let mut out = m.on(PROPOSED_AT, fx.certified());
    out.extend(m.on(PROPOSED_AT + 5, fx.dispute(1, BOND + 1, PROPOSED_AT + 5)));
    let reviewed_at = PROPOSED_AT + 12;
    out.extend(m.on(reviewed_at + 1, fx.review(1, value(), reviewed_at)));
    let reopened = (reviewed_at + protocol().reopened_challenge_period_secs).max(deadline);
    let mut signed = None;
    for now in reviewed_at + 1..reopened + SETTLE + 1 {
        let step = m.on(now, Event::Tick);
        if signed.is_none() && signs(&step).is_some() {
            signed = Some(now);
        }
        out.extend(step);
    }
    let decided = out.iter().any(|a| {
        matches!(
            a,
            Action::Disputes { action: fixd_dispute::Action::ReviewDecided { upheld: false, .. }, .. }
        )
    });
    assert!(decided, "{out:?}");
    assert_eq!(signed, Some(reopened + SETTLE), "final once the fold passes the reopened deadline");
    let report = signs(&out).unwrap();
    assert_eq!(report.value, value());
    let [outcome] = report.outcomes.as_slice() else { panic!("{:?}", report.outcomes) };
    assert_eq!((outcome.refund, outcome.reward), (0, 0));
    let forfeit = BOND + 1;
    assert_eq!(outcome.pooled, forfeit / 2, "half to the pool, rounded down");
    assert_eq!(outcome.burned, forfeit - forfeit / 2, "the rest, with the odd wei, burned");
    // The turns start from the agreed moment plus the lag.
    assert_eq!(m.publisher_at(reopened + SETTLE).map(|(turn, _)| turn), Some(0));
}

#[test]
fn timeline_an_upheld_review_certifies_the_reviewed_value_and_a_late_dispute_revises_history() {
    let fx = fixture();
    let mut m = fx.lagging(0);
    m.on(PROPOSED_AT, fx.certified());
    m.on(PROPOSED_AT + 5, fx.dispute(1, BOND, PROPOSED_AT + 5));
    let reviewed = Wad::parse("2800").unwrap();
    let reviewed_at = PROPOSED_AT + 12;
    let mut out = m.on(reviewed_at + 1, fx.review(1, reviewed, reviewed_at));
    let end = reviewed_at + protocol().reopened_challenge_period_secs.max(PERIOD) + SETTLE + 1;
    for now in reviewed_at + 1..end {
        out.extend(m.on(now, Event::Tick));
    }
    let report = signs(&out).expect("final").clone();
    assert_eq!((report.value, report.round), (reviewed, 1), "the review of dispute round 1 is in force");
    assert_eq!(report.outcomes[0].refund, BOND);
    assert!(!out.contains(&Action::Revised));
    // A dispute stamped in the past, arriving only now, changes the history already acted on.
    let late = m.on(end, fx.dispute(2, 2 * BOND, reviewed_at + 2));
    assert!(late.contains(&Action::Revised), "{late:?}");
}

#[test]
fn timeline_predicts_the_answer_without_changing_anything() {
    let fx = fixture();
    let mut m = fx.lagging(0);
    m.on(PROPOSED_AT, fx.certified());
    let filing = |id: u8, bond| match fx.dispute(id, bond, 0) {
        Event::Dispute { filing, .. } => filing,
        _ => unreachable!(),
    };
    assert_eq!(m.timeline().predict_dispute(PROPOSED_AT + 1, filing(1, BOND), 0), Ok(1));
    assert_eq!(
        m.timeline().predict_dispute(PROPOSED_AT + 1, filing(1, BOND - 1), 0),
        Err(fixd_dispute::Refusal::BondTooSmall { required: BOND, offered: BOND - 1 })
    );
    assert_eq!(
        m.timeline().predict_dispute(PROPOSED_AT + PERIOD, filing(1, BOND), 0),
        Err(fixd_dispute::Refusal::WindowClosed { deadline: PROPOSED_AT + PERIOD })
    );
    assert!(!m.timeline().has_dispute(&B256::repeat_byte(1)), "a prediction stores nothing");
}

#[test]
fn timeline_a_restarted_member_folds_everything_it_stored_before_it_acts() {
    let fx = fixture();
    let deadline = PROPOSED_AT + PERIOD;
    // Back after the window and the lag: the certificate and a dispute from before the deadline
    // are fed together, so the member never signs a report without the dispute.
    let mut m = fx.lagging(3);
    let out = m.on_all(deadline + 2 * SETTLE, vec![fx.certified(), fx.dispute(1, BOND, deadline - 5)]);
    assert!(signs(&out).is_none(), "{out:?}");
    assert!(starts_review(&out), "{out:?}");
}

#[test]
fn timeline_keeps_the_earliest_relay_of_a_dispute_and_the_pool_of_the_first_accepted_one() {
    let fx = fixture();
    let mut m = fx.lagging(0);
    m.on(PROPOSED_AT, fx.certified());
    // One dispute relayed by two members: the later relay changes nothing.
    m.on(PROPOSED_AT + 9, fx.dispute(1, BOND, PROPOSED_AT + 9));
    m.on(PROPOSED_AT + 9, fx.dispute(1, BOND, PROPOSED_AT + 6));
    m.on(PROPOSED_AT + 9, fx.dispute(1, BOND, PROPOSED_AT + 8));
    let state = m.timeline().latest(PROPOSED_AT + 9);
    let [record] = state.disputes() else { panic!("{:?}", state.disputes()) };
    assert_eq!(record.filed_at, PROPOSED_AT + 6, "the earliest relay counts");
    // A refused dispute (bond too small) filed first does not set the pool; the accepted one does.
    let with_pool = |id: u8, bond: u128, at: u64, pool_wei: u128| match fx.dispute(id, bond, at) {
        Event::Dispute { filing, accepted_at, late, .. } => {
            Event::Dispute { filing, pool_wei, accepted_at, late }
        }
        _ => unreachable!(),
    };
    let mut m = fx.lagging(0);
    m.on(PROPOSED_AT, fx.certified());
    m.on(PROPOSED_AT + 3, with_pool(2, BOND - 1, PROPOSED_AT + 2, 7 * BOND));
    m.on(PROPOSED_AT + 4, with_pool(3, BOND, PROPOSED_AT + 3, BOND / 4));
    let reviewed = Wad::parse("2800").unwrap();
    let mut out = m.on(PROPOSED_AT + 13, fx.review(3, reviewed, PROPOSED_AT + 12));
    let end = PROPOSED_AT + 12 + protocol().reopened_challenge_period_secs.max(PERIOD) + SETTLE + 1;
    for now in PROPOSED_AT + 13..end {
        out.extend(m.on(now, Event::Tick));
    }
    let report = signs(&out).expect("final");
    let [outcome] = report.outcomes.as_slice() else { panic!("{:?}", report.outcomes) };
    assert_eq!(
        (outcome.refund, outcome.reward),
        (BOND, BOND / 4),
        "the reward is capped by the accepted dispute's pool"
    );
}

/// The backdated ruling: after two reviews the third dispute goes to the arbitrator. One member
/// relays the genuine ruling dated before the arbitration began; the fold ignores it there, and
/// the real relay, held beside it (the driver keeps one relay per member), decides.
#[test]
fn timeline_a_backdated_ruling_is_ignored_and_the_real_one_decides() {
    let fx = fixture();
    let mut m = fx.machine(0);
    let t = fx.to_arbitration(&mut |now, event| m.on(now, event));
    assert_eq!(
        m.disputes().phase(),
        fixd_dispute::Phase::Arbitration,
        "the third round goes to the arbitrator"
    );
    let ruled = Wad::parse("2611").unwrap();
    let ruling = |accepted_at| Event::Ruling {
        dispute_id: B256::repeat_byte(3),
        value: ruled,
        upheld: true,
        accepted_at,
        late: false,
    };
    let backdated = m.on(t + 1, ruling(PROPOSED_AT + 1));
    assert!(signs(&backdated).is_none(), "a ruling dated before the arbitration decides nothing");
    let mut out = m.on(t + 2, ruling(t + 2));
    out.extend(m.on(t + 3, Event::Tick));
    let report = signs(&out).expect("the real ruling makes the value final");
    assert_eq!(report.value, ruled);
}

/// The arbitrator's ruling reached this member outside the receipt bound (it was cut off when
/// the ruling went round, or a member backdated it): its own fold does not count it, so it is
/// not final by the ruling. It offers the report that counts it all the same, and once the
/// committee decides that report, it takes the ruling into its timeline and signs.
#[test]
fn timeline_a_late_ruling_counts_only_through_the_decided_report() {
    let fx = fixture();
    let mut m = fx.machine(0).0;
    let t = fx.to_arbitration(&mut |now, event| m.on(now, event));
    let ruled = Wad::parse("2611").unwrap();
    let late = Event::Ruling {
        dispute_id: B256::repeat_byte(3),
        value: ruled,
        upheld: true,
        accepted_at: t + 1,
        late: true,
    };
    let mut out = m.on(t + 1, late);
    for now in t + 2..t + 3 + SETTLE {
        out.extend(m.on(now, Event::Tick));
    }
    assert_eq!(
        m.disputes().phase(),
        fixd_dispute::Phase::Arbitration,
        "its own fold still waits for a ruling"
    );
    assert!(m.own_report().is_none() && signs(&out).is_none());
    let offered = out
        .iter()
        .rev()
        .find_map(|a| if let Action::ReportReady { reports, .. } = a { Some(reports.clone()) } else { None })
        .expect("the report with the late ruling is offered");
    let [report] = offered.as_slice() else { panic!("{offered:?}") };
    assert_eq!(report.value, ruled);
    let out = m.decided(t + 3 + SETTLE, report.clone());
    assert_eq!(signs(&out), Some(report), "decided: the ruling is taken and the report signed");
    assert_eq!(m.disputes().phase(), fixd_dispute::Phase::Final);
}

#[test]
fn timeline_folds_its_events_in_agreed_order_whatever_order_they_arrive_in() {
    use super::timeline::{Timeline, agreed};
    let fx = fixture();
    let params = DisputeParams::for_committee(&protocol(), MATURITY, &fx.committee, 0);
    let (certified_at, certified) = agreed(fx.certified()).unwrap();
    let (disputed_at, disputed) = agreed(fx.dispute(1, BOND, PROPOSED_AT + 1)).unwrap();
    // The dispute reaches one member before the certificate, the other after it.
    let mut early = Timeline::new(params.clone()).unwrap();
    assert!(early.insert(disputed_at, disputed.clone()));
    assert!(early.insert(certified_at, certified.clone()));
    assert!(!early.insert(disputed_at, disputed.clone()), "an event is held once");
    let mut late = Timeline::new(params).unwrap();
    assert!(late.insert(certified_at, certified));
    assert!(late.insert(disputed_at, disputed));
    let (early, late) = (early.fold(PROPOSED_AT + 2), late.fold(PROPOSED_AT + 2));
    assert_eq!(early.new, late.new);
    assert!(
        early.new.iter().any(|t| matches!(t.action, fixd_dispute::Action::DisputeAccepted { .. })),
        "the certificate is folded first, so the dispute is accepted: {:?}",
        early.new
    );
}
