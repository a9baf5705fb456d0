//! The settlement service: the one executor of [`fixd_decision::driver::SettlementDriver`]s.
//! One task owns one driver per settlement, turns what arrives (gossip, this node's
//! observations, the API's disputes and rulings, chain reads, answers of helper tasks, the
//! clock) into driver inputs, and carries the effects out.
//!
//! ```text
//!   observer ──own observation──┐
//!   network  ──gossip message───┤
//!   api      ──Command──────────┼──▶ Settlements ──▶ SettlementDriver::on(now, input) ─▶ effects
//!   chain    ──ChainUpdate──────┤        ▲                                                │
//!   helpers  ──Inbox────────────┤        └────── Input::Own (after sign) ◀────────────────┤
//!   interval ──tick─────────────┘                                                         ▼
//!     Sign ─▶ record_signed_and_keep (slot, store) ─▶ outbox ─▶ feed back
//!     Keep ─▶ store (certificates, evidence, messages)
//!     Gossip ─▶ outbox · Watch, Publish ─▶ outbox · CheckBond, Recompute ─▶ helper tasks
//!     CatchUp ─▶ a peer, answers checked by the network · Event ─▶ outbox
//!
//!   after a tick, with no input ready, or 512 inputs since the last release ─▶ release:
//!     flush the store once ─▶ the outbox goes out (gossip, chain commands, events)
//! ```
//!
//! Waves: a driver's first-value and final-report decisions are held at their start
//! ([`SettlementDriver::hold_starts`]); each tick admits the due ones in the settlement list's
//! order while fewer than `observer.max_running_decisions` run ([`MAX_RUNNING_DECISIONS`]), so
//! an expiry burst does not run every settlement's Tendermint decision in memory at once.
//!
//! Parking ([`parking`]): a driver that only waits (its window, with nothing disputed; or its
//! publication's depth) is dropped at the tick and kept as a time or a chain read; an input, or
//! the time it waited for, builds it again from the store as of when it was dropped
//! ([`SettlementDriver::resume`]). Those due are built again in the waves above, and only while
//! fewer than four reports per running decision wait for the chain
//! ([`UNPUBLISHED_PER_RUNNING`]): a burst of 10,000 then holds a few thousand drivers at a
//! time, not 10,000 for the minutes its windows and publications take.
//!
//! Safety: every message this member signs goes through [`Settlements::sign`], the one place
//! that signs: it records the slot and stores the message; a slot taken by another message is
//! skipped (see [`record_signed_and_keep`]). Nothing leaves the service straight away: what it
//! would send (gossip, chain commands, events, answers to the API) waits in the outbox until
//! the store is flushed (a group commit: one flush for all the inputs that came together,
//! instead of one per message signed, which made a burst of 10,000 settlements wait on the
//! disk). So whatever a peer (gossip, or a catch-up: [`StoreCatchup`] flushes what it read), the
//! chain, the event stream or a submitter of a dispute hears of was on disk first. The API's
//! reads may show what is written and not yet flushed, for the milliseconds until the release.

mod batches;
mod bonds;
mod catchup;
mod interests;
mod parking;
mod review;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use ed25519_dalek::SigningKey;
use fixd_decision::driver::{
    Accepted, DriverSetup, Effect, Held, Input, Record, Rejected, SettlementDriver, Unsigned,
};
use fixd_proto::eip712::{ReportSignature, SignedDispute, SignedRuling, sign_typed};
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::ProposalSource;

use fixd_proto::types::dispute::{DisputeEscrow, RelayedDispute};
pub use interests::Interests;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::chain::{BondError, ChainCommand, ChainHandle, ChainReader, ChainUpdate};
use crate::events::{EventBus, NodeEvent};
use crate::network::{CatchupProvider, CatchupResponse, GossipMessage, NetworkEvent, NetworkHandle, Verdict};
use crate::observer::OwnObservation;
use crate::store::{FinalRecord, Store, StoreError, record_signed_and_keep};
use crate::tasks::TaskSpawner;
use crate::venues::VenueAdapter;

pub use fixd_decision::driver::MAX_EVIDENCE_BYTES;

pub use crate::config::MAX_RUNNING_DECISIONS;
pub use review::recompute;

/// What the API asks of the settlement service. The API has checked the signature and the bond.
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

/// Why a dispute or ruling is not accepted: the driver's rules, or this node's store.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Rejected(#[from] Rejected),
    #[error("this node's store failed: {0}")]
    Store(#[from] StoreError),
}

/// Serves catch-up requests from the store, once what it read is on disk.
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
                certificates: self
                    .0
                    .certificate(id)?
                    .into_iter()
                    .chain(self.0.review_certificates(id)?.into_iter().map(|(_, certificate)| certificate))
                    .chain(self.0.report_certificate(id)?)
                    .collect(),
            })
        };
        // Read, then flush: what was read was written before the flush began, so it is on disk
        // before it leaves. The settlement service flushes its own writes only at its next
        // release (a group commit), and a peer must never hold a message this member could
        // lose in a crash and sign differently after it.
        let durable = |response: CatchupResponse| self.0.durable().map(|()| response);
        read().and_then(durable).unwrap_or_else(|error| {
            tracing::error!(settlement = %id, %error, "cannot read the store for a catch-up request");
            CatchupResponse::default()
        })
    }
}

