//! Whole committees of one decision's machine on a simulated network (delays, drops, a
//! partition that heals), seeded and deterministic, with faulty members following a strategy.
//! Agreement is asserted across all rounds: every honest member decides the same candidate.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::{Address, B256};
use ed25519_dalek::SigningKey;
use fixd_proto::certify::{
    ReviewTarget, verify_certificate, verify_report_certificate, verify_review_certificate,
};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::certificate::{Certificate, DecisionId, Proposal, RoundProposal, Vote, VoteStep};
use fixd_proto::types::dispute::ReviewVote;
use fixd_proto::types::genesis::{Committee, Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{Computation, NodeValue, Observation, Partition};
use fixd_proto::types::report::{BondOutcome, FinalReport};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::value::Wad;

use super::{
    Action, Candidate, Certification, ConsensusParams, Event, ProposalToSign, ROUNDS_AHEAD, Reports, Review,
    max_held_per_member,
};

const ROUND_SECS: u64 = 4;

/// Seeds per scenario: `FIXD_SIM_SEEDS` raises them for a long campaign.
fn seeds(default: u64) -> u64 {
    std::env::var("FIXD_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// How a faulty member behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Strategy {
    /// Sends nothing at all.
    Silent,
    /// Proposes two candidates to two halves of the committee and votes for whatever it sees,
    /// twice in a slot when it can.
    Equivocate,
    /// Shows its votes and proposals only to the lower half of the committee.
    Partial,
    /// Proposes a value that is not the median of its inputs.
    WrongMedian,
    /// Floods validly signed votes for far-future rounds.
    Flood,
    /// Releases what it signs late (three rounds) and backdates its fresh proposals by as much.
    /// In a report decision it also relays a dispute of its own late: the honest members that
    /// get the relay hold it as late, so they accept a report with it beside their own, and the
    /// faulty member proposes that one.
    LateRelay,
}

const STRATEGIES: [Strategy; 6] = [
    Strategy::Silent,
    Strategy::Equivocate,
    Strategy::Partial,
    Strategy::WrongMedian,
    Strategy::Flood,
    Strategy::LateRelay,
];

/// How long a [`Strategy::LateRelay`] member holds its messages back, and backdates by.
const LATE_SECS: u64 = 3 * ROUND_SECS;

/// What a simulated committee decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The first value, from observations.
    Value,
    /// The review of one dispute, from review votes.
    Review,
    /// The final report: until the network heals, the upper half of the honest members has not
    /// heard of the dispute the others hold, and their folds make another report.
    Report,
}

/// The decision a simulated committee takes.
enum Machine {
    Value(Certification),
    Review(Certification<Review>),
    Report(Certification<Reports>),
}

impl Machine {
    fn on(&mut self, now: u64, event: Event) -> Vec<Action> {
        match self {
            Machine::Value(m) => m.on(now, event),
            Machine::Review(m) => m.on(now, event),
            Machine::Report(m) => m.on(now, event),
        }
    }

    fn round(&self) -> Option<u32> {
        match self {
            Machine::Value(m) => m.round(),
            Machine::Review(m) => m.round(),
            Machine::Report(m) => m.round(),
        }
    }

    fn held_messages(&self) -> usize {
        match self {
            Machine::Value(m) => m.held_messages(),
            Machine::Review(m) => m.held_messages(),
            Machine::Report(m) => m.held_messages(),
        }
    }

    fn decision(&self) -> DecisionId {
        match self {
            Machine::Value(m) => m.decision(),
            Machine::Review(m) => m.decision(),
            Machine::Report(m) => m.decision(),
        }
    }

    /// Checks a certificate as a third party would, against the inputs member `me` holds in
    /// its store (a decided machine keeps none).
    fn verify(
        &self,
        sim: &Sim,
        me: usize,
        certificate: &Certificate,
    ) -> Result<Wad, fixd_proto::certify::CertifyError> {
        let (committee, network_id, spec) = (&sim.committee, &sim.network_id, &sim.spec);
        match self {
            Machine::Value(_) => {
                let inputs = sim.nodes[me].held_observations();
                verify_certificate(committee, network_id, spec, certificate, &inputs)
            }
            Machine::Review(m) => {
                let inputs: Vec<_> = (sim.nodes[me].store.iter())
                    .filter_map(|e| match e {
                        Event::ReviewVote(v) => Some(v.clone()),
                        _ => None,
                    })
                    .collect();
                let target = &m.review().target;
                verify_review_certificate(committee, network_id, spec, certificate, target, &inputs)
            }
            Machine::Report(_) => {
                verify_report_certificate(committee, network_id, spec, certificate).map(|r| r.value)
            }
        }
    }
}

/// The dispute every review simulation reviews, of a made-up contested proposal.
fn review_target() -> ReviewTarget {
    ReviewTarget { dispute_id: B256::repeat_byte(0xd1), contested: B256::repeat_byte(0xc0) }
}

struct Node {
    machine: Machine,
    key: SigningKey,
    /// Signing slots: (kind, round) → hash (0 proposal, 1 prevote, 2 precommit).
    slots: HashMap<(u8, u32), B256>,
    decided: Option<Certificate>,
    fault: Option<Strategy>,
    /// The honest node's clock offset (seconds), within the allowed skew.
    offset: u64,
    /// What its store holds (admitted messages and its own), for catch-up answers.
    store: Vec<Event>,
    /// A report decision: whether a late member's relay reached this member (late).
    heard_late: bool,
}

impl Node {
    /// The observations its store holds, its own and its peers'.
    fn held_observations(&self) -> Vec<Signed<Observation>> {
        (self.store.iter())
            .filter_map(|e| match e {
                Event::Observation(o) => Some(o.clone()),
                _ => None,
            })
            .collect()
    }
}

struct Sim {
    committee: Committee,
    network_id: B256,
    spec: SettlementSpec,
    nodes: Vec<Node>,
    /// In flight: (deliver at, to, event).
    wire: Vec<(u64, usize, Event)>,
    now: u64,
    rng: Rng,
    drop_per_mille: u64,
    max_delay: u64,
    /// Until this time, messages between the halves of the committee are lost.
    partition_until: u64,
    /// Honest members' observed values.
    values: Vec<Wad>,
}

fn genesis(n: usize) -> (Vec<SigningKey>, Genesis) {
    let keys: Vec<SigningKey> = (1..=n).map(|i| SigningKey::from_bytes(&[i as u8; 32])).collect();
    let members = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Member {
            name: format!("node-{i}"),
            ed25519: PublicKey::of(k),
            eth_address: Address::repeat_byte(i as u8 + 1),
            listen: vec![],
        })
        .collect();
    let genesis = Genesis {
        network: "fixd-sim".into(),
        chain_id: 31337,
        contract: Address::ZERO,
        contract_block: 0,
        arbitrator: Address::ZERO,
        members,
        params: ProtocolParams::default(),
    };
    (keys, genesis)
}

