//! The swarm task: the one owner of the [`libp2p::Swarm`].
//!
//! [`NetworkService::start`] builds the swarm, listens, subscribes and returns the
//! [`SwarmTask`] that owns it, for the node to run as its named `network` service. That task runs one `select!` over the shutdown token, the redial timer, commands from
//! [`NetworkHandle`]s, swarm events and finished catch-up answers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use fixd_proto::gossip::GossipBundle;
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::settlement::SettlementId;
use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{Swarm, SwarmEvent};
use libp2p::{Multiaddr, PeerId, SwarmBuilder, identify, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::behaviour::{Behaviour, BehaviourEvent, BehaviourSettings};
use super::catchup::{CatchupProvider, CatchupRequest, CatchupResponse};
use super::config::NetworkConfig;
use super::handle::{Command, NetworkEvent, NetworkEvents, NetworkHandle, goes_first};
use super::messages::{GossipMessage, MessageKind, Topics};
use super::validation::{
    FarKey, FarRounds, SeenSet, ValidationContext, Verdict, far_key, verdict, verdict_on,
};
use super::{NetworkError, peer_id_of};
use crate::metrics::MessageResult;
use fixd_decision::driver::{Unwanted, Wanted};

/// Whether this node knows (has scheduled) a settlement. Messages on unknown settlements are
/// ignored; the node catches up on them once it learns of them.
pub type KnownSettlements = Arc<dyn Fn(&SettlementId) -> bool + Send + Sync>;

/// Whether a settlement's driver takes a message now ([`super::validation::Interest::judge`]).
pub type WantedMessages = Arc<dyn Fn(&GossipMessage) -> Result<Wanted, Unwanted> + Send + Sync>;

/// What the node takes, asked before a message's signature is checked (see
/// [`super::validation`]).
#[derive(Clone)]
pub struct Admission {
    pub known: KnownSettlements,
    pub wanted: WantedMessages,
}

impl Admission {
    /// Every message of the settlements `known` says this node knows.
    pub fn settlements(known: KnownSettlements) -> Self {
        Admission { known, wanted: Arc::new(|_| Ok(Wanted::Now)) }
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admission")
    }
}

/// Commands buffered between handles and the swarm task.
const COMMAND_BUFFER: usize = 256;
/// Accepted message hashes remembered for de-duplication.
const SEEN_CAPACITY: usize = 100_000;
/// (Settlement, decision, member) keys whose rounds past the window are remembered.
const FAR_CAPACITY: usize = 100_000;
/// Addresses kept per member from identify reports.
const MAX_ADDRESSES_PER_PEER: usize = 8;
/// Committee connections stay open while idle (a member outside the gossip mesh may be quiet for
/// hours); a dead one is found by ping instead, closed, and redialed.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The network service: see the module docs.
#[derive(Debug)]
pub struct NetworkService;

impl NetworkService {
    /// Builds the swarm, listens on `config.listen` and subscribes to the topics. Returns the
    /// handle, the accepted messages and the [`SwarmTask`], which the caller runs as a named
    /// task (the node: its `network` service); it stops when `shutdown` (or
    /// [`NetworkHandle::shutdown`]) fires. Must be called inside a tokio runtime.
    pub fn start(
        config: NetworkConfig,
        provider: Arc<dyn CatchupProvider>,
        admission: Admission,
        shutdown: CancellationToken,
    ) -> Result<(NetworkHandle, NetworkEvents, SwarmTask), NetworkError> {
        let topics = Topics::new(&config.network_id);
        let settings = BehaviourSettings {
            max_message_bytes: config.max_message_bytes,
            catchup_timeout: config.catchup_timeout,
            max_catchup_bytes: config.max_catchup_bytes,
            protocol_version: format!("/fixd/{}/1", hex::encode(&config.network_id[..8])),
            connection_limits: config.connection_limits.limits(),
        };
        let transport_err = |e: &dyn std::fmt::Display| NetworkError::Transport(e.to_string());
        let behaviour =
            Behaviour::new(&config.keypair, &topics, &settings).map_err(NetworkError::Transport)?;
        let mut swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .map_err(|e| transport_err(&e))?
            .with_quic()
            .with_dns()
            .map_err(|e| transport_err(&e))?
            .with_behaviour(|_| behaviour)
            .map_err(|e| transport_err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();

        let mut members = HashSet::new();
        for member in config.committee.members() {
            let peer = peer_id_of(&member.ed25519)?;
            swarm.behaviour_mut().allow.allow_peer(peer);
            members.insert(peer);
        }
        for topic in topics.iter() {
            swarm.behaviour_mut().gossipsub.subscribe(topic).map_err(|e| transport_err(&e))?;
        }
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetworkError::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        let addresses: HashMap<PeerId, Vec<Multiaddr>> =
            config.peers.iter().filter(|(p, _)| members.contains(p)).cloned().collect();

        let local_peer_id = *swarm.local_peer_id();
        let shutdown = shutdown.child_token();
        let (commands_tx, commands) = mpsc::channel(COMMAND_BUFFER);
        let (events, rest) = mpsc::channel(config.event_buffer.max(1));
        let (events_first, first) = mpsc::channel(config.event_buffer.max(1));
        let events_rx = NetworkEvents { first, rest };
        let (peers, peers_rx) = tokio::sync::watch::channel(Vec::new());
        let event_loop = EventLoop {
            swarm,
            topics,
            network_id: config.network_id,
            committee: config.committee,
            max_message_bytes: config.max_message_bytes,
            max_clock_skew_secs: config.max_clock_skew_secs,
            members,
            addresses,
            learned: HashMap::new(),
            seen: SeenSet::new(SEEN_CAPACITY),
            far: FarRounds::new(FAR_CAPACITY),
            admission,
            provider,
            events,
            events_first,
            peers,
            commands,
            serving: JoinSet::new(),
            pending_catchups: HashMap::new(),
            shutdown: shutdown.clone(),
            metrics: config.metrics,
        };
        info!(peer_id = %local_peer_id, "network starting");
        let task = SwarmTask { event_loop, dial_interval: config.dial_interval };
        Ok((NetworkHandle::new(commands_tx, shutdown, local_peer_id, peers_rx), events_rx, task))
    }
}

/// The one task that owns the swarm: run it once, under a name.
#[must_use = "the network does nothing until its swarm task runs"]
pub struct SwarmTask {
    event_loop: EventLoop,
    dial_interval: Duration,
}

impl std::fmt::Debug for SwarmTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwarmTask").field("dial_interval", &self.dial_interval).finish()
    }
}