/// Everything the store holds of one settlement, for its driver.
pub fn held(store: &dyn Store, id: &B256) -> Result<Held, StoreError> {
    Ok(Held {
        observations: store.observations(id)?,
        proposals: store.proposals(id)?,
        votes: store.votes(id)?,
        equivocations: store.equivocations(id)?,
        certificate: store.certificate(id)?.map(Arc::new),
        review_certificates: store.review_certificates(id)?,
        report_certificate: store.report_certificate(id)?.map(Arc::new),
        review_votes: store.review_votes(id)?,
        disputes: store.disputes(id)?,
        rulings: store.rulings(id)?,
        late: store.late_relays(id)?,
        report_signatures: store.report_signatures(id)?,
        on_chain: store.publication(id)?,
    })
}

/// This member's keys.
#[derive(Clone, Debug)]
pub struct MemberKeys {
    /// Signs every gossip message.
    pub ed25519: SigningKey,
    /// Signs final reports (EIP-712).
    pub secp256k1: alloy_signer_local::PrivateKeySigner,
}

/// The services the settlement service asks for things.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub network: NetworkHandle,
    pub events: EventBus,
    /// The chain service; `None` without `chain.rpc_url`.
    pub chain: Option<ChainHandle>,
    /// Reads bonds back; `None` without `chain.rpc_url`.
    pub reader: Option<ChainReader>,
    /// The venues whose history a review reads.
    pub venues: Vec<VenueAdapter>,
    /// Where bond checks and review recomputations run, so that they stop with the node.
    pub tasks: TaskSpawner,
    /// Dropped bond checks are counted (`fixd_bond_checks_dropped_total{reason}`).
    pub metrics: crate::metrics::Metrics,
    /// What each driver takes now, for the network; this service writes it.
    pub interests: Interests,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("chain", &self.chain.is_some())
            .field("venues", &self.venues.len())
            .finish()
    }
}

/// Where the settlement service's inputs come from.
#[derive(Debug)]
pub struct Inlets {
    pub gossip: crate::network::NetworkEvents,
    pub own: mpsc::Receiver<OwnObservation>,
    pub chain: mpsc::Receiver<ChainUpdate>,
    pub commands: mpsc::Receiver<Command>,
}

/// Asks peer number `turn` (of those connected) for what it holds of settlement `id` and feeds
/// what passes validation to the service's inbox. The hashes of what was fed, or `None` if no
/// peer answered.
async fn ask_a_peer(
    network: &NetworkHandle,
    inbox: &mpsc::Sender<Inbox>,
    id: B256,
    turn: usize,
) -> Option<Vec<B256>> {
    let peers = network.connected_peers();
    let peer = *peers.get(turn % peers.len().max(1))?;
    let response = match network.catch_up(peer, id).await {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(settlement = %id, %peer, %error, "catch-up failed");
            return None;
        }
    };
    let mut fed = Vec::new();
    let certificates = response.certificates.clone();
    for message in response.into_messages() {
        if let Ok(Verdict::Accept(message)) = network.check(message).await {
            fed.push(message.hash());
            inbox.send((id, Input::Gossip(message))).await.ok()?;
        }
    }
    // Checked by the decision's machine against the inputs it holds, like a vote.
    for certificate in certificates {
        fed.push(fixd_proto::hash::hash_bcs(&certificate));
        inbox.send((id, Input::Certificate(certificate))).await.ok()?;
    }
    Some(fed)
}

/// An answer of a helper task: an input for one settlement's driver.
type Inbox = (B256, Input);

/// What the service sends once the store is flushed ([`Settlements::release`]).
#[derive(Debug, Default)]
struct Outbox {
    gossip: Vec<GossipMessage>,
    chain: Vec<ChainCommand>,
    events: Vec<NodeEvent>,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.gossip.is_empty() && self.chain.is_empty() && self.events.is_empty()
    }
}

/// Reports final and waiting for the chain, at most, per decision that may run at once
/// ([`MAX_RUNNING_DECISIONS`]): a parked settlement whose report decision is due is built again
/// only while fewer wait (with a chain to publish on), so that a node takes a burst into
/// publication at the pace the chain takes it out, and holds 2,000 drivers at that stage, not
/// 10,000. Another member's messages of a settlement build its driver at once all the same.
const UNPUBLISHED_PER_RUNNING: usize = 4;

/// Whether a driver's report is final and not yet published.
fn awaits_the_chain(driver: &SettlementDriver) -> bool {
    driver.publication().is_some_and(|p| p.report().is_some() && !p.is_published())
}

/// Inputs handled between two releases at most, so that a steady stream of gossip still lets
/// the service's own messages out.
const MAX_INPUTS_PER_RELEASE: usize = 512;

/// What the service's loop takes next.
enum Arrival {
    Cancelled,
    Gossip(NetworkEvent),
    Own(OwnObservation),
    Chain(ChainUpdate),
    Command(Command),
    Inbox(Inbox),
    Tick,
    /// No input is ready: time to release the outbox.
    Idle,
}

