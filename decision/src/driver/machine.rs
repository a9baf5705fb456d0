//! [`SettlementDriver`]: one settlement's machines and the routing between them. See the module
//! docs of [`crate::driver`] for what goes in and out.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use alloy_primitives::B256;
use fixd_dispute::{DisputeFiling, DisputeParams, Finality, Phase, Refusal};
use fixd_proto::eip712::{SignedDispute, SignedRuling, verify_typed};
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::{PublicKey, Signed};
use fixd_proto::types::certificate::{Certificate, DecisionId};
use fixd_proto::types::dispute::{DisputeEscrow, RelayedDispute, RelayedRuling};
use fixd_proto::types::report::FinalReport;
use fixd_proto::types::settlement::SettlementSpec;

use super::{
    Accepted, DriverSetup, Effect, Held, Input, Interest, MAX_EVIDENCE_BYTES, Record, Rejected, Unsigned,
    agreed_events, dispute_event, review_event, ruling_event, vouched,
};
use crate::consensus::{self, Certification, ConsensusParams, Equivocation, Reports, Review};
use crate::events::EventKind;
use crate::publication::{self, Publication, PublicationParams};
use fixd_proto::certify::ReviewTarget;

/// Ticks without another input before a driver may be idle ([`SettlementDriver::idle_until`]).
pub const QUIET_TICKS: u64 = 5;

/// One settlement's certification, reviews and publication.
#[derive(Debug)]
pub struct SettlementDriver {
    /// Shared by every driver of the node (240 bytes each, by value).
    setup: Arc<DriverSetup>,
    spec: SettlementSpec,
    id: B256,
    /// This member's ed25519 key, to find its own messages among those held.
    my_key: PublicKey,
    certification: Certification,
    /// Created once the settlement is certified.
    publication: Option<Publication>,
    /// The review certification of each dispute round under review, by dispute id.
    reviews: BTreeMap<B256, Certification<Review>>,
    /// The final report's decision; it starts once this member's fold is final.
    report: Certification<Reports>,
    /// What the store holds of the settlement, as far as the machines need it again.
    held: Held,
    /// The hashes of the held review votes and report signatures: a message that comes again
    /// (catch-up answers repeat) is held once. (Round messages are held by their machines.)
    seen: HashSet<B256>,
    /// The report this member asked to sign, and its finality (for the `final` event).
    /// Boxed: 256 bytes by value in every driver, and set only from its report to its publication.
    signing: Option<Box<(FinalReport, Finality)>>,
    ticks: u64,
    /// `ticks` at the last input, not a tick, that did something: a driver is idle only after
    /// [`QUIET_TICKS`] without one.
    quiet_since: u64,
    /// When an undecided decision last asked a peer for what it holds.
    last_catch_up: u64,
}

impl SettlementDriver {
    /// The driver of `spec`, fed what the store holds of it (`held`). Returns the effects of
    /// picking the publication up again (its window, a report to watch, a review to resume).
    /// Fails only on dispute rules that cannot work (a genesis that should never have loaded).
    pub fn restore(
        setup: impl Into<Arc<DriverSetup>>,
        spec: SettlementSpec,
        mut held: Held,
        now: u64,
    ) -> Result<(Self, Vec<Effect>), fixd_dispute::Error> {
        let setup = setup.into();
        let id = spec.id();
        // Checked once here, so that creating the publication later cannot fail.
        new_publication(&setup, &spec)?;
        let my_key = setup.committee.members()[setup.me].ed25519;
        let mut certification = Certification::new(
            setup.committee.clone(),
            setup.me,
            setup.network_id,
            spec.clone(),
            setup.consensus,
        );
        // Replayed into the machine without acting: the store holds it, and the machine's first
        // tick acts on it (its own votes come back the same, or their slots refuse them).
        for o in &held.observations {
            certification.replay(now, consensus::Event::Observation(o.clone()));
        }
        replay_rounds(&mut certification, &held, now);
        if let Some(certificate) = &held.certificate {
            certification.restore_decision(Arc::clone(certificate));
        }
        let mut report = Certification::for_report(
            setup.committee.clone(),
            setup.me,
            setup.network_id,
            spec.clone(),
            setup.consensus,
        );
        replay_rounds(&mut report, &held, now);
        if let Some(certificate) = &held.report_certificate {
            report.restore_decision(Arc::clone(certificate));
        }
        // The second halves of kept evidence: the machine finds the equivocators again.
        for evidence in &held.equivocations {
            if let Some(event) = certification_event(evidence.second.clone()) {
                certification.replay(now, event);
            }
        }
        let seen = (held.review_votes.iter().map(Signed::hash))
            .chain(held.report_signatures.iter().map(Signed::hash))
            .collect();
        let vouched = vouched(&setup.committee, &held);
        held.late.retain(|h| !vouched.contains(h));
        // Replayed into the machines above; not needed again. The round messages of reviews
        // stay: a review's machine is built again when its dispute is folded in.
        held.observations = Vec::new();
        held.equivocations = Vec::new();
        held.proposals.retain(|p| matches!(p.payload.decision(), DecisionId::Review { .. }));
        held.votes.retain(|v| matches!(v.payload.decision, DecisionId::Review { .. }));
        let mut driver = SettlementDriver {
            setup,
            spec,
            id,
            my_key,
            certification,
            publication: None,
            reviews: BTreeMap::new(),
            report,
            held,
            seen,
            signing: None,
            ticks: 0,
            quiet_since: 0,
            last_catch_up: 0,
        };
        let mut effects = Vec::new();
        if driver.held.certificate.is_some() {
            driver.ensure_publication(now, &mut effects);
        }
        Ok((driver, effects))
    }

    /// The driver of a settlement whose host dropped it at `parked_at` ([`Self::idle_until`], or
    /// published), built again from what the store holds. It is restored as of `parked_at`, so
    /// that everything it does is what the dropped driver had done already (announced the
    /// window, signed, asked to watch): none of it is carried out twice. What the time since
    /// changes comes with its next input.
    pub fn resume(
        setup: impl Into<Arc<DriverSetup>>,
        spec: SettlementSpec,
        held: Held,
        parked_at: u64,
    ) -> Result<Self, fixd_dispute::Error> {
        Self::restore(setup, spec, held, parked_at).map(|(driver, _done_before)| driver)
    }

