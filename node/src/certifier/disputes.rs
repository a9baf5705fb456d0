//! The certifier's side of disputes (DESIGN 6): disputes and rulings from the API and from
//! gossip, the committee review of each dispute round, and the agreed events they feed to a
//! settlement's [`Publication`].
//!
//! ```text
//!  API ─ Command::SubmitDispute (signature and bond checked) ─▶ predict at now ─▶ sign relay,
//!        store, flush, gossip ─▶ Publication (agreed time = accepted_at)
//!  gossip ─ relayed dispute ─▶ EIP-712 check ─▶ bond re-read on this node's RPC (a task) ─▶ same
//!  Publication ─ StartReview ─▶ review certification (its own rounds) + recompute (a task):
//!        history from the venues, else the archive ─▶ sign the review vote, flush, gossip
//!  review certificate (exactly q votes) ─▶ Publication (agreed time = its proposed_at)
//!  API / gossip ─ ruling (the genesis arbitrator's signature) ─▶ Publication
//! ```

use alloy_primitives::{Address, B256};
use fixd_dispute::{DisputeFiling, Phase, Refusal, ReviewVoteCast};
use fixd_proto::certify::{ReviewTarget, verify_certificate, verify_review_certificate};
use fixd_proto::eip712::{SignedDispute, SignedRuling, verify_typed};
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{Certificate, ProposalSource};
use fixd_proto::types::dispute::{DisputeEscrow, RelayedDispute, RelayedRuling, ReviewVote};
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::settlement::SettlementSpec;
use tokio::sync::oneshot;

use crate::certifier::{Certifier, Unsigned};
use crate::events::EventKind;
use crate::network::GossipMessage;
use crate::store::{SignedKind, SigningSlot, Store, StoreError, record_signed_and_keep};
use crate::venues::VenueAdapter;
use fixd_decision::consensus::{Action, Certification, ConsensusParams, Event, Review};
use fixd_decision::publication::{Action as PubAction, Event as PubEvent, PublicationParams};

/// The longest evidence text a dispute may carry, so that a relayed dispute fits one gossip
/// message.
pub const MAX_EVIDENCE_BYTES: usize = 4096;

/// What the API asks of the certifier. The API has checked the signature and the bond.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    SubmitDispute {
        dispute: SignedDispute,
        escrow: DisputeEscrow,
        reply: oneshot::Sender<Result<Accepted, SubmitError>>,
    },
    SubmitRuling {
        ruling: SignedRuling,
        reply: oneshot::Sender<Result<u64, SubmitError>>,
    },
}

/// A dispute this member accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Accepted {
    pub dispute_round: u16,
    /// The agreed time every member feeds it at.
    pub accepted_at: u64,
}

/// Why a dispute or ruling is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("settlement {0} is not known to this node")]
    UnknownSettlement(B256),
    #[error("dispute {0} was accepted already; a dispute id is used once")]
    Duplicate(B256),
    #[error("a ruling on dispute {0} was accepted already")]
    DuplicateRuling(B256),
    #[error("{0}")]
    Refused(Refusal),
    #[error("the settlement is not in arbitration, or dispute {0} is not in its arbitration round")]
    NotInArbitration(B256),
    #[error(
        "the ruling comes at or after the hard deadline {hard_deadline}; the last certified value stands"
    )]
    TooLate { hard_deadline: u64 },
    #[error(
        "the bond was mined at {mined_at}, more than {max_age} s ago: submit a dispute within {max_age} s of \
         its bond (escrow a new bond under a new dispute id; reclaim this one after publication)"
    )]
    BondTooOld { mined_at: u64, max_age: u64 },
    #[error("this node's store failed: {0}")]
    Store(#[from] StoreError),
}

/// What spawned tasks hand back to the certifier.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Inbox {
    /// A gossiped dispute whose bond this node read back on its own RPC, as relayed.
    Escrowed(Signed<RelayedDispute>),
    /// This member's recomputation for a review, to sign.
    Reviewed { spec: SettlementSpec, dispute_round: u16, vote: ReviewVote },
}