fn params() -> ConsensusParams {
    ConsensusParams { round_timeout_secs: ROUND_SECS, challenge_period_secs: 600, max_clock_skew_secs: 2 }
}

impl Sim {
    /// A committee of `n` deciding a first value, whose members in `faulty` follow their
    /// strategy.
    fn new(n: usize, faulty: &[(usize, Strategy)], seed: u64) -> Self {
        Sim::deciding(n, faulty, seed, Kind::Value)
    }

    /// A committee of `n` deciding `kind`.
    fn deciding(n: usize, faulty: &[(usize, Strategy)], seed: u64, kind: Kind) -> Self {
        let (keys, genesis) = genesis(n);
        let spec = SettlementSpec {
            index: Index::EthUsd,
            maturity: 1_790_000_000,
            params: MethodologyParams::default(),
        };
        let (committee, network_id) = (genesis.committee(), genesis.network_id());
        let mut rng = Rng::new(seed);
        let nodes = keys
            .into_iter()
            .enumerate()
            .map(|(me, key)| Node {
                machine: if kind == Kind::Report {
                    let (c, s) = (committee.clone(), spec.clone());
                    Machine::Report(Certification::for_report(c, me, network_id, s, params()))
                } else if kind == Kind::Review {
                    let review = Review { target: review_target() };
                    let (c, s) = (committee.clone(), spec.clone());
                    let starts_at = spec.observe_at();
                    Machine::Review(Certification::for_review(
                        review,
                        c,
                        me,
                        network_id,
                        s,
                        params(),
                        starts_at,
                    ))
                } else {
                    Machine::Value(Certification::new(
                        committee.clone(),
                        me,
                        network_id,
                        spec.clone(),
                        params(),
                    ))
                },
                key,
                slots: HashMap::new(),
                decided: None,
                fault: faulty.iter().find(|(m, _)| *m == me).map(|(_, s)| *s),
                offset: rng.below(2),
                store: Vec::new(),
                heard_late: rng.chance(500),
            })
            .collect();
        Sim {
            committee,
            network_id,
            now: spec.observe_at(),
            spec,
            nodes,
            wire: Vec::new(),
            rng,
            drop_per_mille: 0,
            max_delay: 1,
            partition_until: 0,
            values: Vec::new(),
        }
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    fn honest(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n()).filter(|&i| self.nodes[i].fault.is_none())
    }

    fn sign<T: fixd_proto::signing::Signable>(&self, me: usize, payload: T) -> Signed<T> {
        Signed::sign(&self.nodes[me].key, &self.network_id, payload)
    }

