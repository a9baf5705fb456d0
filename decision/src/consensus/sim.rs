//! A simulated committee for the certification tests: n machines on a network with delays, drops,
//! skewed clocks, catch-up of missing observations, and at most one Byzantine member.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, B256};
use ed25519_dalek::SigningKey;
use fixd_proto::certify::verify_certificate;
use fixd_proto::merkle::merkle_root;
use fixd_proto::methodology::settlement_value;
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::certificate::{Certificate, Proposal, ProposalSource, Vote};
use fixd_proto::types::genesis::{Committee, Genesis, Member, ProtocolParams};
use fixd_proto::types::observation::{Computation, NodeValue, Observation};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};
use fixd_proto::value::Wad;
use proptest::prelude::*;

use super::{Action, Certification, ConsensusParams, Event, MessageKind};

pub(super) const ROUND_SECS: u64 = 10;

/// Keys, committee and settlement shared by the tests.
pub(super) struct Fixture {
    pub keys: Vec<SigningKey>,
    pub committee: Committee,
    pub network_id: B256,
    pub spec: SettlementSpec,
    pub params: ConsensusParams,
}

pub(super) fn fixture(n: u8) -> Fixture {
    let keys: Vec<SigningKey> = (1..=n).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
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
        arbitrator: Address::ZERO,
        members,
        params: ProtocolParams::default(),
    };
    let spec = SettlementSpec {
        index: Index::EthUsd,
        maturity: 1_790_000_000,
        params: MethodologyParams::default(),
    };
    let params = ConsensusParams {
        round_timeout_secs: ROUND_SECS,
        challenge_period_secs: 600,
        max_clock_skew_secs: 5,
    };
    Fixture { committee: genesis.committee(), network_id: genesis.network_id(), keys, spec, params }
}

impl Fixture {
    pub fn machine(&self, me: usize) -> Certification {
        Certification::new(self.committee.clone(), me, self.network_id, self.spec.clone(), self.params)
    }

    pub fn observe_at(&self) -> u64 {
        self.spec.observe_at()
    }

    pub fn leader(&self, round: u32) -> usize {
        self.committee.leader(&self.spec.id(), round)
    }

    pub fn key(&self, member: usize) -> PublicKey {
        self.committee.members()[member].ed25519
    }

    pub fn observation(&self, member: usize, value: NodeValue, salt: u8) -> Signed<Observation> {
        let partitions = vec![value.value(); 12];
        let obs = Observation {
            settlement_id: self.spec.id(),
            observed_at: self.observe_at(),
            computation: Computation { partitions, venues: vec![], value },
            trade_digest: B256::repeat_byte(salt),
        };
        Signed::sign(&self.keys[member], &self.network_id, obs)
    }

    /// An honest-looking proposal over `observations` with `value` (the median when `None`).
    pub fn proposal(
        &self,
        round: u32,
        now: u64,
        observations: &[&Signed<Observation>],
        value: Option<Wad>,
    ) -> Proposal {
        let mut inputs: Vec<B256> = observations.iter().map(|o| o.hash()).collect();
        inputs.sort_unstable();
        let values: Vec<Wad> =
            observations.iter().filter_map(|o| o.payload.computation.value.value()).collect();
        Proposal {
            settlement_id: self.spec.id(),
            round,
            value: value.or_else(|| settlement_value(&values)).unwrap_or(Wad::ZERO),
            source: ProposalSource::Observations,
            inputs_root: merkle_root(&inputs),
            inputs,
            challenge_deadline: now + self.params.challenge_period_secs,
            proposed_at: now,
        }
    }

    pub fn vote(&self, member: usize, round: u32, proposal_hash: B256) -> Signed<Vote> {
        let vote = Vote { settlement_id: self.spec.id(), round, proposal_hash };
        Signed::sign(&self.keys[member], &self.network_id, vote)
    }
}

