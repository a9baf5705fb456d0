//! Steps: what the generator draws, resolved against the model into a concrete [`Call`] only when
//! it runs.
//!
//! A step says "a report that settles the escrows these indices pick, with these splits, signed
//! by a quorum, spoiled this way" rather than naming bonds and signers. Resolving it against the
//! state it meets keeps it meaningful when shrinking drops the steps before it: a valid report
//! stays valid (it settles whatever escrows are open then), and a spoiled one stays spoiled.
//! Whether a resolved call must succeed is the model's judgement alone ([`Model::apply`]), never
//! the step's label: a "wrong bond" that happens to be right is expected to publish, and so is a
//! batch "signed in reverse" that reads the same both ways.

use alloy_primitives::{Address, U256};
use proptest::sample::Index;

use crate::call::{
    BatchPublication, BatchSigned, BatchedReport, Call, OutcomeSpec, Packing, Party, Publication,
    SignatureSpec, Signatures,
};
use crate::model::{Committee, EscrowState, MAX_BOND, Model};
use crate::world::{ACTORS, ActorId, DISPUTES, KEYS, world};

/// One drawn step.
#[derive(Clone, Debug)]
pub enum Step {
    Call(Call),
    Publish(PublishPlan),
    PublishBatch(BatchPlan),
    ProposeCommittee { by: ActorId, keys: u8, threshold: ThresholdPick, order: MemberOrder },
}

/// A report to publish, before it meets the state.
#[derive(Clone, Debug)]
pub struct PublishPlan {
    pub settlement: u8,
    pub value: ValuePick,
    pub round: u32,
    /// Which open escrows to settle, in this order, and how.
    pub picks: Vec<Pick>,
    pub defect: ReportDefect,
    pub signers: SignerPick,
    pub signature_defect: SignatureDefect,
}

/// A batch to publish, before it meets the state: its reports are concrete (a batched report
/// settles no escrow, so nothing in it depends on the state); who signs, and what, does.
#[derive(Clone, Debug)]
pub struct BatchPlan {
    pub reports: Vec<BatchedReport>,
    pub packing: Packing,
    pub signed: SignedPick,
    pub signers: SignerPick,
    pub signature_defect: SignatureDefect,
}

/// What a batch's signatures sign.
#[derive(Clone, Copy, Debug)]
pub enum SignedPick {
    /// The batch itself.
    Own,
    /// The batch without its last report: signatures reused for a batch with one report more.
    WithoutLast,
    /// The batch with one more report (its first again, a round later).
    WithOneMore,
    /// The batch with report `at`'s value one off (wrapping at 2^128).
    ValueOff { at: Index },
    /// The batch in reverse order (the same batch when it reads the same both ways).
    Reversed,
    /// Report `at` alone, as `publish` would check its digest.
    SingleReport { at: Index },
}

/// One outcome of a report: which open escrow, and its split in thousandths.
#[derive(Clone, Debug)]
pub struct Pick {
    pub escrow: Index,
    /// Refund, in thousandths of the bond.
    pub refund: u16,
    /// Pooled, in thousandths of what the refund leaves; the rest is burned.
    pub pooled: u16,
    /// Reward, in thousandths of the budget at that point.
    pub reward: u16,
}

#[derive(Clone, Copy, Debug)]
pub enum ValuePick {
    Of(u128),
    /// 2^128: one more than a value can be.
    TooLarge,
}

/// How a report is made invalid (or not).
#[derive(Clone, Copy, Debug)]
pub enum ReportDefect {
    None,
    /// Outcome `at` reports its bond off by one.
    WrongBond {
        at: Index,
        up: bool,
    },
    /// Outcome `at` names another actor as disputer.
    WrongDisputer {
        at: Index,
        other: Index,
    },
    /// Outcome `at` burns one wei more than its bond leaves.
    NotConserved {
        at: Index,
    },
    /// Outcome `at` asks one wei more than the whole budget can give.
    RewardAboveBudget {
        at: Index,
    },
    /// An outcome for a dispute without an open escrow.
    UnknownEscrow {
        dispute: u8,
    },
    /// Outcome `at` repeated at the end.
    Repeated {
        at: Index,
    },
}

