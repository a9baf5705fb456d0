//! The composed libp2p behaviour, gossipsub settings and peer-score parameters.

use std::collections::HashMap;
use std::time::Duration;

use libp2p::allow_block_list::{self, AllowedPeers};
use libp2p::gossipsub::{self, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{connection_limits, identify, ping};

use super::catchup::{CATCHUP_PROTOCOL, CatchupCodec};
use super::messages::{Topics, message_id};

/// Gossipsub frames carry the payload plus the topic name and protobuf framing; this slack over
/// `max_message_bytes` covers them, so a payload of exactly the limit still fits a frame.
pub const FRAME_SLACK_BYTES: usize = 2048;

/// gossipsub's frame limit (`max_transmit_size`) is this many of our largest frames.
/// libp2p-gossipsub 0.50.1 checks the limit against its whole read buffer, not the frame it
/// decodes (`validate_rpc_limits`, from rust-libp2p#6491): a receiver whose buffer holds one
/// frame and the start of the next (a 64 KiB bundle and 8 KiB more: "message with 73728b
/// exceeds maximum of 67584b") drops the stream and every message queued on it, and so does one
/// that falls behind on a stream of small messages. Four frames of room keep that from
/// happening; the payload limit (`max_message_bytes`) is still enforced, by validation, on
/// every message and bundle, and a peer that exceeds it is penalised.
pub const READ_BUFFER_FRAMES: usize = 4;

/// How long a message this node publishes may wait to be sent to a peer.
pub const PUBLISH_QUEUE_DURATION: Duration = Duration::from_secs(30);
/// How long a message this node forwards may wait to be sent to a peer.
pub const FORWARD_QUEUE_DURATION: Duration = Duration::from_secs(10);

/// The fixd node's libp2p behaviour. The allow-list comes first, so a non-member is refused
/// before any other behaviour sees the connection.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub allow: allow_block_list::Behaviour<AllowedPeers>,
    pub limits: connection_limits::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub catchup: request_response::Behaviour<CatchupCodec>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
}

impl std::fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviour").finish_non_exhaustive()
    }
}

/// Settings the behaviour is built from.
#[derive(Clone, Debug)]
pub struct BehaviourSettings {
    pub max_message_bytes: usize,
    pub catchup_timeout: Duration,
    pub max_catchup_bytes: u64,
    /// identify's protocol version, `/fixd/<network id short hex>/1`.
    pub protocol_version: String,
    /// Pending and established connections, by direction, in total and per peer.
    pub connection_limits: connection_limits::ConnectionLimits,
}

impl Behaviour {
    pub fn new(key: &Keypair, topics: &Topics, settings: &BehaviourSettings) -> Result<Self, String> {
        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Anonymous)
            .validate_messages()
            .message_id_fn(|m| message_id(&m.data))
            .max_transmit_size(READ_BUFFER_FRAMES * (settings.max_message_bytes + FRAME_SLACK_BYTES))
            // Settlement messages arrive over minutes; remember ids for ten.
            .duplicate_cache_time(Duration::from_secs(600))
            // A message waits this long for a slow connection before gossipsub drops it (its
            // defaults, 5 s and 1 s, dropped whole bundles of an expiry burst while a peer was
            // busy checking the ones before; catch-up then had to fetch them one settlement at
            // a time). Receivers judge staleness themselves.
            .publish_queue_duration(PUBLISH_QUEUE_DURATION)
            .forward_queue_duration(FORWARD_QUEUE_DURATION)
            .build()
            .map_err(|e| format!("gossipsub config: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)?;
        gossipsub.with_peer_score(score_params(topics), score_thresholds())?;

        let catchup = request_response::Behaviour::with_codec(
            CatchupCodec { max_response_bytes: settings.max_catchup_bytes },
            [(CATCHUP_PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(settings.catchup_timeout),
        );
        let identify = identify::Behaviour::new(
            identify::Config::new(settings.protocol_version.clone(), key.public())
                .with_agent_version(format!("fixd/{}", env!("CARGO_PKG_VERSION"))),
        );
        let limits = connection_limits::Behaviour::new(settings.connection_limits.clone());
        Ok(Behaviour {
            allow: allow_block_list::Behaviour::default(),
            limits,
            gossipsub,
            catchup,
            identify,
            ping: ping::Behaviour::default(),
        })
    }
}

/// The score thresholds: gossipsub's defaults (gossip −10, publish −50, graylist −80).
pub fn score_thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds::default()
}

/// Peer-score parameters for a small permissioned committee with little traffic.
pub fn score_params(topics: &Topics) -> PeerScoreParams {
    let topic = TopicScoreParams {
        topic_weight: 1.0,
        // P1: a little credit for staying in the mesh, capped at +1.
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        // P2: credit for first deliveries, capped.
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.99,
        first_message_deliveries_cap: 20.0,
        // P3 and P3b off: a committee sends a handful of messages per settlement, so a delivery
        // rate says nothing about honesty.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        // P4: each provably invalid message. −15 × count²: one puts the sender below the gossip
        // threshold (−10), two below the publish threshold (−50), three below the graylist
        // threshold (−80). Half-life ≈ 10 min (0.9988^577 ≈ ½ with 1 s decay ticks).
        invalid_message_deliveries_weight: -15.0,
        invalid_message_deliveries_decay: 0.9988,
        ..TopicScoreParams::default()
    };
    // Slow peers are not penalised: gossipsub's default takes 0.2 per message a peer's
    // connection did not take in time, so an expiry burst, which keeps every member busy for
    // seconds, graylisted honest members (400 dropped messages reach −80) and then dropped
    // everything they sent unread. Being slow under load is not a fault of a member.
    PeerScoreParams {
        topics: topics.iter().map(|t| (t.hash(), topic.clone())).collect::<HashMap<_, _>>(),
        topic_score_cap: 50.0,
        // Members may share a host (devnet); the allow-list already excludes Sybils.
        ip_colocation_factor_weight: 0.0,
        slow_peer_weight: 0.0,
        ..PeerScoreParams::default()
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::B256;

    use super::*;

    #[test]
    fn the_behaviour_builds_with_valid_score_parameters() {
        let topics = Topics::new(&B256::ZERO);
        score_params(&topics).validate().unwrap();
        score_thresholds().validate().unwrap();
        let settings = BehaviourSettings {
            max_message_bytes: 65_536,
            catchup_timeout: Duration::from_secs(1),
            max_catchup_bytes: 1 << 20,
            protocol_version: "/fixd/test/1".into(),
            connection_limits: Default::default(),
        };
        Behaviour::new(&Keypair::generate_ed25519(), &topics, &settings).unwrap();
    }
}
