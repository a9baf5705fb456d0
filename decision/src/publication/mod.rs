//! From a certificate to a value on-chain (DESIGN 5.4-5.5): the challenge window, the final
//! report, its signatures, and who publishes it when. [`Publication`] is a pure machine per
//! settlement; the settlement [`crate::driver`] feeds it and the node carries its actions out and its chain service sends
//! the transactions.
//!
//! ```text
//!  certificate ─▶ Publication ─ fixd_dispute::SettlementDisputes (window, disputes, finality)
//!                    │ Final ─▶ SignReport: sign EIP-712 (secp256k1), record, flush, gossip
//!  gossip ─ report signatures (verified: member, ecrecover) ─▶ collected per member
//!                    │ ≥ q signatures and this member's turn ─▶ Publish ─▶ chain service
//!  chain service ─ OnChain (value, tx, block, confirmations) ─▶ Published once confirmed
//! ```
//!
//! # Rules
//! - **Window.** The certificate feeds the dispute machine at the proposal's `proposed_at`, so
//!   every member derives the same deadline (`proposed_at + challenge_period`, capped by the
//!   hard deadline) whatever its own arrival time, and a restarted member derives it again.
//! - **Disputes.** Disputes, review certificates and rulings are agreed events with agreed times
//!   ([`timeline`]); the dispute machine is a fold of them that lags the clock by
//!   `settle = max_clock_skew + round_timeout`. The [`crate::driver`] carries the dispute side
//!   out: intake from the API and gossip, the committee review, rulings.
//! - **Relays in time.** A relayed dispute or ruling counts in a member's own fold only if it
//!   reached the member in time: its `accepted_at` within `[received − (max_clock_skew +
//!   round_timeout), received + max_clock_skew]` of the member's clock at receipt (the bound a
//!   fresh proposal's date meets; the round timeout is the transport's share), and a dispute's
//!   also within its bond's block bounds. A relay dated outside it (backdated, or released late)
//!   is held as *late*: the member does not fold it on its own, but it accepts a report that
//!   counts it. So a member that was cut off when a relay went round (it gets the relay from
//!   catch-up) still prevotes the report of those that got it in time, and a relay nobody got in
//!   time counts only if a report decision takes it.
//! - **Report.** When the dispute machine says final, the member's [`FinalReport`] (the value,
//!   the certification it comes from, the bond outcomes) goes to the committee's report
//!   decision ([`Action::ReportReady`]): one more Tendermint instance, whose leader proposes its
//!   report and whose members prevote only a report their fold makes: of the relays in time,
//!   alone or with late ones (every subset of the late relays' disputes, up to
//!   [`MAX_LATE_DISPUTES`] of them; past that, each alone and all together). Once it is decided
//!   ([`Publication::decided`]) the member signs that report once, in the store slot
//!   (settlement, final report): recorded and flushed before it is gossiped. Nothing received
//!   after the decision changes it.
//! - **Signatures.** A gossiped report signature counts when its ed25519 author and its
//!   recovered secp256k1 signer are the same member and it signs exactly this member's report.
//!   The first valid signature of each member is kept; others are ignored.
//! - **Turns.** The publisher of turn `k` is `members[(leader + k) mod n]`, where `leader` led
//!   the final certificate's round and turn `k` runs over
//!   `[base + k·publish_timeout, base + (k+1)·publish_timeout)`; `base` is the moment of
//!   finality every member derives alike (the closing window's deadline, the hard deadline, or
//!   the ruling's agreed time) plus `settle`. In its turn, with q signatures, a member asks the chain service to
//!   publish; a publication already under way is kept going after the turn ends. The contract
//!   accepts one report per settlement, so two publishers at a turn's edge cost gas, not safety.
//! - **Batches.** The reports a member is to publish in its turns go through its [`batch`]
//!   batcher: those ready together (and without bond outcomes) are published in one
//!   `publishBatch` under q signatures over the batch, which each member gives only for reports
//!   it signed itself; a batch short of signatures is published report by report.
//! - **Confirmation.** The chain service reports what the contract holds. With
//!   `confirmations` blocks on top, the settlement is published. Another value on-chain is a
//!   [`Action::Conflict`]: loud, never overwritten.

pub mod batch;
mod machine;
#[cfg(test)]
mod tests;
pub mod timeline;

use alloy_primitives::{Address, B256};
use fixd_proto::eip712::EthSignature;
use fixd_proto::types::report::FinalReport;
use fixd_proto::value::Wad;
use serde::{Deserialize, Serialize};

pub use machine::Publication;

/// How many disputes with late relays a member tries every combination of, when it judges a
/// report ([`Action::ReportReady`]): 2^4 − 1 extra folds at most.
pub const MAX_LATE_DISPUTES: usize = 4;

/// The one slot of a member's final report per settlement: whatever round the report's value
/// was certified in (a review replaces the first certificate's round), a member signs one.
pub const FINAL_REPORT_ROUND: u32 = 0;

