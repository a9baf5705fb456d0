//! Certification across real processes: four `fixd` nodes gossiping over libp2p on loopback
//! agree on one certified value, and anyone can check it offline with `fixd verify`.

use std::time::Duration;

use fixd_proto::certify::{ProofBundle, verify_bundle};
use fixd_proto::methodology::settlement_value;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::SettlementSpec;
use fixd_proto::value::Wad;

use crate::harness::{Devnet, Scheduled, fixd, now, short_maturity};

#[test]
fn four_nodes_certify_one_value_that_verifies_offline() {
    let (clock, spec) = short_maturity();
    let devnet = Devnet::start(4, clock, &[Scheduled { maturity: spec.maturity, params: spec.params }]);

    let path = format!("/v1/settlements/{}", spec.id());
    let views: Vec<serde_json::Value> = devnet
        .running()
        .map(|n| n.wait_for(&path, Duration::from_secs(180), |v| v["status"] == "certified"))
        .collect();
    let value = views[0]["value"].clone();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["value"], value, "node-{i} reports the same certified value");
    }

    let (_, status) = devnet.node(1).get("/v1/status");
    let peers: Vec<&str> =
        status["peers"].as_array().unwrap().iter().filter_map(|p| p["member"].as_str()).collect();
    assert_eq!(peers.len(), 3, "node-1 is connected to the other three members: {status}");
    let (status, bundle) = devnet.node(2).get(&format!("{path}/proof"));
    assert_eq!(status, 200, "{bundle}");
    let bundle: ProofBundle = serde_json::from_value(bundle).unwrap();
    let values: Vec<Wad> =
        bundle.observations.iter().filter_map(|o| o.payload.computation.value.value()).collect();
    assert!(values.len() >= 3, "a quorum of observations: {}", values.len());
    let median = settlement_value(&values).unwrap();
    assert_eq!(
        serde_json::to_value(median).unwrap(),
        value,
        "the certified value is the median of its observations"
    );
    assert_eq!(verify_bundle(&bundle), Ok(median));
    println!(
        "certified {median} from {} observations, round {}",
        values.len(),
        bundle.certificate.proposal.payload.round
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bundle.json");
    let text = serde_json::to_string_pretty(&bundle).unwrap();
    std::fs::write(&file, &text).unwrap();
    let out = fixd().arg("verify").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // One byte changed in a vote signature: verify fails and says why.
    let signature = serde_json::to_value(bundle.certificate.votes[0].signature).unwrap();
    let signature = signature.as_str().unwrap();
    let last = if signature.ends_with('0') { "1" } else { "0" };
    let changed = format!("{}{last}", &signature[..signature.len() - 1]);
    std::fs::write(&file, text.replacen(signature, &changed, 1)).unwrap();
    let out = fixd().arg("verify").arg(&file).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not verify") && err.contains("signature"), "{err}");
}

