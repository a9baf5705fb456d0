//! The libp2p network service of a fixd node: gossip of signed observations, proposals and
//! votes among the committee, and catch-up of what a node missed.
//!
//! ```text
//!  node tasks ─ NetworkHandle (Clone) ─ Command + oneshot ─▶ ┌──────── swarm task ─────────┐
//!                                                            │ Swarm<Behaviour>            │
//!                                                            │  allow-list (committee)     │
//!  node ◀─ mpsc<NetworkEvent> ◀─ Accept ◀─ verdict() ◀───────│  gossipsub (validate first) │
//!                                       CatchupProvider ◀────│  request-response catch-up  │
//!                                       (blocking thread)    │  identify, ping, limits     │
//!                                                            └ redial timer, cancel token ─┘
//! ```
//!
//! One task owns the [`libp2p::Swarm`] ([`service`]); everything else talks to it through a
//! cloneable [`NetworkHandle`] that sends commands over a bounded channel and awaits oneshot
//! replies (the shape of Lighthouse's network service and of rust-libp2p's file-sharing example).
//!
//! ## Decisions
//! - **Identity.** A member's ed25519 signing key is its libp2p identity ([`keypair`]), so the
//!   PeerId of every committee member follows from the genesis ([`peer_id_of`]).
//! - **Static dialing, no Kademlia.** The committee is permissioned, of known size, and its
//!   listen addresses are in the genesis. Each node dials every other member and redials those
//!   it is not connected to every [`P2pConfig::dial_interval`], so a restarted node rejoins, and
//!   learns members' current addresses from identify. Connections stay open while idle; a
//!   member that stops answering pings is disconnected and redialed. A DHT would find nothing
//!   the genesis does not list, and would open the node to routing-table poisoning and eclipse
//!   attempts.
//! - **Members only.** An allow-list of the committee's PeerIds refuses every other connection
//!   as soon as the Noise handshake names the remote, inbound and outbound. A non-member
//!   therefore never reaches gossipsub: its messages are never delivered, forwarded or even
//!   read. This is stronger than scoring it down, and costs the committee nothing: any message a
//!   non-member could carry, a member carries too. Peer scoring still guards against a faulty
//!   *member*.
//! - **Gossip.** A topic per kind of message, `fixd/<network id, first 8 bytes hex>/<kind>`
//!   (`observations`, `proposals`, `votes`, …), and one for bundles.
//!   Each payload is signed by its author ([`fixd_proto::signing::Signed`]), so gossipsub runs
//!   `ValidationMode::Anonymous` (no source, sequence number or gossip signature) and the message
//!   id is `keccak256(data)`: the same message is one message however many members publish it.
//!   Every message waits for [`validation::verdict`] before it is delivered or forwarded. The
//!   payload limit is genesis `params.max_message_bytes`, checked on publish and on receipt;
//!   gossipsub's frame limit (`max_transmit_size`) is four times that plus a fixed slack for the
//!   topic and protobuf framing, the same on every node (gossipsub checks it against its read
//!   buffer, not the frame: see [`behaviour::READ_BUFFER_FRAMES`]).
//! - **Bundles.** What the node signed together (a burst's observations, a tick's votes) goes
//!   out as [`fixd_proto::gossip::GossipBundle`]s on a topic of their own,
//!   `fixd/<network id>/bundles`: as many messages as fit `max_message_bytes`, each checked on
//!   receipt exactly as if it had come alone (on any kind's topic) and delivered on its own. A
//!   bundle that is malformed, oversized or holds a provable fault is rejected; one with
//!   nothing new is ignored. A message alone still goes on its kind's topic.
//! - **Reject vs Ignore.** Only provable faults are rejected (see [`validation`]): oversized,
//!   malformed, wrong topic, non-member signer, bad signature. Messages from the future (beyond
//!   `max_clock_skew`), duplicates, and messages on settlements this node does not know are
//!   ignored: dropped without a penalty, since the fault may be ours.
//! - **Peer scoring.** P₄ (invalid deliveries) carries the weight: −15 × count² per topic,
//!   decaying with a half-life of about 10 minutes. One provable fault puts a member below the
//!   gossip threshold (−10: no more IHAVE/IWANT with it), two below the publish threshold (−50:
//!   we stop sending to it), three below the graylist threshold (−80: everything it sends is
//!   dropped unread). P₁ (time in mesh) and P₂ (first deliveries) give small capped credit. P₃
//!   (mesh delivery rate) is off: a committee sends a handful of messages per settlement, and a
//!   rate penalty would punish honest quiet members. IP colocation is off: members may share a
//!   host (devnet), and Sybils are excluded by the allow-list anyway.
//! - **Back-pressure.** Accepted messages go to the node through two bounded channels, the lanes
//!   of [`NetworkEvents`]: observations and proposals in the first, which the node drains
//!   first, everything else in the second. When a lane is full the message is *ignored* (not
//!   forwarded, not marked seen) rather than blocking the swarm; catch-up recovers it.
//! - **Catch-up** ([`catchup`]): `/fixd/catchup/1`, BCS with size limits. The responder calls
//!   the node's [`CatchupProvider`] on a blocking thread. The requester gets the messages
//!   unverified and runs each through [`NetworkHandle::check`] (this node's context and
//!   seen-set) or [`validation::verdict_on`] (a context of its own).

