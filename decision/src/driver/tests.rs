//! The driver with a committee of four and a small executor per member that keeps what the
//! driver asks to keep, signs once per slot and delivers every gossip message to the others.
//! No sockets, no clock: time is an argument.

use std::collections::{HashMap, VecDeque};

use alloy_primitives::{Address, B256};
use alloy_signer_local::PrivateKeySigner;
use ed25519_dalek::SigningKey;
use fixd_dispute::Refusal;
use fixd_proto::eip712::{self, ReportSignature, SignedDispute, SignedRuling};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::dispute::{ArbitratorRuling, Dispute, DisputeEscrow, DisputeReason};
use fixd_proto::types::genesis::{Genesis, Member as GenesisMember, ProtocolParams};
use fixd_proto::types::observation::{Computation, NodeValue, Observation, Partition};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::value::Wad;

use super::{
    Accepted, DriverSetup, Effect, Held, Input, QUIET_TICKS, Record, Rejected, SettlementDriver, SigningSlot,
    Unsigned,
};
use crate::events::EventKind;
use crate::publication::OnChain;

const N: usize = 4;
const ROUND: u64 = 10;
const PERIOD: u64 = 30;
const SKEW: u64 = 1;
const ARBITRATOR: u8 = 0xab;

/// One member: its driver and what its executor did.
struct Member {
    driver: SettlementDriver,
    key: SigningKey,
    eth: PrivateKeySigner,
    slots: HashMap<SigningSlot, B256>,
    /// What the executor kept, as the store would hold it.
    held: Held,
    events: Vec<EventKind>,
    watching: bool,
    published: Vec<u64>,
    bond_checks: Vec<B256>,
    /// Recomputations asked for and not answered yet: (dispute round, dispute id, contested).
    recomputes: Vec<(u16, B256, B256)>,
    /// Sign effects refused because the slot held another message.
    refused: usize,
}

struct Committee {
    members: Vec<Member>,
    setups: Vec<DriverSetup>,
    spec: SettlementSpec,
    queue: VecDeque<(usize, Input)>,
    now: u64,
    /// Members that relayed disputes do not reach (yet), and what they did not get.
    withhold_disputes_from: Vec<usize>,
    withheld: Vec<(usize, Input)>,
}

fn setup_for(me: usize) -> (Vec<SigningKey>, Vec<PrivateKeySigner>, Genesis, DriverSetup) {
    let keys: Vec<SigningKey> = (1..=N as u8).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
    let eth: Vec<PrivateKeySigner> =
        (1..=N as u8).map(|i| PrivateKeySigner::from_bytes(&B256::repeat_byte(i)).unwrap()).collect();
    let members = (0..N)
        .map(|i| GenesisMember {
            name: format!("node-{i}"),
            ed25519: PublicKey::of(&keys[i]),
            eth_address: eth[i].address(),
            listen: vec![],
        })
        .collect();
    let params = ProtocolParams {
        round_timeout_secs: ROUND,
        challenge_period_secs: PERIOD,
        reopened_challenge_period_secs: PERIOD,
        publish_timeout_secs: 20,
        max_clock_skew_secs: SKEW,
        confirmations: 1,
        ..ProtocolParams::default()
    };
    let genesis = Genesis {
        network: "fixd-driver-test".into(),
        chain_id: 31337,
        contract: Address::repeat_byte(0xc0),
        contract_block: 0,
        arbitrator: arbitrator().address(),
        members,
        params,
    };
    let setup = DriverSetup::from_genesis(&genesis, me, true);
    (keys, eth, genesis, setup)
}

fn arbitrator() -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::repeat_byte(ARBITRATOR)).unwrap()
}

fn spec() -> SettlementSpec {
    SettlementSpec { index: Index::EthUsd, maturity: 1_790_000_000, params: MethodologyParams::default() }
}

impl Committee {
    fn new() -> Self {
        let spec = spec();
        let now = spec.observe_at();
        let mut members = Vec::new();
        let mut setups = Vec::new();
        for me in 0..N {
            let (keys, eth, _, setup) = setup_for(me);
            let (driver, effects) =
                SettlementDriver::restore(setup.clone(), spec.clone(), Held::default(), now).unwrap();
            assert!(effects.is_empty(), "nothing to resume: {effects:?}");
            members.push(Member {
                driver,
                key: keys[me].clone(),
                eth: eth[me].clone(),
                slots: HashMap::new(),
                held: Held::default(),
                events: vec![],
                watching: false,
                published: vec![],
                bond_checks: vec![],
                recomputes: vec![],
                refused: 0,
            });
            setups.push(setup);
        }
        Committee {
            members,
            setups,
            spec,
            queue: VecDeque::new(),
            now,
            withhold_disputes_from: Vec::new(),
            withheld: Vec::new(),
        }
    }

    fn network_id(&self) -> B256 {
        self.setups[0].network_id
    }

    /// Each member's observer signs and keeps its observation, then hands it over.
    fn observe(&mut self, values: [u128; N]) {
        for (i, value) in values.into_iter().enumerate() {
            let observation = Observation {
                settlement_id: self.spec.id(),
                observed_at: self.now,
                computation: Computation {
                    partitions: vec![Partition::counted(4, Wad::from_raw(value)); 12],
                    venues: vec![],
                    value: NodeValue::Value(Wad::from_raw(value)),
                },
                trade_digest: B256::repeat_byte(i as u8),
            };
            let signed = Signed::sign(&self.members[i].key, &self.network_id(), observation);
            self.members[i].held.observations.push(signed.clone());
            self.queue.push_back((i, Input::Own(GossipMessage::Observation(signed.clone()))));
            self.gossip(i, GossipMessage::Observation(signed));
        }
        self.settle();
    }

