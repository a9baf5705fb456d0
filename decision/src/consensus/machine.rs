//! [`Certification`]: the per-settlement certification state machine. See the module docs of
//! [`crate::consensus`] for the rules.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::B256;
use fixd_proto::certify::{CertifyError, Role, check_challenge_deadline};
use fixd_proto::merkle::merkle_root;
use fixd_proto::methodology::settlement_value;
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{Certificate, Proposal, Vote};
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::settlement::{SettlementId, SettlementSpec};

use super::inputs::{Inputs, Observations, Review};
use super::{Action, ConsensusParams, Equivocation, Event, ROUNDS_AHEAD};
use fixd_proto::gossip::GossipMessage;

/// A leader's proposal as this member holds it.
#[derive(Clone, Debug)]
struct HeldProposal {
    signed: Signed<Proposal>,
    hash: B256,
    /// This node's clock when the proposal arrived.
    arrived_at: u64,
    /// Set once it has been checked for a vote (true: valid) or rejected.
    verdict: Option<bool>,
    /// Votes counted at the last failed certificate attempt, so it is not redone needlessly.
    certify_attempted_with: usize,
}

/// One settlement's certification, from observations (or a dispute's review votes) to a
/// certificate.
#[derive(Debug)]
pub struct Certification<I: Inputs = Observations> {
    kind: I,
    committee: Committee,
    me: usize,
    network_id: B256,
    spec: SettlementSpec,
    settlement_id: SettlementId,
    params: ConsensusParams,
    /// The current round; `None` before `observe_at`.
    round: Option<u32>,
    /// Every valid input (observation or review vote) kept, by hash.
    observations: BTreeMap<B256, Signed<I::Input>>,
    /// Each member's (first) input hash.
    observed: BTreeMap<usize, B256>,
    /// The leader's proposal per round.
    proposals: BTreeMap<u32, HeldProposal>,
    /// Per round, each member's vote.
    votes: BTreeMap<u32, BTreeMap<usize, Signed<Vote>>>,
    /// Rounds in which this member has proposed.
    proposed: BTreeSet<u32>,
    /// Rounds in which this member has voted, and for what.
    voted: BTreeMap<u32, B256>,
    /// Members caught equivocating: ignored from then on.
    equivocators: BTreeSet<usize>,
    certificate: Option<Certificate>,
}

impl Certification<Observations> {
    /// A machine for member `me` (its index in `committee`) certifying `spec` from the members'
    /// observations.
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
        Self::with_inputs(Observations, committee, me, network_id, spec, params)
    }
}

