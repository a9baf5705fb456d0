//! An invariant run of `contracts/SettlementOracle.sol` inside revm: random sequences of every
//! external entry point, by random actors, checked call by call against a Rust model of what the
//! contract promises. Beside it, [`vault`] runs the same way the P/N split vault
//! (`contracts/consumers/PNVault.sol`) over a real oracle, predicting every payout to the wei.
//! Its tests are the point (`cargo nextest run -p fixd-invariants`).
//!
//! ```text
//!   proptest-state-machine                 one case
//!  ┌──────────────────────┐  Step   ┌──────────────────────────────────────────────┐
//!  │ strategy: draws each │───────▶ │ plan: Step ──resolve(model)──▶ Call          │
//!  │ step from the model's│         │            │                    │           │
//!  │ state; shrinks a     │         │            ▼                    ▼           │
//!  │ failing sequence and │         │ model.apply(call)     chain (revm, Prague)  │
//!  │ keeps its seed in    │         │  must succeed?  ◀─agree?─▶ did it succeed?  │
//!  │ proptest-regressions │         │            └──── invariants (getters) ──────│
//!  └──────────────────────┘         └──────────────────────────────────────────────┘
//! ```
//!
//! # What a case does
//! It deploys `SettlementOracle` with a random committee (members ascending, threshold above two
//! thirds, of seven real secp256k1 keys), delay and reward rate, three `Payee` contracts and a
//! `Payee` that two EOAs delegate to with real EIP-7702 authorizations (type-4 transactions). It
//! then runs a random sequence of `postBond`, `fundPool`, `publish`, `publishBatch`, `reclaimBond`,
//! `withdraw`, `proposeCommittee`, `cancelCommittee`, `applyCommittee`, `transferOwnership`,
//! `acceptOwnership` and `renounceOwnership` by owners and strangers, `Payee.arm` in every mode
//! (accept, revert, burn all gas, re-enter), delegations set and cleared, and jumps of the clock.
//! Reports are signed by the committee keys over the EIP-712 digest of `fixd_proto::eip712`: half
//! meant to be valid, half spoiled (wrong bond or disputer, a split that does not conserve the
//! bond, a reward above the budget, an unknown or repeated escrow, a value past 128 bits; too few,
//! unordered, repeated, outsider, stale-committee, high-`s`, bad-`v` or wrong-digest signatures, a
//! ragged length). Batches carry one to six reports over the same settlements, often one settlement
//! twice or one already published, values often at the edges of `uint128`; spoiled, they are signed
//! over another batch (one report fewer or more, a value off by one, reversed) or over one report's
//! own digest, packed ragged or empty, or signed in any of the spoiled ways above. Each case ends
//! by publishing every settlement (those without escrows in one batch), reclaiming every escrow
//! left and withdrawing every credit.
//!
//! # What is asserted, after every call, and why
//! - **The model and the contract agree on success.** The model ([`model`]) decides from the
//!   contract's documented rules alone whether a call must succeed. So a report signed by a
//!   quorum of the committee in force, whose outcomes match their escrows and fit the budget
//!   (the reservation plus each `pooled` minus each `reward`, in order), must publish whatever
//!   the payees do; and nothing else may publish: not a report of the previous or pending
//!   committee, not one short of a quorum, not one with a spoiled signature. Likewise a batch
//!   packed whole and signed by such a quorum over its own `FinalReportBatch` digest must
//!   succeed, even if every report in it is already published: it publishes exactly its reports
//!   whose settlements were not (the first, of a settlement named twice) and returns their
//!   reservations to the pool; no other batch may change anything.
//! - **Solvency, to the wei:** the contract's balance equals `pool + totalReserved +
//!   totalEscrowed + totalCredits + totalBurned`, and each term equals the model's. A payout
//!   that is both paid and credited, or an escrow released twice, breaks it.
//! - **Reserved rewards are payable:** `Σ reservation(id) == totalReserved`, each reservation is
//!   the model's, and the balance covers them (it is part of the sum above).
//! - **Publications are final:** every settlement's `(value, publishedAt, status)` is the
//!   model's, which records them once, so a value that changes after publication fails.
//! - **Every escrow ends as exactly one of settled or reclaimed:** each escrow's `getEscrow` is
//!   the model's (open as posted, or gone), a settled escrow cannot be reclaimed nor a reclaimed
//!   one settled, and after the final drain none is open.
//! - **No ETH is made or lost:** gas is free on the test chain, so every account's balance is
//!   predicted to the wei, credits per account too, and the total over all accounts is constant.
//! - The owner, pending owner, committee in force, pending committee and the EIP-7702 code of
//!   the delegating EOAs are the model's.
//!
//! # The vault's run
//! [`vault`] deploys the oracle as above, `SettlementReader`, `PNVault` and `PNHolder`
//! contracts (accepting, re-entering, refusing), and drives `split`, `merge`, `redeem`, P/N
//! transfers and committee-signed publications at edge values, checking after every call that
//! the vault holds its total collateral and covers every claim, that no series pays out more
//! than was split in, that P and N supplies match until redemption starts, every balance to the
//! wei, and that dust stays within its rounding bound (see its docs).
//!
//! # Knobs
//! - `FIXD_INVARIANT_CALLS` (default 100,000, about 40 s on one core): how many calls
//!   (transactions) the run makes at least. 1,000,000 take about 7 minutes, past the 5 minutes
//!   after which the workspace's nextest profile ends a test: run those with `cargo test -p
//!   fixd-invariants --test it run::` or a nextest `--config-file` with a longer
//!   `slow-timeout`.
//! - `FIXD_ORACLE_ARTIFACT`, `FIXD_PAYEE_ARTIFACT`: run another build of the contracts (same ABI),
//!   such as a scratch copy with a planted bug ([`artifact`]).
//! - `FIXD_VAULT_CALLS` (default 50,000, about 20–30 s) for the vault's run, and
//!   `FIXD_VAULT_ARTIFACT`, `FIXD_READER_ARTIFACT`, `FIXD_PN_HOLDER_ARTIFACT` for its builds.

pub mod artifact;
pub mod call;
pub mod chain;
pub mod invariants;
pub mod model;
pub mod plan;
pub mod run;
pub mod sign;
pub mod stats;
pub mod strategy;
pub mod vault;
pub mod world;

use std::path::PathBuf;

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot read the contract artifact {path}: {source}; build it with `node contracts/build.mjs` or point {env} at one"
    )]
    ReadArtifact { path: PathBuf, env: &'static str, source: std::io::Error },
    #[error("the contract artifact {path} is not JSON: {source}; rebuild it with `node contracts/build.mjs`")]
    ParseArtifact { path: PathBuf, source: serde_json::Error },
    #[error(
        "the contract artifact {path} has no `bytecode` hex string; rebuild it with `node contracts/build.mjs`"
    )]
    NoBytecode { path: PathBuf },
}
