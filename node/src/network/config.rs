//! The `[p2p]` section of the node config, and the resolved [`NetworkConfig`] the service runs on.

use std::time::Duration;

use alloy_primitives::B256;
use fixd_proto::types::genesis::{Committee, Genesis};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use super::{NetworkError, keypair, peer_id_of};
use crate::keys::Keys;

/// `[p2p]`: how this node joins the committee's network. Everything else (who the members are,
/// where they listen, message size and clock skew) comes from the genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    /// Multiaddresses to listen on, e.g. `["/ip4/0.0.0.0/tcp/9000"]`. Empty (the default)
    /// listens on this member's `listen` addresses in the genesis.
    pub listen: Vec<String>,
    /// How often to redial members this node is not connected to. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub dial_interval: Duration,
    /// How long a catch-up request may take, dial included. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub catchup_timeout: Duration,
    /// Largest catch-up response accepted or sent, bytes. Default 4194304 (4 MiB).
    pub max_catchup_bytes: u64,
    /// Accepted messages buffered for the node before new ones are ignored (and left to
    /// catch-up), in each of its two lanes (observations and proposals first, the rest after:
    /// [`super::NetworkEvents`]). Default 65536: an expiry burst brings about 30 messages per settlement within
    /// seconds, and a message left to catch-up costs far more than one buffered (a catch-up
    /// answers with all of a settlement's messages, and a settlement that lost its proposal or
    /// votes waits a whole round for it). With the genesis rounds of 60 s, a burst of 10,000 on
    /// four members was all certified 2.8 minutes after the maturity with 65,536 and no message
    /// dropped; with 16,384 the nodes dropped 59,180 and 2,463 settlements were still only
    /// observed at 8 minutes. (With the tests' 8 s rounds the longer queue outlasts the rounds
    /// at 10,000 and they escalate; see BENCHMARKS.md.)
    pub event_buffer: usize,
    /// Connections this node takes at most, counted by libp2p before any other protocol runs.
    /// Past a limit a new connection is refused (and logged at debug); raise them for a
    /// committee of more than 30 members.
    pub connection_limits: ConnectionLimitsConfig,
}

/// `[p2p.connection_limits]`: pending connections (the handshake is not done, so the peer is
/// unknown) and established ones, by direction, in total and per peer. Only members get past
/// the handshake; these bound what strangers can hold open before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimitsConfig {
    /// Inbound connections in their handshake at once. Default 32.
    pub max_pending_incoming: u32,
    /// Outbound dials in their handshake at once. Default 64.
    pub max_pending_outgoing: u32,
    /// Established inbound connections. Default 64.
    pub max_established_incoming: u32,
    /// Established outbound connections. Default 64.
    pub max_established_outgoing: u32,
    /// Established connections in both directions together. Default 96.
    pub max_established: u32,
    /// Established connections to one peer (two when both sides dial at once). Default 2.
    pub max_established_per_peer: u32,
}

impl Default for ConnectionLimitsConfig {
    fn default() -> Self {
        ConnectionLimitsConfig {
            max_pending_incoming: 32,
            max_pending_outgoing: 64,
            max_established_incoming: 64,
            max_established_outgoing: 64,
            max_established: 96,
            max_established_per_peer: 2,
        }
    }
}

impl ConnectionLimitsConfig {
    /// libp2p's limits with these numbers.
    pub fn limits(&self) -> libp2p::connection_limits::ConnectionLimits {
        libp2p::connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(self.max_pending_incoming))
            .with_max_pending_outgoing(Some(self.max_pending_outgoing))
            .with_max_established_incoming(Some(self.max_established_incoming))
            .with_max_established_outgoing(Some(self.max_established_outgoing))
            .with_max_established(Some(self.max_established))
            .with_max_established_per_peer(Some(self.max_established_per_peer))
    }
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: Vec::new(),
            dial_interval: Duration::from_secs(5),
            catchup_timeout: Duration::from_secs(10),
            max_catchup_bytes: fixd_proto::encoding::MAX_DECODE_BYTES as u64,
            event_buffer: 65_536,
            connection_limits: ConnectionLimitsConfig::default(),
        }
    }
}

/// Everything the network service runs on, resolved from keys, genesis and `[p2p]`.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// This member's libp2p identity ([`super::keypair`] of its ed25519 key).
    pub keypair: Keypair,
    pub listen: Vec<Multiaddr>,
    /// The other members and where to dial them. Members without addresses are still allowed
    /// to connect; they are just not dialed.
    pub peers: Vec<(PeerId, Vec<Multiaddr>)>,
    pub network_id: B256,
    /// Only its members may connect, and only they may sign accepted messages.
    pub committee: Committee,
    /// Genesis `params.max_message_bytes`.
    pub max_message_bytes: usize,
    /// Genesis `params.max_clock_skew_secs`.
    pub max_clock_skew_secs: u64,
    pub dial_interval: Duration,
    pub catchup_timeout: Duration,
    pub max_catchup_bytes: u64,
    pub event_buffer: usize,
    /// `p2p.connection_limits`.
    pub connection_limits: ConnectionLimitsConfig,
    /// Where the swarm task counts messages and records libp2p's own metrics; `None`: nowhere.
    pub metrics: Option<NetworkMetrics>,
}