/// The settlement service's state. One task runs it.
pub struct Settlements {
    /// Shared with every driver.
    setup: Arc<DriverSetup>,
    keys: MemberKeys,
    services: Services,
    /// How often to tick the drivers.
    tick: Duration,
    /// At most this many decisions run at once ([`MAX_RUNNING_DECISIONS`]).
    max_running: usize,
    /// Boxed: a driver is some 4 KB by value, and the map keeps up to twice its entries in
    /// slots (and two tables while it grows): by value, 10,000 drivers in flight would cost
    /// some 100 MB of slots.
    drivers: HashMap<B256, Box<SettlementDriver>>,
    /// Settlements whose publication is too deep for the chain service to read any more
    /// ([`settled`]): their driver was dropped, or (after a restart) never built. The tick skips
    /// them, and a message that still comes for one builds its driver again from the store.
    published: HashSet<B256>,
    /// Settlements whose driver is dropped while they wait: their window, or their
    /// publication's depth ([`parking`]).
    parking: parking::Parking,
    /// Ticks since the start: a parked settlement asks a peer for what it missed every tenth.
    ticks: u64,
    /// The store's settlements, read again only when one is added.
    known: crate::store::SettlementList,
    /// Where helper tasks (bond checks, review recomputations) answer.
    inbox: mpsc::Sender<Inbox>,
    inbox_rx: Option<mpsc::Receiver<Inbox>>,
    catch_up_turn: usize,
    /// Catch-ups in flight and their backoff, shared with their tasks ([`catchup`]).
    catch_ups: std::sync::Arc<std::sync::Mutex<catchup::CatchUps>>,
    /// Bond checks in flight, shared with their tasks ([`bonds`]).
    bond_checks: std::sync::Arc<std::sync::Mutex<bonds::BondChecks>>,
    /// The reports this member publishes, in batches where it can ([`batches`]).
    batcher: fixd_decision::publication::batch::Batcher,
    /// What waits for the store's flush before it is sent ([`Settlements::release`]).
    outbox: Outbox,
    /// The store was written since its last flush.
    unflushed: bool,
    /// A Byzantine member's strategy and its signer (end-to-end tests only).
    #[cfg(feature = "byzantine")]
    conduct: Option<(Arc<dyn crate::byzantine::Conduct>, crate::byzantine::Signer)>,
}

impl std::fmt::Debug for Settlements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settlements")
            .field("me", &self.setup.me)
            .field("drivers", &self.drivers.len())
            .finish()
    }
}

impl Settlements {
    pub fn new(setup: DriverSetup, keys: MemberKeys, services: Services, tick: Duration) -> Self {
        let (inbox, inbox_rx) = mpsc::channel(64);
        let batcher = batches::batcher(&setup, crate::config::ChainConfig::default().max_batch_reports());
        Settlements {
            batcher,
            setup: Arc::new(setup),
            keys,
            services,
            tick,
            max_running: MAX_RUNNING_DECISIONS,
            drivers: HashMap::new(),
            published: HashSet::new(),
            parking: Default::default(),
            ticks: 0,
            known: Default::default(),
            inbox,
            inbox_rx: Some(inbox_rx),
            catch_up_turn: 0,
            catch_ups: Default::default(),
            bond_checks: Default::default(),
            outbox: Outbox::default(),
            unflushed: false,
            #[cfg(feature = "byzantine")]
            conduct: None,
        }
    }

    /// At most `max_running` decisions run at once (`observer.max_running_decisions`).
    pub fn with_running_decisions(mut self, max_running: usize) -> Self {
        self.max_running = max_running.max(1);
        self
    }

    /// Batches of at most `max_reports` reports (`chain.max_batch_gas`); fewer than 2: none.
    pub fn with_batches_of(mut self, max_reports: usize) -> Self {
        self.batcher = batches::batcher(&self.setup, max_reports);
        self
    }

    /// Runs this member as a Byzantine one: `conduct` changes what it proposes and sends.
    #[cfg(feature = "byzantine")]
    pub fn with_conduct(mut self, conduct: Arc<dyn crate::byzantine::Conduct>) -> Self {
        let signer = crate::byzantine::Signer {
            ed25519: self.keys.ed25519.clone(),
            secp256k1: self.keys.secp256k1.clone(),
            network_id: self.setup.network_id,
            chain_id: self.setup.chain_id,
            contract: self.setup.contract,
        };
        self.conduct = Some((conduct, signer));
        self
    }