    /// Every member that is not silent observes a value and gossips it.
    fn observe(&mut self) {
        for me in 0..self.n() {
            if self.nodes[me].fault == Some(Strategy::Silent) {
                continue;
            }
            let value = Wad::from_raw(2_500_000 + self.rng.below(100) as u128);
            if self.nodes[me].fault.is_none() {
                self.values.push(value);
            }
            let event = match self.nodes[me].machine {
                Machine::Value(_) => Event::Observation(self.sign(
                    me,
                    Observation {
                        settlement_id: self.spec.id(),
                        observed_at: self.now,
                        computation: Computation {
                            partitions: vec![Partition::counted(4, value); 12],
                            venues: vec![],
                            value: NodeValue::Value(value),
                        },
                        trade_digest: B256::repeat_byte(me as u8),
                    },
                )),
                Machine::Report(_) => {
                    // A report has no inputs: each member's fold makes its own.
                    let reports = self.acceptable_reports(me, false);
                    let starts_at = self.now;
                    if let Machine::Report(m) = &mut self.nodes[me].machine {
                        m.set_acceptable_reports(reports, starts_at);
                    }
                    Event::Tick
                }
                Machine::Review(_) => Event::ReviewVote(self.sign(
                    me,
                    ReviewVote {
                        settlement_id: self.spec.id(),
                        dispute_id: review_target().dispute_id,
                        proposal_hash: review_target().contested,
                        median_recomputes: true,
                        value: NodeValue::Value(value),
                        trade_digest: B256::repeat_byte(me as u8),
                    },
                )),
            };
            self.send_all(me, event.clone());
            self.deliver(me, event);
        }
    }

    /// The report member `me`'s fold makes: with the dispute the lower half of the committee
    /// holds, or (the upper half, until `healed`) without it.
    fn report_of(&self, me: usize, healed: bool) -> FinalReport {
        let outcome = BondOutcome {
            dispute_id: review_target().dispute_id,
            bond: 10,
            refund: 10,
            ..Default::default()
        };
        let heard = healed || me < self.n() / 2;
        FinalReport {
            settlement_id: self.spec.id(),
            value: Wad::from_raw(2_500_000),
            round: 0,
            outcomes: if heard { vec![outcome] } else { Vec::new() },
        }
    }

    /// The reports member `me` would prevote: its fold's own; with the late member's dispute
    /// too if that relay reached it (late); only the one with it for the late member itself.
    fn acceptable_reports(&self, me: usize, healed: bool) -> Vec<FinalReport> {
        let own = self.report_of(me, healed);
        let mut with_late = own.clone();
        with_late.outcomes.push(BondOutcome {
            dispute_id: B256::repeat_byte(0xd2),
            bond: 20,
            refund: 20,
            ..Default::default()
        });
        let late_member = (0..self.n()).any(|i| self.nodes[i].fault == Some(Strategy::LateRelay));
        match self.nodes[me].fault {
            Some(Strategy::LateRelay) => vec![with_late],
            None if late_member && self.nodes[me].heard_late => vec![own, with_late],
            _ => vec![own],
        }
    }

    /// Every honest member hears of the dispute: its fold's report is everyone's.
    fn heal_reports(&mut self) {
        for me in 0..self.n() {
            let reports = self.acceptable_reports(me, true);
            if let Machine::Report(m) = &mut self.nodes[me].machine {
                m.set_acceptable_reports(reports, 0);
            }
        }
    }

    /// Sends to every other member, through drops, delays and the partition.
    fn send_all(&mut self, from: usize, event: Event) {
        let to: Vec<usize> = (0..self.n()).filter(|&to| to != from).collect();
        self.send(from, &to, event);
    }

    fn send(&mut self, from: usize, to: &[usize], event: Event) {
        let half = self.n() / 2;
        for &to in to {
            let across = (from < half) != (to < half);
            if self.rng.chance(self.drop_per_mille) || (across && self.now < self.partition_until) {
                continue;
            }
            let held_back = if self.nodes[from].fault == Some(Strategy::LateRelay) { LATE_SECS } else { 0 };
            let at = self.now + held_back + self.rng.below(self.max_delay + 1);
            self.wire.push((at, to, event.clone()));
        }
    }

    /// Feeds one event to one member now and carries out what it asks.
    fn deliver(&mut self, me: usize, event: Event) {
        let clock = self.now + self.nodes[me].offset;
        let actions = self.nodes[me].machine.on(clock, event);
        self.carry(me, actions);
    }

    /// Member `me` asks a random peer for what it holds, as the node's catch-up does: its
    /// store, then its decision. Partitions cut it; drops do not (it is a request/response).
    fn catch_up(&mut self, me: usize) {
        let peer = self.rng.below(self.n() as u64) as usize;
        let half = self.n() / 2;
        let across = (me < half) != (peer < half);
        if peer == me || (across && self.now < self.partition_until) {
            return;
        }
        let mut answer = self.nodes[peer].store.clone();
        answer.extend(self.nodes[peer].decided.clone().map(Event::Certificate));
        for event in answer {
            self.deliver(me, event);
        }
    }

