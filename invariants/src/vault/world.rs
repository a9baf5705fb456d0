//! Who takes part in the vault's run, and where its contracts live: the same relayer and keys as
//! the oracle's run ([`crate::world`]), so the oracle is at `world().oracle` and reports are
//! signed over the same EIP-712 domain.
//!
//! | id | who | kind |
//! |---|---|---|
//! | 0, 1, 2 | Alice, Bob, Carol | plain EOAs (the oracle run's actors 0 to 2) |
//! | 3, 4, 5 | three `PNHolder` contracts | holders with code: accept, re-enter `merge` or `redeem`, or refuse payment |
//!
//! The relayer deploys, in this order, `SettlementOracle` (nonce 0), `SettlementReader` (1),
//! `PNVault` (2) and the three `PNHolder`s (3 to 5); then it creates the series and sends every
//! call a holder makes (`PNHolder.split`, `merge`, `redeem`, `transfer`, `setMode`) and every
//! publication.

use std::sync::OnceLock;

use alloy_primitives::{Address, B256, U256, keccak256};
use fixd_proto::types::settlement::{Index, MethodologyParams, SettlementSpec};

use crate::world::world;

/// Plain EOAs.
pub const EOAS: usize = 3;
/// `PNHolder` contracts.
pub const HOLDERS: usize = 3;
/// Every actor: the EOAs, then the holders.
pub const ACTORS: usize = EOAS + HOLDERS;

/// One of the vault run's [`ACTORS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Actor(pub u8);

impl Actor {
    /// Every actor, in id order.
    pub fn all() -> impl Iterator<Item = Actor> {
        (0..ACTORS as u8).map(Actor)
    }

    pub fn is_eoa(self) -> bool {
        usize::from(self.0) < EOAS
    }

    /// Which holder contract the actor is (0 to [`HOLDERS`]), if it is one.
    pub fn holder(self) -> Option<usize> {
        usize::from(self.0).checked_sub(EOAS)
    }

    pub fn address(self) -> Address {
        match self.holder() {
            None => world().actors[usize::from(self.0)],
            Some(h) => vault_world().holders[h],
        }
    }
}

/// The consumer contracts' addresses, the same in every case.
#[derive(Debug)]
pub struct VaultWorld {
    pub reader: Address,
    pub vault: Address,
    pub holders: [Address; HOLDERS],
}

/// The addresses of every case (the relayer's deployments after the oracle).
pub fn vault_world() -> &'static VaultWorld {
    static WORLD: OnceLock<VaultWorld> = OnceLock::new();
    WORLD.get_or_init(|| {
        let relayer = world().relayer.address();
        VaultWorld {
            reader: relayer.create(1),
            vault: relayer.create(2),
            holders: std::array::from_fn(|h| relayer.create(3 + h as u64)),
        }
    })
}

/// The methodology the reader is deployed with: proto's defaults.
pub fn methodology() -> MethodologyParams {
    MethodologyParams::default()
}

/// The id of the ETH-USD settlement maturing at `maturity` under [`methodology`], as proto
/// computes it (`keccak256(BCS(SettlementSpec))`); the reader must agree.
pub fn settlement_id(maturity: u64) -> B256 {
    SettlementSpec { index: Index::EthUsd, maturity, params: methodology() }.id()
}

/// `PNVault.seriesIdOf`: `keccak256(abi.encode(settlementId, strike))`.
pub fn series_id(settlement: B256, strike: u128) -> B256 {
    keccak256([settlement.as_slice(), &U256::from(strike).to_be_bytes::<32>()].concat())
}