    /// Runs until cancelled. A store failure stops the service (and so the node).
    pub async fn run(mut self, mut inlets: Inlets, cancel: CancellationToken) -> anyhow::Result<()> {
        let mut inbox = self.inbox_rx.take().expect("run once");
        let mut next_tick = tokio::time::Instant::now();
        let mut since_release = 0usize;
        loop {
            let pending = !self.outbox.is_empty() || self.unflushed;
            // Waiting only with nothing to release; otherwise what is ready, then the release.
            // The service's own work first: its observations, the API, helpers, the chain,
            // then peers' gossip, then the clock. The tick comes `tick` after the last one
            // ended, so that a long one (thousands of drivers) still leaves time for the rest.
            let arrival = tokio::select! {
                biased;
                () = cancel.cancelled() => Arrival::Cancelled,
                Some(own) = inlets.own.recv() => Arrival::Own(own),
                Some(command) = inlets.commands.recv() => Arrival::Command(command),
                Some(input) = inbox.recv() => Arrival::Inbox(input),
                Some(update) = inlets.chain.recv() => Arrival::Chain(update),
                Some(event) = inlets.gossip.recv(), if tokio::time::Instant::now() < next_tick => Arrival::Gossip(event),
                () = tokio::time::sleep_until(next_tick) => Arrival::Tick,
                () = std::future::ready(()), if pending => Arrival::Idle,
            };
            let idle = matches!(arrival, Arrival::Idle | Arrival::Tick);
            since_release += 1;
            match arrival {
                Arrival::Cancelled => return Ok(()),
                Arrival::Idle
                | Arrival::Gossip(NetworkEvent::PeerConnected(_) | NetworkEvent::PeerDisconnected(_)) => {}
                Arrival::Gossip(NetworkEvent::Message {
                    message: GossipMessage::BatchSignature(signed),
                    ..
                }) => {
                    self.on_batch_signature(signed).await;
                }
                Arrival::Gossip(NetworkEvent::Message { message, .. }) => {
                    let id = *message.settlement_id();
                    self.catch_ups.lock().expect("catch-ups lock").wake(&id);
                    self.drive(id, Input::Gossip(message)).await?;
                }
                Arrival::Own(own) => self.on_own_observation(own).await?,
                Arrival::Chain((id, state)) => self.on_chain_read(id, state).await?,
                Arrival::Command(command) => self.on_command(command).await?,
                Arrival::Inbox((id, input)) => self.drive(id, input).await?,
                Arrival::Tick => {
                    self.on_tick().await?;
                    next_tick = tokio::time::Instant::now() + self.tick;
                }
            }
            if idle || since_release >= MAX_INPUTS_PER_RELEASE {
                self.release().await?;
                since_release = 0;
            }
        }
    }

    /// Flushes the store if it was written, then sends what waited for it, in order.
    async fn release(&mut self) -> Result<(), StoreError> {
        if self.unflushed {
            self.services.store.durable()?;
            self.unflushed = false;
        }
        let Outbox { gossip, chain, events } = std::mem::take(&mut self.outbox);
        // "Stored" once on disk: an operator (and the crash tests) may kill the node right after.
        let me = self.setup.committee.members()[self.setup.me].ed25519;
        for message in &gossip {
            if let GossipMessage::Observation(o) = message
                && o.signer == me
            {
                let (id, value) = (o.payload.settlement_id, &o.payload.computation.value);
                tracing::info!(settlement = %id, hash = %o.hash(), ?value, "observation stored");
            }
        }
        if !gossip.is_empty() {
            // What was signed together goes out together: as few bundles as fit.
            for error in self.services.network.publish_all(gossip).await {
                if !matches!(error, crate::network::NetworkError::AlreadyPublished) {
                    tracing::warn!(%error, "cannot gossip now; peers will catch up");
                }
            }
        }
        if let Some(service) = &self.services.chain {
            for command in chain {
                service.send(command).await;
            }
        }
        for event in events {
            self.services.events.publish(event);
        }
        Ok(())
    }

    /// Makes sure a settlement this node's store knows has its driver, built from the store on
    /// first use (its restore effects carried out). `false` for an unknown settlement.
    async fn ensure_driver(&mut self, id: &B256) -> Result<bool, StoreError> {
        if self.drivers.contains_key(id) {
            return Ok(true);
        }
        let store = &self.services.store;
        let Some(spec) = store.settlement(id)? else { return Ok(false) };
        // A dropped driver built again (a late message, a reorg): the tick drives it again.
        self.published.remove(id);
        let held = held(&**store, id)?;
        let corrupt = |e: fixd_dispute::Error| StoreError::Corrupt {
            key: id.to_string(),
            reason: format!("dispute rules: {e}"),
        };
        let (driver, effects) = match self.parking.take(id) {
            // What it does as of then, it did before it was parked.
            Some(parked) => (
                SettlementDriver::resume(self.setup.clone(), spec, held, parked.at).map_err(corrupt)?,
                Vec::new(),
            ),
            None => SettlementDriver::restore(self.setup.clone(), spec, held, crate::clock::now())
                .map_err(corrupt)?,
        };
        self.services.interests.set(*id, driver.interest());
        let mut driver = Box::new(driver);
        driver.hold_starts();
        self.drivers.insert(*id, driver);
        self.services.metrics.drivers_built.inc();
        self.carry_out(*id, effects).await?;
        Ok(true)
    }

    /// Feeds one input to a settlement's driver and carries out its effects. A certificate
    /// that a parked settlement's store holds already (every catch-up answer brings it) is
    /// dropped without building the driver, which would drop it too.
    async fn drive(&mut self, id: B256, input: Input) -> Result<(), StoreError> {
        if let Input::Certificate(certificate) = &input
            && self.parking.get(&id).is_some()
            && self.holds_certificate(&id, certificate)?
        {
            return Ok(());
        }
        if !self.ensure_driver(&id).await? {
            return Ok(());
        }
        let driver = self.drivers.get_mut(&id).expect("ensured above");
        let effects = driver.on(crate::clock::now(), input);
        self.services.interests.set(id, driver.interest());
        self.carry_out(id, effects).await
    }

    /// Whether the store holds this certificate of settlement `id` (its first, a review's or
    /// its report's).
    fn holds_certificate(
        &self,
        id: &B256,
        certificate: &fixd_proto::types::certificate::Certificate,
    ) -> Result<bool, StoreError> {
        let store = &self.services.store;
        Ok(store.certificate(id)?.as_ref() == Some(certificate)
            || store.report_certificate(id)?.as_ref() == Some(certificate)
            || store.review_certificates(id)?.iter().any(|(_, c)| c == certificate))
    }