    /// Until when only an input can give this driver something to do, if that is so at `now`:
    /// certified, its challenge window about to open or open with nothing disputed, its fold not
    /// final, its report decision not begun, nothing being signed, and no input but ticks for
    /// [`QUIET_TICKS`] (so that a member who sends a message now and then to a settlement has it
    /// built again at most once in that many ticks, not at each). The host may drop it until
    /// then and build it again with [`Self::resume`] at an input or at that time (when the fold
    /// next changes: the window opens, or its close has settled and the fold is final). In an
    /// expiry burst every certified settlement waits out its window at once: a host that keeps
    /// them as a time each holds a burst's certificates on disk instead of in memory.
    pub fn idle_until(&self, now: u64) -> Option<u64> {
        let publication = self.publication.as_ref()?;
        let disputes = publication.disputes();
        let quiet = self.ticks.saturating_sub(self.quiet_since) >= QUIET_TICKS
            && self.reviews.is_empty()
            && self.signing.is_none()
            && self.held.disputes.is_empty()
            && self.held.rulings.is_empty()
            && self.held.review_votes.is_empty()
            && self.held.review_certificates.is_empty()
            && self.held.late.is_empty()
            && self.report.round().is_none()
            && publication.own_report().is_none()
            && publication.report().is_none()
            && matches!(disputes.phase(), Phase::AwaitingCertificate | Phase::Challenge);
        if !quiet {
            return None;
        }
        // What changes the last fold (at its horizon, its machine's clock): the next event held,
        // or the machine's next wakeup. The fold runs `settle_secs` behind the clock: it reaches
        // the certificate (the window opens) and the window's close that much later.
        let settle = self.settle_secs();
        let folded_to = disputes.clock();
        let next =
            (publication.timeline().next_after(folded_to).into_iter()).chain(disputes.next_wakeup()).min()?;
        let until = next.saturating_add(settle);
        (now < until).then_some(until)
    }

    pub fn spec(&self) -> &SettlementSpec {
        &self.spec
    }

    pub fn certification(&self) -> &Certification {
        &self.certification
    }

    pub fn publication(&self) -> Option<&Publication> {
        self.publication.as_ref()
    }

    /// The review under way for a dispute, if any.
    pub fn review(&self, dispute_id: &B256) -> Option<&Certification<Review>> {
        self.reviews.get(dispute_id)
    }

    /// What this driver takes now, for the network to drop the rest unchecked
    /// ([`super::interest`]).
    pub fn interest(&self) -> Interest {
        let rounds =
            [(DecisionId::Value, self.certification.round()), (DecisionId::Report, self.report.round())]
                .into_iter()
                .map(|(decision, round)| (decision, round.unwrap_or(0)))
                .chain(self.reviews.iter().map(|(id, machine)| {
                    (DecisionId::Review { dispute_id: *id }, machine.round().unwrap_or(0))
                }));
        let disputes = self.held.disputes.iter().map(|d| d.payload.dispute.dispute.dispute_id);
        Interest::new(rounds, disputes)
    }

    /// Holds the start of its first-value and final-report decisions until [`Self::admit`]
    /// ([`Certification::hold_start`]): the host starts a burst's decisions a wave at a time.
    /// A review is never held: a dispute is one settlement's, not a burst's.
    pub fn hold_starts(&mut self) {
        self.certification.hold_start();
        self.report.hold_start();
    }

    /// How many of its held decisions are due to start at `now`.
    pub fn waiting(&self, now: u64) -> usize {
        usize::from(self.certification.waiting(now)) + usize::from(self.report.waiting(now))
    }

    /// Lets its decisions due at `now` start (at the next input); how many they are. One not
    /// yet due (the final report's, before this member's fold is final) stays held.
    pub fn admit(&mut self, now: u64) -> usize {
        let mut admitted = 0;
        if self.certification.waiting(now) {
            self.certification.admit();
            admitted += 1;
        }
        if self.report.waiting(now) {
            self.report.admit();
            admitted += 1;
        }
        admitted
    }

    /// How many of its first-value and final-report decisions run, started at `since` or later.
    pub fn running_since(&self, since: u64) -> usize {
        [self.certification.running_since(), self.report.running_since()]
            .into_iter()
            .filter(|started| started.is_some_and(|at| at >= since))
            .count()
    }

    /// Whether the contract holds this member's report with enough confirmations.
    pub fn is_published(&self) -> bool {
        self.publication.as_ref().is_some_and(Publication::is_published)
    }

    /// Handles one input at unix time `now`.
    pub fn on(&mut self, now: u64, input: Input) -> Vec<Effect> {
        let tick = matches!(input, Input::Tick);
        let mut effects = Vec::new();
        match input {
            Input::Gossip(message) => self.on_message(now, message, false, &mut effects),
            Input::Own(message) => self.on_message(now, message, true, &mut effects),
            Input::BondChecked { relayed, late } => {
                self.accept_relay(now, GossipMessage::dispute(relayed), late, &mut effects);
            }
            Input::Recomputed { dispute_round, vote } => {
                effects.push(Effect::Sign(Unsigned::ReviewVote { dispute_round, vote }));
            }
            Input::Chain(state) => {
                effects.push(Effect::Keep(Record::OnChain(state.clone())));
                self.held.on_chain = state.clone();
                if self.held.certificate.is_some() {
                    self.feed_publication(now, publication::Event::Chain(state), &mut effects);
                }
            }
            Input::Certificate(certificate) => {
                let event = consensus::Event::Certificate(certificate.clone());
                match DecisionId::of_source(&certificate.proposal.payload.source) {
                    DecisionId::Value => {
                        let actions = self.certification.on(now, event);
                        self.carry_rounds(now, DecisionId::Value, actions, &mut effects);
                    }
                    DecisionId::Review { dispute_id } => {
                        self.feed_review(now, dispute_id, event, &mut effects)
                    }
                    DecisionId::Report => self.feed_report(now, event, &mut effects),
                }
            }
            Input::Tick => self.tick(now, &mut effects),
        }
        // An input that changed nothing (a catch-up answer's certificate held already) is not
        // one a member sent it: only one that did something keeps the driver busy.
        if !tick && !effects.is_empty() {
            self.quiet_since = self.ticks;
        }
        effects
    }

    /// A dispute submitted to this member (its signature and bond checked by the caller): if
    /// the agreed timeline takes it now, this member relays it ([`Unsigned::Dispute`]).
    pub fn submit_dispute(
        &mut self,
        now: u64,
        dispute: SignedDispute,
        escrow: DisputeEscrow,
    ) -> (Vec<Effect>, Result<Accepted, Rejected>) {
        self.quiet_since = self.ticks;
        let mut effects = Vec::new();
        let result = self.try_submit_dispute(now, dispute, escrow, &mut effects);
        (effects, result)
    }

