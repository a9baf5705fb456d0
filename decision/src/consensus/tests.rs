//! Scenarios of one settlement's certification, and the machine's rules one at a time.

use alloy_primitives::B256;
use fixd_proto::certify::{CertifyError, Role};
use fixd_proto::signing::Signed;
use fixd_proto::types::observation::{NodeValue, Observation};
use fixd_proto::value::Wad;

use super::sim::{Byzantine, Fixture, ROUND_SECS, Sim, fixture};
use super::{Action, Certification, Equivocation, Event, EvidenceError, MessageKind, ROUNDS_AHEAD};
use fixd_proto::gossip::GossipMessage;

fn certified_round(sim: &Sim, member: usize) -> u32 {
    sim.certified
        .get(&member)
        .unwrap_or_else(|| panic!("member {member} did not certify"))
        .proposal
        .payload
        .round
}

/// The first round from `from` not led by `member`.
fn first_round_not_led_by(fx: &Fixture, member: usize, from: u32) -> u32 {
    (from..).find(|&r| fx.leader(r) != member).unwrap()
}

#[test]
fn four_honest_members_certify_in_round_zero() {
    let mut sim = Sim::new(4, None, 7);
    sim.run_rounds(2);
    sim.check_certificates();
    for member in 0..4 {
        assert_eq!(certified_round(&sim, member), 0);
        let cert = &sim.certified[&member];
        // The leader proposes as soon as it holds q values: three or four of them.
        assert!(cert.proposal.payload.inputs.len() >= 3);
        assert_eq!(cert.proposal.payload.value, sim.median_of_inputs(cert));
        assert_eq!(cert.proposal, sim.certified[&0].proposal, "everyone certifies the same proposal");
    }
    assert!(
        !sim.actions.iter().any(|(_, a)| matches!(a, Action::Rejected { .. } | Action::Equivocation { .. }))
    );
}

#[test]
fn a_silent_leader_is_replaced_by_the_next_round() {
    let fx = fixture(4);
    let silent = fx.leader(0);
    let next = first_round_not_led_by(&fx, silent, 1);
    let mut sim = Sim::new(4, Some((silent, Byzantine::Silent)), 11);
    sim.run_rounds(u64::from(next) + 2);
    sim.check_certificates();
    for member in sim.honest_members() {
        assert_eq!(certified_round(&sim, member), next);
        assert!(sim.actions.iter().any(|(m, a)| *m == member
            && matches!(a, Action::RoundTimedOut { round: 0, next_round: 1, next_leader } if *next_leader == fx.leader(1))));
    }
}

#[test]
fn a_wrong_median_is_rejected_and_the_next_round_certifies_the_right_value() {
    let fx = fixture(4);
    let liar = fx.leader(0);
    let liar_key = fx.key(liar);
    let next = first_round_not_led_by(&fx, liar, 1);
    let mut sim = Sim::new(4, Some((liar, Byzantine::WrongMedian)), 3);
    sim.run_rounds(u64::from(next) + 2);
    sim.check_certificates();
    for member in sim.honest_members() {
        let rejected = sim.actions.iter().any(|(m, a)| {
            *m == member
                && matches!(a, Action::Rejected { from, reason: CertifyError::WrongValue { proposed, recomputed } }
                    if *from == liar_key && proposed.raw() == recomputed.raw() + 1)
        });
        assert!(rejected, "member {member} did not reject the wrong median");
        assert!(
            !sim.actions.iter().any(|(m, a)| *m == member && matches!(a, Action::Vote(v) if v.round == 0)),
            "member {member} voted for the wrong median"
        );
        let cert = &sim.certified[&member];
        assert_eq!(cert.proposal.payload.round, next);
        assert_eq!(cert.proposal.payload.value, sim.median_of_inputs(cert));
    }
}