    /// A chain read: kept without a driver if it only deepens the publication of a parked
    /// settlement ([`parking::ChainRead`]); otherwise its driver takes it.
    async fn on_chain_read(
        &mut self,
        id: B256,
        state: Option<fixd_decision::publication::OnChain>,
    ) -> Result<(), StoreError> {
        match self.parking.chain_read(&id, state.as_ref()) {
            parking::ChainRead::Wake => self.drive(id, Input::Chain(state)).await,
            deeper @ (parking::ChainRead::Deeper | parking::ChainRead::Settled) => {
                self.keep(id, Record::OnChain(state))?;
                if deeper == parking::ChainRead::Settled {
                    self.services.interests.forget(&id);
                    self.published.insert(id);
                }
                Ok(())
            }
        }
    }

    /// Signs this node's observation (the observer computed it), answers the observer, then
    /// gossips it and feeds it to the settlement's driver.
    async fn on_own_observation(&mut self, own: OwnObservation) -> Result<(), StoreError> {
        let id = own.observation.settlement_id;
        let message = self.sign(id, Unsigned::Observation(own.observation)).await?;
        let signed = match &message {
            Some(GossipMessage::Observation(o)) => Some(o.clone()),
            _ => None,
        };
        let _ = own.signed.send(signed);
        if let Some(message) = message {
            self.gossip(message.clone()).await;
            self.drive(id, Input::Own(message)).await?;
        }
        Ok(())
    }

    async fn on_tick(&mut self) -> Result<(), StoreError> {
        let now = crate::clock::now();
        self.ticks = self.ticks.wrapping_add(1);
        let since = now.saturating_sub(self.setup.protocol.round_timeout_secs);
        let mut running: usize = self.drivers.values().map(|driver| driver.running_since(since)).sum();
        let mut unpublished = if self.setup.has_chain {
            self.drivers.values().filter(|driver| awaits_the_chain(driver)).count()
        } else {
            0
        };
        let max_unpublished = self.max_running.saturating_mul(UNPUBLISHED_PER_RUNNING);
        let mut waiting = 0;
        for (id, spec) in self.known.current(&*self.services.store)?.iter() {
            let id = *id;
            if now < spec.observe_at() || self.published.contains(&id) {
                continue;
            }
            match self.parking.get(&id).map(|parked| &parked.until) {
                // Its report decision is due: built again in the decisions' waves.
                Some(parking::Until::Due(due))
                    if now >= *due && running < self.max_running && unpublished < max_unpublished =>
                {
                    unpublished += 1;
                }
                Some(parking::Until::Due(due)) => {
                    waiting += usize::from(now >= *due);
                    // As its driver did until its fold was final: gossip is best effort.
                    if self.ticks.is_multiple_of(10) {
                        self.catch_up(id);
                    }
                    continue;
                }
                Some(parking::Until::Deep(_)) => continue,
                None => {}
            }
            if let Some(driver) = self.drivers.get(&id)
                && driver.is_published()
            {
                self.catch_ups.lock().expect("catch-ups lock").forget(&id);
                self.batcher.forget(&id);
                let on_chain = driver.publication().and_then(|p| p.on_chain()).cloned();
                if settled(on_chain.as_ref()) {
                    // Done: its memory goes, so a node's memory follows the settlements in flight.
                    self.drivers.remove(&id);
                    self.services.interests.forget(&id);
                    self.published.insert(id);
                } else if let Some(on_chain) = on_chain {
                    // Only its depth is awaited. Watched again: a restarted node built it
                    // published, and asked the chain service for nothing.
                    self.drivers.remove(&id);
                    self.parking.park(id, now, parking::Until::Deep(on_chain));
                    self.chain(ChainCommand::Watch(id));
                }
                continue;
            }
            if !self.drivers.contains_key(&id) && self.settled_in_store(&id)? {
                // Settled before this process started (or its driver went): nothing to drive,
                // so a restart on thousands of settled settlements builds none of their drivers.
                self.published.insert(id);
                continue;
            }
            if self.ensure_driver(&id).await? {
                let driver = self.drivers.get_mut(&id).expect("ensured above");
                if running < self.max_running {
                    running += driver.admit(now);
                }
                waiting += driver.waiting(now);
            }
            self.drive(id, Input::Tick).await?;
            self.park_if_idle(id, now);
        }
        self.services.metrics.decisions_running.set(running as i64);
        self.services.metrics.decisions_waiting.set(waiting as i64);
        self.services.metrics.drivers.set(self.drivers.len() as i64);
        self.services.metrics.parked.set(self.parking.len() as i64);
        self.flush_batches().await;
        Ok(())
    }

    /// Drops the driver of a settlement that waits out its window with nothing else to do
    /// ([`SettlementDriver::idle_until`]), unless a bond check of a dispute relayed to it runs:
    /// what the store holds builds it again ([`parking`]).
    fn park_if_idle(&mut self, id: B256, now: u64) {
        let Some(until) = self.drivers.get(&id).and_then(|driver| driver.idle_until(now)) else { return };
        if self.bond_checks.lock().expect("bond checks lock").checking(&id) {
            return;
        }
        self.drivers.remove(&id);
        self.parking.park(id, now, parking::Until::Due(until));
    }

