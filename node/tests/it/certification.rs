//! Certification across real processes: four `fixd` nodes gossiping over libp2p on loopback
//! agree on one certified value, and anyone can check it offline with `fixd verify`.

use std::time::Duration;

use fixd_proto::certify::{ProofBundle, verify_bundle};
use fixd_proto::methodology::settlement_value;
use fixd_proto::replay::ReplayClock;
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
        .nodes
        .iter()
        .map(|n| n.wait_for(&path, Duration::from_secs(180), |v| v["status"] == "certified"))
        .collect();
    let value = views[0]["value"].clone();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["value"], value, "node-{i} reports the same certified value");
    }

    let (status, bundle) = devnet.nodes[2].get(&format!("{path}/proof"));
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