#[test]
fn an_equivocating_voter_is_detected_and_ignored() {
    let fx = fixture(4);
    let voter = (0..4).find(|&m| m != fx.leader(0)).unwrap();
    let mut sim = Sim::new(4, Some((voter, Byzantine::EquivocatingVoter)), 5);
    // No delay: its two votes reach everyone before the honest votes do.
    sim.max_delay = 0;
    sim.run_rounds(3);
    sim.check_certificates();
    for member in sim.honest_members() {
        assert!(sim.actions.iter().any(|(m, a)| *m == member
            && matches!(a, Action::Equivocation(e) if *e.signer() == fx.key(voter)
                && e.kind() == MessageKind::Vote && e.round() == 0
                && e.check(&fx.network_id).is_ok())));
        assert!(sim.machines[member].equivocators().contains(&voter));
        let cert = &sim.certified[&member];
        assert_eq!(cert.proposal.payload.round, 0);
        assert!(cert.votes.iter().all(|v| v.signer != fx.key(voter)));
    }
}

/// A single machine driven by hand.
struct One {
    fx: Fixture,
    m: Certification,
    me: usize,
    obs: Vec<Signed<Observation>>,
}

fn one(me_is_leader_of_round_0: bool) -> One {
    let fx = fixture(4);
    let leader = fx.leader(0);
    let me = if me_is_leader_of_round_0 { leader } else { (leader + 1) % 4 };
    let obs =
        (0..4).map(|i| fx.observation(i, NodeValue::Value(Wad::from_raw(2500 + i as u128)), 0)).collect();
    One { m: fx.machine(me), fx, me, obs }
}

impl One {
    fn t0(&self) -> u64 {
        self.fx.observe_at()
    }
    fn feed_observations(&mut self, which: &[usize]) {
        for &i in which {
            let out = self.m.on(self.t0(), Event::Observation(self.obs[i].clone()));
            assert!(out.is_empty(), "{out:?}");
        }
    }
    fn leader_proposal(&self, round: u32, now: u64) -> Signed<super::Proposal> {
        let refs: Vec<&Signed<Observation>> = self.obs.iter().collect();
        let p = self.fx.proposal(round, now, &refs, None);
        Signed::sign(&self.fx.keys[self.fx.leader(round)], &self.fx.network_id, p)
    }
}

#[test]
fn the_leader_proposes_once_it_holds_q_values_and_only_once() {
    let mut t = one(true);
    let t0 = t.t0();
    assert!(t.m.on(t0 - 1, Event::Tick).is_empty());
    assert_eq!(t.m.round(), None);
    assert_eq!(t.m.next_wakeup(), Some(t0));
    t.feed_observations(&[0, 1]);
    let hash2 = t.obs[2].hash();
    let out = t.m.on(t0 + 1, Event::Observation(t.obs[2].clone()));
    let [Action::Propose(p)] = out.as_slice() else { panic!("{out:?}") };
    assert_eq!((p.round, p.proposed_at, p.challenge_deadline), (0, t0 + 1, t0 + 1 + 600));
    assert_eq!(p.inputs.len(), 3);
    assert!(p.inputs.contains(&hash2));
    // A fourth observation does not make a second proposal.
    assert!(t.m.on(t0 + 2, Event::Observation(t.obs[3].clone())).is_empty());
    // Fed back signed, the leader votes for its own proposal.
    let signed = Signed::sign(&t.fx.keys[t.me], &t.fx.network_id, p.clone());
    let out = t.m.on(t0 + 2, Event::Proposal(signed.clone()));
    assert_eq!(
        out,
        vec![Action::Vote(super::Vote {
            settlement_id: t.fx.spec.id(),
            round: 0,
            proposal_hash: signed.hash()
        })]
    );
}

#[test]
fn no_value_observations_are_not_proposed_from() {
    let mut t = one(true);
    let no_value = NodeValue::NoValue(fixd_proto::types::observation::NoValueReason::NoVenues);
    t.obs[2] = t.fx.observation(2, no_value, 0);
    t.feed_observations(&[0, 1, 2]);
    assert!(t.m.on(t.t0(), Event::Tick).is_empty(), "two values are not q");
    let out = t.m.on(t.t0(), Event::Observation(t.obs[3].clone()));
    let [Action::Propose(p)] = out.as_slice() else { panic!("{out:?}") };
    assert!(!p.inputs.contains(&t.obs[2].hash()));
}