    fn try_submit_dispute(
        &mut self,
        now: u64,
        dispute: SignedDispute,
        escrow: DisputeEscrow,
        effects: &mut Vec<Effect>,
    ) -> Result<Accepted, Rejected> {
        let dispute_id = dispute.dispute.dispute_id;
        // A relay that reached this member late does not count on its own, so it does not
        // make the disputer's own submission a duplicate either.
        let in_time = |d: &&Signed<RelayedDispute>| !self.held.late.contains(&d.hash());
        if self
            .held
            .disputes
            .iter()
            .filter(in_time)
            .any(|d| d.payload.dispute.dispute.dispute_id == dispute_id)
        {
            return Err(Rejected::Duplicate(dispute_id));
        }
        if self.held.certificate.is_none() {
            return Err(Rejected::Refused(Refusal::NotCertified));
        }
        // The agreed time is bound to the bond's block, so no member can date a dispute much
        // earlier than its bond: every receiver checks the same bound.
        let max_age = self.settle_secs();
        let publication = self.ensure_publication(now, effects);
        if now > escrow.block_timestamp.saturating_add(max_age) {
            return Err(Rejected::BondTooOld { mined_at: escrow.block_timestamp, max_age });
        }
        let dispute_round = publication
            .timeline()
            .predict_dispute(now, DisputeFiling::from(&dispute.dispute), escrow.pool_wei)
            .map_err(Rejected::Refused)?;
        effects.push(Effect::Sign(Unsigned::Dispute(RelayedDispute { dispute, escrow, accepted_at: now })));
        Ok(Accepted { dispute_round, accepted_at: now })
    }

    /// The arbitrator's ruling, submitted to this member (its signature checked by the
    /// caller): taken while the dispute is in arbitration and before the hard deadline.
    /// Returns the agreed time.
    pub fn submit_ruling(&mut self, now: u64, ruling: SignedRuling) -> (Vec<Effect>, Result<u64, Rejected>) {
        self.quiet_since = self.ticks;
        let mut effects = Vec::new();
        let result = self.try_submit_ruling(now, ruling, &mut effects);
        (effects, result)
    }

    fn try_submit_ruling(
        &mut self,
        now: u64,
        ruling: SignedRuling,
        effects: &mut Vec<Effect>,
    ) -> Result<u64, Rejected> {
        let dispute_id = ruling.ruling.dispute_id;
        // Another member's relay of this ruling does not make the arbitrator's own submission a
        // duplicate: that relay may be backdated, and only the fold says which relay counts.
        let relayed = |r: &&Signed<RelayedRuling>| r.signer == self.my_key;
        if self.held.rulings.iter().filter(relayed).any(|r| r.payload.ruling.ruling.dispute_id == dispute_id)
        {
            return Err(Rejected::DuplicateRuling(dispute_id));
        }
        if self.held.certificate.is_none() {
            return Err(Rejected::NotInArbitration(dispute_id));
        }
        let state = self.ensure_publication(now, effects).timeline().latest(now);
        if now >= state.hard_deadline() {
            return Err(Rejected::TooLate { hard_deadline: state.hard_deadline() });
        }
        let in_round = state.phase() == Phase::Arbitration
            && state.disputes().iter().any(|d| d.filing.dispute_id == dispute_id && d.decision.is_none());
        if !in_round {
            return Err(Rejected::NotInArbitration(dispute_id));
        }
        effects.push(Effect::Sign(Unsigned::Ruling(RelayedRuling { ruling, accepted_at: now })));
        Ok(now)
    }

    /// How far the dispute machine lags the clock (see [`crate::publication::timeline`]).
    fn settle_secs(&self) -> u64 {
        PublicationParams::from_protocol(&self.setup.protocol).settle_secs
    }

    fn domain(&self) -> alloy_sol_types::Eip712Domain {
        fixd_proto::eip712::domain(self.setup.chain_id, self.setup.contract)
    }

    fn held_dispute(&self, dispute_id: &B256) -> Option<&Signed<RelayedDispute>> {
        self.held.disputes.iter().find(|d| &d.payload.dispute.dispute.dispute_id == dispute_id)
    }