    fn gossip(&mut self, from: usize, message: GossipMessage) {
        for to in (0..N).filter(|&to| to != from) {
            let input = (to, Input::Gossip(message.clone()));
            if matches!(message, GossipMessage::Dispute(_)) && self.withhold_disputes_from.contains(&to) {
                self.withheld.push(input);
            } else {
                self.queue.push_back(input);
            }
        }
    }

    /// Member `me` asks the next member for what it holds, as the node's catch-up does: its
    /// messages as if gossiped, then its decisions. Withheld disputes stay withheld.
    fn catch_up(&mut self, me: usize) {
        let peer = (me + 1 + self.now as usize % (N - 1)) % N;
        let held = &self.members[peer].held;
        let messages = (held.observations.iter().cloned().map(GossipMessage::Observation))
            .chain(held.disputes.iter().cloned().map(GossipMessage::dispute))
            .chain(held.review_votes.iter().cloned().map(GossipMessage::ReviewVote))
            .chain(held.proposals.iter().cloned().map(GossipMessage::proposal))
            .chain(held.votes.iter().cloned().map(GossipMessage::Vote))
            .chain(held.rulings.iter().cloned().map(GossipMessage::Ruling))
            .filter(|m| {
                !(matches!(m, GossipMessage::Dispute(_)) && self.withhold_disputes_from.contains(&me))
            });
        let certificates = (held.certificate.iter().map(|c| (**c).clone()))
            .chain(held.review_certificates.iter().map(|(_, c)| c.clone()))
            .chain(held.report_certificate.iter().map(|c| (**c).clone()));
        let inputs: Vec<Input> =
            messages.map(Input::Gossip).chain(certificates.map(Input::Certificate)).collect();
        self.queue.extend(inputs.into_iter().map(|input| (me, input)));
    }

    /// What was withheld arrives now (a catch-up answer).
    fn release_withheld(&mut self) {
        self.withhold_disputes_from.clear();
        self.queue.extend(std::mem::take(&mut self.withheld));
        self.settle();
    }

    /// Delivers every queued input until none is left.
    fn settle(&mut self) {
        while let Some((to, input)) = self.queue.pop_front() {
            let effects = self.members[to].driver.on(self.now, input);
            self.carry_out(to, effects);
        }
    }

    /// Member `me` alone gets [`QUIET_TICKS`] ticks at the current time.
    fn quiet(&mut self, me: usize) {
        for _ in 0..QUIET_TICKS {
            self.queue.push_back((me, Input::Tick));
            self.settle();
        }
    }

    fn tick(&mut self, at: u64) {
        self.now = at;
        for i in 0..N {
            self.queue.push_back((i, Input::Tick));
        }
        self.settle();
    }

