//! [`Publication`]: one settlement from certificate to confirmed publication. See the module
//! docs of [`crate::publication`] for the rules.

use std::collections::BTreeMap;

use super::timeline::{Agreed, Timed, Timeline, agreed};
use alloy_primitives::{Address, B256};
use fixd_dispute::{DisputeParams, FinalBy, SettlementDisputes};
use fixd_proto::eip712::{ReportSignature, TypedData, recover_digest};
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::report::FinalReport;
use fixd_proto::types::settlement::SettlementId;

use super::{Action, Event, OnChain, PublicationParams};

/// This member's final report, once the settlement is final.
#[derive(Clone, Debug)]
struct Final {
    report: FinalReport,
    digest: B256,
    /// When turn 0 begins: a moment every member derives alike.
    base: u64,
    leader: usize,
}

/// When turn 0 of a publication begins, for `finality` reached in `disputes`: the moment of
/// finality every member derives alike, plus the time the fold lags the clock by.
fn base_of(disputes: &SettlementDisputes, finality: &fixd_dispute::Finality, settle_secs: u64) -> u64 {
    let agreed = match finality.by {
        FinalBy::WindowClosed => disputes.deadline().unwrap_or(finality.at),
        FinalBy::HardDeadline => disputes.hard_deadline(),
        FinalBy::Ruling => finality.at,
    };
    agreed.saturating_add(settle_secs)
}

/// One settlement's way from certificate to a confirmed publication.
#[derive(Debug)]
pub struct Publication {
    committee: Committee,
    me: usize,
    settlement_id: SettlementId,
    /// The EIP-712 domain's chain and contract (the domain itself is 144 bytes, held by
    /// thousands of these in a burst: built when a digest is made).
    chain_id: u64,
    contract: Address,
    params: PublicationParams,
    /// Every agreed event of the settlement's disputes.
    timeline: Timeline,
    /// Relayed disputes and rulings that reached this member outside the receipt bound, with
    /// their agreed times: not folded on their own, counted only in reports that take them.
    late: Vec<(u64, Agreed)>,
    /// The dispute machine as of the last fold.
    disputes: SettlementDisputes,
    /// This member's own finality, as its fold says now, with the moment turn 0 begins.
    own: Option<(fixd_dispute::Finality, u64)>,
    /// The reports last offered to the report decision ([`Action::ReportReady`]).
    offered: Vec<FinalReport>,
    /// The report the committee decided, until this member is final too.
    decided: Option<FinalReport>,
    done: Option<Final>,
    /// Each member's first signature, whatever report it signed. Boxed: a B-tree allocates
    /// room for eleven values at its first insert, and a burst holds thousands of these maps.
    signatures: BTreeMap<usize, Box<ReportSignature>>,
    /// The turn in which this member last asked for a publication.
    asked_in_turn: Option<u64>,
    on_chain: Option<OnChain>,
    published: bool,
    conflict: bool,
    failed: bool,
}

impl Publication {
    /// A machine for member `me` of `committee`, for a settlement under `disputes`' rules, on the
    /// contract `contract` of chain `chain_id`.
    pub fn new(
        committee: Committee,
        me: usize,
        settlement_id: SettlementId,
        dispute_params: DisputeParams,
        params: PublicationParams,
        chain_id: u64,
        contract: Address,
    ) -> Result<Self, fixd_dispute::Error> {
        Ok(Publication {
            committee,
            me,
            settlement_id,
            chain_id,
            contract,
            params,
            disputes: SettlementDisputes::new(dispute_params.clone())?,
            timeline: Timeline::new(dispute_params)?,
            late: Vec::new(),
            own: None,
            offered: Vec::new(),
            decided: None,
            done: None,
            signatures: BTreeMap::new(),
            asked_in_turn: None,
            on_chain: None,
            published: false,
            conflict: false,
            failed: false,
        })
    }

    /// Handles one event at unix time `now`.
    pub fn on(&mut self, now: u64, event: Event) -> Vec<Action> {
        self.on_all(now, vec![event])
    }