    /// A message: kept (unless it is this member's, which the signer kept), then fed to the
    /// machines it belongs to.
    fn on_message(&mut self, now: u64, message: GossipMessage, own: bool, effects: &mut Vec<Effect>) {
        let keep = |effects: &mut Vec<Effect>, message: &GossipMessage| {
            if !own {
                effects.push(Effect::Keep(Record::Message(message.clone())));
            }
        };
        match message {
            GossipMessage::Observation(o) => {
                if own {
                    effects.push(Effect::Event {
                        kind: EventKind::Observed,
                        detail: serde_json::json!({ "hash": o.hash(), "value": o.payload.computation.value }),
                    });
                }
                let actions = self.certification.on(now, consensus::Event::Observation(o));
                self.carry_rounds(now, DecisionId::Value, actions, effects);
            }
            GossipMessage::Proposal(p) => {
                let event = consensus::Event::Proposal((*p).clone());
                match p.payload.decision() {
                    DecisionId::Report => self.feed_report(now, event, effects),
                    DecisionId::Review { dispute_id } => self.feed_review(now, dispute_id, event, effects),
                    DecisionId::Value => {
                        let actions = self.certification.on(now, event);
                        self.carry_rounds(now, DecisionId::Value, actions, effects);
                    }
                }
            }
            GossipMessage::Vote(v) => {
                let event = consensus::Event::Vote(v.clone());
                match v.payload.decision {
                    DecisionId::Report => self.feed_report(now, event, effects),
                    DecisionId::Review { dispute_id } => self.feed_review(now, dispute_id, event, effects),
                    DecisionId::Value => {
                        let actions = self.certification.on(now, event);
                        self.carry_rounds(now, DecisionId::Value, actions, effects);
                    }
                }
            }
            GossipMessage::ReviewVote(v) => {
                // Held only for a dispute this node holds, and at most two per member and dispute
                // (the second is evidence), so that one member cannot fill the store.
                let dispute_id = v.payload.dispute_id;
                let by_author = self
                    .held
                    .review_votes
                    .iter()
                    .filter(|h| h.signer == v.signer && h.payload.dispute_id == dispute_id);
                if self.held_dispute(&dispute_id).is_none()
                    || by_author.count() >= 2
                    || !self.seen.insert(v.hash())
                {
                    return;
                }
                keep(effects, &GossipMessage::ReviewVote(v.clone()));
                if own {
                    tracing::info!(settlement = %self.id, dispute = %v.payload.dispute_id, value = ?v.payload.value, median_recomputes = v.payload.median_recomputes, "review vote signed");
                    effects.push(Effect::Event {
                        kind: EventKind::ReviewVote,
                        detail: serde_json::json!({ "dispute_id": v.payload.dispute_id, "member": self.setup.me, "value": v.payload.value.value() }),
                    });
                }
                self.held.review_votes.push(v.clone());
                let dispute_id = v.payload.dispute_id;
                self.count_vouched_relays(now, effects);
                self.feed_review(now, dispute_id, consensus::Event::ReviewVote(v), effects);
            }
            // A batch spans settlements: the node's batcher takes it, never one settlement's driver.
            GossipMessage::BatchSignature(_) => {}
            GossipMessage::ReportSignature(signature) => {
                if !own {
                    // A repeat (catch-up answers repeat) is held already.
                    if self.seen.contains(&signature.hash()) {
                        return;
                    }
                    // Held only once it recovers to its author's address over the report it
                    // names, so that what the store holds is never checked again when read.
                    if let Err(reason) = self.authored(&signature) {
                        tracing::warn!(settlement = %self.id, from = %signature.signer, %reason, "report signature refused");
                        return;
                    }
                }
                keep(effects, &GossipMessage::ReportSignature(signature.clone()));
                // Held for the publication until it exists (it is fed them then), and this
                // member's own for good (whether it signed already); the publication holds the
                // rest.
                if self.seen.insert(signature.hash()) && (own || self.publication.is_none()) {
                    self.held.report_signatures.push(signature.clone());
                }
                if own {
                    self.signed_report(&signature.payload.report, effects);
                }
                let Some(author) = self.setup.committee.index_of(&signature.signer) else { return };
                if self.held.certificate.is_none() {
                    // Held; fed once this node has the certificate.
                    return;
                }
                let event = publication::Event::Signature { author, signature: signature.payload };
                self.feed_publication(now, event, effects);
            }
            GossipMessage::Dispute(relayed) if own => {
                self.accept_relay(now, GossipMessage::Dispute(relayed), false, effects);
            }
            GossipMessage::Dispute(relayed) => self.check_relayed_dispute(now, *relayed, effects),
            GossipMessage::Ruling(relayed) => {
                if own || self.ruling_is_the_arbitrators(&relayed) {
                    let late = !own && !self.in_time(now, relayed.payload.accepted_at);
                    self.accept_relay(now, GossipMessage::Ruling(relayed), late, effects);
                }
            }
        }
    }

    /// Whether a report signature from gossip is its author's: the author's secp256k1 address,
    /// recovered over the EIP-712 digest of the report it names (which may differ from this
    /// member's; whether it counts is the publication's to say).
    fn authored(&self, signature: &Signed<fixd_proto::eip712::ReportSignature>) -> Result<(), String> {
        let member =
            self.setup.committee.index_of(&signature.signer).map(|i| &self.setup.committee.members()[i]);
        let Some(member) = member else { return Err("not a member".into()) };
        let payload = &signature.payload;
        if payload.signer != member.eth_address {
            return Err(format!(
                "claims signer {}, not the author's address {}",
                payload.signer, member.eth_address
            ));
        }
        verify_typed(&self.domain(), &payload.report, &payload.signature, member.eth_address)
            .map_err(|e| e.to_string())
    }

    /// This member's report signature is kept: say so and watch the chain.
    fn signed_report(&mut self, report: &FinalReport, effects: &mut Vec<Effect>) {
        let by = self.signing.take().filter(|signing| signing.0 == *report).map(|signing| signing.1.by);
        tracing::info!(settlement = %self.id, value = %report.value, round = report.round, ?by, "final; report signed");
        effects.push(Effect::Event {
            kind: EventKind::Final,
            detail: serde_json::json!({ "value": report.value, "round": report.round, "by": by }),
        });
        if self.setup.has_chain {
            effects.push(Effect::Watch);
        }
    }

    /// A relayed dispute from gossip: the disputer's signature and the relay's date here, the
    /// bond on this node's own RPC ([`Effect::CheckBond`]).
    fn check_relayed_dispute(&mut self, now: u64, signed: Signed<RelayedDispute>, effects: &mut Vec<Effect>) {
        let d = &signed.payload.dispute;
        let (id, dispute_id) = (self.id, d.dispute.dispute_id);
        let relayer = signed.signer;
        let held = |r: &Signed<RelayedDispute>| {
            r.payload.dispute.dispute.dispute_id == dispute_id && r.signer == relayer
        };
        if self.held.disputes.iter().any(held) {
            return;
        }
        if let Err(error) = verify_typed(&self.domain(), &d.dispute, &d.signature, d.dispute.disputer) {
            tracing::warn!(settlement = %id, dispute = %dispute_id, %error, relayed_by = %signed.signer, "relayed dispute with a bad disputer signature; ignored");
            return;
        }
        if d.dispute.evidence.len() > MAX_EVIDENCE_BYTES {
            return;
        }
        let (mined_at, accepted_at) = (signed.payload.escrow.block_timestamp, signed.payload.accepted_at);
        let bound = mined_at.saturating_add(self.settle_secs() + self.setup.consensus.max_clock_skew_secs);
        if accepted_at < mined_at || accepted_at > bound {
            tracing::warn!(settlement = %id, dispute = %dispute_id, accepted_at, mined_at, relayed_by = %signed.signer, "relayed dispute dated outside its bond's bounds; ignored");
            return;
        }
        if !self.setup.has_chain {
            tracing::warn!(settlement = %id, "a dispute arrived, but without chain.rpc_url this node cannot check its bond");
            return;
        }
        // An RPC that is down or behind is waited for, up to the hard deadline, after which no
        // dispute counts any more.
        let give_up_at = self.spec.maturity.saturating_add(self.setup.protocol.hard_deadline_secs);
        let late = !self.in_time(now, accepted_at);
        effects.push(Effect::CheckBond { relayed: signed, give_up_at, late });
    }

