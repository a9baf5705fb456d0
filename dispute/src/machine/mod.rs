//! [`SettlementDisputes`]: one settlement's challenge windows, disputes, reviews, arbitration
//! and bond ledger, from its first certificate to its final value. See the crate docs for the
//! rules.

use alloy_primitives::B256;
use fixd_proto::types::report::BondOutcome;
use fixd_proto::value::Wad;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::action::{Action, FailReason, Finality};
use crate::event::{DisputeFiling, Event};
use crate::ledger::{Decision, Ledger, LedgerTotals};
use crate::params::DisputeParams;
use crate::review::Tally;

mod transitions;

/// Where a settlement stands. See the diagram in the crate docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// No certificate yet: disputes are refused.
    AwaitingCertificate,
    /// A certified value is open to disputes until the deadline.
    Challenge,
    /// A dispute round is under committee review; more disputes may join it.
    Review,
    /// An upheld review's value is being certified; disputes wait for its certificate.
    Recertifying,
    /// A dispute round is with the arbitrator; more disputes may join it.
    Arbitration,
    /// The value is final. Nothing changes any more.
    Final,
    /// The hard deadline passed with no certified value. Nothing changes any more.
    Failed,
}

/// The certified value in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CertifiedValue {
    pub round: u32,
    pub proposal_hash: B256,
    pub value: Wad,
    /// Unix seconds at which the certificate was accepted.
    pub certified_at: u64,
}

/// An accepted dispute and, once decided, its bond outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DisputeRecord {
    pub filing: DisputeFiling,
    /// The dispute round it joined (1-based; rounds past `max_rounds` are arbitration).
    pub dispute_round: u16,
    /// Unix seconds at which it was accepted.
    pub filed_at: u64,
    pub decision: Option<Decision>,
    pub outcome: Option<BondOutcome>,
}

/// The dispute round under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct OpenRound {
    number: u16,
    /// The bond every dispute of the round must post.
    #[serde(with = "fixd_proto::value::wei")]
    required_bond: u128,
    /// The largest bond posted in the round: the next round needs twice this.
    #[serde(with = "fixd_proto::value::wei")]
    largest_bond: u128,
    /// The round's first dispute, which the review and the arbitrator are asked about.
    first: B256,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
enum Stage {
    AwaitingCertificate,
    Challenge,
    Review { round: OpenRound, tally: Tally },
    Recertifying { value: Wad },
    Arbitration { round: OpenRound },
    Final(Finality),
    Failed(FailReason),
}

/// The dispute state machine of one settlement. Feed it every [`Event`] with [`Self::on`] and
/// carry out the [`Action`]s it returns. It reads no clock and does no I/O; the same events at
/// the same times always give the same actions. It is `serde`, so the node can store it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SettlementDisputes {
    params: DisputeParams,
    hard_deadline: u64,
    /// The latest time seen. An event stamped earlier is treated as happening at this time.
    clock: u64,
    certified: Option<CertifiedValue>,
    /// The challenge window's deadline (exclusive). Never moves backwards; never past the hard
    /// deadline.
    deadline: Option<u64>,
    stage: Stage,
    /// Every accepted dispute, in filing order.
    disputes: Vec<DisputeRecord>,
    /// Dispute rounds decided so far.
    rounds_decided: u16,
    /// The largest bond of the last decided round (0 before any).
    #[serde(with = "fixd_proto::value::wei")]
    last_round_bond: u128,
    ledger: Ledger,
    /// Σbond of accepted disputes not yet decided.
    #[serde(with = "fixd_proto::value::wei")]
    escrow_open: u128,
}

impl SettlementDisputes {
    /// A machine waiting for the settlement's first certificate.
    pub fn new(params: DisputeParams) -> Result<Self, Error> {
        params.validate()?;
        let hard_deadline = params.hard_deadline().unwrap_or(u64::MAX);
        Ok(SettlementDisputes {
            hard_deadline,
            clock: 0,
            certified: None,
            deadline: None,
            stage: Stage::AwaitingCertificate,
            disputes: Vec::new(),
            rounds_decided: 0,
            last_round_bond: 0,
            ledger: Ledger::new(params.insurance_pool_wei),
            escrow_open: 0,
            params,
        })
    }

