//! The transitions of [`SettlementDisputes`]: what each event and each passed deadline does.

use alloy_primitives::B256;
use fixd_proto::value::Wad;

use super::{CertifiedValue, DisputeRecord, OpenRound, SettlementDisputes, Stage};
use crate::action::{Action, FailReason, FinalBy, Finality, Ignored, Refusal};
use crate::event::{DisputeFiling, Event, ReviewVoteCast};
use crate::ledger::Decision;
use crate::review::{Tally, Verdict};

impl SettlementDisputes {
    /// Applies the deadlines that have passed by `now`.
    pub(super) fn advance(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.is_terminal() {
            return;
        }
        if matches!(self.stage, Stage::Challenge) && self.deadline.is_some_and(|d| now >= d) {
            self.finalize_with_certified(now, FinalBy::WindowClosed, out);
        } else if now >= self.hard_deadline {
            if self.certified.is_some() {
                self.finalize_with_certified(now, FinalBy::HardDeadline, out);
            } else {
                self.stage = Stage::Failed(FailReason::NeverCertified);
                out.push(Action::Fail { reason: FailReason::NeverCertified });
            }
        }
    }

    pub(super) fn on_certified(
        &mut self,
        now: u64,
        round: u32,
        proposal_hash: B256,
        value: Wad,
        out: &mut Vec<Action>,
    ) {
        let period = match &self.stage {
            Stage::AwaitingCertificate => self.params.challenge_period_secs,
            Stage::Recertifying { value: expected } => {
                let after_round = self.certified.map_or(0, |c| c.round);
                if value != *expected || round <= after_round {
                    out.push(Action::Ignored {
                        reason: Ignored::CertificateMismatch {
                            expected: *expected,
                            after_round,
                            round,
                            value,
                        },
                    });
                    return;
                }
                self.params.reopened_challenge_period_secs
            }
            _ => {
                out.push(Action::Ignored { reason: Ignored::UnexpectedCertificate { round } });
                return;
            }
        };
        let certified = CertifiedValue { round, proposal_hash, value, certified_at: now };
        self.certified = Some(certified);
        self.stage = Stage::Challenge;
        self.open_window(now, period, out);
    }

    pub(super) fn on_dispute(&mut self, now: u64, filing: DisputeFiling, out: &mut Vec<Action>) {
        let dispute_id = filing.dispute_id;
        let required = match self.admit(now, &filing) {
            Ok(required) => required,
            Err(reason) => {
                out.push(Action::DisputeRefused { dispute_id, reason });
                return;
            }
        };
        let Some(current) = self.certified else { return };
        let bond = filing.bond_wei;
        let (number, opened) = match &mut self.stage {
            Stage::Review { round, .. } | Stage::Arbitration { round } => {
                round.largest_bond = round.largest_bond.max(bond);
                (round.number, false)
            }
            _ => {
                let number = self.rounds_decided.saturating_add(1);
                let round =
                    OpenRound { number, required_bond: required, largest_bond: bond, first: dispute_id };
                self.stage = if number <= u16::from(self.params.max_rounds) {
                    Stage::Review { round, tally: Tally::default() }
                } else {
                    Stage::Arbitration { round }
                };
                (number, true)
            }
        };
        self.escrow_open += bond;
        self.disputes.push(DisputeRecord {
            filing,
            dispute_round: number,
            filed_at: now,
            decision: None,
            outcome: None,
        });
        out.push(Action::DisputeAccepted { dispute_id, dispute_round: number, bond_wei: bond });
        if opened {
            let proposal_hash = current.proposal_hash;
            out.push(match self.stage {
                Stage::Review { .. } => {
                    Action::StartReview { dispute_round: number, proposal_hash, dispute_id }
                }
                _ => Action::EscalateToArbitrator {
                    dispute_round: number,
                    proposal_hash,
                    dispute_id,
                    inconclusive_review: false,
                },
            });
        }
    }