/// Two of the four venues down for a quarter of the replayed hour (issue 20): Kraken and
/// Gemini publish nothing of 15:30–15:45, so partitions 6 to 8 have two venues. The four
/// members certify `methodology::compute` on the trades the venues served, with those
/// partitions counted under the two-venue rule, within 5 bp of the fault-free value.
#[test]
fn two_venues_down_for_a_quarter_hour_certify_within_5_bp_of_the_fault_free_value() {
    use fixd_proto::methodology::compute;
    use fixd_proto::types::venue::Venue;
    use fixd_testkit::replay::{Fault, venue_trades};

    let wall_start = now() + 8;
    let clock = fixd_proto::replay::ReplayClock { replay_start: 1_749_740_400, wall_start, speed: 60 };
    let spec = SettlementSpec {
        index: fixd_proto::types::settlement::Index::EthUsd,
        maturity: wall_start + 60,
        params: crate::harness::short_params(3),
    };
    // 15:30-15:45 replayed: wall seconds 30 to 45 of the window.
    let (from, to) = (wall_start + 30, wall_start + 45);
    let faults = [format!("kraken=outage:{from}:{to}"), format!("gemini=outage:{from}:{to}")];
    let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
    let mut devnet = crate::harness::Devnet::prepare_with_faults(
        4,
        clock,
        &[Scheduled { maturity: spec.maturity, params: spec.params }],
        &ProtocolParams::default(),
        &faults,
    );
    for i in 0..4 {
        devnet.start_node(i);
    }

    // What the venues serve, with and without the outage.
    let served = |outage: bool| -> Vec<fixd_proto::types::venue::Trade> {
        Venue::ALL
            .into_iter()
            .flat_map(|venue| {
                let down = outage && matches!(venue, Venue::Kraken | Venue::Gemini);
                let faults = if down { vec![Fault::Outage { from, to }] } else { vec![] };
                venue_trades(&clock, venue, &faults, u64::MAX, (0, u64::MAX))
            })
            .collect()
    };
    let expected = compute(&spec, &served(true)).unwrap();
    let two_venue: Vec<usize> = (0..12).filter(|&k| expected.partitions[k].two_venue).collect();
    assert_eq!(two_venue, [6, 7, 8], "{expected:?}");
    let expected_value = expected.value.value().expect("a value under the two-venue rule");
    let fault_free = compute(&spec, &served(false)).unwrap().value.value().unwrap();

    let path = format!("/v1/settlements/{}", spec.id());
    // A member whose tick comes late can receive the certificate of the other three before it
    // signs its own observation (the race CI once lost): wait for both.
    let done = |v: &serde_json::Value| v["status"] == "certified" && !v["observation"].is_null();
    let views: Vec<serde_json::Value> =
        devnet.running().map(|n| n.wait_for(&path, Duration::from_secs(180), done)).collect();
    for (i, view) in views.iter().enumerate() {
        let value = Wad::parse(view["value"].as_str().unwrap()).unwrap();
        assert_eq!(value, expected_value, "node-{i} certified methodology::compute on the served trades");
        let own: fixd_proto::types::observation::Computation =
            serde_json::from_value(view["observation"]["payload"]["computation"].clone()).unwrap();
        assert_eq!(own, expected, "node-{i}'s observation records the two-venue partitions");
    }
    let moved = expected_value.abs_diff(fault_free).raw() * 1_000_000 / fault_free.raw();
    println!(
        "two venues down 15 replayed minutes: certified {expected_value}, fault-free {fault_free}: {moved} centi-bp"
    );
    assert!(moved <= 500, "the outage moved the value {moved} centi-bp, more than 5 bp");
}

/// One of four members down: still certified. Two down: not certified, and the API says why;
/// once one comes back, certified. A member started after both maturities catches up over
/// the request-response protocol and reports the same certificates.
#[test]
fn quorum_rules_and_a_late_node_catching_up() {
    let (clock, s1) = short_maturity();
    let (m1, m2) = (s1.maturity, s1.maturity + 30);
    let s2 = SettlementSpec { maturity: m2, ..s1.clone() };
    let params = ProtocolParams { round_timeout_secs: 8, ..ProtocolParams::default() };
    let settlements =
        [Scheduled { maturity: m1, params: s1.params }, Scheduled { maturity: m2, params: s2.params }];
    let mut devnet = Devnet::prepare(4, clock, &settlements, &params);
    for i in 0..3 {
        devnet.start_node(i);
    }
    let path = |s: &SettlementSpec| format!("/v1/settlements/{}", s.id());
    let certified = |v: &serde_json::Value| v["status"] == "certified";

    // 3 of 4 running: certified.
    let v1 = devnet.node(0).wait_for(&path(&s1), Duration::from_secs(150), certified);
    let round = |v: &serde_json::Value| v["certificate"]["proposal"]["payload"]["round"].clone();
    println!("with node-3 down, certified {} in round {}", v1["value"], round(&v1));

    // 2 of 4 running through s2's observation time: no certificate, and the API says why.
    devnet.stop_node(2);
    let until = s2.observe_at() + 2 * params.round_timeout_secs;
    while now() < until {
        std::thread::sleep(Duration::from_millis(500));
    }
    for i in 0..2 {
        let (_, v) = devnet.node(i).get(&path(&s2));
        assert_ne!(v["status"], "certified", "node-{i} must not certify with 2 of 4: {v}");
        let why = v["waiting_for"].as_str().unwrap_or_default();
        assert!(why.contains("no quorum: 2 of the 3"), "node-{i} says why: {why:?} in {v}");
    }

    // node-2 comes back: certified.
    devnet.start_node(2);
    let v2 = devnet.node(0).wait_for(&path(&s2), Duration::from_secs(90), certified);
    println!("after node-2 came back, certified {} in round {}", v2["value"], round(&v2));
    for i in 1..3 {
        let v = devnet.node(i).wait_for(&path(&s2), Duration::from_secs(60), certified);
        assert_eq!(v["value"], v2["value"], "node-{i}");
    }

    // node-3 starts after both maturities and catches up both certificates.
    devnet.start_node(3);
    for (s, v) in [(&s1, &v1), (&s2, &v2)] {
        let late = devnet.node(3).wait_for(&path(s), Duration::from_secs(60), certified);
        assert_eq!(late["value"], v["value"]);
    }
}