    fn carry_out(&mut self, me: usize, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Keep(record) => keep(&mut self.members[me].held, record),
                Effect::Sign(unsigned) => {
                    if let Some(message) = self.sign(me, unsigned) {
                        self.gossip(me, message.clone());
                        self.queue.push_front((me, Input::Own(message)));
                    }
                }
                Effect::Gossip(message) => self.gossip(me, message),
                Effect::Watch => self.members[me].watching = true,
                Effect::Publish { turn, .. } => self.members[me].published.push(turn),
                Effect::CheckBond { relayed, late, .. } => {
                    self.members[me].bond_checks.push(relayed.payload.dispute.dispute.dispute_id);
                    self.queue.push_back((me, Input::BondChecked { relayed, late }));
                }
                Effect::Recompute { dispute_round, dispute_id, contested } => {
                    self.members[me].recomputes.push((dispute_round, dispute_id, contested));
                }
                Effect::CatchUp => self.catch_up(me),
                Effect::Event { kind, .. } => self.members[me].events.push(kind),
            }
        }
    }

    /// The test executor's signing: one message per slot, kept before it leaves.
    fn sign(&mut self, me: usize, unsigned: Unsigned) -> Option<GossipMessage> {
        let id = self.spec.id();
        let network_id = self.network_id();
        let member = &mut self.members[me];
        let slot = unsigned.slot(id);
        let message = match unsigned {
            Unsigned::Observation(o) => GossipMessage::Observation(Signed::sign(&member.key, &network_id, o)),
            Unsigned::Proposal(p) => {
                let key = member.key.clone();
                let round_proposal = p.into_round_proposal(|fresh| Signed::sign(&key, &network_id, fresh));
                GossipMessage::proposal(Signed::sign(&member.key, &network_id, round_proposal))
            }
            Unsigned::Vote(v) => GossipMessage::Vote(Signed::sign(&member.key, &network_id, v)),
            Unsigned::ReviewVote { vote, .. } => {
                GossipMessage::ReviewVote(Signed::sign(&member.key, &network_id, vote))
            }
            Unsigned::Report { report, .. } => {
                let domain = eip712::domain(self.setups[me].chain_id, self.setups[me].contract);
                let payload = ReportSignature {
                    signature: eip712::sign_typed(&member.eth, &domain, &report),
                    signer: member.eth.address(),
                    report,
                };
                GossipMessage::ReportSignature(Signed::sign(&member.key, &network_id, payload))
            }
            Unsigned::Dispute(d) => GossipMessage::dispute(Signed::sign(&member.key, &network_id, d)),
            Unsigned::Ruling(r) => GossipMessage::Ruling(Signed::sign(&member.key, &network_id, r)),
        };
        if let Some(slot) = slot {
            match member.slots.get(&slot) {
                Some(hash) if *hash != message.hash() => {
                    member.refused += 1;
                    return None;
                }
                _ => {
                    member.slots.insert(slot, message.hash());
                }
            }
        }
        keep(&mut member.held, Record::Message(message.clone()));
        Some(message)
    }

    /// Runs the committee from its observations to a certificate; returns the certified value.
    fn certify(&mut self) -> Wad {
        self.observe([2500, 2501, 2502, 2503]);
        for r in 0..3 {
            self.tick(self.spec.observe_at() + r * ROUND + 1);
        }
        let values: Vec<Wad> = self
            .members
            .iter()
            .map(|m| m.driver.certification().certificate().expect("certified").proposal.payload.value)
            .collect();
        assert!(values.windows(2).all(|w| w[0] == w[1]), "one value: {values:?}");
        values[0]
    }

    /// Member `me`'s recomputations come back: the certified inputs and history give `value`.
    fn answer_recomputes(&mut self, me: usize, value: Wad) {
        for (dispute_round, dispute_id, contested) in std::mem::take(&mut self.members[me].recomputes) {
            let vote = fixd_proto::types::dispute::ReviewVote {
                settlement_id: self.spec.id(),
                dispute_id,
                proposal_hash: contested,
                median_recomputes: true,
                value: NodeValue::Value(value),
                trade_digest: B256::ZERO,
            };
            self.queue.push_back((me, Input::Recomputed { dispute_round, vote }));
        }
        self.settle();
    }

    fn proposed_at(&self) -> u64 {
        self.members[0].driver.certification().certificate().unwrap().proposal.payload.proposed_at
    }

    /// Past the challenge window, with the dispute machine's lag.
    fn after_window(&self) -> u64 {
        self.proposed_at() + PERIOD + SKEW + ROUND + 1
    }

    /// Member 0 accepts the disputer's dispute 4 and relays it; `members` do not get the relay
    /// until [`Committee::release_withheld`].
    fn dispute_withheld_from(&mut self, members: Vec<usize>) {
        self.withhold_disputes_from = members;
        let (dispute, escrow) = self.disputer_dispute(4);
        let (effects, answer) = self.members[0].driver.submit_dispute(self.now, dispute, escrow);
        assert!(answer.is_ok(), "{answer:?}");
        self.carry_out(0, effects);
        self.settle();
    }

    fn disputer_dispute(&self, dispute_id: u8) -> (SignedDispute, DisputeEscrow) {
        let disputer = PrivateKeySigner::from_bytes(&B256::repeat_byte(0xd1)).unwrap();
        let certificate = self.members[0].driver.certification().certificate().unwrap();
        let dispute = Dispute {
            settlement_id: self.spec.id(),
            dispute_id: B256::repeat_byte(dispute_id),
            proposal_hash: certificate.proposal.hash(),
            claimed_value: Some(Wad::from_raw(2600)),
            reason: DisputeReason::BadData,
            evidence: "a bust on one venue".into(),
            bond_wei: self.setups[0].protocol.min_bond_wei,
            bond_tx: B256::repeat_byte(0xb0),
            disputer: disputer.address(),
        };
        let domain = eip712::domain(self.setups[0].chain_id, self.setups[0].contract);
        let signature = eip712::sign_typed(&disputer, &domain, &dispute);
        let escrow = DisputeEscrow {
            block_number: 7,
            block_hash: B256::repeat_byte(7),
            block_timestamp: self.now,
            log_index: 0,
            pool_wei: 0,
        };
        (SignedDispute { dispute, signature }, escrow)
    }
}

/// What a store keeps of a record, in the test executor.
fn keep(held: &mut Held, record: Record) {
    match record {
        Record::Message(message) => match message {
            GossipMessage::Observation(o) => held.observations.push(o),
            GossipMessage::Proposal(p) => held.proposals.push(*p),
            GossipMessage::Vote(v) => held.votes.push(v),
            GossipMessage::ReviewVote(v) => held.review_votes.push(v),
            GossipMessage::ReportSignature(s) => held.report_signatures.push(s),
            GossipMessage::Dispute(d) => held.disputes.push(*d),
            GossipMessage::Ruling(r) => held.rulings.push(r),
            GossipMessage::BatchSignature(_) => unreachable!("a driver never keeps a batch"),
        },
        Record::Certificate(c) => held.certificate = held.certificate.take().or(Some(std::sync::Arc::new(c))),
        Record::ReviewCertificate { dispute_id, certificate } => {
            held.review_certificates.push((dispute_id, certificate));
        }
        Record::ReportCertificate(c) => {
            held.report_certificate = held.report_certificate.take().or(Some(std::sync::Arc::new(c)))
        }
        Record::Equivocation(e) => held.equivocations.push(e),
        Record::OnChain(state) => held.on_chain = state,
        Record::LateRelay(hash) => {
            held.late.insert(hash);
        }
    }
}