/// The timing of publication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicationParams {
    /// How long each member's publishing turn lasts.
    pub publish_timeout_secs: u64,
    /// Blocks on top of the publishing block, that one included, before it counts.
    pub confirmations: u64,
    /// How far the dispute machine lags the clock: `max_clock_skew + round_timeout`, so that
    /// every member holds an event before the machine passes its agreed time (see
    /// [`timeline`]).
    pub settle_secs: u64,
}

impl PublicationParams {
    pub fn from_protocol(params: &fixd_proto::types::genesis::ProtocolParams) -> Self {
        PublicationParams {
            publish_timeout_secs: params.publish_timeout_secs.max(1),
            confirmations: params.confirmations.max(1),
            settle_secs: params.max_clock_skew_secs.saturating_add(params.round_timeout_secs),
        }
    }
}

/// What the contract holds for a settlement, as the chain service last read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnChain {
    pub value: Wad,
    /// The transaction whose `ReportPublished` event stored the value.
    pub tx_hash: B256,
    pub block_number: u64,
    /// `head − block_number + 1`.
    pub confirmations: u64,
    /// Who sent the transaction.
    pub publisher: Address,
}

impl OnChain {
    /// Whether the publication has `required` confirmations (at least 1).
    pub fn is_confirmed(&self, required: u64) -> bool {
        self.confirmations >= required.max(1)
    }

    /// The one rule of "published": the contract holds `ours` with `required` confirmations.
    pub fn publishes(&self, ours: Wad, required: u64) -> bool {
        self.value == ours && self.is_confirmed(required)
    }
}

/// What the machine is told.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Event {
    /// The settlement's certificate: its round, proposal hash, value and `proposed_at`.
    Certified { round: u32, proposal_hash: B256, value: Wad, proposed_at: u64 },
    /// A certified review of a dispute round: its q votes in the certificate's order, and the
    /// certificate's round, proposal hash, value and `proposed_at`.
    ReviewCertified {
        votes: Vec<fixd_dispute::ReviewVoteCast>,
        round: u32,
        proposal_hash: B256,
        value: Wad,
        proposed_at: u64,
    },
    /// A dispute whose signature and bond have been checked, at its agreed time. `late`: its
    /// relay reached this member outside the receipt bound (see [`Publication`]).
    Dispute { filing: fixd_dispute::DisputeFiling, pool_wei: u128, accepted_at: u64, late: bool },
    /// An arbitrator's ruling whose signature has been checked, at its agreed time. `late` as
    /// for a dispute.
    Ruling { dispute_id: B256, value: Wad, upheld: bool, accepted_at: u64, late: bool },
    /// A gossiped (or this member's own) report signature; the ed25519 wrapper has been
    /// verified by the network layer, `author` is its signer's committee index.
    Signature { author: usize, signature: fixd_proto::eip712::ReportSignature },
    /// What the contract holds now (`None`: nothing published).
    Chain(Option<OnChain>),
    /// Time passed.
    Tick,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    /// The challenge window is open until `deadline` (exclusive).
    WindowOpened { round: u32, deadline: u64 },
    /// The reports this member would prevote in the committee's report decision changed:
    /// `reports` are what its fold makes, its own (the one it proposes) first, then those it
    /// makes with some of the relays that reached it late. The decision starts at `starts_at`
    /// (the agreed moment of finality plus the fold's lag). Empty when a late event took
    /// finality back before the decision.
    ReportReady { reports: Vec<FinalReport>, starts_at: u64 },
    /// The committee decided the report and this member is final: store the finality, sign this
    /// report with the member's secp256k1 key (record the slot and flush first), gossip it and
    /// feed it back as [`Event::Signature`].
    SignReport { report: FinalReport, finality: fixd_dispute::Finality },
    /// Ask the chain service to publish `report` with these signatures (any order; the service
    /// sorts them) in turn `turn`.
    Publish { report: FinalReport, signatures: Vec<(Address, EthSignature)>, turn: u64 },
    /// The contract holds the value with enough confirmations (emitted once).
    Published(OnChain),
    /// The contract holds another value than this member's final report. Nothing is sent.
    Conflict { on_chain: Wad, ours: Wad, tx_hash: B256 },
    /// A report signature that does not count, and why.
    Ignored { author: usize, reason: String },
    /// No value was ever certified by the hard deadline: nothing to publish.
    Failed { reason: String },
    /// Dispute round `dispute_round` goes to committee review, of the proposal `contested`,
    /// from the dispute filed at agreed time `at`: recompute, sign a review vote, certify.
    StartReview { dispute_round: u16, dispute_id: B256, contested: B256, at: u64 },
    /// Something the dispute machine decided (accepted, refused, review decided, escalated),
    /// at agreed time `at`: for the event stream and the metrics.
    Disputes { at: u64, action: fixd_dispute::Action },
    /// An event came so late that the dispute history this member already acted on changed.
    Revised,
}