    /// Handles several events at unix time `now`, folding the dispute machine once after all
    /// of them: a restarted member feeds everything it stored at once, so it never acts on a
    /// history that lacks events it already holds.
    pub fn on_all(&mut self, now: u64, events: Vec<Event>) -> Vec<Action> {
        let mut out = Vec::new();
        for event in events {
            let late = matches!(event, Event::Dispute { late: true, .. } | Event::Ruling { late: true, .. });
            match agreed(event) {
                Ok(relay) if late => {
                    if !self.late.contains(&relay) {
                        self.late.push(relay);
                    }
                }
                Ok((at, event)) => {
                    // A late relay that now counts (see the driver's vouched relays).
                    self.late.retain(|(t, e)| (*t, e) != (at, &event));
                    self.timeline.insert(at, event);
                }
                Err(Event::Signature { author, signature }) => self.on_signature(author, signature, &mut out),
                Err(Event::Chain(state)) => self.on_chain_state(state, &mut out),
                Err(_) => {}
            }
        }
        self.refold(now, &mut out);
        self.maybe_publish(now, &mut out);
        out
    }

    /// Folds the timeline at `now`'s horizon, carries out what is new, and offers the report
    /// decision the reports this member would prevote if they changed.
    fn refold(&mut self, now: u64, out: &mut Vec<Action>) {
        let horizon = now.saturating_sub(self.params.settle_secs);
        let folded = self.timeline.fold(horizon);
        self.disputes = folded.machine;
        if folded.revised {
            out.push(Action::Revised);
            if self.disputes.finality().is_none() {
                // A late event took finality back before the committee decided: this member has
                // no report of its own now. A decided report stays.
                self.own = None;
            }
        }
        self.carry(folded.new, out);
        if self.done.is_some() || self.decided.is_some() {
            return;
        }
        let acceptable = self.acceptable(horizon);
        let reports: Vec<FinalReport> = acceptable.iter().map(|(r, _)| r.clone()).collect();
        if reports != self.offered {
            let starts_at = acceptable.first().map_or(u64::MAX, |(_, base)| *base);
            self.offered = reports.clone();
            out.push(Action::ReportReady { reports, starts_at });
        }
    }

    /// The reports this member's fold makes at `horizon`, each with the moment its turn 0 would
    /// begin: its own first (if final), then those it makes with the late relays of some
    /// disputes ([`super::MAX_LATE_DISPUTES`]), each once.
    fn acceptable(&self, horizon: u64) -> Vec<(FinalReport, u64)> {
        let mut out: Vec<(FinalReport, u64)> =
            self.own.iter().map(|(f, base)| (f.report(self.settlement_id), *base)).collect();
        for extra in self.late_combinations() {
            let machine = self.timeline.fold_with(&extra, horizon);
            let Some(finality) = machine.finality() else { continue };
            let report = finality.report(self.settlement_id);
            if !out.iter().any(|(r, _)| r == &report) {
                out.push((report, base_of(&machine, finality, self.params.settle_secs)));
            }
        }
        out
    }