/// A small deterministic PRNG (xorshift64*), seeded by proptest.
pub(super) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// What the Byzantine member (if any) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Byzantine {
    /// Sends nothing at all.
    Silent,
    /// Behaves honestly except that, as leader, it proposes the median plus one wei.
    WrongMedian,
    /// Behaves honestly except that it votes for two different hashes each round.
    EquivocatingVoter,
    /// Random attacks: conflicting observations, proposals and votes, wrong values, junk.
    Random,
}

/// A simulated network of machines.
pub(super) struct Sim {
    pub fx: Fixture,
    /// Global time.
    pub time: u64,
    pub machines: Vec<Certification>,
    /// Each member's clock offset from global time.
    offsets: Vec<i64>,
    byzantine: Option<(usize, Byzantine)>,
    /// (delivery time, sequence) → (recipient, event).
    queue: BTreeMap<(u64, u64), (usize, Event)>,
    seq: u64,
    pub rng: Rng,
    pub drop_per_mille: u64,
    pub max_delay: u64,
    /// Honest observation values.
    pub values: Vec<Wad>,
    /// Every observation ever sent, for catch-up.
    published: BTreeMap<B256, Signed<Observation>>,
    fetched: BTreeSet<(usize, B256)>,
    /// Every proposal sent, per round (the Byzantine member sees all traffic).
    proposals_seen: BTreeMap<u32, Vec<Signed<Proposal>>>,
    /// What each honest member signed per (kind, round).
    signed: BTreeMap<(usize, MessageKind, u32), B256>,
    /// Every action of every honest member, with its member index.
    pub actions: Vec<(usize, Action)>,
    pub certified: BTreeMap<usize, Certificate>,
    /// Rounds the Byzantine member has voted in.
    byzantine_voted: BTreeSet<u32>,
}

impl Sim {
    pub fn new(n: u8, byzantine: Option<(usize, Byzantine)>, seed: u64) -> Self {
        let fx = fixture(n);
        let mut rng = Rng::new(seed);
        let machines = (0..usize::from(n)).map(|i| fx.machine(i)).collect();
        let offsets = (0..n).map(|_| rng.below(3) as i64 - 1).collect();
        let values =
            (0..n).map(|_| Wad::from_raw((2500 + u128::from(rng.below(50))) * 10u128.pow(18))).collect();
        Sim {
            time: fx.observe_at() - 3,
            fx,
            machines,
            offsets,
            byzantine,
            queue: BTreeMap::new(),
            seq: 0,
            rng,
            drop_per_mille: 0,
            max_delay: 2,
            values,
            published: BTreeMap::new(),
            fetched: BTreeSet::new(),
            proposals_seen: BTreeMap::new(),
            signed: BTreeMap::new(),
            actions: Vec::new(),
            certified: BTreeMap::new(),
            byzantine_voted: BTreeSet::new(),
        }
    }

    pub fn honest(&self, member: usize) -> bool {
        self.byzantine.is_none_or(|(b, _)| b != member)
    }

    fn behaviour(&self) -> Option<(usize, Byzantine)> {
        self.byzantine
    }

    fn local(&self, member: usize) -> u64 {
        self.time.saturating_add_signed(self.offsets[member])
    }

    fn send(&mut self, to: usize, event: Event, reliable: bool) {
        if !reliable && self.rng.chance(self.drop_per_mille) {
            return;
        }
        let at = self.time + self.rng.below(self.max_delay + 1);
        self.seq += 1;
        self.queue.insert((at, self.seq), (to, event));
    }

    fn publish(&mut self, event: &Event) {
        match event {
            Event::Observation(o) => {
                self.published.insert(o.hash(), o.clone());
            }
            Event::Proposal(p) => self.proposals_seen.entry(p.payload.round).or_default().push(p.clone()),
            _ => {}
        }
    }

    /// Sends `event` from `from` to every other member (a Byzantine member's copies too).
    fn broadcast(&mut self, from: usize, event: Event) {
        self.publish(&event);
        for to in 0..self.machines.len() {
            if to != from {
                self.send(to, event.clone(), false);
            }
        }
    }

