//! fixd-dispute: the challenge windows, disputes, committee reviews, escalation, arbitration and
//! bond ledger of one settlement (DESIGN sections 5.4 and 6), as a pure state machine.
//!
//! ```text
//!   node ── Event (certificate, dispute, review vote, ruling, tick) + now ──► SettlementDisputes
//!   node ◄──────── Vec<Action> (accept/refuse, review, certify, escalate, finalize) ──────┘
//! ```
//!
//! [`SettlementDisputes::on`]`(now, event) -> Vec<Action>` reads no clock, draws no randomness
//! and does no I/O: the node checks signatures and escrow, carries events in with its clock's
//! time, and carries the actions out. The same events at the same times give the same actions.
//!
//! # States and transitions
//!
//! ```text
//!  AwaitingCertificate ─── now ≥ H ─────────────────────────────────────────────► Failed
//!        │
//!        │ Certified: deadline = min(H, now + challenge_period)
//!        ▼
//!  ┌─► Challenge ─── now ≥ deadline, no dispute open ───────────────────────────► Final
//!  │     │     ▲                                                                   ▲ ▲ ▲
//!  │     │     │ Certified (the reviewed value, a later round):                    │ │ │
//!  │     │     │ deadline = min(H, max(deadline, now + reopened))                  │ │ │
//!  │     │     └──────────────────────── Recertifying ─── now ≥ H ─────────────────┘ │ │
//!  │     │                                    ▲                                      │ │
//!  │     │ first dispute of round k           │ upheld                               │ │
//!  │     ├─── k ≤ max_rounds ───► Review(k) ──┘                                      │ │
//!  │     │                        │  │ more disputes join                            │ │
//!  └─────┼─── rejected ───────────┘  ├─── now ≥ H ───────────────────────────────────┤ │
//!        │    deadline = min(H,      │                                               │ │
//!        │    max(deadline,          │ q values no longer possible                   │ │
//!        │    now + reopened))       ▼                                               │ │
//!        └─── k > max_rounds ───► Arbitration(k) ─── ruling, before H ───────────────┘ │
//!                                    │ more disputes join                              │
//!                                    └─── now ≥ H ─────────────────────────────────────┘
//! ```
//!
//! `H` is the hard deadline `M + hard_deadline_secs` and `k` the dispute round. A round's first
//! accepted dispute opens it; later disputes join it (see below). At `H` the last certified
//! value stands and the bonds of a round still open are refunded. Final and Failed are
//! terminal: after them disputes are refused ([`Refusal::Final`], [`Refusal::WindowClosed`] or
//! [`Refusal::Duplicate`]), other events are [`Ignored`], ticks say nothing, and the state
//! never changes again.
//!
//! # The rules
//!
//! **Time.** Windows are half-open: a dispute is accepted while `now < deadline`, and at
//! `now ≥ deadline` the window is closed. Every `on` call applies time first (passed deadlines
//! take effect before the event is looked at), then the event, then time again. The machine's
//! clock is the latest `now` it has seen; an event stamped earlier counts as happening then.
//! [`SettlementDisputes::next_wakeup`] says when to send the next [`Event::Tick`].
//!
//! **Windows.** The machine owns every deadline; no deadline ever moves backwards or past `H`.
//! - The first certificate opens `min(H, now + challenge_period_secs)`.
//! - A rejected round reopens the window on the same value until
//!   `min(H, max(deadline, now + reopened_challenge_period_secs))`: a review never takes away
//!   time the window had left.
//! - An upheld round makes the reviewed value the one to certify ([`Action::CertifyReviewed`]).
//!   The node certifies it as a new proposal (source `Review`, a later round) and feeds back
//!   [`Event::Certified`]; the window on it opens then, until
//!   `min(H, max(deadline, now + reopened_challenge_period_secs))`. Until that certificate
//!   arrives disputes are refused [`Refusal::NotCertified`], because a dispute must name the
//!   proposal hash it contests. A certificate with another value or a round not after the
//!   replaced one is ignored.
//! - When a window closes with no dispute open, the certified value is final
//!   ([`FinalBy::WindowClosed`]).
//!
//! **Disputes.** A dispute is accepted when, in this order of checks: its id is new
//! ([`Refusal::Duplicate`]: the same dispute filed twice changes nothing), a certified value is
//! open to disputes ([`Refusal::NotCertified`]), it names that value's proposal hash
//! ([`Refusal::WrongProposal`]), the window is open ([`Refusal::WindowClosed`]; also every
//! dispute at or after `H`), and its bond is at least the round's requirement
//! ([`Refusal::BondTooSmall`]; [`Refusal::BondTooLarge`] only guards the ledger's `u128`
//! sums against more wei than exist). A refused dispute changes no state and never enters the
//! ledger; its escrow is the contract's to give back.
//!
//! **Dispute rounds and escalation.** The first dispute accepted against a certified value
//! opens dispute round `k = rounds decided so far + 1`. Round `k ≤ max_rounds` is a committee
//! review ([`Action::StartReview`]); round `k = max_rounds + 1` goes to the arbitrator
//! ([`Action::EscalateToArbitrator`]). Round 1 needs `min_bond_wei`; round `k > 1` needs
//! `max(min_bond_wei, 2 × the largest bond of round k − 1)` (Reality.eth's doubling, counted
//! from the largest bond so that several small disputes cannot lower the bar). A result can be
//! disputed again in its window, upheld or rejected, and that is the next round.
//!
//! **Several disputes in one round.** While a round is open (review or arbitration), further
//! disputes against the same certified proposal, filed before the window's deadline, with a bond
//! of at least the round's requirement, **join** that round. They share the round's review (a
//! member's vote for any dispute of the round counts once for the whole round), its verdict and
//! its ruling (a ruling may name any dispute of the round). Each keeps its own bond and its own
//! outcome, paid in filing order. The next round's requirement is twice the largest bond of the
//! round.
//!
//! **Review.** See [`review`]: each member's first vote in the round counts; the vote that brings
//! the values to `q` decides with the median of those `q` values; the round is upheld when
//! `|reviewed − certified| × 10000 > dispute_tolerance_bp × certified` (exact) or when `q`
//! counted votes say the certified median does not recompute (the `miscomputed` check replaces
//! an invalid certificate even within tolerance). If so many members vote "no value" that `q`
//! values can no longer come, the review is inconclusive and the round goes to the arbitrator.
//! A review has no timeout of its own: the hard deadline ends it.
//!
//! **Arbitration.** The arbitrator's ruling on any dispute of the arbitration round is final at
//! once ([`FinalBy::Ruling`]): the ruling's value is the final value, and `upheld` decides the
//! round's bonds. A ruling at or after `H` is too late.
//!
//! **Hard deadline.** At `H` every settlement ends. If a value was ever certified, the last
//! certified value stands ([`FinalBy::HardDeadline`]); disputes of a round still under review
//! or arbitration are *unresolved* and get their bond back. If an upheld review's value was
//! still awaiting its certificate, the last certified value still stands (only certified
//! values become final) while the upheld disputes keep their upheld outcome. If nothing was
//! ever certified, the settlement fails ([`Action::Fail`]); no dispute was ever accepted then.
//!
//! **Ledger.** See [`ledger`]. Upheld: the bond back plus `⌊bond × reward_bp / 10000⌋`, capped
//! by the insurance pool. Rejected: `⌊bond / 2⌋` to the pool and the rest (with the odd wei)
//! burned. Unresolved: the bond back. The pool starts at
//! [`DisputeParams::insurance_pool_wei`]; a rejected bond's half is in the pool as soon as its
//! round is decided, so it can pay a later round's reward in the same settlement.
//! `Σbond = Σrefund + Σpooled + Σburned` and `pool_end = pool_start + Σpooled − Σreward ≥ 0`
//! hold to the wei. [`Action::Finalize`] carries one outcome per accepted dispute in filing
//! order, which is also decision order, and [`Finality::report`] makes the `FinalReport`.
//! The contract mirrors this by applying the outcomes in order to the pool it reserved for the
//! settlement (`insurance_pool_wei`), which then never goes negative.
//!
//! # Driving it from the node
//!
//! - Build one machine per settlement with [`DisputeParams::for_committee`] and
//!   [`SettlementDisputes::new`]; store it (it is `serde`) after each event.
//! - Feed every certificate, dispute (after checking its signature and escrow), review vote
//!   (with the member's committee index) and ruling (after checking the arbitrator's
//!   signature), with the node's clock. Send [`Event::Tick`] at
//!   [`SettlementDisputes::next_wakeup`].
//! - Members agree because they feed the same events. A review is decided by the first `q`
//!   values in the order they were fed, so the node must feed review votes in an order every
//!   member sees the same way (for example, the `q` votes collected in a review certificate),
//!   not simply in gossip arrival order.
//!
//! # What the tests prove
//!
//! `tests/it/properties.rs` runs thousands of random event sequences (random rules, times,
//! orders, duplicates and bonds) and checks: the ledger is conserved to the wei; there is at
//! most one final value; finality comes only after a deadline with no dispute open (or from a
//! ruling, or at `H`); every settlement is final by `H`; deadlines never move backwards;
//! nothing happens after final; a refused dispute changes no state; bonds follow the doubling
//! rule; the same events give the same actions. `tests/it/scenarios.rs` tells the stories
//! (upheld, rejected, escalated twice then ruled, a silent arbitrator, a dispute one second
//! late, a bond one wei short, and more) with every number worked out.

mod action;
mod event;
pub mod ledger;
mod machine;
mod params;
pub mod review;

pub use action::{Action, FailReason, FinalBy, Finality, Ignored, Refusal};
pub use event::{DisputeFiling, Event, ReviewVoteCast};
pub use ledger::{Decision, LedgerTotals};
pub use machine::{CertifiedValue, DisputeRecord, Phase, SettlementDisputes};
pub use params::DisputeParams;

/// Why a [`SettlementDisputes`] cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the committee is empty; a review needs at least one member")]
    EmptyCommittee,
    #[error("quorum {quorum} must be between 1 and the committee size {committee_size}")]
    Quorum { quorum: usize, committee_size: usize },
    #[error("min_bond_wei is 0; set it to at least 1 wei so that disputes cost something")]
    ZeroMinBond,
    #[error(
        "maturity {maturity} + hard_deadline_secs {hard_deadline_secs} overflows u64; \
         use unix seconds and a deadline in seconds"
    )]
    HardDeadlineOverflow { maturity: u64, hard_deadline_secs: u64 },
}