pub mod behaviour;
pub mod catchup;
pub mod config;
pub mod handle;
pub mod messages;
pub mod service;
pub mod validation;

#[cfg(test)]
mod tests;

use ed25519_dalek::SigningKey;
use fixd_proto::signing::PublicKey;
use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};

pub use catchup::{CatchupProvider, CatchupRequest, CatchupResponse, NoCatchup};
pub use config::{ConnectionLimitsConfig, NetworkConfig, NetworkMetrics, P2pConfig};
pub use handle::{NetworkEvent, NetworkEvents, NetworkHandle};
pub use messages::{GossipMessage, MessageKind, Topics};
pub use service::{Admission, KnownSettlements, NetworkService, SwarmTask, WantedMessages};
pub use validation::{IgnoreReason, RejectReason, ValidationContext, Verdict, verdict, verdict_on};

/// Why the network cannot start or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("{addr:?} is not a valid libp2p multiaddress ({reason}); write e.g. /ip4/0.0.0.0/tcp/9000")]
    BadAddress { addr: String, reason: String },
    #[error("ed25519 key {key} is not a valid libp2p identity: {reason}")]
    BadKey { key: PublicKey, reason: String },
    #[error("this node's key {0} is not a committee member in the genesis; check keys_dir and genesis")]
    NotAMember(PublicKey),
    #[error("cannot listen on {addr}: {reason}; choose another address or port under [p2p] listen")]
    Listen { addr: Multiaddr, reason: String },
    #[error("cannot build the libp2p transport: {0}")]
    Transport(String),
    #[error("the network service has stopped")]
    Stopped,
    #[error("message of {len} bytes exceeds the genesis limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("this message was already published (benign: the committee has it)")]
    AlreadyPublished,
    #[error("no connected member subscribes to the {0:?} topic yet; it will be sent by catch-up")]
    NoPeers(MessageKind),
    #[error("gossip publish failed: {0}")]
    Publish(String),
    #[error("{0} is not a committee member")]
    UnknownPeer(PeerId),
    #[error("catch-up from {peer} failed: {reason}")]
    CatchUp { peer: PeerId, reason: String },
}

/// The libp2p identity of a member: its ed25519 signing key.
pub fn keypair(key: &SigningKey) -> Keypair {
    Keypair::ed25519_from_bytes(key.to_bytes()).expect("32 bytes are always an ed25519 secret key")
}

/// The PeerId of a committee member's ed25519 public key.
pub fn peer_id_of(key: &PublicKey) -> Result<PeerId, NetworkError> {
    let public = libp2p::identity::ed25519::PublicKey::try_from_bytes(key.0.as_slice())
        .map_err(|e| NetworkError::BadKey { key: *key, reason: e.to_string() })?;
    Ok(libp2p::identity::PublicKey::from(public).to_peer_id())
}
