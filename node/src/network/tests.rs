//! Network tests on loopback: real swarms, real TCP, a four-member committee.

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::B256;
use ed25519_dalek::SigningKey;
use fixd_proto::signing::Signed;
use fixd_proto::types::certificate::{DecisionId, Vote, VoteStep};
use fixd_proto::types::genesis::Committee;
use fixd_proto::types::settlement::SettlementId;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

use super::validation::tests::{NET, SETTLEMENT, committee, key, observation};
use super::*;

const STEP: Duration = Duration::from_millis(50);
/// Longest wait for anything that should happen.
const PATIENCE: Duration = Duration::from_secs(8);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(1500);

struct TestNode {
    handle: NetworkHandle,
    events: crate::network::NetworkEvents,
    task: JoinHandle<()>,
    peer_id: PeerId,
    addr: Multiaddr,
}

struct Fixed(CatchupResponse);

impl CatchupProvider for Fixed {
    fn catch_up(&self, id: &SettlementId) -> CatchupResponse {
        if *id == SETTLEMENT { self.0.clone() } else { CatchupResponse::default() }
    }
}

async fn start(
    signer: &SigningKey,
    committee: &Committee,
    peers: &[&TestNode],
    provider: Arc<dyn CatchupProvider>,
) -> TestNode {
    start_on("/ip4/127.0.0.1/tcp/0", signer, committee, peers, provider).await
}

async fn start_on(
    listen: &str,
    signer: &SigningKey,
    committee: &Committee,
    peers: &[&TestNode],
    provider: Arc<dyn CatchupProvider>,
) -> TestNode {
    start_limited(listen, signer, committee, peers, provider, ConnectionLimitsConfig::default()).await
}

async fn start_limited(
    listen: &str,
    signer: &SigningKey,
    committee: &Committee,
    peers: &[&TestNode],
    provider: Arc<dyn CatchupProvider>,
    limits: ConnectionLimitsConfig,
) -> TestNode {
    let mut config = NetworkConfig::new(keypair(signer), NET, committee.clone());
    config.connection_limits = limits;
    config.listen = vec![listen.parse().unwrap()];
    config.peers = peers.iter().map(|p| (p.peer_id, vec![p.addr.clone()])).collect();
    config.dial_interval = Duration::from_millis(500);
    config.catchup_timeout = Duration::from_secs(5);
    let known: KnownSettlements = Arc::new(|id: &SettlementId| *id == SETTLEMENT);
    let (handle, events, swarm) =
        NetworkService::start(config, provider, Admission::settlements(known), CancellationToken::new())
            .unwrap();
    let task = tokio::spawn(swarm.run());
    let addr =
        eventually("listen address", || async { handle.listen_addrs().await.unwrap().first().cloned() })
            .await;
    TestNode { peer_id: handle.local_peer_id(), handle, events, task, addr }
}

/// Polls `probe` until it returns `Some`, or panics after [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(STEP).await;
    }
}

/// Waits until every node sees every other as subscribed to every topic.
async fn meshed(nodes: &[&TestNode]) {
    for node in nodes {
        for kind in MessageKind::ALL {
            eventually("topic subscriptions", || async {
                let peers = node.handle.topic_peers(kind).await.unwrap();
                nodes
                    .iter()
                    .filter(|o| o.peer_id != node.peer_id)
                    .all(|o| peers.contains(&o.peer_id))
                    .then_some(())
            })
            .await;
        }
    }
}

/// The next delivered message within `wait`, skipping connection events.
async fn next_message(node: &mut TestNode, wait: Duration) -> Option<(PeerId, GossipMessage)> {
    let deadline = Instant::now() + wait;
    loop {
        match timeout(deadline.saturating_duration_since(Instant::now()), node.events.recv()).await {
            Ok(Some(NetworkEvent::Message { from, message })) => return Some((from, message)),
            Ok(Some(_)) => continue,
            Ok(None) | Err(_) => return None,
        }
    }
}

async fn three_members() -> (Committee, TestNode, TestNode, TestNode) {
    let committee = committee(4);
    let none: Arc<dyn CatchupProvider> = Arc::new(NoCatchup);
    let a = start(&key(0), &committee, &[], none.clone()).await;
    let b = start(&key(1), &committee, &[&a], none.clone()).await;
    let c = start(&key(2), &committee, &[&a, &b], none).await;
    meshed(&[&a, &b, &c]).await;
    (committee, a, b, c)
}

