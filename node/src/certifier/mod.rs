//! The certification service: the shell around [`fixd_decision::consensus::Certification`]. One task
//! owns one machine per settlement and carries events in (gossip, this node's observations,
//! catch-up, the clock) and actions out (sign, record, flush, gossip, store the certificate).
//!
//! ```text
//!   observer ──own observation──┐
//!   network  ──gossip message───┼──▶ Certifier ──▶ Certification::on(now, event)
//!   interval ──tick, catch-up───┘         │
//!            ◀── sign ─▶ record_signed ─▶ durable() ─▶ publish (gossip) ─▶ feed back
//!                                         └─▶ certificate ─▶ store, event "certified"
//! ```
//!
//! Safety: a proposal or vote is recorded in its signing slot and flushed before it is gossiped;
//! a second, different message for the same slot is refused by the store. After a restart the
//! stored messages are replayed into fresh machines, which then know what this node already
//! signed.

pub mod disputes;
mod publication;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use ed25519_dalek::SigningKey;
use fixd_proto::signing::Signed;
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::observation::Observation;
use fixd_proto::types::settlement::SettlementSpec;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::certifier::disputes::DisputeSetup;
use crate::certifier::disputes::{Command, Inbox};
use crate::events::{EventBus, EventKind, NodeEvent};
use crate::network::{CatchupProvider, CatchupResponse, GossipMessage, NetworkEvent, NetworkHandle, Verdict};
use crate::store::{SignedKind, SigningSlot, Store, StoreError, record_signed_and_keep};
use fixd_decision::consensus::{Action, Certification, ConsensusParams, Event};
use fixd_decision::publication::Publication;
use fixd_proto::types::certificate::ProposalSource;

/// Serves catch-up requests from the store.
#[derive(Clone)]
pub struct StoreCatchup(pub Arc<dyn Store>);

impl std::fmt::Debug for StoreCatchup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreCatchup")
    }
}

impl CatchupProvider for StoreCatchup {
    fn catch_up(&self, id: &B256) -> CatchupResponse {
        let read = || -> Result<CatchupResponse, StoreError> {
            Ok(CatchupResponse {
                observations: self.0.observations(id)?,
                proposals: self.0.proposals(id)?,
                votes: self.0.votes(id)?,
                report_signatures: self.0.report_signatures(id)?,
                disputes: self.0.disputes(id)?,
                review_votes: self.0.review_votes(id)?,
                rulings: self.0.rulings(id)?,
            })
        };
        read().unwrap_or_else(|error| {
            tracing::error!(settlement = %id, %error, "cannot read the store for a catch-up request");
            CatchupResponse::default()
        })
    }
}

/// The certification service's state. One task runs it.
pub struct Certifier {
    pub store: Arc<dyn Store>,
    pub network: NetworkHandle,
    pub committee: Committee,
    pub me: usize,
    pub network_id: B256,
    pub key: SigningKey,
    pub params: ConsensusParams,
    pub events: EventBus,
    /// How often to tick the machines and ask peers for what is missing.
    pub tick: Duration,
    pub publishing: PublishSetup,
    machines: HashMap<B256, Certification>,
    pub(crate) publications: HashMap<B256, Publication>,
    /// Each dispute round's review certification, by (settlement, dispute id).
    pub(crate) reviews: HashMap<(B256, B256), Certification<fixd_decision::consensus::Review>>,
    pub disputing: DisputeSetup,
    /// Where spawned tasks (bond checks, review recomputations) answer.
    pub(crate) inbox: mpsc::Sender<Inbox>,
    inbox_rx: Option<mpsc::Receiver<Inbox>>,
    catch_up_turn: usize,
    ticks: u64,
}

/// What the certifier needs to take a certified value on to the chain.
#[derive(Clone, Debug)]
pub struct PublishSetup {
    /// The member's secp256k1 key: it signs final reports.
    pub eth_key: alloy_signer_local::PrivateKeySigner,
    pub protocol: fixd_proto::types::genesis::ProtocolParams,
    pub chain_id: u64,
    pub contract: alloy_primitives::Address,
    /// The chain service; `None` when no RPC endpoint is configured.
    pub chain: Option<crate::chain::ChainHandle>,
}

