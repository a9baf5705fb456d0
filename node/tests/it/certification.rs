//! Certification across real processes: four `fixd` nodes gossiping over libp2p on loopback
//! agree on one certified value, and anyone can check it offline with `fixd verify`.

use std::time::Duration;

use fixd_proto::certify::{ProofBundle, verify_bundle};
use fixd_proto::methodology::settlement_value;
use fixd_proto::replay::ReplayClock;
use fixd_proto::types::genesis::ProtocolParams;
use fixd_proto::types::settlement::{Index, SettlementSpec};
use fixd_proto::value::Wad;

use crate::harness::{Devnet, Scheduled, fixd, now, short_params};

#[test]
fn four_nodes_certify_one_value_that_verifies_offline() {
    let wall_start = now() + 8;
    let clock = ReplayClock { replay_start: 1_749_740_400, wall_start, speed: 60 };
    let maturity = wall_start + 60;
    let spec = SettlementSpec { index: Index::EthUsd, maturity, params: short_params(3) };
    let devnet = Devnet::start(4, clock, &[Scheduled { maturity, params: spec.params }]);

    let path = format!("/v1/settlements/{}", spec.id());
    let views: Vec<serde_json::Value> = devnet
        .running()
        .map(|n| n.wait_for(&path, Duration::from_secs(180), |v| v["status"] == "certified"))
        .collect();
    let value = views[0]["value"].clone();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["value"], value, "node-{i} reports the same certified value");
    }

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

/// One of four members down: still certified. Two down: not certified, and the API says why;
/// once one comes back, certified. A member started after both maturities catches up over
/// the request-response protocol and reports the same certificates.
#[test]
fn quorum_rules_and_a_late_node_catching_up() {
    let wall_start = now() + 8;
    let clock = ReplayClock { replay_start: 1_749_740_400, wall_start, speed: 60 };
    let (m1, m2) = (wall_start + 60, wall_start + 100);
    let s1 = SettlementSpec { index: Index::EthUsd, maturity: m1, params: short_params(3) };
    let s2 = SettlementSpec { index: Index::EthUsd, maturity: m2, params: short_params(3) };
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
