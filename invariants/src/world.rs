//! Who takes part in a run: the committee keys, the actors and the relayer, each with a fixed
//! key and so a fixed address in every case.
//!
//! The actors are the disputers and callers:
//!
//! | id | who | kind |
//! |---|---|---|
//! | 0, 1, 2 | Alice, Bob, Carol | plain EOAs (Alice is the first owner) |
//! | 3, 4 | Dave, Erin | EOAs that delegate to `Payee` by EIP-7702 and back (each case draws how they start) |
//! | 5, 6, 7 | three `Payee` contracts | disputers with code, armed in any mode |
//!
//! The relayer is an EOA that deploys every contract (`SettlementOracle` at its nonce 0, the
//! `Payee` that EOAs delegate to at nonce 1, the three `Payee` actors at nonces 2 to 4) and then
//! sends the transactions that a contract actor cannot send itself (`Payee.post`, `arm`,
//! `withdrawTo`) and the EIP-7702 authorizations.

use std::sync::OnceLock;

use alloy_primitives::{Address, B256, keccak256};
use alloy_signer_local::PrivateKeySigner;

/// The chain id of the in-process chain (anvil's).
pub const CHAIN_ID: u64 = 31_337;
/// How many committee keys there are; committees are subsets of them.
pub const KEYS: usize = 7;
/// How many actors there are.
pub const ACTORS: usize = 8;
/// How many settlements a run touches.
pub const SETTLEMENTS: usize = 8;
/// How many dispute ids each settlement can have.
pub const DISPUTES: usize = 4;

/// One of the [`ACTORS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(pub u8);

/// What an actor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActorKind {
    /// An EOA that never has code.
    Eoa,
    /// An EOA that delegates to `Payee` (EIP-7702) and back.
    DelegatingEoa,
    /// A deployed `Payee` contract.
    Payee,
}

impl ActorId {
    /// Every actor, in id order.
    pub fn all() -> impl Iterator<Item = ActorId> {
        (0..ACTORS as u8).map(ActorId)
    }

    pub fn kind(self) -> ActorKind {
        match self.0 {
            0..=2 => ActorKind::Eoa,
            3 | 4 => ActorKind::DelegatingEoa,
            _ => ActorKind::Payee,
        }
    }

    /// Whether the actor sends its own transactions (an EOA, delegated or not).
    pub fn is_eoa(self) -> bool {
        self.kind() != ActorKind::Payee
    }

    pub fn address(self) -> Address {
        world().actors[usize::from(self.0)]
    }

    /// The actor's key; `None` for a contract.
    pub fn key(self) -> Option<&'static PrivateKeySigner> {
        world().actor_keys[usize::from(self.0)].as_ref()
    }
}

/// The fixed keys and addresses of a run.
#[derive(Debug)]
pub struct World {
    pub relayer: PrivateKeySigner,
    /// `SettlementOracle`, deployed by the relayer at its nonce 0.
    pub oracle: Address,
    /// The `Payee` that delegating EOAs point at, deployed at the relayer's nonce 1.
    pub payee_impl: Address,
    /// Actor addresses, by id.
    pub actors: [Address; ACTORS],
    actor_keys: [Option<PrivateKeySigner>; ACTORS],
    /// Committee keys, by index.
    pub keys: [PrivateKeySigner; KEYS],
}

impl World {
    /// The committee key whose address this is.
    pub fn key_of(&self, address: Address) -> Option<&PrivateKeySigner> {
        self.keys.iter().find(|k| k.address() == address)
    }
}

fn key(label: &str, index: usize) -> PrivateKeySigner {
    let secret: B256 = keccak256(format!("fixd invariants {label} {index}"));
    PrivateKeySigner::from_bytes(&secret).expect("a keccak digest is a valid secp256k1 secret")
}

/// The world of every run (keys are derived once).
pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let relayer = key("relayer", 0);
        let deployed = |nonce: u64| relayer.address().create(nonce);
        let actor_keys: [Option<PrivateKeySigner>; ACTORS] =
            std::array::from_fn(|i| ActorId(i as u8).is_eoa().then(|| key("actor", i)));
        let actors = std::array::from_fn(|i| match &actor_keys[i] {
            Some(k) => k.address(),
            None => deployed(2 + (i as u64 - 5)),
        });
        World {
            oracle: deployed(0),
            payee_impl: deployed(1),
            actors,
            actor_keys,
            keys: std::array::from_fn(|i| key("member", i)),
            relayer,
        }
    })
}

/// Settlement `i`'s id.
pub fn settlement_id(i: u8) -> B256 {
    static IDS: OnceLock<Vec<B256>> = OnceLock::new();
    IDS.get_or_init(|| (0..=u8::MAX).map(|i| keccak256([b"settlement".as_slice(), &[i]].concat())).collect())
        [usize::from(i)]
}

/// Dispute `j`'s id (the same ids serve every settlement: escrows are keyed by both).
pub fn dispute_id(j: u8) -> B256 {
    static IDS: OnceLock<Vec<B256>> = OnceLock::new();
    IDS.get_or_init(|| (0..=u8::MAX).map(|j| keccak256([b"dispute".as_slice(), &[j]].concat())).collect())
        [usize::from(j)]
}