fn now_observation(signer: &SigningKey) -> GossipMessage {
    observation(signer, crate::clock::now())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_published_observation_reaches_every_member() {
    let (_, a, mut b, mut c) = three_members().await;
    let msg = now_observation(&key(0));
    a.handle.publish(msg.clone()).await.unwrap();
    for node in [&mut b, &mut c] {
        let (_, got) = next_message(node, PATIENCE).await.expect("delivered");
        assert_eq!(got, msg);
    }
    // A vote travels on its own topic just as well.
    let vote = prevote();
    let vote = GossipMessage::Vote(Signed::sign(&key(2), &NET, vote));
    c.handle.publish(vote.clone()).await.unwrap();
    assert_eq!(next_message(&mut b, PATIENCE).await.map(|(_, m)| m), Some(vote));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_signature_is_rejected_and_its_sender_penalised() {
    let (_, mut a, b, mut c) = three_members().await;
    let GossipMessage::Observation(mut forged) = now_observation(&key(1)) else { unreachable!() };
    forged.payload.trade_digest = B256::repeat_byte(0xee);
    b.handle.publish(GossipMessage::Observation(forged)).await.unwrap();
    assert_eq!(next_message(&mut a, QUIET).await, None, "a forged message was delivered");
    assert_eq!(next_message(&mut c, Duration::ZERO).await, None);
    let score = eventually("B's score to drop", || async {
        a.handle.peer_score(b.peer_id).await.unwrap().filter(|s| *s < 0.0)
    })
    .await;
    assert!(score < -10.0, "one invalid message puts the sender below the gossip threshold: {score}");

    // A non-member's signature relayed by a member is as bad.
    b.handle.publish(now_observation(&key(9))).await.unwrap();
    assert_eq!(next_message(&mut c, QUIET).await, None, "a non-member's message was delivered");
    eventually("B's score to fall further", || async {
        c.handle.peer_score(b.peer_id).await.unwrap().filter(|s| *s < -50.0)
    })
    .await;

    // A penalised (not yet graylisted) member's valid messages still get through.
    let honest = now_observation(&key(1));
    b.handle.publish(honest.clone()).await.unwrap();
    assert_eq!(next_message(&mut a, PATIENCE).await.map(|(_, m)| m), Some(honest));
}

/// Strangers that open TCP connections and never finish the handshake hold at most
/// `max_pending_incoming` slots: while they do, a member cannot connect; once they go, it can.
/// Past `max_established_incoming`, a second member is refused too.
#[tokio::test(flavor = "multi_thread")]
async fn connection_limits_bound_pending_and_established_connections() {
    let committee = committee(4);
    let none: Arc<dyn CatchupProvider> = Arc::new(NoCatchup);
    let limits = ConnectionLimitsConfig {
        max_pending_incoming: 2,
        max_established_incoming: 1,
        ..ConnectionLimitsConfig::default()
    };
    let a = start_limited("/ip4/127.0.0.1/tcp/0", &key(0), &committee, &[], none.clone(), limits).await;
    let port = a
        .addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap();
    // Two silent strangers fill the pending slots.
    let silent: Vec<std::net::TcpStream> =
        (0..2).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = start(&key(1), &committee, &[&a], none.clone()).await;
    let deadline = Instant::now() + QUIET;
    while Instant::now() < deadline {
        assert!(!a.handle.connected_peers().contains(&b.peer_id), "B got past the pending limit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(silent);
    eventually("B connects once the strangers left", || async {
        a.handle.connected_peers().contains(&b.peer_id).then_some(())
    })
    .await;
    // A takes one inbound member; a second one is refused.
    let c = start(&key(2), &committee, &[&a], none).await;
    let deadline = Instant::now() + QUIET;
    while Instant::now() < deadline {
        assert!(!a.handle.connected_peers().contains(&c.peer_id), "C got past the established limit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(a.handle.connected_peers(), vec![b.peer_id]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_member_cannot_connect_or_deliver() {
    let committee = committee(4);
    let none: Arc<dyn CatchupProvider> = Arc::new(NoCatchup);
    let mut a = start(&key(0), &committee, &[], none.clone()).await;
    let b = start(&key(1), &committee, &[&a], none.clone()).await;
    meshed(&[&a, &b]).await;
    // The rogue knows the genesis and A's address, but its key is not in the committee.
    let rogue = start(&key(9), &committee, &[&a], none).await;
    let deadline = Instant::now() + QUIET;
    while Instant::now() < deadline {
        let published = rogue.handle.publish(now_observation(&key(9))).await;
        assert!(matches!(published, Err(NetworkError::NoPeers(_))), "{published:?}");
        assert!(!a.handle.connected_peers().contains(&rogue.peer_id));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(rogue.handle.connected_peers().is_empty());
    assert_eq!(next_message(&mut a, Duration::ZERO).await, None);
    assert_eq!(a.handle.catch_up(rogue.peer_id, SETTLEMENT).await.unwrap_err().to_string(), {
        NetworkError::UnknownPeer(rogue.peer_id).to_string()
    });
    // Members are unaffected.
    let msg = now_observation(&key(1));
    b.handle.publish(msg.clone()).await.unwrap();
    assert_eq!(next_message(&mut a, PATIENCE).await.map(|(_, m)| m), Some(msg));
}

#[tokio::test(flavor = "multi_thread")]
async fn catch_up_returns_the_providers_messages_which_then_validate() {
    let committee = committee(4);
    let GossipMessage::Observation(obs) = now_observation(&key(1)) else { unreachable!() };
    let vote = prevote();
    let held = CatchupResponse {
        observations: vec![obs],
        proposals: vec![],
        votes: vec![Signed::sign(&key(2), &NET, vote)],
        report_signatures: vec![],
        ..Default::default()
    };
    let a = start(&key(0), &committee, &[], Arc::new(Fixed(held.clone()))).await;
    // B knows A's address but need not be connected yet: catch-up dials.
    let b = start(&key(1), &committee, &[&a], Arc::new(NoCatchup)).await;
    let got = timeout(PATIENCE, b.handle.catch_up(a.peer_id, SETTLEMENT)).await.unwrap().unwrap();
    assert_eq!(got, held);
    let empty = b.handle.catch_up(a.peer_id, B256::repeat_byte(0x55)).await.unwrap();
    assert!(empty.is_empty());

    let seen = |_: &B256| false;
    let known = |id: &B256| *id == SETTLEMENT;
    let wanted = |_: &GossipMessage| Ok(fixd_decision::driver::Wanted::Now);
    let far = super::validation::FarRounds::new(16);
    let ctx = ValidationContext {
        network_id: &NET,
        committee: &committee,
        now: crate::clock::now(),
        max_message_bytes: 65_536,
        max_clock_skew_secs: 5,
        topic: None,
        is_seen: &seen,
        is_known_settlement: &known,
        wanted: &wanted,
        far: &far,
    };
    for message in got.clone().into_messages() {
        assert!(matches!(verdict_on(message, &ctx), Verdict::Accept(_)));
    }
    // Through the service: accepted once, then a duplicate for the seen-set.
    for message in got.into_messages() {
        assert_eq!(b.handle.check(message.clone()).await.unwrap(), Verdict::Accept(message.clone()));
        assert!(matches!(
            b.handle.check(message).await.unwrap(),
            Verdict::Ignore(IgnoreReason::Duplicate(_))
        ));
    }
    let outsider = now_observation(&key(9));
    assert!(matches!(b.handle.check(outsider).await.unwrap(), Verdict::Reject(RejectReason::NotAMember(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_duplicate_is_delivered_once() {
    let (_, a, mut b, mut c) = three_members().await;
    let msg = now_observation(&key(0));
    a.handle.publish(msg.clone()).await.unwrap();
    assert!(matches!(a.handle.publish(msg.clone()).await, Err(NetworkError::AlreadyPublished)));
    assert_eq!(next_message(&mut b, PATIENCE).await.map(|(_, m)| m), Some(msg.clone()));
    // B re-gossips what it received: same content, same message id, nothing new.
    assert!(matches!(b.handle.publish(msg.clone()).await, Err(NetworkError::AlreadyPublished)));
    assert_eq!(next_message(&mut c, PATIENCE).await.map(|(_, m)| m), Some(msg));
    assert_eq!(next_message(&mut c, QUIET).await, None, "delivered twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_member_rejoins() {
    let (committee, a, b, c) = three_members().await;
    c.handle.shutdown();
    timeout(PATIENCE, c.task).await.unwrap().unwrap();
    assert!(c.handle.publish(now_observation(&key(2))).await.is_err());
    eventually("A to notice C left", || async {
        (!a.handle.connected_peers().contains(&c.peer_id)).then_some(())
    })
    .await;
    // C comes back on a new port; it dials the members in its genesis.
    let mut c = start(&key(2), &committee, &[&a, &b], Arc::new(NoCatchup)).await;
    meshed(&[&a, &b, &c]).await;
    let msg = now_observation(&key(0));
    a.handle.publish(msg.clone()).await.unwrap();
    assert_eq!(next_message(&mut c, PATIENCE).await.map(|(_, m)| m), Some(msg));
}

#[tokio::test(flavor = "multi_thread")]
async fn members_also_gossip_over_quic() {
    let committee = committee(4);
    let quic = "/ip4/127.0.0.1/udp/0/quic-v1";
    let a = start_on(quic, &key(0), &committee, &[], Arc::new(NoCatchup)).await;
    let mut b = start_on(quic, &key(1), &committee, &[&a], Arc::new(NoCatchup)).await;
    assert!(a.addr.to_string().contains("quic-v1"), "{}", a.addr);
    meshed(&[&a, &b]).await;
    let msg = now_observation(&key(0));
    a.handle.publish(msg.clone()).await.unwrap();
    assert_eq!(next_message(&mut b, PATIENCE).await.map(|(_, m)| m), Some(msg));
}

/// A round-0 prevote of the first value, for a made-up candidate.
fn prevote() -> Vote {
    Vote {
        settlement_id: SETTLEMENT,
        decision: DecisionId::Value,
        round: 0,
        step: VoteStep::Prevote,
        proposal_hash: Some(B256::repeat_byte(5)),
    }
}

/// What one member signed together goes out in bundles; every other member gets every message
/// of them, each delivered as if it had come alone.
#[tokio::test(flavor = "multi_thread")]
async fn messages_published_together_reach_every_member_in_bundles() {
    let (_, a, mut b, mut c) = three_members().await;
    let now = crate::clock::now();
    let messages: Vec<GossipMessage> = (0..3_000).map(|i| observation(&key(0), now - i)).collect();
    let errors = a.handle.publish_all(messages.clone()).await;
    assert!(errors.is_empty(), "{errors:?}");
    for node in [&mut b, &mut c] {
        let mut got = Vec::new();
        while got.len() < messages.len() {
            match next_message(node, PATIENCE).await {
                Some((_, message)) => got.push(message),
                None => panic!("{} of {} delivered", got.len(), messages.len()),
            }
        }
        assert_eq!(got, messages, "every message, in the order signed");
    }
}

/// A member bundling a forged message with good ones: the good ones are delivered, the bundle
/// is rejected and its sender penalised as if the forged one had come alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_bundle_holding_a_forged_message_is_rejected_and_its_sender_penalised() {
    let (_, mut a, b, _c) = three_members().await;
    let GossipMessage::Observation(mut forged) = now_observation(&key(1)) else { unreachable!() };
    forged.payload.trade_digest = B256::repeat_byte(0xee);
    let now = crate::clock::now();
    let good: Vec<GossipMessage> = (1..=3).map(|i| observation(&key(1), now - i)).collect();
    let mut bundle = good.clone();
    bundle.insert(1, GossipMessage::Observation(forged));
    let errors = b.handle.publish_all(bundle).await;
    assert!(errors.is_empty(), "{errors:?}");
    let mut got = Vec::new();
    while let Some((_, message)) = next_message(&mut a, QUIET).await {
        got.push(message);
    }
    assert_eq!(got, good, "the good messages of the bundle, and only they");
    let score = eventually("B's score to drop", || async {
        a.handle.peer_score(b.peer_id).await.unwrap().filter(|s| *s < 0.0)
    })
    .await;
    assert!(score < -10.0, "one forged message in a bundle costs what it costs alone: {score}");
}

/// Observations and proposals reach the node before the votes queued ahead of them; each lane
/// keeps its own order, and the events end once both lanes close.
#[tokio::test]
async fn observations_and_proposals_are_taken_before_queued_votes() {
    let signer = SigningKey::from_bytes(&[3; 32]);
    let vote = GossipMessage::Vote(Signed::sign(&signer, &NET, prevote()));
    let observation = now_observation(&signer);
    assert!(!super::handle::goes_first(&vote) && super::handle::goes_first(&observation));
    let (first_tx, first) = mpsc::channel(8);
    let (rest_tx, rest) = mpsc::channel(8);
    let mut events = crate::network::NetworkEvents { first, rest };
    let from = PeerId::random();
    for message in [vote.clone(), vote.clone()] {
        rest_tx.send(NetworkEvent::Message { from, message }).await.unwrap();
    }
    first_tx.send(NetworkEvent::Message { from, message: observation.clone() }).await.unwrap();
    let order: Vec<GossipMessage> = {
        let mut order = Vec::new();
        drop((first_tx, rest_tx));
        while let Some(NetworkEvent::Message { message, .. }) = events.recv().await {
            order.push(message);
        }
        order
    };
    assert_eq!(order, vec![observation, vote.clone(), vote]);
}