#[test]
fn a_committee_certifies_one_value_signs_one_report_and_one_member_publishes() {
    let mut c = Committee::new();
    let value = c.certify();
    assert_eq!(value, Wad::from_raw(2501), "the median of 2500..=2503 rounds down to a member's value");
    for m in &c.members {
        assert!(m.held.certificate.is_some(), "the certificate is kept");
        assert!(m.events.contains(&EventKind::Observed), "its own observation is announced");
        assert!(m.events.contains(&EventKind::Certified));
        assert!(m.events.contains(&EventKind::ChallengeWindowOpened));
        assert!(!m.events.contains(&EventKind::Final), "final only after the window");
    }

    c.tick(c.after_window());
    for m in &c.members {
        assert!(m.events.contains(&EventKind::Final), "{:?}", m.events);
        assert!(m.watching, "a member that signed watches the chain");
        assert_eq!(m.held.report_signatures.len(), N, "every member's signature reached every member");
        assert_eq!(m.refused, 0);
    }
    let publishers: Vec<usize> = (0..N).filter(|&i| !c.members[i].published.is_empty()).collect();
    assert_eq!(publishers.len(), 1, "one member's turn: {publishers:?}");

    let on_chain = OnChain {
        value,
        tx_hash: B256::repeat_byte(0x77),
        block_number: 10,
        confirmations: 3,
        publisher: c.members[publishers[0]].eth.address(),
    };
    for i in 0..N {
        c.queue.push_back((i, Input::Chain(Some(on_chain.clone()))));
    }
    c.settle();
    for m in &c.members {
        assert!(m.driver.is_published());
        assert_eq!(m.events.iter().filter(|k| **k == EventKind::Published).count(), 1);
        assert_eq!(m.held.on_chain.as_ref(), Some(&on_chain), "the chain read is kept");
    }
}

#[test]
fn a_member_restored_from_its_store_signs_nothing_again_and_watches_its_report() {
    let mut c = Committee::new();
    c.certify();
    c.tick(c.after_window());
    let held = c.members[0].held.clone();
    let (mut driver, effects) =
        SettlementDriver::restore(c.setups[0].clone(), c.spec.clone(), held, c.now).unwrap();
    assert!(!effects.iter().any(|e| matches!(e, Effect::Sign(_))), "{effects:?}");
    assert!(effects.contains(&Effect::Watch), "an unpublished report is watched again: {effects:?}");
    assert!(driver.certification().certificate().is_some(), "the rounds are replayed");
    let report = driver.publication().unwrap().report().cloned();
    assert_eq!(report.as_ref(), c.members[1].driver.publication().unwrap().report(), "the same report");
    let later = driver.on(c.now + 5, Input::Tick);
    assert!(!later.iter().any(|e| matches!(e, Effect::Sign(_))), "{later:?}");
}

#[test]
fn disputes_are_rejected_before_the_certificate_twice_and_with_an_old_bond() {
    let mut c = Committee::new();
    let (early, escrow) = {
        // Any well-formed dispute: the certificate it names does not exist yet.
        let mut fresh = Committee::new();
        fresh.certify();
        fresh.disputer_dispute(1)
    };
    let (_, answer) = c.members[0].driver.submit_dispute(c.now, early, escrow);
    assert_eq!(answer, Err(Rejected::Refused(Refusal::NotCertified)));

    c.certify();
    let (dispute, escrow) = c.disputer_dispute(1);
    let (effects, answer) = c.members[0].driver.submit_dispute(c.now, dispute.clone(), escrow.clone());
    let Ok(Accepted { dispute_round: 1, accepted_at }) = answer else { panic!("{answer:?}") };
    assert_eq!(accepted_at, c.now);
    let relay = effects.iter().filter(|e| matches!(e, Effect::Sign(Unsigned::Dispute(_)))).count();
    assert_eq!(relay, 1, "the member relays what it accepted: {effects:?}");
    c.carry_out(0, effects);
    c.settle();
    for m in &c.members[1..] {
        assert_eq!(m.bond_checks, vec![B256::repeat_byte(1)], "every other member reads the bond back");
        assert_eq!(m.held.disputes.len(), 1, "and keeps the relay once it checks");
    }
    let (_, again) = c.members[0].driver.submit_dispute(c.now, dispute, escrow);
    assert_eq!(again, Err(Rejected::Duplicate(B256::repeat_byte(1))));

    let (stale, mut old) = c.disputer_dispute(2);
    old.block_timestamp = c.now - (SKEW + ROUND) - 1;
    let (_, answer) = c.members[0].driver.submit_dispute(c.now, stale, old);
    assert!(matches!(answer, Err(Rejected::BondTooOld { .. })), "{answer:?}");
}

#[test]
fn relayed_disputes_and_rulings_from_the_wrong_signer_are_ignored() {
    let mut c = Committee::new();
    c.certify();
    let (mut dispute, escrow) = c.disputer_dispute(3);
    dispute.dispute.evidence.push_str(" (edited after signing)");
    let relayed = fixd_proto::types::dispute::RelayedDispute { dispute, escrow, accepted_at: c.now };
    let forged = Signed::sign(&c.members[1].key, &c.network_id(), relayed);
    let effects = c.members[0].driver.on(c.now, Input::Gossip(GossipMessage::dispute(forged)));
    assert!(effects.is_empty(), "no bond check for a dispute its disputer did not sign: {effects:?}");

    let ruling = ArbitratorRuling {
        settlement_id: c.spec.id(),
        dispute_id: B256::repeat_byte(3),
        value: Wad::from_raw(2600),
        upheld: true,
    };
    let domain = eip712::domain(c.setups[0].chain_id, c.setups[0].contract);
    let not_the_arbitrator = PrivateKeySigner::from_bytes(&B256::repeat_byte(0xee)).unwrap();
    let signature = eip712::sign_typed(&not_the_arbitrator, &domain, &ruling);
    let relayed = fixd_proto::types::dispute::RelayedRuling {
        ruling: SignedRuling { ruling, signature },
        accepted_at: c.now,
    };
    let message = GossipMessage::Ruling(Signed::sign(&c.members[1].key, &c.network_id(), relayed));
    let effects = c.members[0].driver.on(c.now, Input::Gossip(message));
    assert!(effects.is_empty(), "a ruling the arbitrator did not sign is neither kept nor fed: {effects:?}");
}

