//! fixd's types as Malachite's [`Context`]: a committee member is an [`Address`] (its index),
//! every member has voting power 1, a decision is one height, and the value is whatever the
//! decision is about ([`Decidable`]). Signatures are fixd's ed25519 with its domain tags; the
//! core never signs or verifies, the host does.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use alloy_primitives::B256;
use fixd_proto::signing::{PublicKey, Signature};
use malachitebft_core_types::{
    self as core, NilOrVal, Round, SignedExtension, Timeout, TimeoutKind, VoteType, VotingPower,
};

/// A value a committee can decide: its id is a collision-resistant hash of its canonical bytes,
/// so that two different values never share one (votes carry only the id).
pub trait Decidable: Clone + fmt::Debug + Eq + Send + Sync + 'static {
    fn id(&self) -> B256;
}

/// A candidate value, ordered by id (the core needs an order; the id gives one every member
/// shares).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<V>(pub V);

impl<V: Decidable> PartialOrd for Candidate<V> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<V: Decidable> Ord for Candidate<V> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.id().cmp(&other.0.id())
    }
}

impl<V: Decidable> core::Value for Candidate<V> {
    type Id = B256;

    fn id(&self) -> B256 {
        self.0.id()
    }
}

/// A committee member, by its index in the genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Member(pub usize);

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member {}", self.0)
    }
}

impl core::Address for Member {}

/// Every decision is one instance of its own, at this one height.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

/// The height of every instance.
pub const HEIGHT: Height = Height(1);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl core::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = HEIGHT;

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A member as a validator: power 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: Member,
    pub public_key: PublicKey,
}

impl<V: Decidable> core::Validator<Ctx<V>> for Validator {
    fn address(&self) -> &Member {
        &self.address
    }

    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    fn voting_power(&self) -> VotingPower {
        1
    }
}

/// The committee, in genesis order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators(pub Vec<Validator>);

impl<V: Decidable> core::ValidatorSet<Ctx<V>> for Validators {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.0.len() as VotingPower
    }

    fn get_by_address(&self, address: &Member) -> Option<&Validator> {
        self.0.get(address.0)
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.0.get(index)
    }
}

/// A proposal of one round: `value`, with the round of the polka that justifies re-proposing it
/// (`pol_round`, nil for a fresh value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal<V> {
    pub round: Round,
    pub value: Candidate<V>,
    pub pol_round: Round,
    pub proposer: Member,
}

impl<V: Decidable> core::Proposal<Ctx<V>> for Proposal<V> {
    fn height(&self) -> Height {
        HEIGHT
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &Candidate<V> {
        &self.value
    }

    fn take_value(self) -> Candidate<V> {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Member {
        &self.proposer
    }
}

/// A prevote or precommit of one round, for a value id or nil.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub round: Round,
    pub kind: VoteType,
    pub value: NilOrVal<B256>,
    pub voter: Member,
}

impl<V: Decidable> core::Vote<Ctx<V>> for Vote {
    fn height(&self) -> Height {
        HEIGHT
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<B256> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<B256> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.kind
    }

    fn validator_address(&self) -> &Member {
        &self.voter
    }

    fn extension(&self) -> Option<&SignedExtension<Ctx<V>>> {
        None
    }

    fn take_extension(&mut self) -> Option<SignedExtension<Ctx<V>>> {
        None
    }

    fn extend(self, _extension: SignedExtension<Ctx<V>>) -> Self {
        self
    }
}

/// Values go whole in their proposal: no parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoParts;

impl<V: Decidable> core::ProposalPart<Ctx<V>> for NoParts {
    fn is_first(&self) -> bool {
        true
    }

    fn is_last(&self) -> bool {
        true
    }
}

/// fixd's ed25519, as the core names it. The host signs and verifies with fixd's domain tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl core::SigningScheme for Ed25519 {
    type DecodingError = String;
    type Signature = Signature;
    type PublicKey = PublicKey;
    type PrivateKey = [u8; 32];