    /// Whether the store holds the settlement's publication [`settled`].
    fn settled_in_store(&self, id: &B256) -> Result<bool, StoreError> {
        Ok(settled(self.services.store.publication(id)?.as_ref()))
    }

    /// Answers the API once what the command changed is flushed: an accepted dispute is on
    /// disk before its submitter hears so.
    async fn on_command(&mut self, command: Command) -> Result<(), StoreError> {
        match command {
            Command::SubmitDispute { dispute, escrow, reply } => {
                let id = dispute.dispute.settlement_id;
                let answer = self.submit(id, |driver, now| driver.submit_dispute(now, dispute, escrow)).await;
                if let Err(SubmitError::Store(e)) = &answer {
                    tracing::error!(error = %e, "store failed while accepting a dispute");
                }
                self.release().await?;
                let _ = reply.send(answer);
            }
            Command::SubmitRuling { ruling, reply } => {
                let id = ruling.ruling.settlement_id;
                let answer = self.submit(id, |driver, now| driver.submit_ruling(now, ruling)).await;
                self.release().await?;
                let _ = reply.send(answer);
            }
        }
        Ok(())
    }

    async fn submit<T>(
        &mut self,
        id: B256,
        ask: impl FnOnce(&mut SettlementDriver, u64) -> (Vec<Effect>, Result<T, Rejected>),
    ) -> Result<T, SubmitError> {
        if !self.ensure_driver(&id).await? {
            return Err(Rejected::UnknownSettlement(id).into());
        }
        let driver = self.drivers.get_mut(&id).expect("ensured above");
        let (effects, answer) = ask(driver, crate::clock::now());
        self.carry_out(id, effects).await?;
        Ok(answer?)
    }

    /// Carries out a driver's effects, in order.
    async fn carry_out(&mut self, id: B256, effects: Vec<Effect>) -> Result<(), StoreError> {
        for effect in effects {
            match effect {
                Effect::Keep(record) => {
                    let bogus = match &record {
                        Record::Certificate(certificate) => {
                            crate::test_faults::bogus_relays(&self.keys.ed25519, &self.setup, certificate)
                        }
                        _ => Vec::new(),
                    };
                    self.keep(id, record)?;
                    for relay in bogus {
                        self.gossip(relay).await;
                    }
                }
                Effect::Sign(unsigned) => {
                    if let Some(message) = self.sign(id, unsigned).await? {
                        self.gossip(message.clone()).await;
                        Box::pin(self.drive(id, Input::Own(message))).await?;
                    }
                }
                Effect::Gossip(message) => self.gossip(message).await,
                Effect::Watch => self.chain(ChainCommand::Watch(id)),
                Effect::Publish { report, signatures, turn: _ } => {
                    self.publish_report(report, signatures).await
                }
                Effect::CheckBond { relayed, give_up_at, late } => {
                    self.check_bond(id, relayed, give_up_at, late)
                }
                Effect::Recompute { dispute_round, dispute_id, contested } => {
                    self.recompute(id, dispute_round, dispute_id, contested);
                }
                Effect::CatchUp => self.catch_up(id),
                Effect::Event { kind, detail } => {
                    self.outbox.events.push(NodeEvent {
                        settlement_id: id,
                        kind,
                        at: crate::clock::now(),
                        detail,
                    });
                }
            }
        }
        Ok(())
    }

    /// Stores what a driver keeps. It is flushed before anything that follows it leaves the
    /// service ([`Settlements::release`]): relays decide bond outcomes, certificates and
    /// evidence are what other members may rely on.
    fn keep(&mut self, id: B256, record: Record) -> Result<(), StoreError> {
        let store = &self.services.store;
        match record {
            Record::Message(message) => put_message(&**store, &message)?,
            Record::Certificate(certificate) => store.put_certificate(&certificate)?,
            Record::ReviewCertificate { dispute_id, certificate } => {
                store.put_review_certificate(&dispute_id, &certificate)?;
            }
            Record::ReportCertificate(certificate) => store.put_report_certificate(&certificate)?,
            Record::Equivocation(evidence) => store.put_equivocation(&evidence)?,
            Record::OnChain(state) => store.put_publication(&id, state.as_ref())?,
            Record::LateRelay(hash) => store.put_late_relay(&id, &hash)?,
        }
        self.unflushed = true;
        Ok(())
    }

    /// Signs through [`sign_and_keep`], then runs the test faults that hook in after a
    /// message is kept. The message leaves once the store is flushed ([`Settlements::release`]).
    async fn sign(&mut self, id: B256, unsigned: Unsigned) -> Result<Option<GossipMessage>, StoreError> {
        #[cfg(feature = "byzantine")]
        let unsigned = self.misconduct(unsigned);
        let message = sign_and_keep(&*self.services.store, &self.keys, &self.setup, id, unsigned)?;
        self.unflushed = true;
        match &message {
            Some(GossipMessage::ReviewVote(_)) => {
                // The fault stalls once the vote is on disk, before it is sent.
                self.services.store.durable()?;
                self.unflushed = false;
                crate::test_faults::after_review_vote().await;
            }
            Some(GossipMessage::Vote(vote)) => {
                for flood in
                    crate::test_faults::flood(&self.keys.ed25519, &self.setup.network_id, &vote.payload)
                {
                    self.gossip(flood).await;
                }
            }
            _ => {}
        }
        Ok(message)
    }