#[test]
fn a_dispute_goes_to_review_and_a_member_restored_mid_review_votes_once() {
    let mut c = Committee::new();
    let value = c.certify();
    let (dispute, escrow) = c.disputer_dispute(4);
    let (effects, answer) = c.members[0].driver.submit_dispute(c.now, dispute, escrow);
    assert!(answer.is_ok(), "{answer:?}");
    c.carry_out(0, effects);
    c.settle();
    // Every member folds the dispute in once the agreed time has settled, and starts the review.
    c.tick(c.now + SKEW + ROUND + 1);
    for m in &c.members {
        assert!(m.events.contains(&EventKind::ReviewStarted), "{:?}", m.events);
        assert_eq!(m.recomputes.len(), 1, "one recomputation asked for");
    }

    // Restored before its recomputation came back, member 0 asks for it again.
    let (_, effects) =
        SettlementDriver::restore(c.setups[0].clone(), c.spec.clone(), c.members[0].held.clone(), c.now)
            .unwrap();
    assert!(effects.iter().any(|e| matches!(e, Effect::Recompute { .. })), "{effects:?}");

    c.answer_recomputes(0, value);
    let (_, effects) =
        SettlementDriver::restore(c.setups[0].clone(), c.spec.clone(), c.members[0].held.clone(), c.now)
            .unwrap();
    let own = effects.iter().filter(|e| matches!(e, Effect::Gossip(GossipMessage::ReviewVote(_)))).count();
    assert_eq!(own, 1, "after its vote is kept it gossips that vote again: {effects:?}");
    assert!(!effects.iter().any(|e| matches!(e, Effect::Recompute { .. } | Effect::Sign(_))), "{effects:?}");

    for i in 1..N {
        c.answer_recomputes(i, value);
    }
    for _ in 0..4 {
        c.tick(c.now + ROUND);
    }
    for m in &c.members {
        assert!(m.events.contains(&EventKind::ReviewCertified), "{:?}", m.events);
        assert_eq!(
            m.held.review_votes.iter().filter(|v| v.payload.dispute_id == B256::repeat_byte(4)).count(),
            N
        );
        assert_eq!(m.refused, 0, "no member was asked to sign twice in a slot");
    }
    c.tick(c.now + PERIOD + SKEW + ROUND + 1);
    let reports: Vec<_> =
        c.members.iter().map(|m| m.driver.publication().unwrap().report().cloned()).collect();
    assert!(reports[0].is_some(), "final after the reopened window");
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "one final report");
    assert_eq!(reports[0].as_ref().unwrap().value, value, "a rejected dispute leaves the certified value");
}

/// The 2-2 report split: a dispute reaches two of four members before the window closes. The
/// two that hold it go to review; the two that do not are final at once, with a report without
/// it. No report gets q prevotes, so nobody signs one. Once the relay reaches the other two (a
/// catch-up answer), every member folds the same history, and all sign one report.
#[test]
fn a_report_split_two_against_two_signs_nothing_until_the_members_agree() {
    let mut c = Committee::new();
    let value = c.certify();
    c.dispute_withheld_from(vec![2, 3]);
    c.tick(c.after_window());
    for _ in 0..8 {
        c.tick(c.now + ROUND);
    }
    for (i, m) in c.members.iter().enumerate() {
        assert!(!m.events.contains(&EventKind::Final), "member {i} signed a report of a split committee");
        assert!(m.held.report_signatures.is_empty());
    }
    assert!(c.members[0].events.contains(&EventKind::ReviewStarted));
    assert!(!c.members[2].events.contains(&EventKind::ReviewStarted), "2 and 3 never heard of the dispute");

    c.release_withheld();
    c.tick(c.now + 1);
    for i in 0..N {
        c.answer_recomputes(i, value);
    }
    for _ in 0..(2 * PERIOD / ROUND + 8) {
        c.tick(c.now + ROUND);
    }
    let reports: Vec<_> =
        c.members.iter().map(|m| m.driver.publication().unwrap().report().cloned()).collect();
    assert!(reports[0].is_some(), "final once the members agree");
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "one report: {reports:?}");
    assert_eq!(reports[0].as_ref().unwrap().outcomes.len(), 1, "with the dispute every member now holds");
    for (i, m) in c.members.iter().enumerate() {
        assert!(m.events.contains(&EventKind::Final), "member {i}: {:?}", m.events);
        assert_eq!(m.refused, 0, "member {i} was never asked to sign twice in a slot");
        assert!(m.held.report_certificate.is_some(), "member {i} keeps the report's certificate");
    }
}

/// The backdated ruling: a member relays the arbitrator's genuine ruling dated before the
/// arbitration began, so that the fold ignores it. Another member's relay of the real ruling is
/// held beside it (no relay keeps another out), and the arbitrator's own submission to a member
/// that holds the backdated relay is not refused as a duplicate.
#[test]
fn a_backdated_ruling_keeps_neither_the_real_relay_nor_the_arbitrator_out() {
    let mut c = Committee::new();
    c.certify();
    let ruling = ArbitratorRuling {
        settlement_id: c.spec.id(),
        dispute_id: B256::repeat_byte(4),
        value: Wad::from_raw(2600),
        upheld: true,
    };
    let domain = eip712::domain(c.setups[0].chain_id, c.setups[0].contract);
    let signed = SignedRuling {
        ruling: ruling.clone(),
        signature: eip712::sign_typed(&arbitrator(), &domain, &ruling),
    };
    let relay = |c: &Committee, member: usize, accepted_at: u64| {
        let relayed = fixd_proto::types::dispute::RelayedRuling { ruling: signed.clone(), accepted_at };
        GossipMessage::Ruling(Signed::sign(&c.members[member].key, &c.network_id(), relayed))
    };
    let backdated = relay(&c, 1, c.spec.observe_at());
    let real = relay(&c, 2, c.now);
    for message in [backdated.clone(), real.clone()] {
        let effects = c.members[0].driver.on(c.now, Input::Gossip(message.clone()));
        assert!(
            effects.contains(&Effect::Keep(Record::Message(message.clone()))),
            "both relays are held: {effects:?}"
        );
        let late = effects.contains(&Effect::Keep(Record::LateRelay(message.hash())));
        assert_eq!(late, message == backdated, "only the backdated relay is held as late: {effects:?}");
    }
    let second = relay(&c, 1, c.now);
    assert!(c.members[0].driver.on(c.now, Input::Gossip(second)).is_empty(), "one relay per member");
    let (_, answer) = c.members[0].driver.submit_ruling(c.now, signed.clone());
    assert_eq!(answer, Err(Rejected::NotInArbitration(B256::repeat_byte(4))), "not refused as a duplicate");
}