    /// The late relays grouped by dispute, in every combination of disputes (at most
    /// [`super::MAX_LATE_DISPUTES`] of them; past that, each dispute alone and all together).
    fn late_combinations(&self) -> Vec<Vec<(u64, Agreed)>> {
        let mut ids: Vec<B256> = self.late.iter().filter_map(|(_, e)| e.dispute_id()).collect();
        ids.sort();
        ids.dedup();
        let of = |chosen: &[B256]| -> Vec<(u64, Agreed)> {
            let takes = |(_, e): &&(u64, Agreed)| e.dispute_id().is_some_and(|id| chosen.contains(&id));
            self.late.iter().filter(takes).cloned().collect()
        };
        if ids.len() <= super::MAX_LATE_DISPUTES {
            (1..1u32 << ids.len())
                .map(|mask| {
                    let chosen: Vec<B256> = ids
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask >> i & 1 == 1)
                        .map(|(_, id)| *id)
                        .collect();
                    of(&chosen)
                })
                .collect()
        } else {
            ids.iter().map(|id| of(&[*id])).chain([of(&ids)]).collect()
        }
    }

    /// The dispute machine as the last fold left it.
    pub fn disputes(&self) -> &SettlementDisputes {
        &self.disputes
    }

    /// The agreed timeline, for predictions and for the state with every known event.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The final report, once final.
    pub fn report(&self) -> Option<&FinalReport> {
        self.done.as_ref().map(|d| &d.report)
    }

    /// Members whose signature of this member's report is in, in committee order.
    pub fn signers(&self) -> Vec<usize> {
        self.valid_signatures().map(|(m, _)| *m).collect()
    }

    /// The signatures of this member's final report (none before it is final).
    fn valid_signatures(&self) -> impl Iterator<Item = (&usize, &ReportSignature)> {
        let report = self.done.as_ref().map(|d| &d.report);
        self.signatures.iter().map(|(m, s)| (m, &**s)).filter(move |(_, s)| Some(&s.report) == report)
    }

    /// The publisher of the turn running at `now`, once final.
    pub fn publisher_at(&self, now: u64) -> Option<(u64, usize)> {
        let done = self.done.as_ref()?;
        let turn = now.saturating_sub(done.base) / self.params.publish_timeout_secs;
        let n = self.committee.n() as u64;
        Some((turn, ((done.leader as u64 + turn) % n) as usize))
    }

    /// Whether the contract holds the value with enough confirmations.
    pub fn is_published(&self) -> bool {
        self.published
    }

    /// What the contract holds, as last read.
    pub fn on_chain(&self) -> Option<&OnChain> {
        self.on_chain.as_ref()
    }

    fn carry(&mut self, actions: Vec<Timed>, out: &mut Vec<Action>) {
        for Timed { at, action } in actions {
            match action {
                fixd_dispute::Action::WindowOpened { round, deadline, .. } => {
                    out.push(Action::WindowOpened { round, deadline });
                }
                fixd_dispute::Action::StartReview { dispute_round, proposal_hash, dispute_id } => {
                    out.push(Action::StartReview { dispute_round, dispute_id, contested: proposal_hash, at });
                }
                fixd_dispute::Action::Finalize(finality) => {
                    let base = base_of(&self.disputes, &finality, self.params.settle_secs);
                    self.own = Some((finality, base));
                    self.maybe_sign(out);
                }
                fixd_dispute::Action::Fail { reason } if !self.failed => {
                    self.failed = true;
                    out.push(Action::Failed { reason: format!("{reason:?}") });
                }
                fixd_dispute::Action::Fail { .. } => {}
                other => out.push(Action::Disputes { at, action: other }),
            }
        }
    }

    /// The report the committee decided (its report decision's certificate): signed once this
    /// member is final too. Nothing changes it afterwards.
    ///
    /// A decided report that counts late relays takes them into this member's timeline: its fold
    /// is then the committee's.
    pub fn decided(&mut self, now: u64, report: FinalReport) -> Vec<Action> {
        let mut out = Vec::new();
        if self.decided.is_some() || self.done.is_some() {
            return out;
        }
        if self.own_report().as_ref() != Some(&report) {
            let horizon = now.saturating_sub(self.params.settle_secs);
            let taken = self.late_combinations().into_iter().find(|extra| {
                let machine = self.timeline.fold_with(extra, horizon);
                machine.finality().map(|f| f.report(self.settlement_id)).as_ref() == Some(&report)
            });
            for relay in taken.into_iter().flatten() {
                self.late.retain(|l| l != &relay);
                self.timeline.insert(relay.0, relay.1);
            }
        }
        self.decided = Some(report);
        self.refold(now, &mut out);
        self.maybe_sign(&mut out);
        self.maybe_publish(now, &mut out);
        out
    }

    /// The report this member's own fold makes now, before a decision.
    pub fn own_report(&self) -> Option<FinalReport> {
        self.own.as_ref().map(|(finality, _)| finality.report(self.settlement_id))
    }

    /// Signs the decided report once this member's fold is final too: its finality says how and
    /// when (the report's value, round and outcomes are the committee's).
    fn maybe_sign(&mut self, out: &mut Vec<Action>) {
        if self.done.is_some() {
            return;
        }
        let (Some(report), Some((own, base))) = (self.decided.clone(), self.own.clone()) else { return };
        let finality = fixd_dispute::Finality {
            value: report.value,
            round: report.round,
            outcomes: report.outcomes.clone(),
            ..own
        };
        let leader = self.committee.leader(&self.settlement_id, report.round);
        let digest = report.eip712_digest(&fixd_proto::eip712::domain(self.chain_id, self.contract));
        self.done = Some(Final { report: report.clone(), digest, base, leader });
        out.push(Action::SignReport { report, finality });
        // Signatures that came before this member was final may count now.
        let early: Vec<_> = self.signatures.keys().copied().collect();
        for member in early {
            if let Err(reason) = self.check(&self.signatures[&member]) {
                self.signatures.remove(&member);
                out.push(Action::Ignored { author: member, reason });
            }
        }
    }

    /// Whether `signature` by `author` signs this member's final report.
    fn check(&self, signature: &ReportSignature) -> Result<(), String> {
        let Some(done) = &self.done else { return Ok(()) };
        if signature.report != done.report {
            return Err(format!(
                "signs another report (value {}, round {}) than ours (value {}, round {})",
                signature.report.value, signature.report.round, done.report.value, done.report.round
            ));
        }
        match recover_digest(&done.digest, &signature.signature) {
            Ok(signer) if signer == signature.signer => Ok(()),
            Ok(signer) => Err(format!("recovers to {signer}, not the claimed {}", signature.signer)),
            Err(e) => Err(format!("does not recover: {e}")),
        }
    }

    fn on_signature(&mut self, author: usize, signature: ReportSignature, out: &mut Vec<Action>) {
        if signature.report.settlement_id != self.settlement_id {
            return out.push(Action::Ignored { author, reason: "for another settlement".into() });
        }
        let expected = self.committee.members().get(author).map(|m| m.eth_address);
        if expected != Some(signature.signer) {
            return out.push(Action::Ignored {
                author,
                reason: format!("claims signer {}, not the author's address {expected:?}", signature.signer),
            });
        }
        if self.signatures.contains_key(&author) {
            return;
        }
        if let Err(reason) = self.check(&signature) {
            return out.push(Action::Ignored { author, reason });
        }
        // Before this member is final the digest is unknown: the signature is checked then.
        self.signatures.insert(author, Box::new(signature));
    }

    fn on_chain_state(&mut self, state: Option<OnChain>, out: &mut Vec<Action>) {
        self.on_chain = state.clone();
        let (Some(state), Some(done)) = (state, &self.done) else {
            // Nothing on-chain (or no longer, after a reorg): publish again in our turn.
            self.published = false;
            return;
        };
        if state.value != done.report.value {
            if !self.conflict {
                self.conflict = true;
                out.push(Action::Conflict {
                    on_chain: state.value,
                    ours: done.report.value,
                    tx_hash: state.tx_hash,
                });
            }
            return;
        }
        if !self.published && state.publishes(done.report.value, self.params.confirmations) {
            self.published = true;
            out.push(Action::Published(state));
        }
    }

    fn maybe_publish(&mut self, now: u64, out: &mut Vec<Action>) {
        if self.on_chain.is_some() || self.conflict {
            return;
        }
        let Some((turn, publisher)) = self.publisher_at(now) else { return };
        if publisher != self.me || self.asked_in_turn == Some(turn) {
            return;
        }
        let signatures: Vec<(Address, _)> =
            self.valid_signatures().map(|(_, s)| (s.signer, s.signature)).collect();
        if signatures.len() < self.committee.q() {
            return;
        }
        let report = self.done.as_ref().expect("publisher_at is Some once final").report.clone();
        self.asked_in_turn = Some(turn);
        out.push(Action::Publish { report, signatures, turn });
    }
}