impl SwarmTask {
    /// Runs the swarm until shutdown.
    pub async fn run(self) {
        self.event_loop.run(self.dial_interval).await;
    }
}

type CatchupReply = oneshot::Sender<Result<CatchupResponse, NetworkError>>;

struct EventLoop {
    swarm: Swarm<Behaviour>,
    topics: Topics,
    network_id: B256,
    committee: Committee,
    max_message_bytes: usize,
    max_clock_skew_secs: u64,
    members: HashSet<PeerId>,
    /// Where the genesis (or config) says each member listens.
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    /// What each member last reported through identify; replaced on every report.
    learned: HashMap<PeerId, Vec<Multiaddr>>,
    seen: SeenSet,
    far: FarRounds,
    admission: Admission,
    provider: Arc<dyn CatchupProvider>,
    events: mpsc::Sender<NetworkEvent>,
    /// The first lane of [`NetworkEvents`]: observations and proposals.
    events_first: mpsc::Sender<NetworkEvent>,
    /// The connected members, for [`NetworkHandle::connected_peers`]: set on each first
    /// connection and last disconnection.
    peers: tokio::sync::watch::Sender<Vec<PeerId>>,
    commands: mpsc::Receiver<Command>,
    /// Catch-up answers being read from the store (on blocking threads), owned by this loop so
    /// they end with it.
    serving: JoinSet<(ResponseChannel<CatchupResponse>, CatchupResponse)>,
    pending_catchups: HashMap<OutboundRequestId, (PeerId, CatchupReply)>,
    shutdown: CancellationToken,
    metrics: Option<super::NetworkMetrics>,
}

