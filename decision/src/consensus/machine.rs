//! [`Certification`]: one decision of one settlement, a Tendermint instance over candidate
//! proposals. See the module docs of [`crate::consensus`] for the protocol and its rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use fixd_proto::certify::{CertifyError, Role, check_challenge_deadline, check_round_proposal};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::merkle::merkle_root;
use fixd_proto::methodology::settlement_value;
use fixd_proto::signing::{Endorsement, PublicKey, Signed};
use fixd_proto::types::certificate::{
    Certificate, DecisionId, Proposal, ProposalSource, RoundProposal, Vote, VoteStep,
};
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::report::FinalReport;
use fixd_proto::types::settlement::{SettlementId, SettlementSpec};
use malachitebft_core_types::{NilOrVal, Round, SignedMessage, Validity, VoteType};

use super::held::HeldInputs;
use super::inputs::{Inputs, Observations, Reports, Review};
use super::{Action, Candidate, ConsensusParams, Equivocation, Event, ProposalToSign, ROUNDS_AHEAD};
use crate::tendermint::{self, Decidable, Instance, Member, Output, Timeouts};

/// A candidate, decided by its hash: the hash every vote and dispute names, computed once (the
/// core asks for it often). The proposal is shared: the core clones its value into its
/// proposal keeper and round state, and a burst holds thousands of running decisions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    signed: Arc<Signed<Proposal>>,
    id: B256,
}

impl Hashed {
    fn new(signed: Signed<Proposal>) -> Self {
        Hashed { id: signed.hash(), signed: Arc::new(signed) }
    }
}

impl Decidable for Hashed {
    fn id(&self) -> B256 {
        self.id
    }
}

/// The most messages one member can make a member hold for one decision while that member is in
/// `round`: a proposal and two votes for each round up to `round + ROUNDS_AHEAD`, and one piece
/// of equivocation evidence (two messages). Inputs (one per member, plus the second one of an
/// equivocation) come on top, as do the rounds honest members really run.
pub const fn max_held_per_member(round: u32) -> u64 {
    (round as u64 + ROUNDS_AHEAD as u64 + 1) * 3 + 2
}

/// A round proposal as this member holds it.
#[derive(Clone, Debug)]
struct HeldProposal {
    signed: Signed<RoundProposal>,
    hash: B256,
    /// This node's clock when it arrived.
    arrived_at: u64,
    /// Whether the core has been given it.
    fed: bool,
}

/// One decision of one settlement at one member: the first value from observations, or a
/// dispute round's review from review votes.
pub struct Certification<I: Inputs = Observations> {
    kind: I,
    committee: Committee,
    me: usize,
    network_id: B256,
    spec: SettlementSpec,
    settlement_id: SettlementId,
    decision: DecisionId,
    params: ConsensusParams,
    starts_at: u64,
    /// When the core started (unix seconds, this member's clock); `None` before.
    started_at: Option<u64>,
    /// Whether the host lets the decision start: see [`Certification::hold_start`].
    admitted: bool,
    /// The Tendermint core: built at the start (an idle decision, such as a final report
    /// before finality, holds none), dropped at the decision. Boxed: 2 KB by value.
    instance: Option<Box<Instance<Hashed>>>,
    timeouts: Timeouts,
    /// Every valid input (observation or review vote) kept, by hash, encoded.
    inputs: HeldInputs<I::Input>,
    /// Each member's (first) input hash, by member: a sorted vector, as a decision holds a few
    /// and a B-tree's first leaf has room for eleven.
    observed: Vec<(usize, B256)>,
    /// Members caught signing two inputs: their inputs no longer count for a fresh candidate.
    input_equivocators: BTreeSet<usize>,
    /// The round leader's proposal per round (the first held). This map and the next box their
    /// values: a B-tree allocates room for eleven entries at its first insert, and a decision
    /// holds a few (by value, some 10 KB a decision in a burst, most of it empty).
    proposals: BTreeMap<u32, Box<HeldProposal>>,
    /// Votes held: (round, step, member) → the first vote.
    votes: BTreeMap<(u32, VoteStep, usize), Box<Signed<Vote>>>,
    /// Members whose equivocation evidence is kept: one piece per member and decision.
    evidenced: BTreeSet<usize>,
    /// The round the core asked this member to propose a value for, while it has none.
    awaiting_value: Option<u32>,
    /// The round of the fresh candidate this member asked to sign, until it comes back.
    fresh_sent: Option<u32>,
    /// The round and candidate this member last precommitted: its lock, as its store shows it.
    own_lock: Option<(u32, B256)>,
    /// A certificate from another member, waiting for the inputs it lists.
    pending_certificate: Option<Box<Certificate>>,
    certificate: Option<Arc<Certificate>>,
}