    /// Whether a relay dated `accepted_at` that arrives at `now` reached this member in time:
    /// within `max_clock_skew` of this clock, plus a round's length for the transport when it
    /// is older (the window a fresh proposal's date must fall in).
    fn in_time(&self, now: u64, accepted_at: u64) -> bool {
        let consensus = &self.setup.consensus;
        let oldest = now.saturating_sub(consensus.max_clock_skew_secs + consensus.round_timeout_secs);
        (oldest..=now.saturating_add(consensus.max_clock_skew_secs)).contains(&accepted_at)
    }

    fn ruling_is_the_arbitrators(&self, signed: &Signed<RelayedRuling>) -> bool {
        let r = &signed.payload.ruling;
        let arbitrator = self.setup.arbitrator;
        if arbitrator == alloy_primitives::Address::ZERO {
            return false;
        }
        match verify_typed(&self.domain(), &r.ruling, &r.signature, arbitrator) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(dispute = %r.ruling.dispute_id, %error, "relayed ruling not signed by the arbitrator; ignored");
                false
            }
        }
    }

    /// A relayed dispute or ruling: this member's own, a dispute whose bond checked, or a
    /// ruling the arbitrator signed, in time or `late` (see the module docs). Held (one relay
    /// per member and dispute id, as the store keeps; the fold takes them in agreed-time order),
    /// kept unless it is this member's own (kept when signed), and fed.
    fn accept_relay(&mut self, now: u64, message: GossipMessage, late: bool, effects: &mut Vec<Effect>) {
        let (fresh, event) = match &message {
            GossipMessage::Dispute(d) => {
                let id_of = |r: &RelayedDispute| r.dispute.dispute.dispute_id;
                (hold_relay(&mut self.held.disputes, d, id_of), dispute_event(&d.payload, late))
            }
            GossipMessage::Ruling(r) => {
                let id_of = |r: &RelayedRuling| r.ruling.ruling.dispute_id;
                (hold_relay(&mut self.held.rulings, r, id_of), ruling_event(&r.payload, late))
            }
            _ => return,
        };
        if !fresh {
            return;
        }
        if late {
            tracing::warn!(settlement = %self.id, ?event, relayed_by = %message.signer(), now, "relay dated outside the receipt bound (backdated, or released late): held as late, counted only if the committee's report takes it");
        } else {
            tracing::info!(settlement = %self.id, ?event, relayed_by = %message.signer(), "accepted");
        }
        if message.signer() != &self.my_key {
            let hash = message.hash();
            effects.push(Effect::Keep(Record::Message(message)));
            if late {
                self.held.late.insert(hash);
                effects.push(Effect::Keep(Record::LateRelay(hash)));
            }
            // What refers to this relay (the review votes that vouch for a late one, above all)
            // and reached this member before it was held, while its bond was being read back,
            // was dropped: ask a peer for it again.
            catch_up(effects);
        }
        if self.held.certificate.is_some() {
            self.feed_publication(now, event, effects);
        }
    }

    /// Late relays of a dispute that f + 1 members have cast review votes on count on their own
    /// from now on: at least one honest member folds that dispute, so the review needs this
    /// member too (see [`super::vouched_relays`]).
    fn count_vouched_relays(&mut self, now: u64, effects: &mut Vec<Effect>) {
        let vouched = vouched(&self.setup.committee, &self.held);
        if vouched.is_empty() {
            return;
        }
        self.held.late.retain(|h| !vouched.contains(h));
        if self.held.certificate.is_none() {
            return;
        }
        let relays = (self.held.disputes.iter().filter(|d| vouched.contains(&d.hash())))
            .map(|d| dispute_event(&d.payload, false))
            .chain(
                (self.held.rulings.iter().filter(|r| vouched.contains(&r.hash())))
                    .map(|r| ruling_event(&r.payload, false)),
            )
            .collect::<Vec<_>>();
        for event in relays {
            tracing::info!(settlement = %self.id, ?event, "a late relay counts: f + 1 members review its dispute");
            self.feed_publication(now, event, effects);
        }
    }

    fn tick(&mut self, now: u64, effects: &mut Vec<Effect>) {
        self.ticks = self.ticks.wrapping_add(1);
        self.tick_reviews(now, effects);
        if now < self.spec.observe_at() || self.is_published() {
            return;
        }
        if self.held.certificate.is_some() {
            self.feed_publication(now, publication::Event::Tick, effects);
            if self.report.certificate().is_none() {
                self.feed_report(now, consensus::Event::Tick, effects);
                let started = self.report.round().is_some();
                self.catch_up_undecided(now, started, false, effects);
            }
            let q = self.setup.committee.q();
            let publication = self.publication.as_ref().expect("fed above");
            let final_but_short = publication.report().is_some()
                && !publication.is_published()
                && publication.signers().len() < q;
            // Until final, ask a peer now and then for disputes, reviews and rulings this node
            // may have missed (gossip is best effort).
            let open = publication.report().is_none();
            if final_but_short || (open && self.ticks.is_multiple_of(10)) {
                catch_up(effects);
            }
            return;
        }
        if self.certification.certificate().is_some() {
            return;
        }
        let actions = self.certification.on(now, consensus::Event::Tick);
        let started = self.certification.round().is_some();
        let missing = !self.certification.missing_inputs().is_empty();
        self.carry_rounds(now, DecisionId::Value, actions, effects);
        self.catch_up_undecided(now, started, missing, effects);
    }

    /// Ticks every review under way, and asks a peer for what a review still lacks once a
    /// whole round of it has passed without a certificate (a member that restarted, or was cut
    /// off, in the middle of it).
    fn tick_reviews(&mut self, now: u64, effects: &mut Vec<Effect>) {
        // A review whose round the dispute machine has left (decided, escalated, final) is done.
        let reviewing = self
            .publication
            .as_ref()
            .is_none_or(|p| matches!(p.disputes().phase(), Phase::Review | Phase::Recertifying));
        if !reviewing {
            self.reviews.clear();
        }
        let open: Vec<B256> =
            self.reviews.iter().filter(|(_, m)| m.certificate().is_none()).map(|(k, _)| *k).collect();
        for dispute_id in open {
            self.feed_review(now, dispute_id, consensus::Event::Tick, effects);
            let machine = &self.reviews[&dispute_id];
            if machine.certificate().is_none() {
                let (started, missing) = (machine.round().is_some(), !machine.missing_inputs().is_empty());
                self.catch_up_undecided(now, started, missing, effects);
            }
        }
    }

    /// A decision under way asks a peer for what it holds when a proposal lists inputs this
    /// member lacks, and every half round once it runs: Tendermint waits for q votes to leave a
    /// round, gossip is best effort, and a member that restarts or comes back has missed what
    /// was sent meanwhile (Malachite's engine rebroadcasts for the same reason).
    fn catch_up_undecided(&mut self, now: u64, started: bool, missing: bool, effects: &mut Vec<Effect>) {
        let every = (self.setup.consensus.round_timeout_secs / 2).max(1);
        if missing || (started && now >= self.last_catch_up.saturating_add(every)) {
            self.last_catch_up = now;
            catch_up(effects);
        }
    }

    /// The publication, created on first use and fed what is held (agreed events, report
    /// signatures, the last chain read); the effects of that replay go to `effects`.
    fn ensure_publication(&mut self, now: u64, effects: &mut Vec<Effect>) -> &Publication {
        if self.publication.is_none() {
            let mut machine = new_publication(&self.setup, &self.spec).expect("checked in restore");
            let held = &self.held;
            let mut actions = machine.on_all(
                now,
                agreed_events(
                    &self.setup.committee,
                    held.certificate.as_deref(),
                    &held.review_certificates,
                    &held.review_votes,
                    &held.disputes,
                    &held.rulings,
                    &held.late,
                ),
            );
            for signature in &held.report_signatures {
                if let Some(author) = self.setup.committee.index_of(&signature.signer) {
                    let event =
                        publication::Event::Signature { author, signature: signature.payload.clone() };
                    actions.extend(machine.on(now, event));
                }
            }
            // The report the committee decided before a restart, then the chain read that may
            // hold it: read first, it would find no report to compare with, and the settlement
            // would count as unpublished until the next read.
            if let Some(report) = held.report_certificate.as_ref().and_then(|c| c.proposal.payload.report()) {
                actions.extend(machine.decided(now, report));
            }
            if let Some(state) = &held.on_chain {
                actions.extend(machine.on(now, publication::Event::Chain(Some(state.clone()))));
            }
            self.publication = Some(machine);
            // Fed to it: only this member's own are needed again (see `SignReport`).
            let me = self.my_key;
            self.held.report_signatures.retain(|s| s.signer == me);
            self.held.report_signatures.shrink_to_fit();
            self.carry_publication(now, actions, effects);
        }
        self.publication.as_ref().expect("created above")
    }

    /// Feeds one event to the publication (created if need be) and carries out what follows.
    fn feed_publication(&mut self, now: u64, event: publication::Event, effects: &mut Vec<Effect>) {
        if self.publication.is_none() {
            // Created from what is held, which includes this event's record already (a
            // certificate, dispute, ruling or signature is held before it is fed).
            self.ensure_publication(now, effects);
            if !matches!(event, publication::Event::Tick | publication::Event::Chain(_)) {
                return;
            }
        }
        let machine = self.publication.as_mut().expect("created above");
        let actions = machine.on(now, event);
        self.carry_publication(now, actions, effects);
    }

    /// Carries out the actions of a certification: the first one (`review: None`) or the
    /// review of a dispute. Round messages are signed alike; certificates go their own ways.
    fn carry_rounds(
        &mut self,
        now: u64,
        decision: DecisionId,
        actions: Vec<consensus::Action>,
        effects: &mut Vec<Effect>,
    ) {
        let id = self.id;
        for action in actions {
            match action {
                // The machine holds it, and the store (whose round messages a restart replays):
                // the driver keeps no copy.
                consensus::Action::Hold(message) => {
                    // This member's own messages were kept when signed; review votes are kept
                    // on arrival (a review may start after they come).
                    let kept =
                        message.signer() == &self.my_key || matches!(message, GossipMessage::ReviewVote(_));
                    if !kept {
                        effects.push(Effect::Keep(Record::Message(message)));
                    }
                }
                consensus::Action::Propose(proposal) => {
                    effects.push(Effect::Sign(Unsigned::Proposal(proposal)));
                }
                // A taken slot (a restarted core asking again) skips the vote; the decision goes
                // on without it.
                consensus::Action::Vote(vote) => effects.push(Effect::Sign(Unsigned::Vote(vote))),
                consensus::Action::Certified(certificate) => match decision {
                    DecisionId::Value => self.certified(now, certificate, effects),
                    DecisionId::Review { dispute_id } => {
                        self.review_certified(now, dispute_id, Arc::unwrap_or_clone(certificate), effects);
                    }
                    DecisionId::Report => self.report_decided(now, certificate, effects),
                },
                consensus::Action::Equivocation(evidence) => self.keep_equivocation(evidence, effects),
                consensus::Action::Rejected { from, reason } => {
                    tracing::warn!(settlement = %id, ?decision, %from, %reason, "message rejected; not voting for it");
                }
            }
        }
    }

    /// The first certificate: kept, announced, and the publication starts from it.
    fn certified(&mut self, now: u64, certificate: Arc<Certificate>, effects: &mut Vec<Effect>) {
        let proposal = &certificate.proposal.payload;
        tracing::info!(settlement = %self.id, round = certificate.round, value = %proposal.value, "certified");
        effects.push(Effect::Keep(Record::Certificate((*certificate).clone())));
        effects.push(Effect::Event {
            kind: EventKind::Certified,
            detail: serde_json::json!({
                "round": certificate.round,
                "proposed_in": proposal.round,
                "value": proposal.value,
                "challenge_deadline": proposal.challenge_deadline,
            }),
        });
        if self.held.certificate.is_none() {
            self.held.certificate = Some(certificate);
            self.ensure_publication(now, effects);
        }
    }

    /// A review's certificate: kept, announced, and fed to the publication with its votes.
    fn review_certified(
        &mut self,
        now: u64,
        dispute_id: B256,
        certificate: Certificate,
        effects: &mut Vec<Effect>,
    ) {
        let p = &certificate.proposal.payload;
        tracing::info!(settlement = %self.id, %dispute_id, round = certificate.round, value = %p.value, "review certified");
        effects
            .push(Effect::Keep(Record::ReviewCertificate { dispute_id, certificate: certificate.clone() }));
        effects.push(Effect::Event {
            kind: EventKind::ReviewCertified,
            detail: serde_json::json!({ "dispute_id": dispute_id, "round": certificate.round, "value": p.value }),
        });
        let event = review_event(&self.setup.committee, &certificate, &self.held.review_votes);
        if !self.held.review_certificates.iter().any(|(d, _)| d == &dispute_id) {
            self.held.review_certificates.push((dispute_id, certificate));
        }
        match event {
            Some(event) => self.feed_publication(now, event, effects),
            None => tracing::error!(settlement = %self.id, "a review certificate whose votes are not held"),
        }
    }

    /// Keeps equivocation evidence, logs it and tells the event stream: the same for the first
    /// certificate and for reviews.
    fn keep_equivocation(&self, evidence: Equivocation, effects: &mut Vec<Effect>) {
        let (signer, kind, round) = (*evidence.signer(), evidence.kind(), evidence.round());
        tracing::warn!(settlement = %self.id, %signer, ?kind, round, "equivocation: evidence kept, member ignored");
        let detail = serde_json::json!({
            "signer": signer, "kind": kind, "round": round,
            "first": evidence.first.hash(), "second": evidence.second.hash(),
        });
        effects.push(Effect::Keep(Record::Equivocation(evidence)));
        effects.push(Effect::Event { kind: EventKind::Equivocation, detail });
    }

    fn carry_publication(&mut self, now: u64, actions: Vec<publication::Action>, effects: &mut Vec<Effect>) {
        let id = self.id;
        for action in actions {
            match action {
                publication::Action::WindowOpened { round, deadline } => {
                    tracing::info!(settlement = %id, round, deadline, "challenge window open");
                    effects.push(Effect::Event {
                        kind: EventKind::ChallengeWindowOpened,
                        detail: serde_json::json!({ "round": round, "deadline": deadline }),
                    });
                }
                publication::Action::ReportReady { reports, starts_at } => {
                    let values: Vec<_> = reports.iter().map(|r| r.value).collect();
                    tracing::info!(settlement = %id, ?values, starts_at, "final by this member's fold; the report decision runs");
                    self.report.set_acceptable_reports(reports, starts_at);
                    self.feed_report(now, consensus::Event::Tick, effects);
                }
                publication::Action::SignReport { report, finality } => {
                    let signed_before = self
                        .held
                        .report_signatures
                        .iter()
                        .any(|s| s.signer == self.my_key && s.payload.report == report);
                    if signed_before {
                        // Signed before a restart: the machine was fed the held signature
                        // already. Only an unpublished settlement needs watching again.
                        if self.setup.has_chain && !self.is_published() {
                            effects.push(Effect::Watch);
                        }
                        continue;
                    }
                    self.signing = Some(Box::new((report.clone(), finality.clone())));
                    effects.push(Effect::Sign(Unsigned::Report { report, finality }));
                }
                publication::Action::Publish { report, signatures, turn } => {
                    if !self.setup.has_chain {
                        tracing::warn!(settlement = %id, turn, "this member's turn to publish, but no chain.rpc_url is configured");
                        continue;
                    }
                    tracing::info!(settlement = %id, turn, signatures = signatures.len(), "this member's turn to publish");
                    effects.push(Effect::Publish { report, signatures, turn });
                }
                publication::Action::Published(state) => {
                    tracing::info!(settlement = %id, tx = %state.tx_hash, block = state.block_number, confirmations = state.confirmations, "published");
                    let detail = serde_json::to_value(&state).unwrap_or_default();
                    effects.push(Effect::Event { kind: EventKind::Published, detail });
                }
                publication::Action::Conflict { on_chain, ours, tx_hash } => {
                    tracing::error!(settlement = %id, %on_chain, %ours, tx = %tx_hash, "the contract holds another value than this member's final report");
                    effects.push(Effect::Event {
                        kind: EventKind::Conflict,
                        detail: serde_json::json!({ "on_chain": on_chain, "ours": ours, "tx_hash": tx_hash }),
                    });
                }
                publication::Action::Ignored { author, reason } => {
                    tracing::debug!(settlement = %id, author, %reason, "report signature ignored");
                }
                publication::Action::StartReview { dispute_round, dispute_id, contested, at } => {
                    // Replayed after a restart, a round the fold has decided since needs no review.
                    let current = self.publication.as_ref().is_none_or(|p| {
                        let d = p.disputes();
                        d.phase() == Phase::Review && d.dispute_round() == dispute_round
                    });
                    if current {
                        self.start_review(now, dispute_round, dispute_id, contested, at, effects);
                    }
                }
                publication::Action::Disputes { at, action } => {
                    effects.push(dispute_machine_event(id, at, action))
                }
                publication::Action::Revised => {
                    tracing::warn!(settlement = %id, "an event arrived after its agreed time had passed; the dispute history was folded again");
                }
                publication::Action::Failed { reason } => {
                    tracing::error!(settlement = %id, %reason, "settlement failed: nothing certified by the hard deadline");
                    effects.push(Effect::Event {
                        kind: EventKind::Failed,
                        detail: serde_json::json!({ "reason": reason }),
                    });
                }
            }
        }
    }

    /// Starts (or, after a restart, resumes) the review of a dispute round.
    fn start_review(
        &mut self,
        now: u64,
        dispute_round: u16,
        dispute_id: B256,
        contested: B256,
        at: u64,
        effects: &mut Vec<Effect>,
    ) {
        if self.reviews.contains_key(&dispute_id) {
            return;
        }
        let id = self.id;
        // Its instance starts once every member has folded the dispute in: the same time for all.
        let starts_at = at + self.settle_secs();
        let params = ConsensusParams {
            challenge_period_secs: self.setup.protocol.reopened_challenge_period_secs,
            ..self.setup.consensus
        };
        let review = Review { target: ReviewTarget { dispute_id, contested } };
        let mut machine = Certification::for_review(
            review,
            self.setup.committee.clone(),
            self.setup.me,
            self.setup.network_id,
            self.spec.clone(),
            params,
            starts_at,
        );
        // What the store holds of this review (after a restart): replayed without acting.
        for v in &self.held.review_votes {
            machine.replay(now, consensus::Event::ReviewVote(v.clone()));
        }
        replay_rounds(&mut machine, &self.held, now);
        if let Some((_, certificate)) = self.held.review_certificates.iter().find(|(d, _)| d == &dispute_id) {
            machine.restore_decision(Arc::new(certificate.clone()));
        }
        self.reviews.insert(dispute_id, machine);
        tracing::info!(settlement = %id, dispute_round, %dispute_id, %contested, starts_at, "review started");
        effects.push(Effect::Event {
            kind: EventKind::ReviewStarted,
            detail: serde_json::json!({ "dispute_round": dispute_round, "dispute_id": dispute_id, "starts_at": starts_at }),
        });
        let own = self
            .held
            .review_votes
            .iter()
            .find(|v| v.signer == self.my_key && v.payload.dispute_id == dispute_id);
        match own {
            // Voted before a restart: the held vote was fed above. Gossip it again, since the
            // restart may have come before it left.
            Some(vote) => effects.push(Effect::Gossip(GossipMessage::ReviewVote(vote.clone()))),
            None => effects.push(Effect::Recompute { dispute_round, dispute_id, contested }),
        }
    }

    /// Feeds a review's certification, if that review is under way, and carries out what
    /// follows.
    fn feed_review(
        &mut self,
        now: u64,
        dispute_id: B256,
        event: consensus::Event,
        effects: &mut Vec<Effect>,
    ) {
        let Some(machine) = self.reviews.get_mut(&dispute_id) else { return };
        let actions = machine.on(now, event);
        self.carry_rounds(now, DecisionId::Review { dispute_id }, actions, effects);
    }

    /// Feeds the final report's decision and carries out what follows.
    fn feed_report(&mut self, now: u64, event: consensus::Event, effects: &mut Vec<Effect>) {
        let actions = self.report.on(now, event);
        self.carry_rounds(now, DecisionId::Report, actions, effects);
    }

    /// The committee decided the final report: kept, and handed to the publication, which signs
    /// it once this member is final too.
    fn report_decided(&mut self, now: u64, certificate: Arc<Certificate>, effects: &mut Vec<Effect>) {
        let Some(report) = certificate.proposal.payload.report() else { return };
        tracing::info!(settlement = %self.id, round = certificate.round, value = %report.value, outcomes = report.outcomes.len(), "final report decided");
        effects.push(Effect::Keep(Record::ReportCertificate((*certificate).clone())));
        self.held.report_certificate.get_or_insert(certificate);
        self.ensure_publication(now, effects);
        let actions = self.publication.as_mut().expect("created above").decided(now, report);
        self.carry_publication(now, actions, effects);
    }
}

