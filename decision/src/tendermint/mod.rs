//! One Tendermint instance per committee decision, on Malachite's pure core
//! (`arc-malachitebft-core-driver`, Quint-specified and model-based-tested): the lock and
//! valid-round rules, polkas, and the propose, prevote and precommit timeouts are the core's;
//! this module is the host side that the core expects.
//!
//! ```text
//!  signed proposal / vote (checked by the caller: membership, signature, domain)
//!        │ admitted here: a known member, a round within the window, the round's proposer,
//!        │ pol_round < round (the core asserts it), one value per proposer and round
//!        ▼
//!  Instance ─▶ core Driver::process ─▶ Output: Propose / Vote (sign, keep, send, feed back),
//!        ▲                                     GetValue (this member leads: propose a value),
//!        │                                     Decided (the value and its q precommits)
//!   tick(now) fires the timeouts the core scheduled (their deadlines are this member's clock)
//! ```
//!
//! # Rules kept here (the core trusts its input)
//! - **Members only.** A message whose author is not a committee index is refused.
//! - **The round's proposer only.** Round r's proposer is `(first + r) mod n`; a proposal from
//!   anyone else is refused (the core would panic on a second proposer in one round).
//! - **A bounded window of rounds.** Messages for rounds more than [`ROUNDS_AHEAD`] past this
//!   member's round are refused, so one member can add at most `ROUNDS_AHEAD + 1` rounds of
//!   messages past the honest rounds: per round at most one proposal per value and proposer,
//!   and two votes per member (the core keeps conflicting votes as evidence, at most three
//!   pairs per member).
//! - **Catching up.** When f+1 members have shown messages of rounds past that window, at least
//!   one of them honest, this member starts the lowest of those rounds (Tendermint's round
//!   skip, lifted over the window).
//! - **Certificates.** The core counts one vote per member and round, the first it receives; an
//!   equivocator's two votes can therefore show a quorum to some members and not to others.
//!   The host passes on the polka certificate with a re-proposal ([`Instance::polka`]) and
//!   the commit certificate with a decision ([`Decision`]); a member that receives
//!   one (signatures checked by the host) feeds it with [`Instance::on_polka_certificate`] or
//!   [`Instance::on_commit_certificate`], as Malachite's own engine does.
//! - **Timeouts** run on this member's clock: `now` in milliseconds, from [`Instance::tick`].

mod context;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};

use alloy_primitives::B256;
use malachitebft_core_driver::{Driver, Input, Output as CoreOutput};
use malachitebft_core_types::{
    ExtendedCommitCertificate, Round, SignedMessage, ThresholdParams, Timeout, Validity,
};

pub use context::{
    Candidate, Ctx, Decidable, Ed25519, HEIGHT, Height, Member, NoParts, Proposal, Timeouts, Validator,
    Validators, Vote,
};
pub use malachitebft_core_types::{NilOrVal, VoteType};

/// q prevotes of one round for one value id: proof that the value may be re-proposed and
/// unlocks members locked in an earlier round. A member that holds one passes it on with a
/// proposal that names its round: a Byzantine member's two prevotes may show the polka to
/// some members and not to others, and the certificate shows it to all.
pub type PolkaCertificate<V> = malachitebft_core_types::PolkaCertificate<Ctx<V>>;
/// q precommits of one round for one value id: the decision, as any member can check it.
pub type CommitCertificate<V> = malachitebft_core_types::CommitCertificate<Ctx<V>>;

/// How many rounds past its own a member admits messages for.
pub const ROUNDS_AHEAD: u32 = 10;

/// A proposal with its author's signature.
pub type SignedProposal<V> = SignedMessage<Ctx<V>, Proposal<V>>;
/// A vote with its author's signature.
pub type SignedVote<V> = SignedMessage<Ctx<V>, Vote>;

/// What the instance asks of its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output<V: Decidable> {
    /// Sign this proposal (this member leads the round), keep it, send it, and feed it back
    /// with [`Instance::on_proposal`].
    Propose(Proposal<V>),
    /// Sign this vote, keep it, send it, and feed it back with [`Instance::on_vote`].
    Vote(Vote),
    /// This member leads `round` and holds no valid value: propose one with
    /// [`Instance::propose_value`].
    GetValue(Round),
    /// The committee decided: the value, the round, and the q precommits that decided it.
    Decided(Decision<V>),
}

/// A decided value with its proof: the commit certificate, q precommits of one round for its
/// id, to pass on to members that have not decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision<V: Decidable> {
    pub round: Round,
    pub value: V,
    pub certificate: CommitCertificate<V>,
}

/// Why a message is not admitted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not a committee member")]
    NotMember(Member),
    #[error("a message without a round")]
    NoRound,
    #[error("round {round} is more than {ROUNDS_AHEAD} rounds past this member's round {current}")]
    TooFarAhead { round: u32, current: u32 },
    #[error("{from} does not lead round {round}; {leader} does")]
    NotProposer { from: Member, round: u32, leader: Member },
    #[error("pol_round {pol_round} is not below the proposal's round {round}")]
    PolRoundNotBelow { pol_round: i64, round: u32 },
    #[error("the Tendermint core refused the input: {0}")]
    Core(String),
}