/// A member accepts a dispute in the window and keeps its relay to itself until the window has
/// closed. The relay then reaches the others outside the receipt bound: they hold it as late,
/// do not fold it, and decide and sign the report without it. The withholding member folds the
/// dispute (its review never gets f + 1 reviewers) and never signs another report.
#[test]
fn a_dispute_released_after_the_window_counts_for_no_one_else() {
    let mut c = Committee::new();
    let value = c.certify();
    c.dispute_withheld_from(vec![1, 2, 3]);
    c.tick(c.after_window());
    c.release_withheld();
    for _ in 0..8 {
        c.tick(c.now + ROUND);
    }
    let relay_hash = c.members[0].held.disputes[0].hash();
    for i in 1..N {
        let m = &c.members[i];
        assert!(m.held.late.contains(&relay_hash), "member {i} holds the relay as late");
        assert!(!m.events.contains(&EventKind::ReviewStarted), "member {i} never reviews it");
        assert!(m.events.contains(&EventKind::Final), "member {i}: {:?}", m.events);
        let report = m.driver.publication().unwrap().report().cloned().unwrap();
        assert_eq!((report.value, report.outcomes.len()), (value, 0), "member {i}: without the late dispute");
        assert_eq!(m.refused, 0);
    }
    let reports: Vec<_> =
        (1..N).map(|i| c.members[i].driver.publication().unwrap().report().cloned()).collect();
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "one report: {reports:?}");
    assert!(c.members[0].events.contains(&EventKind::ReviewStarted));
    assert!(!c.members[0].events.contains(&EventKind::Final), "the withholder signs nothing else");
}

/// A member cut off while a dispute went round gets its relay only later (a catch-up), outside
/// the receipt bound. It holds the relay as late, but once f + 1 members have cast review votes
/// on the dispute it counts it: it reviews with the others, and all sign one report with it.
#[test]
fn a_member_that_gets_a_relay_late_joins_the_review_others_vouch_for() {
    let mut c = Committee::new();
    let value = c.certify();
    c.dispute_withheld_from(vec![3]);
    c.tick(c.now + 3 * ROUND);
    c.release_withheld();
    let relay_hash = c.members[0].held.disputes[0].hash();
    assert!(
        c.members[3].held.disputes.iter().any(|d| d.hash() == relay_hash),
        "member 3 holds the relay now"
    );
    for i in 0..N {
        c.answer_recomputes(i, value);
    }
    for _ in 0..(2 * PERIOD / ROUND + 8) {
        c.tick(c.now + ROUND);
        for i in 0..N {
            c.answer_recomputes(i, value);
        }
    }
    assert!(c.members[3].events.contains(&EventKind::ReviewStarted), "vouched for by f + 1 reviewers");
    let reports: Vec<_> =
        c.members.iter().map(|m| m.driver.publication().unwrap().report().cloned()).collect();
    assert!(reports[0].is_some(), "final: {:?}", c.members[0].events);
    assert!(reports.windows(2).all(|w| w[0] == w[1]), "one report: {reports:?}");
    assert_eq!(reports[0].as_ref().unwrap().outcomes.len(), 1, "with the dispute");
}

/// A member that gets a relay only after the others have cast their review votes on it (it was
/// down, or cut off, while they went round) dropped those votes: they referred to a dispute it
/// did not hold. Holding the relay, it asks a peer for them again, counts the relay once f + 1
/// reviewers vouch for it, and reviews with the others (found by chaos seed 1004: without the
/// votes, two such members never joined a review that needed them, and the settlement waited
/// for its hard deadline).
#[test]
fn a_member_that_gets_a_relay_after_its_review_votes_asks_for_them_and_joins_the_review() {
    let mut c = Committee::new();
    let value = c.certify();
    c.dispute_withheld_from(vec![3]);
    c.tick(c.now + 3 * ROUND);
    for i in 0..3 {
        c.answer_recomputes(i, value);
    }
    let relay = c.members[0].held.disputes[0].clone();
    let dispute_id = relay.payload.dispute.dispute.dispute_id;
    let reviewers =
        c.members[0].held.review_votes.iter().filter(|v| v.payload.dispute_id == dispute_id).count();
    assert!(reviewers > 1, "f + 1 review votes went round: {reviewers}");
    assert!(c.members[3].held.review_votes.is_empty(), "member 3 dropped them: it held no dispute");

    // The relay reaches member 3 alone, late; its bond checks.
    c.withhold_disputes_from.clear();
    c.withheld.clear();
    let late = c.members[3].driver.on(c.now, Input::BondChecked { relayed: relay, late: true });
    assert!(late.contains(&Effect::CatchUp), "it asks for what refers to the relay: {late:?}");
    c.carry_out(3, late);
    c.settle();
    assert!(c.members[3].held.review_votes.len() >= 2, "the review votes came with the catch-up");
    assert!(c.members[3].events.contains(&EventKind::ReviewStarted), "vouched for by f + 1 reviewers");
}