/// Who signs.
#[derive(Clone, Copy, Debug)]
pub enum SignerPick {
    /// `threshold` members of the committee in force, starting at member `start`.
    Quorum { start: u8 },
    /// Every member.
    All,
    /// One member fewer than the threshold.
    TooFew { start: u8 },
    /// A quorum with one member swapped for a key outside the committee.
    Outsider { start: u8, outsider: u8 },
    /// A quorum of the committee before the last change (or of the pending one).
    Stale { start: u8, pending: bool },
    /// Any keys: bit `i` of the mask is key `i`.
    Keys { mask: u8 },
}

/// How the signatures are spoiled (or not).
#[derive(Clone, Copy, Debug)]
pub enum SignatureDefect {
    None,
    /// The first two swapped (unordered).
    Swapped,
    /// One signature given twice.
    Duplicated {
        at: Index,
    },
    HighS {
        at: Index,
    },
    BadV {
        at: Index,
    },
    WrongDigest {
        at: Index,
    },
    ExtraByte,
    Truncated,
}

/// Threshold of a proposed committee, by how it relates to the member count `n`.
#[derive(Clone, Copy, Debug)]
pub enum ThresholdPick {
    /// The smallest valid one, plus this much (capped at `n`).
    Valid {
        above: u8,
    },
    /// Exactly two thirds or less: too low.
    TwoThirds,
    Zero,
    /// `n + 1`.
    AboveMembers,
}

/// How the members of a proposed committee are listed.
#[derive(Clone, Copy, Debug)]
pub enum MemberOrder {
    Ascending,
    Descending,
    /// One member listed twice.
    Repeated,
    /// The zero address first.
    WithZero,
}

impl Step {
    /// The concrete call this step makes in `model`'s state.
    pub fn resolve(&self, model: &Model) -> Call {
        match self {
            Step::Call(call) => call.clone(),
            Step::Publish(plan) => Call::Publish(plan.resolve(model)),
            Step::PublishBatch(plan) => Call::PublishBatch(plan.resolve(model)),
            Step::ProposeCommittee { by, keys, threshold, order } => {
                let mut members: Vec<Address> =
                    (0..KEYS).filter(|i| keys & (1 << i) != 0).map(|i| world().keys[i].address()).collect();
                members.sort();
                let n = members.len();
                let threshold = match threshold {
                    ThresholdPick::Valid { above } => {
                        (Committee::min_threshold(n) + u64::from(*above)).min(n as u64)
                    }
                    ThresholdPick::TwoThirds => (2 * n as u64) / 3,
                    ThresholdPick::Zero => 0,
                    ThresholdPick::AboveMembers => n as u64 + 1,
                };
                match order {
                    MemberOrder::Ascending => {}
                    MemberOrder::Descending => members.reverse(),
                    MemberOrder::Repeated => {
                        if let Some(last) = members.last().copied() {
                            members.push(last);
                        }
                    }
                    MemberOrder::WithZero => members.insert(0, Address::ZERO),
                }
                Call::ProposeCommittee { by: *by, members, threshold }
            }
        }
    }
}

/// Key indices of `count` members of `committee` from `start` on (cyclically), ascending by
/// address: what a quorum signs with.
pub fn members_from(committee: &Committee, start: u8, count: usize) -> Vec<u8> {
    let n = committee.members.len();
    if n == 0 {
        return Vec::new();
    }
    let mut chosen: Vec<Address> =
        (0..count.min(n)).map(|i| committee.members[(usize::from(start) + i) % n]).collect();
    chosen.sort();
    chosen.iter().filter_map(|a| key_index(*a)).collect()
}

fn key_index(address: Address) -> Option<u8> {
    world().keys.iter().position(|k| k.address() == address).map(|i| i as u8)
}

