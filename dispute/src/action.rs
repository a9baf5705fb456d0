//! What the machine asks the node to do: [`Action`], and why it refuses or ignores events.

use std::fmt;

use alloy_primitives::B256;
use fixd_proto::types::report::{BondOutcome, FinalReport};
use fixd_proto::types::settlement::SettlementId;
use fixd_proto::value::Wad;
use serde::{Deserialize, Serialize};

use crate::ledger::LedgerTotals;

/// One thing for the node to do (or to record, show and gossip), in the order given.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// A challenge window is open on this certified value until `deadline` (exclusive). Sent
    /// when a certificate is accepted and whenever a decided round reopens the window.
    WindowOpened { round: u32, proposal_hash: B256, value: Wad, deadline: u64 },
    /// The dispute is accepted into dispute round `dispute_round`; its bond is now part of the
    /// ledger. Gossip it and answer the disputer `202`.
    DisputeAccepted {
        dispute_id: B256,
        dispute_round: u16,
        #[serde(with = "fixd_proto::value::wei")]
        bond_wei: u128,
    },
    /// The dispute is refused and changed nothing. Answer the disputer with the reason.
    DisputeRefused { dispute_id: B256, reason: Refusal },
    /// Committee review of the certified proposal begins: each member recomputes and signs a
    /// review vote for one of the round's disputes.
    StartReview { dispute_round: u16, proposal_hash: B256, dispute_id: B256 },
    /// A review reached its verdict. `dispute_ids` are every dispute of the round.
    ReviewDecided { dispute_round: u16, reviewed: Wad, upheld: bool, dispute_ids: Vec<B256> },
    /// Certify `value` as a new proposal in a round after `after_round` (source
    /// `Review { dispute_id }`) and feed back [`crate::Event::Certified`]. Disputes are refused
    /// until then; the new window opens when the certificate comes back.
    CertifyReviewed { value: Wad, after_round: u32, dispute_id: B256 },
    /// The round goes to the arbitrator, who rules on `dispute_id` (any dispute of the round
    /// may be named in the ruling; all share it). `inconclusive_review` is true when a
    /// committee review could not reach `q` values.
    EscalateToArbitrator {
        dispute_round: u16,
        proposal_hash: B256,
        dispute_id: B256,
        inconclusive_review: bool,
    },
    /// The settlement is final. Sign and publish the [`FinalReport`] ([`Finality::report`]).
    Finalize(Finality),
    /// The hard deadline passed and no value was ever certified. Nothing to publish; the
    /// settlement needs the arbitrator outside this machine.
    Fail { reason: FailReason },
    /// A certificate, vote or ruling that changed nothing. Log it.
    Ignored { reason: Ignored },
}

/// The final value and every bond's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Finality {
    pub value: Wad,
    /// The round of the certificate in force when the value became final (for a ruling, the
    /// certificate the escalated dispute contested).
    pub round: u32,
    /// Unix seconds of the event that made it final.
    pub at: u64,
    pub by: FinalBy,
    /// One per accepted dispute, in filing order.
    pub outcomes: Vec<BondOutcome>,
    /// The bond ledger of the whole settlement.
    pub ledger: LedgerTotals,
}

impl Finality {
    /// The report the members sign and the contract accepts.
    pub fn report(&self, settlement_id: SettlementId) -> FinalReport {
        FinalReport { settlement_id, value: self.value, round: self.round, outcomes: self.outcomes.clone() }
    }
}

/// What made a settlement final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalBy {
    /// A challenge window closed with no dispute open.
    WindowClosed,
    /// The arbitrator ruled.
    Ruling,
    /// The hard deadline came first: the last certified value stands and open disputes are
    /// unresolved.
    HardDeadline,
}

/// Why a settlement failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// No value was certified before the hard deadline.
    NeverCertified,
}

/// Why a dispute was refused. A refused dispute changes nothing and never enters the ledger:
/// its escrow stays the contract's to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Refusal {
    /// The settlement is already final (or failed).
    Final,
    /// The same dispute id was accepted before.
    Duplicate,
    /// No certified value is open to disputes yet (before the first certificate, or while an
    /// upheld review's value is being certified).
    NotCertified,
    /// The dispute names a proposal that is not the one in force.
    WrongProposal { current: B256 },
    /// The challenge window closed at `deadline` (exclusive).
    WindowClosed { deadline: u64 },
    /// The bond is below the round's requirement.
    BondTooSmall {
        #[serde(with = "fixd_proto::value::wei")]
        required: u128,
        #[serde(with = "fixd_proto::value::wei")]
        offered: u128,
    },
    /// The bond would overflow the ledger (more wei than exist; never with real ETH).
    BondTooLarge {
        #[serde(with = "fixd_proto::value::wei")]
        max: u128,
        #[serde(with = "fixd_proto::value::wei")]
        offered: u128,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Final => write!(f, "the settlement is final and takes no more disputes"),
            Refusal::Duplicate => write!(f, "this dispute id was already accepted; nothing changed"),
            Refusal::NotCertified => write!(
                f,
                "no certified value is open to disputes yet; retry once the next certificate is out"
            ),
            Refusal::WrongProposal { current } => {
                write!(f, "the dispute names a proposal that is not in force; dispute proposal {current}")
            }
            Refusal::WindowClosed { deadline } => {
                write!(f, "the challenge window closed at {deadline} (unix seconds)")
            }
            Refusal::BondTooSmall { required, offered } => {
                write!(f, "bond of {offered} wei is too small; this round needs at least {required} wei")
            }
            Refusal::BondTooLarge { max, offered } => {
                write!(f, "bond of {offered} wei is too large; at most {max} wei")
            }
        }
    }
}

/// Why a certificate, vote or ruling changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Ignored {
    /// The settlement is already final (or failed).
    Final,
    /// A certificate arrived when none was awaited.
    UnexpectedCertificate { round: u32 },
    /// The certificate awaited for a reviewed value came with another value or an old round.
    CertificateMismatch { expected: Wad, after_round: u32, round: u32, value: Wad },
    /// A review vote arrived with no review under way.
    NoReview,
    /// The vote or ruling names a dispute that is not in the round under way.
    NotInRound { dispute_id: B256 },
    /// The voter is not a committee member index.
    UnknownMember { member: usize, committee_size: usize },
    /// The member's vote in this round was already counted.
    AlreadyVoted { member: usize },
    /// A ruling arrived with no arbitration under way.
    NoArbitration,
}