    fn carry(&mut self, me: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Propose(proposal) => self.propose(me, proposal),
                Action::Vote(vote) => self.vote(me, vote),
                Action::Certified(certificate) => {
                    let verdict = self.nodes[me].machine.verify(self, me, &certificate);
                    assert!(verdict.is_ok(), "member {me} decided on an invalid certificate: {verdict:?}");
                    if self.nodes[me].decided.is_none() {
                        self.nodes[me].decided = Some((*certificate).clone());
                    }
                }
                Action::Hold(message) => {
                    let event = match message {
                        GossipMessage::Observation(o) => Event::Observation(o),
                        GossipMessage::Proposal(p) => Event::Proposal(*p),
                        GossipMessage::Vote(v) => Event::Vote(v),
                        GossipMessage::ReviewVote(v) => Event::ReviewVote(v),
                        other => panic!("a decision holds no {:?}", other.kind()),
                    };
                    self.nodes[me].store.push(event);
                }
                Action::Equivocation(_) | Action::Rejected { .. } => {}
            }
        }
    }

    /// One signature per slot: the host's policy, whatever the core asks.
    fn take_slot(&mut self, me: usize, kind: u8, round: u32, hash: B256) -> bool {
        match self.nodes[me].slots.get(&(kind, round)) {
            Some(held) => *held == hash,
            None => {
                self.nodes[me].slots.insert((kind, round), hash);
                true
            }
        }
    }

    fn propose(&mut self, me: usize, proposal: ProposalToSign) {
        let fault = self.nodes[me].fault;
        if fault == Some(Strategy::Silent) {
            return;
        }
        let round = proposal.round;
        let tampered = |mut p: Proposal, by: u128| {
            p.value = Wad::from_raw(p.value.raw() + by);
            p
        };
        let candidate = match (&proposal.candidate, fault) {
            (Candidate::Fresh(fresh), Some(Strategy::WrongMedian)) => {
                Candidate::Fresh(tampered(fresh.clone(), 7))
            }
            (Candidate::Fresh(fresh), Some(Strategy::LateRelay)) => {
                let mut backdated = fresh.clone();
                backdated.proposed_at -= LATE_SECS;
                backdated.challenge_deadline -= LATE_SECS;
                Candidate::Fresh(backdated)
            }
            _ => proposal.candidate.clone(),
        };
        let key = self.nodes[me].key.clone();
        let network_id = self.network_id;
        let sign_candidate = |p: Proposal| Signed::sign(&key, &network_id, p);
        let first = ProposalToSign { candidate, ..proposal.clone() }.into_round_proposal(sign_candidate);
        let signed = self.sign(me, first);
        if !self.take_slot(me, 0, round, signed.hash()) && fault.is_none() {
            return;
        }
        // An equivocator's second candidate, dated a second later.
        let mut second = signed.payload.clone();
        let mut other = second.proposal.payload.clone();
        other.proposed_at += 1;
        other.challenge_deadline += 1;
        second.proposal = self.sign(me, other);
        let second = self.sign(me, second);
        self.send_as(me, Event::Proposal(signed.clone()), Event::Proposal(second));
        self.deliver(me, Event::Proposal(signed));
    }

    fn vote(&mut self, me: usize, vote: Vote) {
        let fault = self.nodes[me].fault;
        if fault == Some(Strategy::Silent) {
            return;
        }
        let kind = if vote.step == VoteStep::Prevote { 1 } else { 2 };
        let signed = self.sign(me, vote.clone());
        if !self.take_slot(me, kind, vote.round, signed.hash()) && fault.is_none() {
            return;
        }
        // An equivocator's other vote: nil for a value, a made-up value for nil.
        let other = Vote {
            proposal_hash: match vote.proposal_hash {
                Some(_) => None,
                None => Some(B256::repeat_byte(0xee)),
            },
            ..vote
        };
        let other = self.sign(me, other);
        self.send_as(me, Event::Vote(signed.clone()), Event::Vote(other));
        self.deliver(me, Event::Vote(signed));
    }

    /// Sends `first` as member `me`'s strategy says: an equivocator sends `first` to the lower
    /// half and `second` to the upper half, a partial member `first` to the lower half only.
    fn send_as(&mut self, me: usize, first: Event, second: Event) {
        let half = self.n() / 2;
        let (low, high): (Vec<usize>, Vec<usize>) =
            (0..self.n()).filter(|&i| i != me).partition(|&i| i < half);
        match self.nodes[me].fault {
            Some(Strategy::Equivocate) => {
                self.send(me, &low, first);
                self.send(me, &high, second);
            }
            Some(Strategy::Partial) => self.send(me, &low, first),
            _ => self.send_all(me, first),
        }
    }

    /// A flooding member's far-future votes: validly signed, for rounds up to 10,000.
    fn flood(&mut self, count: u32) {
        let flooders: Vec<usize> =
            (0..self.n()).filter(|&i| self.nodes[i].fault == Some(Strategy::Flood)).collect();
        for me in flooders {
            let decision = self.nodes[me].machine.decision();
            for k in 0..count {
                let vote = Vote {
                    settlement_id: self.spec.id(),
                    decision,
                    round: 1 + (k * 7919) % 10_000,
                    step: if k % 2 == 0 { VoteStep::Prevote } else { VoteStep::Precommit },
                    proposal_hash: Some(B256::from(alloy_primitives::U256::from(k))),
                };
                let signed = self.sign(me, vote);
                self.send_all(me, Event::Vote(signed));
            }
        }
    }

    /// One second passes: what is due arrives, then every member ticks.
    fn step(&mut self) {
        self.now += 1;
        let (due, later): (Vec<_>, Vec<_>) = self.wire.drain(..).partition(|(at, _, _)| *at <= self.now);
        self.wire = later;
        for (_, to, event) in due {
            self.deliver(to, event);
        }
        for me in 0..self.n() {
            self.deliver(me, Event::Tick);
        }
        // Undecided members catch up every few seconds, as the node's driver does.
        if self.now.is_multiple_of(ROUND_SECS / 2) {
            for me in 0..self.n() {
                if self.nodes[me].fault.is_none() && self.nodes[me].decided.is_none() {
                    self.catch_up(me);
                }
            }
        }
    }

    fn run_until(&mut self, end: u64) {
        while self.now < end && self.honest().any(|i| self.nodes[i].decided.is_none()) {
            self.step();
        }
    }

    /// Agreement across rounds, validity, and the storage bound.
    fn check(&self) {
        let decided: BTreeMap<usize, B256> = self
            .honest()
            .filter_map(|i| Some((i, self.nodes[i].decided.as_ref()?.proposal.hash())))
            .collect();
        let first = decided.values().next();
        assert!(
            decided.values().all(|h| Some(h) == first),
            "honest members decided different candidates: {decided:?}"
        );
        for i in self.honest() {
            if let Some(c) = &self.nodes[i].decided
                && matches!(self.nodes[i].machine, Machine::Report(_))
            {
                let report = c.proposal.payload.report();
                let honest_accept = |healed| {
                    self.honest().any(|h| {
                        report.as_ref().is_some_and(|r| self.acceptable_reports(h, healed).contains(r))
                    })
                };
                assert!(
                    honest_accept(false) || honest_accept(true),
                    "a report no honest member accepts: {report:?}"
                );
            } else if let Some(c) = &self.nodes[i].decided {
                let (low, high) = (self.values.iter().min().unwrap(), self.values.iter().max().unwrap());
                let value = c.proposal.payload.value;
                assert!(
                    *low <= value && value <= *high,
                    "value {value} outside the honest range {low}..{high}"
                );
            }
            let machine = &self.nodes[i].machine;
            let bound = self.n() as u64 * max_held_per_member(machine.round().unwrap_or(0));
            assert!(
                machine.held_messages() as u64 <= bound,
                "member {i} holds {} messages, over {bound}",
                machine.held_messages()
            );
        }
    }

    fn all_honest_decided(&self) -> bool {
        self.honest().all(|i| self.nodes[i].decided.is_some())
    }
}