impl<I: Inputs> std::fmt::Debug for Certification<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certification")
            .field("decision", &self.decision)
            .field("instance", &self.instance)
            .field("certified", &self.certificate.is_some())
            .finish()
    }
}

impl Certification<Observations> {
    /// The machine of member `me` (its index in `committee`) deciding the first value of
    /// `spec` from the members' observations, from `observe_at` on.
    ///
    /// # Panics
    /// If `me` is not an index of `committee`.
    pub fn new(
        committee: Committee,
        me: usize,
        network_id: B256,
        spec: SettlementSpec,
        params: ConsensusParams,
    ) -> Self {
        let starts_at = spec.observe_at();
        Self::with_inputs(Observations, committee, me, network_id, spec, params, starts_at)
    }
}

impl Certification<Review> {
    /// The machine of member `me` deciding the committee's review of one dispute round, from
    /// `starts_at` (a time every member agrees on). `params.challenge_period_secs` is the
    /// reopened window.
    ///
    /// # Panics
    /// If `me` is not an index of `committee`.
    pub fn for_review(
        review: Review,
        committee: Committee,
        me: usize,
        network_id: B256,
        spec: SettlementSpec,
        params: ConsensusParams,
        starts_at: u64,
    ) -> Self {
        Self::with_inputs(review, committee, me, network_id, spec, params, starts_at)
    }

    /// The review this machine decides.
    pub fn review(&self) -> &Review {
        &self.kind
    }
}

impl Certification<Reports> {
    /// The machine of member `me` deciding the settlement's final report. It starts once this
    /// member's fold is final ([`Certification::set_acceptable_reports`]).
    pub fn for_report(
        committee: Committee,
        me: usize,
        network_id: B256,
        spec: SettlementSpec,
        params: ConsensusParams,
    ) -> Self {
        Self::with_inputs(Reports::default(), committee, me, network_id, spec, params, u64::MAX)
    }

    /// The reports this member's fold makes now, its own first (empty: not final), and when the
    /// decision starts (the agreed moment of finality plus the fold's lag; kept once set).
    pub fn set_acceptable_reports(&mut self, reports: Vec<FinalReport>, starts_at: u64) {
        self.kind.acceptable = reports;
        if self.starts_at == u64::MAX {
            self.starts_at = starts_at;
        }
    }
}

impl<I: Inputs> Certification<I> {
    fn with_inputs(
        kind: I,
        committee: Committee,
        me: usize,
        network_id: B256,
        spec: SettlementSpec,
        params: ConsensusParams,
        starts_at: u64,
    ) -> Self {
        assert!(me < committee.n(), "member index {me} outside a committee of {}", committee.n());
        let settlement_id = spec.id();
        let timeouts = Timeouts::for_round_timeout(Duration::from_secs(params.round_timeout_secs.max(1)));
        Certification {
            decision: DecisionId::of_source(&kind.source()),
            kind,
            settlement_id,
            committee,
            me,
            network_id,
            spec,
            params,
            starts_at,
            started_at: None,
            admitted: true,
            instance: None,
            timeouts,
            inputs: HeldInputs::new(),
            observed: Vec::new(),
            input_equivocators: BTreeSet::new(),
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            evidenced: BTreeSet::new(),
            awaiting_value: None,
            fresh_sent: None,
            own_lock: None,
            pending_certificate: None,
            certificate: None,
        }
    }

