//! The vault's property run: `contracts/consumers/PNVault.sol` with its `PNToken` clones, over
//! `SettlementReader` and a real `SettlementOracle`, inside revm; random sequences of every
//! entry point by EOAs and holder contracts, checked call by call against a Rust model that
//! predicts every payout to the wei. Its test is `vault::pn_vault_invariants_hold` in
//! `tests/it/vault.rs`.
//!
//! ```text
//!  strategy ──VaultStep──▶ plan: resolve(model) ──VaultCall──┬──▶ model.apply: must succeed? pays what?
//!                                                           └──▶ run: revm ─▶ oracle ◀─ reader ◀─ vault ─▶ P, N
//!                                                                  agree? then invariants (getters, balances)
//! ```
//!
//! # What a case does
//! It deploys `SettlementOracle` with a random committee (the oracle run's deployment and
//! keys), `SettlementReader` with the BCS of `MethodologyParams::default()` (its
//! `settlementIdAt` must equal proto's `SettlementSpec::id`), `PNVault` over the reader, and
//! three `PNHolder`s, each accepting, re-entering `merge` or `redeem`, or refusing payment.
//! It creates one or two series (strikes from 1 wei and under a dollar through 1,000–5,000
//! dollars to `uint128` max) on each of one to three maturities (on the hour, or 0 or
//! `uint64` max). Then it runs a random sequence of `split` (0, 1 wei, odd amounts, up to
//! 2^100 wei), `merge`, `redeem` and P/N `transfer`s (amounts drawn as parts of the caller's
//! balance, with one over it and `2^256 − 1` now and then; transfers to the vault itself and to
//! the zero address), publications signed by the committee (`publish` or `publishBatch`, at 0,
//! 1, a strike or one wei either side, twice a strike, 1,000–5,000 dollars, `uint128` max, any
//! value; also one signature short, and again once published), holder mode changes, forged
//! `mint`/`burn`/`initialize` on the tokens and `createSeries` that must fail. Each case ends
//! by letting every holder take payments, publishing every settlement and redeeming every
//! balance.
//!
//! # What is asserted, after every call
//! - **The model and the contracts agree on success, and on every payout.** The model
//!   ([`model`]) decides from the NatSpec alone: redeem before publication, more than held,
//!   split after publication, payment to a refusing holder all fail; `redeem` pays exactly
//!   `⌊a·p/WAD⌋ + ⌊b·n/WAD⌋` with `(p, n)` from `fixd_proto::payout::pn_split` (its return
//!   value and the caller's balance both say so).
//! - **Solvency:** the vault's balance equals `totalCollateral`, `Σ getSeries(..).collateral`
//!   and the model's, and covers every outstanding claim (`P` supply before publication,
//!   `⌊P·p/WAD⌋ + ⌊N·n/WAD⌋` after); in exact terms `WAD · collateral ≥ P·p + N·n`.
//! - **No series pays out more than was split in:** its collateral is exactly split less paid.
//! - **P and N supplies are equal** until the series' first redemption.
//! - **Every balance, to the wei and the unit:** each actor's and the relayer's ETH (gas is
//!   free), each actor's and the vault's own P and N, each supply; `payouts` reads the model's
//!   value and shares; no ETH is made or lost.
//! - **Dust** (`dust(series)`) is collateral less claims, 0 before publication, and at most
//!   `2 · redemptions + 1` wei: each redemption rounds two products down (under 1 wei each), and
//!   the claims themselves round down by under 2 wei, so a series can hold 1 wei of dust
//!   before anyone redeems (3 wei split at p = n = ½).
//! - **Re-entry is refused:** a re-entering holder's `reentered` stays 0, and its `refused`
//!   counts every payment it got.
//!
//! # Knobs
//! - `FIXD_VAULT_CALLS` (default 50,000, about 20–30 s on one core): how many calls
//!   (transactions) the run makes at least. `scripts/campaign.sh` runs 1,000,000.
//! - `FIXD_VAULT_ARTIFACT`, `FIXD_READER_ARTIFACT`, `FIXD_PN_HOLDER_ARTIFACT` (and
//!   `FIXD_ORACLE_ARTIFACT`): run another build, such as a scratch copy with a planted bug
//!   ([`crate::artifact`]).

pub mod call;
pub mod invariants;
pub mod model;
pub mod plan;
pub mod run;
pub mod strategy;
pub mod world;