/// One seeded run: the committee observes, the network misbehaves for a while, then heals.
fn run(n: usize, strategy: Strategy, seed: u64, kind: Kind) -> Sim {
    let f = (n - 1) / 3;
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut faulty = Vec::new();
    while faulty.len() < f {
        let m = rng.below(n as u64) as usize;
        if !faulty.iter().any(|(x, _)| *x == m) {
            faulty.push((m, strategy));
        }
    }
    let mut sim = Sim::deciding(n, &faulty, seed, kind);
    sim.drop_per_mille = rng.below(150);
    sim.max_delay = rng.below(3);
    if rng.chance(300) {
        sim.partition_until = sim.now + 5 + rng.below(20);
    }
    sim.observe();
    sim.flood(200);
    // The network heals after 60 s: no drops, short delays. Faulty members go on.
    let heal = sim.now + 60;
    sim.run_until(heal);
    sim.drop_per_mille = 0;
    sim.max_delay = 1;
    sim.heal_reports();
    sim.run_until(heal + 400);
    sim.check();
    assert!(
        sim.all_honest_decided(),
        "{kind:?} n={n} {strategy:?} seed {seed}: no decision after the network healed"
    );
    sim
}

/// Every strategy against a committee of `n` deciding a first value, `runs` seeded runs in all
/// (more with `FIXD_SIM_SEEDS`, a count per strategy).
fn campaign(n: usize, runs: u64) {
    campaign_of(n, runs, Kind::Value);
}

fn campaign_of(n: usize, runs: u64, kind: Kind) {
    let per_strategy = seeds(runs / STRATEGIES.len() as u64);
    let started = std::time::Instant::now();
    for (k, strategy) in STRATEGIES.into_iter().enumerate() {
        for seed in 0..per_strategy {
            run(n, strategy, seed * STRATEGIES.len() as u64 + k as u64, kind);
        }
    }
    let total = per_strategy * STRATEGIES.len() as u64;
    eprintln!("n = {n}, {kind:?}: {total} seeded runs in {:?}", started.elapsed());
}