impl Certification<Review> {
    /// A machine for member `me` certifying the committee's review of one dispute round, from
    /// round `review.first_round` on. `params.challenge_period_secs` is the reopened window.
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
    ) -> Self {
        Self::with_inputs(review, committee, me, network_id, spec, params)
    }

    /// The review this machine certifies.
    pub fn review(&self) -> &Review {
        &self.kind
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
    ) -> Self {
        assert!(me < committee.n(), "member index {me} outside a committee of {}", committee.n());
        Certification {
            kind,
            settlement_id: spec.id(),
            committee,
            me,
            network_id,
            spec,
            params,
            round: None,
            observations: BTreeMap::new(),
            observed: BTreeMap::new(),
            proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            proposed: BTreeSet::new(),
            voted: BTreeMap::new(),
            equivocators: BTreeSet::new(),
            certificate: None,
        }
    }

    /// The current round, `None` before `observe_at`.
    pub fn round(&self) -> Option<u32> {
        self.round
    }

    /// The certificate, once certified.
    pub fn certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref()
    }

    /// The inputs kept, by hash (the inputs of a proof bundle).
    pub fn observations(&self) -> impl Iterator<Item = &Signed<I::Input>> {
        self.observations.values()
    }

    /// Members caught equivocating, by committee index.
    pub fn equivocators(&self) -> &BTreeSet<usize> {
        &self.equivocators
    }

    /// Observation hashes that the current round's proposal lists but this member does not
    /// hold: the network layer should fetch them from peers (catch-up).
    pub fn missing_inputs(&self) -> Vec<B256> {
        let Some(held) = self.round.and_then(|r| self.proposals.get(&r)) else { return vec![] };
        let inputs = &held.signed.payload.inputs;
        inputs.iter().filter(|h| !self.observations.contains_key(*h)).copied().collect()
    }

    /// When to send the next [`Event::Tick`]: the start of the next round (or of round 0).
    /// `None` once certified.
    pub fn next_wakeup(&self) -> Option<u64> {
        if self.certificate.is_some() {
            return None;
        }
        Some(match self.round {
            None => self.round_start(self.kind.first_round()),
            Some(r) => self.round_start(r.saturating_add(1)),
        })
    }

    /// Feeds one event at `now` (unix seconds, this node's clock) and returns what to do.
    pub fn on(&mut self, now: u64, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if self.certificate.is_some() {
            return out;
        }
        self.advance(now, &mut out);
        match event {
            Event::Proposal(proposal) => self.on_proposal(now, proposal, &mut out),
            Event::Vote(vote) => self.on_vote(vote, &mut out),
            Event::Tick => {}
            input => {
                if let Some(input) = I::input_of(input) {
                    self.on_observation(input, &mut out);
                }
            }
        }
        self.progress(now, &mut out);
        out
    }

    fn round_timeout(&self) -> u64 {
        self.params.round_timeout_secs.max(1)
    }

    fn round_start(&self, round: u32) -> u64 {
        self.spec.observe_at().saturating_add(u64::from(round).saturating_mul(self.round_timeout()))
    }

    /// The round `now` falls in; `None` before this certification's first round.
    fn round_at(&self, now: u64) -> Option<u32> {
        let since = now.checked_sub(self.spec.observe_at())?;
        let round = u32::try_from(since / self.round_timeout()).unwrap_or(u32::MAX);
        (round >= self.kind.first_round()).then_some(round)
    }

    /// Whether `round` belongs to an earlier certification of the settlement.
    fn before_first(&self, round: u32) -> bool {
        round < self.kind.first_round()
    }

    fn leader(&self, round: u32) -> usize {
        self.committee.leader(&self.settlement_id, round)
    }

    /// Moves to the round `now` falls in; rounds never go back.
    fn advance(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(at) = self.round_at(now) else { return };
        match self.round {
            Some(current) if at > current => {
                out.push(Action::RoundTimedOut {
                    round: current,
                    next_round: at,
                    next_leader: self.leader(at),
                });
                self.round = Some(at);
            }
            None => self.round = Some(at),
            Some(_) => {}
        }
    }

    /// Whether a proposal or vote for `round` is too far ahead to keep.
    fn too_far_ahead(&self, round: u32) -> bool {
        round > self.round.unwrap_or(self.kind.first_round()).saturating_add(ROUNDS_AHEAD)
    }

    /// The member index of an active (non-equivocating) member, or the rejection.
    fn member(&self, signer: &fixd_proto::signing::PublicKey, role: Role) -> Result<usize, CertifyError> {
        self.committee.index_of(signer).ok_or(CertifyError::NotAMember { signer: *signer, role })
    }

    fn verify<T: fixd_proto::signing::Signable>(
        &self,
        signed: &Signed<T>,
        role: Role,
    ) -> Result<(), CertifyError> {
        signed
            .verify(&self.network_id)
            .map_err(|_| CertifyError::BadSignature { signer: signed.signer, role })
    }

    fn on_observation(&mut self, obs: Signed<I::Input>, out: &mut Vec<Action>) {
        let from = obs.signer;
        let checked = match self.kind.belongs(&self.settlement_id, &obs) {
            Ok(()) => self.member(&from, Role::Observer).map_err(Some),
            Err(e) => Err(e),
        };
        let member = match checked {
            Ok(member) => member,
            Err(Some(reason)) => return out.push(Action::Rejected { from, reason }),
            Err(None) => return,
        };
        let hash = obs.hash();
        // An equivocator is ignored, except for an observation that a held proposal lists: the
        // leader may have used it before we caught the equivocation, and without it we could
        // never check (or vote for) that proposal. Only listed ones are kept, so memory stays
        // bounded.
        let caught = self.equivocators.contains(&member);
        if (caught && !self.listed(&hash)) || self.observations.contains_key(&hash) {
            return;
        }
        if let Err(reason) = self.verify(&obs, Role::Observer) {
            return out.push(Action::Rejected { from, reason });
        }
        // Kept even when it proves equivocation: another member's proposal may list it.
        self.observations.insert(hash, obs.clone());
        if caught {
            return;
        }
        match self.observed.get(&member) {
            None => {
                self.observed.insert(member, hash);
            }
            Some(first) => {
                let first = I::evidence(self.observations[first].clone());
                self.equivocation(member, first, I::evidence(obs), out);
            }
        }
    }

    fn on_proposal(&mut self, now: u64, proposal: Signed<Proposal>, out: &mut Vec<Action>) {
        let from = proposal.signer;
        let p = &proposal.payload;
        let round = p.round;
        let checked = (|| {
            if p.settlement_id != self.settlement_id {
                return Err(CertifyError::WrongSettlement {
                    expected: self.settlement_id,
                    got: p.settlement_id,
                });
            }
            if p.source != self.kind.source() {
                return Err(CertifyError::UnsupportedSource);
            }
            let member = self.member(&from, Role::Proposer)?;
            let leader = self.leader(round);
            if member != leader {
                let expected = self.committee.members()[leader].ed25519;
                return Err(CertifyError::WrongLeader { round, expected, got: from });
            }
            Ok(member)
        })();
        let member = match checked {
            Ok(member) => member,
            Err(reason) => return out.push(Action::Rejected { from, reason }),
        };
        if self.equivocators.contains(&member) || self.too_far_ahead(round) || self.before_first(round) {
            return;
        }
        let hash = proposal.hash();
        if let Some(held) = self.proposals.get(&round) {
            if held.hash != hash {
                if let Err(reason) = self.verify(&proposal, Role::Proposer) {
                    return out.push(Action::Rejected { from, reason });
                }
                let first = GossipMessage::Proposal(held.signed.clone());
                self.equivocation(member, first, GossipMessage::Proposal(proposal), out);
            }
            return;
        }
        if let Err(reason) = self.verify(&proposal, Role::Proposer) {
            return out.push(Action::Rejected { from, reason });
        }
        if member == self.me {
            // Our own, fed back by the shell (or replayed from the store after a restart).
            self.proposed.insert(round);
        }
        let held = HeldProposal {
            signed: proposal,
            hash,
            arrived_at: now,
            verdict: None,
            certify_attempted_with: 0,
        };
        self.proposals.insert(round, held);
    }

    fn on_vote(&mut self, vote: Signed<Vote>, out: &mut Vec<Action>) {
        let from = vote.signer;
        let v = &vote.payload;
        let round = v.round;
        let checked = (|| {
            if v.settlement_id != self.settlement_id {
                return Err(CertifyError::WrongSettlement {
                    expected: self.settlement_id,
                    got: v.settlement_id,
                });
            }
            self.member(&from, Role::Voter)
        })();
        let member = match checked {
            Ok(member) => member,
            Err(reason) => return out.push(Action::Rejected { from, reason }),
        };
        if self.equivocators.contains(&member) || self.too_far_ahead(round) || self.before_first(round) {
            return;
        }
        let hash = vote.hash();
        let first = self.votes.get(&round).and_then(|votes| votes.get(&member));
        if first.map(Signed::hash) == Some(hash) {
            return;
        }
        if let Err(reason) = self.verify(&vote, Role::Voter) {
            return out.push(Action::Rejected { from, reason });
        }
        if let Some(first) = first {
            let first = GossipMessage::Vote(first.clone());
            return self.equivocation(member, first, GossipMessage::Vote(vote), out);
        }
        if member == self.me {
            self.voted.entry(round).or_insert(v.proposal_hash);
        }
        self.votes.entry(round).or_default().insert(member, vote);
    }

    /// Whether a held proposal lists observation `hash` among its inputs.
    fn listed(&self, hash: &B256) -> bool {
        self.proposals.values().any(|held| held.signed.payload.inputs.contains(hash))
    }

    /// Records `member` as an equivocator and forgets its votes and proposals.
    fn equivocation(
        &mut self,
        member: usize,
        first: GossipMessage,
        second: GossipMessage,
        out: &mut Vec<Action>,
    ) {
        let signer = self.committee.members()[member].ed25519;
        out.push(Action::Equivocation(Equivocation { first, second }));
        self.equivocators.insert(member);
        for votes in self.votes.values_mut() {
            votes.remove(&member);
        }
        let led: Vec<u32> =
            self.proposals.iter().filter(|(_, p)| p.signed.signer == signer).map(|(r, _)| *r).collect();
        for round in led {
            self.proposals.remove(&round);
        }
    }

    /// After every event: propose, vote and certify as the state allows.
    fn progress(&mut self, now: u64, out: &mut Vec<Action>) {
        let Some(round) = self.round else { return };
        self.maybe_propose(now, round, out);
        self.maybe_vote(round, out);
        self.maybe_certify(out);
    }

    fn maybe_propose(&mut self, now: u64, round: u32, out: &mut Vec<Action>) {
        if self.leader(round) != self.me
            || self.proposed.contains(&round)
            || self.equivocators.contains(&self.me)
        {
            return;
        }
        let candidates = self
            .observed
            .iter()
            .filter(|(member, _)| !self.equivocators.contains(member))
            .filter_map(|(_, hash)| Some((*hash, I::value(&self.observations[hash].payload)?)))
            .collect();
        let Some(picked) = self.kind.pick(self.committee.q(), candidates) else { return };
        let (mut inputs, values): (Vec<B256>, Vec<_>) = picked.into_iter().unzip();
        inputs.sort_unstable();
        let proposal = Proposal {
            settlement_id: self.settlement_id,
            round,
            value: settlement_value(&values).expect("at least q ≥ 1 values"),
            source: self.kind.source(),
            inputs_root: merkle_root(&inputs),
            inputs,
            challenge_deadline: now.saturating_add(self.params.challenge_period_secs),
            proposed_at: now,
        };
        self.proposed.insert(round);
        out.push(Action::Propose(proposal));
    }

    /// The inputs `proposal` lists, or `None` while some are missing.
    fn inputs_of(&self, proposal: &Proposal) -> Option<Vec<Signed<I::Input>>> {
        proposal.inputs.iter().map(|h| self.observations.get(h).cloned()).collect()
    }

    fn maybe_vote(&mut self, round: u32, out: &mut Vec<Action>) {
        if self.voted.contains_key(&round) || self.equivocators.contains(&self.me) {
            return;
        }
        let Some(held) = self.proposals.get(&round) else { return };
        if held.verdict.is_some() {
            return;
        }
        let Some(inputs) = self.inputs_of(&held.signed.payload) else { return };
        // A proposal that came before its round began is judged as if it came then.
        let reference = held.arrived_at.max(self.round_start(round));
        let verdict = self
            .kind
            .check(
                &self.committee,
                &self.network_id,
                &self.spec,
                &held.signed,
                &inputs,
                Some(reference),
                self.params.max_clock_skew_secs,
            )
            .and_then(|()| check_challenge_deadline(&held.signed.payload, self.params.challenge_period_secs));
        let (from, hash) = (held.signed.signer, held.hash);
        let held = self.proposals.get_mut(&round).expect("held above");
        held.verdict = Some(verdict.is_ok());
        match verdict {
            Err(reason) => out.push(Action::Rejected { from, reason }),
            Ok(()) => {
                self.voted.insert(round, hash);
                out.push(Action::Vote(Vote {
                    settlement_id: self.settlement_id,
                    round,
                    proposal_hash: hash,
                }));
            }
        }
    }

    fn maybe_certify(&mut self, out: &mut Vec<Action>) {
        let q = self.committee.q();
        let rounds: Vec<u32> = self.proposals.keys().copied().collect();
        for round in rounds {
            let held = &self.proposals[&round];
            let Some(votes) = self.votes.get(&round) else { continue };
            let mut endorsements: Vec<_> = votes
                .values()
                .filter(|v| v.payload.proposal_hash == held.hash)
                .map(Signed::endorsement)
                .collect();
            if endorsements.len() < q || endorsements.len() == held.certify_attempted_with {
                continue;
            }
            let Some(inputs) = self.inputs_of(&held.signed.payload) else { continue };
            endorsements.sort_by_key(|e| e.signer);
            let certificate = Certificate { proposal: held.signed.clone(), votes: endorsements };
            let verdict =
                self.kind.verify(&self.committee, &self.network_id, &self.spec, &certificate, &inputs);
            if verdict.is_ok() {
                self.certificate = Some(certificate.clone());
                out.push(Action::Certified(certificate));
                return;
            }
            let attempted = certificate.votes.len();
            self.proposals.get_mut(&round).expect("held").certify_attempted_with = attempted;
        }
    }
}