    /// Feeds an event to an honest member and carries out its actions, like the shell.
    fn feed(&mut self, member: usize, event: Event) {
        let mut work = vec![event];
        while let Some(event) = work.pop() {
            let now = self.local(member);
            for action in self.machines[member].on(now, event) {
                match &action {
                    Action::Propose(p) => {
                        let signed = Signed::sign(&self.fx.keys[member], &self.fx.network_id, p.clone());
                        self.record(member, MessageKind::Proposal, p.round, signed.hash());
                        self.broadcast(member, Event::Proposal(signed.clone()));
                        work.push(Event::Proposal(signed));
                    }
                    Action::Vote(v) => {
                        let signed = Signed::sign(&self.fx.keys[member], &self.fx.network_id, v.clone());
                        self.record(member, MessageKind::Vote, v.round, signed.hash());
                        self.broadcast(member, Event::Vote(signed.clone()));
                        work.push(Event::Vote(signed));
                    }
                    Action::Certified(c) => {
                        assert!(
                            self.certified.insert(member, c.clone()).is_none(),
                            "member {member} certified twice"
                        );
                    }
                    _ => {}
                }
                self.actions.push((member, action));
            }
        }
    }

    /// The safety rule of DESIGN 5.6: one signed message per member, kind and round.
    fn record(&mut self, member: usize, kind: MessageKind, round: u32, hash: B256) {
        if let Some(previous) = self.signed.insert((member, kind, round), hash) {
            panic!("honest member {member} signed two {kind:?}s in round {round}: {previous} and {hash}");
        }
    }

    fn round_at(&self, time: u64) -> Option<u32> {
        time.checked_sub(self.fx.observe_at()).map(|s| (s / ROUND_SECS) as u32)
    }

    /// One second of simulated time.
    pub fn step(&mut self) {
        let observe_at = self.fx.observe_at();
        let n = self.machines.len();
        for member in 0..n {
            if self.local(member) == observe_at {
                self.observe(member);
            }
        }
        self.byzantine_step();
        let due: Vec<(u64, u64)> = self.queue.range(..=(self.time, u64::MAX)).map(|(k, _)| *k).collect();
        for key in due {
            let (to, event) = self.queue.remove(&key).expect("due");
            if self.honest(to) {
                self.feed(to, event);
            }
        }
        for member in self.honest_members() {
            self.feed(member, Event::Tick);
            // Catch-up: fetch the observations a pending proposal lists.
            for hash in self.machines[member].missing_inputs() {
                if let Some(obs) = self.published.get(&hash).cloned()
                    && self.fetched.insert((member, hash))
                {
                    self.send(member, Event::Observation(obs), true);
                }
            }
        }
        self.time += 1;
    }

    pub fn run_until(&mut self, time: u64) {
        while self.time < time {
            self.step();
        }
    }

    pub fn run_rounds(&mut self, rounds: u64) {
        self.run_until(self.fx.observe_at() + rounds * ROUND_SECS);
    }

    fn observe(&mut self, member: usize) {
        let value = NodeValue::Value(self.values[member]);
        match self.behaviour() {
            Some((b, Byzantine::Silent)) if b == member => {}
            Some((b, Byzantine::Random)) if b == member => {
                // Conflicting observations, one wild, sent to different members.
                let wild = NodeValue::Value(Wad::from_raw(self.rng.next() as u128 * 10u128.pow(12)));
                let a = self.fx.observation(member, value, 1);
                let c = self.fx.observation(member, wild, 2);
                for to in (0..self.machines.len()).filter(|&t| t != member) {
                    let pick = if self.rng.chance(500) { a.clone() } else { c.clone() };
                    self.publish(&Event::Observation(pick.clone()));
                    self.send(to, Event::Observation(pick), false);
                }
            }
            Some((b, _)) if b == member => {
                let obs = self.fx.observation(member, value, 1);
                self.broadcast(member, Event::Observation(obs));
            }
            _ => {
                let obs = self.fx.observation(member, value, 0);
                self.broadcast(member, Event::Observation(obs.clone()));
                self.feed(member, Event::Observation(obs));
            }
        }
    }