/// What a driver's [`super::Interest`] calls unwanted or ahead, the driver keeps nothing of; what
/// it wants now, the driver keeps.
#[test]
fn the_interest_wants_what_the_driver_keeps_and_nothing_else() {
    use fixd_proto::types::certificate::{DecisionId, Vote, VoteStep};
    use fixd_proto::types::dispute::ReviewVote;

    use super::{Unwanted, Wanted};
    let mut c = Committee::new();
    c.certify();
    let id = c.spec.id();
    let net = c.network_id();
    let vote = |round: u32, decision: DecisionId| {
        let vote = Vote { settlement_id: id, decision, round, step: VoteStep::Prevote, proposal_hash: None };
        GossipMessage::Vote(Signed::sign(&c.members[3].key, &net, vote))
    };
    let horizon = crate::consensus::ROUNDS_AHEAD;
    let dispute_id = B256::repeat_byte(0xd1);
    let review_vote = GossipMessage::ReviewVote(Signed::sign(
        &c.members[3].key,
        &net,
        ReviewVote {
            settlement_id: id,
            dispute_id,
            proposal_hash: B256::ZERO,
            median_recomputes: true,
            value: NodeValue::Value(Wad::ONE),
            trade_digest: B256::ZERO,
        },
    ));
    let review = DecisionId::Review { dispute_id };
    let cases = [
        (vote(horizon, DecisionId::Report), Ok(Wanted::Now)),
        (
            vote(horizon + 1, DecisionId::Report),
            Ok(Wanted::Ahead { decision: DecisionId::Report, round: horizon + 1, horizon }),
        ),
        (
            vote(1_000, DecisionId::Value),
            Ok(Wanted::Ahead { decision: DecisionId::Value, round: 1_000, horizon }),
        ),
        (vote(0, review), Err(Unwanted::NoDecision(review))),
        (review_vote, Err(Unwanted::UnknownDispute(dispute_id))),
    ];
    let member = &mut c.members[0];
    for (message, wanted) in cases {
        assert_eq!(member.driver.interest().judge(&message), wanted, "{message:?}");
        let effects = member.driver.on(c.now, Input::Gossip(message.clone()));
        let kept = effects.iter().any(|e| matches!(e, Effect::Keep(Record::Message(m)) if *m == message));
        assert_eq!(kept, wanted == Ok(Wanted::Now), "kept {kept}, wanted {wanted:?}: {message:?}");
    }
}

/// A report signature from gossip is kept only if it recovers to its author's address: the store
/// then holds nothing the API would have to check again when it shows it.
#[test]
fn a_report_signature_that_is_not_its_authors_is_not_kept() {
    use fixd_proto::types::report::FinalReport;
    let mut c = Committee::new();
    let value = c.certify();
    let id = c.spec.id();
    let net = c.network_id();
    let domain = eip712::domain(c.setups[0].chain_id, c.setups[0].contract);
    let report = FinalReport { settlement_id: id, value, round: 0, outcomes: vec![] };
    let by = |signer: usize, eth: usize| {
        let payload = ReportSignature {
            signature: eip712::sign_typed(&c.members[eth].eth, &domain, &report),
            signer: c.members[signer].eth.address(),
            report: report.clone(),
        };
        GossipMessage::ReportSignature(Signed::sign(&c.members[signer].key, &net, payload))
    };
    let kept = |effects: &[Effect], message: &GossipMessage| {
        effects.iter().any(|e| matches!(e, Effect::Keep(Record::Message(m)) if m == message))
    };
    // Member 2 passes on a signature member 3's key made, under its own address: refused.
    let (forged, genuine) = (by(2, 3), by(2, 2));
    let effects = c.members[0].driver.on(c.now, Input::Gossip(forged.clone()));
    assert!(!kept(&effects, &forged), "{effects:?}");
    // Member 2's own signature is kept, once.
    let effects = c.members[0].driver.on(c.now, Input::Gossip(genuine.clone()));
    assert!(kept(&effects, &genuine), "{effects:?}");
    let effects = c.members[0].driver.on(c.now, Input::Gossip(genuine.clone()));
    assert!(!kept(&effects, &genuine), "a repeat is held already: {effects:?}");
}

/// A burst holds one driver per settlement in flight, boxed, ten thousand at once: its size
/// decides its allocation class (jemalloc's classes here are 2.5, 3, 3.5 and 4 KiB). It was
/// 3,648 bytes, a 4 KiB block each; 3 KiB saves 10 MB a node in a burst of 10,000.
#[test]
fn a_driver_fits_a_three_kilobyte_block() {
    let size = std::mem::size_of::<SettlementDriver>();
    assert!(size <= 3072, "a driver is {size} bytes: box what few drivers use, or share what all hold alike");
}