/// A dispute's review is the same protocol on review votes (exactly q listed): committees of
/// 4, 7 and 10 decide one review whatever f members do.
#[test]
fn committees_of_4_to_10_agree_on_one_review_whatever_f_members_do() {
    for (n, runs) in [(4, 500), (7, 300), (10, 200)] {
        campaign_of(n, runs, Kind::Review);
    }
}

/// The final report is the same protocol on the members' own folds: before the network heals
/// the honest members are split on a dispute (two reports), after it every honest fold makes
/// one. They never sign two reports, and decide once healed.
#[test]
fn committees_of_4_to_10_agree_on_one_final_report_whatever_f_members_do() {
    for (n, runs) in [(4, 300), (7, 150), (10, 50)] {
        campaign_of(n, runs, Kind::Report);
    }
}

// 10,000 seeded runs of first values, and 1,000 of reviews, split so that each test takes a
// similar time.
#[test]
fn committees_of_4_agree_and_decide_whatever_one_member_does() {
    campaign(4, 3_600);
}

#[test]
fn committees_of_5_agree_and_decide_whatever_one_member_does() {
    campaign(5, 3_000);
}

#[test]
fn committees_of_7_agree_and_decide_whatever_two_members_do() {
    campaign(7, 2_000);
}

#[test]
fn committees_of_10_agree_and_decide_whatever_three_members_do() {
    campaign(10, 1_200);
}

#[test]
fn committees_of_31_agree_and_decide_whatever_ten_members_do() {
    campaign(31, 200);
}

/// The deterministic fork: four honest members, no drops, delays longer than a round.
/// Under the old rounds one member certified round 0 and the others round 1, with different
/// values. Tendermint's locks keep every member on one candidate.
#[test]
fn delays_longer_than_a_round_never_fork_four_honest_members() {
    for seed in 0..seeds(50) {
        let mut sim = Sim::new(4, &[], seed);
        sim.max_delay = 2 * ROUND_SECS;
        sim.observe();
        sim.run_until(sim.now + 600);
        sim.check();
        assert!(sim.all_honest_decided(), "seed {seed}");
    }
}

/// n = 5: q = 4, so two halves of a double proposal never both reach a quorum.
#[test]
fn a_double_proposal_cannot_fork_five_members() {
    for seed in 0..seeds(100) {
        let (_, g) = genesis(5);
        let spec = SettlementSpec {
            index: Index::EthUsd,
            maturity: 1_790_000_000,
            params: MethodologyParams::default(),
        };
        let leader = g.committee().leader(&spec.id(), 0);
        let mut sim = Sim::new(5, &[(leader, Strategy::Equivocate)], seed);
        sim.observe();
        sim.run_until(sim.now + 600);
        sim.check();
        assert!(sim.all_honest_decided(), "seed {seed}");
    }
}

/// One member floods 10,000 validly signed far-future votes: no honest member holds more than
/// the written bound, and the committee decides.
#[test]
fn a_flood_of_far_future_votes_is_not_held() {
    let mut sim = Sim::new(4, &[(3, Strategy::Flood)], 1);
    sim.observe();
    sim.flood(10_000);
    sim.run_until(sim.now + 600);
    sim.check();
    assert!(sim.all_honest_decided());
    for i in sim.honest().collect::<Vec<_>>() {
        let held = sim.nodes[i].machine.held_messages() as u64;
        let round = sim.nodes[i].machine.round().unwrap_or(0);
        assert!(held <= 4 * max_held_per_member(round), "member {i}: {held}");
        assert!(held < 100, "a handful of rounds' messages, not the flood: {held} (window {ROUNDS_AHEAD})");
    }
}

/// A member that missed every vote learns the decision from a certificate (catch-up), checked
/// against the inputs it lists.
#[test]
fn a_member_that_missed_the_votes_takes_a_checked_certificate() {
    let mut sim = Sim::new(4, &[], 3);
    sim.observe();
    sim.run_until(sim.now + 100);
    let certificate = sim.nodes[0].decided.clone().expect("decided");
    let (committee, network_id, spec) = (sim.committee.clone(), sim.network_id, sim.spec.clone());
    let mut late = Certification::new(committee, 1, network_id, spec, params());
    for o in sim.nodes[0].held_observations() {
        late.on(sim.now, Event::Observation(o));
    }
    let mut forged = certificate.clone();
    forged.votes.truncate(2);
    let actions = late.on(sim.now, Event::Certificate(forged));
    assert!(actions.iter().any(|a| matches!(a, Action::Rejected { .. })), "two precommits are no decision");
    assert!(late.certificate().is_none());
    let actions = late.on(sim.now, Event::Certificate(certificate.clone()));
    assert!(actions.contains(&Action::Certified(std::sync::Arc::new(certificate))));
}