/// Replays the round proposals and votes the store holds of one decision into its machine,
/// without acting (see [`Certification::replay`]).
fn replay_rounds<I: consensus::Inputs>(machine: &mut Certification<I>, held: &Held, now: u64) {
    let decision = machine.decision();
    for p in held.proposals.iter().filter(|p| p.payload.decision() == decision) {
        machine.replay(now, consensus::Event::Proposal(p.clone()));
    }
    for v in held.votes.iter().filter(|v| v.payload.decision == decision) {
        machine.replay(now, consensus::Event::Vote(v.clone()));
    }
}

/// Holds a relay unless its relayer's relay of that dispute id is held already; says whether it
/// is new. Relays of one dispute by several members are all held (at most one each): the fold
/// takes them in agreed-time order (a ruling dated before its arbitration is ignored there, a
/// later relay of an accepted dispute is a duplicate), the same on every member that holds the
/// same relays. No relay can keep another out, as the earliest-relay rule let a backdated one.
fn hold_relay<T: Clone>(held: &mut Vec<Signed<T>>, relay: &Signed<T>, id_of: impl Fn(&T) -> B256) -> bool {
    let dispute_id = id_of(&relay.payload);
    if held.iter().any(|r| r.signer == relay.signer && id_of(&r.payload) == dispute_id) {
        return false;
    }
    held.push(relay.clone());
    true
}