    async fn gossip(&mut self, message: GossipMessage) {
        #[cfg(feature = "byzantine")]
        if let Some((conduct, signer)) = self.conduct.clone() {
            for (delay, message) in conduct.outgoing(&signer, message) {
                if delay.is_zero() {
                    self.outbox.gossip.push(message);
                    continue;
                }
                // A Byzantine member's late gossip: sent after the delay, flushed or not.
                let network = self.services.network.clone();
                self.services.tasks.spawn("byzantine late gossip", async move {
                    tokio::time::sleep(delay).await;
                    let _ = network.publish(message).await;
                });
            }
            return;
        }
        self.outbox.gossip.push(message);
    }

    /// A Byzantine member's strategy applied to what it is about to sign: a fresh proposal of
    /// the value from observations, as the strategy would have it.
    #[cfg(feature = "byzantine")]
    fn misconduct(&self, mut unsigned: Unsigned) -> Unsigned {
        use fixd_decision::consensus::Candidate;
        if let (Some((conduct, _)), Unsigned::Proposal(to_sign)) = (&self.conduct, &mut unsigned)
            && let Candidate::Fresh(fresh) = &mut to_sign.candidate
            && fresh.source == ProposalSource::Observations
        {
            *fresh = conduct.propose(fresh.clone());
        }
        unsigned
    }

    /// A command for the chain service, sent once the store is flushed.
    fn chain(&mut self, command: ChainCommand) {
        if self.services.chain.is_some() {
            self.outbox.chain.push(command);
        }
    }

    /// Asks the next connected peer, in turn, for what it holds of a settlement, in a helper
    /// task ([`catchup`]): what passes validation comes back through the inbox, like gossip.
    fn catch_up(&mut self, id: B256) {
        if !self.catch_ups.lock().expect("catch-ups lock").start(id, std::time::Instant::now()) {
            return;
        }
        self.catch_up_turn = self.catch_up_turn.wrapping_add(1);
        let turn = self.catch_up_turn;
        let (network, inbox, catch_ups) =
            (self.services.network.clone(), self.inbox.clone(), self.catch_ups.clone());
        self.services.tasks.spawn("catch-up", async move {
            let answer = ask_a_peer(&network, &inbox, id, turn).await;
            catch_ups.lock().expect("catch-ups lock").finish(id, std::time::Instant::now(), answer);
        });
    }