/// A host may drop a driver that waits out its window ([`SettlementDriver::idle_until`]) and
/// build it again from its store ([`SettlementDriver::resume`]): the member then ends as the
/// others do, and announces nothing twice.
#[test]
fn a_driver_dropped_in_its_window_and_resumed_ends_as_the_others_and_announces_nothing_twice() {
    let mut c = Committee::new();
    c.observe([2500, 2501, 2502, 2503]);
    c.tick(c.spec.observe_at() + 1);
    let value = c.members[0]
        .driver
        .certification()
        .certificate()
        .expect("certified in round 0")
        .proposal
        .payload
        .value;
    // Member 0 is dropped whenever it is idle, and built again from what its executor kept
    // when it is due: as its window opens, then as its close has settled.
    let mut stretches = Vec::new();
    loop {
        c.quiet(0);
        let Some(until) = c.members[0].driver.idle_until(c.now) else { break };
        assert_eq!(c.members[0].driver.idle_until(until), None, "never idle once due");
        let interest = c.members[0].driver.interest();
        let parked_at = c.now;
        c.members[0].driver = SettlementDriver::resume(
            c.setups[0].clone(),
            c.spec.clone(),
            c.members[0].held.clone(),
            parked_at,
        )
        .unwrap();
        assert_eq!(c.members[0].driver.interest(), interest, "it takes what it took");
        assert_eq!(c.members[0].driver.idle_until(parked_at), None, "built again: quiet ticks first");
        c.quiet(0);
        assert_eq!(c.members[0].driver.idle_until(parked_at), Some(until), "it waits for what it waited for");
        stretches.push(until);
        c.tick(until);
    }
    assert_eq!(stretches.len(), 2, "until its window opens, then until its close settled: {stretches:?}");
    assert_eq!(stretches[1] + 1, c.after_window(), "idle until the close settled");

    c.tick(c.after_window());
    for (i, m) in c.members.iter().enumerate() {
        let count = |kind: EventKind| m.events.iter().filter(|k| **k == kind).count();
        assert_eq!(count(EventKind::ChallengeWindowOpened), 1, "member {i}: {:?}", m.events);
        assert_eq!(count(EventKind::Final), 1, "member {i}: {:?}", m.events);
        assert_eq!(m.held.report_signatures.len(), N, "member {i}: every member signed the one report");
        assert_eq!(m.refused, 0, "member {i} never signed two things in one slot");
    }
    let reports: Vec<_> =
        c.members.iter().map(|m| m.driver.publication().unwrap().report().cloned()).collect();
    assert!(reports.iter().all(|r| r.is_some() && *r == reports[0]), "one report: {reports:?}");
    assert!(c.members.iter().all(|m| m.driver.idle_until(c.now).is_none()), "final: not idle");

    // Published, dropped, and built again at a deeper confirmation: published still, once.
    let publisher = (0..N).find(|&i| !c.members[i].published.is_empty()).expect("one member's turn");
    let publisher = c.members[publisher].eth.address();
    let on_chain = |confirmations| OnChain {
        value,
        tx_hash: B256::repeat_byte(0x77),
        block_number: 10,
        confirmations,
        publisher,
    };
    c.queue.push_back((0, Input::Chain(Some(on_chain(3)))));
    c.settle();
    assert!(c.members[0].driver.is_published());
    let parked_at = c.now;
    c.members[0].driver =
        SettlementDriver::resume(c.setups[0].clone(), c.spec.clone(), c.members[0].held.clone(), parked_at)
            .unwrap();
    assert!(c.members[0].driver.is_published(), "published, from the chain read it kept");
    let effects = c.members[0].driver.on(c.now + 5, Input::Chain(Some(on_chain(9))));
    c.carry_out(0, effects);
    assert!(c.members[0].driver.is_published());
    let published = c.members[0].events.iter().filter(|k| **k == EventKind::Published).count();
    assert_eq!(published, 1, "{:?}", c.members[0].events);
}

/// What keeps a driver busy keeps it in memory: a dispute held, or a fold that is final.
#[test]
fn a_driver_holding_a_dispute_is_never_idle() {
    let mut c = Committee::new();
    c.certify();
    c.quiet(1);
    assert!(c.members[1].driver.idle_until(c.now).is_some());
    c.dispute_withheld_from(vec![]);
    for (i, m) in c.members.iter().enumerate() {
        assert_eq!(m.driver.idle_until(c.now), None, "member {i} holds the dispute");
    }
}

/// A member who sends a settlement a fresh message at every tick (a vote of its report decision,
/// which a driver takes and keeps before the decision starts) keeps it from being idle, so it is
/// never dropped and built again per message; a message that changes nothing (held already)
/// does not; once the messages stop, it is idle after [`QUIET_TICKS`].
#[test]
fn a_member_messaging_a_settlement_at_every_tick_keeps_its_driver_in_memory() {
    use fixd_proto::types::certificate::{DecisionId, Vote, VoteStep};
    let mut c = Committee::new();
    c.certify();
    let (id, net) = (c.spec.id(), c.network_id());
    let vote = |round: u32| {
        let vote = Vote {
            settlement_id: id,
            decision: DecisionId::Report,
            round,
            step: VoteStep::Prevote,
            proposal_hash: None,
        };
        GossipMessage::Vote(Signed::sign(&c.members[3].key, &net, vote))
    };
    let votes: Vec<GossipMessage> = (0..=crate::consensus::ROUNDS_AHEAD).map(vote).collect();
    for (tick, message) in votes.iter().enumerate() {
        c.queue.push_back((0, Input::Gossip(message.clone())));
        c.queue.push_back((0, Input::Tick));
        c.settle();
        assert_eq!(c.members[0].driver.idle_until(c.now), None, "a new message came at tick {tick}");
    }
    for _ in 0..QUIET_TICKS {
        c.queue.push_back((0, Input::Gossip(votes[0].clone())));
        c.queue.push_back((0, Input::Tick));
        c.settle();
    }
    assert!(c.members[0].driver.idle_until(c.now).is_some(), "what it held already kept it busy");
}