    /// Handles one event at unix time `now` and returns what the node must do, in order.
    ///
    /// Time is applied first (a window or the hard deadline that has passed takes effect
    /// before the event is looked at), then the event, then time again (a decision may reopen
    /// a window that is already over). Never panics.
    pub fn on(&mut self, now: u64, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.is_terminal() {
            let now = now.max(self.clock);
            self.clock = now;
            self.advance(now, &mut out);
            if !self.is_terminal() {
                match event {
                    Event::Certified { round, proposal_hash, value } => {
                        self.on_certified(now, round, proposal_hash, value, &mut out)
                    }
                    Event::DisputeFiled(filing) => self.on_dispute(now, filing, &mut out),
                    Event::ReviewVote(vote) => self.on_vote(now, vote, &mut out),
                    Event::Ruling { dispute_id, value, upheld } => {
                        self.on_ruling(now, dispute_id, value, upheld, &mut out)
                    }
                    Event::Tick => {}
                }
                self.advance(now, &mut out);
                return out;
            }
        }
        self.answer_terminal(now.max(self.clock), &event, &mut out);
        out
    }

    // ----- reading the state -----

    /// The rules this machine follows.
    pub fn params(&self) -> &DisputeParams {
        &self.params
    }

    /// Where the settlement stands.
    pub fn phase(&self) -> Phase {
        match self.stage {
            Stage::AwaitingCertificate => Phase::AwaitingCertificate,
            Stage::Challenge => Phase::Challenge,
            Stage::Review { .. } => Phase::Review,
            Stage::Recertifying { .. } => Phase::Recertifying,
            Stage::Arbitration { .. } => Phase::Arbitration,
            Stage::Final(_) => Phase::Final,
            Stage::Failed(_) => Phase::Failed,
        }
    }

    /// True once the settlement is final or failed: nothing changes after that.
    pub fn is_terminal(&self) -> bool {
        matches!(self.stage, Stage::Final(_) | Stage::Failed(_))
    }

    /// The certified value in force, if any.
    pub fn certified(&self) -> Option<&CertifiedValue> {
        self.certified.as_ref()
    }

    /// The current challenge window's deadline (exclusive), once a value was certified.
    pub fn deadline(&self) -> Option<u64> {
        self.deadline
    }

    /// `M + hard_deadline_secs`: the settlement is final (or failed) at this time at the latest.
    pub fn hard_deadline(&self) -> u64 {
        self.hard_deadline
    }

    /// The latest time the machine has seen.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// When a [`Event::Tick`] will next change something, or `None` once terminal.
    pub fn next_wakeup(&self) -> Option<u64> {
        match self.stage {
            Stage::Final(_) | Stage::Failed(_) => None,
            Stage::Challenge => Some(self.deadline.unwrap_or(self.hard_deadline)),
            _ => Some(self.hard_deadline),
        }
    }

    /// The bond a dispute filed now must post, or `None` when no dispute can be accepted now
    /// (nothing certified, or terminal). It does not look at the window's deadline.
    pub fn required_bond(&self) -> Option<u128> {
        match &self.stage {
            Stage::Challenge => Some(self.next_round_bond()),
            Stage::Review { round, .. } | Stage::Arbitration { round } => Some(round.required_bond),
            _ => None,
        }
    }

    /// The dispute round under way, or else the number of rounds decided so far.
    pub fn dispute_round(&self) -> u16 {
        match &self.stage {
            Stage::Review { round, .. } | Stage::Arbitration { round } => round.number,
            _ => self.rounds_decided,
        }
    }

    /// Every accepted dispute, in filing order.
    pub fn disputes(&self) -> &[DisputeRecord] {
        &self.disputes
    }

    /// What the insurance pool holds now, after this settlement's decisions so far.
    pub fn insurance_pool(&self) -> u128 {
        self.ledger.pool()
    }

    /// The ledger of decided bonds so far.
    pub fn ledger(&self) -> LedgerTotals {
        self.ledger.totals()
    }

    /// Σbond of accepted disputes not decided yet.
    pub fn escrow_open(&self) -> u128 {
        self.escrow_open
    }

    /// The final value and bond outcomes, once final.
    pub fn finality(&self) -> Option<&Finality> {
        match &self.stage {
            Stage::Final(f) => Some(f),
            _ => None,
        }
    }
}