    /// Reads a relayed dispute's bond back in a helper task, on this node's own RPC.
    fn check_bond(&self, id: B256, relayed: Signed<RelayedDispute>, give_up_at: u64, late: bool) {
        let Some(reader) = self.services.reader.clone() else { return };
        let dispute_id = relayed.payload.dispute.dispute.dispute_id;
        let key = bonds::BondChecks::key(id, &relayed);
        let admitted = {
            let mut checks = self.bond_checks.lock().expect("bond checks lock");
            let admitted = checks.admit(id, relayed.clone(), late);
            self.services.metrics.bond_checks.set(checks.in_flight() as i64);
            admitted
        };
        match admitted {
            bonds::Admission::Start => {}
            bonds::Admission::Joined => return,
            bonds::Admission::Full(bound) => {
                tracing::warn!(settlement = %id, dispute = %dispute_id, bound, "relayed dispute dropped: too many bond checks");
                self.services.metrics.bond_check_dropped("too_many");
                return;
            }
        }
        let (inbox, checks, metrics) =
            (self.inbox.clone(), self.bond_checks.clone(), self.services.metrics.clone());
        self.services.tasks.spawn("bond check", async move {
            let dispute = &relayed.payload.dispute.dispute;
            let started = std::time::Instant::now();
            let mut attempt = 0;
            let verdict = loop {
                if crate::clock::now() >= give_up_at || started.elapsed() >= bonds::MAX_WAIT {
                    break Err("unknown");
                }
                match reader.verify_bond(dispute).await {
                    Ok(escrow) if escrow == relayed.payload.escrow => break Ok(()),
                    Ok(escrow) => {
                        tracing::warn!(dispute = %dispute.dispute_id, ?escrow, relayed = ?relayed.payload.escrow, "relayed dispute names another escrow than the chain shows; ignored");
                        break Err("wrong_escrow");
                    }
                    // NotFound too: this node's RPC may not have the block yet.
                    Err(BondError::Unconfirmed { .. } | BondError::Rpc(_) | BondError::NotFound(_)) => {
                        tokio::time::sleep(bonds::backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err(error) => {
                        tracing::warn!(dispute = %dispute.dispute_id, %error, "relayed dispute's bond does not check; ignored");
                        break Err("bad_bond");
                    }
                }
            };
            let waiting = {
                let mut checks = checks.lock().expect("bond checks lock");
                let waiting = checks.finish(&key);
                metrics.bond_checks.set(checks.in_flight() as i64);
                waiting
            };
            match verdict {
                Ok(()) => {
                    for (relayed, late) in waiting {
                        let _ = inbox.send((id, Input::BondChecked { relayed, late })).await;
                    }
                }
                Err(reason) => {
                    if reason == "unknown" {
                        tracing::warn!(dispute = %dispute.dispute_id, waited = ?started.elapsed(), "relayed dispute dropped: its bond is still unknown after the bounded wait");
                    }
                    metrics.bond_check_dropped(reason);
                }
            }
        });
    }

    /// Recomputes the window for a review in a helper task.
    fn recompute(&self, id: B256, dispute_round: u16, dispute_id: B256, contested: B256) {
        let Some(spec) = self.drivers.get(&id).map(|d| d.spec().clone()) else { return };
        let (store, venues, committee, network_id, inbox) = (
            self.services.store.clone(),
            self.services.venues.clone(),
            self.setup.committee.clone(),
            self.setup.network_id,
            self.inbox.clone(),
        );
        self.services.tasks.spawn("review recomputation", async move {
            match recompute(&*store, &venues, &committee, &network_id, &spec, dispute_id, contested).await {
                Ok(vote) => {
                    let _ = inbox.send((id, Input::Recomputed { dispute_round, vote })).await;
                }
                Err(error) => tracing::error!(%error, "review: cannot read the store"),
            }
        });
    }
}

/// Whether a publication is too deep for the chain service to read any more
/// ([`crate::chain::service::FORGET_AFTER_CONFIRMATIONS`] blocks): its settlement needs no driver.
fn settled(on_chain: Option<&fixd_decision::publication::OnChain>) -> bool {
    on_chain
        .is_some_and(|on_chain| on_chain.confirmations >= crate::chain::service::FORGET_AFTER_CONFIRMATIONS)
}

/// Stores a signed message under its kind (the store keeps the first of a kind per key, or the
/// earliest relay).
fn put_message(store: &dyn Store, message: &GossipMessage) -> Result<(), StoreError> {
    match message {
        GossipMessage::Observation(o) => store.put_observation(o),
        GossipMessage::Proposal(p) => store.put_proposal(p),
        GossipMessage::Vote(v) => store.put_vote(v),
        GossipMessage::ReviewVote(v) => store.put_review_vote(v).map(drop),
        GossipMessage::ReportSignature(s) => store.put_report_signature(s),
        GossipMessage::Dispute(d) => store.put_dispute(d).map(drop),
        GossipMessage::Ruling(r) => store.put_ruling(r).map(drop),
        // A batch decides nothing (each report in it is decided and stored): not stored.
        GossipMessage::BatchSignature(_) => Ok(()),
    }
}

/// The one place a member signs: an observation, a round message, a review vote, a final
/// report or a relay. The message is signed, recorded in its slot (if it has one) and stored;
/// the caller flushes the store before it sends the message. `None` when the slot holds another message
/// already: nothing is signed or kept then (see [`record_signed_and_keep`]).
pub fn sign_and_keep(
    store: &dyn Store,
    keys: &MemberKeys,
    setup: &DriverSetup,
    id: B256,
    unsigned: Unsigned,
) -> Result<Option<GossipMessage>, StoreError> {
    let (key, network_id) = (&keys.ed25519, &setup.network_id);
    let slot = unsigned.slot(id);
    let mut finality = None;
    let message = match unsigned {
        Unsigned::Observation(o) => GossipMessage::Observation(Signed::sign(key, network_id, o)),
        Unsigned::Proposal(proposal) => {
            let round_proposal = proposal.into_round_proposal(|fresh| {
                let fresh = match fresh.source {
                    ProposalSource::Observations => crate::test_faults::tamper(fresh),
                    ProposalSource::Review { .. } | ProposalSource::Report { .. } => fresh,
                };
                Signed::sign(key, network_id, fresh)
            });
            GossipMessage::proposal(Signed::sign(key, network_id, round_proposal))
        }
        Unsigned::Vote(vote) => GossipMessage::Vote(Signed::sign(key, network_id, vote)),
        Unsigned::ReviewVote { vote, .. } => GossipMessage::ReviewVote(Signed::sign(key, network_id, vote)),
        Unsigned::Report { report, finality: f } => {
            let domain = fixd_proto::eip712::domain(setup.chain_id, setup.contract);
            let payload = ReportSignature {
                signature: sign_typed(&keys.secp256k1, &domain, &report),
                signer: keys.secp256k1.address(),
                report: report.clone(),
            };
            finality = Some(FinalRecord { report, finality: f });
            GossipMessage::ReportSignature(Signed::sign(key, network_id, payload))
        }
        Unsigned::Dispute(relayed) => GossipMessage::dispute(Signed::sign(key, network_id, relayed)),
        Unsigned::Ruling(relayed) => {
            GossipMessage::Ruling(Signed::sign(key, network_id, crate::test_faults::backdate(relayed)))
        }
    };
    let keep = |store: &dyn Store| -> Result<(), StoreError> {
        crate::test_faults::after_slot(store, &message);
        if let Some(record) = &finality {
            store.put_final(record)?;
        }
        put_message(store, &message)
    };
    let kept = match slot {
        Some(slot) => record_signed_and_keep(store, slot, message.hash(), keep)?,
        None => {
            keep(store)?;
            true
        }
    };
    if !kept {
        return Ok(None);
    }
    match &message {
        GossipMessage::Proposal(p) => {
            let candidate = &p.payload.proposal.payload;
            tracing::info!(settlement = %id, round = p.payload.round, pol_round = ?p.payload.pol_round, value = %candidate.value, source = ?candidate.source, "proposed");
        }
        GossipMessage::Vote(v) => {
            let v = &v.payload;
            tracing::info!(settlement = %id, decision = ?v.decision, round = v.round, step = ?v.step, proposal = ?v.proposal_hash, "voted");
        }
        _ => {}
    }
    Ok(Some(message))
}