/// What the certifier needs for disputes besides what it has for publication.
#[derive(Clone, Debug)]
pub struct DisputeSetup {
    /// Reads bonds back; `None` without `chain.rpc_url` (gossiped disputes are then ignored).
    pub reader: Option<crate::chain::ChainReader>,
    /// The venues whose history a review reads.
    pub venues: Vec<VenueAdapter>,
    /// The genesis arbitrator (zero: none).
    pub arbitrator: Address,
    /// Where bond checks and review recomputations run, so that they stop with the node.
    pub tasks: crate::tasks::TaskSpawner,
}

/// The agreed events the store holds for a settlement: its first certificate, certified
/// reviews (with their listed votes), disputes and rulings.
pub fn agreed_events(
    store: &dyn Store,
    committee: &Committee,
    spec: &SettlementSpec,
) -> Result<Vec<PubEvent>, StoreError> {
    let id = spec.id();
    let mut events = Vec::new();
    if let Some(certificate) = store.certificate(&id)? {
        events.push(certified_event(&certificate));
    }
    let votes = store.review_votes(&id)?;
    for (_, certificate) in store.review_certificates(&id)? {
        if let Some(event) = review_event(committee, &certificate, &votes) {
            events.push(event);
        }
    }
    for d in store.disputes(&id)? {
        events.push(dispute_event(&d.payload));
    }
    for r in store.rulings(&id)? {
        events.push(ruling_event(&r.payload));
    }
    Ok(events)
}

pub(crate) fn certified_event(certificate: &Certificate) -> PubEvent {
    let proposal = &certificate.proposal.payload;
    PubEvent::Certified {
        round: proposal.round,
        proposal_hash: certificate.proposal.hash(),
        value: proposal.value,
        proposed_at: proposal.proposed_at,
    }
}

fn ruling_event(relayed: &RelayedRuling) -> PubEvent {
    let ruling = &relayed.ruling.ruling;
    PubEvent::Ruling {
        dispute_id: ruling.dispute_id,
        value: ruling.value,
        upheld: ruling.upheld,
        accepted_at: relayed.accepted_at,
    }
}

fn dispute_event(relayed: &RelayedDispute) -> PubEvent {
    PubEvent::Dispute {
        filing: DisputeFiling::from(&relayed.dispute.dispute),
        pool_wei: relayed.escrow.pool_wei,
        accepted_at: relayed.accepted_at,
    }
}