/// Asks for a catch-up, once per batch of effects.
fn catch_up(effects: &mut Vec<Effect>) {
    if !effects.contains(&Effect::CatchUp) {
        effects.push(Effect::CatchUp);
    }
}

fn new_publication(setup: &DriverSetup, spec: &SettlementSpec) -> Result<Publication, fixd_dispute::Error> {
    let dispute_params = DisputeParams::for_committee(&setup.protocol, spec.maturity, &setup.committee, 0);
    Publication::new(
        setup.committee.clone(),
        setup.me,
        spec.id(),
        dispute_params,
        PublicationParams::from_protocol(&setup.protocol),
        setup.chain_id,
        setup.contract,
    )
}

/// The certification event of a round message; `None` for the messages of publication and
/// disputes.
fn certification_event(message: GossipMessage) -> Option<consensus::Event> {
    match message {
        GossipMessage::Observation(o) => Some(consensus::Event::Observation(o)),
        GossipMessage::Proposal(p) => Some(consensus::Event::Proposal(*p)),
        GossipMessage::Vote(v) => Some(consensus::Event::Vote(v)),
        GossipMessage::ReviewVote(v) => Some(consensus::Event::ReviewVote(v)),
        GossipMessage::ReportSignature(_)
        | GossipMessage::Dispute(_)
        | GossipMessage::Ruling(_)
        | GossipMessage::BatchSignature(_) => None,
    }
}