#[test]
fn a_proposal_waits_for_the_observations_it_lists() {
    let mut t = one(false);
    let t0 = t.t0();
    let proposal = t.leader_proposal(0, t0);
    assert!(t.m.on(t0, Event::Proposal(proposal.clone())).is_empty());
    assert_eq!(t.m.missing_inputs().len(), 4);
    t.feed_observations(&[0, 1, 2]);
    assert_eq!(t.m.missing_inputs(), vec![t.obs[3].hash()]);
    let out = t.m.on(t0 + 3, Event::Observation(t.obs[3].clone()));
    assert!(matches!(out.as_slice(), [Action::Vote(v)] if v.proposal_hash == proposal.hash()), "{out:?}");
    // Judged by its arrival time, not by when the last observation came.
    assert!(t.m.missing_inputs().is_empty());
}

#[test]
fn a_member_votes_once_per_round_and_reports_an_equivocating_leader() {
    let mut t = one(false);
    let t0 = t.t0();
    t.feed_observations(&[0, 1, 2, 3]);
    let first = t.leader_proposal(0, t0);
    assert!(matches!(t.m.on(t0, Event::Proposal(first.clone())).as_slice(), [Action::Vote(_)]));
    let second = t.leader_proposal(0, t0 + 1);
    let out = t.m.on(t0 + 1, Event::Proposal(second.clone()));
    let leader = t.fx.leader(0);
    let evidence = Equivocation {
        first: GossipMessage::Proposal(first.clone()),
        second: GossipMessage::Proposal(second.clone()),
    };
    assert_eq!(out, vec![Action::Equivocation(evidence.clone())]);
    assert_eq!(
        (*evidence.signer(), evidence.kind(), evidence.round()),
        (t.fx.key(leader), MessageKind::Proposal, 0)
    );
    assert_eq!(evidence.check(&t.fx.network_id), Ok(()));
    // Neither half alone, nor a pair from two slots, nor a forged half is evidence.
    let same = Equivocation { first: evidence.first.clone(), second: evidence.first.clone() };
    assert_eq!(same.check(&t.fx.network_id), Err(EvidenceError::SameMessage));
    let vote = GossipMessage::Vote(t.fx.vote(leader, 0, first.hash()));
    let mixed = Equivocation { first: evidence.first.clone(), second: vote };
    assert_eq!(mixed.check(&t.fx.network_id), Err(EvidenceError::DifferentSlots));
    let mut forged = second.clone();
    forged.payload.value = fixd_proto::value::Wad::from_raw(forged.payload.value.raw() + 1);
    let forged = Equivocation { first: evidence.first.clone(), second: GossipMessage::Proposal(forged) };
    assert!(matches!(
        forged.check(&t.fx.network_id),
        Err(EvidenceError::BadSignature { which: "second", .. })
    ));
    assert!(t.m.equivocators().contains(&leader));
    // Its messages are ignored from now on.
    let vote = t.fx.vote(leader, 0, first.hash());
    assert!(t.m.on(t0 + 1, Event::Vote(vote)).is_empty());
}

