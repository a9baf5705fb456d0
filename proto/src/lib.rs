//! # fixd-proto
//!
//! Everything a third party needs to verify a fixd settlement, and nothing else: the wire and
//! signing types, their canonical encoding, the signature rules, the settlement methodology as
//! pure integer maths, and the payout maths of the P/N split. No I/O, no clock, no async, no
//! floating point. The node (`fixd-node`) and the dispute machine (`fixd-dispute`) build on it;
//! `fixd verify` uses only it.
//!
//! ## From trades to a settlement value
//!
//! ```text
//!  venue trades (exact decimals, ms times)                                  [types::venue]
//!        │ clean: drop zero price/size, outside (M−W, M], repeated ids       [methodology]
//!        ▼
//!  per venue ── window-wide weighted median, partitions traded
//!        │ exclude: < half the partitions traded, or > 5% from the cross-venue median
//!        ▼
//!  per partition (12 × 5 min) ── weighted median per venue ── median across venues
//!        │ a partition counts with ≥ min_venues venues
//!        ▼
//!  node value = ⌊mean of counted partitions⌋ (≥ 9 of 12) or "no value" + reason
//!        │ signed: Signed<Observation> = ed25519(BCS(tag) ‖ network_id ‖ BCS)  [signing]
//!        ▼
//!  proposal: median of ≥ q node values, Merkle root of observation hashes    [merkle]
//!        │ q = ⌊2n/3⌋+1 votes                                               [types::certificate]
//!        ▼
//!  certificate ──(challenge window, disputes: fixd-dispute)──▶ FinalReport
//!        │ EIP-712 + secp256k1 per member                                     [eip712]
//!        ▼
//!  SettlementOracle contract ──▶ P/N payout: p = min(1, S/x), n = 1 − p       [payout]
//! ```
//!
//! ## Modules
//! - [`calendar`]: integer calendar arithmetic for venue and fixture times.
//! - [`value`]: [`value::Wad`], exact `u128` × 10^18 decimals, and wei amounts.
//! - [`types`]: settlement spec and id, venue and trade, observation, proposal, vote,
//!   certificate, dispute, review vote, arbitrator ruling, final report, genesis and committee.
//! - [`encoding`]: canonical BCS, with size and depth limits on decoding.
//! - [`gossip`]: the gossip envelope, one signed message of any kind, and its wire encoding.
//! - [`hash`]: keccak-256 over BCS.
//! - [`signing`]: domain-separated ed25519, strict verification, and batch verification with
//!   identical verdicts.
//! - [`eip712`]: typed-data digests, secp256k1 signing and recovery for Ethereum keys.
//! - [`methodology`]: the settlement methodology of DESIGN section 4.
//! - [`merkle`]: the Merkle tree over observation hashes.
//! - [`certify`]: the certification rules: checking a proposal, a certificate and a proof bundle.
//! - [`payout`]: the P/N split in 256-bit integers.
//! - [`replay`]: deterministic venue trades from the committed minute-bar fixture, for tests and
//!   the replay venues.
//!
//! Test vectors for other languages live in `proto/tests/vectors/`, with a README that explains
//! each file.

pub mod calendar;
pub mod certify;
pub mod eip712;
pub mod encoding;
pub mod gossip;
pub mod hash;
pub mod merkle;
pub mod methodology;
pub mod payout;
pub mod replay;
pub mod signing;
pub mod types;
pub mod value;