/// A review certificate as an agreed event: its listed votes in listed order. `None` while a
/// listed vote is missing.
fn review_event(
    committee: &Committee,
    certificate: &Certificate,
    votes: &[Signed<ReviewVote>],
) -> Option<PubEvent> {
    let proposal = &certificate.proposal.payload;
    let casts = proposal
        .inputs
        .iter()
        .map(|hash| {
            let vote = votes.iter().find(|v| &v.hash() == hash)?;
            Some(ReviewVoteCast::from_vote(committee.index_of(&vote.signer)?, &vote.payload))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(PubEvent::ReviewCertified {
        votes: casts,
        round: proposal.round,
        proposal_hash: certificate.proposal.hash(),
        value: proposal.value,
        proposed_at: proposal.proposed_at,
    })
}

/// The certificate in force whose proposal hash is `contested`: the first one or a review's.
fn certificate_by_hash(
    store: &dyn Store,
    spec: &SettlementSpec,
    contested: &B256,
) -> Result<Option<Certificate>, StoreError> {
    let id = spec.id();
    let first = store.certificate(&id)?.filter(|c| &c.proposal.hash() == contested);
    if first.is_some() {
        return Ok(first);
    }
    Ok(store.review_certificates(&id)?.into_iter().map(|(_, c)| c).find(|c| &c.proposal.hash() == contested))
}

/// This member's review of `contested`: whether its median recomputes from the certified
/// inputs, and the value recomputed from each venue's history (its corrected record), or from
/// this node's archive of the window where the history cannot be read.
pub async fn recompute(
    store: &dyn Store,
    venues: &[VenueAdapter],
    committee: &Committee,
    network_id: &B256,
    spec: &SettlementSpec,
    dispute_id: B256,
    contested: B256,
) -> Result<ReviewVote, StoreError> {
    let id = spec.id();
    let median_recomputes = match certificate_by_hash(store, spec, &contested)? {
        Some(c) => match &c.proposal.payload.source {
            ProposalSource::Observations => {
                verify_certificate(committee, network_id, spec, &c, &store.observations(&id)?).is_ok()
            }
            ProposalSource::Review { dispute_id } => {
                let votes = store.review_votes(&id)?;
                let previous = votes
                    .iter()
                    .find(|v| c.proposal.payload.inputs.contains(&v.hash()))
                    .map(|v| v.payload.proposal_hash)
                    .unwrap_or_default();
                let target = ReviewTarget { dispute_id: *dispute_id, contested: previous };
                verify_review_certificate(committee, network_id, spec, &c, &target, &votes).is_ok()
            }
        },
        None => false,
    };
    let (start_ms, end_ms) = crate::observer::window_ms(spec);
    let mut trades = Vec::new();
    for venue in venues {
        match venue.trades_between(start_ms, end_ms).await {
            Ok(history) => {
                tracing::info!(settlement = %id, venue = %venue.venue(), trades = history.len(), "review: the venue's history");
                trades.extend(history);
            }
            Err(error) => {
                let archived = store.trades(&id, venue.venue())?.unwrap_or_default();
                tracing::warn!(settlement = %id, venue = %venue.venue(), %error, archived = archived.len(), "review: history unavailable; using this node's archive");
                trades.extend(archived);
            }
        }
    }
    let (value, trade_digest) = match crate::observer::observe(spec, &trades) {
        Ok(o) => (o.computation.value, o.trade_digest),
        Err(error) => {
            tracing::error!(settlement = %id, %error, "review: the methodology cannot run; voting no value");
            let reason = fixd_proto::types::observation::NoValueReason::NoVenues;
            (fixd_proto::types::observation::NodeValue::NoValue(reason), B256::ZERO)
        }
    };
    Ok(ReviewVote {
        settlement_id: id,
        dispute_id,
        proposal_hash: contested,
        median_recomputes,
        value,
        trade_digest,
    })
}

impl Certifier {
    /// How far the dispute machine lags the clock (see [`fixd_decision::publication::timeline`]).
    pub(crate) fn settle_secs(&self) -> u64 {
        PublicationParams::from_protocol(&self.publishing.protocol).settle_secs
    }

    fn domain(&self) -> alloy::sol_types::Eip712Domain {
        fixd_proto::eip712::domain(self.publishing.chain_id, self.publishing.contract)
    }

    pub(crate) async fn on_command(&mut self, command: Command) -> Result<(), StoreError> {
        match command {
            Command::SubmitDispute { dispute, escrow, reply } => {
                let answer = self.submit_dispute(dispute, escrow).await;
                if let Err(SubmitError::Store(e)) = &answer {
                    tracing::error!(error = %e, "store failed while accepting a dispute");
                }
                let _ = reply.send(answer);
            }
            Command::SubmitRuling { ruling, reply } => {
                let _ = reply.send(self.submit_ruling(ruling).await);
            }
        }
        Ok(())
    }

    async fn submit_dispute(
        &mut self,
        dispute: SignedDispute,
        escrow: DisputeEscrow,
    ) -> Result<Accepted, SubmitError> {
        let d = &dispute.dispute;
        let spec = self
            .store
            .settlement(&d.settlement_id)?
            .ok_or(SubmitError::UnknownSettlement(d.settlement_id))?;
        if self.store.has_dispute(&spec.id(), &d.dispute_id)? {
            return Err(SubmitError::Duplicate(d.dispute_id));
        }
        if self.store.certificate(&spec.id())?.is_none() {
            return Err(SubmitError::Refused(Refusal::NotCertified));
        }
        let actions = self.publication_machine(&spec)?;
        self.carry_publication_actions(&spec, actions).await?;
        let now = crate::clock::now();
        // The agreed time is bound to the bond's block, so no member can date a dispute much
        // earlier than its bond: every receiver checks the same bound.
        let max_age = self.settle_secs();
        if now > escrow.block_timestamp.saturating_add(max_age) {
            return Err(SubmitError::BondTooOld { mined_at: escrow.block_timestamp, max_age });
        }
        let machine = self.publications.get(&spec.id()).expect("created above");
        let dispute_round = machine
            .timeline()
            .predict_dispute(now, DisputeFiling::from(d), escrow.pool_wei)
            .map_err(SubmitError::Refused)?;
        let relayed = RelayedDispute { dispute, escrow, accepted_at: now };
        let signed = Signed::sign(&self.key, &self.network_id, relayed);
        self.accept_dispute(&spec, signed, true).await?;
        Ok(Accepted { dispute_round, accepted_at: now })
    }

    /// Stores a dispute (this member's or a checked relayed one) and feeds it.
    async fn accept_dispute(
        &mut self,
        spec: &SettlementSpec,
        signed: Signed<RelayedDispute>,
        gossip: bool,
    ) -> Result<(), StoreError> {
        if !self.store.put_dispute(&signed)? {
            return Ok(());
        }
        self.store.durable()?;
        let d = &signed.payload.dispute.dispute;
        tracing::info!(settlement = %spec.id(), dispute = %d.dispute_id, bond_wei = d.bond_wei, accepted_at = signed.payload.accepted_at, "dispute accepted");
        if gossip && let Err(error) = self.network.publish(GossipMessage::Dispute(signed.clone())).await {
            tracing::warn!(%error, "cannot gossip the dispute now; peers will catch up");
        }
        if self.store.certificate(&spec.id())?.is_some() {
            self.feed(spec, dispute_event(&signed.payload)).await?;
        }
        Ok(())
    }

    async fn submit_ruling(&mut self, ruling: SignedRuling) -> Result<u64, SubmitError> {
        let r = &ruling.ruling;
        let spec = self
            .store
            .settlement(&r.settlement_id)?
            .ok_or(SubmitError::UnknownSettlement(r.settlement_id))?;
        if self.store.has_ruling(&spec.id(), &r.dispute_id)? {
            return Err(SubmitError::DuplicateRuling(r.dispute_id));
        }
        if self.store.certificate(&spec.id())?.is_none() {
            return Err(SubmitError::NotInArbitration(r.dispute_id));
        }
        let actions = self.publication_machine(&spec)?;
        self.carry_publication_actions(&spec, actions).await?;
        let now = crate::clock::now();
        let state = self.publications.get(&spec.id()).expect("created above").timeline().latest(now);
        if now >= state.hard_deadline() {
            return Err(SubmitError::TooLate { hard_deadline: state.hard_deadline() });
        }
        let in_round = state.phase() == Phase::Arbitration
            && state.disputes().iter().any(|d| d.filing.dispute_id == r.dispute_id && d.decision.is_none());
        if !in_round {
            return Err(SubmitError::NotInArbitration(r.dispute_id));
        }
        let signed = Signed::sign(&self.key, &self.network_id, RelayedRuling { ruling, accepted_at: now });
        self.accept_ruling(&spec, signed, true).await?;
        Ok(now)
    }

    async fn accept_ruling(
        &mut self,
        spec: &SettlementSpec,
        signed: Signed<RelayedRuling>,
        gossip: bool,
    ) -> Result<(), StoreError> {
        if !self.store.put_ruling(&signed)? {
            return Ok(());
        }
        self.store.durable()?;
        let r = &signed.payload.ruling.ruling;
        tracing::info!(settlement = %spec.id(), dispute = %r.dispute_id, value = %r.value, upheld = r.upheld, "arbitrator ruling accepted");
        if gossip && let Err(error) = self.network.publish(GossipMessage::Ruling(signed.clone())).await {
            tracing::warn!(%error, "cannot gossip the ruling now; peers will catch up");
        }
        if self.store.certificate(&spec.id())?.is_some() {
            self.feed(spec, ruling_event(&signed.payload)).await?;
        }
        Ok(())
    }

    /// A relayed dispute from gossip: the disputer's signature here, the bond in a task on
    /// this node's own RPC (the answer comes back as [`Inbox::Escrowed`]).
    pub(crate) fn on_relayed_dispute(&mut self, signed: Signed<RelayedDispute>) -> Result<(), StoreError> {
        let d = &signed.payload.dispute;
        let id = d.dispute.settlement_id;
        if self.store.has_dispute(&id, &d.dispute.dispute_id)? {
            return Ok(());
        }
        if let Err(error) = verify_typed(&self.domain(), &d.dispute, &d.signature, d.dispute.disputer) {
            tracing::warn!(settlement = %id, dispute = %d.dispute.dispute_id, %error, relayed_by = %signed.signer, "relayed dispute with a bad disputer signature; ignored");
            return Ok(());
        }
        if d.dispute.evidence.len() > MAX_EVIDENCE_BYTES {
            return Ok(());
        }
        let (mined_at, accepted_at) = (signed.payload.escrow.block_timestamp, signed.payload.accepted_at);
        let bound = mined_at.saturating_add(self.settle_secs() + self.params.max_clock_skew_secs);
        if accepted_at < mined_at || accepted_at > bound {
            tracing::warn!(settlement = %id, dispute = %d.dispute.dispute_id, accepted_at, mined_at, relayed_by = %signed.signer, "relayed dispute dated outside its bond's bounds; ignored");
            return Ok(());
        }
        let Some(reader) = self.disputing.reader.clone() else {
            tracing::warn!(settlement = %id, "a dispute arrived, but without chain.rpc_url this node cannot check its bond");
            return Ok(());
        };
        let inbox = self.inbox.clone();
        let hard_deadline = match self.store.settlement(&id)? {
            Some(spec) => spec.maturity.saturating_add(self.publishing.protocol.hard_deadline_secs),
            None => return Ok(()),
        };
        self.disputing.tasks.spawn("bond check", async move {
            let dispute = &signed.payload.dispute.dispute;
            // An RPC that is down or behind is waited for, up to the hard deadline, after which
            // no dispute counts any more.
            let give_up_at = hard_deadline;
            while crate::clock::now() < give_up_at {
                match reader.verify_bond(dispute).await {
                    Ok(escrow) if escrow == signed.payload.escrow => {
                        let _ = inbox.send(Inbox::Escrowed(signed)).await;
                        return;
                    }
                    Ok(escrow) => {
                        tracing::warn!(dispute = %dispute.dispute_id, ?escrow, relayed = ?signed.payload.escrow, "relayed dispute names another escrow than the chain shows; ignored");
                        return;
                    }
                    Err(
                        crate::chain::BondError::Unconfirmed { .. }
                        | crate::chain::BondError::Rpc(_)
                        | crate::chain::BondError::NotFound(_),
                    ) => {
                        // NotFound too: this node's RPC may not have the block yet.
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                    Err(error) => {
                        tracing::warn!(dispute = %dispute.dispute_id, %error, "relayed dispute's bond does not check; ignored");
                        return;
                    }
                }
            }
            tracing::warn!(dispute = %dispute.dispute_id, "gave up checking a relayed dispute's bond at the hard deadline");
        });
        Ok(())
    }

    pub(crate) fn on_relayed_ruling_ok(&self, signed: &Signed<RelayedRuling>) -> bool {
        let r = &signed.payload.ruling;
        let arbitrator = self.disputing.arbitrator;
        if arbitrator == Address::ZERO {
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

    pub(crate) async fn on_inbox(&mut self, item: Inbox) -> Result<(), StoreError> {
        match item {
            Inbox::Escrowed(signed) => {
                let id = signed.payload.dispute.dispute.settlement_id;
                let Some(spec) = self.store.settlement(&id)? else { return Ok(()) };
                self.accept_dispute(&spec, signed, false).await
            }
            Inbox::Reviewed { spec, dispute_round, vote } => {
                self.sign_review_vote(&spec, dispute_round, vote).await
            }
        }
    }

    pub(crate) async fn on_relayed(
        &mut self,
        spec: &SettlementSpec,
        message: GossipMessage,
    ) -> Result<(), StoreError> {
        match message {
            GossipMessage::Dispute(d) => self.on_relayed_dispute(d),
            GossipMessage::Ruling(r) => {
                if self.on_relayed_ruling_ok(&r) {
                    self.accept_ruling(spec, r, false).await?;
                }
                Ok(())
            }
            GossipMessage::ReviewVote(v) => {
                self.store.put_review_vote(&v)?;
                let key = (spec.id(), v.payload.dispute_id);
                if self.reviews.contains_key(&key) {
                    self.feed_review(spec, v.payload.dispute_id, Event::ReviewVote(v)).await?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Feeds an agreed event to the settlement's publication, created if need be.
    async fn feed(&mut self, spec: &SettlementSpec, event: PubEvent) -> Result<(), StoreError> {
        let mut actions = self.publication_machine(spec)?;
        let machine = self.publications.get_mut(&spec.id()).expect("created above");
        actions.extend(machine.on(crate::clock::now(), event));
        self.carry_publication_actions(spec, actions).await
    }

    /// Starts (or, after a restart, resumes) the review of a dispute round.
    pub(crate) async fn start_review(
        &mut self,
        spec: &SettlementSpec,
        dispute_round: u16,
        dispute_id: B256,
        contested: B256,
        at: u64,
    ) -> Result<(), StoreError> {
        let id = spec.id();
        let key = (id, dispute_id);
        if self.reviews.contains_key(&key) {
            return Ok(());
        }
        let settle = self.settle_secs();
        let timeout = self.params.round_timeout_secs.max(1);
        // The first round that begins after every member has folded the dispute in.
        let first_round =
            u32::try_from((at + settle).saturating_sub(spec.observe_at()) / timeout + 1).unwrap_or(u32::MAX);
        let params = ConsensusParams {
            challenge_period_secs: self.publishing.protocol.reopened_challenge_period_secs,
            ..self.params
        };
        let review = Review { target: ReviewTarget { dispute_id, contested }, first_round };
        let mut machine = Certification::for_review(
            review,
            self.committee.clone(),
            self.me,
            self.network_id,
            spec.clone(),
            params,
        );
        let now = crate::clock::now();
        for v in self.store.review_votes(&id)? {
            machine.on(now, Event::ReviewVote(v));
        }
        for p in self.store.proposals(&id)? {
            machine.on(now, Event::Proposal(p));
        }
        for v in self.store.votes(&id)? {
            machine.on(now, Event::Vote(v));
        }
        self.reviews.insert(key, machine);
        tracing::info!(settlement = %id, dispute_round, %dispute_id, %contested, first_round, "review started");
        self.event(id, EventKind::ReviewStarted, serde_json::json!({ "dispute_round": dispute_round, "dispute_id": dispute_id, "first_round": first_round }));
        let slot =
            SigningSlot { settlement: id, kind: SignedKind::ReviewVote, round: u32::from(dispute_round) };
        if self.store.signed(slot)?.is_some() {
            // Voted before a restart: the stored vote was fed above. Gossip it again, since the
            // restart may have come before it left.
            let me = self.committee.members()[self.me].ed25519;
            let own = self
                .store
                .review_votes(&id)?
                .into_iter()
                .find(|v| v.signer == me && v.payload.dispute_id == dispute_id);
            if let Some(vote) = own
                && let Err(error) = self.network.publish(GossipMessage::ReviewVote(vote)).await
            {
                tracing::debug!(%error, "cannot gossip the stored review vote now");
            }
            return Ok(());
        }
        let (store, venues, committee, network_id, spec, inbox) = (
            self.store.clone(),
            self.disputing.venues.clone(),
            self.committee.clone(),
            self.network_id,
            spec.clone(),
            self.inbox.clone(),
        );
        self.disputing.tasks.spawn("review recomputation", async move {
            match recompute(&*store, &venues, &committee, &network_id, &spec, dispute_id, contested).await {
                Ok(vote) => {
                    let _ = inbox.send(Inbox::Reviewed { spec, dispute_round, vote }).await;
                }
                Err(error) => tracing::error!(%error, "review: cannot read the store"),
            }
        });
        Ok(())
    }

    async fn sign_review_vote(
        &mut self,
        spec: &SettlementSpec,
        dispute_round: u16,
        vote: ReviewVote,
    ) -> Result<(), StoreError> {
        let id = spec.id();
        let slot =
            SigningSlot { settlement: id, kind: SignedKind::ReviewVote, round: u32::from(dispute_round) };
        let dispute_id = vote.dispute_id;
        let signed = Signed::sign(&self.key, &self.network_id, vote);
        if !record_signed_and_keep(&*self.store, slot, signed.hash(), |store| {
            store.put_review_vote(&signed).map(drop)
        })? {
            return Ok(());
        }
        tracing::info!(settlement = %id, dispute_round, %dispute_id, value = ?signed.payload.value, median_recomputes = signed.payload.median_recomputes, "review vote signed");
        self.event(id, EventKind::ReviewVote, serde_json::json!({ "dispute_id": dispute_id, "member": self.me, "value": signed.payload.value.value() }));
        crate::test_faults::after_review_vote().await;
        if let Err(error) = self.network.publish(GossipMessage::ReviewVote(signed.clone())).await {
            tracing::warn!(%error, "cannot gossip the review vote now; peers will catch up");
        }
        self.feed_review(spec, dispute_id, Event::ReviewVote(signed)).await
    }

    /// Feeds a review's certification and carries out what follows.
    pub(crate) async fn feed_review(
        &mut self,
        spec: &SettlementSpec,
        dispute_id: B256,
        event: Event,
    ) -> Result<(), StoreError> {
        let Some(machine) = self.reviews.get_mut(&(spec.id(), dispute_id)) else { return Ok(()) };
        let actions = machine.on(crate::clock::now(), event);
        self.carry_review(spec, dispute_id, actions).await
    }

    /// Ticks every review under way, and asks a peer for what a review still lacks once a
    /// whole round of it has passed without a certificate (a member that restarted, or was cut
    /// off, in the middle of it).
    pub(crate) async fn tick_reviews(&mut self) -> Result<(), StoreError> {
        // A review whose round the dispute machine has left (decided, escalated, final) is done.
        let publications = &self.publications;
        self.reviews.retain(|(settlement, _), _| {
            publications
                .get(settlement)
                .is_none_or(|p| matches!(p.disputes().phase(), Phase::Review | Phase::Recertifying))
        });
        let keys: Vec<(B256, B256)> =
            self.reviews.iter().filter(|(_, m)| m.certificate().is_none()).map(|(k, _)| *k).collect();
        let mut behind = Vec::new();
        for (settlement, dispute_id) in keys {
            let Some(spec) = self.store.settlement(&settlement)? else { continue };
            self.feed_review(&spec, dispute_id, Event::Tick).await?;
            let machine = &self.reviews[&(settlement, dispute_id)];
            let stuck = machine.certificate().is_none()
                && (machine.round().is_some_and(|r| r > machine.review().first_round)
                    || !machine.missing_inputs().is_empty());
            if stuck && !behind.contains(&spec) {
                behind.push(spec);
            }
        }
        for spec in behind {
            self.catch_up(&spec).await?;
        }
        Ok(())
    }

    /// Round messages of the reviews: proposals go to the review they name, votes to all.
    pub(crate) async fn route_to_reviews(
        &mut self,
        spec: &SettlementSpec,
        event: &Event,
    ) -> Result<(), StoreError> {
        let targets: Vec<B256> = match event {
            Event::Proposal(p) => match p.payload.source {
                ProposalSource::Review { dispute_id } => vec![dispute_id],
                ProposalSource::Observations => vec![],
            },
            Event::Vote(_) => self.reviews.keys().filter(|(s, _)| s == &spec.id()).map(|(_, d)| *d).collect(),
            _ => vec![],
        };
        for dispute_id in targets {
            self.feed_review(spec, dispute_id, event.clone()).await?;
        }
        Ok(())
    }

    async fn carry_review(
        &mut self,
        spec: &SettlementSpec,
        dispute_id: B256,
        actions: Vec<Action>,
    ) -> Result<(), StoreError> {
        let id = spec.id();
        for action in actions {
            let message = match action {
                Action::Propose(proposal) => {
                    let (round, value) = (proposal.round, proposal.value);
                    let Some(signed) = self.sign_round(id, Unsigned::Proposal(proposal))? else { continue };
                    tracing::info!(settlement = %id, %dispute_id, round, %value, "review proposed");
                    signed
                }
                Action::Vote(vote) => {
                    // A taken slot: the review goes on in a later round.
                    let Some(signed) = self.sign_round(id, Unsigned::Vote(vote))? else { continue };
                    signed
                }
                Action::Certified(certificate) => {
                    self.store.put_review_certificate(&dispute_id, &certificate)?;
                    self.store.durable()?;
                    let p = &certificate.proposal.payload;
                    tracing::info!(settlement = %id, %dispute_id, round = p.round, value = %p.value, "review certified");
                    self.event(
                        id,
                        EventKind::ReviewCertified,
                        serde_json::json!({ "dispute_id": dispute_id, "round": p.round, "value": p.value }),
                    );
                    let votes = self.store.review_votes(&id)?;
                    match review_event(&self.committee, &certificate, &votes) {
                        Some(event) => self.feed(spec, event).await?,
                        None => {
                            tracing::error!(settlement = %id, "a review certificate whose votes are not stored")
                        }
                    }
                    continue;
                }
                Action::Equivocation(evidence) => {
                    self.keep_equivocation(id, evidence)?;
                    continue;
                }
                Action::Rejected { from, reason } => {
                    tracing::warn!(settlement = %id, %dispute_id, %from, %reason, "review message rejected");
                    continue;
                }
                Action::RoundTimedOut { .. } => continue,
            };
            if let Err(error) = self.network.publish(message.clone()).await {
                tracing::warn!(%error, "cannot gossip now; peers will catch up");
            }
            let event = match message {
                GossipMessage::Proposal(p) => Event::Proposal(p),
                GossipMessage::Vote(v) => Event::Vote(v),
                _ => continue,
            };
            Box::pin(self.feed_review(spec, dispute_id, event)).await?;
        }
        Ok(())
    }

    /// The dispute-side actions of a publication.
    pub(crate) async fn carry_dispute_action(
        &mut self,
        spec: &SettlementSpec,
        action: PubAction,
    ) -> Result<(), StoreError> {
        let id = spec.id();
        match action {
            PubAction::StartReview { dispute_round, dispute_id, contested, at } => {
                // Replayed after a restart, a round the fold has decided since needs no review.
                let current = self.publications.get(&id).is_some_and(|p| {
                    let d = p.disputes();
                    d.phase() == Phase::Review && d.dispute_round() == dispute_round
                });
                if current {
                    self.start_review(spec, dispute_round, dispute_id, contested, at).await?;
                }
            }
            PubAction::Disputes { at, action } => {
                let (kind, outcome) = match &action {
                    fixd_dispute::Action::DisputeAccepted { .. } => {
                        (EventKind::DisputeAccepted, Some("accepted"))
                    }
                    fixd_dispute::Action::DisputeRefused { .. } => {
                        (EventKind::DisputeRefused, Some("refused"))
                    }
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
                self.event(id, kind, detail);
            }
            PubAction::Revised => {
                tracing::warn!(settlement = %id, "an event arrived after its agreed time had passed; the dispute history was folded again");
            }
            _ => {}
        }
        Ok(())
    }
}