fn sort_by_address(keys: &mut [u8]) {
    keys.sort_by_key(|k| world().keys[usize::from(*k)].address());
}

impl PublishPlan {
    pub fn resolve(&self, model: &Model) -> Publication {
        let value = match self.value {
            ValuePick::Of(v) => U256::from(v),
            ValuePick::TooLarge => U256::from(u128::MAX) + U256::from(1),
        };
        Publication {
            settlement: self.settlement,
            value,
            round: self.round,
            outcomes: self.outcomes(model),
            signatures: signatures(model, self.signers, self.signature_defect),
        }
    }

    fn outcomes(&self, model: &Model) -> Vec<OutcomeSpec> {
        let mut open = model.open_escrows(self.settlement);
        let mut budget = model.settlements[usize::from(self.settlement)].reserved;
        let mut outcomes = Vec::new();
        for pick in &self.picks {
            if open.is_empty() {
                break;
            }
            let (dispute, escrow) = open.remove(pick.escrow.index(open.len()));
            let bond = escrow.amount;
            let refund = bond * u128::from(pick.refund) / 1000;
            let pooled = (bond - refund) * u128::from(pick.pooled) / 1000;
            budget += pooled;
            let reward = budget * u128::from(pick.reward) / 1000;
            budget -= reward;
            outcomes.push(OutcomeSpec::conserving(dispute, escrow.disputer, bond, refund, pooled, reward));
        }
        let n = outcomes.len().max(1);
        let at = |index: &Index| index.index(n);
        match &self.defect {
            ReportDefect::None => {}
            _ if outcomes.is_empty() && !matches!(self.defect, ReportDefect::UnknownEscrow { .. }) => {}
            ReportDefect::WrongBond { at: i, up } => {
                let o = &mut outcomes[at(i)];
                // Keep the split conserving the reported bond, so only the bond is wrong.
                if *up && o.bond < MAX_BOND {
                    o.bond += 1;
                    o.burned += 1;
                } else if o.burned > 0 {
                    o.bond -= 1;
                    o.burned -= 1;
                } else {
                    o.bond += 1;
                    o.burned += 1;
                }
            }
            ReportDefect::WrongDisputer { at: i, other } => {
                let o = &mut outcomes[at(i)];
                let shift = 1 + other.index(ACTORS - 1) as u8;
                o.disputer = ActorId((o.disputer.0 + shift) % ACTORS as u8);
            }
            ReportDefect::NotConserved { at: i } => outcomes[at(i)].burned += 1,
            ReportDefect::RewardAboveBudget { at: i } => outcomes[at(i)].reward += budget + 1,
            ReportDefect::UnknownEscrow { dispute } => {
                let dispute = dispute % (DISPUTES as u8 + 1);
                let escrow = model.escrows.get(&(self.settlement, dispute));
                // A dispute without an open escrow, or else the id past every escrowable one.
                let dispute = match escrow {
                    Some(e) if e.state == EscrowState::Open => DISPUTES as u8,
                    _ => dispute,
                };
                let disputer = escrow.map_or(ActorId(0), |e| e.disputer);
                outcomes.push(OutcomeSpec {
                    dispute,
                    disputer,
                    bond: escrow.map_or(1, |e| e.amount),
                    refund: escrow.map_or(1, |e| e.amount),
                    reward: 0,
                    pooled: 0,
                    burned: 0,
                });
            }
            ReportDefect::Repeated { at: i } => {
                let repeated = outcomes[at(i)];
                outcomes.push(repeated);
            }
        }
        outcomes
    }
}

