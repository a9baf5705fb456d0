//! The concrete calls of the vault's run: who calls which entry point with what. The model
//! judges them; the harness sends them ([`super::run`]).

use alloy_primitives::{Address, B256, U256};

use super::world::Actor;

/// Which token of a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    P,
    N,
}

/// What a `PNHolder` does when the vault pays it (`PNHolder.Mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderMode {
    Accept = 0,
    /// Calls `merge` again for the same amount, and takes the payment whether or not it could.
    ReenterMerge = 1,
    /// Calls `redeem` again for the same amounts, likewise.
    ReenterRedeem = 2,
    /// Reverts: refuses the payment, so the call that pays it fails.
    Revert = 3,
}

/// Where a token transfer goes: an actor, the vault's own address (tokens stuck for good, still
/// counted in the supply), or the zero address (refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recipient {
    Actor(Actor),
    Vault,
    Zero,
}

/// Who signs a publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signers {
    /// `threshold` members of the committee, from member `start` on.
    Quorum { start: u8 },
    /// One member fewer: never publishes.
    TooFew { start: u8 },
}

/// A call only the vault may make, made by someone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// `PNToken.mint(caller, 1)`.
    Mint,
    /// `PNToken.burn(Alice, 1)`.
    Burn,
    /// `PNToken.initialize` again.
    Initialize,
}

/// A concrete call. EOAs send their own transactions; a holder's go through the relayer to
/// the holder contract, which makes the call (with the value the relayer sends, for `split`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultCall {
    /// `split{amount}(series)`.
    Split { by: Actor, series: u8, amount: u128 },
    /// `merge(series, amount)`.
    Merge { by: Actor, series: u8, amount: U256 },
    /// `redeem(series, pAmount, nAmount)`.
    Redeem { by: Actor, series: u8, p_amount: U256, n_amount: U256 },
    /// `PNToken.transfer(to, amount)` of the series' P or N.
    Transfer { by: Actor, series: u8, side: Side, to: Recipient, amount: U256 },
    /// The committee's report of the settlement of maturity `maturity` (an index into the
    /// case's maturities) at `value`: `publish`, or `publishBatch` of that one report.
    Publish { maturity: u8, value: u128, round: u32, signers: Signers, batch: bool },
    /// `PNHolder.setMode` by the relayer.
    SetMode { holder: Actor, mode: HolderMode },
    /// A token's vault-only entry point, called by an EOA.
    Forge { by: Actor, series: u8, side: Side, forgery: Forgery },
    /// `createSeries(maturity, strike)` by an EOA, where `maturity` indexes the case's maturities.
    CreateSeries { by: Actor, maturity: u8, strike: u128 },
}

impl VaultCall {
    /// The entry point, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            VaultCall::Split { .. } => "split",
            VaultCall::Merge { .. } => "merge",
            VaultCall::Redeem { .. } => "redeem",
            VaultCall::Transfer { .. } => "PNToken.transfer",
            VaultCall::Publish { batch: false, .. } => "publish",
            VaultCall::Publish { batch: true, .. } => "publishBatch",
            VaultCall::SetMode { .. } => "PNHolder.setMode",
            VaultCall::Forge { .. } => "PNToken (forged)",
            VaultCall::CreateSeries { .. } => "createSeries",
        }
    }
}

/// A series as deployed: its id, its settlement's and its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesOnChain {
    pub id: B256,
    pub settlement: B256,
    pub p: Address,
    pub n: Address,
}

impl SeriesOnChain {
    pub fn token(&self, side: Side) -> Address {
        match side {
            Side::P => self.p,
            Side::N => self.n,
        }
    }
}