    /// Whether `filing` may be accepted now, and the bond it had to post. Changes nothing.
    fn admit(&self, now: u64, filing: &DisputeFiling) -> Result<u128, Refusal> {
        if self.disputes.iter().any(|d| d.filing.dispute_id == filing.dispute_id) {
            return Err(Refusal::Duplicate);
        }
        let current = match (&self.stage, &self.certified) {
            (Stage::AwaitingCertificate | Stage::Recertifying { .. }, _) | (_, None) => {
                return Err(Refusal::NotCertified);
            }
            (_, Some(c)) => c,
        };
        if filing.proposal_hash != current.proposal_hash {
            return Err(Refusal::WrongProposal { current: current.proposal_hash });
        }
        if let Some(deadline) = self.deadline.filter(|d| now >= *d) {
            return Err(Refusal::WindowClosed { deadline });
        }
        let required = self.required_bond().unwrap_or(u128::MAX);
        let offered = filing.bond_wei;
        if offered < required {
            return Err(Refusal::BondTooSmall { required, offered });
        }
        let max = self.ledger.headroom(self.escrow_open);
        if offered > max {
            return Err(Refusal::BondTooLarge { max, offered });
        }
        Ok(required)
    }

    pub(super) fn on_vote(&mut self, now: u64, vote: ReviewVoteCast, out: &mut Vec<Action>) {
        let n = self.params.committee_size;
        let Stage::Review { round, tally } = &mut self.stage else {
            out.push(Action::Ignored { reason: Ignored::NoReview });
            return;
        };
        let round = *round;
        if vote.member >= n {
            out.push(Action::Ignored {
                reason: Ignored::UnknownMember { member: vote.member, committee_size: n },
            });
            return;
        }
        if !self
            .disputes
            .iter()
            .any(|d| d.filing.dispute_id == vote.dispute_id && d.dispute_round == round.number)
        {
            out.push(Action::Ignored { reason: Ignored::NotInRound { dispute_id: vote.dispute_id } });
            return;
        }
        if tally.has_voted(vote.member) {
            out.push(Action::Ignored { reason: Ignored::AlreadyVoted { member: vote.member } });
            return;
        }
        tally.count(vote.member, vote.value, vote.median_recomputes);
        let Some(current) = self.certified else { return };
        let verdict = tally.verdict(current.value, n, self.params.quorum, self.params.dispute_tolerance_bp);
        match verdict {
            None => {}
            Some(Verdict::Inconclusive) => {
                self.stage = Stage::Arbitration { round };
                out.push(Action::EscalateToArbitrator {
                    dispute_round: round.number,
                    proposal_hash: current.proposal_hash,
                    dispute_id: round.first,
                    inconclusive_review: true,
                });
            }
            Some(Verdict::Decided { reviewed, upheld }) => {
                let decision = if upheld { Decision::Upheld } else { Decision::Rejected };
                let dispute_ids = self.decide_round(round, decision);
                out.push(Action::ReviewDecided {
                    dispute_round: round.number,
                    reviewed,
                    upheld,
                    dispute_ids,
                });
                if upheld {
                    self.stage = Stage::Recertifying { value: reviewed };
                    out.push(Action::CertifyReviewed {
                        value: reviewed,
                        after_round: current.round,
                        dispute_id: round.first,
                    });
                } else {
                    self.stage = Stage::Challenge;
                    self.open_window(now, self.params.reopened_challenge_period_secs, out);
                }
            }
        }
    }

    pub(super) fn on_ruling(
        &mut self,
        now: u64,
        dispute_id: B256,
        value: Wad,
        upheld: bool,
        out: &mut Vec<Action>,
    ) {
        let Stage::Arbitration { round } = self.stage else {
            out.push(Action::Ignored { reason: Ignored::NoArbitration });
            return;
        };
        if !self.disputes.iter().any(|d| d.filing.dispute_id == dispute_id && d.dispute_round == round.number)
        {
            out.push(Action::Ignored { reason: Ignored::NotInRound { dispute_id } });
            return;
        }
        let decision = if upheld { Decision::Upheld } else { Decision::Rejected };
        self.decide_round(round, decision);
        let round_of_certificate = self.certified.map_or(0, |c| c.round);
        self.finalize(now, FinalBy::Ruling, value, round_of_certificate, out);
    }