/// The event-stream line of a dispute machine step, with its outcome and agreed time.
fn dispute_machine_event(id: B256, at: u64, action: fixd_dispute::Action) -> Effect {
    let (kind, outcome) = match &action {
        fixd_dispute::Action::DisputeAccepted { .. } => (EventKind::DisputeAccepted, Some("accepted")),
        // Another member's relay of a dispute already accepted: not a dispute of its own.
        fixd_dispute::Action::DisputeRefused { reason: Refusal::Duplicate, .. } => {
            (EventKind::DisputeMachine, None)
        }
        fixd_dispute::Action::DisputeRefused { .. } => (EventKind::DisputeRefused, Some("refused")),
        fixd_dispute::Action::ReviewDecided { upheld: true, .. } => {
            (EventKind::ReviewDecided, Some("upheld"))
        }
        fixd_dispute::Action::ReviewDecided { upheld: false, .. } => {
            (EventKind::ReviewDecided, Some("rejected"))
        }
        fixd_dispute::Action::EscalateToArbitrator { .. } => (EventKind::Escalated, None),
        _ => (EventKind::DisputeMachine, None),
    };
    tracing::info!(settlement = %id, at, ?action, "dispute");
    let mut detail = serde_json::to_value(&action).unwrap_or_default();
    if let (Some(outcome), Some(map)) = (outcome, detail.as_object_mut()) {
        map.insert("outcome".into(), outcome.into());
        map.insert("agreed_at".into(), at.into());
    }
    Effect::Event { kind, detail }
}