/// The metrics the swarm task records.
#[derive(Clone)]
pub struct NetworkMetrics {
    pub fixd: crate::metrics::Metrics,
    pub libp2p: std::sync::Arc<libp2p::metrics::Metrics>,
}

impl std::fmt::Debug for NetworkMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetworkMetrics")
    }
}

impl NetworkConfig {
    /// A config with `[p2p]` defaults and no listen addresses or peers.
    pub fn new(keypair: Keypair, network_id: B256, committee: Committee) -> Self {
        let p2p = P2pConfig::default();
        let params = fixd_proto::types::genesis::ProtocolParams::default();
        NetworkConfig {
            keypair,
            listen: Vec::new(),
            peers: Vec::new(),
            network_id,
            committee,
            max_message_bytes: params.max_message_bytes as usize,
            max_clock_skew_secs: params.max_clock_skew_secs,
            dial_interval: p2p.dial_interval,
            catchup_timeout: p2p.catchup_timeout,
            max_catchup_bytes: p2p.max_catchup_bytes,
            event_buffer: p2p.event_buffer,
            connection_limits: p2p.connection_limits,
            metrics: None,
        }
    }

    /// Resolves the config of member `keys` in `genesis`: listen on `p2p.listen` (or the
    /// member's genesis addresses), dial every other member at its genesis addresses.
    pub fn from_genesis(keys: &Keys, genesis: &Genesis, p2p: &P2pConfig) -> Result<Self, NetworkError> {
        let me = keys.public_key();
        let member = genesis.members.iter().find(|m| m.ed25519 == me).ok_or(NetworkError::NotAMember(me))?;
        let listen = if p2p.listen.is_empty() { &member.listen } else { &p2p.listen };
        let mut peers = Vec::new();
        for other in genesis.members.iter().filter(|m| m.ed25519 != me) {
            peers.push((peer_id_of(&other.ed25519)?, parse_addrs(&other.listen)?));
        }
        Ok(NetworkConfig {
            keypair: keypair(&keys.ed25519),
            listen: parse_addrs(listen)?,
            peers,
            network_id: genesis.network_id(),
            committee: genesis.committee(),
            max_message_bytes: genesis.params.max_message_bytes as usize,
            max_clock_skew_secs: genesis.params.max_clock_skew_secs,
            dial_interval: p2p.dial_interval,
            catchup_timeout: p2p.catchup_timeout,
            max_catchup_bytes: p2p.max_catchup_bytes,
            event_buffer: p2p.event_buffer.max(1),
            connection_limits: p2p.connection_limits,
            metrics: None,
        })
    }
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<Multiaddr>, NetworkError> {
    addrs
        .iter()
        .map(|a| {
            a.parse().map_err(|e: libp2p::multiaddr::Error| NetworkError::BadAddress {
                addr: a.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;

    use super::*;

    #[test]
    fn p2p_section_parses_with_readable_durations_and_refuses_unknown_fields() {
        let p2p: P2pConfig =
            toml::from_str("listen = [\"/ip4/127.0.0.1/tcp/9000\"]\ndial_interval = \"2s\"\n").unwrap();
        assert_eq!(p2p.dial_interval, Duration::from_secs(2));
        assert_eq!(p2p.catchup_timeout, P2pConfig::default().catchup_timeout);
        assert!(toml::from_str::<P2pConfig>("dial_every = \"2s\"").is_err());
        let p2p: P2pConfig = toml::from_str("[connection_limits]\nmax_pending_incoming = 4\n").unwrap();
        assert_eq!(p2p.connection_limits.max_pending_incoming, 4);
        assert_eq!(p2p.connection_limits.max_established_per_peer, 2);
        assert!(toml::from_str::<P2pConfig>("[connection_limits]\nmax_pending = 4\n").is_err());
    }

    #[test]
    fn from_genesis_dials_the_other_members_and_names_bad_addresses() {
        let keys: Vec<Keys> = (0..3).map(|_| Keys::generate().unwrap()).collect();
        let mut genesis = Genesis {
            network: "t".into(),
            chain_id: 1,
            contract: Address::ZERO,
            contract_block: 0,
            arbitrator: Address::ZERO,
            members: keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    k.member(&format!("node-{i}"), vec![format!("/ip4/127.0.0.1/tcp/{}", 9000 + i)])
                })
                .collect(),
            params: Default::default(),
        };
        let config = NetworkConfig::from_genesis(&keys[1], &genesis, &P2pConfig::default()).unwrap();
        assert_eq!(config.listen, vec!["/ip4/127.0.0.1/tcp/9001".parse::<Multiaddr>().unwrap()]);
        assert_eq!(config.peers.len(), 2);
        assert_eq!(config.peers[0].0, peer_id_of(&keys[0].public_key()).unwrap());
        assert_eq!(config.keypair.public().to_peer_id(), peer_id_of(&keys[1].public_key()).unwrap());

        genesis.members[2].listen = vec!["127.0.0.1:9002".into()];
        let err = NetworkConfig::from_genesis(&keys[1], &genesis, &P2pConfig::default()).unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:9002"), "{err}");
        let outsider = Keys::generate().unwrap();
        let err = NetworkConfig::from_genesis(&outsider, &genesis, &P2pConfig::default()).unwrap_err();
        assert!(matches!(err, NetworkError::NotAMember(_)), "{err}");
    }
}
