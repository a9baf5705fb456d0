//! Real network faults (issue 17): every `fixd` node, anvil and the replay venues run in network
//! namespaces of their own on one bridge (`fixd_testkit::netns`), and links between them are
//! cut and made to lose packets with nftables. These tests need root, `ip`, `tc` and `nft`
//! (scripts/install-tools.sh); without them they fail and say why. Delay and reordering
//! (`NetLab::netem`, `tc netem`) need a kernel with CONFIG_NET_SCH_NETEM, which this project's
//! machine lacks: no test here relies on them.

use std::time::Duration;

use fixd_proto::types::settlement::SettlementSpec;
use fixd_testkit::netns::{Host, LabDevnet, NetLab};
use serde_json::Value;

use crate::harness::{Scheduled, short_maturity, short_protocol};

/// A four-member lab devnet on anvil for a settlement whose short window closes 20 s from now.
fn lab_devnet() -> (SettlementSpec, LabDevnet) {
    let (clock, spec) = short_maturity();
    let settlements = [Scheduled { maturity: spec.maturity, params: spec.params }];
    let devnet = LabDevnet::prepare(4, clock, &settlements, &short_protocol())
        .unwrap_or_else(|e| panic!("cannot make the network lab: {e}"));
    (spec, devnet)
}

/// The member that leads round 0 of `spec`.
fn round_zero_leader(devnet: &LabDevnet, spec: &SettlementSpec) -> usize {
    let genesis = fixd_node::genesis::load(&devnet.genesis_and_keys(0).0).unwrap();
    genesis.committee().leader(&spec.id(), 0)
}

fn certified(v: &Value) -> bool {
    v["status"] == "certified" || v["status"] == "published"
}

/// Waits until every running node shows `spec` certified, and checks they show one value.
fn all_certify_one_value(devnet: &LabDevnet, spec: &SettlementSpec, timeout: Duration) -> Value {
    let path = format!("/v1/settlements/{}", spec.id());
    let views: Vec<Value> = devnet.running().map(|n| n.wait_for(&path, timeout, certified)).collect();
    for (i, v) in views.iter().enumerate() {
        assert_eq!(v["value"], views[0]["value"], "member {i} certified the same value");
    }
    views[0].clone()
}

/// The members node `i` is connected to, from its status.
fn member_peers(devnet: &LabDevnet, i: usize) -> usize {
    let (_, status) = devnet.node(i).get("/v1/status");
    status["peers"].as_array().map_or(0, |peers| peers.iter().filter(|p| p["member"].is_string()).count())
}

/// The lab's own faults, without `fixd`: a probe connection between hosts shows that a cut
/// drops both ways and touches no other link, that a partition cuts exactly between its
/// sides, that 100% loss drops everything, and that every heal restores the link.
#[test]
fn the_lab_cuts_partitions_and_heals_links_both_ways() {
    let mut lab = NetLab::new().unwrap_or_else(|e| panic!("cannot make the network lab: {e}"));
    let [a, b, c] = ["a", "b", "c"].map(|name| lab.add_host(name).unwrap_or_else(|e| panic!("{e}")));
    let _listeners: Vec<_> = [a, b, c].iter().map(|&h| lab.listen(h, 7000).unwrap()).collect();
    let reaches = |from: Host, to: Host| lab.connect(from, to, 7000, Duration::from_millis(600)).is_ok();
    let links = || [(a, b), (b, a), (a, c), (c, a), (b, c), (c, b)].map(|(x, y)| reaches(x, y));
    assert_eq!(links(), [true; 6], "a fresh lab connects every host");

    lab.cut(a, b).unwrap();
    assert_eq!(links(), [false, false, true, true, true, true], "a cut drops a-b both ways, nothing else");
    assert_eq!(lab.cuts(), vec![(a, b)]);
    lab.heal(a, b).unwrap();
    assert_eq!(links(), [true; 6], "healed");

    lab.partition(&[&[a], &[b, c]]).unwrap();
    assert_eq!(links(), [false, false, false, false, true, true], "a alone, b and c together");
    lab.heal_all().unwrap();
    assert_eq!(links(), [true; 6], "all healed");
    assert!(lab.cuts().is_empty());

    lab.isolate(c).unwrap();
    assert_eq!(links(), [true, true, false, false, false, false], "c isolated");
    lab.heal_all().unwrap();

    lab.packet_loss(a, 100).unwrap();
    assert!(!reaches(a, b) && !reaches(c, a), "a drops every packet it sends or receives");
    lab.packet_loss(a, 0).unwrap();
    assert_eq!(links(), [true; 6], "loss cleared");
}

/// A member cut off from every other host (members, anvil, venues) from before maturity until
/// after the others certify does not block them: three of four are a quorum. While cut off it
/// certifies nothing; once healed it catches up to the same certificate.
#[test]
fn a_member_cut_off_during_the_proposal_does_not_block_the_others_and_catches_up() {
    let (spec, mut devnet) = lab_devnet();
    let cut_off = (round_zero_leader(&devnet, &spec) + 1) % 4;
    for i in 0..4 {
        devnet.start_node(i);
    }
    // Live connections first, so that the cut severs links in use, not links never made.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while member_peers(&devnet, cut_off) < 3 {
        assert!(std::time::Instant::now() < deadline, "node-{cut_off} did not connect to the other members");
        std::thread::sleep(Duration::from_millis(250));
    }
    devnet.lab.isolate(devnet.members[cut_off]).unwrap();
    println!("node-{cut_off} cut off from every host before maturity");

    let path = format!("/v1/settlements/{}", spec.id());
    let others: Vec<usize> = (0..4).filter(|&i| i != cut_off).collect();
    let views: Vec<Value> =
        others.iter().map(|&i| devnet.node(i).wait_for(&path, Duration::from_secs(150), certified)).collect();
    for v in &views {
        assert_eq!(v["value"], views[0]["value"], "the three certify one value");
    }
    let (_, alone) = devnet.node(cut_off).get(&path);
    assert!(!certified(&alone), "node-{cut_off} cannot certify while cut off: {alone}");
    println!(
        "the other three certified {}; node-{cut_off} waits: {}",
        views[0]["value"], alone["waiting_for"]
    );

    devnet.lab.heal_all().unwrap();
    let caught_up = devnet.node(cut_off).wait_for(&path, Duration::from_secs(60), certified);
    assert_eq!(caught_up["value"], views[0]["value"], "the same value after the heal");
    assert_eq!(
        caught_up["certificate"]["proposal"], views[0]["certificate"]["proposal"],
        "the same certified proposal"
    );
}

/// 20% of the round-0 leader's packets dropped each way (nftables): all four certify one value.
#[test]
fn a_leader_losing_a_fifth_of_its_packets_still_certifies() {
    let (spec, mut devnet) = lab_devnet();
    let leader = round_zero_leader(&devnet, &spec);
    devnet.lab.packet_loss(devnet.members[leader], 20).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..4 {
        devnet.start_node(i);
    }
    let v = all_certify_one_value(&devnet, &spec, Duration::from_secs(150));
    println!(
        "with 20% loss on leader node-{leader}, certified {} in round {}",
        v["value"], v["certificate"]["proposal"]["payload"]["round"]
    );
}