/// A leader that proposes a wrong median gets no votes and the next round certifies the right
/// value; a stranger cannot even connect; a member's observation re-sent with a bad signature
/// reaches no store; a member that signs two different observations is shown, with both, as
/// an equivocator by every node.
#[test]
fn liars_and_strangers_are_caught() {
    use fixd_node::keys::Keys;
    use fixd_node::network::{GossipMessage, NetworkConfig, NetworkService, NoCatchup, P2pConfig};
    use fixd_proto::signing::Signed;
    use fixd_proto::types::observation::{Computation, NodeValue, Observation};

    let (clock, spec) = short_maturity();
    let maturity = spec.maturity;
    let params = ProtocolParams { round_timeout_secs: 8, ..ProtocolParams::default() };
    let mut devnet = Devnet::prepare(4, clock, &[Scheduled { maturity, params: spec.params }], &params);
    let (genesis_path, _) = devnet.genesis_and_keys(0);
    let genesis = fixd_node::genesis::load(&genesis_path).unwrap();
    let liar = genesis.committee().leader(&spec.id(), 0);
    // node-3 stays down: the test borrows its identity to send a badly signed observation.
    let borrowed = if liar == 3 { 2 } else { 3 };
    for i in (0..4).filter(|&i| i != borrowed) {
        if i == liar {
            devnet.start_node_with_env(i, &[("FIXD_TEST_FAULT", "wrong-median")]);
        } else {
            devnet.start_node(i);
        }
    }
    let honest = (0..4).find(|&i| i != liar && i != borrowed).unwrap();

    // Gossip from the test process: a stranger, and the borrowed member with a bad signature.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let fake_valued = |signer: &Keys, value: &str| {
        let payload = Observation {
            settlement_id: spec.id(),
            observed_at: now(),
            computation: Computation {
                partitions: vec![],
                venues: vec![],
                value: NodeValue::Value(Wad::parse(value).unwrap()),
            },
            trade_digest: Default::default(),
        };
        Signed::sign(&signer.ed25519, &genesis.network_id(), payload)
    };
    let fake = |signer: &Keys| fake_valued(signer, "1");
    let (stranger_result, forged_result) = runtime.block_on(async {
        let start = |keys: &Keys, listen: &str| {
            let mut config =
                NetworkConfig::from_genesis(&keys_of(&devnet, borrowed), &genesis, &P2pConfig::default())
                    .unwrap();
            config.keypair = fixd_node::network::keypair(&keys.ed25519);
            config.listen = vec![listen.parse().unwrap()];
            let known: fixd_node::network::KnownSettlements = std::sync::Arc::new(|_| true);
            let (net, rx, swarm) = NetworkService::start(
                config,
                std::sync::Arc::new(NoCatchup),
                fixd_node::network::Admission::settlements(known),
                cancel.clone(),
            )
            .unwrap();
            (net, rx, tokio::spawn(swarm.run()))
        };
        let stranger = Keys::generate().unwrap();
        let (stranger_net, _rx1, _t1) = start(&stranger, "/ip4/127.0.0.1/tcp/0");
        let member = keys_of(&devnet, borrowed);
        let (member_net, _rx2, _t2) = start(&member, "/ip4/127.0.0.1/tcp/0");
        tokio::time::sleep(Duration::from_secs(4)).await;
        let stranger_result = stranger_net.publish(GossipMessage::Observation(fake(&stranger))).await;
        let mut forged = fake(&member);
        let mut sig = forged.signature.0.0;
        sig[5] ^= 1;
        forged.signature = fixd_proto::signing::Signature(sig.into());
        let forged_result = member_net.publish(GossipMessage::Observation(forged)).await;
        // Then two different, validly signed observations for the same slot: equivocation.
        for value in ["2", "3"] {
            member_net.publish(GossipMessage::Observation(fake_valued(&member, value))).await.unwrap();
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        (stranger_result, forged_result)
    });
    assert!(stranger_result.is_err(), "a stranger has no peer to publish to: {stranger_result:?}");
    println!("stranger: {stranger_result:?}; forged observation published by a member: {forged_result:?}");

    let path = format!("/v1/settlements/{}", spec.id());
    let view = devnet.node(honest).wait_for(&path, Duration::from_secs(120), |v| v["status"] == "certified");
    let round = view["certificate"]["proposal"]["payload"]["round"].as_u64().unwrap();
    assert!(round >= 1, "the liar led round 0, so no certificate there");
    let leader_key = &view["certificate"]["proposal"]["signer"];
    assert_ne!(leader_key, &serde_json::to_value(genesis.members[liar].ed25519).unwrap());
    let (_, bundle) = devnet.node(honest).get(&format!("{path}/proof"));
    let bundle: fixd_proto::certify::ProofBundle = serde_json::from_value(bundle).unwrap();
    let values: Vec<Wad> =
        bundle.observations.iter().filter_map(|o| o.payload.computation.value.value()).collect();
    assert_eq!(serde_json::to_value(settlement_value(&values).unwrap()).unwrap(), view["value"]);
    println!("the liar led round 0; certified {} in round {round}", view["value"]);

    let borrowed_key = serde_json::to_value(genesis.members[borrowed].ed25519).unwrap();
    for i in (0..4).filter(|&i| i != borrowed) {
        let (_, v) = devnet.node(i).get(&path);
        for o in v["observations"].as_array().unwrap() {
            assert_ne!(
                o["payload"]["computation"]["value"]["value"], "1",
                "node-{i} stored the stranger's or the forged observation: {o}"
            );
        }
        let evidence = v["equivocations"].as_array().unwrap();
        assert_eq!(evidence.len(), 1, "node-{i} keeps one piece of evidence: {evidence:?}");
        let e = &evidence[0];
        assert_eq!(
            (&e["signer"], &e["kind"], &e["round"]),
            (&borrowed_key, &"observation".into(), &0.into())
        );
        let evidence = fixd_decision::consensus::Equivocation {
            first: serde_json::from_value(e["first"].clone()).unwrap(),
            second: serde_json::from_value(e["second"].clone()).unwrap(),
        };
        evidence.check(&genesis.network_id()).expect("the evidence verifies offline");
        let values: std::collections::BTreeSet<String> = [&e["first"], &e["second"]]
            .iter()
            .map(|m| {
                m["Observation"]["payload"]["computation"]["value"]["value"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(values, ["2".to_owned(), "3".to_owned()].into(), "node-{i}: both halves shown");
        assert!(
            bundle.observations.iter().all(|o| serde_json::to_value(o.signer).unwrap() != borrowed_key),
            "the equivocator's observation is not in the certificate"
        );
    }
    cancel.cancel();
}

fn keys_of(devnet: &Devnet, i: usize) -> fixd_node::keys::Keys {
    fixd_node::keys::Keys::read(&devnet.genesis_and_keys(i).1).unwrap()
}