/// One committee decision in progress at one member.
pub struct Instance<V: Decidable> {
    driver: Driver<Ctx<V>>,
    ctx: Ctx<V>,
    n: usize,
    f: usize,
    timeouts: Timeouts,
    /// Timeouts the core scheduled: deadline (unix ms) and timeout.
    timers: Vec<(u64, Timeout)>,
    /// The highest round each member has shown, for catching up past the window.
    highest: BTreeMap<Member, u32>,
    decision: Option<Decision<V>>,
    started: bool,
}

impl<V: Decidable> std::fmt::Debug for Instance<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("round", &self.driver.round())
            .field("step", &self.driver.step())
            .field("decided", &self.decision.is_some())
            .finish()
    }
}

impl<V: Decidable> Instance<V> {
    /// The instance of member `me` in a committee with these validators, whose round-0
    /// proposer is `first_proposer`. Nothing runs before [`Instance::start`].
    pub fn new(validators: Validators, me: usize, first_proposer: usize, timeouts: Timeouts) -> Self {
        let n = validators.0.len();
        let ctx = Ctx::new(first_proposer);
        let driver = Driver::new(ctx.clone(), HEIGHT, validators, Member(me), ThresholdParams::default());
        Instance {
            driver,
            ctx,
            n,
            f: n.saturating_sub(1) / 3,
            timeouts,
            timers: Vec::new(),
            highest: BTreeMap::new(),
            decision: None,
            started: false,
        }
    }

    /// The proposer of round 0.
    pub fn first_proposer(&self) -> usize {
        self.ctx.first_proposer
    }

    /// The round this member is in (`None` before the start).
    pub fn round(&self) -> Option<u32> {
        self.driver.round().as_u32()
    }

    /// The decision, once there is one.
    pub fn decision(&self) -> Option<&Decision<V>> {
        self.decision.as_ref()
    }

    /// The value this member is locked on, with its round, if any.
    pub fn locked(&self) -> Option<(u32, &V)> {
        let locked = self.driver.round_state().locked.as_ref()?;
        Some((locked.round.as_u32()?, &locked.value.0))
    }

    /// Starts round 0 at `now_ms`.
    pub fn start(&mut self, now_ms: u64) -> Result<Vec<Output<V>>, Refused> {
        if self.started {
            return Ok(Vec::new());
        }
        self.started = true;
        self.run(now_ms, self.new_round(Round::ZERO))
    }

    /// A proposal, signed by its author (checked by the caller).
    pub fn on_proposal(
        &mut self,
        now_ms: u64,
        proposal: SignedProposal<V>,
        validity: Validity,
    ) -> Result<Vec<Output<V>>, Refused> {
        let round = self.admit(proposal.proposer, proposal.round)?;
        let leader = Member(self.ctx.proposer_of(proposal.round, self.n));
        if proposal.proposer != leader {
            return Err(Refused::NotProposer { from: proposal.proposer, round, leader });
        }
        if proposal.pol_round.as_i64() >= i64::from(round) {
            return Err(Refused::PolRoundNotBelow { pol_round: proposal.pol_round.as_i64(), round });
        }
        self.run(now_ms, Input::Proposal(proposal, validity))
    }

    /// A prevote or precommit, signed by its author (checked by the caller).
    pub fn on_vote(&mut self, now_ms: u64, vote: SignedVote<V>) -> Result<Vec<Output<V>>, Refused> {
        self.admit(vote.voter, vote.round)?;
        self.run(now_ms, Input::Vote(vote))
    }

    /// The value this member proposes for `round`, which it leads ([`Output::GetValue`]).
    pub fn propose_value(&mut self, now_ms: u64, round: Round, value: V) -> Result<Vec<Output<V>>, Refused> {
        self.run(now_ms, Input::ProposeValue(round, Candidate(value)))
    }