    /// Opens (or reopens) the window on the certified value: the deadline becomes
    /// `min(H, max(deadline, now + period))`, so it never moves backwards.
    fn open_window(&mut self, now: u64, period: u64, out: &mut Vec<Action>) {
        let Some(c) = self.certified else { return };
        let wanted = now.saturating_add(period).max(self.deadline.unwrap_or(0));
        let deadline = wanted.min(self.hard_deadline);
        self.deadline = Some(deadline);
        out.push(Action::WindowOpened {
            round: c.round,
            proposal_hash: c.proposal_hash,
            value: c.value,
            deadline,
        });
    }

    /// The bond the first dispute of the next round must post:
    /// `max(min_bond, 2 × largest bond of the previous round)`.
    pub(super) fn next_round_bond(&self) -> u128 {
        self.params.min_bond_wei.max(self.last_round_bond.saturating_mul(2))
    }

    /// Decides every open dispute of `round` the same way, in filing order, and returns their
    /// ids.
    fn decide_round(&mut self, round: OpenRound, decision: Decision) -> Vec<B256> {
        let reward_bp = self.params.reward_bp;
        let mut ids = Vec::new();
        for d in self.disputes.iter_mut().filter(|d| d.dispute_round == round.number) {
            if d.decision.is_some() {
                continue;
            }
            let f = &d.filing;
            let outcome = self.ledger.decide(f.dispute_id, f.disputer, f.bond_wei, decision, reward_bp);
            self.escrow_open -= f.bond_wei;
            ids.push(f.dispute_id);
            d.decision = Some(decision);
            d.outcome = Some(outcome);
        }
        self.rounds_decided = round.number;
        self.last_round_bond = round.largest_bond;
        ids
    }

    /// Final on the certified value in force; any round still open is unresolved.
    fn finalize_with_certified(&mut self, now: u64, by: FinalBy, out: &mut Vec<Action>) {
        let Some(c) = self.certified else { return };
        match self.stage {
            Stage::Review { round, .. } | Stage::Arbitration { round } => {
                self.decide_round(round, Decision::Unresolved);
            }
            _ => {}
        }
        self.finalize(now, by, c.value, c.round, out);
    }

    fn finalize(&mut self, now: u64, by: FinalBy, value: Wad, round: u32, out: &mut Vec<Action>) {
        let outcomes = self.disputes.iter().filter_map(|d| d.outcome.clone()).collect();
        let finality = Finality { value, round, at: now, by, outcomes, ledger: self.ledger.totals() };
        self.stage = Stage::Final(finality.clone());
        out.push(Action::Finalize(finality));
    }

    /// What a terminal machine says to an event: refusals for disputes, `Ignored` for
    /// certificates, votes and rulings, nothing for ticks. Changes nothing.
    pub(super) fn answer_terminal(&self, now: u64, event: &Event, out: &mut Vec<Action>) {
        match event {
            Event::Tick => {}
            Event::DisputeFiled(f) => {
                let reason = if self.disputes.iter().any(|d| d.filing.dispute_id == f.dispute_id) {
                    Refusal::Duplicate
                } else if let Some(deadline) = self.deadline.filter(|d| now >= *d) {
                    Refusal::WindowClosed { deadline }
                } else if now >= self.hard_deadline {
                    Refusal::WindowClosed { deadline: self.hard_deadline }
                } else {
                    Refusal::Final
                };
                out.push(Action::DisputeRefused { dispute_id: f.dispute_id, reason });
            }
            _ => out.push(Action::Ignored { reason: Ignored::Final }),
        }
    }
}