    /// What the Byzantine member sends this second.
    fn byzantine_step(&mut self) {
        let Some((b, behaviour)) = self.byzantine else { return };
        let now = self.local(b);
        let Some(round) = self.round_at(now) else { return };
        let round_start = self.fx.observe_at() + u64::from(round) * ROUND_SECS;
        let held: Vec<Signed<Observation>> = self.published.values().cloned().collect();
        let one_per_member = |held: &[Signed<Observation>]| {
            let mut seen = BTreeSet::new();
            held.iter().filter(|o| seen.insert(o.signer)).cloned().collect::<Vec<_>>()
        };
        let leads = self.fx.leader(round) == b;
        match behaviour {
            Byzantine::Silent => {}
            Byzantine::WrongMedian => {
                if leads && now == round_start + 1 {
                    let obs = one_per_member(&held);
                    let refs: Vec<&Signed<Observation>> = obs.iter().collect();
                    let honest = self.fx.proposal(round, now, &refs, None);
                    let wrong = Wad::from_raw(honest.value.raw() + 1);
                    let p = Proposal { value: wrong, ..honest };
                    let signed = Signed::sign(&self.fx.keys[b], &self.fx.network_id, p);
                    self.broadcast(b, Event::Proposal(signed));
                }
                self.byzantine_honest_votes(b, round, now, round_start);
            }
            Byzantine::EquivocatingVoter => {
                // As soon as it sees the round's proposal: a vote for it and one for junk.
                let real = self.proposals_seen.get(&round).and_then(|p| p.first()).map(Signed::hash);
                if let Some(real) = real
                    && self.byzantine_voted.insert(round)
                {
                    let a = self.fx.vote(b, round, real);
                    let c = self.fx.vote(b, round, B256::repeat_byte(0xbb));
                    for to in (0..self.machines.len()).filter(|&t| t != b) {
                        // The junk one first, so that the real one is caught before it counts.
                        self.send(to, Event::Vote(c.clone()), false);
                        self.send(to, Event::Vote(a.clone()), false);
                    }
                }
            }
            Byzantine::Random => {
                if self.rng.chance(300) {
                    // A proposal over a random subset, maybe a wrong value, maybe not its round.
                    let mut obs = one_per_member(&held);
                    obs.retain(|_| self.rng.chance(800));
                    let refs: Vec<&Signed<Observation>> = obs.iter().collect();
                    let value = self.rng.chance(300).then(|| Wad::from_raw(u128::from(self.rng.next())));
                    let r = if self.rng.chance(800) { round } else { round + self.rng.below(3) as u32 };
                    let p = self.fx.proposal(r, now, &refs, value);
                    let signed = Signed::sign(&self.fx.keys[b], &self.fx.network_id, p);
                    let to = self.rng.below(self.machines.len() as u64) as usize;
                    if to != b {
                        self.publish(&Event::Proposal(signed.clone()));
                        self.send(to, Event::Proposal(signed), false);
                    }
                }
                if self.rng.chance(300) {
                    let seen: Vec<B256> = self.proposals_seen.values().flatten().map(Signed::hash).collect();
                    let hash = if seen.is_empty() || self.rng.chance(200) {
                        B256::from(U256Bytes(self.rng.next()).bytes())
                    } else {
                        seen[self.rng.below(seen.len() as u64) as usize]
                    };
                    let r = round.saturating_sub(self.rng.below(2) as u32);
                    let vote = self.fx.vote(b, r, hash);
                    let to = self.rng.below(self.machines.len() as u64) as usize;
                    if to != b {
                        self.send(to, Event::Vote(vote), false);
                    }
                }
            }
        }
    }