    fn decode_signature(bytes: &[u8]) -> Result<Signature, String> {
        let bytes: [u8; 64] =
            bytes.try_into().map_err(|_| format!("a signature is 64 bytes, not {}", bytes.len()))?;
        Ok(Signature(bytes.into()))
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, String> {
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| format!("a public key is 32 bytes, not {}", bytes.len()))?;
        Ok(PublicKey(bytes.into()))
    }

    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.0.to_vec()
    }
}

/// The timeouts of a round, growing by `step` each round so that a committee whose messages
/// are slower than the first rounds' timeouts still meets in a later one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub propose: Duration,
    pub prevote: Duration,
    pub precommit: Duration,
    /// Added to each timeout per round.
    pub step: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::for_round_timeout(Duration::from_secs(10))
    }
}

impl Timeouts {
    /// Timeouts that fill about `round` per round at first: half for the proposal, a quarter
    /// each for the two vote steps; each grows by a quarter of `round` per round.
    pub fn for_round_timeout(round: Duration) -> Self {
        Timeouts { propose: round / 2, prevote: round / 4, precommit: round / 4, step: round / 4 }
    }

    /// The three timeouts of `round` together: how long a round lasts when nothing happens.
    pub fn round_length(&self, round: u32) -> Duration {
        let (base, step) = (self.propose + self.prevote + self.precommit, self.step.saturating_mul(3));
        base + step.saturating_mul(round)
    }

    /// How long to wait for `timeout`.
    pub fn duration(&self, timeout: Timeout) -> Duration {
        let base = match timeout.kind {
            TimeoutKind::Propose => self.propose,
            TimeoutKind::Prevote => self.prevote,
            TimeoutKind::Precommit => self.precommit,
            TimeoutKind::Rebroadcast => self.propose + self.prevote + self.precommit,
            TimeoutKind::FinalizeHeight(d) => d,
        };
        let round = timeout.round.as_u32().unwrap_or(0);
        base + self.step.saturating_mul(round)
    }
}

impl<V: Decidable> core::Timeouts<Ctx<V>> for Timeouts {
    fn duration_for(&self, timeout: Timeout) -> Duration {
        self.duration(timeout)
    }
}

/// The context of decisions about values of type `V`: the proposer of round r is
/// `proposer_of(r)`, a rotation every member derives alike.
pub struct Ctx<V> {
    /// The proposer of round 0; round r's is `(first + r) mod n`.
    pub first_proposer: usize,
    _value: PhantomData<fn() -> V>,
}

impl<V> Ctx<V> {
    pub fn new(first_proposer: usize) -> Self {
        Ctx { first_proposer, _value: PhantomData }
    }

    /// The proposer of `round` in a committee of `n`.
    pub fn proposer_of(&self, round: Round, n: usize) -> usize {
        let r = round.as_u32().unwrap_or(0) as usize;
        (self.first_proposer + r) % n.max(1)
    }
}

impl<V> Clone for Ctx<V> {
    fn clone(&self) -> Self {
        Ctx::new(self.first_proposer)
    }
}

impl<V> fmt::Debug for Ctx<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("first_proposer", &self.first_proposer).finish()
    }
}

impl<V: Decidable> core::Context for Ctx<V> {
    type Address = Member;
    type Height = Height;
    type ProposalPart = NoParts;
    type Proposal = Proposal<V>;
    type Validator = Validator;
    type ValidatorSet = Validators;
    type Timeouts = Timeouts;
    type Value = Candidate<V>;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(
        &self,
        validators: &'a Validators,
        _height: Height,
        round: Round,
    ) -> &'a Validator {
        &validators.0[self.proposer_of(round, validators.0.len())]
    }

    fn new_proposal(
        &self,
        _height: Height,
        round: Round,
        value: Candidate<V>,
        pol_round: Round,
        proposer: Member,
    ) -> Proposal<V> {
        Proposal { round, value, pol_round, proposer }
    }

    fn new_prevote(&self, _height: Height, round: Round, value: NilOrVal<B256>, voter: Member) -> Vote {
        Vote { round, kind: VoteType::Prevote, value, voter }
    }

    fn new_precommit(&self, _height: Height, round: Round, value: NilOrVal<B256>, voter: Member) -> Vote {
        Vote { round, kind: VoteType::Precommit, value, voter }
    }
}
