//! [`NetworkHandle`]: the cloneable front of the swarm task, and the [`NetworkEvent`]s it emits.

use fixd_proto::types::settlement::SettlementId;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::NetworkError;
use super::catchup::CatchupResponse;
use super::messages::{GossipMessage, MessageKind};
use super::validation::Verdict;

/// What the network tells the node. Messages are delivered or left to catch-up (see the module
/// docs on back-pressure); connection events are best effort, dropped when the channel is full.
// Messages dominate this channel, so boxing them would only add an allocation to the common case.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkEvent {
    /// A gossiped message passed validation. `from` is the member that forwarded it, not
    /// necessarily its author ([`GossipMessage::signer`]).
    Message { from: PeerId, message: GossipMessage },
    /// The first connection to a member opened.
    PeerConnected(PeerId),
    /// The last connection to a member closed.
    PeerDisconnected(PeerId),
}

/// Where the node takes the network's events from: two lanes, the first drained first.
///
/// Observations and proposals go in the first lane, everything else in the second. Under a
/// burst the second fills with votes; a proposal that waited behind them past its round's
/// propose timeout made its round fail at that member (a burst of 10,000 on four members:
/// 323 to 2,239 settlements decided in round 1, a member prevoting nil for up to 1,307 of them
/// while the proposals, all signed within 26 s of the maturity, sat in its queue). What a
/// round needs first, its inputs and its proposal, now comes first. Votes still arrive in
/// order among themselves, and the decision machines hold a vote for a proposal not yet seen.
#[derive(Debug)]
pub struct NetworkEvents {
    pub(super) first: mpsc::Receiver<NetworkEvent>,
    pub(super) rest: mpsc::Receiver<NetworkEvent>,
}

impl NetworkEvents {
    /// The next event, from the first lane if it holds one; `None` once both are closed.
    /// Cancel-safe, like [`mpsc::Receiver::recv`].
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        tokio::select! {
            biased;
            Some(event) = self.first.recv() => Some(event),
            Some(event) = self.rest.recv() => Some(event),
            else => None,
        }
    }
}

/// Whether a message goes in the first lane of [`NetworkEvents`].
pub(super) fn goes_first(message: &GossipMessage) -> bool {
    matches!(message, GossipMessage::Observation(_) | GossipMessage::Proposal(_))
}

/// A request to the swarm task, with the oneshot its answer goes back on.
pub(super) enum Command {
    Check {
        message: GossipMessage,
        reply: oneshot::Sender<Verdict>,
    },
    Publish {
        message: GossipMessage,
        reply: oneshot::Sender<Result<(), NetworkError>>,
    },
    PublishAll {
        messages: Vec<GossipMessage>,
        reply: oneshot::Sender<Vec<NetworkError>>,
    },
    CatchUp {
        peer: PeerId,
        settlement_id: SettlementId,
        reply: oneshot::Sender<Result<CatchupResponse, NetworkError>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    TopicPeers {
        kind: MessageKind,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    PeerScore {
        peer: PeerId,
        reply: oneshot::Sender<Option<f64>>,
    },
}

/// A cloneable handle to the swarm task.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    shutdown: CancellationToken,
    local_peer_id: PeerId,
    /// The members with an open connection, as the swarm task last set them: read without a
    /// round trip to that task (`/v1/status` asks on every request).
    peers: watch::Receiver<Vec<PeerId>>,
}

impl NetworkHandle {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        shutdown: CancellationToken,
        local_peer_id: PeerId,
        peers: watch::Receiver<Vec<PeerId>>,
    ) -> Self {
        NetworkHandle { commands, shutdown, local_peer_id, peers }
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetworkError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(command(reply)).await.map_err(|_| NetworkError::Stopped)?;
        answer.await.map_err(|_| NetworkError::Stopped)
    }

    /// Gossips a message this node signed. [`NetworkError::AlreadyPublished`] is benign.
    pub async fn publish(&self, message: GossipMessage) -> Result<(), NetworkError> {
        self.ask(|reply| Command::Publish { message, reply }).await?
    }

    /// Gossips messages this node signed together, as few bundles as fit the size limit (a
    /// message alone goes on its own topic). The errors, if any; [`NetworkError::AlreadyPublished`]
    /// is benign.
    pub async fn publish_all(&self, messages: Vec<GossipMessage>) -> Vec<NetworkError> {
        self.ask(|reply| Command::PublishAll { messages, reply }).await.unwrap_or_else(|e| vec![e])
    }

    /// Asks a member for what it holds on a settlement. The messages are unverified: run each
    /// through [`super::validation::verdict_on`] before use.
    pub async fn catch_up(
        &self,
        peer: PeerId,
        settlement_id: SettlementId,
    ) -> Result<CatchupResponse, NetworkError> {
        self.ask(|reply| Command::CatchUp { peer, settlement_id, reply }).await?
    }

    /// Validates a message that did not come by gossip (from catch-up) exactly as a gossiped
    /// one, against this node's clock, committee, known settlements and seen-set; an accepted
    /// message is recorded as seen, so the same message arriving later by gossip is ignored.
    pub async fn check(&self, message: GossipMessage) -> Result<Verdict, NetworkError> {
        self.ask(|reply| Command::Check { message, reply }).await
    }

    /// Members with at least one open connection.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.peers.borrow().clone()
    }

    /// The addresses this node listens on (port 0 resolved), once the listeners are up.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Connected members subscribed to the topic of `kind`.
    pub async fn topic_peers(&self, kind: MessageKind) -> Result<Vec<PeerId>, NetworkError> {
        self.ask(|reply| Command::TopicPeers { kind, reply }).await
    }

    /// A member's gossipsub score as this node sees it (`None` if unknown).
    pub async fn peer_score(&self, peer: PeerId) -> Result<Option<f64>, NetworkError> {
        self.ask(|reply| Command::PeerScore { peer, reply }).await
    }

    /// Stops the swarm task (and only it); await its `JoinHandle` to know it has closed.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}