/// A member that precommitted a candidate and restarted keeps its lock: the fresh core would
/// prevote another candidate proposed without a newer polka; the restored lock makes it nil.
#[test]
fn a_restarted_member_keeps_its_lock_from_its_own_precommit() {
    let mut sim = Sim::new(4, &[], 5);
    sim.observe();
    let spec_id = sim.spec.id();
    // Build two candidates from the same observations, by the leaders of rounds 0 and 1.
    let observations: Vec<_> = (0..4)
        .map(|i| {
            let o = Observation {
                settlement_id: spec_id,
                observed_at: sim.now,
                computation: Computation {
                    partitions: vec![Partition::counted(4, Wad::from_raw(2_500_000)); 12],
                    venues: vec![],
                    value: NodeValue::Value(Wad::from_raw(2_500_000 + i as u128)),
                },
                trade_digest: B256::repeat_byte(i as u8),
            };
            sim.sign(i, o)
        })
        .collect();
    let (l0, l1) = (sim.committee.leader(&spec_id, 0), sim.committee.leader(&spec_id, 1));
    let me = (0..4).find(|&i| i != l0 && i != l1).unwrap();
    let candidate = |sim: &Sim, round: u32, leader: usize, at: u64| {
        let mut hashes: Vec<B256> = observations.iter().map(Signed::hash).collect();
        hashes.sort_unstable();
        let values: Vec<Wad> =
            observations.iter().filter_map(|o| o.payload.computation.value.value()).collect();
        let p = Proposal {
            settlement_id: spec_id,
            round,
            value: fixd_proto::methodology::settlement_value(&values).unwrap(),
            source: fixd_proto::types::certificate::ProposalSource::Observations,
            inputs_root: fixd_proto::merkle::merkle_root(&hashes),
            inputs: hashes,
            challenge_deadline: at + 600,
            proposed_at: at,
        };
        let candidate = sim.sign(leader, p);
        sim.sign(leader, RoundProposal { round, pol_round: None, proposal: candidate, polka: vec![] })
    };
    let now = sim.now;
    let rp0 = candidate(&sim, 0, l0, now);
    let precommit = sim.sign(
        me,
        Vote {
            settlement_id: spec_id,
            decision: DecisionId::Value,
            round: 0,
            step: VoteStep::Precommit,
            proposal_hash: Some(rp0.payload.proposal.hash()),
        },
    );
    // Restarted: its store holds the observations, round 0's proposal and its own precommit.
    let mut restarted =
        Certification::new(sim.committee.clone(), me, sim.network_id, sim.spec.clone(), params());
    for o in &observations {
        restarted.replay(now, Event::Observation(o.clone()));
    }
    restarted.replay(now, Event::Proposal(rp0));
    restarted.replay(now, Event::Vote(precommit));
    // Round 1's leader proposes another candidate without a polka; f+1 members are in round 1.
    let rp1 = candidate(&sim, 1, l1, now + 1);
    let mut actions = restarted.on(now + 1, Event::Proposal(rp1.clone()));
    for voter in [l0, l1] {
        let nil = Vote {
            settlement_id: spec_id,
            decision: DecisionId::Value,
            round: 1,
            step: VoteStep::Prevote,
            proposal_hash: None,
        };
        actions.extend(restarted.on(now + 1, Event::Vote(sim.sign(voter, nil))));
    }
    for t in 2..30 {
        actions.extend(restarted.on(now + t, Event::Tick));
    }
    let prevotes_for_new: Vec<_> = actions
        .iter()
        .filter(|a| {
            matches!(a, Action::Vote(v) if v.round == 1 && v.step == VoteStep::Prevote
                && v.proposal_hash == Some(rp1.payload.proposal.hash()))
        })
        .collect();
    assert!(prevotes_for_new.is_empty(), "locked on round 0's candidate, it prevotes nil: {actions:?}");
    assert!(
        actions.iter().any(|a| matches!(a, Action::Vote(v) if v.round == 1 && v.step == VoteStep::Prevote))
    );
}

/// A decided machine keeps its certificate, and no input and nothing of its rounds:
/// a burst of thousands of decided settlements holds no round messages, and a member that
/// goes on sending votes after the decision makes it hold none.
#[test]
fn a_decided_machine_holds_no_round_messages_and_takes_none_after() {
    let mut sim = Sim::new(4, &[], 3);
    sim.observe();
    sim.run_until(sim.now + 100);
    let certificate = sim.nodes[0].decided.clone().expect("decided");
    for i in 0..4 {
        let decided = sim.nodes[i].decided.as_ref().expect("every member decided");
        assert_eq!(decided.proposal, certificate.proposal, "member {i} decided alike");
        assert_eq!(sim.nodes[i].machine.held_messages(), 0, "member {i} still holds round messages");
        assert_eq!(sim.nodes[i].machine.round(), Some(decided.round), "member {i}");
    }
    let Machine::Value(first) = &sim.nodes[0].machine else { unreachable!("a first-value committee") };
    assert_eq!(first.held_inputs(), 0, "a decided machine keeps no input (the store does)");
    let late = Vote {
        settlement_id: sim.spec.id(),
        decision: DecisionId::Value,
        round: certificate.round + 1,
        step: VoteStep::Prevote,
        proposal_hash: None,
    };
    let late = Signed::sign(&sim.nodes[1].key, &sim.network_id, late);
    let actions = sim.nodes[0].machine.on(sim.now, Event::Vote(late));
    assert!(actions.is_empty(), "a decided machine acts on nothing: {actions:?}");
    assert_eq!(sim.nodes[0].machine.held_messages(), 0);
}