#[test]
fn a_caught_equivocators_observation_is_kept_only_when_a_proposal_lists_it() {
    let mut t = one(false);
    let t0 = t.t0();
    let leader = t.fx.leader(0);
    let liar = (0..4).find(|&m| m != leader && m != t.me).unwrap();
    let others: Vec<usize> = (0..4).filter(|&m| m != liar).collect();
    t.feed_observations(&others);
    // Two votes for one round: caught before its observation reached this member.
    t.m.on(t0, Event::Vote(t.fx.vote(liar, 0, B256::repeat_byte(1))));
    let out = t.m.on(t0, Event::Vote(t.fx.vote(liar, 0, B256::repeat_byte(2))));
    assert!(matches!(out.as_slice(), [Action::Equivocation(e)] if e.kind() == MessageKind::Vote), "{out:?}");
    // An observation of the liar that no proposal lists is ignored.
    let unlisted = t.fx.observation(liar, NodeValue::Value(Wad::from_raw(1)), 7);
    assert!(t.m.on(t0, Event::Observation(unlisted.clone())).is_empty());
    assert!(!t.m.observations().any(|o| o.hash() == unlisted.hash()));
    // The honest leader used the liar's observation; fetched, it is accepted and voted on.
    let proposal = t.leader_proposal(0, t0);
    assert!(t.m.on(t0, Event::Proposal(proposal.clone())).is_empty());
    assert_eq!(t.m.missing_inputs(), vec![t.obs[liar].hash()]);
    let out = t.m.on(t0 + 1, Event::Observation(t.obs[liar].clone()));
    assert!(matches!(out.as_slice(), [Action::Vote(v)] if v.proposal_hash == proposal.hash()), "{out:?}");
    assert!(t.m.equivocators().contains(&liar));
}

#[test]
fn a_restarted_member_does_not_vote_again() {
    let mut t = one(false);
    let t0 = t.t0();
    t.feed_observations(&[0, 1, 2, 3]);
    // The store says this member voted for something else in round 0.
    let mine = t.fx.vote(t.me, 0, B256::repeat_byte(9));
    assert!(t.m.on(t0, Event::Vote(mine)).is_empty());
    assert!(t.m.on(t0, Event::Proposal(t.leader_proposal(0, t0))).is_empty());
}

#[test]
fn bad_proposals_are_rejected_with_the_reason() {
    let mut t = one(false);
    let t0 = t.t0();
    t.feed_observations(&[0, 1, 2, 3]);
    let leader = t.fx.leader(0);
    // Not the leader.
    let other = (0..4).find(|&m| m != leader && m != t.me).unwrap();
    let refs: Vec<&Signed<Observation>> = t.obs.iter().collect();
    let p = t.fx.proposal(0, t0, &refs, None);
    let by_other = Signed::sign(&t.fx.keys[other], &t.fx.network_id, p.clone());
    let out = t.m.on(t0, Event::Proposal(by_other));
    assert!(
        matches!(out.as_slice(), [Action::Rejected { reason: CertifyError::WrongLeader { .. }, .. }]),
        "{out:?}"
    );
    // A deadline that is not proposed_at + challenge_period.
    let mut late = p.clone();
    late.challenge_deadline += 1;
    let late = Signed::sign(&t.fx.keys[leader], &t.fx.network_id, late);
    let out = t.m.on(t0, Event::Proposal(late));
    assert!(
        matches!(
            out.as_slice(),
            [Action::Rejected { reason: CertifyError::WrongChallengeDeadline { .. }, .. }]
        ),
        "{out:?}"
    );
    // One verdict per round: the round-0 slot is now spent on a rejected proposal.
    assert_eq!(t.m.round(), Some(0));
    // In round 1, a proposal made 30 s before it arrived.
    let r1 = t0 + ROUND_SECS + 1;
    let refs: Vec<&Signed<Observation>> = t.obs.iter().collect();
    let stale = t.fx.proposal(1, r1 - 30, &refs, None);
    let stale = Signed::sign(&t.fx.keys[t.fx.leader(1)], &t.fx.network_id, stale);
    let out = t.m.on(r1, Event::Proposal(stale));
    assert!(
        out.iter().any(|a| matches!(a, Action::Rejected { reason: CertifyError::ClockSkew { .. }, .. })),
        "{out:?}"
    );
}