impl BatchPlan {
    pub fn resolve(&self, model: &Model) -> BatchPublication {
        let reports = self.reports.clone();
        // Report `at` of the batch, if it has any.
        let at = |index: &Index| (!reports.is_empty()).then(|| index.index(reports.len()));
        let mut other = reports.clone();
        let signed = match self.signed {
            SignedPick::Own => BatchSigned::Batch(other),
            SignedPick::WithoutLast => {
                other.pop();
                BatchSigned::Batch(other)
            }
            SignedPick::WithOneMore => {
                if let Some(first) = reports.first() {
                    other.push(BatchedReport { round: first.round.wrapping_add(1), ..*first });
                }
                BatchSigned::Batch(other)
            }
            SignedPick::ValueOff { at: i } => {
                if let Some(i) = at(&i) {
                    other[i].value = other[i].value.wrapping_add(1);
                }
                BatchSigned::Batch(other)
            }
            SignedPick::Reversed => {
                other.reverse();
                BatchSigned::Batch(other)
            }
            SignedPick::SingleReport { at: i } => match at(&i) {
                Some(i) => BatchSigned::Report(reports[i]),
                None => BatchSigned::Batch(other),
            },
        };
        BatchPublication {
            reports,
            packing: self.packing,
            signed,
            signatures: signatures(model, self.signers, self.signature_defect),
        }
    }
}

/// The signatures `signers` give in `model`'s state, spoiled as `defect` says.
fn signatures(model: &Model, signers: SignerPick, defect: SignatureDefect) -> Signatures {
    let committee = &model.committee;
    let t = committee.threshold as usize;
    let mut keys = match signers {
        SignerPick::Quorum { start } => members_from(committee, start, t),
        SignerPick::All => members_from(committee, 0, committee.members.len()),
        SignerPick::TooFew { start } => members_from(committee, start, t.saturating_sub(1)),
        SignerPick::Outsider { start, outsider } => {
            let mut keys = members_from(committee, start, t);
            let outsiders: Vec<u8> = (0..KEYS as u8)
                .filter(|k| !committee.members.contains(&world().keys[usize::from(*k)].address()))
                .collect();
            if !outsiders.is_empty() && !keys.is_empty() {
                keys[0] = outsiders[usize::from(outsider) % outsiders.len()];
                sort_by_address(&mut keys);
            }
            keys
        }
        SignerPick::Stale { start, pending } => {
            let stale = if pending {
                model.pending_committee.as_ref().map(|(c, _)| c)
            } else {
                model.previous_committee.as_ref()
            };
            let stale = stale.unwrap_or(committee);
            members_from(stale, start, stale.threshold as usize)
        }
        SignerPick::Keys { mask } => {
            let mut keys: Vec<u8> = (0..KEYS as u8).filter(|k| mask & (1 << k) != 0).collect();
            sort_by_address(&mut keys);
            keys
        }
    };
    let spoil = |at: &Index, len: usize| at.index(len.max(1));
    let mut specs: Vec<SignatureSpec> = Vec::new();
    let (mut extra_byte, mut truncated) = (false, false);
    match defect {
        SignatureDefect::Swapped if keys.len() >= 2 => keys.swap(0, 1),
        SignatureDefect::Duplicated { at } if !keys.is_empty() => {
            let i = spoil(&at, keys.len());
            keys.insert(i, keys[i]);
        }
        SignatureDefect::ExtraByte => extra_byte = true,
        SignatureDefect::Truncated => truncated = true,
        _ => {}
    }
    specs.extend(keys.iter().map(|key| SignatureSpec {
        key: *key,
        wrong_digest: false,
        high_s: false,
        bad_v: false,
    }));
    if !specs.is_empty() {
        let n = specs.len();
        match defect {
            SignatureDefect::HighS { at } => specs[spoil(&at, n)].high_s = true,
            SignatureDefect::BadV { at } => specs[spoil(&at, n)].bad_v = true,
            SignatureDefect::WrongDigest { at } => specs[spoil(&at, n)].wrong_digest = true,
            _ => {}
        }
    }
    let truncated = truncated && !specs.is_empty();
    Signatures { specs, extra_byte, truncated }
}

/// Where a withdrawal goes, as drawn: an actor, the relayer, or the oracle itself.
pub fn party(choice: usize) -> Party {
    match choice {
        c if c < ACTORS => Party::Actor(ActorId(c as u8)),
        c if c == ACTORS => Party::Relayer,
        _ => Party::Oracle,
    }
}