/// A decision held by its host (an expiry burst's waves) does not start: it signs no proposal
/// and no vote however long it waits and whatever comes, and holds what comes. The other
/// three decide; admitted, it starts on what it held and decides alike.
#[test]
fn a_held_decision_signs_nothing_until_admitted_then_decides_alike() {
    let mut sim = Sim::new(4, &[], 5);
    let Machine::Value(held) = &mut sim.nodes[3].machine else { unreachable!("a first-value committee") };
    held.hold_start();
    sim.observe();
    sim.run_until(sim.now + 100);
    let certificate = sim.nodes[0].decided.clone().expect("three members decide without the held one");
    assert!(sim.nodes[3].slots.is_empty(), "a held decision signed {:?}", sim.nodes[3].slots);
    assert!(sim.nodes[3].decided.is_none());
    let Machine::Value(held) = &mut sim.nodes[3].machine else { unreachable!() };
    assert!(held.waiting(sim.now) && held.running_since().is_none(), "due, held, not running");
    assert!(held.next_wakeup().is_none(), "a held decision asks for no tick");
    assert!(held.held_messages() > 0, "it holds the round messages that came");

    held.admit();
    assert!(!held.waiting(sim.now));
    sim.deliver(3, Event::Tick);
    let Machine::Value(held) = &sim.nodes[3].machine else { unreachable!() };
    let decided = sim.nodes[3].decided.as_ref().expect("admitted, it decides on what it held");
    assert_eq!(decided.proposal, certificate.proposal, "alike");
    assert!(held.running_since().is_none() && !held.waiting(sim.now), "decided: neither runs nor waits");
}

/// `running_since` is the start while the decision runs; `hold_start` on a started decision
/// changes nothing.
#[test]
fn a_started_decision_runs_from_its_start_and_cannot_be_held_back() {
    let mut sim = Sim::new(4, &[], 6);
    let start = sim.spec.observe_at();
    let Machine::Value(m) = &mut sim.nodes[0].machine else { unreachable!() };
    assert!(!m.waiting(start), "not held: it starts by itself");
    m.on(start + 2, Event::Tick);
    assert_eq!(m.running_since(), Some(start + 2));
    m.hold_start();
    assert!(!m.waiting(start + 3), "a started decision is not held back");
    assert_eq!(m.running_since(), Some(start + 2));
}

/// A member that signs two observations of one settlement is caught: the second comes with
/// evidence pairing it with the first (read back from the bytes the machine holds it as), a
/// third is not even held, and the other members still decide.
#[test]
fn a_member_signing_two_observations_is_caught_with_both() {
    let mut sim = Sim::new(4, &[], 11);
    let observation = |sim: &mut Sim, value: u128| {
        let value = Wad::from_raw(value);
        let observation = Observation {
            settlement_id: sim.spec.id(),
            observed_at: sim.now,
            computation: Computation {
                partitions: vec![Partition::counted(4, value); 12],
                venues: vec![],
                value: NodeValue::Value(value),
            },
            trade_digest: B256::repeat_byte(3),
        };
        sim.sign(3, observation)
    };
    let (first, second, third) = (
        observation(&mut sim, 2_500_000),
        observation(&mut sim, 2_600_000),
        observation(&mut sim, 2_700_000),
    );
    let now = sim.now;
    let machine = &mut sim.nodes[0].machine;
    let held = machine.on(now, Event::Observation(first.clone()));
    assert!(held.iter().any(|a| matches!(a, Action::Hold(_))), "the first is held: {held:?}");
    let caught = machine.on(now, Event::Observation(second.clone()));
    let evidence: Vec<_> = caught
        .iter()
        .filter_map(|a| match a {
            Action::Equivocation(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(evidence.len(), 1, "one piece of evidence: {caught:?}");
    assert_eq!(evidence[0].first, GossipMessage::Observation(first));
    assert_eq!(evidence[0].second, GossipMessage::Observation(second));
    let ignored = machine.on(now, Event::Observation(third));
    assert!(
        ignored.is_empty(),
        "an equivocator's third observation, listed by no proposal, is not held: {ignored:?}"
    );
    sim.observe();
    sim.run_until(sim.now + 100);
    let decided: Vec<_> = (0..3).map(|i| sim.nodes[i].decided.clone().expect("decided")).collect();
    assert!(decided.iter().all(|d| d.proposal == decided[0].proposal), "members 0 to 2 decided alike");
}