#[test]
fn bad_messages_are_rejected() {
    let mut t = one(false);
    let t0 = t.t0();
    let outsider = ed25519_dalek::SigningKey::from_bytes(&[99; 32]);
    let foreign = Signed::sign(&outsider, &t.fx.network_id, t.obs[0].payload.clone());
    let out = t.m.on(t0, Event::Observation(foreign.clone()));
    assert_eq!(
        out,
        vec![Action::Rejected {
            from: foreign.signer,
            reason: CertifyError::NotAMember { signer: foreign.signer, role: Role::Observer }
        }]
    );
    let mut forged = t.obs[1].clone();
    forged.payload.observed_at += 1;
    let out = t.m.on(t0, Event::Observation(forged));
    assert!(matches!(
        out.as_slice(),
        [Action::Rejected { reason: CertifyError::BadSignature { role: Role::Observer, .. }, .. }]
    ));
    let mut vote = t.fx.vote(2, 0, B256::ZERO);
    vote.payload.settlement_id = B256::repeat_byte(1);
    let out = t.m.on(t0, Event::Vote(vote));
    assert!(matches!(
        out.as_slice(),
        [Action::Rejected { reason: CertifyError::WrongSettlement { .. }, .. }]
    ));
}

#[test]
fn future_rounds_are_kept_within_bounds_and_stale_rounds_not_voted_on() {
    let mut t = one(false);
    let t0 = t.t0();
    t.feed_observations(&[0, 1, 2, 3]);
    // A proposal for a round further ahead than ROUNDS_AHEAD is dropped.
    let far = ROUNDS_AHEAD + 1;
    let start = |r: u32| t0 + u64::from(r) * ROUND_SECS;
    let too_far = t.leader_proposal(far, start(far));
    assert!(t.m.on(t0, Event::Proposal(too_far)).is_empty());
    // One for next round, sent a little early, is voted on when that round begins.
    let early = t.leader_proposal(1, start(1) - 2);
    assert!(t.m.on(start(1) - 3, Event::Proposal(early.clone())).is_empty());
    let out = t.m.on(start(1), Event::Tick);
    assert!(out.iter().any(|a| matches!(a, Action::RoundTimedOut { round: 0, next_round: 1, .. })));
    assert!(
        out.iter().any(|a| matches!(a, Action::Vote(v) if v.round == 1 && v.proposal_hash == early.hash()))
    );
    // A round-0 proposal arriving in round 1 gets no vote.
    let stale = t.leader_proposal(0, start(1));
    let out = t.m.on(start(1) + 1, Event::Proposal(stale));
    assert!(!out.iter().any(|a| matches!(a, Action::Vote(_))), "{out:?}");
}

#[test]
fn late_votes_still_certify_their_round_and_certification_happens_once() {
    let mut t = one(false);
    let t0 = t.t0();
    t.feed_observations(&[0, 1, 2, 3]);
    let proposal = t.leader_proposal(0, t0);
    t.m.on(t0, Event::Proposal(proposal.clone()));
    let voters: Vec<usize> = (0..4).filter(|&m| m != t.me).collect();
    // Two votes in round 0, the third only in round 2: any q votes make a valid certificate.
    for &v in &voters[..2] {
        assert!(t.m.on(t0 + 1, Event::Vote(t.fx.vote(v, 0, proposal.hash()))).is_empty());
    }
    let late = t0 + 2 * ROUND_SECS;
    let out = t.m.on(late, Event::Vote(t.fx.vote(voters[2], 0, proposal.hash())));
    assert!(out.iter().any(|a| matches!(a, Action::Certified(c) if c.votes.len() == 3)), "{out:?}");
    assert!(t.m.certificate().is_some());
    assert_eq!(t.m.next_wakeup(), None);
    assert!(t.m.on(late + 1, Event::Vote(t.fx.vote(t.me, 0, proposal.hash()))).is_empty());
}