    /// Votes like an honest member for the first proposal of the round (without checking it).
    fn byzantine_honest_votes(&mut self, b: usize, round: u32, now: u64, round_start: u64) {
        if now != round_start + 3 {
            return;
        }
        if let Some(p) = self.proposals_seen.get(&round).and_then(|p| p.first()).map(Signed::hash) {
            let vote = self.fx.vote(b, round, p);
            self.broadcast(b, Event::Vote(vote));
        }
    }

    /// Checks every certificate: it verifies, its value is within the honest values, and all
    /// certificates of one round are for the same proposal.
    pub fn check_certificates(&self) {
        let observations: Vec<Signed<Observation>> = self.published.values().cloned().collect();
        let honest: Vec<Wad> =
            (0..self.machines.len()).filter(|&m| self.honest(m)).map(|m| self.values[m]).collect();
        let (lo, hi) = (*honest.iter().min().unwrap(), *honest.iter().max().unwrap());
        let mut per_round: BTreeMap<u32, B256> = BTreeMap::new();
        for (member, cert) in &self.certified {
            let fx = &self.fx;
            let value = verify_certificate(&fx.committee, &fx.network_id, &fx.spec, cert, &observations)
                .unwrap_or_else(|e| panic!("member {member}'s certificate does not verify: {e}"));
            assert!(lo <= value && value <= hi, "certified {value} outside honest [{lo}, {hi}]");
            let round = cert.proposal.payload.round;
            let hash = cert.proposal.hash();
            let first = *per_round.entry(round).or_insert(hash);
            assert_eq!(first, hash, "two certificates for different proposals in round {round}");
        }
    }

    /// The median of the observations a certificate lists.
    pub fn median_of_inputs(&self, cert: &Certificate) -> Wad {
        let values: Vec<Wad> = cert
            .proposal
            .payload
            .inputs
            .iter()
            .filter_map(|h| self.published[h].payload.computation.value.value())
            .collect();
        settlement_value(&values).expect("a certificate lists q values")
    }

    pub fn honest_members(&self) -> Vec<usize> {
        (0..self.machines.len()).filter(|&m| self.honest(m)).collect()
    }
}

/// 32 pseudo-random bytes from one u64, for junk hashes.
struct U256Bytes(u64);

impl U256Bytes {
    fn bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, chunk) in out.chunks_mut(8).enumerate() {
            chunk.copy_from_slice(&self.0.rotate_left(i as u32 * 8).to_le_bytes());
        }
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Random delays, drops, clock offsets and a randomly attacking member: no honest member
    /// signs twice in a round (checked as it signs), certificates verify, stay within the honest
    /// values and agree per round; with no drops every honest member certifies.
    #[test]
    fn certification_is_safe_under_one_byzantine_member(
        seed in any::<u64>(),
        byzantine in 0usize..4,
        behaviour in prop::sample::select(vec![
            Byzantine::Silent, Byzantine::WrongMedian, Byzantine::EquivocatingVoter, Byzantine::Random,
        ]),
        drops in prop::sample::select(vec![0u64, 0, 100, 300]),
    ) {
        let mut sim = Sim::new(4, Some((byzantine, behaviour)), seed);
        sim.drop_per_mille = drops;
        sim.run_rounds(12);
        sim.check_certificates();
        if drops == 0 {
            for member in sim.honest_members() {
                prop_assert!(sim.certified.contains_key(&member), "honest member {} did not certify", member);
            }
        }
    }
}

/// Found by the property test: member 0 equivocates on votes, so member 3 ignores it, and then
/// the honest round-0 leader's proposal lists an observation of member 0 that member 3 had not
/// seen. Member 3 must still accept that observation when it fetches it, or it can never vote
/// for the proposal, and with member 2 certified and done, members 1 and 3 never reach q.
#[test]
fn an_input_signed_by_a_caught_equivocator_is_still_accepted() {
    let mut sim = Sim::new(4, Some((0, Byzantine::Random)), 393101003190677344);
    sim.run_rounds(12);
    sim.check_certificates();
    for member in sim.honest_members() {
        assert!(sim.certified.contains_key(&member), "honest member {member} did not certify");
    }
}
