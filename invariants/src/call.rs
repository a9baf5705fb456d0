//! The concrete calls of a run: who calls which entry point with what, down to each signature's
//! key and flaw. [`crate::plan`] makes them from drawn steps; the model judges them; the
//! harness sends them.

use alloy_primitives::{Address, U256};

use crate::world::{ActorId, world};

/// Who can receive ETH in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party {
    Actor(ActorId),
    /// The relayer: an EOA that accepts everything.
    Relayer,
    /// The oracle itself, which has no `receive` and refuses ETH sent to it.
    Oracle,
}

impl Party {
    pub fn address(self) -> Address {
        match self {
            Party::Actor(actor) => actor.address(),
            Party::Relayer => world().relayer.address(),
            Party::Oracle => world().oracle,
        }
    }
}

/// One signature of a publication, as built: by which committee key, and how it is spoiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureSpec {
    /// Index of the committee key (`world().keys`).
    pub key: u8,
    /// Signs another digest than the report's.
    pub wrong_digest: bool,
    /// Replaced by its high-`s` twin (`s' = n − s`, `v` flipped): valid ECDSA, refused (EIP-2).
    pub high_s: bool,
    /// `v` is neither 27 nor 28.
    pub bad_v: bool,
}

/// One `BondOutcome` of a publication. `dispute` may name a dispute without an escrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutcomeSpec {
    pub dispute: u8,
    pub disputer: ActorId,
    pub bond: u128,
    pub refund: u128,
    pub reward: u128,
    pub pooled: u128,
    pub burned: u128,
}

impl OutcomeSpec {
    /// The conserving split of `bond`: `refund` and `pooled` given, the rest burned; `reward`
    /// from the settlement's budget.
    pub fn conserving(
        dispute: u8,
        disputer: ActorId,
        bond: u128,
        refund: u128,
        pooled: u128,
        reward: u128,
    ) -> Self {
        OutcomeSpec { dispute, disputer, bond, refund, reward, pooled, burned: bond - refund - pooled }
    }
}

/// The packed `signatures` of a publication, as built: each signature, and how the packing is
/// spoiled. `publish` and `publishBatch` take them alike.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Signatures {
    pub specs: Vec<SignatureSpec>,
    /// One byte too many (or, if false and `truncated`, one too few) in `signatures`.
    pub extra_byte: bool,
    pub truncated: bool,
}

impl Signatures {
    /// One well-formed signature by each of `keys`, in this order.
    pub fn by(keys: &[u8]) -> Self {
        let specs = keys
            .iter()
            .map(|key| SignatureSpec { key: *key, wrong_digest: false, high_s: false, bad_v: false })
            .collect();
        Signatures { specs, extra_byte: false, truncated: false }
    }
}

/// A `publish` call, concrete up to the signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    pub settlement: u8,
    pub value: U256,
    pub round: u32,
    pub outcomes: Vec<OutcomeSpec>,
    pub signatures: Signatures,
}

/// One report of a batch: `FinalReport{settlementId, value, round, outcomes: []}`, packed in 52
/// bytes, so its value is a `uint128` by construction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchedReport {
    pub settlement: u8,
    pub value: u128,
    pub round: u32,
}

/// How `publishBatch`'s packed `reports` are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    /// 52 bytes per report, back to back.
    Whole,
    /// One zero byte too many at the end.
    ExtraByte,
    /// The last byte missing.
    MissingByte,
}

/// What the signatures of a batch sign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchSigned {
    /// The EIP-712 `FinalReportBatch` of these reports: the call's own batch when they are its
    /// reports, in its order.
    Batch(Vec<BatchedReport>),
    /// One report's `FinalReport` digest, as `publish` would check it.
    Report(BatchedReport),
}

/// A `publishBatch` call, concrete up to the signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchPublication {
    pub reports: Vec<BatchedReport>,
    pub packing: Packing,
    pub signed: BatchSigned,
    pub signatures: Signatures,
}

impl BatchPublication {
    /// Signed by `signatures` over its own batch, packed whole.
    pub fn of(reports: Vec<BatchedReport>, signatures: Signatures) -> Self {
        BatchPublication {
            signed: BatchSigned::Batch(reports.clone()),
            reports,
            packing: Packing::Whole,
            signatures,
        }
    }
}

/// A concrete call, by a concrete actor. Only EOAs (actors 0 to 4) send transactions; a
/// `Payee` contract acts through the relayer where it has a function for it (`post`,
/// `withdrawTo`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `postBond{amount}` by an EOA, or `Payee.post{amount}` through the relayer.
    PostBond {
        by: ActorId,
        settlement: u8,
        dispute: u8,
        amount: u128,
    },
    FundPool {
        by: ActorId,
        amount: u128,
    },
    /// `publish`, sent by the relayer (anyone may publish).
    Publish(Publication),
    /// `publishBatch`, sent by the relayer.
    PublishBatch(BatchPublication),
    ReclaimBond {
        by: ActorId,
        settlement: u8,
        dispute: u8,
    },
    /// `withdraw(to)` by an EOA, or `Payee.withdrawTo(to)` through the relayer.
    Withdraw {
        by: ActorId,
        to: Party,
    },
    /// `Payee.arm(oracle, mode, …)` at `target`, sent by the relayer.
    Arm {
        target: ActorId,
        mode: u8,
        settlement: u8,
        dispute: u8,
    },
    /// An EIP-7702 authorization by `eoa`: delegate to `Payee` (`on`) or clear.
    Delegate {
        eoa: ActorId,
        on: bool,
    },
    ProposeCommittee {
        by: ActorId,
        members: Vec<Address>,
        threshold: u64,
    },
    CancelCommittee {
        by: ActorId,
    },
    ApplyCommittee {
        by: ActorId,
    },
    TransferOwnership {
        by: ActorId,
        to: Option<ActorId>,
    },
    AcceptOwnership {
        by: ActorId,
    },
    RenounceOwnership {
        by: ActorId,
    },
    /// Moves the clock; no transaction.
    Warp {
        seconds: u64,
    },
}

impl Call {
    /// The entry point, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Call::PostBond { .. } => "postBond",
            Call::FundPool { .. } => "fundPool",
            Call::Publish(_) => "publish",
            Call::PublishBatch(_) => "publishBatch",
            Call::ReclaimBond { .. } => "reclaimBond",
            Call::Withdraw { .. } => "withdraw",
            Call::Arm { .. } => "Payee.arm",
            Call::Delegate { .. } => "EIP-7702",
            Call::ProposeCommittee { .. } => "proposeCommittee",
            Call::CancelCommittee { .. } => "cancelCommittee",
            Call::ApplyCommittee { .. } => "applyCommittee",
            Call::TransferOwnership { .. } => "transferOwnership",
            Call::AcceptOwnership { .. } => "acceptOwnership",
            Call::RenounceOwnership { .. } => "renounceOwnership",
            Call::Warp { .. } => "(clock)",
        }
    }
}