impl std::fmt::Debug for Certifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certifier").field("me", &self.me).field("machines", &self.machines.len()).finish()
    }
}

impl Certifier {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        network: NetworkHandle,
        committee: Committee,
        me: usize,
        network_id: B256,
        key: SigningKey,
        params: ConsensusParams,
        events: EventBus,
        tick: Duration,
        publishing: PublishSetup,
        disputing: DisputeSetup,
    ) -> Self {
        let (inbox, inbox_rx) = mpsc::channel(64);
        Certifier {
            store,
            network,
            committee,
            me,
            network_id,
            key,
            params,
            events,
            tick,
            publishing,
            machines: HashMap::new(),
            publications: HashMap::new(),
            reviews: HashMap::new(),
            disputing,
            inbox,
            inbox_rx: Some(inbox_rx),
            catch_up_turn: 0,
            ticks: 0,
        }
    }

    /// Runs until cancelled.
    pub async fn run(
        mut self,
        mut gossip: mpsc::Receiver<NetworkEvent>,
        mut own: mpsc::Receiver<Signed<Observation>>,
        mut chain: mpsc::Receiver<crate::chain::ChainUpdate>,
        mut commands: mpsc::Receiver<Command>,
        cancel: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut inbox = self.inbox_rx.take().expect("run once");
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                Some(event) = gossip.recv() => {
                    if let NetworkEvent::Message { message, .. } = event {
                        self.on_message(message).await?;
                    }
                }
                Some(observation) = own.recv() => {
                    let message = GossipMessage::Observation(observation);
                    if let Err(error) = self.network.publish(message.clone()).await {
                        tracing::warn!(%error, "cannot gossip this node's observation yet; peers will catch up");
                    }
                    self.on_message(message).await?;
                }
                Some((id, state)) = chain.recv() => self.on_chain_update(id, state).await?,
                Some(command) = commands.recv() => self.on_command(command).await?,
                Some(item) = inbox.recv() => self.on_inbox(item).await?,
                _ = interval.tick() => self.on_tick().await?,
            }
        }
    }

    /// The machine of a settlement, created (and fed what the store holds) on first use.
    fn machine(&mut self, spec: &SettlementSpec) -> Result<&mut Certification, StoreError> {
        let id = spec.id();
        if !self.machines.contains_key(&id) {
            let mut machine = Certification::new(
                self.committee.clone(),
                self.me,
                self.network_id,
                spec.clone(),
                self.params,
            );
            let now = crate::clock::now();
            for o in self.store.observations(&id)? {
                machine.on(now, Event::Observation(o));
            }
            for p in self.store.proposals(&id)? {
                if p.payload.source == ProposalSource::Observations {
                    machine.on(now, Event::Proposal(p));
                }
            }
            for v in self.store.votes(&id)? {
                machine.on(now, Event::Vote(v));
            }
            // The second halves of kept evidence: the machine finds the equivocators again.
            for evidence in self.store.equivocations(&id)? {
                if let Some(event) = event_of(evidence.second) {
                    machine.on(now, event);
                }
            }
            self.machines.insert(id, machine);
        }
        Ok(self.machines.get_mut(&id).expect("inserted above"))
    }

    /// Stores an accepted message and feeds it to its settlement's machine.
    async fn on_message(&mut self, message: GossipMessage) -> Result<(), StoreError> {
        let Some(spec) = self.store.settlement(message.settlement_id())? else {
            return Ok(());
        };
        let event = match message {
            GossipMessage::Observation(o) => {
                self.store.put_observation(&o)?;
                Event::Observation(o)
            }
            GossipMessage::Proposal(p) => {
                self.store.put_proposal(&p)?;
                let event = Event::Proposal(p);
                self.route_to_reviews(&spec, &event).await?;
                let Event::Proposal(p) = event else { unreachable!() };
                if p.payload.source != ProposalSource::Observations {
                    return Ok(());
                }
                Event::Proposal(p)
            }
            GossipMessage::Vote(v) => {
                self.store.put_vote(&v)?;
                let event = Event::Vote(v);
                self.route_to_reviews(&spec, &event).await?;
                event
            }
            GossipMessage::ReportSignature(signature) => {
                self.store.put_report_signature(&signature)?;
                return self.on_report_signature(&spec, signature).await;
            }
            relayed @ (GossipMessage::ReviewVote(_)
            | GossipMessage::Dispute(_)
            | GossipMessage::Ruling(_)) => {
                return self.on_relayed(&spec, relayed).await;
            }
        };
        let actions = self.machine(&spec)?.on(crate::clock::now(), event);
        self.carry_out(&spec, actions).await
    }

    async fn on_tick(&mut self) -> Result<(), StoreError> {
        self.ticks = self.ticks.wrapping_add(1);
        self.tick_reviews().await?;
        let now = crate::clock::now();
        for spec in self.store.settlements()? {
            if now < spec.observe_at() {
                continue;
            }
            // Certified: the publication machine's, once created (no store read for it).
            let id = spec.id();
            if self.publications.get(&id).is_some_and(Publication::is_published) {
                continue;
            }
            if self.publications.contains_key(&id) || self.store.certificate(&id)?.is_some() {
                self.publication_tick(&spec).await?;
                let short = self.publications.get(&spec.id()).is_some_and(|p| {
                    p.report().is_some() && !p.is_published() && p.signers().len() < self.committee.q()
                });
                // Until final, ask a peer now and then for disputes, reviews and rulings this
                // node may have missed (gossip is best effort).
                let open = self.publications.get(&id).is_some_and(|p| p.report().is_none());
                if short || (open && self.ticks.is_multiple_of(10)) {
                    // Final but missing report signatures, or not final yet.
                    self.catch_up(&spec).await?;
                }
                continue;
            }
            let machine = self.machine(&spec)?;
            if machine.certificate().is_some() {
                continue;
            }
            let actions = machine.on(now, Event::Tick);
            let stuck = !machine.missing_inputs().is_empty()
                || now >= spec.observe_at() + self.params.round_timeout_secs / 2;
            self.carry_out(&spec, actions).await?;
            if stuck {
                self.catch_up(&spec).await?;
            }
        }
        Ok(())
    }

    /// Asks the next connected peer, in turn, for what it holds of a settlement, and feeds what
    /// passes validation.
    pub(crate) async fn catch_up(&mut self, spec: &SettlementSpec) -> Result<(), StoreError> {
        let peers = self.network.connected_peers().await.unwrap_or_default();
        if peers.is_empty() {
            return Ok(());
        }
        self.catch_up_turn = self.catch_up_turn.wrapping_add(1);
        let peer = peers[self.catch_up_turn % peers.len()];
        let response = match self.network.catch_up(peer, spec.id()).await {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(settlement = %spec.id(), %peer, %error, "catch-up failed");
                return Ok(());
            }
        };
        for message in response.into_messages() {
            if let Ok(Verdict::Accept(message)) = self.network.check(message).await {
                Box::pin(self.on_message(message)).await?;
            }
        }
        Ok(())
    }

    /// Carries out a machine's actions: sign, record, flush, gossip, feed back.
    async fn carry_out(&mut self, spec: &SettlementSpec, actions: Vec<Action>) -> Result<(), StoreError> {
        let id = spec.id();
        for action in actions {
            match action {
                Action::Propose(proposal) => {
                    let proposal = crate::test_faults::tamper(proposal);
                    let (round, value) = (proposal.round, proposal.value);
                    if let Some(signed) = self.sign_round(id, Unsigned::Proposal(proposal))? {
                        tracing::info!(settlement = %id, round, %value, "proposed");
                        self.gossip_and_feed(spec, signed).await?;
                    }
                }
                Action::Vote(vote) => {
                    let round = vote.round;
                    if let Some(signed) = self.sign_round(id, Unsigned::Vote(vote))? {
                        tracing::info!(settlement = %id, round, "voted");
                        self.gossip_and_feed(spec, signed).await?;
                    }
                }
                Action::Certified(certificate) => {
                    self.store.put_certificate(&certificate)?;
                    self.store.durable()?;
                    let proposal = &certificate.proposal.payload;
                    tracing::info!(settlement = %id, round = proposal.round, value = %proposal.value, "certified");
                    self.events.publish(NodeEvent {
                        settlement_id: id,
                        kind: EventKind::Certified,
                        at: crate::clock::now(),
                        detail: serde_json::json!({
                            "round": proposal.round,
                            "value": proposal.value,
                            "challenge_deadline": proposal.challenge_deadline,
                        }),
                    });
                    self.on_certified(spec, &certificate).await?;
                }
                Action::Equivocation(evidence) => self.keep_equivocation(id, evidence)?,
                Action::RoundTimedOut { round, next_round, next_leader } => {
                    tracing::info!(settlement = %id, round, next_round, next_leader, "round timed out");
                }
                Action::Rejected { from, reason } => {
                    tracing::warn!(settlement = %id, %from, %reason, "proposal rejected; not voting for it");
                }
            }
        }
        Ok(())
    }

    /// Keeps equivocation evidence (durably), logs it and tells the event stream: the same for
    /// the first certificate and for reviews.
    pub(crate) fn keep_equivocation(
        &self,
        id: B256,
        evidence: fixd_decision::consensus::Equivocation,
    ) -> Result<(), StoreError> {
        let (signer, kind, round) = (*evidence.signer(), evidence.kind(), evidence.round());
        self.store.put_equivocation(&evidence)?;
        self.store.durable()?;
        tracing::warn!(settlement = %id, %signer, ?kind, round, "equivocation: evidence kept, member ignored");
        self.events.publish(NodeEvent {
            settlement_id: id,
            kind: EventKind::Equivocation,
            at: crate::clock::now(),
            detail: serde_json::json!({
                "signer": signer, "kind": kind, "round": round,
                "first": evidence.first.hash(), "second": evidence.second.hash(),
            }),
        });
        Ok(())
    }

    /// Signs a proposal or vote as this member: records its slot (settlement, kind, round),
    /// stores it and flushes, all before anything can send it. `None` when this member signed
    /// another message in that slot already (a review may have used the round): nothing is
    /// signed then.
    pub(crate) fn sign_round(
        &self,
        settlement: B256,
        unsigned: Unsigned,
    ) -> Result<Option<GossipMessage>, StoreError> {
        let (kind, round) = match &unsigned {
            Unsigned::Proposal(p) => (SignedKind::Proposal, p.round),
            Unsigned::Vote(v) => (SignedKind::Vote, v.round),
        };
        let message = match unsigned {
            Unsigned::Proposal(p) => GossipMessage::Proposal(Signed::sign(&self.key, &self.network_id, p)),
            Unsigned::Vote(v) => GossipMessage::Vote(Signed::sign(&self.key, &self.network_id, v)),
        };
        let slot = SigningSlot { settlement, kind, round };
        let kept = record_signed_and_keep(&*self.store, slot, message.hash(), |store| match &message {
            GossipMessage::Proposal(p) => store.put_proposal(p),
            GossipMessage::Vote(v) => store.put_vote(v),
            _ => unreachable!("built above as a proposal or a vote"),
        })?;
        Ok(kept.then_some(message))
    }

    async fn gossip_and_feed(
        &mut self,
        spec: &SettlementSpec,
        message: GossipMessage,
    ) -> Result<(), StoreError> {
        if let Err(error) = self.network.publish(message.clone()).await {
            tracing::warn!(%error, "cannot gossip now; peers will catch up");
        }
        let Some(event) = event_of(message) else { return Ok(()) };
        let actions = self.machine(spec)?.on(crate::clock::now(), event);
        Box::pin(self.carry_out(spec, actions)).await
    }
}

/// A proposal or vote this member is about to sign.
#[derive(Debug)]
pub(crate) enum Unsigned {
    Proposal(fixd_proto::types::certificate::Proposal),
    Vote(fixd_proto::types::certificate::Vote),
}

/// The certification event of a message; `None` for report signatures, which are the
/// publication's.
fn event_of(message: GossipMessage) -> Option<Event> {
    match message {
        GossipMessage::Observation(o) => Some(Event::Observation(o)),
        GossipMessage::Proposal(p) => Some(Event::Proposal(p)),
        GossipMessage::Vote(v) => Some(Event::Vote(v)),
        GossipMessage::ReviewVote(v) => Some(Event::ReviewVote(v)),
        GossipMessage::ReportSignature(_) | GossipMessage::Dispute(_) | GossipMessage::Ruling(_) => None,
    }
}