    /// The decision this machine takes.
    pub fn decision(&self) -> DecisionId {
        self.decision
    }

    /// The round this member is in, `None` before the start; once decided, the decision's.
    pub fn round(&self) -> Option<u32> {
        if let Some(certificate) = &self.certificate {
            return Some(certificate.round);
        }
        self.started_at.and(self.instance.as_ref()).and_then(|core| core.round())
    }

    /// When the instance starts (unix seconds).
    pub fn starts_at(&self) -> u64 {
        self.starts_at
    }

    /// The decision, once taken.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_deref()
    }

    /// How many inputs are held: none once decided (the store keeps them for proof bundles).
    pub fn held_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// How many proposals and votes are held, for the storage bound.
    pub fn held_messages(&self) -> usize {
        self.proposals.len() + self.votes.len()
    }

    /// Input hashes that a held proposal (or a received certificate) lists but this member does
    /// not hold: the network layer should fetch them from peers (catch-up).
    pub fn missing_inputs(&self) -> Vec<B256> {
        let listed = self
            .proposals
            .values()
            .filter(|held| !held.fed)
            .map(|held| &held.signed.payload.proposal)
            .chain(self.pending_certificate.as_ref().map(|c| &c.proposal));
        let mut missing: Vec<B256> = listed
            .flat_map(|p| p.payload.inputs.iter())
            .filter(|h| !self.inputs.contains(h))
            .copied()
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Holds the start of this decision, until [`Certification::admit`]: a host with thousands
    /// of decisions due at once (an expiry burst) starts them a wave at a time, so that their
    /// cores and round messages are not all in memory together. What comes before the start is
    /// held, as before `starts_at`. No effect on a decision already started.
    pub fn hold_start(&mut self) {
        self.admitted = self.started_at.is_some();
    }

    /// Lets a held decision start (at its next event, once `starts_at` has come).
    pub fn admit(&mut self) {
        self.admitted = true;
    }

    /// Whether the decision is due to start (`starts_at` has come) and held by its host.
    pub fn waiting(&self, now: u64) -> bool {
        !self.admitted && self.started_at.is_none() && self.certificate.is_none() && now >= self.starts_at
    }

    /// When the decision started, while it runs (started and undecided).
    pub fn running_since(&self) -> Option<u64> {
        self.started_at.filter(|_| self.certificate.is_none())
    }

    /// When to send the next [`Event::Tick`]: the start, or the core's next timeout. `None` once
    /// decided, and while held ([`Certification::hold_start`]).
    pub fn next_wakeup(&self) -> Option<u64> {
        if self.certificate.is_some() {
            return None;
        }
        if self.started_at.is_none() {
            return self.admitted.then_some(self.starts_at);
        }
        self.instance.as_ref()?.next_deadline().map(|ms| ms.div_ceil(1000))
    }

    /// Feeds one event at `now` (unix seconds, this node's clock) and returns what to do.
    pub fn on(&mut self, now: u64, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if self.certificate.is_some() {
            return out;
        }
        match event {
            Event::Proposal(proposal) => self.on_proposal(now, proposal, &mut out),
            Event::Vote(vote) => self.on_vote(now, vote, &mut out),
            Event::Certificate(certificate) => {
                if certificate.proposal.payload.settlement_id == self.settlement_id
                    && DecisionId::of_source(&certificate.proposal.payload.source) == self.decision
                {
                    self.pending_certificate = Some(Box::new(certificate));
                }
            }
            Event::Tick => {}
            input => {
                if let Some(input) = I::input_of(input) {
                    self.on_input(input, &mut out);
                }
            }
        }
        self.progress(now, &mut out);
        out
    }

    /// Holds what the store kept (after a restart) without acting on it: the machine acts on
    /// everything held at its first [`Certification::on`] after its start.
    pub fn replay(&mut self, now: u64, event: Event) {
        let mut ignored = Vec::new();
        let started = self.started_at.take();
        match event {
            Event::Proposal(proposal) => self.on_proposal(now, proposal, &mut ignored),
            Event::Vote(vote) => self.on_vote(now, vote, &mut ignored),
            Event::Certificate(_) | Event::Tick => {}
            input => {
                if let Some(input) = I::input_of(input) {
                    self.on_input(input, &mut ignored);
                }
            }
        }
        self.started_at = started;
    }

    /// The decision as this member's store kept it (checked when it was taken).
    pub fn restore_decision(&mut self, certificate: Arc<Certificate>) {
        self.certificate = Some(certificate);
        self.release_rounds();
    }

    /// Once decided, the machine acts on nothing more ([`Certification::on`] returns at once),
    /// so what it held to decide goes: the core's state, the round proposals and votes, and the
    /// inputs (the store keeps them all: catch-up and proof bundles are served from there). A
    /// burst of thousands of settlements then holds a certificate for each decided one, not
    /// every round's messages (about 37 KB each before) nor its observations (some 1.2 KB each,
    /// their partitions and venues, three or more a settlement).
    fn release_rounds(&mut self) {
        if self.certificate.is_none() {
            return;
        }
        self.inputs.clear();
        self.instance = None;
        self.proposals = BTreeMap::new();
        self.votes = BTreeMap::new();
        self.observed = Vec::new();
        self.pending_certificate = None;
        self.awaiting_value = None;
    }

    /// The Tendermint core, built on first use.
    fn core(&mut self) -> &mut Instance<Hashed> {
        self.instance.get_or_insert_with(|| {
            let first = self.committee.leader(&self.settlement_id, 0);
            let validators = tendermint::validators(&self.committee);
            Box::new(Instance::new(validators, self.me, first, self.timeouts))
        })
    }

    fn ms(now: u64) -> u64 {
        now.saturating_mul(1000)
    }

    /// The round past which messages are not held.
    fn horizon(&self) -> u32 {
        let round = self.instance.as_ref().and_then(|core| core.round());
        round.unwrap_or(0).saturating_add(ROUNDS_AHEAD)
    }

    fn member(&self, signer: &PublicKey, role: Role) -> Result<usize, CertifyError> {
        self.committee.index_of(signer).ok_or(CertifyError::NotAMember { signer: *signer, role })
    }

    fn on_input(&mut self, input: Signed<I::Input>, out: &mut Vec<Action>) {
        let from = input.signer;
        let checked = match self.kind.belongs(&self.settlement_id, &input) {
            Ok(()) => self.member(&from, Role::Observer).map_err(Some),
            Err(e) => Err(e),
        };
        let member = match checked {
            Ok(member) => member,
            Err(Some(reason)) => return out.push(Action::Rejected { from, reason }),
            Err(None) => return,
        };
        let hash = input.hash();
        // An equivocator's further inputs are kept only when a held proposal lists them: the
        // leader may have used one before the equivocation was caught, and without it this
        // member could never check that proposal. So memory stays bounded.
        let caught = self.input_equivocators.contains(&member);
        if (caught && !self.listed(&hash)) || !self.inputs.insert(hash, I::value(&input.payload), &input) {
            return;
        }
        out.push(Action::Hold(I::evidence(input.clone())));
        if caught {
            return;
        }
        match self.observed.binary_search_by_key(&member, |(m, _)| *m) {
            Err(at) => self.observed.insert(at, (member, hash)),
            Ok(at) => {
                let first = &self.observed[at].1;
                let first = I::evidence(self.inputs.get(first).expect("a member's first input is held"));
                self.input_equivocators.insert(member);
                out.push(Action::Equivocation(Equivocation { first, second: I::evidence(input) }));
            }
        }
    }

    /// Whether a held proposal lists input `hash`.
    fn listed(&self, hash: &B256) -> bool {
        let pending = self.pending_certificate.as_ref().map(|c| &c.proposal);
        self.proposals
            .values()
            .map(|held| &held.signed.payload.proposal)
            .chain(pending)
            .any(|p| p.payload.inputs.contains(hash))
    }

    fn on_proposal(&mut self, now: u64, proposal: Signed<RoundProposal>, out: &mut Vec<Action>) {
        let from = proposal.signer;
        let candidate = &proposal.payload.proposal.payload;
        if candidate.settlement_id != self.settlement_id {
            let reason =
                CertifyError::WrongSettlement { expected: self.settlement_id, got: candidate.settlement_id };
            return out.push(Action::Rejected { from, reason });
        }
        if proposal.payload.decision() != self.decision {
            return;
        }
        let round = proposal.payload.round;
        if round > self.horizon() {
            return;
        }
        let hash = proposal.hash();
        if let Some(held) = self.proposals.get(&round) {
            if held.hash != hash && check_round_proposal(&self.committee, &self.network_id, &proposal).is_ok()
            {
                let first = GossipMessage::proposal(held.signed.clone());
                self.equivocation(first, GossipMessage::proposal(proposal), out);
            }
            return;
        }
        if let Err(reason) = check_round_proposal(&self.committee, &self.network_id, &proposal) {
            return out.push(Action::Rejected { from, reason });
        }
        out.push(Action::Hold(GossipMessage::proposal(proposal.clone())));
        let held = HeldProposal { signed: proposal, hash, arrived_at: now, fed: false };
        self.proposals.insert(round, Box::new(held));
    }

    fn on_vote(&mut self, now: u64, vote: Signed<Vote>, out: &mut Vec<Action>) {
        let from = vote.signer;
        let v = &vote.payload;
        if v.settlement_id != self.settlement_id {
            let reason = CertifyError::WrongSettlement { expected: self.settlement_id, got: v.settlement_id };
            return out.push(Action::Rejected { from, reason });
        }
        if v.decision != self.decision || v.round > self.horizon() {
            return;
        }
        let member = match self.member(&from, Role::Voter) {
            Ok(member) => member,
            Err(reason) => return out.push(Action::Rejected { from, reason }),
        };
        let key = (v.round, v.step, member);
        let hash = vote.hash();
        let first = self.votes.get(&key).map(|first| &**first);
        if first.map(Signed::hash) == Some(hash) {
            return;
        }
        if let Some(first) = first {
            let first = GossipMessage::Vote(first.clone());
            return self.equivocation(first, GossipMessage::Vote(vote), out);
        }
        if member == self.me
            && v.step == VoteStep::Precommit
            && let Some(id) = v.proposal_hash
            && self.own_lock.is_none_or(|(round, _)| round <= v.round)
        {
            self.own_lock = Some((v.round, id));
        }
        out.push(Action::Hold(GossipMessage::Vote(vote.clone())));
        self.votes.insert(key, Box::new(vote.clone()));
        if self.started_at.is_some() {
            let outputs = self.core().on_vote(Self::ms(now), Self::core_vote(member, &vote));
            self.carry(now, outputs, out);
        }
    }

    /// Keeps the first piece of evidence against the member who signed both.
    fn equivocation(&mut self, first: GossipMessage, second: GossipMessage, out: &mut Vec<Action>) {
        let Some(member) = self.committee.index_of(first.signer()) else { return };
        if self.evidenced.insert(member) {
            out.push(Action::Equivocation(Equivocation { first, second }));
        }
    }

    fn core_vote(member: usize, vote: &Signed<Vote>) -> tendermint::SignedVote<Hashed> {
        let v = &vote.payload;
        let core = tendermint::Vote {
            round: Round::new(v.round),
            kind: match v.step {
                VoteStep::Prevote => VoteType::Prevote,
                VoteStep::Precommit => VoteType::Precommit,
            },
            value: match v.proposal_hash {
                Some(id) => NilOrVal::Val(id),
                None => NilOrVal::Nil,
            },
            voter: Member(member),
        };
        SignedMessage::new(core, vote.signature)
    }

    /// After every event: start, fire timeouts, propose, feed what became ready, adopt a
    /// certificate.
    fn progress(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.started_at.is_none() && self.admitted && now >= self.starts_at {
            self.started_at = Some(now);
            let outputs = self.core().start(Self::ms(now));
            self.carry(now, outputs, out);
            // What was held before the start (early messages, or a restart's replay).
            let votes: Vec<(usize, Signed<Vote>)> =
                self.votes.iter().map(|((_, _, member), vote)| (*member, (**vote).clone())).collect();
            for (member, vote) in votes {
                let outputs = self.core().on_vote(Self::ms(now), Self::core_vote(member, &vote));
                self.carry(now, outputs, out);
            }
        } else if self.started_at.is_some() {
            let outputs = self.core().tick(Self::ms(now));
            self.carry(now, outputs, out);
        }
        if self.started_at.is_none() {
            return;
        }
        self.feed_ready(now, out);
        self.try_propose(now, out);
        self.try_certificate(out);
    }

    /// Feeds the core every held proposal whose inputs are all held, with its validity.
    fn feed_ready(&mut self, now: u64, out: &mut Vec<Action>) {
        let ready: Vec<u32> = self
            .proposals
            .iter()
            .filter(|(_, held)| {
                !held.fed && self.kind.ready() && self.holds_inputs(&held.signed.payload.proposal.payload)
            })
            .map(|(round, _)| *round)
            .collect();
        for round in ready {
            let held = self.proposals.get_mut(&round).expect("listed above");
            held.fed = true;
            let held = held.clone();
            let validity = self.validity(&held, out);
            let rp = &held.signed.payload;
            let own = held.signed.signer == self.committee.members()[self.me].ed25519;
            let answers = self.awaiting_value == Some(round) || self.fresh_sent == Some(round);
            if own && rp.pol_round.is_none() && answers {
                self.awaiting_value = None;
                self.fresh_sent = None;
                let outputs = self.core().propose_value(
                    Self::ms(now),
                    Round::new(round),
                    Hashed::new(rp.proposal.clone()),
                );
                self.carry(now, outputs, out);
            }
            // A re-proposal's polka, checked on arrival: the core counts it even where this
            // member holds another first prevote of an equivocator.
            if let Some(polka) = self.polka_certificate(rp) {
                let outputs = self.core().on_polka_certificate(Self::ms(now), polka);
                self.carry(now, outputs, out);
            }
            let proposer = self.committee.index_of(&held.signed.signer).expect("checked on arrival");
            let core = tendermint::Proposal {
                round: Round::new(round),
                value: tendermint::Candidate(Hashed::new(rp.proposal.clone())),
                pol_round: Round::from(rp.pol_round),
                proposer: Member(proposer),
            };
            let outputs = self.core().on_proposal(
                Self::ms(now),
                SignedMessage::new(core, held.signed.signature),
                validity,
            );
            self.carry(now, outputs, out);
        }
    }

    /// The polka a re-proposal carries, as the core takes it.
    fn polka_certificate(&self, rp: &RoundProposal) -> Option<tendermint::PolkaCertificate<Hashed>> {
        let pol_round = rp.pol_round?;
        let polka_signatures = rp
            .polka
            .iter()
            .map(|e| {
                let member = self.committee.index_of(&e.signer)?;
                Some(malachitebft_core_types::PolkaSignature::new(Member(member), e.signature))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(malachitebft_core_types::PolkaCertificate {
            height: tendermint::HEIGHT,
            round: Round::new(pol_round),
            value_id: rp.proposal.hash(),
            polka_signatures,
        })
    }

    /// Tendermint's `valid(v)` for a held round proposal, with this member's restored lock.
    fn validity(&self, held: &HeldProposal, out: &mut Vec<Action>) -> Validity {
        let rp = &held.signed.payload;
        let candidate = &rp.proposal;
        let inputs = self.inputs_of(&candidate.payload).expect("fed only when held");
        let verdict = self
            .kind
            .check(&self.committee, &self.network_id, &self.spec, candidate, &inputs)
            .and_then(|()| {
                // The round proposal's signer signed it; a re-proposed candidate's first
                // proposer's signature is checked here (the network layer checks the outer one).
                candidate.verify(&self.network_id).map_err(|_| CertifyError::BadSignature {
                    signer: candidate.signer,
                    role: Role::Proposer,
                })
            })
            .and_then(|()| match candidate.payload.source {
                // A report carries no challenge window.
                ProposalSource::Report { .. } => Ok(()),
                _ => check_challenge_deadline(&candidate.payload, self.params.challenge_period_secs),
            })
            .and_then(|()| self.check_date(held));
        if let Err(reason) = verdict {
            out.push(Action::Rejected { from: candidate.signer, reason });
            return Validity::Invalid;
        }
        let locked_elsewhere = self.own_lock.is_some_and(|(round, id)| {
            id != candidate.hash() && rp.pol_round.is_none_or(|pol_round| pol_round < round)
        });
        if locked_elsewhere {
            return Validity::Invalid;
        }
        Validity::Valid
    }

    /// A fresh candidate is dated by its leader's clock when it proposed: not after this
    /// member's clock when it arrived (plus skew), and not before it by more than the skew and
    /// the round's length (a leader cannot shorten the challenge window by more than a round; a
    /// round lasts longer each round, so a slow network still gets a valid proposal through).
    /// A re-proposed candidate was dated by the members of its polka.
    fn check_date(&self, held: &HeldProposal) -> Result<(), CertifyError> {
        let rp = &held.signed.payload;
        if rp.pol_round.is_some() {
            return Ok(());
        }
        let proposed_at = rp.proposal.payload.proposed_at;
        let arrived = held.arrived_at.max(self.starts_at);
        let skew = self.params.max_clock_skew_secs;
        let late = skew.saturating_add(self.timeouts.round_length(rp.round).as_secs());
        if proposed_at > arrived.saturating_add(skew) {
            return Err(CertifyError::ClockSkew { proposed_at, now: arrived, max_skew: skew });
        }
        if proposed_at.saturating_add(late) < arrived {
            return Err(CertifyError::ClockSkew { proposed_at, now: arrived, max_skew: late });
        }
        Ok(())
    }

    /// The core asked this member for a value: a fresh candidate once q members' inputs with a
    /// value are held.
    fn try_propose(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(round) = self.awaiting_value else { return };
        if self.proposals.contains_key(&round) {
            return;
        }
        let proposal = match self.kind.own_candidate(self.settlement_id, round, now) {
            Some(own) => own,
            None => {
                let candidates = self
                    .observed
                    .iter()
                    .filter(|(member, _)| !self.input_equivocators.contains(member))
                    .filter_map(|(_, hash)| Some((*hash, self.inputs.value(hash).flatten()?)))
                    .collect();
                let Some(picked) = self.kind.pick(self.committee.q(), candidates) else { return };
                let (mut inputs, values): (Vec<B256>, Vec<_>) = picked.into_iter().unzip();
                inputs.sort_unstable();
                Proposal {
                    settlement_id: self.settlement_id,
                    round,
                    value: settlement_value(&values).expect("at least q ≥ 1 values"),
                    source: self.kind.source(),
                    inputs_root: merkle_root(&inputs),
                    inputs,
                    challenge_deadline: now.saturating_add(self.params.challenge_period_secs),
                    proposed_at: now,
                }
            }
        };
        // Asked once; the signed proposal comes back as an event and answers the core then.
        self.awaiting_value = None;
        self.fresh_sent = Some(round);
        out.push(Action::Propose(ProposalToSign {
            round,
            pol_round: None,
            candidate: Candidate::Fresh(proposal),
            polka: Vec::new(),
        }));
    }

    /// The inputs a candidate lists, or `None` while some are missing.
    fn inputs_of(&self, proposal: &Proposal) -> Option<Vec<Signed<I::Input>>> {
        proposal.inputs.iter().map(|h| self.inputs.get(h)).collect()
    }

    /// Whether every input a candidate lists is held.
    fn holds_inputs(&self, proposal: &Proposal) -> bool {
        proposal.inputs.iter().all(|h| self.inputs.contains(h))
    }

    /// A certificate from another member, once its inputs are held: the decision.
    fn try_certificate(&mut self, out: &mut Vec<Action>) {
        let Some(certificate) = self.pending_certificate.take() else { return };
        let Some(inputs) = self.inputs_of(&certificate.proposal.payload) else {
            self.pending_certificate = Some(certificate);
            return;
        };
        match self.kind.verify(&self.committee, &self.network_id, &self.spec, &certificate, &inputs) {
            Ok(_) => self.decided(*certificate, out),
            Err(reason) => {
                let from = certificate.proposal.signer;
                out.push(Action::Rejected { from, reason });
            }
        }
    }

    fn decided(&mut self, certificate: Certificate, out: &mut Vec<Action>) {
        if self.certificate.is_none() {
            let certificate = Arc::new(certificate);
            self.certificate = Some(Arc::clone(&certificate));
            self.release_rounds();
            out.push(Action::Certified(certificate));
        }
    }

    /// Carries out the core's outputs: votes and re-proposals to sign, values to propose, the
    /// decision.
    fn carry(
        &mut self,
        now: u64,
        outputs: Result<Vec<Output<Hashed>>, tendermint::Refused>,
        out: &mut Vec<Action>,
    ) {
        let outputs = match outputs {
            Ok(outputs) => outputs,
            Err(refused) => {
                tracing::debug!(settlement = %self.settlement_id, decision = ?self.decision, %refused, "not fed to the core");
                return;
            }
        };
        for output in outputs {
            match output {
                Output::Vote(vote) => {
                    let Some(round) = vote.round.as_u32() else { continue };
                    out.push(Action::Vote(Vote {
                        settlement_id: self.settlement_id,
                        decision: self.decision,
                        round,
                        step: match vote.kind {
                            VoteType::Prevote => VoteStep::Prevote,
                            VoteType::Precommit => VoteStep::Precommit,
                        },
                        proposal_hash: match vote.value {
                            NilOrVal::Val(id) => Some(id),
                            NilOrVal::Nil => None,
                        },
                    }));
                }
                Output::Propose(proposal) => {
                    let Some(round) = proposal.round.as_u32() else { continue };
                    // This member's fresh candidate is signed already and on its way back.
                    if self.proposals.contains_key(&round) {
                        continue;
                    }
                    let pol_round = proposal.pol_round.as_u32();
                    let polka = self.core().polka(proposal.pol_round, &proposal.value.0);
                    let members = self.committee.members();
                    let mut polka: Vec<Endorsement> = polka
                        .map(|polka| polka.polka_signatures)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|s| Endorsement { signer: members[s.address.0].ed25519, signature: s.signature })
                        .collect();
                    polka.sort_by_key(|e| e.signer);
                    out.push(Action::Propose(ProposalToSign {
                        round,
                        pol_round,
                        candidate: Candidate::Held(Arc::unwrap_or_clone(proposal.value.0.signed)),
                        polka,
                    }));
                }
                Output::GetValue(round) => {
                    self.awaiting_value = round.as_u32();
                    self.try_propose(now, out);
                }
                Output::Decided(decision) => {
                    let Some(round) = decision.round.as_u32() else { continue };
                    let members = self.committee.members();
                    let mut votes: Vec<Endorsement> = decision
                        .certificate
                        .commit_signatures
                        .iter()
                        .map(|s| Endorsement { signer: members[s.address.0].ed25519, signature: s.signature })
                        .collect();
                    votes.sort_by_key(|e| e.signer);
                    let certificate =
                        Certificate { proposal: Arc::unwrap_or_clone(decision.value.signed), round, votes };
                    self.decided(certificate, out);
                }
            }
        }
    }
}