impl EventLoop {
    async fn run(mut self, dial_interval: Duration) {
        let mut redial = tokio::time::interval(dial_interval.max(Duration::from_millis(100)));
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = redial.tick() => self.redial(),
                Some(command) = self.commands.recv() => self.on_command(command),
                Some(served) = self.serving.join_next(), if !self.serving.is_empty() => match served {
                    Ok((channel, response)) => {
                        if self.swarm.behaviour_mut().catchup.send_response(channel, response).is_err() {
                            debug!("catch-up requester went away before the answer");
                        }
                    }
                    Err(e) => warn!(error = %e, "catch-up provider panicked; the requester will ask another peer"),
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
            }
        }
        info!("network stopped");
    }

    /// Where to dial a member: its configured addresses, then those it last reported.
    fn dial_addresses(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let configured = self.addresses.get(peer).into_iter().flatten();
        let learned = self.learned.get(peer).into_iter().flatten();
        let mut addrs: Vec<Multiaddr> = Vec::new();
        for addr in configured.chain(learned) {
            if !addrs.contains(addr) {
                addrs.push(addr.clone());
            }
        }
        addrs
    }

    fn redial(&mut self) {
        for peer in &self.members {
            if peer == self.swarm.local_peer_id() || self.swarm.is_connected(peer) {
                continue;
            }
            let addrs = self.dial_addresses(peer);
            if addrs.is_empty() {
                continue;
            }
            let opts = DialOpts::peer_id(*peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(%peer, error = %e, "cannot dial member");
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish { message, reply } => {
                let _ = reply.send(self.publish(message));
            }
            Command::PublishAll { messages, reply } => {
                let _ = reply.send(self.publish_all(messages));
            }
            Command::CatchUp { peer, settlement_id, reply } => {
                if !self.members.contains(&peer) {
                    let _ = reply.send(Err(NetworkError::UnknownPeer(peer)));
                    return;
                }
                let addrs = self.dial_addresses(&peer);
                let id = self.swarm.behaviour_mut().catchup.send_request_with_addresses(
                    &peer,
                    CatchupRequest { settlement_id },
                    addrs,
                );
                self.pending_catchups.insert(id, (peer, reply));
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::TopicPeers { kind, reply } => {
                let hash = self.topics.topic(kind).hash();
                let peers = self.swarm.behaviour().gossipsub.all_peers();
                let _ = reply.send(peers.filter(|(_, t)| t.contains(&&hash)).map(|(p, _)| *p).collect());
            }
            Command::PeerScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::Check { message, reply } => {
                let verdict = self.judge(None, |ctx| verdict_on(message, ctx));
                if let Verdict::Accept(accepted) = &verdict {
                    self.took(accepted.hash(), self.ahead(accepted));
                }
                let _ = reply.send(verdict);
            }
        }
    }

    fn publish(&mut self, message: GossipMessage) -> Result<(), NetworkError> {
        // A bundle of one goes on its message's own topic.
        self.publish_all(vec![message]).into_iter().next().map_or(Ok(()), Err)
    }

    /// Publishes messages signed together in as few bundles as fit `max_message_bytes`; a
    /// bundle of one goes on its message's own topic. The errors of what was not sent.
    fn publish_all(&mut self, messages: Vec<GossipMessage>) -> Vec<NetworkError> {
        let mut errors = Vec::new();
        let mut sent = Vec::with_capacity(messages.len());
        let mut encoded = Vec::with_capacity(messages.len());
        for message in messages {
            let bytes = message.encode();
            if bytes.len() > self.max_message_bytes {
                errors.push(NetworkError::TooLarge { len: bytes.len(), max: self.max_message_bytes });
                continue;
            }
            sent.push((message.hash(), message.kind()));
            encoded.push(bytes);
        }
        let mut sent = sent.into_iter();
        for mut bundle in GossipBundle::pack(encoded, self.max_message_bytes) {
            let these: Vec<(B256, MessageKind)> = sent.by_ref().take(bundle.messages.len()).collect();
            let (topic, data) = match bundle.messages.len() {
                1 => (self.topics.topic(these[0].1).clone(), bundle.messages.pop().expect("one")),
                _ => (self.topics.bundles().clone(), bundle.encode()),
            };
            let len = data.len();
            match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
                Ok(_) => {
                    debug!(messages = these.len(), bytes = len, "published");
                    for (hash, kind) in these {
                        self.seen.insert(hash);
                        self.count(kind, MessageResult::sent);
                    }
                }
                Err(PublishError::Duplicate) => errors.push(NetworkError::AlreadyPublished),
                Err(PublishError::NoPeersSubscribedToTopic) => errors.push(NetworkError::NoPeers(these[0].1)),
                Err(e) => errors.push(NetworkError::Publish(e.to_string())),
            }
        }
        errors
    }

    fn count(&self, kind: MessageKind, result: MessageResult) {
        if let Some(m) = &self.metrics {
            m.fixd.message(kind.topic_suffix(), result);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.metrics {
            use libp2p::metrics::Recorder;
            m.libp2p.record(&event);
            match &event {
                SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => m.libp2p.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => m.libp2p.record(e),
                SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => m.libp2p.record(e),
                _ => {}
            }
        }
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let acceptance = self.validate(propagation_source, &message);
                self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
            }
            SwarmEvent::Behaviour(BehaviourEvent::Catchup(event)) => self.on_catchup_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if self.members.contains(&peer_id) => {
                let addrs = info.listen_addrs.into_iter().take(MAX_ADDRESSES_PER_PEER).collect();
                self.learned.insert(peer_id, addrs);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(e) })) => {
                // libp2p leaves this to us: a member that stops answering pings is gone.
                debug!(%peer, error = %e, "ping failed; closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished { peer_id, num_established, endpoint, .. } => {
                debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "connected");
                if num_established.get() == 1 {
                    info!(peer = %peer_id, "member connected");
                    self.peers.send_replace(self.swarm.connected_peers().copied().collect());
                    let _ = self.events.try_send(NetworkEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, cause, .. } => {
                info!(peer = %peer_id, cause = ?cause.map(|c| c.to_string()), "member disconnected");
                self.peers.send_replace(self.swarm.connected_peers().copied().collect());
                let _ = self.events.try_send(NetworkEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, .. } => {
                // Non-members end here: the allow-list denies them once Noise names them.
                debug!(from = %send_back_addr, error = %error, "refused an inbound connection");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, error = %error, "dial failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            _ => {}
        }
    }

    /// The validation context of this node now, for messages on `topic` (`None`: catch-up).
    fn judge(
        &self,
        topic: Option<MessageKind>,
        judge: impl FnOnce(&ValidationContext<'_>) -> Verdict,
    ) -> Verdict {
        let seen = &self.seen;
        let Admission { known, wanted } = &self.admission;
        let is_seen = |h: &B256| seen.contains(h);
        let is_known = |id: &SettlementId| known(id);
        let wanted = |m: &GossipMessage| wanted(m);
        let ctx = ValidationContext {
            network_id: &self.network_id,
            committee: &self.committee,
            now: crate::clock::now(),
            max_message_bytes: self.max_message_bytes,
            max_clock_skew_secs: self.max_clock_skew_secs,
            topic,
            is_seen: &is_seen,
            is_known_settlement: &is_known,
            wanted: &wanted,
            far: &self.far,
        };
        judge(&ctx)
    }

    /// Where a message to accept stands past its decision's window, if it does.
    fn ahead(&self, message: &GossipMessage) -> Option<(FarKey, u32, u32)> {
        match (self.admission.wanted)(message) {
            Ok(Wanted::Ahead { decision, round, horizon }) => {
                Some((far_key(message, decision), round, horizon))
            }
            _ => None,
        }
    }

    /// Remembers an accepted message: as seen, and as a round past the window if it is one.
    fn took(&mut self, hash: B256, ahead: Option<(FarKey, u32, u32)>) {
        self.seen.insert(hash);
        if let Some((key, round, horizon)) = ahead {
            self.far.record(key, round, horizon);
        }
    }

    /// Runs [`verdict`] on a gossiped message, or on each message of a bundle, and delivers
    /// what is accepted.
    fn validate(&mut self, from: PeerId, message: &gossipsub::Message) -> MessageAcceptance {
        if self.topics.is_bundles(&message.topic) {
            return self.validate_bundle(from, &message.data);
        }
        let Some(kind) = self.topics.kind_of(&message.topic) else {
            return MessageAcceptance::Reject;
        };
        self.validate_one(from, Some(kind), &message.data)
    }

    /// One message, on its topic (`Some`) or in a bundle (`None`, any kind). Counted by the
    /// kind it carries, or claims to.
    fn validate_one(&mut self, from: PeerId, topic: Option<MessageKind>, data: &[u8]) -> MessageAcceptance {
        let claimed = topic.or_else(|| MessageKind::of_encoded(data));
        match self.judge(topic, |ctx| verdict(data, ctx)) {
            Verdict::Accept(message) => {
                let (hash, kind) = (message.hash(), message.kind());
                let ahead = self.ahead(&message);
                let lane = if goes_first(&message) { &self.events_first } else { &self.events };
                match lane.try_send(NetworkEvent::Message { from, message }) {
                    Ok(()) => {
                        self.took(hash, ahead);
                        self.count(kind, MessageResult::accepted);
                        MessageAcceptance::Accept
                    }
                    Err(e) => {
                        warn!(%hash, error = %e, "node is not taking messages; leaving this one to catch-up");
                        self.count(kind, MessageResult::ignored);
                        MessageAcceptance::Ignore
                    }
                }
            }
            Verdict::Reject(reason) => {
                warn!(peer = %from, %reason, "rejected a gossiped message; penalising the sender");
                if let Some(kind) = claimed {
                    self.count(kind, MessageResult::rejected);
                }
                MessageAcceptance::Reject
            }
            Verdict::Ignore(reason) => {
                debug!(peer = %from, %reason, "ignored a gossiped message");
                if let Some(kind) = claimed {
                    self.count(kind, MessageResult::ignored);
                }
                MessageAcceptance::Ignore
            }
        }
    }

    /// A bundle: each message judged as if it had come alone, and delivered if accepted. The
    /// bundle is rejected (its sender penalised) if it is not a bundle or any message in it is
    /// a provable fault; forwarded if any message in it was new and good; ignored otherwise.
    fn validate_bundle(&mut self, from: PeerId, data: &[u8]) -> MessageAcceptance {
        if data.len() > self.max_message_bytes {
            warn!(peer = %from, len = data.len(), max = self.max_message_bytes, "rejected an oversized bundle; penalising the sender");
            return MessageAcceptance::Reject;
        }
        let bundle = match GossipBundle::decode(data) {
            Ok(bundle) => bundle,
            Err(error) => {
                warn!(peer = %from, %error, "rejected a gossiped bundle; penalising the sender");
                return MessageAcceptance::Reject;
            }
        };
        debug!(peer = %from, messages = bundle.messages.len(), bytes = data.len(), "bundle received");
        let mut acceptance = MessageAcceptance::Ignore;
        for message in &bundle.messages {
            match self.validate_one(from, None, message) {
                MessageAcceptance::Reject => acceptance = MessageAcceptance::Reject,
                MessageAcceptance::Accept if acceptance == MessageAcceptance::Ignore => {
                    acceptance = MessageAcceptance::Accept;
                }
                _ => {}
            }
        }
        acceptance
    }

    fn on_catchup_event(&mut self, event: request_response::Event<CatchupRequest, CatchupResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    debug!(%peer, settlement = %request.settlement_id, "serving catch-up");
                    if crate::test_faults::withhold_catch_up() {
                        // Holds the channel open and never answers: the requester times out.
                        self.serving.spawn(async move {
                            let _held = channel;
                            std::future::pending().await
                        });
                        return;
                    }
                    let provider = self.provider.clone();
                    self.serving.spawn_blocking(move || {
                        (channel, provider.catch_up_for(&peer, &request.settlement_id))
                    });
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.pending_catchups.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some((_, reply)) = self.pending_catchups.remove(&request_id) {
                    let _ = reply.send(Err(NetworkError::CatchUp { peer, reason: error.to_string() }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "catch-up answer not delivered");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }
}