    /// Fires every timeout due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) -> Result<Vec<Output<V>>, Refused> {
        let (due, later): (Vec<_>, Vec<_>) = self.timers.drain(..).partition(|(at, _)| *at <= now_ms);
        self.timers = later;
        let mut outputs = Vec::new();
        for (_, timeout) in due {
            outputs.extend(self.run(now_ms, Input::TimeoutElapsed(timeout))?);
        }
        Ok(outputs)
    }

    /// The polka certificate this member holds for `value` at `round`, to pass on with a
    /// proposal whose `pol_round` is `round`.
    pub fn polka(&self, round: Round, value: &V) -> Option<PolkaCertificate<V>> {
        self.driver.polka_certificate(round, &value.id()).cloned()
    }

    /// A polka certificate from another member, its signatures checked by the host.
    pub fn on_polka_certificate(
        &mut self,
        now_ms: u64,
        certificate: PolkaCertificate<V>,
    ) -> Result<Vec<Output<V>>, Refused> {
        self.admit_certificate(certificate.round, certificate.polka_signatures.iter().map(|s| s.address))?;
        self.run(now_ms, Input::PolkaCertificate(certificate))
    }

    /// A commit certificate from another member, its signatures checked by the host. It decides
    /// once this member holds the proposal of that round and value.
    pub fn on_commit_certificate(
        &mut self,
        now_ms: u64,
        certificate: CommitCertificate<V>,
    ) -> Result<Vec<Output<V>>, Refused> {
        self.admit_certificate(certificate.round, certificate.commit_signatures.iter().map(|s| s.address))?;
        let extended = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
            certificate,
            Default::default(),
        );
        self.run(now_ms, Input::CommitCertificate(extended))
    }

    /// A certificate's round must be defined and its signers members (the host has checked
    /// the signatures and the count).
    fn admit_certificate(
        &self,
        round: Round,
        mut signers: impl Iterator<Item = Member>,
    ) -> Result<(), Refused> {
        round.as_u32().ok_or(Refused::NoRound)?;
        match signers.find(|m| m.0 >= self.n) {
            Some(stranger) => Err(Refused::NotMember(stranger)),
            None => Ok(()),
        }
    }

    /// The earliest armed timeout, for a host that sleeps until then.
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.iter().map(|(at, _)| *at).min()
    }

    /// Checks the author and the round of a message; returns its round. Records the round the
    /// author has shown, and catches up if f+1 members are past the window.
    fn admit(&mut self, author: Member, round: Round) -> Result<u32, Refused> {
        if author.0 >= self.n {
            return Err(Refused::NotMember(author));
        }
        let round = round.as_u32().ok_or(Refused::NoRound)?;
        let shown = self.highest.entry(author).or_insert(round);
        *shown = (*shown).max(round);
        let current = self.round().unwrap_or(0);
        if round > current.saturating_add(ROUNDS_AHEAD) {
            return Err(Refused::TooFarAhead { round, current });
        }
        Ok(round)
    }

    /// The round that f+1 members have all reached, if it is past the window: at least one of
    /// them is honest, so the committee is there.
    fn catch_up_round(&self) -> Option<u32> {
        let current = self.round()?;
        let mut shown: Vec<u32> = self.highest.values().copied().collect();
        shown.sort_unstable_by(|a, b| b.cmp(a));
        let round = *shown.get(self.f)?;
        (round > current.saturating_add(ROUNDS_AHEAD)).then_some(round)
    }

    fn new_round(&self, round: Round) -> Input<Ctx<V>> {
        Input::NewRound(HEIGHT, round, Member(self.ctx.proposer_of(round, self.n)))
    }

    /// Feeds one input to the core and follows its outputs: new rounds and timeouts are handled
    /// here, the rest goes to the host.
    fn run(&mut self, now_ms: u64, input: Input<Ctx<V>>) -> Result<Vec<Output<V>>, Refused> {
        if !self.started {
            // Before round 0 there is no proposer, and the core would refuse or drop.
            return Ok(Vec::new());
        }
        let mut queue = VecDeque::from([input]);
        if let Some(round) = self.catch_up_round() {
            queue.push_back(self.new_round(Round::new(round)));
        }
        let mut outputs = Vec::new();
        while let Some(input) = queue.pop_front() {
            let produced = self.driver.process(input).map_err(|e| Refused::Core(e.to_string()))?;
            for output in produced {
                match output {
                    CoreOutput::NewRound(_, round) => queue.push_back(self.new_round(round)),
                    CoreOutput::ScheduleTimeout(timeout) => {
                        let wait =
                            u64::try_from(self.timeouts.duration(timeout).as_millis()).unwrap_or(u64::MAX);
                        self.timers.push((now_ms.saturating_add(wait), timeout));
                    }
                    CoreOutput::Propose(proposal) => outputs.push(Output::Propose(proposal)),
                    CoreOutput::Vote(vote) => outputs.push(Output::Vote(vote)),
                    CoreOutput::GetValue(_, round, _) => outputs.push(Output::GetValue(round)),
                    CoreOutput::Decide(_, proposal) => {
                        let (round, id) = (proposal.round, proposal.value.0.id());
                        // Decided on precommits this member counted, or on a certificate it was given.
                        let certificate = match self.driver.commit_certificate(round, &id) {
                            Some(certificate) => certificate.trim_vote_extensions(),
                            None => {
                                let precommits = self.driver.restore_precommits(round, &id);
                                ExtendedCommitCertificate::from_votes(HEIGHT, round, id, precommits)
                                    .trim_vote_extensions()
                            }
                        };
                        let decision = Decision { round, value: proposal.value.0, certificate };
                        if self.decision.is_none() {
                            self.decision = Some(decision.clone());
                            outputs.push(Output::Decided(decision));
                        }
                    }
                }
            }
        }
        Ok(outputs)
    }
}

/// The validator set of a committee, from its members' ed25519 keys in genesis order.
pub fn validators(committee: &fixd_proto::types::genesis::Committee) -> Validators {
    Validators(
        committee
            .members()
            .iter()
            .enumerate()
            .map(|(i, m)| Validator { address: Member(i), public_key: m.ed25519 })
            .collect(),
    )
}

/// The id of a value given as canonical bytes: keccak256, for [`Decidable::id`].
pub fn id_of_bytes(bytes: &[u8]) -> B256 {
    alloy_primitives::keccak256(bytes)
}