#[test]
fn a_review_is_certified_from_exactly_q_votes_of_its_own_dispute_from_its_first_round() {
    use fixd_proto::certify::{ReviewTarget, verify_review_certificate};
    use fixd_proto::types::dispute::ReviewVote;

    use super::Review;

    let fx = fixture(4);
    let target = ReviewTarget { dispute_id: B256::repeat_byte(0xd1), contested: B256::repeat_byte(0xc0) };
    let first_round = 5;
    let review = Review { target, first_round };
    let mut machines: Vec<Certification<Review>> = (0..4)
        .map(|me| {
            Certification::for_review(
                review.clone(),
                fx.committee.clone(),
                me,
                fx.network_id,
                fx.spec.clone(),
                fx.params,
            )
        })
        .collect();
    let vote = |member: usize, value: &str, dispute_id: B256| {
        let payload = ReviewVote {
            settlement_id: fx.spec.id(),
            dispute_id,
            proposal_hash: target.contested,
            median_recomputes: true,
            value: NodeValue::Value(Wad::parse(value).unwrap()),
            trade_digest: B256::ZERO,
        };
        Signed::sign(&fx.keys[member], &fx.network_id, payload)
    };
    let votes: Vec<_> = ["2700", "2710", "2720", "2790"]
        .iter()
        .enumerate()
        .map(|(member, value)| vote(member, value, target.dispute_id))
        .collect();
    // Another dispute's vote, with a value that would move the median: left alone.
    let stray = vote(3, "1", B256::repeat_byte(0xd2));

    // Before the first round, every vote held: nothing is proposed.
    let early = fx.observe_at() + ROUND_SECS * u64::from(first_round) - 1;
    for m in &mut machines {
        for v in votes.iter().chain([&stray]) {
            let out = m.on(early, Event::ReviewVote(v.clone()));
            assert!(out.is_empty(), "{out:?}");
        }
        assert_eq!(m.round(), None);
    }

    // From the first round on: deliver every signed message to everyone until all certify.
    let mut now = early + 1;
    let mut certified: Vec<Option<fixd_proto::types::certificate::Certificate>> = vec![None; 4];
    let mut queue: std::collections::VecDeque<(usize, Event)> = (0..4).map(|me| (me, Event::Tick)).collect();
    let mut steps = 0;
    while certified.iter().any(Option::is_none) {
        steps += 1;
        assert!(steps < 1_000, "no certificate");
        let Some((me, event)) = queue.pop_front() else {
            now += 1;
            queue.extend((0..4).map(|me| (me, Event::Tick)));
            continue;
        };
        for action in machines[me].on(now, event) {
            let signed = match action {
                Action::Propose(p) => {
                    assert!(p.round >= first_round, "proposed in round {}", p.round);
                    Event::Proposal(Signed::sign(&fx.keys[me], &fx.network_id, p))
                }
                Action::Vote(v) => Event::Vote(Signed::sign(&fx.keys[me], &fx.network_id, v)),
                Action::Certified(c) => {
                    certified[me] = Some(c);
                    continue;
                }
                Action::Rejected { reason, .. } => panic!("member {me} rejected: {reason}"),
                _ => continue,
            };
            queue.extend((0..4).map(|to| (to, signed.clone())));
        }
    }
    let first = certified[0].clone().unwrap();
    let listed: Vec<_> = votes[..3].to_vec();
    let mut expected: Vec<B256> = listed.iter().map(|v| v.hash()).collect();
    expected.sort_unstable();
    assert_eq!(first.proposal.payload.inputs, expected, "exactly q votes, the lowest member indices");
    assert_eq!(first.proposal.payload.value, Wad::parse("2710").unwrap(), "the median of the q listed");
    assert_eq!(
        first.proposal.payload.source,
        fixd_proto::types::certificate::ProposalSource::Review { dispute_id: target.dispute_id }
    );
    assert!(first.proposal.payload.round >= first_round);
    let value = verify_review_certificate(&fx.committee, &fx.network_id, &fx.spec, &first, &target, &listed);
    assert_eq!(value, Ok(Wad::parse("2710").unwrap()));
    assert!(certified.iter().all(|c| c.as_ref() == Some(&first)), "everyone certifies the same review");
    // A plain first-certificate machine will not take a review proposal.
    let mut plain = fx.machine(0);
    let out = plain.on(now, Event::Proposal(first.proposal.clone()));
    assert!(
        matches!(out.as_slice(), [Action::Rejected { reason: CertifyError::UnsupportedSource, .. }]),
        "{out:?}"
    );
}
